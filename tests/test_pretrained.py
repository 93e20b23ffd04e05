"The shipped pretrained detector: it loads with no path, its files are the card's (SHA-256) and reproduce the card's real-clip numbers; kws-refresh-pretrained writes, refuses to overwrite, and its result loads; a built wheel carries the files."
import json, os, shutil, subprocess, sys, zipfile
from pathlib import Path

import pytest
import torch

from kws_nb.model import file_sha256, save_checkpoint, TaskConfig
from kws_nb.testing import sharpened_crnn, bursty_noise
from kws_nb.data import load_audio
from kws_nb.export import load_compact
from kws_nb.detector import load_detector, pretrained_dir, pretrained_file, real_clip_numbers, score_file

REPO = Path(__file__).resolve().parent.parent
CARD_KEYS = ("au_fa_fr", "roc_auc", "n", "n_keyword")


def check_card_numbers(folder, shared_data):
    "Every file of `folder`'s card reproduces the card's real-clip numbers on `shared_data`."
    card = json.loads((Path(folder) / "card.json").read_text())
    for key, entry in card["files"].items():
        assert entry["real"], f"card.json names no real-clip numbers for {entry['file']} (refreshed without shared data?)"
        got = real_clip_numbers(load_compact(Path(folder) / entry["file"])[0], shared_data)
        assert set(got) == set(entry["real"]), (got.keys(), entry["real"].keys())
        for s, want in entry["real"].items():
            for k in CARD_KEYS: assert got[s][k] == pytest.approx(want[k], abs=1e-9), (entry["file"], s, k, got[s][k], want[k])


@pytest.fixture(scope="module")
def shipped():
    if not (pretrained_dir() / "card.json").is_file():
        pytest.skip(f"no pretrained detector is shipped in {pretrained_dir()} (no card.json): a developer ships one with "
                    "kws-refresh-pretrained after a full run")
    return json.loads((pretrained_dir() / "card.json").read_text())


def test_shipped_detector_loads_and_is_the_card(shipped):
    det = load_detector()
    assert det.format == "compact" and det.keyword == shipped["keyword"]
    assert Path(det.source) == pretrained_dir() / shipped["files"][shipped["default"]]["file"]
    total = 0
    for entry in shipped["files"].values():
        p = pretrained_dir() / entry["file"]
        assert file_sha256(p) == entry["sha256"] and p.stat().st_size == entry["bytes"]
        total += entry["bytes"]
    assert total < 1_000_000, f"the shipped files take {total:,} bytes"
    assert (pretrained_dir() / "MODEL_CARD.md").is_file()


def test_shipped_detector_reproduces_its_card(shipped, shared_data):
    check_card_numbers(pretrained_dir(), shared_data)


