"""Inference-speed passes on top of the re-parameterization: the fastest eager (or compiled) form.

:func:`optimize_for_inference` is what ``arinext bench`` times as the ``fast`` form and what deployment
code should call after loading weights. Every pass is exact (same function, float rounding aside):

* ``fold="full"``: :func:`arinext.reparameterize_model` with every BN and in-block identity folded;
* ``crop_kernels``: the fused 21-tap depthwise convs become :class:`AxisCroppedDWConv2d`, which runs only
  the central ``2 * L - 1`` taps when the feature map is ``L < (k + 1) / 2`` long on the kernel's axis
  (in stages 4 and 5 the frequency axis has 8 and 4 bins at 128 mel bins, so 15 and 7 of the 21 taps);
  the other taps only ever see zero padding;
* ``channels_last``: NHWC weights and activations, which oneDNN runs without reordering every conv's
  input and output (see BENCHMARKS.md);
* ``fuse_relu``: every ``relu(conv(x))`` and ``relu(conv(x) + y)`` runs as one oneDNN kernel
  (:class:`ConvReLU`, found by :func:`fuse_conv_relu` with ``torch.fx``), so the activations are written
  once instead of being read and written again by a separate add and ReLU;
* ``retain_memory``: not a change of the model: the process keeps freed memory for reuse
  (:func:`arinext.utils.malloc.retain_freed_memory`). Without it glibc returns each large activation to the
  kernel and every forward pass page-faults it back in (33,000-50,000 faults of 4 KiB per forward pass of
  the paper-size model at batch 8);
* ``compile``: ``torch.compile`` of the result (off by default; see BENCHMARKS.md for when it helps).

These passes are generic: Auditory Slow-Fast gets the same ones, so ``arinext bench`` compares each model's
best exact eager form.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..layers.reparam import Fold, reparameterize_model
from ..utils.errors import InputError
from ..utils.malloc import retain_freed_memory

__all__ = [
    "AxisCroppedDWConv2d",
    "ChannelsLast",
    "ConvReLU",
    "crop_depthwise_kernels",
    "fuse_conv_relu",
    "optimize_for_inference",
]

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

    def weight_and_padding(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """The kernel (cropped or whole) and the padding that this conv uses for input ``x``."""
        k = self.kernel_size[self.axis - 2]
        length = x.shape[self.axis]
        taps = 2 * length - 1
        if taps >= k:
            return self.weight, self.padding  # type: ignore[return-value]
        weight = self.weight.narrow(self.axis, (k - taps) // 2, taps)
        return weight, ((length - 1, 0) if self.axis == 2 else (0, length - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, padding = self.weight_and_padding(x)
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


_CONV_RELU = torch.ops.mkldnn._convolution_pointwise if torch.backends.mkldnn.is_available() else None
_CONV_ADD_RELU = torch.ops.mkldnn._convolution_pointwise.binary if _CONV_RELU is not None else None
_CONV_ADD_RELU_ = torch.ops.mkldnn._convolution_pointwise_.binary if _CONV_RELU is not None else None
_REORDER_WEIGHT = torch.ops.mkldnn._reorder_convolution_weight if _CONV_RELU is not None else None


class ConvReLU(nn.Module):
    """``relu(conv(x))``, or ``relu(conv(x) + other)``, as one oneDNN kernel with the ReLU (and the add) fused.

    The kernel is oneDNN's convolution with post-ops (``torch.ops.mkldnn._convolution_pointwise``, what
    inductor emits for the same pattern): the same convolution, with the bias, the add and the ReLU applied
    to each output block while it is in registers, so the activation is written once instead of read and
    written again by a separate ReLU and add. Float32 on a CPU with oneDNN, outside autograd, tracing and
    export; everywhere else it runs the plain ``conv``, ``+`` and ReLU (float64 included), so traced and
    exported graphs hold standard operators.

    With ``overwrite=True`` the sum is written into ``other`` (the fusion pass sets it only where nothing
    reads ``other`` afterwards). ``conv`` is an ``nn.Conv2d`` or an :class:`AxisCroppedDWConv2d`; its
    parameters are this module's ``conv.weight`` and ``conv.bias``.

    The weight of a plain ``nn.Conv2d`` is also reordered once into oneDNN's blocked layout (at the first
    fused call, for that call's input shape) and kept, instead of being reordered on every call; it is
    reordered again when the weight changes (a new tensor or an in-place update). That copy is not part of
    the state dict or of a pickle, and it doubles the memory of the conv weights.
    """

    def __init__(self, conv: nn.Conv2d, overwrite: bool = False) -> None:
        super().__init__()
        if type(conv) not in (nn.Conv2d, AxisCroppedDWConv2d) or conv.padding_mode != "zeros":
            raise InputError(f"ConvReLU fuses a zero-padded nn.Conv2d or AxisCroppedDWConv2d, got {conv}")
        self.conv = conv
        self.overwrite = overwrite
        self._packed: tuple[tuple[Any, ...], torch.Tensor] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_packed": None}  # oneDNN's opaque tensors do not pickle

    def _onednn_weight(self, weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        if isinstance(conv, AxisCroppedDWConv2d) or _REORDER_WEIGHT is None:
            return weight  # its kernel changes with the input length
        version = None if weight.is_inference() else weight._version  # inference tensors have no version
        key = (weight.data_ptr(), version, tuple(weight.shape), weight.stride())
        if self._packed is None or self._packed[0] != key:
            packed = _REORDER_WEIGHT(weight, list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups,
                                     list(x.shape))  # fmt: skip
            self._packed = (key, packed)
        return self._packed[1]

    def forward(self, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        conv = self.conv
        if isinstance(conv, AxisCroppedDWConv2d):
            weight, padding = conv.weight_and_padding(x)
        else:
            weight, padding = conv.weight, conv.padding  # type: ignore[assignment]
        if not _onednn_fusable(x, weight, other, conv, padding):
            y = F.conv2d(x, weight, conv.bias, conv.stride, padding, conv.dilation, conv.groups)
            return torch.relu(y if other is None else other + y)
        weight = self._onednn_weight(weight, x)
        args = (weight, conv.bias, list(padding), list(conv.stride), list(conv.dilation), conv.groups)
        if other is None:
            return _CONV_RELU(x, *args, "relu", [], "")  # type: ignore[misc]
        if self.overwrite:
            return _CONV_ADD_RELU_(other, x, *args, "add", None, "relu", [], "")  # type: ignore[misc]
        return _CONV_ADD_RELU(x, other, *args, "add", None, "relu", [], "")  # type: ignore[misc]

    def extra_repr(self) -> str:
        return "add, relu (overwrites the addend)" if self.overwrite else "relu"


def _onednn_fusable(
    x: torch.Tensor, weight: torch.Tensor, other: torch.Tensor | None, conv: nn.Conv2d, padding: Any
) -> bool:
    if _CONV_RELU is None or not torch.backends.mkldnn.enabled:
        return False
    if x.dim() != 4 or x.device.type != "cpu" or x.dtype != torch.float32 or weight.dtype != torch.float32:
        return False
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return False  # the fused kernel has no backward
    if torch.jit.is_scripting() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return False
    if other is None:
        return True
    if other.dtype != x.dtype or other.device != x.device or other.requires_grad and torch.is_grad_enabled():
        return False
    out_size = [
        (n + 2 * p - d * (k - 1) - 1) // s + 1
        for n, p, d, k, s in zip(x.shape[2:], padding, conv.dilation, weight.shape[2:], conv.stride)
    ]
    if list(other.shape) != [x.shape[0], weight.shape[0], *out_size]:
        return False  # a broadcast add: the plain path broadcasts
    # The fused add reads ``other`` in the output's memory format.
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    return other.is_contiguous(memory_format=layout) and x.is_contiguous(memory_format=layout)


_RELU_FUNCTIONS = (torch.relu, F.relu)
_ADD_FUNCTIONS = (operator.add, torch.add)


class _LeafCroppedConvs(fx.Tracer):
    """FX tracer that keeps :class:`AxisCroppedDWConv2d` (whose padding depends on the input) as a leaf."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, AxisCroppedDWConv2d) or super().is_leaf_module(m, module_qualified_name)


