"""Auditory Slow-Fast R50 and its single streams, the paper's main baseline.

Paper: "Slow-Fast Auditory Streams for Audio Recognition", E. Kazakos, A. Nagrani, A. Zisserman,
D. Damen, ICASSP 2021 (https://arxiv.org/abs/2103.03516).
Original code: https://github.com/ekazakos/auditory-slow-fast at commit 6af3fd7
(``audio_model_builder.py::SlowFast`` / ``ResNet``, ``resnet_helper.py``, ``stem_helper.py``),
configs ``configs/VGG-Sound/{SLOWFAST,SLOW,FAST}_R50.yaml``.

Architecture (ResNet-50 depths (3, 4, 6, 3), ``WIDTH_PER_GROUP`` 64, ``ALPHA`` 4, ``BETA_INV`` 8):

* two pathways: **Slow** sees the spectrogram subsampled in time by ``alpha`` (the original's
  ``linspace`` frame selection, done inside the model here) with full width; **Fast** sees every frame
  with ``1/beta_inv`` of the channels;
* stems: conv (kt x 7) stride 2, BN, ReLU, max-pool 3x3 stride 2 (kt = 1 slow, 5 fast);
* separable bottlenecks: ``kt x 1`` conv (time) -> ``1 x 3`` conv (frequency, carries the stride)
  -> ``1 x 1``; kt = (1, 1, 3, 3) in res2..res5 for Slow, 3 everywhere for Fast; strides are
  frequency-only (1, 2, 2, 2);
* lateral fast-to-slow fusion after the stem and res2..res4: conv 7x1 with time stride ``alpha``,
  ``2x`` channels, BN, ReLU, concatenated to the slow features;
* head: average pool of each pathway, concatenation, dropout 0.5, linear.

Differences from the original, none of which changes the function at the original's input sizes:
the model takes one ``(B, 1, T, F)`` tensor (not a list of pathways) and returns logits in eval mode
too; pooling is adaptive; when ``T`` is not a multiple of 16 the fused fast features can be one frame
longer or shorter than the slow ones (the original then fails in ``torch.cat``), so they are cropped or
zero-padded in time to the slow length. The single-stream models (``slow_audio_r50``, ``fast_audio_r50``)
are the original ``ResNet`` builder, which feeds the full spectrogram to its one pathway.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.classifier import ClassifierHead, ClassifierModel, NumClasses
from ..layers.reparam import ConvNorm
from ..utils.errors import ConfigError, InputError
from ._registry import register_model

__all__ = ["AudioSlowFast"]


class SeparableBottleneck(nn.Module):
    """ResNet bottleneck with a time-only ``kt x 1`` conv, a ``1 x 3`` frequency conv and a ``1 x 1``.

    ``relu(shortcut(x) + c(relu(b(relu(a(x))))))``; the stride is on the frequency axis only.
    """

    def __init__(self, in_chs: int, out_chs: int, inner: int, time_kernel: int, freq_stride: int) -> None:
        super().__init__()
        self.a = ConvNorm(in_chs, inner, (time_kernel, 1), padding=(time_kernel // 2, 0))
        self.b = ConvNorm(inner, inner, (1, 3), stride=(1, freq_stride), padding=(0, 1))
        self.c = ConvNorm(inner, out_chs, 1)
        needs_proj = in_chs != out_chs or freq_stride != 1
        self.shortcut = ConvNorm(in_chs, out_chs, 1, stride=(1, freq_stride)) if needs_proj else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        y = self.act(self.a(x))
        y = self.act(self.b(y))
        return self.act(shortcut + self.c(y))


class PathwayStem(nn.Module):
    """Conv (kt x 7) stride 2 -> BN -> ReLU -> max-pool 3x3 stride 2."""

    def __init__(self, in_chans: int, out_chs: int, time_kernel: int) -> None:
        super().__init__()
        self.conv = ConvNorm(in_chans, out_chs, (time_kernel, 7), stride=2, padding=(time_kernel // 2, 3))
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.conv(x)))


class FuseFastToSlow(nn.Module):
    """Lateral connection: conv ``k x 1`` with time stride ``alpha`` on the fast features, BN, ReLU."""

    def __init__(self, fast_chs: int, ratio: int, kernel: int, alpha: int) -> None:
        super().__init__()
        self.conv = ConvNorm(fast_chs, fast_chs * ratio, (kernel, 1), stride=(alpha, 1), padding=(kernel // 2, 0))
        self.act = nn.ReLU(inplace=True)

    def forward(self, slow: torch.Tensor, fast: torch.Tensor) -> torch.Tensor:
        fuse = self.act(self.conv(fast))
        return torch.cat([slow, _match_time(fuse, slow)], dim=1)


@torch.fx.wrap  # one opaque call for torch.fx, which cannot branch on shapes (arinext.optimize_for_inference)
def _match_time(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``x`` cropped or zero-padded in time to ``like``'s length (only for lengths the original cannot run;
    see the module docstring)."""
    extra = like.shape[2] - x.shape[2]
    return F.pad(x, (0, 0, 0, extra)) if extra else x


def _make_stage(in_chs: int, out_chs: int, inner: int, depth: int, time_kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        *(
            SeparableBottleneck(in_chs if i == 0 else out_chs, out_chs, inner, time_kernel, stride if i == 0 else 1)
            for i in range(depth)
        )
    )


