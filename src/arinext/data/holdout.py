"""Leave one source out: train without a whole source (an engine, a soundfont family, a device) and test on it.

A *source* is a value of one metadata column of the clips (:attr:`ClipRecord.meta`: ``engine``,
``method``, ``language`` of a keyword build, ``soundfont_family`` of an instrument build, any extra column
of a CSV manifest). Holding out the values ``S`` of ``column`` turns the dataset's three subsets into four:

- ``heldout``: every clip whose ``column`` is in ``S``, from all three subsets (the model never trains
  on that source, so all of it can be tested);
- ``training`` and ``validation``: the other clips of those subsets, minus the *closure*: every clip
  that shares a value of a ``closure`` column (by default ``speaker``) with a held-out clip. CMU's
  ``kal`` and ``slt`` speak in both flite and festival: holding out flite must also keep festival's
  kal and slt out of training, or the "unseen" source would be a person the model has heard;
- ``testing``: the other sources' test clips minus the same closure, i.e. unseen speakers of the
  sources the model was trained on (*in-source*).

One model then gives both numbers: accuracy on unseen speakers of seen sources, and on a source never
seen; their difference is the cost of a new source.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..utils.errors import ConfigError, DataError
from .records import SUBSETS, ClipRecord, Manifest

__all__ = [
    "HOLDOUT_SUBSETS",
    "Holdout",
    "HoldoutSplit",
    "holdout_from_dict",
    "per_source_accuracy",
    "source_values",
    "split_holdout",
]

#: The subsets of a held-out split: the usual three (without the held-out source) and the source itself.
HOLDOUT_SUBSETS = (*SUBSETS, "heldout")


@dataclass(frozen=True)
class Holdout:
    """Which source to hold out.

    Args:
        column: the metadata column that names the source (``engine``, ``soundfont_family``, ...).
        values: its held-out value(s).
        closure: columns whose values the held-out clips must not share with any training,
            validation or in-source test clip (``speaker``: the same person through another source).
    """

    column: str
    values: tuple[str, ...]
    closure: tuple[str, ...] = ("speaker",)

    def describe(self) -> str:
        return f"{self.column}={'+'.join(self.values)}"


def holdout_from_dict(spec: Mapping[str, Any]) -> Holdout:
    """A :class:`Holdout` from a recipe's ``data.holdout`` mapping ``{column, values, closure}``
    (``values`` may be one string; ``closure`` defaults to ``[speaker]``); ``ValueError`` names a bad key."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"data.holdout must be a mapping {{column, values, closure}}, got {spec!r}")  # noqa: TRY004
    unknown = sorted(set(spec) - {"column", "values", "closure"})
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in data.holdout; known: ['closure', 'column', 'values']")
    column, values = spec.get("column"), spec.get("values")
    if not isinstance(column, str) or not column:
        raise ConfigError(f"data.holdout.column must name a metadata column, got {column!r}")
    values = [values] if isinstance(values, (str, int)) else values
    if not values or not isinstance(values, (list, tuple)):
        raise ConfigError(f"data.holdout.values must be a value of {column!r} or a list of them, got {values!r}")
    closure = spec.get("closure", ["speaker"])
    closure = [closure] if isinstance(closure, str) else list(closure or [])
    if column in closure:
        raise ConfigError(f"data.holdout.closure must not contain the held-out column {column!r}")
    return Holdout(column, tuple(str(v) for v in values), tuple(str(c) for c in closure))


def source_values(records: Iterable[ClipRecord], column: str) -> Counter[str]:
    """How many clips have each value of ``column`` (clips without it are not counted)."""
    return Counter(v for r in records if (v := r.value(column)) is not None)


@dataclass
class HoldoutSplit:
    """The four subsets of a held-out split and what the closure removed.

    Attributes:
        holdout: the held-out source.
        subsets: ``training``, ``validation``, ``testing`` (in-source) and ``heldout`` manifests.
        removed: clips the closure took out, per original subset.
        leaks: ``"column=value"`` -> clips removed through it (e.g. ``"speaker=cmu-kal": 20``).
    """

    holdout: Holdout
    subsets: dict[str, Manifest]
    removed: dict[str, int] = field(default_factory=dict)
    leaks: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Clip counts per subset, the closure's removals: JSON-ready."""
        return {
            "column": self.holdout.column,
            "values": list(self.holdout.values),
            "closure": list(self.holdout.closure),
            "clips": {name: len(m) for name, m in self.subsets.items()},
            "removed_by_closure": dict(self.removed),
            "closure_leaks": dict(self.leaks),
        }


def split_holdout(manifests: Mapping[str, Manifest], holdout: Holdout) -> HoldoutSplit:
    """Hold out ``holdout`` from the ``training``/``validation``/``testing`` manifests of one dataset.

    Raises:
        ValueError: no clip has the column, or none has a held-out value (naming the values found).
    """
    subsets = [s for s in SUBSETS if s in manifests]
    records = [(s, r) for s in subsets for r in manifests[s].records]
    found = source_values((r for _, r in records), holdout.column)
    where = manifests[subsets[0]].source if subsets else "the dataset"
    if not found:
        raise DataError(
            f"{where}: no clip has the metadata column {holdout.column!r}; "
            f"columns found: {sorted({k for _, r in records for k, _ in r.meta})}"
        )
    missing = [v for v in holdout.values if v not in found]
    if missing:
        raise DataError(f"{where}: no clip has {holdout.column}={missing[0]!r}; values found: {dict(sorted(found.items()))}")
    held = set(holdout.values)
    out: dict[str, list[ClipRecord]] = {name: [] for name in HOLDOUT_SUBSETS}
    is_held = [r.value(holdout.column) in held for _, r in records]
    keys = {(c, v) for (_, r), h in zip(records, is_held) if h for c in holdout.closure if (v := r.value(c)) is not None}
    removed: Counter[str] = Counter()
    leaks: Counter[str] = Counter()
    for (subset, rec), h in zip(records, is_held):
        if h:
            out["heldout"].append(rec)
            continue
        hits = [f"{c}={rec.value(c)}" for c in holdout.closure if (c, rec.value(c)) in keys]
        if hits:
            removed[subset] += 1
            leaks.update(hits)
            continue
        out[subset].append(rec)
    base = manifests[subsets[0]]
    result = {
        name: Manifest(recs, base.labels, base.multi_label, f"{base.source} [{name}, {holdout.describe()} held out]",
                       base.pad_mode)  # fmt: skip
        for name, recs in out.items()
    }
    return HoldoutSplit(holdout, result, dict(removed), dict(sorted(leaks.items())))


def per_source_accuracy(
    records: Sequence[ClipRecord], correct: Sequence[bool], column: str
) -> dict[str, dict[str, float | int]]:
    """Top-1 accuracy and clip count per value of ``column`` (``"(none)"`` for clips without it)."""
    counts: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    for rec, ok in zip(records, correct):
        value = rec.value(column) or "(none)"
        counts[value] += 1
        hits[value] += bool(ok)
    return {v: {"clips": n, "top1": hits[v] / n} for v, n in sorted(counts.items())}
