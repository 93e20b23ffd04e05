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
    assert "long_audio" in json.loads((ci_run / "detection" / "metrics.json").read_text())
    assert "long_audio" not in json.loads((ci_run / "streaming" / "metrics.json").read_text())   # one file per chapter
    rows = json.loads((ci_run / "quantization" / "metrics.json").read_text())["rows"]
    for r in rows:
        ck = ci_run / ("baseline" if r["name"] == "baseline" else f"students/{r['name']}") / "checkpoint.pt"
        assert r["checkpoint_sha256"] == file_sha256(ck), r["name"]
        assert r["eval_batch_size"] == (1 if r["precision"] == "int8" else 256)     # int8 scored as it is deployed
        assert r["macs_total"] == r["macs"] + r["macs_front_end"] > r["macs"]
    for p in (ci_run / "students").glob("*/metrics.json"):
        m = json.loads(p.read_text())
        assert m["teacher_sha256"] == base and m["checkpoint_sha256"] == file_sha256(p.parent / "checkpoint.pt")


def test_comparison_reports_end_to_end_cost_and_intervals(ci_run):
    cmp = json.loads((ci_run / "comparison" / "metrics.json").read_text())
    recs = cmp["records"]
    assert {(r["name"], r["precision"], r["mode"]) for r in recs} >= {("baseline", "float", "clip"), ("baseline", "int8", "clip"),
                                                                      ("baseline", "float", "stateful")}
    for r in recs:
        assert r["macs_total"] == r["macs"] + r["macs_front_end"], r["name"]
    base = json.loads((ci_run / "baseline" / "metrics.json").read_text())
    lo, hi = base["validation"]["roc_auc_interval"]
    assert lo <= base["validation"]["roc_auc"] <= hi
    op = base["validation"]["at_threshold"]
    assert op["frr_interval"][0] <= op["frr"] <= op["frr_interval"][1]
