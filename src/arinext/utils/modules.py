"""Helpers on any ``nn.Module``: look through training wrappers, draw BatchNorm statistics at random."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["randomize_batchnorm", "unwrap_model"]


@torch.no_grad()
def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Draw every BatchNorm's affine parameters and running statistics at random; returns ``model``.

    Freshly initialised BNs (unit scale, zero shift, zero mean, unit variance, and the zero-initialised
    last BN of each block) make a fold trivially exact; the folds are checked and timed on these
    instead: gamma ~ U(0.5, 1.5), beta ~ N(0, 0.2), mean ~ N(0, 0.2), var ~ U(0.5, 1.5).
    """
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.copy_(torch.randn(n, generator=g) * 0.2)
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)  # type: ignore[union-attr]
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)  # type: ignore[union-attr]
    return model


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip DistributedDataParallel / DataParallel / ``torch.compile`` wrappers."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod  # type: ignore[assignment]
        else:
            return model
