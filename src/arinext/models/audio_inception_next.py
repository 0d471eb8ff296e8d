"""AudioInceptionNeXt: the authors' earlier, non-fusable parallel-path block.

Report: "AudioInceptionNeXt: TCL AI LAB Submission to EPIC-SOUND Audio-Based-Interaction-Recognition
Challenge 2023", K. W. Lau, Y. A. U. Rehman, Y. Xie, L. Ma (https://arxiv.org/abs/2307.07265).
Original code: https://github.com/StevenLauHKHK/AudioInceptionNeXt (``audioinceptionnext_helper.py``).

Each block runs three parallel *paths* on the output of a 1x1 head conv (+BN, no ReLU); path ``k``
is ``DW k x 1 -> BN -> ReLU -> DW 1 x k -> BN -> ReLU`` for ``k`` in (21, 11, 3). The paths are summed
(no in-stage identity), then ``1x1 expand -> BN -> 1x1 project -> BN`` (no ReLU in between), and the
outer residual with a ReLU. Because each path has a ReLU between its two convs the paths cannot be
merged; AudioRepInceptionNeXt reorders them into "parallel time, then parallel frequency" to fuse them.
Same convs, hence the same parameter and MAC counts, as AudioRepInceptionNeXt's training form.

Stem and head are AudioRepInceptionNeXt's. Differences from the original: logits in eval mode too,
adaptive pooling.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn

from ..layers.reparam import ConvNorm
from ._registry import register_model
from .audio_rep_inception_next import ClassifierHead, NumClasses, Stem

__all__ = ["AudioInceptionNeXt"]


class SeparablePath(nn.Module):
    """``relu(bn(DW 1 x k(relu(bn(DW k x 1(x))))))``: one path of the parallel mixer."""

    def __init__(self, dim: int, time_kernel: int, freq_kernel: int) -> None:
        super().__init__()
        self.time = ConvNorm(dim, dim, (time_kernel, 1), padding=(time_kernel // 2, 0), groups=dim)
        self.freq = ConvNorm(dim, dim, (1, freq_kernel), padding=(0, freq_kernel // 2), groups=dim)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.freq(self.act(self.time(x))))


class AudioInceptionNeXtBlock(nn.Module):
    """1x1 head (+BN, carries the stride) -> sum of parallel separable paths -> 1x1 MLP, residual, ReLU."""

    def __init__(
        self,
        in_chs: int,
        dim: int,
        stride: tuple[int, int] = (1, 1),
        time_kernel_sizes: Sequence[int] = (21, 11, 3),
        freq_kernel_sizes: Sequence[int] = (21, 11, 3),
        mlp_ratio: int = 4,
    ) -> None:
        super().__init__()
        if len(time_kernel_sizes) != len(freq_kernel_sizes):
            raise ValueError("time_kernel_sizes and freq_kernel_sizes must have the same length (one per path)")
        self.head = ConvNorm(in_chs, dim, 1, stride=stride)
        self.paths = nn.ModuleList(SeparablePath(dim, kt, kf) for kt, kf in zip(time_kernel_sizes, freq_kernel_sizes))
        self.mlp = nn.Sequential(ConvNorm(dim, dim * mlp_ratio, 1), ConvNorm(dim * mlp_ratio, dim, 1))
        self.shortcut = ConvNorm(in_chs, dim, 1, stride=stride) if in_chs != dim or stride != (1, 1) else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        h = self.head(x)
        mixed = self.paths[0](h)
        for path in self.paths[1:]:
            mixed = mixed + path(h)
        return self.act(shortcut + self.mlp(mixed))


class AudioInceptionNeXt(nn.Module):
    """AudioInceptionNeXt on log-mel spectrograms; arguments as :class:`AudioRepInceptionNeXt`.

    Shapes: ``(B, 1, T, F) -> (B, num_classes)`` logits, in train and eval mode.
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
    ) -> None:
        super().__init__()
        if not (len(depths) == len(dims) == len(time_strides) == len(freq_strides)):
            raise ValueError("depths, dims, time_strides and freq_strides must have the same length")
        self.stem = Stem(in_chans, dims[0], tuple(stem_kernel))  # type: ignore[arg-type]
        blocks, prev = [], dims[0]
        for depth, dim, st, sf in zip(depths, dims, time_strides, freq_strides):
            stage = [
                AudioInceptionNeXtBlock(
                    prev if i == 0 else dim,
                    dim,
                    (st, sf) if i == 0 else (1, 1),
                    time_kernel_sizes,
                    freq_kernel_sizes,
                    mlp_ratio,
                )
                for i in range(depth)
            ]
            blocks.append(nn.Sequential(*stage))
            prev = dim
        self.stages = nn.Sequential(*blocks)
        self.num_features = prev
        self.head = ClassifierHead(prev, num_classes, drop_rate)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, AudioInceptionNeXtBlock):
                last_bn = m.mlp[1].bn
                assert last_bn is not None
                nn.init.zeros_(last_bn.weight)  # each residual branch starts as identity

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"expected a (B, 1, T, F) spectrogram, got shape {tuple(x.shape)}")
        return self.stages(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        return self.head(self.forward_features(x))


@register_model
def audio_inception_next(**kwargs: Any) -> AudioInceptionNeXt:
    """The challenge model: depths (3, 4, 6, 3), widths (64, 128, 256, 512); 11,834,869 params at 309 classes."""
    return AudioInceptionNeXt(**kwargs)
