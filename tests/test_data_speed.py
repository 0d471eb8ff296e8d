"""The fast data path gives the plain path's data: persistent workers see every epoch, the waveform cache
serves the decoded samples, and the trainer reports the time with no batch at each epoch start."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from arinext.audio import get_preset
from arinext.audio.augment import SpecAugment
from arinext.data import AudioClipDataset, ClipRecord, make_loader
from arinext.data.waveforms import WaveformCache, attach_waveform_cache, estimate_decoded_bytes
from arinext.train import load_config
from arinext.train.trainer import fit

from .test_data_fakes import make_speech_commands, write_audio

FE = get_preset("speech_commands_v2", clip_seconds=0.25, num_frames=126)


def _noisy(path, seconds, sr, channels, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((int(seconds * sr), channels)).astype(np.float32) * 0.1
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x if channels > 1 else x[:, 0], sr)
    return str(path)


def _records(tmp_path):
    return [  # at the model's rate, resampled (stereo 22.05 kHz), and a segment inside a file
        ClipRecord(_noisy(tmp_path / "a.wav", 0.7, 16000, 1, 0), 0),
        ClipRecord(_noisy(tmp_path / "b.wav", 0.9, 22050, 2, 1), 1),
        ClipRecord(_noisy(tmp_path / "c.flac", 1.5, 16000, 1, 2), 0, start=0.3, end=1.1),
        ClipRecord(_noisy(tmp_path / "d.wav", 0.1, 16000, 1, 3), 1),  # shorter than the crop
    ]


def _items(ds, epochs=(0, 1)):
    out = []
    for e in epochs:
        ds.set_epoch(e)
        out.append([ds[i]["inputs"] for i in range(len(ds))])
    return out


@pytest.mark.parametrize("training", [True, False])
def test_waveform_cache_gives_the_decoded_samples(tmp_path, training):
    recs = _records(tmp_path)
    kwargs = dict(training=training, views=1 if training else 3, spec_augment=SpecAugment() if training else None)
    plain = AudioClipDataset(recs, FE, **kwargs)
    cached = AudioClipDataset(recs, FE, **kwargs)
    cache = attach_waveform_cache([cached], enabled=True)
    assert cache is not None and cached.waveform_cache is cache
    assert cache.cached_files() == 0, "nothing is decoded before the clips are read"
    for a, b in zip(_items(plain), _items(cached)):
        for x, y in zip(a, b):
            assert torch.equal(x, y)
    assert cache.cached_files() == 4  # filled by the first reads
    # the cache is really read (not the file): overwrite what it holds and the features change
    cache.buffer.zero_()
    assert not torch.equal(cached[0]["inputs"], plain[0]["inputs"])


def test_waveform_cache_read_matches_load_audio_and_errors(tmp_path):
    from arinext.audio.io import AudioDecodeError, load_audio

    path = _noisy(tmp_path / "s.wav", 1.0, 44100, 2, 5)
    samples, rate = load_audio(path)
    cache = WaveformCache(1, samples.nbytes)
    for start, end, sr in ((0.1, 0.6, 16000), (None, None, 44100), (0.25, 2.0, 22050)):
        assert np.array_equal(cache.read(0, path, start, end, sr), load_audio(path, sr, start, end)[0])
    assert cache.cached_files() == 1 and cache.nbytes == samples.nbytes
    with pytest.raises(AudioDecodeError, match="holds no samples"):
        cache.read(0, path, 1.5, 2.0, 16000)
    out = cache.read(0, path, None, None, 44100)
    out[:] = 0  # callers may modify their crop: the cache must not change
    assert np.array_equal(cache.read(0, path, None, None, 44100), samples)


def test_waveform_cache_is_filled_lazily_not_before_training(tmp_path, monkeypatch):
    """Issue: data.cache_waveforms=true decoded every file before the first step (98k files in 146 s)."""
    import arinext.data.waveforms as waveforms

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a file while attaching the cache")

    recs = _records(tmp_path)
    ds = AudioClipDataset(recs, FE, training=False)
    monkeypatch.setattr(waveforms, "load_audio", no_decoding)
    cache = attach_waveform_cache([ds], enabled=True, limit_mb=64)
    assert cache is not None and cache.cached_files() == 0 and cache.nbytes == 0
    assert cache.capacity < 64 * 2**20, "the buffer is sized to the dataset's estimated decoded size"


def test_waveform_cache_size_limit_and_automatic_mode(tmp_path):
    recs = _records(tmp_path)
    paths = [r.path for r in recs]
    est = estimate_decoded_bytes(paths)
    assert 0.9 * 4 * (0.7 + 1.5 + 0.1) * 16000 < est < 4 * 4 * 44100  # header-based, order of magnitude
    ds = AudioClipDataset(recs, FE, training=False)
    assert attach_waveform_cache([ds], enabled=None, limit_mb=est / 2**20 / 10) is None  # does not fit: off
    assert ds.waveform_cache is None
    assert attach_waveform_cache([ds], enabled=False) is None
    bound = 0.7 * 16000 * 4 * 1.01
    small = attach_waveform_cache([ds], enabled=True, limit_mb=bound / 2**20)
    plain = AudioClipDataset(recs, FE, training=False)
    for i in range(len(recs)):
        assert torch.equal(ds[i]["inputs"], plain[i]["inputs"])
    assert small is not None and small.cached_files() == 1 and small.nbytes <= bound  # the rest from disk
    assert small.full


def test_waveform_cache_is_shared_by_workers_and_bounded(tmp_path):
    """Loader workers fill one cache: the main process sees what they stored, the bound holds for all of them,
    and an unreadable file stays out of it and is reported as without the cache."""
    recs = _records(tmp_path) * 3
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    recs.append(ClipRecord(str(tmp_path / "bad.wav"), 0))
    ds = AudioClipDataset(recs, FE, training=False, on_bad_clip="skip")
    bound = (0.7 + 1.5) * 16000 * 4 + 0.9 * 22050 * 4 + 100  # room for three of the four good files
    cache = attach_waveform_cache([ds], enabled=True, limit_mb=bound / 2**20)
    loader = make_loader(ds, 2, shuffle=False, num_workers=2, persistent_workers=True)
    for _ in range(2):
        batches = list(loader)
    assert cache is not None and cache.nbytes <= cache.capacity <= bound
    assert 1 <= cache.cached_files() <= 3, "filled by the workers, seen here"
    plain = AudioClipDataset(recs, FE, training=False, on_bad_clip="skip")
    got = torch.cat([b["inputs"] for b in batches if b["inputs"] is not None])
    assert torch.equal(got, torch.stack([plain[i]["inputs"] for i in range(len(recs) - 1)]))
    assert batches[-1]["bad"] == [plain[len(recs) - 1]["error"]]


def test_persistent_workers_see_every_epoch(tmp_path):
    recs = _records(tmp_path) * 2
    ds = AudioClipDataset(recs, FE, training=True, spec_augment=SpecAugment())
    attach_waveform_cache([ds], enabled=True)
    loader = make_loader(ds, 2, shuffle=False, num_workers=2, persistent_workers=True)
    assert loader.persistent_workers
    seen = []
    for epoch in range(3):
        ds.set_epoch(epoch)
        seen.append(torch.cat([b["inputs"] for b in loader]))
        workers = loader._iterator._workers  # the same processes serve every epoch
        if epoch == 0:
            first_workers = [w.pid for w in workers]
        assert [w.pid for w in workers] == first_workers
    reference = AudioClipDataset(recs, FE, training=True, spec_augment=SpecAugment())
    for epoch in range(3):
        reference.set_epoch(epoch)
        expected = torch.stack([reference[i]["inputs"] for i in range(len(recs))])
        assert torch.equal(seen[epoch], expected), epoch  # the workers used this epoch's crops and masks
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])


def test_epoch_reaches_workers_only_through_shared_memory(tmp_path):
    """The trap the shared epoch avoids: a plain attribute set in the main process stays behind in
    persistent workers, which then repeat epoch 0's crops forever."""

    class PlainEpoch(AudioClipDataset):
        def set_epoch(self, epoch: int) -> None:
            self.__dict__["plain_epoch"] = epoch

        def _generator(self, index: int) -> torch.Generator:
            return torch.Generator().manual_seed(1000 * self.__dict__.get("plain_epoch", 0) + index)

    recs = _records(tmp_path)
    ds = PlainEpoch(recs, FE, training=True, spec_augment=SpecAugment())
    loader = make_loader(ds, 2, shuffle=False, num_workers=1, persistent_workers=True)
    batches = []
    for epoch in range(2):
        ds.set_epoch(epoch)
        batches.append(torch.cat([b["inputs"] for b in loader]))
    assert torch.equal(batches[0], batches[1])


