"""The user's own data: a folder per class, or a CSV manifest.

Folder layout (``"folder"``)::

    root/<class>/<clip>.wav            one folder per class; subsets by a stable hash of the path
                                       (folders starting with "_" or "." are not classes)
    root/training/<class>/<clip>.wav   or explicit subset folders (training|validation|testing,
    root/validation/<class>/...        also train|val|test)

CSV layout (``"csv"``)::

    path,label[,split][,...]           header row; paths relative to the CSV's folder; any other
                                       column (device, room, speaker, ...) goes into ``meta``
    dogs/rex.wav,dog,training
    street/a.wav,car;horn,testing      several labels separated by ";" make a multi-label manifest

Without a split column (or subset folders), clips go to subsets by a hash of their path: the
same file always lands in the same subset, whatever else is added (Speech Commands' scheme).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ...utils.errors import DataError, PathNotFoundError
from ..records import (
    ClipRecord,
    DatasetNotFoundError,
    Manifest,
    build_manifest,
    check_subset,
    csv_rows,
    label_index,
    meta_pairs,
)

__all__ = ["csv_manifest", "folder_manifest", "hash_subset"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
_ALIASES = {"training": "training", "train": "training", "validation": "validation", "val": "validation",
            "valid": "validation", "testing": "testing", "test": "testing"}  # fmt: skip


def hash_subset(name: str, validation_percent: float = 10.0, testing_percent: float = 10.0) -> str:
    """Stable subset of a clip from its name: ``"training"``, ``"validation"`` or ``"testing"``."""
    bucket = int(hashlib.sha1(name.encode()).hexdigest(), 16) % 10000 / 100.0
    if bucket < validation_percent:
        return "validation"
    return "testing" if bucket < validation_percent + testing_percent else "training"


def _class_dirs(parent: Path) -> list[Path]:
    """Class folders of ``parent``: sub-folders, except hidden ones and ``_``-prefixed ones such as
    Speech Commands' ``_background_noise_``."""
    return [p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))]


def folder_manifest(
    root: str | Path, subset: str, validation_percent: float = 10.0, testing_percent: float = 10.0
) -> Manifest:
    """Manifest from class folders; see the module docstring for the two layouts."""
    check_subset(subset)
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"folder: {root} does not exist; expected <root>/<class>/<clip>.wav")
    split_dirs = {_ALIASES[p.name]: p for p in root.iterdir() if p.is_dir() and p.name in _ALIASES}
    class_parents = list(split_dirs.values()) if split_dirs else [root]
    labels = sorted({c.name for parent in class_parents for c in _class_dirs(parent)})
    if not labels:
        raise DatasetNotFoundError(f"folder: no class folders in {root}; expected <root>/<class>/<clip>.wav")
    to_index = {name: i for i, name in enumerate(labels)}
    base = split_dirs.get(subset) if split_dirs else root
    rows = []
    for class_dir in sorted(_class_dirs(base) if base else []):
        for f in sorted(p for p in class_dir.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES):
            rel = f.relative_to(root).as_posix()
            if not split_dirs and hash_subset(rel, validation_percent, testing_percent) != subset:
                continue
            rows.append((str(f), ClipRecord(str(f), label_index(to_index, class_dir.name, str(f)))))
    return build_manifest(rows, labels, root)


def csv_manifest(
    root: str | Path,
    subset: str,
    labels: list[str] | str | Path | None = None,
    multi_label: bool | None = None,
    validation_percent: float = 10.0,
    testing_percent: float = 10.0,
) -> Manifest:
    """Manifest from a ``path,label[,split]`` CSV.

    Args:
        root: the CSV file, or a folder holding ``manifest.csv``.
        subset: rows whose ``split`` is this subset (aliases train/val/test accepted); without a
            split column, the hash split of :func:`hash_subset`.
        labels: the label list (a list, or a text file with one label per line); default the
            sorted labels found in the whole CSV. A label outside it is an error naming the row.
        multi_label: force (or forbid) multi-label targets; default: multi-label if any row has ``;``.
    """
    check_subset(subset)
    csv_path = Path(root) / "manifest.csv" if Path(root).is_dir() else Path(root)
    if not csv_path.is_file():
        raise DatasetNotFoundError(f"csv: manifest {csv_path} not found; expected a 'path,label[,split]' CSV")
    table = list(csv_rows(csv_path, ("path", "label")))
    row_labels = [[x.strip() for x in row["label"].split(";") if x.strip()] for _, row in table]
    if isinstance(labels, (str, Path)):
        if not Path(labels).is_file():
            raise PathNotFoundError(f"{labels}: no such label file (one class name per line)")
        labels = [x.strip() for x in Path(labels).read_text().splitlines() if x.strip()]
    labels = labels or sorted({x for names in row_labels for x in names})
    to_index = {name: i for i, name in enumerate(labels)}
    multi = any(len(n) > 1 for n in row_labels) if multi_label is None else multi_label
    rows, first_seen = [], {}
    for (where, row), names in zip(table, row_labels):
        if row["path"].strip() in first_seen:  # checked over the whole file, not only this subset
            raise DataError(
                f"{where}: duplicated manifest row, {row['path']!r} is already at {first_seen[row['path'].strip()]}"
            )
        first_seen[row["path"].strip()] = where
        split = (row.get("split") or "").strip()
        if split and split not in _ALIASES:
            raise DataError(f"{where}: unknown split {split!r}; use training, validation or testing")
        path = csv_path.parent / row["path"].strip()
        if (
            _ALIASES[split] if split else hash_subset(row["path"].strip(), validation_percent, testing_percent)
        ) != subset:
            continue
        if not names or (len(names) > 1 and not multi):
            raise DataError(f"{where}: expected one label, got {row['label']!r}")
        idx = tuple(label_index(to_index, n, where) for n in names)
        meta = meta_pairs(row, ("path", "label", "split"))
        rows.append((where, ClipRecord(str(path), idx if multi else idx[0], meta=meta)))
    return build_manifest(rows, labels, csv_path, multi_label=multi)
