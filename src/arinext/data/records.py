"""Clip records and manifests: the one currency between dataset adapters and :class:`AudioClipDataset`.

Adapters in :mod:`arinext.data.manifests` turn a source's on-disk layout into a :class:`Manifest`;
the helpers here hold the checks every adapter shares (subset names, missing roots, unknown labels,
duplicated rows, rows whose audio file is absent), so that each error names the manifest file and the row,
and each warning counts the rows it is about.
"""

from __future__ import annotations

import csv
import difflib
import logging
import os
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Union

from ..utils.errors import ArinextError, ConfigError, DataError

__all__ = [
    "SUBSETS",
    "ClipRecord",
    "DatasetNotFoundError",
    "Manifest",
    "MissingPolicy",
    "PadMode",
    "Target",
    "build_manifest",
    "check_files",
    "check_policy",
    "check_subset",
    "class_id",
    "csv_rows",
    "label_index",
    "meta_pairs",
    "report_rows",
    "require_root",
]

log = logging.getLogger(__name__)

#: The split names of every dataset, recipe and builder (the one place they are spelled out).
SUBSETS = ("training", "validation", "testing")

#: An ``int`` class index; a tuple of indices (multi-label); or ``{"verb": v, "noun": n}`` (multi-head).
Target = Union[int, tuple[int, ...], dict[str, int]]
PadMode = Literal["frames", "waveform"]
#: What an adapter does with rows whose audio is absent: ``"warn"`` keeps them (one counted warning;
#: reading them then fails like any bad clip), ``"drop"`` leaves them out (one counted warning),
#: ``"error"`` refuses the manifest.
MissingPolicy = Literal["warn", "drop", "error"]
MISSING_POLICIES = ("warn", "drop", "error")


@dataclass(frozen=True)
class ClipRecord:
    """One clip of a dataset.

    Args:
        path: audio file path, or the HDF5 file path when ``key`` is set.
        target: class index, tuple of indices (multi-label) or dict of indices (multi-head).
        start, end: seconds inside the file (``None``: its start / end).
        key: HDF5 dataset key (the video id for EPIC); ``None`` for plain audio files.
        group: speaker, fold or video id, for reporting and grouped splits.
        meta: where the clip comes from, as ``(column, value)`` string pairs: e.g. the engine, voice
            and speaker of a built keyword clip, the soundfont of a rendered note, the extra columns
            of a CSV manifest. Leave-one-source-out evaluation holds out clips by these columns.
    """

    path: str
    target: Target
    start: float | None = None
    end: float | None = None
    key: str | None = None
    group: str | None = None
    meta: tuple[tuple[str, str], ...] = ()

    def value(self, column: str) -> str | None:
        """The ``meta`` value of ``column``, or ``None`` when the clip does not have it."""
        for key, val in self.meta:
            if key == column:
                return val
        return None

    @property
    def source(self) -> str:
        """How errors name this clip: the path, plus the HDF5 key and time window when set."""
        s = self.path if self.key is None else f"{self.path}[{self.key}]"
        if self.start is not None or self.end is not None:
            s += f"@{self.start if self.start is not None else 0:g}-{'' if self.end is None else f'{self.end:g}'}s"
        return s


