"""``data.features: device``: the workers only decode and crop, the device computes the same log-mels and
SpecAugment a batch at a time, for training, Precise-BN and multi-view evaluation."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from arinext.audio import get_preset
from arinext.audio.augment import BackgroundNoise, SpecAugment
from arinext.audio.io import AudioDecodeError
from arinext.data import AudioClipDataset, ClipRecord, collate_clips, make_loader
from arinext.data.batch_features import BatchFeatures, FeatureLoader
from arinext.train import fit, load_config
from arinext.utils.errors import ConfigError

# 0.319 s at 16 kHz, 10 ms hop: 5103 samples -> 32 frames; a small FFT keeps the test fast
FE = get_preset("vggsound", clip_seconds=0.319, num_frames=32, n_mels=32, n_fft=512)
TIGHT = dict(rtol=1e-5, atol=1e-5)  # batched vs one-clip STFT and matrix product: float rounding only

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _noisy(path, seconds, sr, channels=1, seed=0, freq=440.0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.05 * rng.standard_normal((len(t), channels)) + 0.2 * np.sin(2 * np.pi * freq * t)[:, None]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32) if channels > 1 else x[:, 0].astype(np.float32), sr)
    return str(path)


@pytest.fixture
def records(tmp_path):
    return [
        ClipRecord(_noisy(tmp_path / "a.wav", 0.7, 16000, seed=0), 0),  # longer than the crop
        ClipRecord(_noisy(tmp_path / "b.wav", 0.9, 22050, 2, seed=1), 1),  # resampled, down-mixed
        ClipRecord(_noisy(tmp_path / "c.flac", 1.5, 16000, seed=2), 0, start=0.3, end=1.1),  # a segment
        ClipRecord(_noisy(tmp_path / "d.wav", 0.12, 16000, seed=3), 1),  # shorter than the crop: padded
    ]


def _both(records, **kwargs):
    worker = AudioClipDataset(records, FE, **kwargs)
    device = AudioClipDataset(records, FE, features="device", **kwargs)
    return worker, device, BatchFeatures.for_dataset(device)


def _compare(worker, device, features, epochs=(0, 1)):
    n = len(worker)
    for epoch in epochs:
        worker.set_epoch(epoch)
        device.set_epoch(epoch)
        expected = torch.stack([worker[i]["inputs"] for i in range(n)])
        batch = collate_clips([device[i] for i in range(n)])
        got = features(batch)["inputs"]
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, **TIGHT)
    return expected


def test_training_crops_noise_and_spec_augment_match_the_worker_path(records):
    noise = BackgroundNoise([np.random.default_rng(9).standard_normal(16000).astype(np.float32)], 16000, p=1.0)
    worker, device, features = _both(records, training=True, spec_augment=SpecAugment(), waveform_transform=noise)
    item = device[3]
    assert item["inputs"].shape == (1, FE.clip_samples - 1) and int(item["frames"]) == FE.frames_for(1920)
    assert item["spec_augment"].shape == (SpecAugment().num_params,)
    augmented = _compare(worker, device, features)
    # SpecAugment really masked: without it the same crops and noise give other maps
    plain = AudioClipDataset(records, FE, training=True, waveform_transform=noise)
    plain.set_epoch(1)
    assert not torch.allclose(augmented, torch.stack([plain[i]["inputs"] for i in range(len(plain))]))


@pytest.mark.parametrize("pad_mode", ["frames", "waveform"])
def test_multi_view_test_crops_match_the_worker_path(records, pad_mode):
    worker, device, features = _both(records, training=False, views=3, pad_mode=pad_mode)
    assert "spec_augment" not in device[0] and device[0]["frames"].shape == (3,)
    maps = _compare(worker, device, features, epochs=(0,))
    assert maps.shape == (4, 3, 1, 32, 32)
    short = maps[3, 0, 0]
    if pad_mode == "frames":  # edge-padded frames: the tail repeats the short clip's last frame
        assert torch.equal(short[-1], short[FE.frames_for(1920) - 1])


def test_feature_loader_gives_the_worker_loader_batches(records):
    worker, device, features = _both(records, training=True, spec_augment=SpecAugment())
    a = list(make_loader(worker, 2, shuffle=True, num_workers=0, seed=3))
    loader = FeatureLoader(make_loader(device, 2, shuffle=True, num_workers=0, seed=3), features, "cpu")
    b = list(loader)
    assert len(loader) == 2 and loader.dataset is device
    for x, y in zip(a, b):
        assert torch.equal(x["index"], y["index"]) and torch.equal(x["target"], y["target"])
        torch.testing.assert_close(y["inputs"], x["inputs"], **TIGHT)


@pytest.mark.parametrize("policy", ["error", "skip"])
def test_overflowing_features_are_a_bad_clip_on_both_paths(records, policy):
    peak = float(np.abs(sf.read(records[0].path, dtype="float32")[0]).max())
    bound = BatchFeatures(FE).logmel.safe_amplitude
    # samples near the float32 maximum overflow the STFT; samples 3x above the (worst-case) bound do not
    for peak_after, bad in ((1e38, True), (3 * bound, False)):
        scale = peak_after / peak
        kwargs = dict(training=True, waveform_transform=lambda wave, g: wave * scale, on_bad_clip=policy)
        worker, device, features = _both(records[:1], **kwargs)
        if bad and policy == "error":
            for ds in (worker, device):
                with pytest.raises(AudioDecodeError, match="not finite"):
                    ds[0]
        elif bad:
            assert worker[0]["inputs"] is None and device[0]["inputs"] is None
            assert worker[0]["error"] == device[0]["error"]
        else:
            assert float(device[0]["inputs"].abs().max()) > bound  # the exact check ran, and passed
            _compare(worker, device, features, epochs=(0,))


def _tone_folder(root):
    for subset, n in (("training", 4), ("validation", 2)):
        for c, freq in enumerate((300.0, 2500.0)):
            for i in range(n):
                _noisy(root / subset / f"class{c}" / f"{i}.wav", 0.5, 16000, seed=10 * c + i + 100 * n, freq=freq)
    return root


def test_fit_trains_the_same_with_device_features(tmp_path):
    root = _tone_folder(tmp_path / "tones")
    recipe = [
        "model=audio_rep_inception_next_tiny",
        f"data.root={root}",
        "data.frontend={clip_seconds: 0.319, num_frames: 32, n_mels: 32, n_fft: 512}",
        "data.batch_size=4",
        "data.num_workers=0",
        "optim.epochs=1",
        "optim.lr=0.05",
        "optim.freeze_bn=false",
        "precise_bn_batches=2",
        "export_pretrained=false",
        "device=cpu",
    ]
    runs = {}
    for place in ("workers", "device"):
        cfg = load_config("folder", [*recipe, f"data.features={place}"])
        runs[place] = fit(cfg, tmp_path / place, progress=False)
    a, b = runs["workers"], runs["device"]
    assert a.history[0]["train_loss"] == pytest.approx(b.history[0]["train_loss"], rel=1e-4)
    # Precise-BN statistics and the two-view validation come from the same inputs
    assert a.history[0]["val_top1"] == b.history[0]["val_top1"]
    assert a.history[0]["val_mean_class_acc"] == b.history[0]["val_mean_class_acc"]
    wa, wb = a.model.state_dict(), b.model.state_dict()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-3, atol=1e-4, msg=k)


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.features=gpu", "data.features must be one of"),
        ("data.cache_dir=/tmp/cache", "drop data.cache_dir"),
        ("data.dataset=synthetic", "needs audio clips"),
    ],
)
def test_bad_feature_settings_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("vggsound", ["data.features=device", override] if "gpu" not in override else [override])


def test_device_features_refuse_a_batch_of_worker_features(records):
    worker, _, features = _both(records, training=False)
    with pytest.raises(ValueError, match="features='device'"):
        features(collate_clips([worker[0]]))
    with pytest.raises(ValueError, match="features='device'"):
        BatchFeatures.for_dataset(worker)


def test_benchmark_reports_a_wrong_device_path_and_counts_cores(records):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import feature_path

    worker, device, _ = _both(records, training=True, spec_augment=SpecAugment())
    assert feature_path.max_feature_difference({"workers": worker, "device": device}, 4) < 1e-5
    other_crops = AudioClipDataset(records, FE, training=True, spec_augment=SpecAugment(), features="device", seed=1)
    assert feature_path.max_feature_difference({"workers": worker, "device": other_crops}, 4) > 0.1
    rows = feature_path.cores_table({"workers": 100.0, "device": 400.0}, (1000, 2000))
    assert rows[-2:] == ["| 1,000 clips/s | 10 | 3 |", "| 2,000 clips/s | 20 | 5 |"]
