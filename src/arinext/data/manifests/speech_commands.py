"""Speech Commands V2 (Warden 2018): 35 words, official validation/testing lists.

Layout::

    root/
      <word>/<speaker>_nohash_<n>.wav   (or .flac)
      _background_noise_/*.wav          (excluded from the classes; noise for augmentation)
      validation_list.txt               (one "<word>/<file>.wav" per line)
      testing_list.txt
      manifest.csv                      (optional: path,label,... as ``arinext data keywords`` writes it)

Each record's ``meta`` holds the ``speaker`` (the file-name prefix) and, when ``manifest.csv`` is
present, every other column of the clip's row but ``path``, ``label``, ``params`` and ``split``
(``engine``, ``voice``, ``speaker``, ``method``, ``language`` for a keyword build).
"""

from __future__ import annotations

from pathlib import Path

from ...utils.errors import DataError
from ..records import (
    ClipRecord,
    Manifest,
    build_manifest,
    check_policy,
    check_subset,
    csv_rows,
    label_index,
    meta_pairs,
    report_rows,
    require_root,
)
from ..vocab import SPEECH_COMMANDS_V2_WORDS

__all__ = ["speech_commands_v2", "word_folders"]
_AUDIO_SUFFIXES = (".wav", ".flac")


def _read_list(path: Path) -> dict[str, str]:
    """Entries of a split list as ``{"word/file" without extension: "<list> row <n>"}``."""
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        entry = line.strip()
        if not entry:
            continue
        stem = entry.rsplit(".", 1)[0]
        if stem in out:
            raise DataError(f"{path} row {n}: duplicated entry {entry!r} (first at {out[stem]})")
        out[stem] = f"{path} row {n}"
    return out


def _source_columns(root: Path) -> dict[str, tuple[tuple[str, str], ...]]:
    """``manifest.csv`` rows as ``{"word/file" without extension: meta pairs}`` (empty without the file)."""
    path = root / "manifest.csv"
    if not path.is_file():
        return {}
    return {
        row["path"].strip().rsplit(".", 1)[0]: meta_pairs(row, ("path", "label", "params", "split"))
        for _, row in csv_rows(path, ("path",))
    }


def word_folders(root: Path) -> list[str]:
    """The word folders under ``root`` (not ``_background_noise_`` or hidden ones), the V2 words first in
    their class order, then any other word sorted."""
    present = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    return [w for w in SPEECH_COMMANDS_V2_WORDS if w in present] + sorted(present - set(SPEECH_COMMANDS_V2_WORDS))


def speech_commands_v2(
    root: str | Path, subset: str, labels: list[str] | None = None, missing: str = "drop"
) -> Manifest:
    """Manifest of one subset of Speech Commands V2.

    Args:
        root: the extracted archive (holds the word folders and the two list files).
        subset: ``"validation"``/``"testing"`` are the official lists (9,981 and 11,005 clips of V2);
            ``"training"`` is every other clip of a word folder.
        labels: class list; default the word folders found (:func:`word_folders`): the 35 words for the
            real dataset, 10 for a build of the ten core words. A word folder outside it is an error.
        missing: entries of the subset's list without an audio file: ``"drop"`` leaves them out with one
            counted warning, ``"error"`` refuses the manifest.
    """
    check_subset(subset)
    check_policy(missing, "data.dataset_args.missing", ("drop", "error"))
    root = require_root(
        root,
        "speech_commands_v2",
        "validation_list.txt",
        "testing_list.txt",
        hint="Expected <root>/<word>/*.wav plus validation_list.txt and testing_list.txt.",
    )
    labels = labels or word_folders(root)
    to_index = {w: i for i, w in enumerate(labels)}
    lists = {name: _read_list(root / f"{name}_list.txt") for name in ("validation", "testing")}
    both = lists["validation"].keys() & lists["testing"].keys()
    if both:
        stem = sorted(both)[0]
        raise DataError(f"{lists['testing'][stem]}: {stem!r} is also listed at {lists['validation'][stem]}")
    sources = _source_columns(root)
    rows, found = [], set()
    for word_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        for f in sorted(p for p in word_dir.iterdir() if p.suffix.lower() in _AUDIO_SUFFIXES):
            stem = f"{word_dir.name}/{f.stem}"
            split = next((name for name, entries in lists.items() if stem in entries), "training")
            if split != subset:
                continue
            found.add(stem)
            where = lists[split][stem] if split in lists else str(f)
            speaker = f.stem.split("_nohash_")[0]
            meta = dict((("speaker", speaker),) + sources.get(stem, ()))
            rec = ClipRecord(
                str(f), label_index(to_index, word_dir.name, where), group=speaker, meta=tuple(sorted(meta.items()))
            )
            rows.append((where, rec))
    listed = lists.get(subset, {})
    absent = [f"{where}: {root / stem}.wav" for stem, where in listed.items() if stem not in found]
    report_rows(absent, len(listed), f"of the {subset} list name no audio file", "Left out", missing == "error",
                "data.dataset_args.missing=drop|error")  # fmt: skip
    return build_manifest(rows, labels, root)