@dataclass
class Manifest:
    """The clips of one subset and the label space they index into.

    Args:
        records: the clips (any sequence of :class:`ClipRecord`; stored as a read-only
            :class:`~arinext.data.storage.RecordTable`, which indexes, slices and iterates like a list).
        labels: class names (index = class id), or ``{"verb": [...], "noun": [...]}`` for multi-head.
        multi_label: targets are tuples of class indices (multi-hot at collation).
        source: the manifest file or root the records came from (for messages).
        pad_mode: how clips shorter than a crop are padded (:mod:`arinext.data.sampling`):
            ``"frames"`` edge-pads the log-mel frames (the original's default), ``"waveform"``
            edge-pads the samples first (the original's UrbanSound8K loader).
        labelled: false for a subset without labels (a challenge test set, every target ``-1``):
            it can be predicted, not trained on or scored.
    """

    records: Sequence[ClipRecord]
    labels: list[str] | dict[str, list[str]]
    multi_label: bool = False
    source: str = ""
    pad_mode: PadMode = "frames"
    labelled: bool = True

    def __setattr__(self, name: str, value: object) -> None:
        # records live in arrays (a RecordTable), not in one Python object per clip, so that data-loader
        # workers of a 200k-clip dataset share the manifest's memory instead of copying it as they read it
        if name == "records":
            from .storage import RecordTable

            value = RecordTable.from_records(value)  # type: ignore[arg-type]
        super().__setattr__(name, value)

    @property
    def num_classes(self) -> int | dict[str, int]:
        if isinstance(self.labels, dict):
            return {head: len(names) for head, names in self.labels.items()}
        return len(self.labels)

    def __len__(self) -> int:
        return len(self.records)

    def present_labels(self) -> list[str] | dict[str, list[str]]:
        """The class names that at least one record has, in label order (per head for several heads)."""
        if isinstance(self.labels, dict):
            heads = self.labels
            used = {h: {r.target[h] for r in self.records if isinstance(r.target, dict)} for h in heads}
            return {h: [n for i, n in enumerate(names) if i in used[h]] for h, names in heads.items()}
        used_ids: set[int] = set()
        for r in self.records:
            used_ids.update(r.target if isinstance(r.target, tuple) else (r.target,))  # type: ignore[arg-type]
        return [n for i, n in enumerate(self.labels) if i in used_ids]

    def relabel(self, labels: Sequence[str] | Mapping[str, Sequence[str]], exclude_unknown: bool = False) -> Manifest:
        """The same clips with targets re-indexed into ``labels`` (a model's classes), matched by name.

        Args:
            labels: the class names to index into (e.g. the labels stored with a checkpoint).
            exclude_unknown: drop the clips of classes that ``labels`` lacks instead of failing.

        An unlabelled manifest has no targets to re-index: it is returned as it is (its labels keep the
        dataset's class ids) once ``labels`` names exactly its classes, so that every class can be scored.

        Raises:
            ValueError: a class that has clips here is not in ``labels`` (names the classes and the
                manifest), unless ``exclude_unknown``; or the label kinds differ (one head vs several).
            DataError: ``labels`` and the classes of an unlabelled manifest differ.
        """
        if isinstance(labels, Mapping) != isinstance(self.labels, dict):
            kind = "several heads" if isinstance(labels, Mapping) else "one head"
            raise DataError(f"{self.source}: the model has {kind}, the data does not")
        if not self.labelled:
            self._check_same_classes(labels)
            return self
        if isinstance(labels, Mapping):
            assert isinstance(self.labels, dict)
            maps = {h: self._index_map(self.labels[h], list(labels.get(h, [])), exclude_unknown, h) for h in self.labels}
            records = [
                replace(r, target={h: maps[h][t] for h, t in r.target.items()})  # type: ignore[union-attr]
                for r in self.records
                if all(maps[h].get(t) is not None for h, t in r.target.items())  # type: ignore[union-attr]
            ]
            new_labels: list[str] | dict[str, list[str]] = {h: list(v) for h, v in labels.items()}
        else:
            assert isinstance(self.labels, list)
            index = self._index_map(self.labels, list(labels), exclude_unknown)
            records = []
            for r in self.records:
                ids = r.target if isinstance(r.target, tuple) else (r.target,)
                mapped = [index.get(i) for i in ids]  # type: ignore[call-overload]
                if any(m is None for m in mapped):
                    continue
                records.append(replace(r, target=tuple(mapped) if isinstance(r.target, tuple) else mapped[0]))
            new_labels = list(labels)
        dropped = len(self.records) - len(records)
        if dropped:
            log.warning("%s: left out %d clips of classes the model does not know", self.source, dropped)
        return Manifest(records, new_labels, self.multi_label, self.source, self.pad_mode)

    def _check_same_classes(self, labels: Sequence[str] | Mapping[str, Sequence[str]]) -> None:
        ours = self.labels if isinstance(self.labels, dict) else {"": self.labels}
        theirs = labels if isinstance(labels, Mapping) else {"": labels}
        for head, names in ours.items():
            model = set(theirs.get(head, []))
            missing, extra = sorted(set(names) - model), sorted(model - set(names))
            if missing or extra:
                where = f" (head {head!r})" if head else ""
                raise DataError(
                    f"{self.source}{where}: an unlabelled subset needs a score for each of its {len(names)} "
                    f"classes, but the model's labels differ; not in the model: {_shown(missing)}; only in the "
                    f"model: {_shown(extra)}"
                )

    def _index_map(
        self, ours: list[str], theirs: list[str], exclude_unknown: bool, head: str | None = None
    ) -> dict[int, int | None]:
        present = self.present_labels()
        used = present[head] if isinstance(present, dict) and head is not None else present
        to_new = {name: i for i, name in enumerate(theirs)}
        unknown = [n for n in used if n not in to_new]  # type: ignore[union-attr]
        if unknown and not exclude_unknown:
            where = f" (head {head!r})" if head else ""
            shown = ", ".join(unknown[:10]) + (", ..." if len(unknown) > 10 else "")
            raise DataError(
                f"{self.source}{where}: {len(unknown)} class(es) with clips are not among the model's "
                f"{len(theirs)} labels: {shown}"
            )
        return {i: to_new.get(name) for i, name in enumerate(ours)}


