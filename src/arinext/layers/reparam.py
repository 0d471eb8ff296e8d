"""Structural re-parameterization: one layer, one verb, one model-level helper.

* :class:`ConvNorm` is a conv followed by BatchNorm; the ``"full"`` fold turns it into one biased conv.
* :class:`ReparamMultiKernelDWConv` holds parallel depthwise conv+BN branches of several odd kernel
  sizes along one axis (time or freq), plus the block's identity path. ``reparameterize()`` fuses the
  branches into one depthwise conv (the paper's fusion); with ``fold="full"`` the identity is folded in
  as well, as a 1 added to the centre tap (RepVGG's identity trick).
* :func:`reparameterize_model` applies either fold to a whole model: it calls ``reparameterize(fold)`` on every
  submodule that has that method (duck typing, as MobileOne does), so a new re-parameterizable layer only
  implements ``reparameterize(fold)`` and ``fold_state()``.

Formulas: BN folding ``W' = W * gamma / sqrt(var + eps)``, ``b' = beta + (b - mean) * gamma / sqrt(var + eps)``
(Ding et al., RepVGG, CVPR 2021); smaller kernels are zero-padded to the centre of the largest one
(RepLKNet) because every branch uses "same" padding ``k // 2``.

Training speed (:class:`ReparamMultiKernelDWConv`, branch form, frequency axis): oneDNN's depthwise
``1 x k`` conv (kernel along the last, frequency, dimension) is slow on the CPU, above all its
backward-weights kernel, which takes 10-20x as long as a ``k x 1`` conv of the same size. The layer
therefore runs its frequency branches as ``k x 1`` convs on frequency-major memory of channels-last
inputs (``branch_path="auto"``, the default; see :data:`BRANCH_PATHS`). The parameters, the BatchNorms
(each branch keeps its own batch statistics), the state dict and the function are unchanged; results
equal the plain path's up to float rounding (tests: float64 to 1e-9, BN running statistics included).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import ConfigError
from ..utils.modules import unwrap_model

__all__ = [
    "BRANCH_PATHS",
    "BranchPath",
    "ConvNorm",
    "Fold",
    "ReparamMultiKernelDWConv",
    "fold_state",
    "fuse_conv_bn",
    "pad_kernel_to",
    "reparameterize_model",
    "set_branch_path",
]

Fold = Literal["paper", "full"]
_FOLDS = ("paper", "full")

BranchPath = Literal["auto", "swap", "view", "plain"]
#: How the branch (training) form computes its frequency-axis branches on a channels-last input ``(B, C, T, F)``:
#:
#: * ``"plain"``: each branch is its ``1 x k`` ``nn.Conv2d`` as built (the reference; NCHW inputs always use it);
#: * ``"view"``: each ``1 x k`` conv runs as a ``k x 1`` conv on the zero-copy ``(B*T, C, F, 1)`` view of the
#:   channels-last memory ``(B, T, F, C)``: fast when ``F >= 32``, slow on short frequency rows;
#: * ``"swap"``: the whole mixer (branches, BNs, sum, identity) runs on one channels-last copy of the input
#:   in frequency-major order ``(B, C, F, T)``, with ``k x 1`` convs, and is copied back once;
#: * ``"auto"`` (default): ``view`` when ``F >= 32``, ``swap`` when ``8 < F < 32``, ``plain`` when ``F <= 8``
#:   (the ``1 x k`` kernels are fast on short rows), as measured in BENCHMARKS.md ("Training speed").
BRANCH_PATHS: tuple[str, ...] = ("auto", "swap", "view", "plain")


def fuse_conv_bn(
    kernel: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm2d
) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel and bias of ``bn(conv(x))`` as a single conv (BN in eval mode, running statistics)."""
    assert bn.running_mean is not None and bn.running_var is not None
    std = torch.sqrt(bn.running_var + bn.eps)
    gamma = bn.weight if bn.weight is not None else torch.ones_like(std)
    beta = bn.bias if bn.bias is not None else torch.zeros_like(std)
    scale = gamma / std
    b = bias if bias is not None else torch.zeros_like(std)
    return kernel * scale.reshape(-1, 1, 1, 1), beta + (b - bn.running_mean) * scale


