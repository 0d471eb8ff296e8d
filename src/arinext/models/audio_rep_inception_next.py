"""AudioRepInceptionNeXt, and the authors' earlier AudioInceptionNeXt on the same backbone.

Paper: "AudioRepInceptionNeXt: A lightweight single-stream architecture for efficient audio
recognition", K. W. Lau, Y. A. U. Rehman, L.-M. Po, Neurocomputing 578:127432, 2024
(https://arxiv.org/abs/2404.13551).
Original code: https://github.com/StevenLauHKHK/AudioRepInceptionNeXt at commit 17272a5 (its
``audio_model_builder.py::AudioRepInceptionNeXt`` and ``audiorepinceptionnext_helper.py``).

AudioInceptionNeXt: "AudioInceptionNeXt: TCL AI LAB Submission to EPIC-SOUND Audio-Based-Interaction-
Recognition Challenge 2023", K. W. Lau, Y. A. U. Rehman, Y. Xie, L. Ma (https://arxiv.org/abs/2307.07265),
code https://github.com/StevenLauHKHK/AudioInceptionNeXt (``audioinceptionnext_helper.py``).

Both are one MetaNeXt-style backbone (stem, four stages of ``mixer -> MLP`` blocks with a residual,
pooled linear head) that differ only in the token mixer, the way timm's InceptionNeXt takes its mixer
as an argument:

* ``token_mixer="rep"`` (:class:`RepInceptionMixer`): parallel depthwise kernels along time, summed with
  an identity, then the same along frequency; the branches fuse into one kernel per axis
  (``reparameterize_model``);
* ``token_mixer="parallel"`` (:class:`ParallelInceptionMixer`): three parallel *paths*
  ``DW k x 1 -> BN -> ReLU -> DW 1 x k -> BN -> ReLU``, summed; the ReLU inside each path makes them
  impossible to merge. The original also drops the ReLU after the 1x1 head and inside the MLP
  (``mlp_act=False``). Same convs, hence the same parameters and MACs, as the rep mixer's training form.

Differences from the original, none of which changes the function computed:

* the models return logits in train and eval mode (the original applies softmax in eval);
* pooling is adaptive, so any number of frames and mel bins works;
* one :class:`~arinext.layers.ReparamMultiKernelDWConv` per axis replaces the six hand-named branch
  convs, and ``reparameterize()`` deletes the branches (the original keeps them);
* an optional deeper fold (``reparameterize_model(m, fold="full")``) that the paper does not do.

Input is a log-mel spectrogram ``(B, 1, T, F)``: dim 2 is time, dim 3 is frequency.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from ..layers.classifier import ClassifierHead, ClassifierModel, NumClasses
from ..layers.reparam import ConvNorm, ReparamMultiKernelDWConv
from ..utils.errors import ConfigError
from ._registry import register_model

__all__ = ["AudioRepInceptionNeXt", "ParallelInceptionMixer", "RepInceptionMixer"]

TokenMixer = Literal["rep", "parallel"]
KernelSizes = tuple[Sequence[int], Sequence[int]]  # (time taps, freq taps), largest first


class InceptionMixer(nn.Module):
    """What both token mixers share: a strided 1x1 head conv + BN; ``kernels`` are the (time, freq) taps."""

    def __init__(self, in_chs: int, dim: int, stride: tuple[int, int], kernels: KernelSizes) -> None:
        super().__init__()
        self.head = ConvNorm(in_chs, dim, 1, stride=stride)


class RepInceptionMixer(InceptionMixer):
    """1x1 head conv (carries the stride), then time-axis then frequency-axis multi-kernel DW convs.

    ``h = relu(bn(conv1x1(x)))``, ``t = relu(dw_time(h) + h)``, ``f = relu(dw_freq(t) + t)``.
    """

    def __init__(
        self, in_chs: int, dim: int, stride: tuple[int, int], kernels: KernelSizes, inference_mode: bool = False
    ) -> None:
        super().__init__(in_chs, dim, stride, kernels)
        self.time_mixer = ReparamMultiKernelDWConv(dim, kernels[0], "time", inference_mode=inference_mode)
        self.freq_mixer = ReparamMultiKernelDWConv(dim, kernels[1], "freq", inference_mode=inference_mode)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.head(x))
        x = self.act(self.time_mixer(x))  # NOTE: the identity is added inside the mixer, before the ReLU
        return self.act(self.freq_mixer(x))


class SeparablePath(nn.Module):
    """``relu(bn(DW 1 x k(relu(bn(DW k x 1(x))))))``: one path of :class:`ParallelInceptionMixer`."""

    def __init__(self, dim: int, time_kernel: int, freq_kernel: int) -> None:
        super().__init__()
        self.time = ConvNorm(dim, dim, (time_kernel, 1), padding=(time_kernel // 2, 0), groups=dim)
        self.freq = ConvNorm(dim, dim, (1, freq_kernel), padding=(0, freq_kernel // 2), groups=dim)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.freq(self.act(self.time(x))))


class ParallelInceptionMixer(InceptionMixer):
    """AudioInceptionNeXt's mixer: 1x1 head conv + BN (no ReLU, carries the stride), then the sum of
    one :class:`SeparablePath` per (time, freq) kernel pair; no in-stage identity."""

    def __init__(self, in_chs: int, dim: int, stride: tuple[int, int], kernels: KernelSizes) -> None:
        super().__init__(in_chs, dim, stride, kernels)
        if len(kernels[0]) != len(kernels[1]):
            raise ConfigError("time_kernel_sizes and freq_kernel_sizes must have the same length (one per path)")
        self.paths = nn.ModuleList(SeparablePath(dim, kt, kf) for kt, kf in zip(*kernels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        out = self.paths[0](h)
        for path in self.paths[1:]:
            out = out + path(h)
        return out


class ConvMlp(nn.Module):
    """1x1 expand -> BN -> ReLU (``act``) -> 1x1 project -> BN (the project BN is zero-initialised)."""

    def __init__(self, dim: int, hidden: int, act: bool = True) -> None:
        super().__init__()
        self.fc1 = ConvNorm(dim, hidden, 1)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()
        self.fc2 = ConvNorm(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class AudioRepInceptionNeXtBlock(nn.Module):
    """Token mixer + MLP with a residual connection and a ReLU after the add.

    The shortcut is a strided 1x1 conv + BN when the channel count or the stride changes.
    """

    def __init__(
        self,
        in_chs: int,
        dim: int,
        stride: tuple[int, int] = (1, 1),
        time_kernel_sizes: Sequence[int] = (21, 11, 3),
        freq_kernel_sizes: Sequence[int] = (21, 11, 3),
        mlp_ratio: int = 4,
        token_mixer: TokenMixer = "rep",
        mlp_act: bool = True,
        inference_mode: bool = False,
    ) -> None:
        super().__init__()
        kernels = (time_kernel_sizes, freq_kernel_sizes)
        self.mixer: InceptionMixer
        if token_mixer == "rep":
            self.mixer = RepInceptionMixer(in_chs, dim, stride, kernels, inference_mode=inference_mode)
        else:
            self.mixer = ParallelInceptionMixer(in_chs, dim, stride, kernels)
        self.mlp = ConvMlp(dim, dim * mlp_ratio, act=mlp_act)
        self.shortcut = ConvNorm(in_chs, dim, 1, stride=stride) if in_chs != dim or stride != (1, 1) else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        return self.act(shortcut + self.mlp(self.mixer(x)))


class AudioRepInceptionNeXtStage(nn.Module):
    def __init__(self, in_chs: int, dim: int, depth: int, stride: tuple[int, int], **block_kwargs: Any) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *(
                AudioRepInceptionNeXtBlock(in_chs if i == 0 else dim, dim, stride if i == 0 else (1, 1), **block_kwargs)
                for i in range(depth)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class Stem(nn.Module):
    """Conv 5x7 stride 2 -> BN -> ReLU -> max-pool 3x3 stride 2: /4 in time and frequency."""

    def __init__(self, in_chans: int, out_chs: int, kernel_size: tuple[int, int] = (5, 7)) -> None:
        super().__init__()
        padding = (kernel_size[0] // 2, kernel_size[1] // 2)
        self.conv = ConvNorm(in_chans, out_chs, kernel_size, stride=2, padding=padding)
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.conv(x)))


class AudioRepInceptionNeXt(ClassifierModel):
    """AudioRepInceptionNeXt on log-mel spectrograms (and, with ``token_mixer="parallel"``, AudioInceptionNeXt).

    Args:
        in_chans: input channels (1 for a log-mel spectrogram).
        num_classes: classes of the linear head, or a dict of them for several heads
            (``MODEL.NUM_CLASSES``); 0 gives pooled features.
        depths: blocks per stage (``RESNET.DEPTH`` 50 gives (3, 4, 6, 3)).
        dims: block output widths per stage (``RESNET.WIDTH_PER_GROUP`` 64 gives (64, 128, 256, 512)).
        mlp_ratio: expansion of the 1x1 MLP (4 in the original bottleneck).
        time_kernel_sizes: depthwise kernel taps along time, largest first (``RESNET.TEMP_KERNEL_SIZES``
            gives the 21; 11 and 3 are fixed in the original block).
        freq_kernel_sizes: the same along frequency (``RESNET.FREQ_KERNEL_SIZES``).
        stem_kernel: stem kernel (time, freq).
        time_strides, freq_strides: stride of each stage's first block (``RESNET.TIME_STRIDES``,
            ``RESNET.FREQUENCY_STRIDES``).
        drop_rate: dropout before the head (``MODEL.DROPOUT_RATE``).
        token_mixer: ``"rep"`` (the paper's fusable mixer) or ``"parallel"`` (AudioInceptionNeXt's paths;
            ``TRANS_FUNC`` of the respective original configs).
        mlp_act: ReLU between the MLP's two 1x1 convs (the rep block has it; AudioInceptionNeXt does not).
        inference_mode: build the fused depthwise convs directly (the paper's inference model; rep mixer only).

    Shapes: ``(B, 1, T, F) -> (B, num_classes)`` logits, in train and eval mode.

    Example:
        >>> import arinext, torch
        >>> m = arinext.create_model("audio_rep_inception_next", num_classes=309)
        >>> m.eval()(torch.randn(1, 1, 512, 128)).shape
        torch.Size([1, 309])
    """

    def __init__(
        self,
        in_chans: int = 1,
        num_classes: NumClasses = 309,
        depths: Sequence[int] = (3, 4, 6, 3),
        dims: Sequence[int] = (64, 128, 256, 512),
        mlp_ratio: int = 4,
        time_kernel_sizes: Sequence[int] = (21, 11, 3),
        freq_kernel_sizes: Sequence[int] = (21, 11, 3),
        stem_kernel: tuple[int, int] = (5, 7),
        time_strides: Sequence[int] = (1, 2, 2, 2),
        freq_strides: Sequence[int] = (1, 2, 2, 2),
        drop_rate: float = 0.5,
        token_mixer: TokenMixer = "rep",
        mlp_act: bool = True,
        inference_mode: bool = False,
    ) -> None:
        super().__init__()
        if not (len(depths) == len(dims) == len(time_strides) == len(freq_strides)):
            raise ConfigError("depths, dims, time_strides and freq_strides must have the same length")
        if token_mixer not in ("rep", "parallel"):
            raise ConfigError(f"token_mixer must be 'rep' or 'parallel', got {token_mixer!r}")
        if inference_mode and token_mixer != "rep":
            raise ConfigError("inference_mode needs token_mixer='rep': the parallel paths cannot be fused")
        self.stem = Stem(in_chans, dims[0], tuple(stem_kernel))  # type: ignore[arg-type]
        stages, prev = [], dims[0]
        for depth, dim, st, sf in zip(depths, dims, time_strides, freq_strides):
            stages.append(
                AudioRepInceptionNeXtStage(
                    prev,
                    dim,
                    depth,
                    (st, sf),
                    time_kernel_sizes=time_kernel_sizes,
                    freq_kernel_sizes=freq_kernel_sizes,
                    mlp_ratio=mlp_ratio,
                    token_mixer=token_mixer,
                    mlp_act=mlp_act,
                    inference_mode=inference_mode,
                )
            )
            prev = dim
        self.stages = nn.Sequential(*stages)
        self.num_features = prev
        self.head = ClassifierHead(prev, num_classes, drop_rate)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, ConvMlp) and m.fc2.bn is not None:
                nn.init.zeros_(m.fc2.bn.weight)  # each residual branch starts as identity (ZERO_INIT_FINAL_BN)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.stages(self.stem(x))

    def stem_batchnorms(self) -> list[nn.BatchNorm2d]:
        return [m for m in self.stem.modules() if isinstance(m, nn.BatchNorm2d)]


def _create(arch: dict[str, Any], **kwargs: Any) -> AudioRepInceptionNeXt:
    return AudioRepInceptionNeXt(**{**arch, **kwargs})


_PAPER = dict(depths=(3, 4, 6, 3), dims=(64, 128, 256, 512))


@register_model
def audio_rep_inception_next(**kwargs: Any) -> AudioRepInceptionNeXt:
    """The paper's model: depths (3, 4, 6, 3), widths (64, 128, 256, 512); 11.83M params at 309 classes."""
    return _create(_PAPER, **kwargs)


@register_model
def audio_rep_inception_next_small(**kwargs: Any) -> AudioRepInceptionNeXt:
    """Half width, depths (2, 2, 4, 2): for edge devices."""
    return _create(dict(depths=(2, 2, 4, 2), dims=(32, 64, 128, 256)), **kwargs)


@register_model
def audio_rep_inception_next_tiny(**kwargs: Any) -> AudioRepInceptionNeXt:
    """Quarter width, one block per stage: for tests and microcontroller-class budgets."""
    return _create(dict(depths=(1, 1, 1, 1), dims=(16, 32, 64, 128)), **kwargs)


@register_model
def audio_inception_next(**kwargs: Any) -> AudioRepInceptionNeXt:
    """The authors' EPIC-SOUNDS challenge model (parallel, non-fusable paths): 11,834,869 params at 309 classes."""
    return _create(dict(_PAPER, token_mixer="parallel", mlp_act=False), **kwargs)
