"""AudioClipDataset, sampling, resampling, HDF5 reading, cache, collation and the loader."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from arinext.audio import LogMel, get_preset
from arinext.audio.augment import SpecAugment
from arinext.data import (
    AudioClipDataset,
    BadClipReport,
    ClipRecord,
    collate_clips,
    fit_frames,
    frame_crop,
    get_manifest,
    make_loader,
    pad_waveform_edge,
    plan_crops,
)

from .test_data_fakes import make_epic, make_speech_commands, make_urbansound8k, write_audio

SC = get_preset("speech_commands_v2")  # 16 kHz, 1.023 s -> 512 frames


@pytest.mark.parametrize("name", ["vggsound", "epic_sounds", "speech_commands_v2", "urbansound8k", "nsynth"])
def test_crop_gives_exactly_num_frames(name):
    fe = get_preset(name)
    ((_, n),) = plan_crops(10 * fe.clip_samples, fe.clip_samples, training=False)
    assert fe.frames_for(n) == fe.num_frames  # e.g. 5.119 s at 16 kHz: 81903 samples -> 512 frames


def test_plan_crops_test_views_uniform_and_training_random():
    views = plan_crops(1000, 100, training=False, views=5)
    assert [o for o, _ in views] == [0, 225, 450, 675, 900] and {n for _, n in views} == {99}
    g = torch.Generator().manual_seed(0)
    starts = [plan_crops(1000, 100, training=True, generator=g)[0][0] for _ in range(300)]
    assert min(starts) >= 0 and max(starts) <= 900 and len(set(starts)) > 100
    assert plan_crops(50, 100, training=True, views=2) == [(0, 50), (0, 50)]  # short: whole segment
    with pytest.raises(ValueError):
        plan_crops(0, 100, training=True)


def test_fit_frames_edge_pads_and_trims():
    spec = torch.arange(6.0).reshape(1, 3, 2)
    out = fit_frames(spec, 5)
    assert out.shape == (1, 5, 2) and torch.equal(out[0, 3:], spec[0, 2:].expand(2, 2))
    assert torch.equal(fit_frames(spec, 2), spec[:, :2])
    assert pad_waveform_edge(np.array([1.0, 2.0]), 4).tolist() == [1.0, 2.0, 2.0, 2.0]
    assert frame_crop(torch.arange(20.0).reshape(10, 2), 4 * 3, 4, 2).tolist() == [[6.0, 7.0], [8.0, 9.0]]


def test_dataset_training_and_test_views(tmp_path):
    path = write_audio(tmp_path / "a.wav", seconds=2.0)
    recs = [ClipRecord(str(path), 4)]
    train = AudioClipDataset(recs, SC, training=True, spec_augment=SpecAugment())
    item = train[0]
    assert item["inputs"].shape == (1, 512, 128) and item["target"] == 4 and item["index"] == 0
    assert torch.equal(train[0]["inputs"], item["inputs"])  # seeded per (seed, epoch, index)
    train.set_epoch(1)
    assert not torch.equal(train[0]["inputs"], item["inputs"])
    test = AudioClipDataset(recs, SC, training=False, views=3)
    x = test[0]["inputs"]
    assert x.shape == (3, 1, 512, 128)
    # view 0 starts at the clip start: same as featurizing the first crop directly
    ref = LogMel(SC)(torch.from_numpy(sf.read(path, dtype="float32")[0][: SC.clip_samples - 1]))[0]
    torch.testing.assert_close(x[0], ref)
    assert not torch.equal(x[0], x[2])


def test_short_clip_padding_frames_vs_waveform(tmp_path):
    path = write_audio(tmp_path / "short.wav", seconds=0.3)
    for pad_mode in ("frames", "waveform"):
        x = AudioClipDataset([ClipRecord(str(path), 0)], SC, training=False, pad_mode=pad_mode)[0]["inputs"]
        assert x.shape == (1, 512, 128) and torch.isfinite(x).all()
        if pad_mode == "frames":  # edge-padded frames: the tail repeats the last real frame
            assert torch.equal(x[0, -1], x[0, -50])
    wave = AudioClipDataset([ClipRecord(str(path), 0)], SC, training=False, features=False)[0]["inputs"]
    assert wave.shape == (1, SC.clip_samples - 1) and wave[0, -1] == wave[0, 4799]


def test_resampling_and_downmix_from_manifest(tmp_path):
    # UrbanSound8K fakes are 44.1 kHz stereo: converted to the preset's 16 kHz mono.
    root = make_urbansound8k(tmp_path)
    m = get_manifest("urbansound8k", root, "testing", fold=1)
    ds = AudioClipDataset(m, get_preset("urbansound8k"), training=False, features=False)
    wave = ds[0]["inputs"]
    assert wave.shape == (1, get_preset("urbansound8k").clip_samples - 1)
    n = round(0.3 * 16000)
    assert torch.all(wave[0, n + 5 :] == wave[0, -1])  # waveform edge padding (UrbanSound8K rule)
    spec = AudioClipDataset(m, get_preset("urbansound8k"), training=False)[0]["inputs"]
    assert spec.shape == (1, 416, 128)


def test_flac_speech_commands_through_loader(tmp_path):
    root = make_speech_commands(tmp_path, ".flac")
    ds = AudioClipDataset(get_manifest("speech_commands_v2", root, "training"), SC, training=True)
    batch = next(iter(make_loader(ds, batch_size=4, shuffle=True, num_workers=0)))
    assert batch["inputs"].shape == (4, 1, 512, 128) and batch["target"].dtype == torch.long
    assert batch["bad"] == [] and batch["index"].shape == (4,)


def test_hdf5_segments_multihead_and_workers(tmp_path):
    pytest.importorskip("h5py")
    root = make_epic(tmp_path)
    fe = get_preset("epic_kitchens_100")
    ds = AudioClipDataset(get_manifest("epic_kitchens_100", root, "training"), fe, training=False, views=2)
    loader = make_loader(ds, batch_size=2, shuffle=False, num_workers=2)
    batch = next(iter(loader))
    assert batch["inputs"].shape == (2, 2, 1, 416, 128)
    assert batch["target"]["verb"].tolist() == [3, 2] and batch["target"]["noun"].tolist() == [0, 13]
    # the 0.9 s segment is shorter than the 2.079 s crop: both views are the padded segment
    assert torch.equal(batch["inputs"][1, 0], batch["inputs"][1, 1])
    sounds = AudioClipDataset(get_manifest("epic_sounds", root, "training"), get_preset("epic_sounds"), training=True)
    assert sounds[1]["inputs"].shape == (1, 416, 128)


def test_hdf5_missing_key_is_a_decode_error(tmp_path):
    pytest.importorskip("h5py")
    root = make_epic(tmp_path)
    rec = ClipRecord(str(root / "EPIC-KITCHENS-100_audio.hdf5"), 0, start=0.0, end=1.0, key="P99_99")
    item = AudioClipDataset([rec], get_preset("epic_sounds"), training=True)[0]
    assert item["inputs"] is None and "[P99_99]" in item["error"] and "no such dataset" in item["error"]


def test_multilabel_targets_collate_to_multihot(tmp_path):
    p = write_audio(tmp_path / "a.wav", seconds=0.2)
    ds = AudioClipDataset([ClipRecord(str(p), (0, 2)), ClipRecord(str(p), (1,), start=0.05)], SC, training=False,
                          num_classes=3)  # fmt: skip
    batch = collate_clips([ds[0], ds[1]])
    assert batch["target"].tolist() == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


def test_feature_cache_written_once_and_reused(tmp_path):
    path = write_audio(tmp_path / "a.wav", seconds=2.0)
    recs = [ClipRecord(str(path), 1), ClipRecord(str(tmp_path / "gone.wav"), 0)]
    ds = AudioClipDataset(recs, SC, training=False, views=2, cache_dir=tmp_path / "cache", on_bad_clip="skip")
    report = ds.fill_cache()
    assert report.count == 1 and "gone.wav" in report.summary()
    files = list((tmp_path / "cache").rglob("*.npy"))
    assert len(files) == 1
    full = np.load(files[0], mmap_mode="r")
    assert full.shape == (SC.frames_for(32000), 128)
    cached = ds[0]["inputs"]
    mtime = files[0].stat().st_mtime_ns
    assert cached.shape == (2, 1, 512, 128)
    # Cached crops start on the hop grid (view 1: sample 15632 -> frame 488 = sample 15616). Interior
    # frames equal those of the crop featurized alone; only border frames see neighbouring audio.
    wave = torch.from_numpy(sf.read(path, dtype="float32")[0])
    for view, first in enumerate((0, 488 * SC.hop_length)):
        alone = LogMel(SC)(wave[first : first + SC.clip_samples - 1])[0]
        torch.testing.assert_close(cached[view, :, 40:-40], alone[:, 40:-40], atol=1e-3, rtol=1e-4)
    assert files[0].stat().st_mtime_ns == mtime  # read, not rewritten
    with pytest.raises(ValueError, match="cannot be combined"):
        AudioClipDataset(recs, SC, training=True, cache_dir=tmp_path / "c2", features=False)


def test_bad_clip_report_summary():
    r = BadClipReport(max_shown=2)
    assert r.summary() == ""
    r.update({"bad": ["a.wav: empty file (0 bytes)", "b.wav: file not found"], "inputs": None})
    r.update(["c.wav: zero-length audio"])
    assert r.count == 3
    assert r.summary() == "3 bad clips skipped: a.wav: empty file (0 bytes); b.wav: file not found (+1 more)"
    r.reset()
    assert r.count == 0


def test_collate_all_bad_batch():
    batch = collate_clips([{"inputs": None, "error": "x.wav: file not found", "index": 3}])
    assert batch["inputs"] is None and batch["bad"] == ["x.wav: file not found"] and batch["index"].numel() == 0
