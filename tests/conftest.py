from __future__ import annotations

from pathlib import Path

import pytest
import torch

import arinext.models  # noqa: F401  (registers every model)
from arinext.layers.reparam import ConvNorm, ReparamMultiKernelDWConv
from arinext.utils.modules import randomize_batchnorm

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
OFFICIAL = SHARED / "fixtures" / "official"


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


randomize_bn = randomize_batchnorm  # random BN parameters and statistics: folding is not trivially exact


def has_reparam_layers(model: torch.nn.Module) -> bool:
    return any(isinstance(m, (ReparamMultiKernelDWConv, ConvNorm)) for m in model.modules())
