"Real-audio checks of the data layer on the Speech Commands samples in ../shared/data."
import pytest
from kws_nb.data import SpeechCommands, official_split, speaker_split, make_loader


def test_v001_sample_layout(shared_data):
    ds = SpeechCommands(shared_data / "speech_commands_v0.01_sample")
    assert len(ds) == 300 and int(ds.labels.sum()) == 10 and len(ds.background_files) == 6
    assert len(set(ds.words)) == 30 and {ds.words[i] for i in range(len(ds)) if ds.labels[i]} == {"sheila"}
    w, label, word, speaker = ds[0]
    assert w.dtype.is_floating_point and w.ndim == 1 and 0 < w.numel() <= 16000


def test_v001_official_split_matches_lists(shared_data):
    root = shared_data / "speech_commands_v0.01_sample"
    ds = SpeechCommands(root)
    lists = {n: set((root / f"{n}_list.txt").read_text().split()) for n in ("validation", "testing")}
    split = official_split(ds)
    assert sum(len(v) for v in split.values()) == len(ds)
    for i, f in enumerate(ds.files):
        key = f.relative_to(root).as_posix()
        expected = "validation" if key in lists["validation"] else "testing" if key in lists["testing"] else "train"
        assert i in split[expected], key


def test_v001_speaker_split_disjoint_and_repeatable(shared_data, tmp_path):
    ds = SpeechCommands(shared_data / "speech_commands_v0.01_sample")
    sp = speaker_split(ds, seed=3407, csv_path=tmp_path / "split.csv")
    sides = [{ds.speakers[i] for i in s} for s in sp]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2]) and all(sp)
    assert sorted(sp.train + sp.val + sp.test) == list(range(len(ds)))
    again = speaker_split(SpeechCommands(shared_data / "speech_commands_v0.01_sample"), seed=3407)
    assert again == sp
    assert speaker_split(ds, csv_path=tmp_path / "split.csv") == sp


def test_a_real_dataset_never_trains_on_the_evaluation_clips(shared_data, tmp_path):
    "A Speech Commands copy that contains the shared clips (as the full dataset does): they and their speakers are excluded."
    from kws_nb.data import evaluation_overlap
    from kws_nb.testing import make_toy_speech_commands
    full = make_toy_speech_commands(tmp_path / "full", words=("sheila", "yes", "no"), speakers=("aaa", "bbb", "ccc", "ddd"), per_speaker=1)
    real = shared_data / "speech_commands_v0.01_sample"
    picked = sorted((real / "sheila").glob("*.wav"))[:2] + sorted((real / "yes").glob("*.wav"))[:1]
    for p in picked: (full / p.parent.name / p.name).write_bytes(p.read_bytes())          # the evaluation clips, inside
    ds = SpeechCommands(full)
    over = evaluation_overlap(ds, [real, shared_data / "speech_commands_v0.02_toy"])
    names = {ds.files[i].name for i in over}
    assert {p.name for p in picked} <= names and not {"aaa_nohash_0.wav", "bbb_nohash_0.wav"} & names
    sp = speaker_split(ds, 0.2, 0.2, exclude=over)
    assert not set(sp.train + sp.val + sp.test) & over


def test_v002_toy_flattened_names(shared_data):
    ds = SpeechCommands(shared_data / "speech_commands_v0.02_toy")
    assert len(ds) == 350 and int(ds.labels.sum()) == 10 and len(set(ds.words)) == 35
    assert all(len(s) == 8 for s in ds.speakers)     # the 8-hex-digit speaker hashes
    assert ds.files[0].parent.name in {"train", "val", "test"}
    waves, labels = next(iter(make_loader(ds, batch_size=350)))
    assert waves.shape == (350, 16000) and int(labels.sum()) == 10


def test_sparse_log_mel_equals_torchaudio_on_real_clips(shared_data):
    "LogMel's sparse mel step gives torchaudio's dense MelSpectrogram log-mels on real speech and real noise."
    import torch, torchaudio
    from kws_nb.data import LogMel, fit_to_clip, load_audio
    ds = SpeechCommands(shared_data / "speech_commands_v0.01_sample")
    waves = torch.stack([fit_to_clip(ds.wave(i)) for i in range(0, len(ds), 10)])
    noise = torch.stack([load_audio(p)[:48000] for p in ds.background_files if load_audio(p).numel() >= 48000])
    dense = torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_fft=400, win_length=400, hop_length=160, n_mels=40)
    for x in (waves, noise):
        ref = torch.log(dense(x).clamp(min=1e-9))
        got = LogMel()(x)
        assert got.shape == ref.shape
        torch.testing.assert_close(got, ref, atol=1e-4, rtol=0)