def test_shipped_detector_spots_real_sheila_with_no_flags(shipped, shared_data):
    clips = sorted((shared_data / "speech_commands_v0.01_sample" / "sheila").glob("*.wav"))
    assert clips, f"no real sheila clips under {shared_data}"
    det = load_detector()
    hits = [c for c in clips if score_file(c, det)[2]]
    print(f"the shipped detector fires on {len(hits)} of {len(clips)} real 'sheila' clips at its defaults")
    assert hits, "the shipped detector fires on none of the real 'sheila' clips"
    code = "from kws_nb.detector import kws_stream; kws_stream()"
    r = subprocess.run([sys.executable, "-c", code, str(hits[0])], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "sheila" in r.stdout, r.stderr[-2000:]


def test_shipped_operating_points(shipped, shared_data):
    "`--fa-per-hour R` streams at the card's validation-chosen operating point; a rate the card lacks is one error line."
    entry = shipped["files"][shipped["default"]]
    if not entry.get("streams"): pytest.skip(f"the shipped card has no stream operating points for {entry['file']}")
    rate = next(iter(entry["streams"]["fa_per_hour_targets"]))
    clip = sorted((shared_data / "speech_commands_v0.01_sample" / "sheila").glob("*.wav"))[0]
    code = "from kws_nb.detector import kws_stream; kws_stream()"
    r = subprocess.run([sys.executable, "-c", code, str(clip), "--fa-per-hour", rate, "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    want = entry["streams"]["fa_per_hour_targets"][rate]["threshold"]
    assert json.loads(r.stdout.splitlines()[-1])["summary"]["threshold"] == want and f"threshold {want:.6g}" in r.stderr, r.stderr
    bad = subprocess.run([sys.executable, "-c", code, str(clip), "--fa-per-hour", "0.37"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "false alarms per hour only" in bad.stderr, bad.stderr[-2000:]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    "A small run: a baseline, two students, and the quantization verdict naming one of them."
    art = tmp_path_factory.mktemp("art")
    base = sharpened_crnn(0)
    save_checkpoint(art / "baseline" / "checkpoint.pt", base, base.config)
    (art / "baseline" / "metrics.json").write_text(json.dumps(dict(split=dict(train=10, val=5, test=5), n_train=10,
                                                                   test=dict(n=5, n_keyword=2, au_fa_fr=0.1, roc_auc=0.9))))
    for name, cfg in (("tiny", TaskConfig(hidden_size=16, cnn_out_channels=3, kernel_size=(8, 20), stride=(4, 10), gru_num_layers=1)),
                      ("mid", TaskConfig(hidden_size=32))):
        m = sharpened_crnn(1, cfg); save_checkpoint(art / "students" / name / "checkpoint.pt", m, cfg)
    (art / "quantization").mkdir()
    (art / "quantization" / "metrics.json").write_text(json.dumps(dict(verdict=dict(best=dict(name="tiny"), best_int8=dict(name="tiny")))))
    # the code the pipeline recorded for the training chapter (a checkout with local changes)
    (art / "pipeline.json").write_text(json.dumps(dict(profile="full", chapters={"03_train": dict(code=dict(commit="ab" * 20, dirty=True))})))
    return art


def refresh(*args, env=None):
    code = "from kws_nb.detector import kws_refresh_pretrained; kws_refresh_pretrained()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=600, env=env)


def test_refresh_writes_refuses_and_loads(artifacts, tmp_path, shared_data):
    dest = tmp_path / "pretrained"
    env = {k: v for k, v in os.environ.items() if k != "KWS_NB_SHARED_DATA"}
    r = refresh("--artifacts", artifacts, "--dest", dest, "--shared-data", shared_data, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "default tiny_int8.kws (verdict.best.name of" in r.stdout, r.stdout
    assert sorted(p.name for p in dest.iterdir()) == ["MODEL_CARD.md", "baseline_float.kws", "card.json", "tiny_int8.kws"]
    card = json.loads((dest / "card.json").read_text())
    assert {k: (f["name"], f["precision"]) for k, f in card["files"].items()} == {"float": ("baseline", "float"), "compressed": ("tiny", "int8")}
    for f in card["files"].values(): assert file_sha256(dest / f["file"]) == f["sha256"]
    assert "tiny_int8.kws" in (dest / "MODEL_CARD.md").read_text()
    assert card["git_commit"] == "ab" * 20 + " (with uncommitted changes)" and card["profile"] == "full"   # the run's code, not the refresher's
    check_card_numbers(dest, shared_data)                                   # the card's real-clip numbers reproduce
    again = refresh("--artifacts", artifacts, "--dest", dest, env=env)      # a second refresh needs --force
    assert again.returncode != 0 and "Traceback" not in again.stderr
    assert again.stderr.strip().splitlines()[-1].startswith("kws-refresh-pretrained: error: ") and "add --force" in again.stderr
    assert json.loads((dest / "card.json").read_text()) == card                # ... and leaves the shipped detector as it was
    forced = refresh("--artifacts", artifacts, "--dest", dest, "--force", env=env)
    assert forced.returncode == 0 and "replaced" in forced.stdout, forced.stderr[-2000:]
    det = load_detector(pretrained_file(dest))
    assert (det.format, det.backend, det.keyword) == ("compact", "torch", "sheila")
    x = bursty_noise(16000 * 2, seed=3)
    assert len(det.step(x)) == (32000 - 3240) // 1600 + 1                   # the student's 100-ms output hop
    assert load_detector(pretrained_file(dest, "float")).step(x).shape == ((32000 - 3240) // 1280 + 1,)


def test_wheel_carries_the_pretrained_files(tmp_path):
    "A wheel built from the checkout holds everything in kws_nb/pretrained (MANIFEST.in + include_package_data)."
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "settings.ini", "README.md", "MANIFEST.in", "pyproject.toml"): shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "kws_nb", src / "kws_nb", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("card.json", "MODEL_CARD.md", "baseline_float.kws", "tiny_int8.kws"): (src / "kws_nb" / "pretrained" / name).write_text("x")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "wheel"), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = (tmp_path / "wheel").glob("kws_nb-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"kws_nb/pretrained/{n}" for n in ("card.json", "MODEL_CARD.md", "baseline_float.kws", "tiny_int8.kws", "README.md")} <= names, \
        sorted(n for n in names if "pretrained" in n)