class DatasetNotFoundError(ArinextError, RuntimeError):
    """A dataset root, or a file its layout needs, is missing; the message says what the layout should be."""


def check_subset(subset: str) -> str:
    """Return ``subset`` if it is one of :data:`SUBSETS`, else raise ``ValueError``."""
    if subset not in SUBSETS:
        raise ConfigError(f"unknown subset {subset!r}; choose from {list(SUBSETS)}")
    return subset


def require_root(root: str | Path, dataset: str, *expected: str, hint: str = "") -> Path:
    """Check that ``root`` exists and holds each relative path in ``expected``.

    Raises:
        DatasetNotFoundError: with the missing path and how the layout should look.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"{dataset}: dataset root {root} does not exist or is not a folder. {hint}".rstrip())
    for rel in expected:
        if not (root / rel).exists():
            raise DatasetNotFoundError(f"{dataset}: {root / rel} not found. {hint}".rstrip())
    return root


def _shown(names: Sequence[str], limit: int = 10) -> str:
    return (", ".join(names[:limit]) + (", ..." if len(names) > limit else "")) or "none"


def label_index(label_to_index: Mapping[str, int], label: str, where: str) -> int:
    """Index of ``label``; raise ``DataError`` naming ``where`` (``"<file> row <n>"``) if unknown, with the
    closest known labels when the name looks misspelt."""
    try:
        return label_to_index[label]
    except KeyError:
        known = sorted(label_to_index)
        close = difflib.get_close_matches(label, known, n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise DataError(
            f"{where}: label {label!r} is not in the label list ({len(known)} labels: {_shown(known)}){hint}"
        ) from None


def class_id(value: object, num_classes: int, where: str) -> int:
    """Parse an integer class id in ``[0, num_classes)``; ``ValueError`` naming ``where`` otherwise."""
    try:
        idx = int(str(value).strip())
    except ValueError:
        raise DataError(f"{where}: class id {value!r} is not an integer") from None
    if not 0 <= idx < num_classes:
        raise DataError(f"{where}: class id {idx} is outside [0, {num_classes})")
    return idx


def build_manifest(
    rows: Iterable[tuple[str, ClipRecord] | tuple[str, ClipRecord, Hashable]],
    labels: Sequence[str] | Mapping[str, Sequence[str]],
    source: str | Path,
    multi_label: bool = False,
    pad_mode: PadMode = "frames",
    labelled: bool = True,
) -> Manifest:
    """Collect ``(where, record[, identity])`` rows into a :class:`Manifest`, refusing duplicated rows.

    ``where`` names the row (``"<file> row <n>"``) for the error message. Two rows are duplicates
    when their identities match: the given one (e.g. an annotation id), else the clip itself
    (path, key, start, end). ``labelled=False`` marks a subset without labels (targets ``-1``).
    """
    seen: dict[Hashable, str] = {}
    records: list[ClipRecord] = []
    for where, rec, *given in rows:
        ident = given[0] if given else (rec.path, rec.key, rec.start, rec.end)
        if ident in seen:
            raise DataError(f"{where}: duplicated manifest row, same clip as {seen[ident]} ({rec.source})")
        seen[ident] = where
        records.append(rec)
    out_labels: list[str] | dict[str, list[str]]
    if isinstance(labels, Mapping):
        out_labels = {k: list(v) for k, v in labels.items()}
    else:
        out_labels = list(labels)
    log.debug("%s: %d clips", source, len(records))
    return Manifest(
        records, out_labels, multi_label=multi_label, source=str(source), pad_mode=pad_mode, labelled=labelled
    )


def check_policy(value: str, setting: str, choices: Sequence[str] = MISSING_POLICIES) -> str:
    """``value`` if it is one of ``choices``, else a ``ConfigError`` naming the setting."""
    if value not in choices:
        raise ConfigError(f"{setting} must be one of {list(choices)}, got {value!r}")
    return value


def report_rows(problems: Sequence[str], total: int, what: str, action: str, error: bool, setting: str) -> None:
    """One counted warning for rows that share a problem, or a ``DataError`` when ``error`` is set.

    Args:
        problems: one ``"<file> row <n>: detail"`` string per row with the problem.
        total: rows checked.
        what: the problem, completing "``N of M rows ...``".
        action: what happens to them when it is a warning ("kept", "left out", ...).
        error: raise instead of warning.
        setting: the setting that chooses between the two, with its values (named in both messages);
            empty when there is none.
    """
    if not problems:
        return
    shown = "; ".join(problems[:3]) + (f"; (+{len(problems) - 3} more)" if len(problems) > 3 else "")
    head = f"{len(problems)} of {total} rows {what}: {shown}"
    if error:
        raise DataError(f"{head}. Set {setting}")
    log.warning("%s. %s%s", head, action, f" (set {setting})" if setting else "")


def _exists(path: str, listing: dict[str, set[str]]) -> bool:
    folder, name = os.path.split(path)
    if folder not in listing:
        try:
            listing[folder] = set(os.listdir(folder or "."))
        except OSError:
            listing[folder] = set()
    return name in listing[folder]


def check_files(
    rows: list[Any],
    policy: str,
    what: str = "name an audio file that does not exist",
    present: Callable[[ClipRecord], bool] | None = None,
    setting: str = "data.dataset_args.missing",
) -> list[Any]:
    """The ``(where, record, ...)`` rows whose audio is there, after applying ``policy`` (:data:`MissingPolicy`)
    to the others: one counted warning (kept with ``"warn"``, left out with ``"drop"``) or a ``DataError``.

    Args:
        rows: manifest rows.
        policy: ``"warn"``, ``"drop"`` or ``"error"``.
        what: the problem, for the message ("``N of M rows <what>``").
        present: whether a record's audio is there; default: its file exists (each folder is listed
            once, so checking 200k rows costs one directory listing per folder).
        setting: the setting that holds ``policy``, for the messages.
    """
    check_policy(policy, setting)
    if present is None:
        listing: dict[str, set[str]] = {}

        def present(rec: ClipRecord) -> bool:
            return _exists(rec.path, listing)

    absent = [i for i, row in enumerate(rows) if not present(row[1])]
    if not absent:
        return rows
    problems = [f"{rows[i][0]}: {rows[i][1].source}" for i in absent]
    action = "Left out" if policy == "drop" else "Kept: reading them fails like any bad clip (data.on_bad_clip)"
    report_rows(problems, len(rows), what, action, policy == "error", f"{setting}=warn|drop|error")
    if policy == "drop":
        gone = set(absent)
        return [row for i, row in enumerate(rows) if i not in gone]
    return rows


def meta_pairs(row: Mapping[str, object], skip: Sequence[str] = ()) -> tuple[tuple[str, str], ...]:
    """A row's non-empty scalar fields (but ``skip``) as sorted ``(column, value)`` string pairs for
    :attr:`ClipRecord.meta`."""
    out = []
    for key, value in row.items():
        if key is None or key in skip or value is None or isinstance(value, (list, dict)):
            continue
        text = str(value).strip()
        if text:
            out.append((str(key), text))
    return tuple(sorted(out))


def csv_rows(path: str | Path, required: Sequence[str] = ()) -> Iterator[tuple[str, dict[str, str]]]:
    """Rows of a CSV file with a header, as ``("<path> row <line>", row dict)``.

    Raises:
        ValueError: a required column is missing (naming the file and the columns it has).
    """
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; the header has {reader.fieldnames}")
        for row in reader:
            yield f"{path} row {reader.line_num}", row
