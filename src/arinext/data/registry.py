"""Registered datasets: name -> how its clips are listed (or made) and its default front-end preset.

Every dataset is registered here with :func:`register_dataset` (explicit names, no name magic), in one
:class:`~arinext.utils.registry.Registry` as every extension point is. A dataset stored as files has an
adapter ``(root, subset, **options) -> Manifest``; a generated one (``synthetic``) has a generator
``(subset, frontend, views, seed, **options) -> Dataset`` and needs no root.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..utils.errors import ConfigError
from ..utils.registry import Registry
from .manifests.custom import csv_manifest, folder_manifest
from .manifests.epic import epic_kitchens_100, epic_sounds
from .manifests.nsynth import nsynth
from .manifests.speech_commands import speech_commands_v2
from .manifests.urbansound8k import urbansound8k
from .manifests.vggsound import vggsound
from .records import Manifest, check_subset
from .synthetic import synthetic_dataset

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "dataset_info",
    "dataset_preset",
    "get_manifest",
    "list_datasets",
    "register_dataset",
]


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset.

    Attributes:
        preset: its default front-end preset, a key of :data:`arinext.audio.PRESETS`.
        adapter: ``(root, subset, **options) -> Manifest`` for clips stored as files under a root folder.
        generator: ``(subset, frontend, views, seed, **options) -> Dataset`` for clips made on the fly.
    """

    preset: str
    adapter: Callable[..., Manifest] | None = None
    generator: Callable[..., Dataset] | None = None

    @property
    def needs_root(self) -> bool:
        """Whether the clips are files under a root folder (``data.root``)."""
        return self.adapter is not None


#: Registered datasets by name.
DATASETS: Registry[DatasetInfo] = Registry("dataset")


def register_dataset(
    name: str,
    preset: str,
    adapter: Callable[..., Manifest] | None = None,
    generator: Callable[..., Dataset] | None = None,
) -> DatasetInfo:
    """Register dataset ``name`` with its default front-end ``preset`` and either an ``adapter`` or a ``generator``."""
    if (adapter is None) == (generator is None):
        raise ValueError(f"dataset {name!r}: give exactly one of adapter and generator")
    return DATASETS.register(name, DatasetInfo(preset, adapter, generator))


register_dataset("speech_commands_v2", "speech_commands_v2", speech_commands_v2)
register_dataset("urbansound8k", "urbansound8k", urbansound8k)
register_dataset("nsynth", "nsynth", nsynth)
register_dataset("vggsound", "vggsound", vggsound)
register_dataset("epic_sounds", "epic_sounds", epic_sounds)
register_dataset("epic_kitchens_100", "epic_kitchens_100", epic_kitchens_100)
# The user's own data: 16 kHz VGG-Sound-style features by default; any preset works.
register_dataset("folder", "vggsound", folder_manifest)
register_dataset("csv", "vggsound", csv_manifest)
# Generated band-limited noise maps (smoke tests, benchmarks): no files, no root.
register_dataset("synthetic", "vggsound", generator=synthetic_dataset)


def dataset_info(name: str) -> DatasetInfo:
    """The registration of dataset ``name`` (a :class:`~arinext.utils.errors.ConfigError` if there is none)."""
    return DATASETS.get(name)


def list_datasets(stored: bool = False) -> list[str]:
    """Registered dataset names; ``stored=True``: only those read from files (the ones with a manifest)."""
    return [n for n in DATASETS if not stored or DATASETS.get(n).needs_root]


def dataset_preset(name: str) -> str:
    """Default front-end preset of a dataset: a key of :data:`arinext.audio.PRESETS`."""
    return dataset_info(name).preset


def get_manifest(name: str, root: str | Path, subset: str, **kwargs: Any) -> Manifest:
    """Build the :class:`Manifest` of ``subset`` of dataset ``name`` stored under ``root``.

    Args:
        name: one of :func:`list_datasets` with ``stored=True``.
        root: the dataset's folder (the CSV file itself also works for ``"csv"``).
        subset: ``"training"``, ``"validation"`` or ``"testing"``.
        **kwargs: adapter options, e.g. ``fold=3`` for ``"urbansound8k"``.
    """
    info = dataset_info(name)
    if info.adapter is None:
        raise ConfigError(f"dataset {name!r} is generated, not read from files: it has no manifest")
    return info.adapter(root, check_subset(subset), **kwargs)
