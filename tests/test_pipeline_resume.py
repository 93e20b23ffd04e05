"`kws-pipeline` run again on the same folder resumes: unchanged chapters are skipped and say so, `--force` runs them all."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import nbformat
from conftest import deliverable_sigint

# The console script as a user runs it (argument parsing, messages, exit status), with the notebook folder it runs
# (its checkout's nbs/, by default) pointed at a toy one.
CMD = ("import sys, pathlib; import kws_nb.pipeline as p; p._default_nbs = lambda: pathlib.Path(sys.argv[1]); "
       "p.kws_pipeline(argv=sys.argv[2:])")


def _toy_nb(path, src, params):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}), nbformat.v4.new_code_cell(src)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "python3", "language": "python"}
    nbformat.write(nb, str(path))


def _kws_pipeline(d, *args):
    "Run kws-pipeline on the toy notebooks of `d`: (exit status, {chapter: what it said}, stdout, stderr)."
    r = subprocess.run([sys.executable, "-c", CMD, str(d / "nbs"), "--out", str(d / "out"), "--shared-data", str(d / "flags"), *args],
                       capture_output=True, text=True, timeout=900, env=dict(os.environ))
    said = dict(line.split("] ", 1)[1].split(": ", 1) for line in r.stdout.splitlines()
                if ": running (" in line or ": skipped (" in line)
    return r.returncode, said, r.stdout, r.stderr


def test_second_run_skips_and_force_reruns(tmp_path):
    d = tmp_path
    (d / "nbs").mkdir(); (d / "flags").mkdir()
    _toy_nb(d / "nbs" / "00_make.ipynb", "import pathlib; pathlib.Path(artifacts, 'n.txt').write_text(str(n))",
            "n = 3\nartifacts = '.'")
    _toy_nb(d / "nbs" / "01_use.ipynb", "import pathlib\nassert not pathlib.Path(shared_data, 'fail').exists(), 'told to fail'\n"
            "pathlib.Path(artifacts, 'm.txt').write_text(str(2 * int(pathlib.Path(artifacts, 'n.txt').read_text())))",
            "artifacts = '.'\nshared_data = '.'")
    rc, said, out, err = _kws_pipeline(d, "--profile", "ci")
    assert rc == 0, err[-3000:]
    assert sorted(said) == ["00_make", "01_use"] and all(s.startswith("running (new)") for s in said.values()), out
    assert (d / "out" / "m.txt").read_text() == "6"
    first = json.loads((d / "out" / "pipeline.json").read_text())["chapters"]

    rc, said, out, err = _kws_pipeline(d, "--profile", "ci")        # the same again: nothing runs
    assert rc == 0, err[-3000:]
    assert said == {c: f"skipped (inputs and outputs unchanged since {first[c]['finished']})" for c in first}, out
    assert "0 chapter(s) run, 2 skipped as unchanged" in out and "all notebooks done" in out
    again = json.loads((d / "out" / "pipeline.json").read_text())["chapters"]
    assert {c: (r["status"], r["seconds"]) for c, r in again.items()} == {c: ("skipped", r["seconds"]) for c, r in first.items()}

    rc, said, out, err = _kws_pipeline(d, "--profile", "ci", "--force")
    assert rc == 0 and all(s.startswith("running (forced (--force))") for s in said.values()) and len(said) == 2, out + err[-3000:]

    # a failing chapter: one line naming it, exit status 1, recorded as failed, run again next time
    (d / "flags" / "fail").touch(); (d / "out" / "m.txt").unlink()
    rc, said, out, err = _kws_pipeline(d, "--profile", "ci")
    last = err.strip().splitlines()[-1]
    assert rc == 1 and last.startswith("kws-pipeline: error: 01_use.ipynb failed in cell") and "Traceback" not in err, err[-3000:]
    assert said["00_make"].startswith("skipped") and said["01_use"].startswith("running (output file missing: m.txt)"), out
    assert json.loads((d / "out" / "pipeline.json").read_text())["chapters"]["01_use"]["status"] == "failed"
    (d / "flags" / "fail").unlink()
    rc, said, out, err = _kws_pipeline(d, "--profile", "ci")
    assert rc == 0 and said["01_use"].startswith("running (previous attempt failed)") and said["00_make"].startswith("skipped"), out + err
    assert (d / "out" / "m.txt").read_text() == "6"

    # another profile on the same folder reuses no record
    rc, said, out, err = _kws_pipeline(d, "--profile", "full")
    assert rc == 0 and all(s.startswith("running (new)") for s in said.values()) and len(said) == 2, out + err[-3000:]
    assert json.loads((d / "out" / "pipeline.json").read_text())["profile"] == "full"


def test_interrupted_chapter_runs_again(tmp_path):
    "Ctrl-C in the middle of a chapter: one line, the chapter stays marked as running, and the next run runs it again."
    d = tmp_path
    (d / "nbs").mkdir(); (d / "flags").mkdir(); (d / "flags" / "slow").touch()
    _toy_nb(d / "nbs" / "00_slow.ipynb", "import pathlib, time\npathlib.Path(artifacts, 'started').touch()\n"
            "while pathlib.Path(shared_data, 'slow').exists(): time.sleep(0.2)\npathlib.Path(artifacts, 'done.txt').write_text('1')",
            "artifacts = '.'\nshared_data = '.'")
    p = subprocess.Popen([sys.executable, "-c", CMD, str(d / "nbs"), "--out", str(d / "out"), "--shared-data", str(d / "flags"),
                          "--profile", "ci"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
                         preexec_fn=deliverable_sigint)
    t0 = time.time()
    while not (d / "out" / "started").exists():
        assert p.poll() is None and time.time() - t0 < 300, p.communicate()
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 1, out + err[-3000:]
    assert err.strip().splitlines()[-1] == "kws-pipeline: error: interrupted; run the same command again to resume where it stopped"
    assert list(json.loads((d / "out" / "pipeline.json").read_text())["running"]) == ["00_slow"]
    (d / "flags" / "slow").unlink()
    rc, said, out, err = _kws_pipeline(d, "--profile", "ci")
    assert rc == 0 and said["00_slow"].startswith("running (previous attempt was interrupted)"), out + err[-3000:]
    assert (d / "out" / "done.txt").read_text() == "1"
    rc, said, out, err = _kws_pipeline(d, "--profile", "ci")
    assert rc == 0 and said["00_slow"].startswith("skipped"), out + err[-3000:]
