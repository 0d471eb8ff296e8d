"""Shared fixtures and helpers: the fixtures folder, one intra-op thread, the small front ends and the tiny
model with random BatchNorms that most tests build."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import arinext.models  # noqa: F401  (registers every model)
from arinext.audio.frontend import FrontendConfig
from arinext.models import create_model
from arinext.utils.modules import randomize_batchnorm

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
OFFICIAL = SHARED / "fixtures" / "official"

#: 8 kHz, 0.5 s crops of 51 x 32: the fast front end of the inference, export and int8 tests.
FE_8K = FrontendConfig(sample_rate=8000, win_ms=20.0, hop_ms=10.0, num_frames=51, clip_seconds=0.5, n_fft=256, n_mels=32)
#: 16 kHz, 1 s crops of 101 x 64 (the keyword models' frame rate): frame-level scores, embeddings, HEAR.
FE_16K = FrontendConfig(
    sample_rate=16000, win_ms=25.0, hop_ms=10.0, num_frames=101, clip_seconds=1.0, n_fft=512, n_mels=64
)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread: the suite runs one test process per core, and OpenMP spinning on a busy core is slow."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def official_dir() -> Path:
    if not (OFFICIAL / "small_unmerged.pyth").is_file():
        pytest.skip("authors' fixtures (../shared/fixtures/official) not present")
    return OFFICIAL


def tiny_model(
    num_classes: int = 3,
    bn_seed: int = 0,
    seed: int | None = None,
    head_std: float | None = None,
    name: str = "audio_rep_inception_next_tiny",
    **kwargs,
) -> torch.nn.Module:
    """A registered model (the tiny ARIN by default) with random BatchNorm parameters and statistics (so that
    folding it is not trivially exact), in eval mode.

    Args:
        seed: ``torch.manual_seed`` before building (the initial weights); ``None`` leaves the global RNG.
        bn_seed: seed of :func:`~arinext.utils.modules.randomize_batchnorm`.
        head_std: redraw the linear head's weights from N(0, head_std) (spreads the scores of a random model).
        kwargs: more constructor arguments (``drop_rate``, ``inference_mode``, ...).
    """
    if seed is not None:
        torch.manual_seed(seed)
    model = randomize_batchnorm(create_model(name, num_classes=num_classes, **kwargs), bn_seed)
    if head_std is not None:
        with torch.no_grad():
            model.head.fc.weight.normal_(0, head_std)
    return model.eval()


def has_reparam_layers(model: torch.nn.Module) -> bool:
    """Whether ``model`` has a layer that re-parameterization changes (one with a ``reparameterize`` method)."""
    return any(callable(getattr(m, "reparameterize", None)) for m in model.modules())