def test_trainer_logs_time_to_first_batch_and_caches(tmp_path):
    root = make_speech_commands(tmp_path / "sc")
    cfg = load_config({
        "model": "audio_rep_inception_next_tiny",
        "data": {"dataset": "speech_commands_v2", "root": str(root), "batch_size": 4, "num_workers": 1,
                 "frontend": {"num_frames": 32, "clip_seconds": 0.5, "n_mels": 32}},
        "optim": {"epochs": 2, "lr_steps": [], "lr_factors": []},
        "device": "cpu", "export_pretrained": False,
    })  # fmt: skip
    result = fit(cfg, tmp_path / "run", progress=False)
    for row in result.history:
        assert 0 < row["train_first_batch_s"] <= row["train_data_wait_s"] + 1e-9
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()[0]
    assert "train_first_batch_s" in log and "train_data_wait_s" in log


def test_data_config_waveform_keys():
    cfg = load_config({"data": {"cache_waveforms": True, "waveform_cache_mb": 64}})
    assert cfg.data.cache_waveforms is True and cfg.data.waveform_cache_mb == 64.0
    assert load_config({}).data.cache_waveforms is None
    with pytest.raises(ValueError, match="waveform_cache_mb"):
        load_config({"data": {"waveform_cache_mb": -1}})


