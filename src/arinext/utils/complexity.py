"""Parameter and multiply-accumulate counts (``torch.utils.flop_counter``, not hand counts)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_macs", "count_params"]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, input_shape: tuple[int, ...] = (1, 1, 512, 128)) -> dict[str, int]:
    """Multiply-accumulates of one forward pass, split into ``conv``, ``linear`` and ``total``.

    ``torch.utils.flop_counter`` reports 2 FLOPs per MAC for convolutions and matrix products;
    elementwise ops (BN, ReLU, additions, pooling) are not counted, as in fvcore's conv totals.
    """
    was_training = model.training
    model.eval()
    param = next(model.parameters())
    x = torch.zeros(input_shape, dtype=param.dtype, device=param.device)
    with FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    flops = {str(k): int(v) for k, v in counter.get_flop_counts()["Global"].items()}
    conv = flops.get("aten.convolution", 0) // 2
    linear = sum(v for k, v in flops.items() if k in ("aten.addmm", "aten.mm", "aten.bmm")) // 2
    return {"conv": conv, "linear": linear, "total": counter.get_total_flops() // 2}
