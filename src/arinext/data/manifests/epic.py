"""EPIC-Sounds (44 classes) and EPIC-KITCHENS-100 (97 verbs, 300 nouns) audio, read from HDF5.

Layout (annotation CSVs as published by the EPIC-Kitchens team, audio as the original pipeline's
single HDF5 file with one 1-D 24 kHz dataset per video id)::

    root/
      EPIC-KITCHENS-100_audio.hdf5
      EPIC_Sounds_train.csv, EPIC_Sounds_validation.csv, EPIC_Sounds_recognition_test_timestamps.csv
          (annotation_id, participant_id, video_id, start_timestamp, stop_timestamp, ..., class, class_id)
      EPIC_100_train.csv, EPIC_100_validation.csv, EPIC_100_test_timestamps.csv
          (narration_id, participant_id, video_id, start_timestamp, stop_timestamp, ..., verb_class, noun_class)
      EPIC_100_verb_classes.csv, EPIC_100_noun_classes.csv   (optional: id,key,... for class names)

The ``"testing"`` subset is the unlabelled challenge test set: its targets are ``-1``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from ...utils.errors import DataError
from ..records import ClipRecord, Manifest, build_manifest, check_subset, class_id, csv_rows, require_root

__all__ = ["epic_kitchens_100", "epic_sounds", "timestamp_to_seconds"]

log = logging.getLogger(__name__)

HDF5_FILE = "EPIC-KITCHENS-100_audio.hdf5"
_SOUNDS_CSV = {
    "training": "EPIC_Sounds_train.csv",
    "validation": "EPIC_Sounds_validation.csv",
    "testing": "EPIC_Sounds_recognition_test_timestamps.csv",
}
_EPIC100_CSV = {
    "training": "EPIC_100_train.csv",
    "validation": "EPIC_100_validation.csv",
    "testing": "EPIC_100_test_timestamps.csv",
}
EPIC_SOUNDS_NUM_CLASSES = 44
EPIC_100_NUM_CLASSES = {"verb": 97, "noun": 300}


def timestamp_to_seconds(stamp: str, where: str = "") -> float:
    """``"HH:MM:SS.fff"`` to seconds; ``ValueError`` naming ``where`` if malformed."""
    try:
        h, m, s = stamp.strip().split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    except ValueError:
        raise DataError(f"{where}: bad timestamp {stamp!r}, expected HH:MM:SS.fff") from None


def _segments(csv_path: Path, hdf5: Path, id_column: str, target_of: object) -> list[tuple[str, ClipRecord, str]]:
    rows = []
    for where, row in csv_rows(csv_path, (id_column, "video_id", "start_timestamp", "stop_timestamp")):
        start = timestamp_to_seconds(row["start_timestamp"], where)
        end = timestamp_to_seconds(row["stop_timestamp"], where)
        if end <= start:
            raise DataError(f"{where}: stop {row['stop_timestamp']} is not after start {row['start_timestamp']}")
        target = target_of(row, where)  # type: ignore[operator]
        rec = ClipRecord(str(hdf5), target, start=start, end=end, key=row["video_id"], group=row["video_id"])
        rows.append((where, rec, row[id_column]))
    return rows


def _class_names(files: Sequence[Path], id_col: str, name_col: str, num: int, prefix: str) -> list[str]:
    """Names by id from whichever annotation/class files exist; ``<prefix>_<id>`` when none names an id."""
    names = [f"{prefix}_{i}" for i in range(num)]
    for path in files:
        if path.exists():
            for where, row in csv_rows(path, (id_col, name_col)):
                names[class_id(row[id_col], num, where)] = row[name_col]
    return names


def epic_sounds(root: str | Path, subset: str, hdf5_file: str = HDF5_FILE) -> Manifest:
    """Manifest of one EPIC-Sounds split: segments of the videos in ``hdf5_file``, 44 classes."""
    csv_name = _SOUNDS_CSV[check_subset(subset)]
    root = require_root(root, "epic_sounds", csv_name, hdf5_file,
                        hint=f"Expected the EPIC-Sounds annotation CSVs and {hdf5_file} in the root.")  # fmt: skip
    labelled = subset != "testing"

    def target(row: dict[str, str], where: str) -> int:
        return class_id(row.get("class_id"), EPIC_SOUNDS_NUM_CLASSES, where) if labelled else -1

    rows = _segments(root / csv_name, root / hdf5_file, "annotation_id", target)
    label_files = [root / _SOUNDS_CSV["training"], root / _SOUNDS_CSV["validation"]]
    labels = _class_names(label_files, "class_id", "class", EPIC_SOUNDS_NUM_CLASSES, "class")
    return build_manifest(rows, labels, root / csv_name)


def epic_kitchens_100(root: str | Path, subset: str, hdf5_file: str = HDF5_FILE) -> Manifest:
    """Manifest of one EPIC-KITCHENS-100 split, multi-head targets ``{"verb": v, "noun": n}``."""
    csv_name = _EPIC100_CSV[check_subset(subset)]
    root = require_root(root, "epic_kitchens_100", csv_name, hdf5_file,
                        hint=f"Expected the EPIC-KITCHENS-100 annotation CSVs and {hdf5_file} in the root.")  # fmt: skip
    labelled = subset != "testing"

    def target(row: dict[str, str], where: str) -> dict[str, int]:
        if not labelled:
            return {head: -1 for head in EPIC_100_NUM_CLASSES}
        return {head: class_id(row.get(f"{head}_class"), n, where) for head, n in EPIC_100_NUM_CLASSES.items()}

    rows = _segments(root / csv_name, root / hdf5_file, "narration_id", target)
    labels = {
        head: _class_names([root / f"EPIC_100_{head}_classes.csv"], "id", "key", n, head)
        for head, n in EPIC_100_NUM_CLASSES.items()
    }
    return build_manifest(rows, labels, root / csv_name)
