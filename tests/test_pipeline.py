"Re-execute every notebook in nbs/ top to bottom with papermill under the small 'ci' profile."
import json, subprocess, sys
from pathlib import Path
import pytest
from kws_nb.pipeline import pipeline_notebooks

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "artifacts" / "ci"     # git-ignored


@pytest.fixture(scope="module")
def ci_run():
    "One ci-profile pipeline run through the console script, as a user would call it."
    import shutil
    shutil.rmtree(OUT, ignore_errors=True)
    r = subprocess.run([str(Path(sys.executable).parent / "kws-pipeline"), "--profile", "ci", "--out", str(OUT)],
                       cwd=REPO, capture_output=True, text=True, timeout=3600)
    print(r.stdout[-5000:], r.stderr[-5000:])
    assert r.returncode == 0, f"kws-pipeline --profile ci failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return OUT


def test_every_notebook_executed_in_order(ci_run):
    expected = [p.name for p in pipeline_notebooks(REPO / "nbs")]
    executed = sorted(p.name for p in (ci_run / "notebooks").glob("*.ipynb"))
    assert executed == expected
    for name in expected:
        nb = json.loads((ci_run / "notebooks" / name).read_text())
        assert nb["metadata"]["papermill"]["exception"] in (None, False), name


def test_data_summary_written(ci_run):
    from conftest import SHARED_DATA
    summary = json.loads((ci_run / "data_summary.json").read_text())
    if not SHARED_DATA.is_dir(): assert "v0.01_sample" not in summary
    else: assert summary["v0.01_sample"]["clips"] == 300 and summary["v0.02_toy"]["clips"] == 350


def test_every_chapter_names_the_checkpoint_it_measured(ci_run):
    "Chapters pass checkpoints by file; each metrics file carries the SHA-256 of what it measured, and it matches."
    from kws_nb.model import file_sha256
    base = file_sha256(ci_run / "baseline" / "checkpoint.pt")
    assert json.loads((ci_run / "baseline" / "metrics.json").read_text())["checkpoint"]["sha256"] == base
    for chapter in ("streaming", "detection"):
        assert json.loads((ci_run / chapter / "metrics.json").read_text())["checkpoint_sha256"] == base, chapter
    det = json.loads((ci_run / "detection" / "metrics.json").read_text())
    assert set(det["modes"]) == {"stateful", "windowed"} and "modes" not in json.loads((ci_run / "streaming" / "metrics.json").read_text())
    assert [r["seed"] for r in det["seeds"]["runs"]] == [3407, 3408]                # every seed of the training chapter, on the streams
    rows = json.loads((ci_run / "quantization" / "metrics.json").read_text())["rows"]
    for r in rows:
        ck = ci_run / ("baseline" if r["name"] == "baseline" else f"students/{r['name']}") / "checkpoint.pt"
        assert r["checkpoint_sha256"] == file_sha256(ck), r["name"]
        assert r["eval_batch_size"] == (1 if r["precision"] == "int8" else 256)     # int8 scored as it is deployed
        assert r["macs_total"] == r["macs"] + r["macs_front_end"] > r["macs"]
    for p in (ci_run / "students").glob("*/metrics.json"):
        m = json.loads(p.read_text())
        assert m["teacher_sha256"] == base and m["checkpoint_sha256"] == file_sha256(p.parent / "checkpoint.pt")
        # the ci profile gives each student one round of its own hard-negative mining (the teacher's pool to start)
        assert [r["round"] for r in m["rounds"]] == [0, 1] and m["rounds"][1]["hard_pool"] >= m["rounds"][0]["hard_pool"], p
        assert (p.parent / "round1" / "checkpoint.pt").exists()


def test_comparison_reports_end_to_end_cost_and_intervals(ci_run):
    cmp = json.loads((ci_run / "comparison" / "metrics.json").read_text())
    recs = cmp["records"]
    assert {(r["name"], r["precision"], r["mode"]) for r in recs} >= {("baseline", "float", "clip"), ("baseline", "int8", "clip"),
                                                                      ("baseline", "float", "stateful")}
    for r in recs:
        if r["mode"] == "peer": continue                     # PocketSphinx: no MAC count, its own row
        assert r["macs_total"] == r["macs"] + r["macs_front_end"], r["name"]
    peer = [r for r in recs if r["mode"] == "peer"]
    assert [r["name"] for r in peer] == ["pocketsphinx"] and peer[0]["test"]["n"] > 0 and peer[0]["macs"] is None
    base = json.loads((ci_run / "baseline" / "metrics.json").read_text())
    lo, hi = base["validation"]["roc_auc_interval"]
    assert lo <= base["validation"]["roc_auc"] <= hi
    op = base["validation"]["at_threshold"]
    assert op["frr_interval"][0] <= op["frr"] <= op["frr_interval"][1]


