"Integration tests for kws_nb.model / kws_nb.train: metrics vs brute force, determinism, resume, checkpoints, real audio."
import json, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from kws_nb.data import SpeechCommands, speaker_split
from kws_nb.model import TaskConfig, CRNN, count_parameters, load_checkpoint, save_checkpoint
from kws_nb.metrics import au_fa_fr, roc_auc, frr_at_far, threshold_at_far, rates_at_threshold
from kws_nb.testing import make_toy_speech_commands
from kws_nb.train import train, evaluate, evaluate_real, REAL_SETS

REPO = Path(__file__).resolve().parent.parent
METRIC_KEYS = ("train_loss", "val_loss", "val_au_fa_fr", "val_roc_auc")


def au_fa_fr_course(probs, labels):
    "The course's loop: thresholds = sorted probs with 0 and 1, FA and FR divided by the total N, trapezoid FR over FA."
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    fas, frs = [], []
    for t in np.concatenate(([0.0], np.sort(probs), [1.0])):
        preds = (probs >= t).astype(int)
        fas.append(preds[labels == 0].sum() / len(labels))
        frs.append(labels[preds == 0].sum() / len(labels))
    fas, frs = np.array(fas), np.array(frs)
    return -np.sum((fas[1:] - fas[:-1]) * (frs[1:] + frs[:-1]) / 2)


clip_scores = st.lists(st.tuples(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]) | st.floats(0, 1), st.integers(0, 1)),
                       min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(clip_scores)
def test_au_fa_fr_matches_course_loop(pairs):
    probs, labels = zip(*pairs)
    assert au_fa_fr(probs, labels) == pytest.approx(au_fa_fr_course(probs, labels), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(clip_scores, st.floats(0, 1))
def test_roc_auc_and_calibration(pairs, far):
    probs, labels = map(np.array, zip(*pairs))
    if 0 < labels.sum() < len(labels):
        d = probs[labels == 1][:, None] - probs[labels == 0][None, :]
        assert roc_auc(probs, labels) == pytest.approx(((d > 0) + 0.5 * (d == 0)).mean(), abs=1e-12)
    if (labels == 0).any():
        t = threshold_at_far(probs, labels, far)
        assert rates_at_threshold(probs, labels, t)["far"] <= far + 1e-12
        assert 0 <= frr_at_far(probs, labels, far) <= 1 or labels.sum() == 0


def test_au_fa_fr_scales_to_large_sets():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200_000); p = np.round(rng.random(200_000) * 0.7 + 0.3 * y, 3)
    assert 0 < au_fa_fr(p, y) < 0.25


def test_crnn_size_and_input_checks():
    model = CRNN(TaskConfig())
    assert count_parameters(model) == 70_443
    assert model(torch.randn(2, 40, 101)).shape == (2, 2)
    with pytest.raises(ValueError, match="at least 20 frames"):
        model(torch.randn(2, 40, 10))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = make_toy_speech_commands(tmp_path_factory.mktemp("toy") / "sc", speakers=[f"s{i}" for i in range(8)], per_speaker=2)
    ds = SpeechCommands(root)
    tr, va, _ = speaker_split(ds, val_fraction=0.25, test_fraction=0.0)
    return ds, tr, va


def _metrics(history):
    return [[row[k] for k in METRIC_KEYS] for row in history]


def test_same_seed_same_metrics_on_cpu(toy, tmp_path):
    ds, tr, va = toy
    # every augmentation on (noise, gain, shift, reverb, channel, SpecAugment) so their seeding is covered too
    cfg = TaskConfig(num_epochs=1, batch_size=8, reverb_p=0.5, channel_p=0.5)
    m1, h1 = train(cfg, ds, tr, ds, va, tmp_path / "a", device="cpu", progress=False)
    m2, h2 = train(cfg, ds, tr, ds, va, tmp_path / "b", device="cpu", progress=False)
    assert _metrics(h1) == _metrics(h2)
    for k, v in m1.state_dict().items(): assert torch.equal(v, m2.state_dict()[k]), k
    _, h3 = train(TaskConfig(**{**cfg.asdict(), "seed": 1}), ds, tr, ds, va, tmp_path / "c", device="cpu", progress=False)
    assert _metrics(h3) != _metrics(h1)


def test_resume_matches_uninterrupted_run(toy, tmp_path):
    ds, tr, va = toy
    cfg = TaskConfig(num_epochs=2, batch_size=8)
    full, h_full = train(cfg, ds, tr, ds, va, tmp_path / "full", device="cpu", progress=False)
    train(TaskConfig(**{**cfg.asdict(), "num_epochs": 1}), ds, tr, ds, va, tmp_path / "part", device="cpu", progress=False)
    resumed, h_res = train(cfg, ds, tr, ds, va, tmp_path / "part", resume=tmp_path / "part" / "last.pt",
                           device="cpu", progress=False)
    assert _metrics(h_res) == _metrics(h_full)
    for k, v in full.state_dict().items(): assert torch.equal(v, resumed.state_dict()[k]), k
    model, config, ckpt = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    assert config == cfg and len(ckpt["history"]) == 2 and ckpt["extra"]["epoch"] in (1, 2)
    assert evaluate(model, ds, va)["n"] == len(va)


