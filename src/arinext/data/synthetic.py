"""``dataset: synthetic``: generated log-mel-like maps whose class is the frequency band that carries energy.

Separable, instant to load, no files: for smoke tests and benchmarks. It is registered like every dataset
(:mod:`arinext.data.registry`), as a generated one: :func:`synthetic_dataset` makes a subset's clips from
the front end's map size instead of reading a manifest under a root folder.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from ..audio.frontend import FrontendConfig
from ..utils.errors import ConfigError
from .records import SUBSETS

__all__ = ["SyntheticSpectrograms", "synthetic_dataset"]


class SyntheticSpectrograms(Dataset):
    """Random ``(1, T, F)`` maps where class ``c`` raises the energy of mel band ``c`` of ``num_classes``.

    Every item is a deterministic function of ``(seed, subset, index)``; items are returned in the
    ``arinext.data`` batch-dict format. With ``views > 1`` the inputs are ``(views, 1, T, F)``.

    Args:
        num_classes: number of classes (bands).
        clips_per_class: clips of each class.
        num_frames, n_mels: map size ``T x F``.
        subset: changes the noise, so that subsets are disjoint.
        views: test views per clip.
        seed: base seed.
        fold: cross-validation fold; like ``subset``, it only changes the noise.
        snr: height of the class band over the unit-variance noise.
    """

    def __init__(
        self,
        num_classes: int = 4,
        clips_per_class: int = 16,
        num_frames: int = 64,
        n_mels: int = 32,
        subset: str = "training",
        views: int = 1,
        seed: int = 0,
        snr: float = 1.5,
        fold: int = 0,
    ) -> None:
        if num_classes < 2 or num_classes > n_mels:
            raise ConfigError(f"need 2 <= num_classes <= n_mels, got {num_classes} classes and {n_mels} mel bins")
        self.num_classes, self.clips_per_class = num_classes, clips_per_class
        self.num_frames, self.n_mels, self.views, self.snr = num_frames, n_mels, views, snr
        self.seed = (seed * 1000 + fold) * 10 + (SUBSETS.index(subset) if subset in SUBSETS else 3)
        self.labels = [f"band{c}" for c in range(num_classes)]

    def __len__(self) -> int:
        return self.num_classes * self.clips_per_class

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        g = torch.Generator().manual_seed(self.seed * 100003 + index)
        target = index % self.num_classes
        x = torch.randn(self.views, 1, self.num_frames, self.n_mels, generator=g)
        width = self.n_mels // self.num_classes
        x[..., target * width : (target + 1) * width] += self.snr
        return {"inputs": x if self.views > 1 else x[0], "target": target, "index": index}


def synthetic_dataset(
    subset: str, frontend: FrontendConfig, views: int = 1, seed: int = 0, **options: Any
) -> SyntheticSpectrograms:
    """The ``subset`` of the synthetic dataset at the map size of ``frontend`` (``num_frames x n_mels``);
    ``options`` are :class:`SyntheticSpectrograms` arguments (``num_classes``, ``clips_per_class``, ``snr``, ``fold``)."""
    return SyntheticSpectrograms(
        num_frames=frontend.num_frames, n_mels=frontend.n_mels, subset=subset, views=views, seed=seed, **options
    )
