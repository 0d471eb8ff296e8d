"""UrbanSound8K (Salamon et al. 2014): 10 classes, 10 predefined folds.

Layout::

    root/
      metadata/UrbanSound8K.csv   (slice_file_name,fsID,start,end,salience,fold,classID,class)
      audio/fold1/ ... audio/fold10/<slice_file_name>

The 10-fold protocol: ``fold=k`` trains on the other nine folds and tests on fold ``k``. As in the
original code, ``"validation"`` is the held-out fold too (UrbanSound8K has no validation split).
Clips shorter than the crop are edge-padded as waveforms (``pad_mode="waveform"``). The CSV of the
release lists 8,732 clips; rows whose file is absent get one counted warning (``missing``).
"""

from __future__ import annotations

from pathlib import Path

from ...utils.errors import ConfigError, DataError
from ..records import (
    ClipRecord,
    Manifest,
    MissingPolicy,
    build_manifest,
    check_files,
    check_subset,
    class_id,
    csv_rows,
    require_root,
)

__all__ = ["URBANSOUND8K_CLASSES", "urbansound8k"]

URBANSOUND8K_CLASSES = [
    "air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling",
    "engine_idling", "gun_shot", "jackhammer", "siren", "street_music",
]  # fmt: skip


def urbansound8k(root: str | Path, subset: str, fold: int = 1, missing: MissingPolicy = "warn") -> Manifest:
    """Manifest of one subset of UrbanSound8K under the 10-fold protocol.

    Args:
        root: dataset folder (holds ``metadata/`` and ``audio/``).
        subset: ``"training"`` is the nine other folds; ``"validation"``/``"testing"`` fold ``fold``.
        fold: held-out fold, 1..10.
        missing: rows whose file is absent: ``"warn"`` keeps them (one counted warning), ``"drop"``
            leaves them out (one counted warning), ``"error"`` refuses the manifest.
    """
    check_subset(subset)
    if fold not in range(1, 11):
        raise ConfigError(f"urbansound8k: fold must be 1..10, got {fold!r}")
    csv_path = Path(root) / "metadata" / "UrbanSound8K.csv"
    require_root(root, "urbansound8k", "metadata/UrbanSound8K.csv", "audio",
                 hint="Expected metadata/UrbanSound8K.csv and audio/fold1..fold10/.")  # fmt: skip
    rows = []
    for where, row in csv_rows(csv_path, ("slice_file_name", "fold", "classID", "class")):
        row_fold = class_id(row["fold"], 11, where)
        if row_fold == 0:
            raise DataError(f"{where}: fold 0 is outside 1..10")
        if (row_fold == fold) == (subset == "training"):
            continue
        target = class_id(row["classID"], len(URBANSOUND8K_CLASSES), where)
        if row["class"] != URBANSOUND8K_CLASSES[target]:
            raise DataError(f"{where}: classID {target} is {URBANSOUND8K_CLASSES[target]!r}, not {row['class']!r}")
        path = Path(root) / "audio" / f"fold{row_fold}" / row["slice_file_name"]
        rows.append((where, ClipRecord(str(path), target, group=f"fold{row_fold}")))
    rows = check_files(rows, missing)
    return build_manifest(rows, URBANSOUND8K_CLASSES, csv_path, pad_mode="waveform")
