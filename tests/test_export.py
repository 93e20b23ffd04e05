"Integration tests for kws_nb.export: the ONNX step graph in onnxruntime equals the torch streamer for any audio and any chunking (baseline and student shapes); its int8 version keeps the interface and stays close."
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from kws_nb.model import TaskConfig
from kws_nb.testing import sharpened_crnn, bursty_noise
from kws_nb.streaming import StreamingCRNN
from kws_nb.export import OnnxDetector, export_onnx

STUDENT = TaskConfig(hidden_size=16, cnn_out_channels=3, kernel_size=(8, 20), stride=(4, 10), gru_num_layers=1)
# (config, attention window): the baseline shape (2 GRU layers, stride 8) and a student shape (1 layer, stride 10)
SHAPES = {"baseline": (None, 11), "student": (STUDENT, 5)}
INT8_BOUND = 0.1   # |onnxruntime int8 - float| keyword probability on these sharpened random models (rounding, not another model)


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    "{shape: (torch model, window, float ONNX detector, int8 ONNX detector)}."
    d, out = tmp_path_factory.mktemp("onnx"), {}
    for name, (cfg, window) in SHAPES.items():
        m = sharpened_crnn(seed=1, config=cfg)
        out[name] = (m, window, OnnxDetector(export_onnx(m, d / f"{name}.onnx", window)),
                     OnnxDetector(export_onnx(m, d / f"{name}_int8.onnx", window, int8=True)))
    return out


def run_chunks(step, audio, sizes):
    "Feed `audio` to `step` in chunks of `sizes` (cycled); the outputs, concatenated."
    out, i, k = [], 0, 0
    while i < audio.numel():
        n = sizes[k % len(sizes)]; out.append(step(audio[i:i + n])); i += n; k += 1
    return torch.cat(out) if out else torch.zeros(0)


chunk_sizes = st.lists(st.one_of(st.integers(1, 50), st.integers(51, 2000), st.integers(2001, 20000)), min_size=1, max_size=12)


@settings(max_examples=30, deadline=None)
@given(shape=st.sampled_from(sorted(SHAPES)), n=st.integers(0, 24000), seed=st.integers(0, 10**6), sizes=chunk_sizes)
def test_onnxruntime_equals_torch_any_chunking(exported, shape, n, seed, sizes):
    model, window, det, _ = exported[shape]
    x = bursty_noise(n, seed=seed)
    det.reset()
    got, ref = run_chunks(det.step, x, sizes), run_chunks(StreamingCRNN(model, window).step, x, sizes)
    assert got.shape == ref.shape
    assert det.n_outputs == len(ref) and det.n_samples == n
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_one_step_chunks_and_pcm(exported, shape):
    "The one-run path (chunks of exactly one step) and int16 PCM give what the torch streamer gives."
    model, window, det, _ = exported[shape]
    x = bursty_noise(16000 * 3, seed=11)
    S, first = det.step_samples, det.first_output_samples
    for sizes in ([S], [first, S], [first, S, 1, S - 1]):
        det.reset()
        torch.testing.assert_close(run_chunks(det.step, x, sizes), StreamingCRNN(model, window).step(x), atol=1e-4, rtol=0)
    pcm = (x * 32767).round().short()
    det.reset(); a = run_chunks(det.step, pcm, [first, S])
    torch.testing.assert_close(a, StreamingCRNN(model, window).step(pcm), atol=1e-4, rtol=0)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_int8_onnx_keeps_the_interface_and_stays_close(exported, shape):
    model, window, det, det8 = exported[shape]
    assert (det8.keyword, det8.sample_rate, det8.step_samples) == (det.keyword, det.sample_rate, det.step_samples)
    for seed, sizes in ((3, [1600]), (4, [1, 777, 5000]), (5, [det8.step_samples])):
        x = bursty_noise(16000 * 4, seed=seed)
        det.reset(); det8.reset()
        p, p8 = run_chunks(det.step, x, sizes), run_chunks(det8.step, x, sizes)
        assert p8.shape == p.shape and p8.dtype == torch.float32 and bool(torch.isfinite(p8).all())
        diff = float((p8 - p).abs().max())
        assert 0 < diff < INT8_BOUND, diff                                   # int8 rounding moves the outputs, a little
        torch.testing.assert_close(det8.output_times(0, len(p8)), det.output_times(0, len(p)))
        det8.reset(); assert torch.equal(run_chunks(det8.step, x, sizes), p8)   # reset: a fresh stream, the same numbers
    state = {k: v.copy() for k, v in det8.state.items()}
    with pytest.raises(ValueError, match="1 NaN or infinite sample"): det8.step(torch.tensor([0.0, float("inf")]))
    assert all(np.array_equal(state[k], v) for k, v in det8.state.items())