def test_stream_benchmark_chooses_on_validation_and_reports_test(ci_run):
    "Thresholds for each target FA/h come from the validation streams; test and real carry the names a reader looks for."
    from kws_nb.data import SpeechCommands, read_split_csv, assert_disjoint
    streams = json.loads((ci_run / "streams" / "summary.json").read_text())
    assert streams["sides"]["val"]["negative_hours"] >= 0.02 and streams["sides"]["test"]["n_keywords"] >= 6
    ds = SpeechCommands(ci_run / "data" / "synthetic_speech_commands")
    assert_disjoint(ds, read_split_csv(ds, ci_run / "split.csv"))                 # the run's one split, by source speaker
    cmp = json.loads((ci_run / "comparison" / "metrics.json").read_text())
    recs = {(r["name"], r["precision"], r["mode"]): r for r in cmp["records"]}
    for key in [k for k in recs if k[2] in ("clip", "peer", "stateful")]:
        r = recs[key]
        st, sv = r["stream_test"], r["stream_val"]
        assert st["keyword_free_hours"] > 0 and st["n_keywords"] > 0, key
        assert set(st["at"]) == {"0.1", "0.5", "1.0"}, key
        for target, p in st["at"].items():
            assert p["threshold"] == sv["at"][target]["threshold"], key            # chosen on validation, applied to test
            if p["threshold"] is not None:
                assert {"frr", "fa_per_hour", "false_alarms"} <= set(p) and p["false_alarms"] == round(p["fa_per_hour"] * st["keyword_free_hours"]), key
                assert sv["at"][target]["fa_per_hour"] <= float(target), key
    assert ("pocketsphinx", "peer", "peer") in recs and ("kd-planner-best", "float", "clip") in recs and ("kd-seed-pick", "int8", "clip") in recs
    base = json.loads((ci_run / "baseline" / "metrics.json").read_text())
    assert [r["seed"] for r in base["seeds"]["runs"]] == [3407, 3408] and base["seeds"]["summary"]["test_au_fa_fr"]["values"]
    # the recorded config is the recipe, not the kept mining round's (round_epochs 1, its own seed), and the second seed
    # repeats that recipe: round 0 for the profile's 2 epochs
    import torch
    assert (base["config"]["num_epochs"], base["config"]["seed"]) == (2, 3407), base["config"]
    assert len(torch.load(ci_run / "baseline" / "seeds" / "3408" / "round0" / "last.pt", weights_only=False)["history"]) == 2
    head = json.loads((ci_run / "students" / "kd-planner-best" / "metrics.json").read_text())
    assert len(head["seeds"]["runs"]) == 2


def test_report_command_rewrites_only_the_readme_results(ci_run, tmp_path):
    "The README's results come from a run's files through `kws-report`; the chapter leaves the same text in report.md."
    assert (ci_run / "report.md").read_text().startswith("Generated by `kws-report`")
    run = json.loads((ci_run / "pipeline.json").read_text())
    assert run["profile"] == "ci"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    for c, rec in run["chapters"].items():                        # every chapter names the code that ran it
        assert rec["code"]["commit"] == (head.stdout.strip() if head.returncode == 0 else None), c
    readme = tmp_path / "README.md"
    readme.write_text((REPO / "README.md").read_text())
    r = subprocess.run([str(Path(sys.executable).parent / "kws-report"), "--artifacts", str(ci_run), "--readme", str(readme)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    before, after = (REPO / "README.md").read_text(), readme.read_text()
    start, end = "<!-- kws-report:start -->", "<!-- kws-report:end -->"
    assert before.split(start)[0] == after.split(start)[0] and before.split(end)[1] == after.split(end)[1]
    assert "| synthetic test (reports) |" in after.split(start)[1].split(end)[0]
    bad = subprocess.run([str(Path(sys.executable).parent / "kws-report"), "--artifacts", str(tmp_path / "none")],
                         capture_output=True, text=True, timeout=600)
    last = bad.stderr.strip().splitlines()[-1]          # (torch may warn on a line of its own before it)
    assert bad.returncode == 1 and last.startswith("kws-report: error:") and "Traceback" not in bad.stderr


def test_export_chapter_measures_the_shipped_files(ci_run):
    "06a: every format written for the baseline and the best compressed model, sizes from those files, one latency table, int8 quality."
    from kws_nb.model import file_sha256
    m = json.loads((ci_run / "export" / "metrics.json").read_text())
    name = m["best_compressed"]["name"]
    assert m["best_compressed"]["rule"]
    for key, n in (("baseline", "baseline"), ("compressed", name)):
        src = m["sources"][key]
        assert src["name"] == n and src["checkpoint_sha256"] == file_sha256(src["checkpoint"])
        for fmt, path in m["files"][key].items(): assert Path(path).stat().st_size == m["sizes"][key][fmt], (key, fmt)
    assert [r["format"] for r in m["size_table"]] == ["torch checkpoint", "TorchScript", "ONNX", "compact (.kws)"]
    lat = m["latency"]
    assert len(lat["rows"]) == 12 and lat["threads"] == 1
    ref = [r for r in lat["rows"] if (r["model"], r["runtime"]) == ("baseline", "torch eager")]
    assert len(ref) == 1 and ref[0]["speedup"] == 1.0
    assert lat["meets_5x"] == (lat["fastest_compressed"]["speedup"] >= 5)
    for agree in m["agreement"].values(): assert agree["onnx_vs_torch"] < 1e-4 and 0 < agree["onnx_int8_vs_onnx"] < 0.5
    assert set(m["quality"]["baseline"]) == {"torch float", "torch int8", "onnxruntime float", "onnxruntime int8"}
    sets = set(m["quality_sets"])
    assert "synthetic test" in sets
    for runtime, per_set in m["quality"]["baseline"].items():
        assert set(per_set) == sets and all(0 <= r["au_fa_fr"] and 0 <= r["roc_auc"] <= 1 for r in per_set.values()), runtime