def _module(node: Any, modules: dict[str, nn.Module]) -> nn.Module | None:
    if isinstance(node, fx.Node) and node.op == "call_module":
        return modules.get(str(node.target))
    return None


def _is_relu(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules.get(str(node.target)), nn.ReLU)
    if node.op == "call_function":
        return node.target in _RELU_FUNCTIONS and not node.kwargs
    return node.op == "call_method" and node.target in ("relu", "relu_")


def _is_add(node: Any) -> bool:
    if not isinstance(node, fx.Node) or len(node.args) != 2 or node.kwargs:
        return False
    return (node.op == "call_function" and node.target in _ADD_FUNCTIONS) or (
        node.op == "call_method" and node.target == "add"
    )


def _fusable_conv(node: Any, modules: dict[str, nn.Module], calls: dict[str, int]) -> bool:
    """A conv node whose only user is the next op and whose module is called nowhere else."""
    m = _module(node, modules)
    if m is None or type(m) not in (nn.Conv2d, AxisCroppedDWConv2d) or m.padding_mode != "zeros":
        return False
    return len(node.users) == 1 and calls[str(node.target)] == 1 and len(node.args) == 1 and not node.kwargs


def _overwritable(
    other: fx.Node, conv: fx.Node, add: fx.Node, modules: dict[str, nn.Module], order: dict[fx.Node, int]
) -> bool:
    """``other`` is a fresh conv output, the fused conv does not read it, and its other readers run earlier."""
    if not isinstance(_module(other, modules), (nn.Conv2d, ConvReLU)) or other in conv.all_input_nodes:
        return False
    return all(user is add or order[user] < order[add] for user in other.users)


