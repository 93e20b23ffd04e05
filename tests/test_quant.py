"Integration tests for kws_nb.profiling / kws_nb.quant: MACs float vs int8, bytes, reload in a fresh process, the 06 notebook's run."
import io, json, subprocess, sys, warnings
from pathlib import Path

import pytest
import torch

from kws_nb.data import SpeechCommands, speaker_split
from kws_nb.testing import make_toy_speech_commands
from kws_nb.model import TaskConfig, CRNN
from kws_nb.profiling import macs, size_bytes, num_params, tensor_bytes, latency, step_latency
from kws_nb.quant import quantize, save_quantized, load_quantized, quantized_state_dict
from kws_nb.model import load_checkpoint
from kws_nb.train import evaluate_real, train
from kws_nb.tts import find_engines
from kws_nb.streams import generate_streams, tts_sides

REPO = Path(__file__).resolve().parent.parent
SEED_STUDENT = dict(hidden_size=16, cnn_out_channels=4, kernel_size=(10, 20), stride=(5, 10))
CONFIGS = {"baseline": {}, "seed_student": SEED_STUDENT, "one_layer": dict(SEED_STUDENT, gru_num_layers=1),
           "bidirectional": dict(hidden_size=12, cnn_out_channels=3, bidirectional=True),
           "three_classes": dict(hidden_size=8, cnn_out_channels=2, num_classes=3, n_mels=32, kernel_size=(4, 16), stride=(2, 6))}


def model_of(name, seed=3407):
    torch.manual_seed(seed)
    return CRNN(TaskConfig(**CONFIGS[name])).eval()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_int8_counts_the_same_macs_and_params(name):
    m = model_of(name); q = quantize(m)
    assert macs(q) == macs(m) > 0
    assert num_params(q) == num_params(m) == sum(p.numel() for p in m.parameters())
    assert tensor_bytes(q) < tensor_bytes(m) == 4 * num_params(m)


def test_baseline_reference_numbers():
    m = model_of("baseline")
    assert (macs(m), num_params(m), size_bytes(m)) == (932_928, 70_443, size_bytes(model_of("baseline", seed=0)))
    assert 280_000 < size_bytes(m) < 300_000 and size_bytes(quantize(m)) < size_bytes(m) / 3


def test_profiling_leaves_the_model_as_it_was():
    m = model_of("seed_student")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    b0 = size_bytes(m)
    macs(m); latency(m, batch_sizes=(1,), with_features=(False,), min_run_time=0.01)
    assert size_bytes(m) == b0 and list(m.state_dict()) == list(before)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert not m.training