def test_feature_cache_is_bounded_and_its_size_estimated_before_filling(tmp_path, caplog):
    """Issue: the feature cache had no bound and no estimate (about 100 GB for VGG-Sound)."""
    from types import SimpleNamespace

    from arinext.data.cache import estimate_feature_bytes
    from arinext.train.clip_checks import plan_feature_cache
    from arinext.train.config import DataConfig

    recs = _records(tmp_path)
    full = AudioClipDataset(recs, FE, training=False, cache_dir=tmp_path / "all")
    estimate = estimate_feature_bytes(full.records, FE)
    assert not list((tmp_path / "all").rglob("*.npy")), "estimated without writing"
    full.fill_cache()
    written = sum(p.stat().st_size for p in (tmp_path / "all").rglob("*.npy"))
    assert 0.9 * written < estimate < 1.1 * written
    bound = written // 2
    half = AudioClipDataset(recs, FE, training=False, cache_dir=tmp_path / "half", cache_max_bytes=bound)
    for i in range(len(recs)):  # beyond the bound the features are computed, the same as cached ones
        assert torch.equal(half[i]["inputs"], full[i]["inputs"])
    kept = sum(p.stat().st_size for p in (tmp_path / "half").rglob("*.npy"))
    assert 0 < kept <= bound and half.cache.full and half.cache.nbytes <= bound
    with caplog.at_level("INFO", logger="arinext"):
        plan_feature_cache(DataConfig(feature_cache_gb=bound / 2**30), [SimpleNamespace(dataset=full)])
        assert "WARNING" not in caplog.text and " for 4 clips" in caplog.text  # all of it is there
        caplog.clear()
        plan_feature_cache(DataConfig(feature_cache_gb=bound / 2**30), [SimpleNamespace(dataset=half)])
    warning = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warning) == 1 and "% of the clips will be cached, the rest computed every epoch" in warning[0]
