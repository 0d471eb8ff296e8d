"""Inference-speed passes on top of the re-parameterization: the fastest eager (or compiled) form.

:func:`optimize_for_inference` is what ``arinext bench`` times as the ``fast`` form and what deployment
code should call after loading weights. Every pass is exact (same function, float rounding aside):

* ``fold="full"``: :func:`arinext.reparameterize_model` with every BN and in-block identity folded;
* ``crop_kernels``: the fused 21-tap depthwise convs become :class:`AxisCroppedDWConv2d`, which runs only
  the central ``2 * L - 1`` taps when the feature map is ``L < (k + 1) / 2`` long on the kernel's axis
  (in stages 4 and 5 the frequency axis has 8 and 4 bins at 128 mel bins, so 15 and 7 of the 21 taps);
  the other taps only ever see zero padding;
* ``channels_last``: NHWC weights and activations, which oneDNN runs without reordering every conv's
  input and output (the largest single gain on CPU, see BENCHMARKS.md);
* ``compile``: ``torch.compile`` of the result (off by default; see BENCHMARKS.md for when it helps).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.reparam import Fold, reparameterize_model

__all__ = ["AxisCroppedDWConv2d", "ChannelsLast", "crop_depthwise_kernels", "optimize_for_inference"]

_logger = logging.getLogger(__name__)


class AxisCroppedDWConv2d(nn.Conv2d):
    """A ``k x 1`` or ``1 x k`` depthwise conv with "same" padding that skips taps that only see padding.

    For an input of length ``L`` on the kernel's axis, output ``i`` reads inputs ``j`` in ``[0, L)``
    through tap ``j - i + k // 2``, so only the ``2 * L - 1`` central taps can touch data. When that is
    fewer than ``k`` the conv runs with the cropped kernel and padding ``L - 1``: the same numbers with
    less work. Parameters and state-dict keys are those of the ``nn.Conv2d`` it replaces.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        kh = conv.kernel_size[0]
        if not self.is_eligible(conv):
            raise ValueError(f"not a stride-1 'same'-padded k x 1 / 1 x k depthwise conv: {conv}")
        super().__init__(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,  # type: ignore[arg-type]
            padding=conv.padding,  # type: ignore[arg-type]
            groups=conv.groups,
            bias=conv.bias is not None,
        )
        self.to(device=conv.weight.device, dtype=conv.weight.dtype)
        self.weight = conv.weight
        self.bias = conv.bias
        self.axis = 2 if kh > 1 else 3

    @staticmethod
    def is_eligible(conv: nn.Module) -> bool:
        if type(conv) is not nn.Conv2d or conv.groups != conv.in_channels or conv.in_channels != conv.out_channels:
            return False
        kh, kw = conv.kernel_size
        if min(kh, kw) != 1 or max(kh, kw) < 3 or max(kh, kw) % 2 == 0:
            return False
        return (
            conv.stride == (1, 1)
            and conv.dilation == (1, 1)
            and conv.padding == (kh // 2, kw // 2)
            and conv.padding_mode == "zeros"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size[self.axis - 2]
        length = x.shape[self.axis]
        taps = 2 * length - 1
        if taps >= k:
            return super().forward(x)
        weight = self.weight.narrow(self.axis, (k - taps) // 2, taps)
        padding = (length - 1, 0) if self.axis == 2 else (0, length - 1)
        return F.conv2d(x, weight, self.bias, 1, padding, 1, self.groups)


def crop_depthwise_kernels(model: nn.Module) -> int:
    """Replace, in place, every eligible depthwise conv by :class:`AxisCroppedDWConv2d`; returns the count."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if AxisCroppedDWConv2d.is_eligible(child):
                setattr(parent, name, AxisCroppedDWConv2d(child))  # type: ignore[arg-type]
                replaced += 1
    return replaced


class ChannelsLast(nn.Module):
    """Wrapper that converts the input to channels-last before calling a channels-last model."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> Any:
        return self.model(x.contiguous(memory_format=torch.channels_last))


def optimize_for_inference(
    model: nn.Module,
    fold: Fold | None = "full",
    crop_kernels: bool = True,
    channels_last: bool = True,
    compile: bool = False,
    compile_kwargs: dict[str, Any] | None = None,
) -> nn.Module | Callable[..., Any]:
    """Return a fast inference copy of ``model`` (the input model is not modified).

    Args:
        model: a trained model (any form); BatchNorm statistics must be final.
        fold: re-parameterization applied first (``"full"``, ``"paper"`` or ``None`` for none).
        crop_kernels: skip the depthwise taps that only see zero padding (exact).
        channels_last: run in NHWC memory format; inputs may stay NCHW (converted on entry).
        compile: wrap the result in ``torch.compile`` (first call compiles; needs a working compiler).
        compile_kwargs: forwarded to ``torch.compile``.

    Returns:
        A module in eval mode mapping ``(B, 1, T, F)`` to logits, numerically equivalent to ``model``.

    Example:
        >>> import arinext, torch
        >>> from arinext.inference import optimize_for_inference
        >>> m = arinext.create_model("audio_rep_inception_next_tiny", num_classes=5).eval()
        >>> fast = optimize_for_inference(m)
        >>> x = torch.randn(1, 1, 64, 32)
        >>> torch.allclose(fast(x), m(x), atol=1e-4)
        True
    """
    model = reparameterize_model(model, fold=fold) if fold is not None else _eval_copy(model)
    if crop_kernels:
        n = crop_depthwise_kernels(model)
        _logger.debug("cropping-aware depthwise convs: %d", n)
    out: nn.Module = ChannelsLast(model) if channels_last else model
    out.eval()
    if compile:
        return torch.compile(out, **(compile_kwargs or {}))
    return out


def _eval_copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).eval()
