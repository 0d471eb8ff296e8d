"""AudioRepInceptionNeXt.

Paper: "AudioRepInceptionNeXt: A lightweight single-stream architecture for efficient audio
recognition", K. W. Lau, Y. A. U. Rehman, L.-M. Po, Neurocomputing 578:127432, 2024
(https://arxiv.org/abs/2404.13551).
Original code: https://github.com/StevenLauHKHK/AudioRepInceptionNeXt at commit 17272a5 (its
``audio_model_builder.py::AudioRepInceptionNeXt`` and ``audiorepinceptionnext_helper.py``).

Differences from the original, none of which changes the function computed:

* the model returns logits in train and eval mode (the original applies softmax in eval);
* pooling is adaptive, so any number of frames and mel bins works;
* one :class:`~arinext.layers.ReparamMultiKernelDWConv` per axis replaces the six hand-named branch
  convs, and ``reparameterize()`` deletes the branches (the original keeps them);
* an optional deeper fold (``reparameterize_model(m, fold="full")``) that the paper does not do.

Input is a log-mel spectrogram ``(B, 1, T, F)``: dim 2 is time, dim 3 is frequency.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn

from ..layers.reparam import ConvNorm, ReparamMultiKernelDWConv
from ._registry import register_model

__all__ = ["AudioRepInceptionNeXt", "ClassifierHead"]

NumClasses = int | Mapping[str, int]


class RepInceptionMixer(nn.Module):
    """1x1 head conv (carries the stride), then time-axis then frequency-axis multi-kernel DW convs.

    ``h = relu(bn(conv1x1(x)))``, ``t = relu(dw_time(h) + h)``, ``f = relu(dw_freq(t) + t)``.
    """

    def __init__(
        self,
        in_chs: int,
        dim: int,
        stride: tuple[int, int],
        time_kernel_sizes: Sequence[int],
        freq_kernel_sizes: Sequence[int],
        inference_mode: bool = False,
    ) -> None:
        super().__init__()
        self.head = ConvNorm(in_chs, dim, 1, stride=stride)
        self.time_mixer = ReparamMultiKernelDWConv(dim, time_kernel_sizes, "time", inference_mode=inference_mode)
        self.freq_mixer = ReparamMultiKernelDWConv(dim, freq_kernel_sizes, "freq", inference_mode=inference_mode)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.head(x))
        x = self.act(self.time_mixer(x))  # NOTE: the identity is added inside the mixer, before the ReLU
        return self.act(self.freq_mixer(x))


class ConvMlp(nn.Module):
    """1x1 expand -> BN -> ReLU -> 1x1 project -> BN (the project BN is zero-initialised)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = ConvNorm(dim, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = ConvNorm(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class AudioRepInceptionNeXtBlock(nn.Module):
    """Mixer + MLP with a residual connection and a ReLU after the add.

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
        inference_mode: bool = False,
    ) -> None:
        super().__init__()
        self.mixer = RepInceptionMixer(in_chs, dim, stride, time_kernel_sizes, freq_kernel_sizes, inference_mode)
        self.mlp = ConvMlp(dim, dim * mlp_ratio)
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


class ClassifierHead(nn.Module):
    """Global average pool -> dropout -> linear; several linear heads for a dict of class counts.

    Returns a tensor ``(B, num_classes)`` or, for ``num_classes={"verb": 97, "noun": 300}``, a dict of them.
    """

    def __init__(self, in_features: int, num_classes: NumClasses, drop_rate: float = 0.5) -> None:
        super().__init__()
        self.in_features = in_features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(drop_rate)
        self.num_classes: NumClasses = dict(num_classes) if isinstance(num_classes, Mapping) else int(num_classes)
        if isinstance(self.num_classes, dict):
            self.fc: nn.Module = nn.ModuleDict({k: nn.Linear(in_features, n) for k, n in self.num_classes.items()})
        else:
            self.fc = nn.Linear(in_features, self.num_classes) if self.num_classes > 0 else nn.Identity()
        for m in self.fc.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor | dict[str, torch.Tensor]:
        x = self.drop(self.pool(x).flatten(1))
        if pre_logits:
            return x
        if isinstance(self.fc, nn.ModuleDict):
            return {k: fc(x) for k, fc in self.fc.items()}
        return self.fc(x)


class AudioRepInceptionNeXt(nn.Module):
    """AudioRepInceptionNeXt on log-mel spectrograms.

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
        inference_mode: build the fused depthwise convs directly (the paper's inference model).

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
        inference_mode: bool = False,
    ) -> None:
        super().__init__()
        if not (len(depths) == len(dims) == len(time_strides) == len(freq_strides)):
            raise ValueError("depths, dims, time_strides and freq_strides must have the same length")
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
                nn.init.zeros_(m.fc2.bn.weight)  # each residual branch starts as identity

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"expected a (B, 1, T, F) spectrogram, got shape {tuple(x.shape)}")
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor | dict[str, torch.Tensor]:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: NumClasses) -> None:
        """Replace the head with a freshly initialised one (fine-tuning)."""
        device = next(self.parameters()).device
        self.head = ClassifierHead(self.num_features, num_classes, self.head.drop.p).to(device)


def _create(arch: dict[str, Any], **kwargs: Any) -> AudioRepInceptionNeXt:
    return AudioRepInceptionNeXt(**{**arch, **kwargs})


@register_model
def audio_rep_inception_next(**kwargs: Any) -> AudioRepInceptionNeXt:
    """The paper's model: depths (3, 4, 6, 3), widths (64, 128, 256, 512); 11.83M params at 309 classes."""
    return _create(dict(depths=(3, 4, 6, 3), dims=(64, 128, 256, 512)), **kwargs)


@register_model
def audio_rep_inception_next_small(**kwargs: Any) -> AudioRepInceptionNeXt:
    """Half width, depths (2, 2, 4, 2): for edge devices."""
    return _create(dict(depths=(2, 2, 4, 2), dims=(32, 64, 128, 256)), **kwargs)


@register_model
def audio_rep_inception_next_tiny(**kwargs: Any) -> AudioRepInceptionNeXt:
    """Quarter width, one block per stage: for tests and microcontroller-class budgets."""
    return _create(dict(depths=(1, 1, 1, 1), dims=(16, 32, 64, 128)), **kwargs)