RESUME_SCRIPT = """
import json, sys
from kws_nb.data import SpeechCommands, speaker_split
from kws_nb.model import TaskConfig
from kws_nb.train import train
root, out, epochs, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), (sys.argv[4] if len(sys.argv) > 4 else None)
ds = SpeechCommands(root, cache=True)
tr, va, _ = speaker_split(ds, val_fraction=0.25, test_fraction=0.0)
_, history = train(TaskConfig(num_epochs=epochs, batch_size=8), ds, tr, ds, va, out, resume=resume, device="cpu", progress=False)
print(json.dumps(history))
"""


def test_resume_in_a_fresh_process_with_the_clip_cache(toy, tmp_path):
    "Stopped after epoch 1 and resumed in a new process (cache empty again): the same run as one uninterrupted cached run."
    ds, _, _ = toy
    (tmp_path / "run.py").write_text(RESUME_SCRIPT)
    def run(*args):
        r = subprocess.run([sys.executable, str(tmp_path / "run.py"), str(ds.root), *map(str, args)],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        return json.loads(r.stdout.strip().splitlines()[-1])
    full = run(tmp_path / "full", 2)
    run(tmp_path / "part", 1)
    resumed = run(tmp_path / "part", 2, tmp_path / "part" / "last.pt")
    assert _metrics(resumed) == _metrics(full)
    a, b = (torch.load(tmp_path / p / "last.pt", weights_only=True)["state_dict"] for p in ("full", "part"))
    for k, v in a.items(): assert torch.equal(v, b[k]), k


def test_checkpoint_config_mismatch_is_named(tmp_path):
    cfg = TaskConfig(cnn_out_channels=4)
    path = save_checkpoint(tmp_path / "c.pt", CRNN(cfg), cfg, [])
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["cnn_out_channels"] = 8
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"conv\.0\.weight: checkpoint \(4, 1, 5, 20\), config gives \(8, 1, 5, 20\)"):
        load_checkpoint(tmp_path / "bad.pt")
    ckpt["config"]["cnn_out_chanels"] = 4
    torch.save(ckpt, tmp_path / "typo.pt")
    with pytest.raises(ValueError, match="cnn_out_chanels"):
        load_checkpoint(tmp_path / "typo.pt")


def test_evaluate_real_counts_every_clip(shared_data):
    torch.manual_seed(0)
    real = evaluate_real(CRNN(TaskConfig()), shared_data, thresholds={"half": 0.5})
    assert set(real) == set(REAL_SETS)
    assert (real["speech_commands_v0.01_sample"]["n"], real["speech_commands_v0.02_toy"]["n"]) == (300, 350)
    for r in real.values():
        assert r["n_keyword"] == 10 and 0 <= r["roc_auc"] <= 1
        op = r["at"]["half"]
        assert sum(op["false_alarm_words"].values()) == op["false_alarms"]


def test_notebook_runs_on_a_toy_dataset(tmp_path):
    pm = pytest.importorskip("papermill")
    root = make_toy_speech_commands(tmp_path / "sc", speakers=[f"s{i}" for i in range(10)], per_speaker=2)
    art = tmp_path / "art"
    pm.execute_notebook(str(REPO / "nbs" / "03_train.ipynb"), str(tmp_path / "out.ipynb"), cwd=str(REPO / "nbs"),
                        kernel_name="python3", progress_bar=False,
                        parameters=dict(artifacts=str(art), data_dir=str(root), num_epochs=1, max_train_clips=30,
                                        window_positives=0, window_negatives=0, n_seeds=2))   # clips only: no streams here
    for name in ("checkpoint.pt", "metrics.json", "training_curves.png"):
        assert (art / "baseline" / name).exists(), name
    assert (art / "split.csv").exists()                      # the run's split (written here when the streams chapter did not run)
    m = json.loads((art / "baseline" / "metrics.json").read_text())
    assert m["n_train"] == 30 and len(m["history"]) == 1
    assert m["test"]["n"] == m["split"]["test"]["clips"] > 0                      # reported on the held-out test split
    assert m["test"]["at_threshold"]["threshold"] == m["validation"]["threshold"]  # at the threshold validation chose
    assert not m["stream_training"] and m["rounds"] == [] and m["ablations"] == {}
    assert [r["seed"] for r in m["seeds"]["runs"]] == [3407, 3408]
    load_checkpoint(art / "baseline" / "checkpoint.pt")
