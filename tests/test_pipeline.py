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
