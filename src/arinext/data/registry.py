"""Dataset name -> manifest adapter and default front-end preset (explicit keys, no name magic)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .manifests.custom import csv_manifest, folder_manifest
from .manifests.epic import epic_kitchens_100, epic_sounds
from .manifests.nsynth import nsynth
from .manifests.speech_commands import speech_commands_v2
from .manifests.urbansound8k import urbansound8k
from .manifests.vggsound import vggsound
from .records import Manifest, check_subset

__all__ = ["DatasetInfo", "dataset_preset", "get_manifest", "list_datasets"]


@dataclass(frozen=True)
class DatasetInfo:
    """A registered source: its adapter ``(root, subset, **kwargs) -> Manifest`` and front-end preset."""

    adapter: Callable[..., Manifest]
    preset: str


_DATASETS: dict[str, DatasetInfo] = {
    "speech_commands_v2": DatasetInfo(speech_commands_v2, "speech_commands_v2"),
    "urbansound8k": DatasetInfo(urbansound8k, "urbansound8k"),
    "nsynth": DatasetInfo(nsynth, "nsynth"),
    "vggsound": DatasetInfo(vggsound, "vggsound"),
    "epic_sounds": DatasetInfo(epic_sounds, "epic_sounds"),
    "epic_kitchens_100": DatasetInfo(epic_kitchens_100, "epic_kitchens_100"),
    # The user's own data: 16 kHz VGG-Sound-style features by default; any preset works.
    "folder": DatasetInfo(folder_manifest, "vggsound"),
    "csv": DatasetInfo(csv_manifest, "vggsound"),
}


def _info(name: str) -> DatasetInfo:
    if name not in _DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {list_datasets()}")
    return _DATASETS[name]


def list_datasets() -> list[str]:
    """Registered dataset names."""
    return list(_DATASETS)


def dataset_preset(name: str) -> str:
    """Default front-end preset of a dataset: a key of :data:`arinext.audio.PRESETS`."""
    return _info(name).preset


def get_manifest(name: str, root: str | Path, subset: str, **kwargs: Any) -> Manifest:
    """Build the :class:`Manifest` of ``subset`` of dataset ``name`` stored under ``root``.

    Args:
        name: one of :func:`list_datasets`.
        root: the dataset's folder (the CSV file itself also works for ``"csv"``).
        subset: ``"training"``, ``"validation"`` or ``"testing"``.
        **kwargs: adapter options, e.g. ``fold=3`` for ``"urbansound8k"``.
    """
    info = _info(name)
    return info.adapter(root, check_subset(subset), **kwargs)
