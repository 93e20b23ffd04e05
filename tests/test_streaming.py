"Integration tests for kws_nb.streaming / kws_nb.detection: streamed == offline for any chunking, TorchScript in a fresh process, the kws-stream command, real audio."
import subprocess, sys, textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import assume, given, settings, strategies as st

from kws_nb.data import LogMel, SpeechCommands, load_audio
from kws_nb.model import save_checkpoint
from kws_nb.testing import sharpened_crnn, bursty_noise
from kws_nb.streaming import (StreamingLogMel, StreamingCRNN, stream_log_mel, offline_stateful_reference,
                              offline_windowed_reference, export_torchscript, detect_events,
                              EventDetector)
from kws_nb.detection import make_long_stream, stream_probabilities, offline_stream_probabilities, with_log_mel, stream_tracks, stream_benchmark

REFERENCES = dict(stateful=offline_stateful_reference, windowed=offline_windowed_reference)


@pytest.fixture(autouse=True)
def one_thread():
    "Streaming is many tiny ops; extra threads only add synchronisation (and stall when the machine is busy)."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model():
    return sharpened_crnn(seed=0)


def run_chunks(step, audio, sizes):
    "Feed `audio` to `step` in chunks of `sizes` (cycled); the outputs, concatenated."
    out, i, k = [], 0, 0
    while i < audio.numel():
        n = sizes[k % len(sizes)]; out.append(step(audio[i:i + n])); i += n; k += 1
    return torch.cat(out, -1) if out else torch.zeros(0)


chunk_sizes = st.lists(st.one_of(st.integers(1, 50), st.integers(51, 2000), st.integers(2001, 20000)), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 12000), seed=st.integers(0, 10**6), sizes=chunk_sizes)
def test_front_end_equals_offline_any_chunking(n, seed, sizes):
    x = bursty_noise(n, seed=seed, segment=1000)
    frames = run_chunks(StreamingLogMel(), x, sizes) if n else torch.zeros(40, 0)
    ref = stream_log_mel(x)
    assert frames.shape == ref.shape == (40, 0 if n <= 200 else (n - 200) // 160 + 1)
    torch.testing.assert_close(frames, ref, atol=1e-4, rtol=0)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 40000), seed=st.integers(0, 10**6), sizes=chunk_sizes, window=st.integers(1, 16),
       mode=st.sampled_from(["stateful", "windowed"]))
