"The console scripts as a user runs them (a fresh process): kws-stream's --json output, refused NaN input, --plot checked first, Ctrl-C on a live stream; every command's bad input as one error line."
import json, os, signal, subprocess, sys, threading, time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kws_nb.model import save_checkpoint, file_sha256
from kws_nb.testing import sharpened_crnn, bursty_noise
from conftest import deliverable_sigint

SCRIPTS = {"kws-pipeline": "kws_nb.pipeline:kws_pipeline", "kws-synth": "kws_nb.synth:kws_synth", "kws-stream": "kws_nb.detector:kws_stream",
           "kws-report": "kws_nb.report:kws_report", "kws-refresh-pretrained": "kws_nb.stateful:kws_refresh_pretrained",
           "kws-cascade": "kws_nb.cascade:kws_cascade"}


def command(script: str, *args) -> list[str]:
    "The console script run by this interpreter from this checkout (the installed entry points may point at another copy)."
    module, func = SCRIPTS[script].split(":")
    return [sys.executable, "-c", f"from {module} import {func}; {func}()", *map(str, args)]


def run(script, *args, stdin=None, timeout=180):
    return subprocess.run(command(script, *args), input=stdin, capture_output=True, timeout=timeout)


def one_error_line(r, prog: str) -> str:
    "The process failed with exactly one `prog: error:` line on stderr and no traceback; that line."
    err = r.stderr.decode() if isinstance(r.stderr, bytes) else r.stderr
    assert r.returncode not in (0, None), err
    assert "Traceback" not in err, err
    lines = [l for l in err.splitlines() if "error" in l.lower()]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    m = sharpened_crnn(seed=0)
    wave = (0.5 * bursty_noise(16000 * 4, seed=5)).clamp(-1, 1)
    pcm = (wave * 32767).round().short().numpy()
    sf.write(d / "a.wav", pcm, 16000, subtype="PCM_16")
    # a run's cascade, as 06c_cascade leaves it: a baseline and a student checkpoint, and the chapter's choices
    run = d / "run"; student = sharpened_crnn(seed=1)
    save_checkpoint(run / "baseline" / "checkpoint.pt", m, m.config); save_checkpoint(run / "students" / "kd-x" / "checkpoint.pt", student, student.config)
    at = {"0.5": dict(reachable=True, threshold=0.9), "1.0": dict(reachable=True, threshold=0.8), "0.1": dict(reachable=False, threshold=None)}
    (run / "cascade").mkdir()
    (run / "cascade" / "metrics.json").write_text(json.dumps(dict(
        teacher_sha256=file_sha256(run / "baseline" / "checkpoint.pt"), student=dict(name="kd-x", precision="float"), listen_threshold=0.3,
        wake_s=0.24, listen_mode="stateful", choice=dict(smooth_frames=3, refractory_s=0.5), results=dict(cascade=dict(stream_val=dict(at=at))))))
    return dict(dir=d, ck=save_checkpoint(d / "ck.pt", m, m.config), wav=d / "a.wav", pcm=pcm, run=run)


def test_json_output_parses(files):
    r = run("kws-stream", files["wav"], "--checkpoint", files["ck"], "--threshold", "0.3", "--json")
    assert r.returncode == 0, r.stderr.decode()
    objs = [json.loads(l) for l in r.stdout.decode().splitlines()]
    *events, last = objs
    assert events and all(set(e) == {"time_s", "keyword", "probability"} and e["keyword"] == "sheila" for e in events)
    assert [e["time_s"] for e in events] == sorted(e["time_s"] for e in events)
    s = last["summary"]
    assert s["detections"] == len(events) and s["n_outputs"] == (64000 - 3240) // 1280 + 1 and s["interrupted"] is False
    assert (s["format"], s["backend"], s["seconds"]) == ("checkpoint", "torch", 4.0)


def test_cascade_streams_a_file(files):
    r = run("kws-cascade", files["wav"], "--artifacts", files["run"], "--fa-per-hour", "1", "--json")
    assert r.returncode == 0, r.stderr.decode()
    lines = [json.loads(l) for l in r.stdout.decode().splitlines()]
    summary = lines[-1]["summary"]
    assert summary["format"] == "cascade" and summary["threshold"] == 0.8 and summary["n_outputs"] == 48, summary   # 4 s: 48 teacher steps
    assert 0 < summary["teacher_steps"] <= 48 and summary["detections"] == len(lines) - 1, summary
    assert all(l["keyword"] == "sheila" and l["probability"] >= 0.8 for l in lines[:-1]), lines
    assert "threshold 0.8 for 1 false alarms per hour" in r.stderr.decode(), r.stderr.decode()


def test_nan_in_a_raw_stream_is_refused(files):
    f32 = (files["pcm"] / 32768).astype("<f4")
    r = run("kws-stream", "-", "--checkpoint", files["ck"], "--pcm", "f32le", stdin=f32.tobytes())
    assert r.returncode == 0, r.stderr.decode()
    bad = f32.copy(); bad[30000] = np.nan
    line = one_error_line(run("kws-stream", "-", "--checkpoint", files["ck"], "--pcm", "f32le", stdin=bad.tobytes()), "kws-stream")
    assert "stdin at 1.80 s: audio chunk: 1 NaN or infinite sample(s) of 1600" in line, line
    line = one_error_line(run("kws-stream", "-", "--checkpoint", files["ck"], stdin=b"\x00" * 7), "kws-stream")
    assert "not a whole number of 2-byte samples" in line


