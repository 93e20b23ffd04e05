"Integration tests of kws_nb.synth: the console script, the data layer on its output, the format of real clips."
import json, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pytest, soundfile as sf
from kws_nb.synth import generate_dataset, MANIFEST, SPEECH_COMMANDS_WORDS
from kws_nb.tts import find_engines

def _cli() -> list[str]:
    "The installed `kws-synth` script when present, else the module run with `python -m` (same entry point)."
    exe = shutil.which("kws-synth") or (str(Path(sys.executable).parent / "kws-synth")
                                        if (Path(sys.executable).parent / "kws-synth").exists() else None)
    return [exe] if exe else [sys.executable, "-m", "kws_nb.synth"]

def _run(*args):
    return subprocess.run([*_cli(), *map(str, args)], capture_output=True, text=True, timeout=300)

def test_cli_generates_then_is_idempotent_then_refuses_a_different_request(tmp_path):
    root = tmp_path / "sc"
    r = _run(root, "--n-keyword", 4, "--n-other", 12, "--seed", 7, "--noise-seconds", 2)
    assert r.returncode == 0, r.stderr
    assert "clips/s" in r.stdout and "16 clips written, 0 failed" in r.stdout, r.stdout
    m = json.loads((root / MANIFEST).read_text())
    assert m["complete"] and m["request"]["seed"] == 7 and set(m["per_engine"]) == set(find_engines())
    clips = sorted(root.glob("*/*_nohash_*.wav"))
    assert len(clips) == 16 and len(list(root.glob("sheila/*.wav"))) == 4
    assert all(sf.info(p).frames == 16000 and sf.info(p).samplerate == 16000 for p in clips)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    r = _run(root, "--n-keyword", 4, "--n-other", 12, "--seed", 7, "--noise-seconds", 2)
    assert r.returncode == 0 and "nothing to do" in r.stdout, r.stdout + r.stderr
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    r = _run(root, "--n-keyword", 5, "--n-other", 12, "--seed", 7, "--noise-seconds", 2)
    assert r.returncode == 1 and "differs in ['n_keyword']" in r.stderr and "--overwrite" in r.stderr

def test_cli_rejects_unknown_engine_and_foreign_folder(tmp_path):
    r = _run(tmp_path / "a", "--engines", "kokoro")
    assert r.returncode == 1 and "unknown engine 'kokoro'" in r.stderr
    (tmp_path / "real" / "yes").mkdir(parents=True)
    r = _run(tmp_path / "real", "--n-keyword", 2, "--n-other", 2, "--overwrite")
    assert r.returncode == 1 and "not empty" in r.stderr

def test_data_layer_loads_it_and_the_split_is_voice_disjoint(tmp_path):
    data = pytest.importorskip("kws_nb.data")
    m = generate_dataset(tmp_path, n_keyword=20, n_other=60, noise_seconds=2, progress=False)
    ds = data.SpeechCommands(tmp_path)
    assert len(ds) == m["counts"]["written"] == 80 and int(ds.labels.sum()) == 20
    assert set(ds.speakers) == set(m["per_voice"]) and len(ds.background_files) == 3     # white, pink, brown: no voices
    sp = data.speaker_split(ds, val_fraction=0.2, test_fraction=0.2, seed=3407)
    data.assert_disjoint(ds, sp)
    wave, label, word, speaker = ds[0]
    assert wave.shape == (16000,) and word in m["request"]["words"] and speaker in m["per_voice"]
    assert sp.val and sp.test
    assert {ds.sources[i] for i in range(len(ds))} == set(m["per_source"])
    waves, labels = next(iter(data.make_loader(ds, list(range(len(ds))), batch_size=8)))
    assert waves.shape == (8, 16000)

def test_same_format_as_real_speech_commands(tmp_path, shared_data):
    "Our clips have the real dataset's layout and format (16 kHz mono PCM_16, one second, <word>/<speaker>_nohash_<n>)."
    data = pytest.importorskip("kws_nb.data")
    real = shared_data / "speech_commands_v0.01_sample"
    if not real.is_dir(): pytest.skip(f"real Speech Commands sample not found: {real}")
    generate_dataset(tmp_path, n_keyword=2, n_other=30, engines=["espeak"], noise_seconds=1, progress=False)
    ours, theirs = sorted(tmp_path.glob("sheila/*.wav"))[0], sorted((real / "sheila").glob("*.wav"))[0]
    fmt = lambda p: (sf.info(p).samplerate, sf.info(p).channels, sf.info(p).subtype)
    assert fmt(ours) == fmt(theirs) == (16000, 1, "PCM_16")
    assert sf.info(theirs).frames <= 16000 == sf.info(ours).frames
    real_words = {p.name for p in real.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert real_words == set(SPEECH_COMMANDS_WORDS)
    assert data.parse_clip_path(ours)[0] == "sheila" and data.parse_clip_path(theirs)[0] == "sheila"