def test_streamed_equals_offline_reference(model, n, seed, sizes, window, mode):
    x = bursty_noise(n, seed=seed)
    streamed = run_chunks(StreamingCRNN(model, window, mode).step, x, sizes)
    ref = REFERENCES[mode](model, x, window)
    assert streamed.shape == ref.shape == (max(0, (n - 3240) // 1280 + 1),)
    torch.testing.assert_close(streamed, ref, atol=1e-5, rtol=0)


def test_windowed_is_the_model_on_the_last_window(model):
    "Windowed output j is the offline CRNN on frames 8(j-W+1) .. 8j+19 of the stream, i.e. audio without centre padding."
    x = bursty_noise(16000 * 4, seed=7)
    W, j = 11, 30
    p = StreamingCRNN(model, W, "windowed").step(x)
    first_sample, end_sample = 1280 * (j - W + 1) - 200, 1280 * j + 3240
    clip = x[first_sample:end_sample]
    with torch.no_grad():
        direct = model(LogMel(center=False)(clip[None])).softmax(-1)[0, 1]
    torch.testing.assert_close(p[j], direct, atol=1e-5, rtol=0)


def test_single_sample_chunks(model):
    x = bursty_noise(6000, seed=3)
    for mode in REFERENCES:
        s = StreamingCRNN(model, 4, mode)
        torch.testing.assert_close(run_chunks(s.step, x, [1]), REFERENCES[mode](model, x, 4), atol=1e-5, rtol=0)


def events_by_loop(probs, times, threshold, smooth_frames, refractory_s):
    "The detection rule written as the obvious per-output loop."
    events, recent, last, armed = [], [], -np.inf, True
    for p, t in zip(probs, times):
        recent = (recent + [p])[-smooth_frames:]
        s = sum(recent) / len(recent)
        if s < threshold: armed = True
        elif armed and t - last >= refractory_s - 1e-9: events.append((t, s)); last, armed = t, False
    return events


@settings(max_examples=200, deadline=None)
@given(probs=st.lists(st.sampled_from([0.0, 0.2, 0.49, 0.5, 0.8, 1.0]) | st.floats(0, 1), min_size=0, max_size=80),
       threshold=st.sampled_from([0.0, 0.3, 0.5, 0.9, 1.0]), smooth=st.integers(1, 5),
       refractory=st.sampled_from([0.0, 0.08, 0.5, 1.0]), cuts=st.lists(st.integers(0, 80), max_size=5))
def test_event_detector_chunked_equals_loop(probs, threshold, smooth, refractory, cuts):
    times = np.arange(len(probs)) * 0.08 + 0.2025
    smoothed = [np.mean(probs[max(0, i + 1 - smooth):i + 1]) for i in range(len(probs))]
    assume(all(abs(s - threshold) > 1e-9 for s in smoothed))     # exact ties depend on the summation order
    expected = events_by_loop(probs, times, threshold, smooth, refractory)
    det, got, edges = EventDetector(threshold, smooth, refractory), [], [0, *sorted(c for c in cuts if c <= len(probs)), len(probs)]
    for a, b in zip(edges[:-1], edges[1:]): got += det.update(probs[a:b], times[a:b])
    assert [t for t, _ in got] == pytest.approx([t for t, _ in expected])
    assert [p for _, p in got] == pytest.approx([p for _, p in expected], abs=1e-12)


def test_torchscript_in_a_fresh_process(model, tmp_path):
    x = bursty_noise(16000 * 5, seed=11)
    torch.save(x, tmp_path / "audio.pt")
    for mode in REFERENCES:
        path = export_torchscript(StreamingCRNN(model, 11, mode), tmp_path / f"{mode}.pt")
        code = textwrap.dedent(f"""
            import torch
            m = torch.jit.load({str(path)!r})
            x = torch.load({str(tmp_path / 'audio.pt')!r})
            sizes, out, i, k = [1000, 7, 3333], [], 0, 0
            while i < x.numel():
                n = sizes[k % 3]; out.append(m.step(x[i:i + n])); i += n; k += 1
            torch.save(dict(probs=torch.cat(out), times=m.output_times(0, m.n_outputs)), {str(tmp_path / 'out.pt')!r})
        """)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)  # no kws_nb import
        assert r.returncode == 0, r.stderr[-3000:]
        got = torch.load(tmp_path / "out.pt")
        s = StreamingCRNN(model, 11, mode)
        eager = run_chunks(s.step, x, [1000, 7, 3333])
        torch.testing.assert_close(got["probs"], eager, atol=1e-6, rtol=0)
        torch.testing.assert_close(got["times"], s.output_times(0, s.n_outputs))


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    "The kws-stream console script, or an equivalent launcher while the script is not installed; plus a checkpoint and wav."
    d = tmp_path_factory.mktemp("cli")
    (d / "kws_stream_launcher.py").write_text("import sys\nfrom kws_nb.detector import kws_stream\nsys.exit(kws_stream())\n")
    cmd = [sys.executable, str(d / "kws_stream_launcher.py")]   # the module the console script names, whichever kws_nb is first
    m = sharpened_crnn(seed=0)
    ck = save_checkpoint(d / "ck.pt", m, m.config)
    pcm = ((0.5 * bursty_noise(16000 * 4, seed=5)).clamp(-1, 1) * 32767).round().short().numpy()
    sf.write(d / "a.wav", pcm, 16000, subtype="PCM_16")
    return dict(cmd=cmd, ck=ck, wav=d / "a.wav", pcm=pcm.astype("<i2").tobytes(), dir=d)


def run_cli(cli, *args, stdin=b""):
    return subprocess.run(cli["cmd"] + [*map(str, args), "--checkpoint", str(cli["ck"])], input=stdin, capture_output=True)


def test_cli_file_and_stdin_agree(cli):
    a = run_cli(cli, cli["wav"], "--threshold", "0.3", "--plot", cli["dir"] / "a.png")
    assert a.returncode == 0, a.stderr.decode()[-2000:]
    lines = a.stdout.decode().splitlines()
    assert lines and all("sheila" in l and "p=" in l for l in lines)
    assert (cli["dir"] / "a.png").stat().st_size > 10_000
    b = run_cli(cli, "-", "--threshold", "0.3", "--chunk-ms", "33", stdin=cli["pcm"])
    assert b.returncode == 0, b.stderr.decode()[-2000:]
    assert [l.split()[0] for l in b.stdout.decode().splitlines()] == [l.split()[0] for l in lines]  # same times
    assert "detection(s)" in b.stderr.decode()


@pytest.mark.parametrize("kind, stdin, message", [
    ("empty", b"", "empty stream"),
    ("odd", b"\x01" * 8001, "8001 bytes is not a whole number of 2-byte samples"),
    ("wav header", None, "WAV header"),
    ("too short", b"\x00" * 2000, "first output needs"),
])
def test_cli_bad_stdin(cli, kind, stdin, message):
    r = run_cli(cli, "-", stdin=cli["wav"].read_bytes() if stdin is None else stdin)
    assert r.returncode != 0 and message in r.stderr.decode(), (kind, r.stderr.decode()[-2000:])
    assert "Traceback" not in r.stderr.decode()


def test_cli_bad_files(cli):
    (cli["dir"] / "bad.wav").write_text("not audio")
    for path, message in ((cli["dir"] / "missing.wav", "not found"), (cli["dir"] / "bad.wav", "cannot read audio file")):
        r = run_cli(cli, path)
        assert r.returncode != 0 and message in r.stderr.decode(), r.stderr.decode()[-2000:]
        assert "Traceback" not in r.stderr.decode()
    r = subprocess.run(cli["cmd"] + [str(cli["wav"]), "--checkpoint", str(cli["dir"] / "nope.pt")], capture_output=True)
    assert r.returncode != 0 and "model file" in r.stderr.decode() and "not found" in r.stderr.decode()


def test_real_long_stream(shared_data, model):
    "Real clips and real noise: the keyword spans hold the keyword clips, and both modes equal their references."
    root = shared_data / "speech_commands_v0.01_sample"
    if not root.is_dir(): pytest.skip(f"{root} not found")
    ds = SpeechCommands(root)
    kw = [ds.wave(i) for i in range(len(ds)) if ds.labels[i] == 1][:5]
    other = [ds.wave(i) for i in range(len(ds)) if ds.labels[i] == 0][:40]
    noises = [load_audio(p) for p in ds.background_files]
    audio, spans = make_long_stream(kw, other, noises, 30.0, keyword_every=4, seed=0)
    assert len(spans) >= 3 and audio.abs().max() <= 1
    for mode in REFERENCES:
        p, t = stream_probabilities(StreamingCRNN(model, 11, mode), audio, 1600)
        np.testing.assert_allclose(p, REFERENCES[mode](model, audio, 11).numpy(), atol=1e-5, rtol=0)
        q, _ = offline_stream_probabilities(model, audio, mode, 11)                  # the one-pass path the benchmark uses
        np.testing.assert_allclose(q, p, atol=1e-5, rtol=0)
    tracks = stream_tracks(model, with_log_mel([dict(name="real", audio=audio, spans=spans, seconds=30.0)]))
    r = stream_benchmark(dict(val=(tracks, tracks)), targets=(1000.0,))["stream_val"]
    assert r["n_keywords"] == len(spans) and 0 <= r["at"]["1000.0"]["frr"] <= 1 and r["keyword_free_hours"] == 30.0 / 3600
