"Integration tests of the comparison chapter: a whole toy run collected, written, and the notebook run with papermill."
import json, math, subprocess, sys
from pathlib import Path

import pytest
import torch

from kws_nb.compare import collect, comparison_table, save_comparison, streaming_macs, to_markdown
from kws_nb.model import TaskConfig, CRNN, save_checkpoint, file_sha256
from kws_nb.profiling import footprint, macs
from kws_nb.quant import quantize, save_quantized


REPO = Path(__file__).resolve().parent.parent
CONFIGS = {"baseline": TaskConfig(hidden_size=8, cnn_out_channels=2, gru_num_layers=1),
           "small": TaskConfig(hidden_size=4, cnn_out_channels=1, kernel_size=(10, 20), stride=(5, 10), gru_num_layers=1),
           "tiny": TaskConfig(hidden_size=2, cnn_out_channels=1, kernel_size=(10, 16), stride=(5, 12), gru_num_layers=1)}
REAL = "speech_commands_v0.01_sample"


def make_run(root: Path, int8=True, streaming=None, stale=False) -> Path:
    "A run folder laid out as chapters 03, 05, 06 (and 04a) write it, from tiny random models; `stale`: 06 measured others."
    rows = []
    for i, (name, cfg) in enumerate(CONFIGS.items()):
        torch.manual_seed(i)
        m = CRNN(cfg).eval()
        ck = save_checkpoint(root / ("baseline" if name == "baseline" else f"students/{name}") / "checkpoint.pt", m, cfg)
        if int8: save_quantized(root / "quantization" / name / "checkpoint_int8.pt", quantize(m), cfg)
        for prec, mm in (("float", m), ("int8", quantize(m))):
            f = footprint(mm)
            rows.append(dict(name=name, precision=prec, macs=f["macs"], params=f["params"], val_au_fa_fr=0.01 * i,
                             checkpoint_sha256="f" * 64 if stale else file_sha256(ck),
                             val_roc_auc=1 - 0.01 * i, real={REAL: dict(au_fa_fr=0.05, roc_auc=0.9, n=300)}))
    (root / "quantization").mkdir(parents=True, exist_ok=True)
    (root / "quantization" / "metrics.json").write_text(json.dumps(dict(rows=rows)))
    if streaming is not None:
        (root / "detection").mkdir(parents=True, exist_ok=True)
        (root / "detection" / "metrics.json").write_text(json.dumps(dict(streaming, checkpoint_sha256=file_sha256(root / "baseline" / "checkpoint.pt"))))
    return root


def _point(frr, fa, hours):
    return dict(threshold=0.9, reachable=True, frr=frr, frr_interval=[max(frr - 0.05, 0.0), frr + 0.05], hits=int(300 * (1 - frr)),
                n_keywords=300, fa_per_hour=fa, false_alarms=round(fa * hours), keyword_free_hours=hours)


def _streams(frr, fa):
    "stream_val / stream_test / stream_real as the stream benchmark (04a_detection) writes them."
    def one(hours, f=frr, a=fa):
        return dict(keyword_free_hours=hours, n_keywords=300, at={"0.1": _point(f + 0.1, a / 5, hours), "0.5": _point(f, a, hours),
                                                                 "1.0": _point(f - 0.01, 2 * a, hours)},
                    curve=[dict(threshold=0.5, frr=0.01, fa_per_hour=40.0), dict(threshold=0.9, frr=f, fa_per_hour=a)])
    return dict(stream_val=one(5.0), stream_test=one(10.0), stream_real=one(0.87, frr + 0.2, 3 * fa))


STREAMING = dict(max_window_length=8, modes=dict(stateful=_streams(0.12, 0.3), windowed=_streams(0.1, 0.5)))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("cmp") / "artifacts", streaming=STREAMING)


def _strict(text):
    def bad(c): raise ValueError(f"not strict JSON: {c}")
    return json.loads(text, parse_constant=bad)