def test_plot_folder_is_checked_before_streaming(files):
    "stdin stays open and empty: a command that read audio before checking --plot would wait for it."
    p = subprocess.Popen(command("kws-stream", "-", "--checkpoint", files["ck"], "--plot", files["dir"] / "missing" / "a.png"),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.wait(timeout=120)                              # stdin neither written nor closed
    finally:
        if p.poll() is None: p.kill()
        p.stdin.close()
    r = subprocess.CompletedProcess(p.args, p.returncode, p.stdout.read(), p.stderr.read())
    assert "does not exist" in one_error_line(r, "kws-stream")


def test_ctrl_c_on_a_live_stream_prints_the_summary_and_the_plot(files):
    plot = files["dir"] / "live.png"
    p = subprocess.Popen(command("kws-stream", "-", "--checkpoint", files["ck"], "--threshold", "0.3", "--json", "--plot", plot),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=deliverable_sigint)
    try:
        err_lines, first_event = [], []
        t = threading.Thread(target=lambda: err_lines.append(p.stderr.readline().decode()), daemon=True); t.start(); t.join(120)
        assert err_lines and err_lines[0].startswith("kws-stream: listening on stdin"), err_lines
        p.stdin.write(files["pcm"].astype("<i2").tobytes()); p.stdin.flush()          # 4 s of audio; the pipe stays open
        t = threading.Thread(target=lambda: first_event.append(p.stdout.readline().decode()), daemon=True); t.start(); t.join(120)
        assert first_event and json.loads(first_event[0])["keyword"] == "sheila", first_event
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None: p.kill()
    assert p.returncode == 0, err.decode()
    summary = json.loads(out.decode().splitlines()[-1])["summary"]
    assert summary["interrupted"] is True and summary["detections"] >= 1 and summary["seconds"] > 0, summary
    assert "(stopped by Ctrl-C)" in err.decode() and "Traceback" not in err.decode(), err.decode()
    assert plot.is_file() and plot.stat().st_size > 10_000


@pytest.mark.parametrize("script,args,says", [
    ("kws-stream", ["{dir}/missing.wav", "--checkpoint", "{ck}"], "audio file {dir}/missing.wav not found"),
    ("kws-stream", ["{wav}", "--checkpoint", "{dir}/none.pt"], "model file {dir}/none.pt not found"),
    ("kws-stream", ["{wav}", "--checkpoint", "{ck}", "--backend", "tpu"], "backend must be torch or onnxruntime"),
    ("kws-stream", ["-", "--checkpoint", "{ck}", "--pcm", "u8"], "--pcm must be one of s16le, f32le"),
    ("kws-pipeline", ["--profile", "nope", "--out", "{dir}/pipe"], "unknown profile 'nope'"),
    ("kws-synth", ["{dir}/synth", "--n-keyword", "-1"], "n_keyword and n_other must be >= 0"),
    ("kws-report", ["--artifacts", "{dir}/no_run"], "needs baseline/metrics.json"),
    ("kws-refresh-pretrained", ["--artifacts", "{dir}/no_run"], "artifacts folder {dir}/no_run not found"),
    ("kws-cascade", ["{wav}", "--artifacts", "{dir}/no_run"], "{dir}/no_run/cascade/metrics.json not found"),
    ("kws-cascade", ["{dir}/missing.wav", "--artifacts", "{run}"], "audio file {dir}/missing.wav not found"),
    ("kws-cascade", ["{wav}", "--artifacts", "{run}", "--fa-per-hour", "3"], "has operating points for 0.5, 1.0 false alarms per hour"),
])
def test_bad_input_is_one_line(files, script, args, says):
    fill = lambda s: s.format(dir=files["dir"], ck=files["ck"], wav=files["wav"], run=files["run"])
    line = one_error_line(run(script, *map(fill, args), stdin=b""), script)
    assert fill(says) in line, line


def test_every_console_script_is_covered():
    import configparser
    cfg = configparser.ConfigParser(delimiters=["="]); cfg.read(Path(__file__).resolve().parent.parent / "settings.ini")
    declared = {l.split("=")[0].strip(): l.split("=")[1].strip() for l in cfg["DEFAULT"]["console_scripts"].split("\n") if l.strip()}
    assert declared == SCRIPTS


def test_torchscript_stream_says_no_torch_warning(files):
    "A TorchScript export streams in a fresh process without torch's 'sparse CSR is beta' note (its scripted front end's)."
    from kws_nb.streaming import StreamingCRNN, export_torchscript
    ts = export_torchscript(StreamingCRNN(sharpened_crnn(seed=0)), files["dir"] / "ts.pt")
    r = run("kws-stream", files["wav"], "--checkpoint", ts, "--threshold", "0.3")
    err = r.stderr.decode()
    assert r.returncode == 0 and "detection(s) of 'sheila'" in err, err[-2000:]
    assert "Warning" not in err and "beta" not in err, err[-2000:]