def pad_kernel_to(kernel: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-pad a ``(..., kh, kw)`` kernel symmetrically so that it sits at the centre of ``size``."""
    kh, kw = kernel.shape[-2:]
    th, tw = size
    if (th - kh) % 2 or (tw - kw) % 2 or th < kh or tw < kw:
        raise ValueError(f"cannot centre a {kh}x{kw} kernel in {th}x{tw}")
    ph, pw = (th - kh) // 2, (tw - kw) // 2
    return F.pad(kernel, (pw, pw, ph, ph))


def _copy_conv(conv: nn.Conv2d, kernel: torch.Tensor, bias: torch.Tensor) -> nn.Conv2d:
    new = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        kernel.shape[-2:],  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,  # type: ignore[arg-type]
        groups=conv.groups,
        bias=True,
    ).to(device=kernel.device, dtype=kernel.dtype)
    new.weight.data.copy_(kernel.detach())
    assert new.bias is not None
    new.bias.data.copy_(bias.detach())
    return new


class ConvNorm(nn.Module):
    """``Conv2d`` (no bias) followed by ``BatchNorm2d``; folds into one biased conv under ``fold="full"``.

    After folding, ``self.bn`` is ``None`` and ``self.conv`` carries a bias.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int | tuple[int, int] = 1,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, groups=groups, bias=False)
        self.bn: nn.BatchNorm2d | None = nn.BatchNorm2d(out_chs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.bn(x) if self.bn is not None else x

    def get_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.bn is None:
            assert self.conv.bias is not None
            return self.conv.weight, self.conv.bias
        return fuse_conv_bn(self.conv.weight, self.conv.bias, self.bn)

    def fold_state(self) -> Fold | None:
        """``"full"`` once the BN is folded into the conv, else ``None`` (the paper's fold keeps the BN)."""
        return "full" if self.bn is None else None

    def reparameterize(self, fold: Fold = "paper") -> None:
        """Fold the BN into the conv when ``fold == "full"``; the paper's fold keeps it. Idempotent."""
        if fold not in _FOLDS:
            raise ConfigError(f"fold must be one of {_FOLDS}, got {fold!r}")
        if fold != "full" or self.bn is None:
            return
        kernel, bias = self.get_kernel_bias()
        self.conv = _copy_conv(self.conv, kernel, bias)
        self.bn = None


class ReparamMultiKernelDWConv(nn.Module):
    """Parallel depthwise conv+BN branches along one axis, summed, plus an optional identity.

    Training form computes ``sum_k BN_k(DW_k(x)) (+ x)``; the paper's inference form computes
    ``DW_fused(x) (+ x)`` with one biased depthwise conv of the largest kernel; the full fold also
    absorbs ``+ x`` into the fused kernel's centre tap. All three are numerically the same function.
    The ReLU that follows in the block is not part of this layer.

    Args:
        channels: number of channels (the conv is depthwise: ``groups=channels``).
        kernel_sizes: odd kernel sizes along ``axis``, largest first (original: 21 from
            ``RESNET.TEMP_KERNEL_SIZES`` / ``FREQ_KERNEL_SIZES``, 11 and 3 hard-coded).
        axis: ``"time"`` (kernel ``k x 1`` on dim 2) or ``"freq"`` (``1 x k`` on dim 3).
        identity: add the input to the output (the block's in-stage identity).
        inference_mode: build the fused conv directly instead of the branches.
        branch_path: how the branch form runs frequency-axis branches on channels-last inputs
            (:data:`BRANCH_PATHS`; ``"plain"`` is the reference). Not part of the state dict; change it
            on a built model with :func:`set_branch_path`.

    Example:
        >>> layer = ReparamMultiKernelDWConv(8, (21, 11, 3), "time").eval()
        >>> x = torch.randn(1, 8, 30, 5)
        >>> y = layer(x); layer.reparameterize(); torch.allclose(layer(x), y, atol=1e-5)
        True
    """

    def __init__(
        self,
        channels: int,
        kernel_sizes: Sequence[int] = (21, 11, 3),
        axis: Literal["time", "freq"] = "time",
        identity: bool = True,
        inference_mode: bool = False,
        branch_path: BranchPath = "auto",
    ) -> None:
        super().__init__()
        kernel_sizes = tuple(int(k) for k in kernel_sizes)
        if not kernel_sizes:
            raise ConfigError("kernel_sizes must not be empty")
        if any(k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ConfigError(f"kernel sizes must be positive and odd, got {kernel_sizes}")
        if list(kernel_sizes) != sorted(kernel_sizes, reverse=True) or len(set(kernel_sizes)) != len(kernel_sizes):
            raise ConfigError(f"kernel sizes must be distinct and sorted largest first, got {kernel_sizes}")
        if axis not in ("time", "freq"):
            raise ConfigError(f"axis must be 'time' or 'freq', got {axis!r}")
        if branch_path not in BRANCH_PATHS:
            raise ConfigError(f"branch_path must be one of {BRANCH_PATHS}, got {branch_path!r}")
        self.branch_path: BranchPath = branch_path
        self.channels = channels
        self.kernel_sizes = kernel_sizes
        self.axis = axis
        self.identity = identity
        self.identity_folded = False
        self.inference_mode = inference_mode
        self.branches: nn.ModuleList | None = None
        self.reparam_conv: nn.Conv2d | None = None
        if inference_mode:
            k = kernel_sizes[0]
            self.reparam_conv = nn.Conv2d(
                channels, channels, self._shape(k), padding=self._padding(k), groups=channels, bias=True
            )
        else:
            self.branches = nn.ModuleList(
                ConvNorm(channels, channels, self._shape(k), padding=self._padding(k), groups=channels)
                for k in kernel_sizes
            )

    def _shape(self, k: int) -> tuple[int, int]:
        return (k, 1) if self.axis == "time" else (1, k)

    def _padding(self, k: int) -> tuple[int, int]:
        return (k // 2, 0) if self.axis == "time" else (0, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            out = self.reparam_conv(x)
        else:
            assert self.branches is not None
            path = self._freq_path(x)
            if path == "swap":
                return self._forward_frequency_major(x)
            if path == "view":
                out = self._forward_rows(x)
            else:
                out = self.branches[0](x)
                for branch in self.branches[1:]:
                    out = out + branch(x)
        if self.identity and not self.identity_folded:
            out = out + x
        return out

    def _freq_path(self, x: torch.Tensor) -> str:
        """The implementation of the branch form for input ``x`` (see :data:`BRANCH_PATHS`)."""
        path = getattr(self, "branch_path", "auto")  # modules pickled before the attribute existed
        if self.axis != "freq" or path == "plain" or x.dim() != 4 or not _is_channels_last(x):
            return "plain"
        if torch.jit.is_scripting() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return "plain"
        if 1 in x.shape:
            # Views and copies of tensors with a size-1 dim can carry non-canonical strides on that dim, and
            # CPU BatchNorm's backward (torch 2.13) returns wrong gradients for such channels-last inputs
            # when the incoming gradient has another layout (tests/test_branch_paths.py shows the case).
            return "plain"
        if path == "auto":
            f = x.shape[3]
            return "view" if f >= 32 else ("swap" if f > 8 else "plain")
        return path

    def _forward_rows(self, x: torch.Tensor) -> torch.Tensor:
        """Branches as ``k x 1`` convs on the ``(B*T, C, F, 1)`` view of channels-last ``x``; BNs on ``(B, C, T, F)``."""
        assert self.branches is not None
        b, c, t, f = x.shape
        rows = x.permute(0, 2, 1, 3).reshape(b * t, c, f, 1)  # a view: the memory is (B, T, F, C)
        out: torch.Tensor | None = None
        for branch in self.branches:
            conv, bn = branch.conv, branch.bn
            k = conv.weight.shape[-1]
            y = F.conv2d(rows, conv.weight.reshape(c, 1, k, 1), conv.bias, 1, (k // 2, 0), 1, c)
            y = y.reshape(b, t, c, f).permute(0, 2, 1, 3)  # back to (B, C, T, F), channels-last, no copy
            y = bn(y) if bn is not None else y
            out = y if out is None else out + y
        assert out is not None
        return out

    def _forward_frequency_major(self, x: torch.Tensor) -> torch.Tensor:
        """The whole mixer on one ``(B, C, F, T)`` channels-last copy of ``x`` with ``k x 1`` convs."""
        assert self.branches is not None
        c = self.channels
        xt = _swap_time_freq(x)
        out: torch.Tensor | None = None
        for branch in self.branches:
            conv, bn = branch.conv, branch.bn
            k = conv.weight.shape[-1]
            y = F.conv2d(xt, conv.weight.reshape(c, 1, k, 1), conv.bias, 1, (k // 2, 0), 1, c)
            y = bn(y) if bn is not None else y  # per-channel statistics: the same values as on (B, C, T, F)
            out = y if out is None else out + y
        assert out is not None
        if self.identity and not self.identity_folded:
            out = out + xt
        return _swap_time_freq(out)

    def get_kernel_bias(self, fold_identity: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Equivalent depthwise kernel ``(C, 1, kh, kw)`` and bias ``(C,)``; pure and differentiable."""
        if self.reparam_conv is not None:
            kernel, bias = self.reparam_conv.weight, self.reparam_conv.bias
            assert bias is not None
        else:
            assert self.branches is not None
            target = self._shape(self.kernel_sizes[0])
            kernel, bias = 0, 0  # type: ignore[assignment]
            for branch in self.branches:
                k, b = branch.get_kernel_bias()
                kernel, bias = kernel + pad_kernel_to(k, target), bias + b
        if fold_identity and self.identity and not self.identity_folded:
            # x + dw(x) == dw'(x) with 1 added at the centre tap, since padding is "same".
            centre = torch.zeros_like(kernel)
            kh, kw = kernel.shape[-2:]
            centre[:, 0, kh // 2, kw // 2] = 1.0
            kernel = kernel + centre
        return kernel, bias

    def fold_state(self) -> Fold | None:
        """``None`` (branches), ``"paper"`` (fused) or ``"full"`` (fused, identity folded in)."""
        if self.identity_folded:
            return "full"
        return "paper" if self.reparam_conv is not None else None

    def reparameterize(self, fold: Fold = "paper") -> None:
        """Fuse the branches in place and delete them; ``fold="full"`` also absorbs the identity.

        Idempotent: calling it again (with the same or a weaker fold) changes nothing.
        """
        if fold not in _FOLDS:
            raise ConfigError(f"fold must be one of {_FOLDS}, got {fold!r}")
        fold_identity = fold == "full" and self.identity and not self.identity_folded
        if self.reparam_conv is not None and not fold_identity:
            return
        with torch.no_grad():
            kernel, bias = self.get_kernel_bias(fold_identity=fold_identity)
        k = self.kernel_sizes[0]
        template = nn.Conv2d(self.channels, self.channels, self._shape(k), padding=self._padding(k), groups=self.channels)
        self.reparam_conv = _copy_conv(template, kernel, bias)
        self.branches = None
        self.identity_folded = self.identity_folded or fold_identity
        self.inference_mode = True

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_sizes={self.kernel_sizes}, axis={self.axis!r}, identity={self.identity}"


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


class _SwapTimeFreq(torch.autograd.Function):
    """``(B, C, T, F) <-> (B, C, F, T)`` as one channels-last copy, the gradient copied back the same way
    (so that the convs before and after see channels-last gradients, which oneDNN runs fast)."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.transpose(2, 3).contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad.transpose(2, 3).contiguous(memory_format=torch.channels_last)


def _swap_time_freq(x: torch.Tensor) -> torch.Tensor:
    if torch.is_grad_enabled() and x.requires_grad:
        return _SwapTimeFreq.apply(x)  # type: ignore[no-any-return]
    return x.transpose(2, 3).contiguous(memory_format=torch.channels_last)


def set_branch_path(model: nn.Module, path: BranchPath) -> nn.Module:
    """Select how every :class:`ReparamMultiKernelDWConv` of ``model`` runs its branch form (in place).

    ``"plain"`` gives the reference implementation (the model as written, kernel for kernel), ``"auto"``
    the fast default; see :data:`BRANCH_PATHS`. The results are equal up to float rounding. Returns ``model``.
    """
    if path not in BRANCH_PATHS:
        raise ConfigError(f"branch_path must be one of {BRANCH_PATHS}, got {path!r}")
    for m in model.modules():
        if isinstance(m, ReparamMultiKernelDWConv):
            m.branch_path = path
    return model


def _reparameterizable(model: nn.Module) -> list[nn.Module]:
    """The modules of ``model`` (itself included) with a ``reparameterize(fold)`` method, in pre-order."""
    return [m for m in model.modules() if callable(getattr(m, "reparameterize", None))]


def fold_state(model: nn.Module) -> Fold | None:
    """``None`` for a training-form model, ``"paper"`` or ``"full"`` for one :func:`reparameterize_model` fused.

    The strongest fold any re-parameterizable layer reports (its ``fold_state()``): ``"full"`` as soon as one
    layer is fully folded.
    """
    states = {m.fold_state() for m in _reparameterizable(model) if callable(getattr(m, "fold_state", None))}
    return "full" if "full" in states else "paper" if "paper" in states else None


def reparameterize_model(model: nn.Module, inplace: bool = False, fold: Fold = "paper") -> nn.Module:
    """Return ``model`` with every re-parameterizable module fused, in eval mode.

    A module is re-parameterizable when it has a ``reparameterize(fold)`` method (and a ``fold_state()``
    method saying which fold it is in), as :class:`ConvNorm` and :class:`ReparamMultiKernelDWConv` do; a new
    layer needs nothing else to be fused here, by :func:`fold_state` and by every checkpoint form.

    Args:
        model: any module (wrappers are unwrapped); BatchNorm statistics must be final.
        inplace: modify ``model`` itself instead of a deep copy.
        fold: ``"paper"`` fuses the multi-branch depthwise convs and their BNs, as the authors'
            inference model does; the result's state dict loads strictly into
            ``create_model(name, inference_mode=True)``. ``"full"`` also folds each in-block identity into
            its depthwise kernel and every remaining BatchNorm into the conv before it, so the graph is
            convs, ReLUs, pooling and the linear head.

    Outputs are unchanged up to float rounding (tests: float64 ~1e-9, float32 ~1e-5 of the logit scale).

    Example:
        >>> import arinext
        >>> m = arinext.create_model("audio_rep_inception_next_tiny", num_classes=5).eval()
        >>> fused = arinext.reparameterize_model(m, fold="full")
    """
    if fold not in _FOLDS:
        raise ConfigError(f"fold must be one of {_FOLDS}, got {fold!r}")
    model = unwrap_model(model)
    if not inplace:
        model = copy.deepcopy(model)
    for module in _reparameterizable(model):
        module.reparameterize(fold)
    return model.eval()
