"""The classifier interface every registered model implements, and its pooling + linear head.

Every model in :mod:`arinext.models` is a :class:`ClassifierModel`: ``forward_features`` maps a
``(B, 1, T, F)`` log-mel batch to feature maps, ``forward_head`` pools them and applies the linear
head(s), ``get_classifier``/``reset_classifier`` give and replace the head, and ``stem_batchnorms``
names the BatchNorms that fine-tuning keeps trainable (``BN.FREEZE`` of the original recipes freezes
every other one). Training and deployment code talk to models only through these methods [timm].

A model with one head returns logits ``(B, C)``; a model built with ``num_classes={"verb": 97,
"noun": 300}`` returns a :class:`MultiHeadOutput`, a ``dict`` of logits per head, so code that
handles both says which one it expects with ``isinstance``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Union

import torch
from torch import nn

from ..utils.errors import InputError

__all__ = ["ClassifierHead", "ClassifierModel", "HeadOutput", "MultiHeadOutput", "NumClasses", "output_classes"]

#: Classes of one head, or of several heads by name.
NumClasses = Union[int, Mapping[str, int]]


class MultiHeadOutput(dict[str, torch.Tensor]):
    """Logits ``(B, C_head)`` of each head of a multi-head model, keyed by head name."""


#: What a model's ``forward`` returns: logits ``(B, C)``, or one tensor per head.
HeadOutput = Union[torch.Tensor, MultiHeadOutput]

Features = Union[torch.Tensor, Sequence[torch.Tensor]]


class ClassifierHead(nn.Module):
    """Global average pool -> dropout -> linear; one linear layer per head for a dict of class counts.

    Args:
        in_features: channels of the pooled features (summed over pathways for several feature maps).
        num_classes: classes, or ``{"head": classes, ...}``; 0 gives the pooled features.
        drop_rate: dropout before the linear layer(s) (``MODEL.DROPOUT_RATE``).

    ``forward`` takes one feature map ``(B, C, T', F')`` or a sequence of them (one per pathway, pooled
    separately and concatenated) and returns logits ``(B, num_classes)`` or a :class:`MultiHeadOutput`.
    Linear weights start from N(0, 0.01), biases from 0 (the original's ``FC_INIT_STD``).
    """

    def __init__(self, in_features: int, num_classes: NumClasses, drop_rate: float = 0.5) -> None:
        super().__init__()
        self.in_features = in_features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(drop_rate)
        self.num_classes: int | dict[str, int] = (
            dict(num_classes) if isinstance(num_classes, Mapping) else int(num_classes)
        )
        if isinstance(self.num_classes, dict):
            self.fc: nn.Module = nn.ModuleDict({k: nn.Linear(in_features, n) for k, n in self.num_classes.items()})
        else:
            self.fc = nn.Linear(in_features, self.num_classes) if self.num_classes > 0 else nn.Identity()
        for m in self.fc.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def pooled(self, features: Features) -> torch.Tensor:
        """``(B, in_features)``: each feature map averaged over time and frequency, concatenated."""
        maps = [features] if isinstance(features, torch.Tensor) else list(features)
        return torch.cat([self.pool(f).flatten(1) for f in maps], dim=1)

    def logits(self, x: torch.Tensor) -> HeadOutput:
        """Apply the linear head(s) to pooled (or per-frame) features ``(..., in_features)``."""
        if isinstance(self.fc, nn.ModuleDict):
            return MultiHeadOutput({k: fc(x) for k, fc in self.fc.items()})
        return self.fc(x)

    def forward(self, features: Features, pre_logits: bool = False) -> HeadOutput:
        x = self.drop(self.pooled(features))
        return x if pre_logits else self.logits(x)


class ClassifierModel(nn.Module):
    """Base of every registered model: features, then a :class:`ClassifierHead` in ``self.head``.

    Subclasses implement :meth:`forward_features` and :meth:`stem_batchnorms` and build ``self.head``
    with ``self.num_features`` input channels.
    """

    head: ClassifierHead
    num_features: int

    def forward_features(self, x: torch.Tensor) -> Features:
        """Final feature map(s) of a ``(B, 1, T, F)`` batch."""
        raise NotImplementedError

    def stem_batchnorms(self) -> list[nn.BatchNorm2d]:
        """The BatchNorms of the stem(s): the ones the paper's fine-tuning keeps trainable."""
        raise NotImplementedError

    def forward_head(self, features: Features, pre_logits: bool = False) -> HeadOutput:
        """Pool ``features`` and apply the head; ``pre_logits=True`` returns the pooled vector."""
        return self.head(features, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> HeadOutput:
        return self.forward_head(self.forward_features(x))

    @staticmethod
    def check_input(x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise InputError(f"expected a (B, 1, T, F) spectrogram, got shape {tuple(x.shape)}")

    def get_classifier(self) -> nn.Module:
        """The linear layer (an ``nn.ModuleDict`` of them for several heads)."""
        return self.head.fc

    def reset_classifier(self, num_classes: NumClasses) -> None:
        """Replace the head with a freshly initialised one (fine-tuning on other classes)."""
        param = next(self.parameters())
        self.head = ClassifierHead(self.num_features, num_classes, self.head.drop.p).to(param.device, param.dtype)


def output_classes(model: nn.Module) -> int:
    """The number of classes of a single-head model (what a classifier of clips, or an exported file, runs)."""
    num_classes = getattr(getattr(model, "head", None), "num_classes", None)
    if isinstance(num_classes, Mapping):
        raise InputError(
            f"this needs a single-head model; this one has heads {sorted(num_classes)}: "
            "call the model on LogMel features directly"
        )
    if not isinstance(num_classes, int) or num_classes < 1:
        raise InputError(f"model has no classification head (num_classes={num_classes!r})")
    return num_classes