def _fuse_graph(gm: fx.GraphModule) -> int:
    """Rewrite ``relu(conv(x))`` and ``relu(conv(x) + other)`` in ``gm`` into :class:`ConvReLU` calls."""
    graph = gm.graph
    modules = dict(gm.named_modules())
    order = {node: i for i, node in enumerate(graph.nodes)}
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[str(node.target)] = calls.get(str(node.target), 0) + 1
    fused = 0
    for relu in list(graph.nodes):
        if not _is_relu(relu, modules) or not relu.args:
            continue
        src = relu.args[0]
        conv, other = None, None
        if _fusable_conv(src, modules, calls):
            conv = src
        elif _is_add(src) and len(src.users) == 1:
            a, b = src.args
            for c, o in ((b, a), (a, b)):
                if _fusable_conv(c, modules, calls) and isinstance(o, fx.Node):
                    conv, other = c, o
                    break
        if conv is None:
            continue
        overwrite = other is not None and _overwritable(other, conv, src, modules, order)
        target = str(conv.target)
        gm.add_submodule(target, ConvReLU(modules[target], overwrite=overwrite))  # type: ignore[arg-type]
        modules[target] = gm.get_submodule(target)
        with graph.inserting_before(relu):
            args = (conv.args[0],) if other is None else (conv.args[0], other)
            new = graph.call_module(target, args)
        order[new] = order[relu]
        relu.replace_all_uses_with(new)
        graph.erase_node(relu)
        if src is not conv:
            graph.erase_node(src)  # the add
        graph.erase_node(conv)
        fused += 1
    if fused:
        graph.lint()
        gm.recompile()
    return fused


def fuse_conv_relu(model: nn.Module) -> tuple[nn.Module, int]:
    """Fuse every ``relu(conv(x))`` and ``relu(conv(x) + y)`` of ``model`` into a :class:`ConvReLU`.

    The pass traces ``model`` with ``torch.fx``; a module that cannot be traced (its forward branches on
    shapes or values) is left as it is and its children are tried instead. Returns the model (a new
    ``fx.GraphModule`` where the root itself was traced; otherwise ``model``, changed in place) and the
    number of fused convs. The function is unchanged (float rounding aside; see :class:`ConvReLU`).
    """
    try:
        graph = _LeafCroppedConvs().trace(model)
    except Exception:  # noqa: BLE001  (any tracing failure: shape-dependent code; try the children)
        total = 0
        for name, child in list(model.named_children()):
            new, n = fuse_conv_relu(child)
            if new is not child:
                setattr(model, name, new)
            total += n
        return model, total
    for node in graph.nodes:
        node.type = None  # annotations are strings under `from __future__ import annotations`: unpicklable
    gm = fx.GraphModule(model, graph, class_name=type(model).__name__)
    fused = _fuse_graph(gm)
    return (gm, fused) if fused else (model, 0)


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
    fuse_relu: bool = True,
    retain_memory: bool = True,
    compile: bool = False,
    compile_kwargs: dict[str, Any] | None = None,
) -> nn.Module | Callable[..., Any]:
    """Return a fast inference copy of ``model`` (the input model is not modified).

    Args:
        model: a trained model (any form); BatchNorm statistics must be final.
        fold: re-parameterization applied first (``"full"``, ``"paper"`` or ``None`` for none).
        crop_kernels: skip the depthwise taps that only see zero padding (exact).
        channels_last: run in NHWC memory format; inputs may stay NCHW (converted on entry).
        fuse_relu: run each conv with the ReLU (and the residual add) that follows it as one oneDNN
            kernel (:func:`fuse_conv_relu`; float32 on CPU, plain operators elsewhere). Not applied with
            ``compile=True``: inductor fuses these patterns itself.
        retain_memory: make this process keep freed memory for reuse
            (:func:`arinext.utils.malloc.retain_freed_memory`, glibc only; process-wide): otherwise every
            forward pass of a large batch pays page faults for its activations (BENCHMARKS.md).
        compile: wrap the result in ``torch.compile`` (first call compiles; needs a working compiler).
        compile_kwargs: forwarded to ``torch.compile``.

    Returns:
        A module in eval mode mapping ``(B, 1, T, F)`` to logits, numerically equivalent to ``model``; its
        parameters do not require gradients (it is for inference).

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
    model.requires_grad_(False)
    if crop_kernels:
        n = crop_depthwise_kernels(model)
        _logger.debug("cropping-aware depthwise convs: %d", n)
    if fuse_relu and not compile:
        model, n = fuse_conv_relu(model)
        _logger.debug("convs fused with their ReLU: %d", n)
    if retain_memory and retain_freed_memory():
        _logger.debug("this process keeps freed memory for reuse (glibc mallopt)")
    out: nn.Module = ChannelsLast(model) if channels_last else model
    out.eval()
    if compile:
        return torch.compile(out, **(compile_kwargs or {}))
    return out


def _eval_copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).eval()
