"""CUDA paths (skipped without a GPU; ``benchmarks/device_check.py`` runs them on a GPU machine): log-mels and
SpecAugment computed on the GPU equal the CPU workers' features, and a run trains and evaluates on the GPU with
device features and bf16 autocast."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arinext.audio.augment import SpecAugment
from arinext.data import collate_clips
from arinext.data.batch_features import BatchFeatures
from arinext.train import fit, load_config
from arinext.train.distributed import init_distributed

from .test_feature_path import _both, _noisy, _tone_folder

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.fixture
def records(tmp_path):
    from arinext.data import ClipRecord

    return [ClipRecord(_noisy(tmp_path / f"{i}.wav", 0.2 + 0.3 * i, 16000, seed=i), i % 2) for i in range(4)]


@pytest.mark.parametrize("training", [True, False])
def test_gpu_features_equal_the_cpu_workers(records, training):
    kwargs = dict(training=True, spec_augment=SpecAugment()) if training else dict(training=False, views=3)
    worker, device, _ = _both(records, **kwargs)
    expected = torch.stack([worker[i]["inputs"] for i in range(len(worker))])
    batch = collate_clips([device[i] for i in range(len(device))])
    batch["inputs"] = batch["inputs"].cuda()
    got = BatchFeatures.for_dataset(device).cuda()(batch)["inputs"]
    assert got.device.type == "cuda"
    # cuFFT and cuBLAS round differently from the CPU; a mask in another place would differ by far more
    torch.testing.assert_close(got.cpu(), expected, rtol=1e-4, atol=1e-3)


def test_fit_on_the_gpu_with_device_features_and_bf16(tmp_path):
    assert init_distributed("cuda").device == torch.device("cuda", 0)
    root = _tone_folder(tmp_path / "tones")
    cfg = load_config("folder", [
        "model=audio_rep_inception_next_tiny", f"data.root={root}",
        "data.frontend={clip_seconds: 0.319, num_frames: 32, n_mels: 32, n_fft: 512}",
        "data.batch_size=4", "data.num_workers=0", "data.features=device", "optim.epochs=2", "optim.lr=0.05",
        "optim.freeze_bn=false", "precise_bn_batches=2", "export_pretrained=false", "device=cuda", "amp=true",
    ])  # fmt: skip
    result = fit(cfg, tmp_path / "run", progress=False)
    assert next(result.model.parameters()).device.type == "cuda"
    assert all(np.isfinite(row["train_loss"]) for row in result.history)
    assert 0.0 <= result.history[-1]["val_top1"] <= 1.0