def test_quantize_warns_nothing_and_keeps_outputs_close():
    m = model_of("baseline")
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # the deprecation notice of torch.ao.quantization is filtered in quantize
        q = quantize(m)
    x = torch.randn(16, 40, 101, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (q(x).softmax(-1) - m(x).softmax(-1)).abs().max() < 0.02


def test_int8_checkpoints_reload_identically_in_a_fresh_process(tmp_path):
    names = ["baseline", "seed_student", "bidirectional", "three_classes"]
    for name in names:
        m = model_of(name); q = quantize(m)
        x = torch.randn(5, m.config.n_mels, 101, generator=torch.Generator().manual_seed(2))
        with torch.no_grad(): torch.save(dict(x=x, y=q(x)), tmp_path / f"{name}_io.pt")
        save_quantized(tmp_path / f"{name}.pt", q, m.config, history=[dict(epoch=1)], extra=dict(name=name))
    code = ("import sys, torch; from kws_nb.quant import load_quantized\n"
            "for name in sys.argv[2:]:\n"
            "    q, c, ck = load_quantized(f'{sys.argv[1]}/{name}.pt'); d = torch.load(f'{sys.argv[1]}/{name}_io.pt')\n"
            "    y = q(d['x']).detach(); assert torch.equal(y, d['y']), (name, (y - d['y']).abs().max())\n"
            "    assert ck['extra']['name'] == name and ck['history'] == [dict(epoch=1)]; print(name, 'same')\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path), *names], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == [w for n in names for w in (n, "same")]


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
def test_int8_file_holds_int8_numbers(tmp_path):
    q = quantize(model_of("seed_student"))
    p = save_quantized(tmp_path / "q.pt", q, q.config)
    sd = quantized_state_dict(q)
    assert {k for k, v in sd.items() if v.dtype == torch.qint8} == {k for k in sd if "weight" in k and not k.startswith("conv")}
    assert p.stat().st_size < size_bytes(model_of("seed_student")) * 1.1   # about the float state dict's size: int8 + container
    with pytest.raises(ValueError, match="missing \\['state_dict'\\]"): load_checkpoint(p)


def test_step_latency_times_a_stepper():
    m = model_of("seed_student")
    calls = []
    class Stepper:
        def step(self, chunk): calls.append(chunk.shape); return m(torch.zeros(1, 40, 101))
    r = step_latency(Stepper(), chunk_samples=1280, min_run_time=0.02)
    assert r["chunk_s"] == 0.08 and r["median_s"] > 0 and calls[0] == (1280,)
    with pytest.raises(TypeError, match="step\\(chunk\\)"): step_latency(42)


def test_int8_on_real_clips_matches_float(shared_data):
    m = model_of("baseline")
    f, q = evaluate_real(m, shared_data), evaluate_real(quantize(m), shared_data)
    for name in f:
        assert q[name]["n"] == f[name]["n"] > 0
        assert abs(q[name]["probs"] - f[name]["probs"]).max() < 0.02


@pytest.fixture(scope="module")
def toy_artifacts(tmp_path_factory):
    "A baseline and one student trained for one epoch on noisy tones, laid out as chapters 03 and 05 write them."
    root = tmp_path_factory.mktemp("quant_run")
    data = make_toy_speech_commands(root / "data", speakers=tuple(f"s{i}" for i in range(6)), per_speaker=2)
    ds = SpeechCommands(data)
    art = root / "artifacts"
    tr, va, te = speaker_split(ds, 0.3, 0.2, csv_path=art / "split.csv")
    train(TaskConfig(num_epochs=1, augment=False), ds, tr, ds, va, art / "baseline", progress=False)
    train(TaskConfig(num_epochs=1, augment=False, **SEED_STUDENT), ds, tr, ds, va, art / "students" / "h16-c4", progress=False)
    eng = find_engines(["espeak"])                            # a few seconds of validation and test streams for the stream benchmark
    generate_streams(root / "streams", tts_sides(eng), {"val": (0.005, 3), "test": (0.005, 3)}, stream_seconds=20.0,
                     engines=["espeak"], noise_seconds=2.0, progress=False)
    (art / "detection").mkdir(parents=True, exist_ok=True)       # the mode and post-processing chapter 04a chooses on validation streams
    (art / "detection" / "metrics.json").write_text(json.dumps(dict(choice=dict(   # ... and the real streams' recipe it scores
        mode="stateful", smooth_frames=3, refractory_s=1.0, max_window_length=None, target=0.5),
        real_streams=dict(seconds=20.0, n=1, keyword_every=8, snr_db=10.0))))
    return root


def test_notebook_real_run_writes_metrics_and_int8_checkpoints(toy_artifacts):
    art, out = toy_artifacts / "artifacts", toy_artifacts / "06.ipynb"
    r = subprocess.run([sys.executable, "-m", "papermill", "06_quantization.ipynb", str(out), "-k", "python3",
                        "-p", "artifacts", str(art), "-p", "data_dir", str(toy_artifacts / "data"), "-p", "stream_dir", str(toy_artifacts / "streams"),
                        "-p", "min_run_time", "0.01", "-p", "latency_repeats", "1"],
                       cwd=REPO / "nbs", capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((art / "quantization" / "metrics.json").read_text())
    assert [(row["name"], row["precision"]) for row in metrics["rows"]] == [
        ("baseline", "float"), ("baseline", "int8"), ("h16-c4", "float"), ("h16-c4", "int8")]
    base, qbase, student = metrics["rows"][:3]
    assert base["macs_ratio"] == 1 and qbase["macs"] == base["macs"] == metrics["reference"]["macs"] == 932_928
    assert qbase["bytes_ratio"] > 3 and student["macs_ratio"] > 10
    assert {l["batch"] for l in base["latency"]} == {1, 128} and set(base["speedup"]) == {"b1", "b1+features", "b128", "b128+features", "step"}
    for name in ("baseline", "h16-c4"):
        q, config, _ = load_quantized(art / "quantization" / name / "checkpoint_int8.pt")
        fmodel = load_checkpoint(art / ("baseline" if name == "baseline" else f"students/{name}") / "checkpoint.pt")[0]
        assert config == fmodel.config and macs(q) == macs(fmodel)
    assert (art / "quantization" / "tradeoff.png").stat().st_size > 0
    for row in metrics["rows"]:                               # every model and precision on the stream benchmark
        assert set(row["stream_test"]["at"]) == {"0.1", "0.5", "1.0"} and row["stream_test"]["n_keywords"] >= 3, row["name"]
