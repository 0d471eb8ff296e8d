"""NSynth (Engel et al. 2017), instrument family: 11 classes.

Layout (the three official archives extracted side by side)::

    root/
      nsynth-train/examples.json   ({"<note_str>": {"instrument_family": 0..10, ...}, ...})
      nsynth-train/audio/<note_str>.wav
      nsynth-valid/...   nsynth-test/...

Each record's ``meta`` keeps the source fields of its entry that are present: ``instrument_str``,
``instrument_source_str`` and, for a build of ``arinext data instruments``, ``soundfont`` and
``soundfont_family`` (the sample lineage).
"""

from __future__ import annotations

import json
from pathlib import Path

from ...utils.errors import DataError
from ..records import (
    ClipRecord,
    Manifest,
    MissingPolicy,
    build_manifest,
    check_files,
    check_subset,
    class_id,
    meta_pairs,
    require_root,
)
from ..vocab import NSYNTH_FAMILIES, NSYNTH_FOLDERS

__all__ = ["nsynth"]

_SOURCE_FIELDS = ("instrument_str", "instrument_source_str", "soundfont", "soundfont_family")


def nsynth(root: str | Path, subset: str, missing: MissingPolicy = "warn") -> Manifest:
    """Manifest of one NSynth split, labelled by ``instrument_family``.

    ``missing``: entries without an audio file are kept (``"warn"``) or left out (``"drop"``) with one
    counted warning, or refuse the manifest (``"error"``).
    """
    folder = NSYNTH_FOLDERS[check_subset(subset)]
    root = require_root(root, "nsynth", f"{folder}/examples.json",
                        hint=f"Expected {folder}/examples.json and {folder}/audio/<note>.wav.")  # fmt: skip
    json_path = root / folder / "examples.json"

    def no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        keys = [k for k, _ in pairs]
        dup = next((k for k in keys if keys.count(k) > 1), None) if len(set(keys)) != len(keys) else None
        if dup is not None:
            raise DataError(f"{json_path}: duplicated manifest entry {dup!r}")
        return dict(pairs)

    try:
        examples = json.loads(json_path.read_text(), object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise DataError(f"{json_path}: not valid JSON ({exc})") from exc
    rows = []
    for note, meta in examples.items():
        where = f"{json_path} entry {note!r}"
        target = class_id(meta.get("instrument_family"), len(NSYNTH_FAMILIES), where)
        name = meta.get("instrument_family_str")
        if name is not None and name != NSYNTH_FAMILIES[target]:
            raise DataError(f"{where}: instrument_family {target} is {NSYNTH_FAMILIES[target]!r}, not {name!r}")
        group = meta.get("instrument_str")
        source = meta_pairs({k: meta.get(k) for k in _SOURCE_FIELDS})
        rows.append((where, ClipRecord(str(root / folder / "audio" / f"{note}.wav"), target, group=group, meta=source)))
    return build_manifest(check_files(rows, missing), NSYNTH_FAMILIES, json_path)
