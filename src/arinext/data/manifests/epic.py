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

The ``"testing"`` subset is the unlabelled challenge test set: its targets are ``-1`` and the manifest
is marked ``labelled=False`` (``arinext eval`` writes a challenge submission for it). Each record keeps
its row id (``annotation_id`` or ``narration_id``) in ``meta``.

Building a manifest reads the length of every video's audio from the HDF5 file and counts, in one
warning each, the rows that name a video the file lacks (``missing``) and the rows that stop after
their video's audio ends (``past_end``; the published validation and test files of EPIC-Sounds have
40 such rows, up to 691 s over). Those segments are read up to the audio's end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from ...utils.errors import DataError
from ...utils.optional import require
from ..readers import hdf5_rate
from ..records import (
    ClipRecord,
    Manifest,
    MissingPolicy,
    Target,
    build_manifest,
    check_files,
    check_policy,
    check_subset,
    class_id,
    csv_rows,
    report_rows,
    require_root,
)

__all__ = ["audio_lengths", "epic_kitchens_100", "epic_sounds", "timestamp_to_seconds"]

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
PastEndPolicy = Literal["warn", "error"]
_PAST_END = "data.dataset_args.past_end"


def timestamp_to_seconds(stamp: str, where: str = "") -> float:
    """``"HH:MM:SS.fff"`` to seconds; ``ValueError`` naming ``where`` if malformed."""
    try:
        h, m, s = stamp.strip().split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    except ValueError:
        raise DataError(f"{where}: bad timestamp {stamp!r}, expected HH:MM:SS.fff") from None


def audio_lengths(hdf5: str | Path) -> dict[str, float]:
    """Seconds of audio of each 1-D dataset (video id) of an EPIC HDF5 file."""
    h5py = require("h5py", "data", "reading EPIC audio from HDF5")
    try:
        with h5py.File(hdf5, "r") as handle:
            return {
                key: ds.shape[0] / hdf5_rate(ds, handle)
                for key, ds in handle.items()
                if isinstance(ds, h5py.Dataset) and ds.ndim == 1
            }
    except OSError as exc:
        raise DataError(f"{hdf5}: cannot open as HDF5 ({exc})") from exc


def _past_end(rows: list[tuple[str, ClipRecord, str]], lengths: dict[str, float], policy: str) -> None:
    """One counted warning (or a ``DataError``) for the segments that stop after their video's audio."""
    over = []
    for where, rec, ident in rows:
        length = lengths.get(str(rec.key))
        if length is not None and rec.end is not None and rec.end > length:
            detail = f"{where}: {ident} stops at {rec.end:.3f} s, the audio of {rec.key} lasts {length:.3f} s"
            over.append((rec.end - length, rec.start is not None and rec.start >= length, detail))
    if not over:
        return
    empty = sum(e for _, e, _ in over)
    what = f"stop after their video's audio ends (by up to {max(d for d, _, _ in over):.3f} s)"
    if empty:
        what += f"; {empty} of them also start after it and hold no audio"
    action = "They are read up to the audio's end; a segment with no audio fails like any bad clip"
    report_rows([d for _, _, d in over], len(rows), what, action, policy == "error", f"{_PAST_END}=warn|error")


def _segments(
    root: Path,
    csv_name: str,
    hdf5_file: str,
    id_column: str,
    target_of: Callable[[dict[str, str], str], Target],
    missing: str,
    past_end: str,
) -> list[tuple[str, ClipRecord, str]]:
    check_policy(past_end, _PAST_END, ("warn", "error"))
    csv_path, hdf5 = root / csv_name, root / hdf5_file
    rows = []
    for where, row in csv_rows(csv_path, (id_column, "video_id", "start_timestamp", "stop_timestamp")):
        start = timestamp_to_seconds(row["start_timestamp"], where)
        end = timestamp_to_seconds(row["stop_timestamp"], where)
        if end <= start:
            raise DataError(f"{where}: stop {row['stop_timestamp']} is not after start {row['start_timestamp']}")
        target = target_of(row, where)
        ident = row[id_column]
        rec = ClipRecord(str(hdf5), target, start, end, row["video_id"], row["video_id"], ((id_column, ident),))
        rows.append((where, rec, ident))
    lengths = audio_lengths(hdf5)
    rows = check_files(rows, missing, f"name a video that {hdf5} does not hold", lambda rec: rec.key in lengths)
    _past_end(rows, lengths, past_end)
    return rows


