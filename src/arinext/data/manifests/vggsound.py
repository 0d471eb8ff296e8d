"""VGG-Sound (Chen et al. 2020): 309 classes, 10 s YouTube clips.

Layout: the audio, and the annotations in either of their two public forms::

    root/
      vggsound.csv        (the dataset's CSV, no header: youtube_id,start_seconds,label,train|test)
      audio/<youtube_id>_<start:06d>.wav   (16 kHz mono, one file per clip; other names via name_format)

    root/
      data/train.csv, data/test.csv   (the split files of the VGG-Sound repository, no header:
                                       <youtube_id>_<start:06d>.mp4,label)
      data/stat.csv                   (optional class list of that repository: label,count,category)
      audio/...

The classes are the 309 of :data:`arinext.data.vocab.VGGSOUND_CLASSES` (alphabetical), or those of a
``classes_file`` such as ``data/stat.csv``, or ``labels``; a row whose label is not one of them is an
error naming the row. A clip listed twice is kept once (one counted warning; the public CSV lists some
clips twice). VGG-Sound has only train/test: as in the original code, ``"validation"`` returns the test
clips. Listed clips whose file is absent (deleted YouTube videos are common) are left out with one
counted warning, unless ``missing="warn"`` or ``"error"``.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from ...utils.errors import ConfigError, DataError
from ..records import (
    ClipRecord,
    DatasetNotFoundError,
    Manifest,
    MissingPolicy,
    build_manifest,
    check_files,
    check_subset,
    label_index,
    report_rows,
    require_root,
)
from ..vocab import VGGSOUND_CLASSES

__all__ = ["vggsound"]

log = logging.getLogger(__name__)

_SPLITS = {"training": "train", "validation": "test", "testing": "test"}
#: Annotation files looked for when ``csv_file`` is not given, in this order.
_LAYOUTS = ("vggsound.csv", "data/{split}.csv")


class _Row(NamedTuple):
    where: str
    ytid: str
    start: int
    label: str
    split: str


def _annotation_file(root: Path, csv_file: str | None, split: str) -> tuple[Path, str]:
    for template in [csv_file] if csv_file else _LAYOUTS:
        path = root / template.format(split=split)
        if path.is_file():
            return path, template
    tried = ", ".join(str(root / t.format(split=split)) for t in ([csv_file] if csv_file else _LAYOUTS))
    raise DatasetNotFoundError(
        f"vggsound: no annotation file ({tried}). Expected vggsound.csv (youtube_id,start_seconds,label,train|test) "
        "or the repository's data/train.csv and data/test.csv (<youtube_id>_<start:06d>.mp4,label)."
    )


def _parse(where: str, row: list[str], template: str, split: str) -> _Row:
    cells = [c.strip() for c in row]
    if len(cells) == 4:
        ytid, start, label, row_split = cells
        if row_split not in ("train", "test"):
            raise DataError(f"{where}: expected 'youtube_id,start_seconds,label,train|test', got {row}")
        try:
            return _Row(where, ytid, int(float(start)), label, row_split)
        except ValueError:
            raise DataError(f"{where}: start second {start!r} is not a number") from None
    if len(cells) == 2:
        if "{split}" not in template:
            raise ConfigError(
                f"{where}: the rows have no split column, so the file holds one split; name the split files "
                "with {split}, e.g. dataset_args.csv_file='data/{split}.csv'"
            )
        ytid, _, start = cells[0].rsplit(".", 1)[0].rpartition("_")
        if not ytid or not start.isdigit():
            raise DataError(f"{where}: expected '<youtube_id>_<start:06d>.mp4,label', got {row}")
        return _Row(where, ytid, int(start), cells[1], split)
    raise DataError(
        f"{where}: expected 'youtube_id,start_seconds,label,train|test' or '<youtube_id>_<start:06d>.mp4,label', "
        f"got {row}"
    )


def _read(path: Path, template: str, split: str) -> list[_Row]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [_parse(f"{path} row {n}", row, template, split) for n, row in enumerate(csv.reader(fh), 1) if row]


def _unique(rows: list[_Row]) -> list[_Row]:
    """The first row of each clip (youtube id, start); one counted warning for the repeats."""
    first: dict[tuple[str, int], _Row] = {}
    same, other = [], []
    for r in rows:
        seen = first.setdefault((r.ytid, r.start), r)
        if seen is r:
            continue
        if (seen.label, seen.split) == (r.label, r.split):
            same.append(f"{r.where}: {r.ytid} at {r.start} s, as {seen.where}")
        else:
            other.append(f"{r.where}: {r.ytid} at {r.start} s is {r.label!r} ({r.split}), {seen.where} says "
                         f"{seen.label!r} ({seen.split})")  # fmt: skip
    report_rows(same, len(rows), "repeat an earlier row", "Left out (the first row is kept)", False, "")
    report_rows(other, len(rows), "repeat an earlier clip with another label or split",
                "Left out (the first row is kept)", False, "")  # fmt: skip
    return list(first.values()) if same or other else rows


def _class_list(root: Path, classes_file: str | None, labels: Sequence[str] | None) -> list[str]:
    if labels is not None:
        return list(labels)
    if classes_file is None:
        return list(VGGSOUND_CLASSES)
    path = root / classes_file
    if not path.is_file():
        raise DatasetNotFoundError(f"vggsound: classes_file {path} not found (the repository's data/stat.csv)")
    names: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for n, row in enumerate(csv.reader(fh), 1):
            if not row:
                continue
            name = row[0].strip()
            if name in names:
                raise DataError(f"{path} row {n}: class {name!r} is already at {names[name]}")
            names[name] = f"row {n}"
    return sorted(names)


def vggsound(
    root: str | Path,
    subset: str,
    csv_file: str | None = None,
    audio_dir: str = "audio",
    name_format: str = "{ytid}_{start:06d}.wav",
    missing: MissingPolicy = "drop",
    classes_file: str | None = None,
    labels: Sequence[str] | None = None,
) -> Manifest:
    """Manifest of the VGG-Sound train or test clips.

    Args:
        root: dataset folder.
        subset: ``"training"`` (train rows) or ``"validation"``/``"testing"`` (test rows).
        csv_file: annotation file relative to ``root``; ``{split}`` in it stands for ``train``/``test``
            (required for the split files, whose rows have no split column). Default: ``vggsound.csv``,
            else ``data/{split}.csv``.
        audio_dir: folder of the audio files, relative to ``root``.
        name_format: path of a clip's file inside ``audio_dir``, from ``ytid``, ``start`` (int seconds)
            and ``label``; it may hold sub-folders (``"{label}/{ytid}_{start:06d}.flac"``).
        missing: listed clips without a file: ``"drop"`` leaves them out and ``"warn"`` keeps them (one
            counted warning each way), ``"error"`` refuses the manifest.
        classes_file: a class list such as the repository's ``data/stat.csv`` (first column: the label);
            its labels, sorted, are the classes. Default: the 309 published classes.
        labels: the class list itself (overrides ``classes_file``), in its order.
    """
    split = _SPLITS[check_subset(subset)]
    root = require_root(root, "vggsound", audio_dir, hint=f"Expected {audio_dir}/ with one audio file per clip.")
    csv_path, template = _annotation_file(root, csv_file, split)
    classes = _class_list(root, classes_file, labels)
    to_index = {name: i for i, name in enumerate(classes)}
    table = _unique(_read(csv_path, template, split))
    audio, rows = root / audio_dir, []
    for r in table:
        target = label_index(to_index, r.label, r.where)
        if r.split != split:
            continue
        try:
            name = name_format.format(ytid=r.ytid, start=r.start, label=r.label)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"name_format {name_format!r} cannot be filled ({exc!r}); its fields are ytid, start, label"
            ) from None
        rows.append((r.where, ClipRecord(str(audio / name), target, group=r.ytid)))
    rows = check_files(rows, missing, f"of the {split} split name an audio file that does not exist")
    return build_manifest(rows, classes, csv_path)