def test_collect_measures_every_model_and_writes_the_comparison(run, tmp_path):
    records = collect(run, min_run_time=0.01, latency_repeats=1)
    settings = [(r["name"], r["precision"], r["mode"]) for r in records]
    assert settings == [(n, p, "clip") for n in CONFIGS for p in ("float", "int8")] + [("baseline", "float", m) for m in ("stateful", "windowed")]
    for r in records[:-2]:
        m = CRNN(CONFIGS[r["name"]])
        assert r["macs"] == macs(m) and r["params"] == footprint(m)["params"]
        assert len(r["latency"]) == 4 and r["step_latency"]["median_s"] > 0 and r["real"][REAL]["au_fa_fr"] == 0.05
    stateful, windowed = records[-2:]
    assert stateful["macs"] == streaming_macs(CRNN(CONFIGS["baseline"]), 8) and stateful["max_window_length"] == 8
    assert windowed["macs"] == streaming_macs(CRNN(CONFIGS["baseline"]), 8, "windowed") > stateful["macs"]
    assert stateful["stream_test"]["at"]["0.5"]["frr"] == 0.12 and windowed["stream_real"]["at"]["0.5"]["false_alarms"] == 1
    assert records[0]["quality"] == 1.0 and records[2]["quality"] == math.inf   # baseline au_fa_fr 0, student's > 0

    paths = save_comparison(records, tmp_path / "comparison", 1.1, min_run_time=0.01)
    m = _strict(paths["metrics"].read_text())
    assert len(m["records"]) == 8 and m["records"][2]["quality"] is None          # inf is written as null
    assert len(m["pareto_front"]["macs"]) == 6                                      # here every model trades MACs for au_fa_fr
    heavier = max(records[:2], key=lambda r: r["bytes"])                            # same au_fa_fr, more bytes: dominated
    assert f"baseline {heavier['precision']}" not in m["pareto_front"]["bytes"]
    table = paths["table"].read_text()
    assert table.startswith("| setting | params | MACs |") and table.splitlines()[0].endswith("| test FRR@0.5FA/h | test FA/h there |")
    assert "| baseline float windowed stream | 0.5 | 0.9 | 0.100 [0.050, 0.150] | 0.50 (5 in 10.00 h) | 0.300 [0.250, 0.350] | 1.50 (1 in 0.87 h) |" in table
    assert m["records"][-1]["stream_test"]["at"]["1.0"]["false_alarms"] == 10 and paths["curves_stream_test"].stat().st_size > 20_000
    assert len(comparison_table(records).splitlines()) == 10 and to_markdown(records) + "\n" == table
    for key in ("tradeoffs", "latency", "tradeoffs_v0.01"):
        assert paths[key].suffix == ".png" and paths[key].stat().st_size > 20_000


def test_missing_streaming_metrics_and_int8_files_are_said(tmp_path, capsys):
    records = collect(make_run(tmp_path, int8=False), min_run_time=0.01, latency_repeats=1)
    out = capsys.readouterr().out
    assert "detection metrics not found" in out and out.count("checkpoint_int8.pt not found") == 3
    assert [r["precision"] for r in records] == ["float"] * 5 and "stream_test" not in records[-1] and "stream_test" not in records[-2]


def test_quality_from_other_checkpoints_fails(tmp_path):
    with pytest.raises(ValueError, match="re-run 06_quantization"):
        collect(make_run(tmp_path, stale=True), min_run_time=0.01, latency_repeats=1)


def test_notebook_real_run_writes_the_comparison(run, tmp_path):
    out = tmp_path / "07.ipynb"
    r = subprocess.run([sys.executable, "-m", "papermill", "07_comparison.ipynb", str(out), "-k", "python3", "-p", "artifacts", str(run),
                        "-p", "min_run_time", "0.01", "-p", "latency_repeats", "1"], cwd=REPO / "nbs", capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    m = _strict((run / "comparison" / "metrics.json").read_text())
    assert len(m["records"]) == 8 and m["min_run_time"] == 0.01 and m["baseline"] == "baseline float"
    assert {p.name for p in (run / "comparison").iterdir()} >= {"au_fa_fr_vs_macs_and_bytes.png", "latency.png", "table.md", "metrics.json"}
