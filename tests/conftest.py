from __future__ import annotations

from pathlib import Path

import pytest
import torch

import arinext.models  # noqa: F401  (registers every model)
from arinext.layers.reparam import ConvNorm, ReparamMultiKernelDWConv

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
OFFICIAL = SHARED / "fixtures" / "official"


@pytest.fixture
def official_dir() -> Path:
    if not (OFFICIAL / "small_unmerged.pyth").is_file():
        pytest.skip("authors' fixtures (../shared/fixtures/official) not present")
    return OFFICIAL


def randomize_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random BN affine parameters and running statistics, so that folding is not trivially exact."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
    return model


def has_reparam_layers(model: torch.nn.Module) -> bool:
    return any(isinstance(m, (ReparamMultiKernelDWConv, ConvNorm)) for m in model.modules())
