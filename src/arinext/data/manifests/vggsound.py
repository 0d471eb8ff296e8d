"""VGG-Sound (Chen et al. 2020): 309 classes, 10 s YouTube clips.

Layout::

    root/
      vggsound.csv        (public CSV, no header: youtube_id,start_seconds,label,train|test)
      audio/<youtube_id>_<start:06d>.wav   (16 kHz mono, one file per clip; other names via name_format)

Labels are the CSV's distinct labels in alphabetical order (309 for the full CSV). VGG-Sound has
only train/test: as in the original code, ``"validation"`` returns the test clips. Listed clips
whose file is absent (deleted YouTube videos are common) are left out with one warning giving the
count, unless ``missing="error"``.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Literal

from ...utils.errors import DataError
from ..records import ClipRecord, Manifest, build_manifest, check_subset, label_index, require_root

__all__ = ["vggsound"]

log = logging.getLogger(__name__)

_SPLITS = {"training": "train", "validation": "test", "testing": "test"}


def vggsound(
    root: str | Path,
    subset: str,
    csv_file: str = "vggsound.csv",
    audio_dir: str = "audio",
    name_format: str = "{ytid}_{start:06d}.wav",
    missing: Literal["drop", "error"] = "drop",
) -> Manifest:
    """Manifest of the VGG-Sound train or test clips.

    Args:
        root: dataset folder.
        subset: ``"training"`` (train rows) or ``"validation"``/``"testing"`` (test rows).
        csv_file, audio_dir: paths relative to ``root``.
        name_format: file name of a clip from ``ytid`` and ``start`` (int seconds).
        missing: ``"drop"`` leaves out clips without a file (one warning); ``"error"`` raises.
    """
    split = _SPLITS[check_subset(subset)]
    root = require_root(root, "vggsound", csv_file, audio_dir,
                        hint=f"Expected {csv_file} (ytid,start,label,split) and {audio_dir}/ with one wav per clip.")  # fmt: skip
    csv_path, audio = root / csv_file, root / audio_dir
    with open(csv_path, newline="", encoding="utf-8") as fh:
        table = [(f"{csv_path} row {n}", row) for n, row in enumerate(csv.reader(fh), start=1) if row]
    for where, row in table:
        if len(row) != 4 or row[3].strip() not in ("train", "test"):
            raise DataError(f"{where}: expected 'youtube_id,start_seconds,label,train|test', got {row}")
    labels = sorted({row[2].strip() for _, row in table})
    to_index = {name: i for i, name in enumerate(labels)}
    present = set(os.listdir(audio))
    rows, absent = [], []
    for where, (ytid, start, label, row_split) in table:
        if row_split.strip() != split:
            continue
        try:
            name = name_format.format(ytid=ytid, start=int(float(start)))
        except ValueError:
            raise DataError(f"{where}: start second {start!r} is not a number") from None
        if name not in present:
            absent.append(f"{where}: {audio / name}")
            continue
        rows.append((where, ClipRecord(str(audio / name), label_index(to_index, label.strip(), where), group=ytid)))
    if absent and missing == "error":
        raise DataError(f"{len(absent)} clips listed in {csv_path} have no audio file, e.g. {absent[0]}")
    if absent:
        log.warning("vggsound: %d of %d %s clips have no file in %s; left out (first: %s)",
                    len(absent), len(absent) + len(rows), split, audio, absent[0])  # fmt: skip
    return build_manifest(rows, labels, csv_path)