def _class_names(files: Sequence[Path], id_col: str, name_col: str, num: int, prefix: str) -> list[str]:
    """Names by id from whichever annotation/class files exist; ``<prefix>_<id>`` when none names an id.
    Two rows that give one id different names are an error."""
    names = [f"{prefix}_{i}" for i in range(num)]
    named_at: dict[int, str] = {}
    for path in files:
        if path.exists():
            for where, row in csv_rows(path, (id_col, name_col)):
                idx, name = class_id(row[id_col], num, where), row[name_col]
                if idx in named_at and names[idx] != name:
                    raise DataError(f"{where}: class {idx} is {name!r}, but {named_at[idx]} calls it {names[idx]!r}")
                names[idx] = name
                named_at.setdefault(idx, where)
    return names


def epic_sounds(
    root: str | Path,
    subset: str,
    hdf5_file: str = HDF5_FILE,
    missing: MissingPolicy = "warn",
    past_end: PastEndPolicy = "warn",
) -> Manifest:
    """Manifest of one EPIC-Sounds split: segments of the videos in ``hdf5_file``, 44 classes.

    Args:
        root: the folder of the annotation CSVs and the HDF5 file.
        subset: ``"training"``, ``"validation"``, or ``"testing"`` (the unlabelled recognition test set).
        hdf5_file: the audio, relative to ``root``.
        missing: rows naming a video the HDF5 file lacks: ``"warn"`` (kept, one counted warning),
            ``"drop"`` (left out, one counted warning) or ``"error"``.
        past_end: rows stopping after their video's audio: ``"warn"`` (one counted warning; read up to
            the end) or ``"error"``.
    """
    csv_name = _SOUNDS_CSV[check_subset(subset)]
    root = require_root(root, "epic_sounds", csv_name, hdf5_file,
                        hint=f"Expected the EPIC-Sounds annotation CSVs and {hdf5_file} in the root.")  # fmt: skip
    labelled = subset != "testing"

    def target(row: dict[str, str], where: str) -> int:
        return class_id(row.get("class_id"), EPIC_SOUNDS_NUM_CLASSES, where) if labelled else -1

    rows = _segments(root, csv_name, hdf5_file, "annotation_id", target, missing, past_end)
    label_files = [root / _SOUNDS_CSV["training"], root / _SOUNDS_CSV["validation"]]
    labels = _class_names(label_files, "class_id", "class", EPIC_SOUNDS_NUM_CLASSES, "class")
    return build_manifest(rows, labels, root / csv_name, labelled=labelled)


def epic_kitchens_100(
    root: str | Path,
    subset: str,
    hdf5_file: str = HDF5_FILE,
    missing: MissingPolicy = "warn",
    past_end: PastEndPolicy = "warn",
) -> Manifest:
    """Manifest of one EPIC-KITCHENS-100 split, multi-head targets ``{"verb": v, "noun": n}``.

    Arguments as :func:`epic_sounds`; ``"testing"`` is the unlabelled action recognition test set.
    """
    csv_name = _EPIC100_CSV[check_subset(subset)]
    root = require_root(root, "epic_kitchens_100", csv_name, hdf5_file,
                        hint=f"Expected the EPIC-KITCHENS-100 annotation CSVs and {hdf5_file} in the root.")  # fmt: skip
    labelled = subset != "testing"

    def target(row: dict[str, str], where: str) -> dict[str, int]:
        if not labelled:
            return {head: -1 for head in EPIC_100_NUM_CLASSES}
        return {head: class_id(row.get(f"{head}_class"), n, where) for head, n in EPIC_100_NUM_CLASSES.items()}

    rows = _segments(root, csv_name, hdf5_file, "narration_id", target, missing, past_end)
    labels: dict[str, Any] = {
        head: _class_names([root / f"EPIC_100_{head}_classes.csv"], "id", "key", n, head)
        for head, n in EPIC_100_NUM_CLASSES.items()
    }
    return build_manifest(rows, labels, root / csv_name, labelled=labelled)