class AudioSlowFast(ClassifierModel):
    """Auditory Slow-Fast (two pathways with lateral fusion) or one of its streams alone.

    Args:
        num_classes: classes of the linear head (or a dict of them for several heads).
        in_chans: input channels (1 for a log-mel spectrogram).
        pathways: ``("slow", "fast")`` for Slow-Fast, ``("slow",)`` or ``("fast",)`` for one stream.
        depths: bottlenecks per stage res2..res5.
        width: ``WIDTH_PER_GROUP`` of the slow pathway (stem width; stage outputs are 4, 8, 16, 32 x it).
        alpha: time subsampling of the slow pathway and time stride of the fusion convs.
        beta_inv: channel reduction of the fast pathway.
        fusion_ratio: fusion conv output channels / fast channels.
        fusion_kernel: time taps of the fusion conv.
        slow_time_kernels, fast_time_kernels: time taps of the stem and of res2..res5.
        freq_strides: frequency stride of the first block of res2..res5.
        drop_rate: dropout before the head.

    Shapes: ``(B, 1, T, F) -> (B, num_classes)`` logits; ``T >= alpha`` frames for Slow-Fast.
    """

    def __init__(
        self,
        num_classes: NumClasses = 309,
        in_chans: int = 1,
        pathways: Sequence[str] = ("slow", "fast"),
        depths: Sequence[int] = (3, 4, 6, 3),
        width: int = 64,
        alpha: int = 4,
        beta_inv: int = 8,
        fusion_ratio: int = 2,
        fusion_kernel: int = 7,
        slow_time_kernels: Sequence[int] = (1, 1, 1, 3, 3),
        fast_time_kernels: Sequence[int] = (5, 3, 3, 3, 3),
        freq_strides: Sequence[int] = (1, 2, 2, 2),
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__()
        pathways = tuple(pathways)
        if pathways not in (("slow", "fast"), ("slow",), ("fast",)):
            raise ConfigError(f"pathways must be ('slow', 'fast'), ('slow',) or ('fast',), got {pathways}")
        if not (len(depths) == len(freq_strides) == len(slow_time_kernels) - 1 == len(fast_time_kernels) - 1):
            raise ConfigError("depths, freq_strides and the time kernels (stem + one per stage) must agree in length")
        self.pathways = pathways
        self.alpha = alpha
        self.fused = len(pathways) == 2
        widths = {"slow": width, "fast": width // beta_inv}
        kernels = {"slow": tuple(slow_time_kernels), "fast": tuple(fast_time_kernels)}
        # Fast features entering each fusion: the stem output, then the outputs of res2..res4.
        fast_dims = [widths["fast"]] + [widths["fast"] * 4 * 2**i for i in range(len(depths) - 1)]
        self.stems = nn.ModuleDict({p: PathwayStem(in_chans, widths[p], kernels[p][0]) for p in pathways})
        self.stages = nn.ModuleDict({p: nn.ModuleList() for p in pathways})
        self.fusions = nn.ModuleList()
        num_stages = len(depths)
        for p in pathways:
            prev = widths[p]
            for i, (depth, stride) in enumerate(zip(depths, freq_strides)):
                inner, out = widths[p] * 2**i, widths[p] * 4 * 2**i
                extra = fast_dims[i] * fusion_ratio if self.fused and p == "slow" else 0  # fused fast features
                self.stages[p].append(_make_stage(prev + extra, out, inner, depth, kernels[p][i + 1], stride))
                prev = out
        if self.fused:
            self.fusions.extend(FuseFastToSlow(d, fusion_ratio, fusion_kernel, alpha) for d in fast_dims)
        self.num_features = sum(widths[p] * 4 * 2 ** (num_stages - 1) for p in pathways)
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, SeparableBottleneck) and m.c.bn is not None:
                nn.init.zeros_(m.c.bn.weight)  # ZERO_INIT_FINAL_BN

    def _slow_input(self, x: torch.Tensor) -> torch.Tensor:
        """Every ``alpha``-th frame, picked as the original data loader does (``linspace`` indices)."""
        num = x.shape[2] // self.alpha
        if num < 1:
            raise InputError(f"Slow-Fast needs at least alpha={self.alpha} frames, got T={x.shape[2]}")
        index = torch.linspace(0, x.shape[2] - 1, num, device=x.device).long()
        return x.index_select(2, index)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Final feature map of each pathway, in ``self.pathways`` order (the head pools each)."""
        self.check_input(x)
        if not self.fused:
            p = self.pathways[0]
            y = self.stems[p](x)
            for stage in self.stages[p]:
                y = stage(y)
            return [y]
        slow, fast = self.stems["slow"](self._slow_input(x)), self.stems["fast"](x)
        for i, (slow_stage, fast_stage) in enumerate(zip(self.stages["slow"], self.stages["fast"])):
            slow = self.fusions[i](slow, fast) if i < len(self.fusions) else slow
            slow, fast = slow_stage(slow), fast_stage(fast)
        return [slow, fast]

    def stem_batchnorms(self) -> list[nn.BatchNorm2d]:
        return [m for m in self.stems.modules() if isinstance(m, nn.BatchNorm2d)]


@register_model
def slowfast_audio_r50(**kwargs: Any) -> AudioSlowFast:
    """Auditory Slow-Fast R50 (``SLOWFAST_R50.yaml``): 26,679,453 params at 309 classes."""
    return AudioSlowFast(**{"pathways": ("slow", "fast"), **kwargs})


@register_model
def slow_audio_r50(**kwargs: Any) -> AudioSlowFast:
    """Slow stream alone (``SLOW_R50.yaml``: the original ResNet builder on the full spectrogram)."""
    return AudioSlowFast(**{"pathways": ("slow",), **kwargs})


@register_model
def fast_audio_r50(**kwargs: Any) -> AudioSlowFast:
    """Fast stream alone (``FAST_R50.yaml``, width 8): 470,077 params at 309 classes."""
    return AudioSlowFast(**{"pathways": ("fast",), "width": 8, "beta_inv": 1, **kwargs})
