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
from kws_nb.cascade import load_cascade, cascade_real_clips

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
    if "cascade" in card: check_cascade_numbers(folder, shared_data)


def check_cascade_numbers(folder, shared_data):
    "The cascade built from `folder`'s files reproduces the card's real-clip numbers: au_fa_fr, ROC-AUC and the clips that fire."
    want = json.loads((Path(folder) / "card.json").read_text())["cascade"]["real_clips"]
    assert want, "card.json names no real-clip numbers for the cascade (refreshed without shared data?)"
    cascade, how = load_cascade(folder=folder)
    got = cascade_real_clips(cascade, shared_data, how["thresholds"])
    assert set(got) == set(want), (got.keys(), want.keys())
    for s, w in want.items():
        for k in CARD_KEYS: assert got[s][k] == pytest.approx(w[k], abs=1e-9), ("cascade", s, k, got[s][k], w[k])
        assert got[s]["at"] == w["at"], ("cascade", s, got[s]["at"], w["at"])


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
    # the cascade chapter's choice: "mid" (float) listens, the baseline confirms
    pt = dict(reachable=True, threshold=0.9, frr=0.3, frr_interval=[0.2, 0.4], fa_per_hour=1.0, false_alarms=10, keyword_free_hours=10.0, n_keywords=300)
    (art / "cascade").mkdir()
    (art / "cascade" / "metrics.json").write_text(json.dumps(dict(
        teacher_sha256=file_sha256(art / "baseline" / "checkpoint.pt"), student=dict(name="mid", precision="float", why="a test"),
        listen_mode="stateful", listen_fa_per_hour=100.0, listen_threshold=0.3, wake_s=0.4, choice=dict(smooth_frames=3, refractory_s=0.5),
        bar=0.42, within_bar=True, awake_share_test=0.03, costs={k: dict(total_macs_per_second=v) for k, v in (("cascade", 1e6), ("teacher", 1e7), ("student", 9e5))},
        results=dict(cascade={f"stream_{s}": dict(at={"0.5": pt}) for s in ("val", "test", "real")}))))
    return art


def refresh(*args, env=None):
    code = "from kws_nb.stateful import kws_refresh_pretrained; kws_refresh_pretrained()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=600, env=env)


def test_refresh_writes_refuses_and_loads(artifacts, tmp_path, shared_data):
    dest = tmp_path / "pretrained"
    env = {k: v for k, v in os.environ.items() if k != "KWS_NB_SHARED_DATA"}
    r = refresh("--artifacts", artifacts, "--dest", dest, "--shared-data", shared_data, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "default tiny_int8.kws (verdict.best.name of" in r.stdout, r.stdout
    assert "has no stateful-trained model" in r.stdout, r.stdout          # 06d did not run: the compressed file stays the default
    assert sorted(p.name for p in dest.iterdir()) == ["MODEL_CARD.md", "baseline_float.kws", "card.json", "mid_float.kws", "tiny_int8.kws"]
    card = json.loads((dest / "card.json").read_text())
    assert {k: (f["name"], f["precision"]) for k, f in card["files"].items()} == {"float": ("baseline", "float"), "compressed": ("tiny", "int8"),
                                                                                 "listener": ("mid", "float")}
    assert (card["cascade"]["listen_threshold"], card["cascade"]["fa_per_hour_targets"]["0.5"]["threshold"]) == (0.3, 0.9)
    assert "shipped the cascade: mid_float.kws" in r.stdout and "**The cascade on streams**" in (dest / "MODEL_CARD.md").read_text()
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


@pytest.fixture(scope="module")
def shipped_cascade_card(shipped):
    if "cascade" not in shipped:
        pytest.skip("the shipped card has no cascade: a developer ships one with kws-refresh-pretrained from a run with 06c_cascade")
    return shipped["cascade"]


def test_shipped_cascade_reproduces_its_card(shipped_cascade_card, shared_data):
    check_cascade_numbers(pretrained_dir(), shared_data)


def test_shipped_cascade_spots_real_sheila_with_no_flags(shipped_cascade_card, shared_data):
    "`kws-cascade clip.wav` with no flags runs the shipped cascade at its 0.5 FA/h validation threshold and prints a detection."
    from kws_nb.export import clip_scores
    clips = sorted((shared_data / "speech_commands_v0.01_sample" / "sheila").glob("*.wav"))
    cascade, how = load_cascade()
    scores = clip_scores(cascade, [load_audio(c) for c in clips])
    hits = [c for c, s in zip(clips, scores) if s >= how["thresholds"]["0.5"]]
    print(f"the shipped cascade detects {len(hits)} of {len(clips)} real 'sheila' clips at its 0.5 FA/h threshold")
    assert hits, "the shipped cascade detects none of the real 'sheila' clips at its 0.5 FA/h threshold"
    r = subprocess.run([sys.executable, "-c", "from kws_nb.cascade import kws_cascade; kws_cascade()", str(hits[0])],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "sheila" in r.stdout and "card.json" in r.stderr, r.stderr[-2000:]


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
