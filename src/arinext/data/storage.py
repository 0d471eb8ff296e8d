"""Array-backed clip records: a manifest of 200k clips without 200k Python objects.

A DataLoader worker forked from the training process shares its memory page by page until it writes to a
page. Reading a Python object writes to it (its reference count), so a worker that indexes a list of 200k
record objects ends up with its own copy of every page they live on: about as much memory per worker as
the records take in the main process, growing over the first epoch ("copy-on-read"). :class:`RecordTable`
keeps the same records in a few numpy arrays and one UTF-8 buffer per string column, and builds a
:class:`~arinext.data.records.ClipRecord` only when one is asked for: workers read shared pages and leave
them shared.

It behaves as a read-only sequence of records (``len``, indexing, slicing, iteration, ``==`` against a list,
``+`` with a list), which is what :attr:`Manifest.records <arinext.data.records.Manifest.records>` promises.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from . import records as _records

if TYPE_CHECKING:
    from .records import ClipRecord, Target

__all__ = ["RecordTable", "StringTable"]

_NONE = -1  # id of a missing string (key, group) and of an empty meta


class StringTable:
    """Distinct strings packed into one UTF-8 buffer with ``int64`` offsets; ``table[i]`` decodes string ``i``."""

    def __init__(self, buffer: bytes, offsets: np.ndarray) -> None:
        self.buffer, self.offsets = buffer, offsets

    @classmethod
    def build(cls, values: Iterable[str | None]) -> tuple[StringTable, np.ndarray]:
        """The distinct strings of ``values`` and an ``int32`` id per value (``-1`` for ``None``)."""
        index: dict[str, int] = {}
        ids = np.fromiter(
            (_NONE if v is None else index.setdefault(v, len(index)) for v in values), dtype=np.int32
        )
        encoded = [s.encode("utf-8") for s in index]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        return cls(b"".join(encoded), offsets), ids

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        return self.buffer[int(self.offsets[i]) : int(self.offsets[i + 1])].decode("utf-8")

    @property
    def nbytes(self) -> int:
        return len(self.buffer) + self.offsets.nbytes


def _float_or_none(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


class RecordTable(Sequence["ClipRecord"]):
    """The clips of a manifest in columns: paths, keys, groups and meta as ids into :class:`StringTable`\\ s,
    start/end as ``float64`` (NaN for ``None``), targets as an ``int64`` array (one label), ``(N, heads)``
    (several heads) or flat values with offsets (multi-label).

    Build one with :meth:`from_records`; indexing returns a new :class:`ClipRecord` equal to the one stored.
    """

    def __init__(self, columns: dict[str, Any]) -> None:
        self._c = columns
        self._n = len(columns["path"])

    # -- building ------------------------------------------------------------------------------------------

    @classmethod
    def from_records(cls, records: Iterable[ClipRecord]) -> RecordTable:
        """Pack ``records`` (a list, any iterable, or a table, returned as is: tables are read-only)."""
        if isinstance(records, RecordTable):
            return records
        rows = list(records)
        paths, path_ids = StringTable.build(r.path for r in rows)
        keys, key_ids = StringTable.build(r.key for r in rows)
        groups, group_ids = StringTable.build(r.group for r in rows)
        metas, meta_ids = StringTable.build(json.dumps(r.meta) if r.meta else None for r in rows)
        nan = float("nan")
        columns = {
            "path": path_ids, "paths": paths, "key": key_ids, "keys": keys, "group": group_ids, "groups": groups,
            "meta": meta_ids, "metas": metas,
            "start": np.array([nan if r.start is None else r.start for r in rows], dtype=np.float64),
            "end": np.array([nan if r.end is None else r.end for r in rows], dtype=np.float64),
            **_pack_targets([r.target for r in rows]),
        }  # fmt: skip
        return cls(columns)

    def take(self, indices: Sequence[int] | np.ndarray) -> RecordTable:
        """The rows ``indices``, in that order, as a new table (strings shared, no records built)."""
        idx = np.asarray(indices, dtype=np.int64)
        c = dict(self._c)
        for name in ("path", "key", "group", "meta", "start", "end"):
            c[name] = self._c[name][idx]
        kind = c["target_kind"]
        if kind == "multi":
            values, offsets = self._c["target"], self._c["target_offsets"]
            parts = [values[offsets[i] : offsets[i + 1]] for i in idx]
            c["target_offsets"] = np.zeros(len(idx) + 1, dtype=np.int64)
            np.cumsum([len(p) for p in parts], out=c["target_offsets"][1:])
            c["target"] = np.concatenate(parts) if parts else values[:0]
        else:
            c["target"] = self._c["target"][idx]
        return RecordTable(c)

    # -- reading -------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> ClipRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[ClipRecord]: ...

    def __getitem__(self, index: int | slice) -> ClipRecord | list[ClipRecord]:
        if isinstance(index, slice):
            return [self._record(i) for i in range(*index.indices(self._n))]
        i = int(index)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"record index {index} out of range for {self._n} records")
        return self._record(i)

    def __iter__(self) -> Iterator[ClipRecord]:
        return (self._record(i) for i in range(self._n))

    def _record(self, i: int) -> ClipRecord:
        c = self._c
        key, group, meta = int(c["key"][i]), int(c["group"][i]), int(c["meta"][i])
        return _records.ClipRecord(
            c["paths"][int(c["path"][i])],
            self.target(i),
            _float_or_none(c["start"][i]),
            _float_or_none(c["end"][i]),
            None if key == _NONE else c["keys"][key],
            None if group == _NONE else c["groups"][group],
            () if meta == _NONE else tuple(tuple(p) for p in json.loads(c["metas"][meta])),
        )

    def path(self, i: int) -> str:
        """The file path of row ``i`` (no record built)."""
        return self._c["paths"][int(self._c["path"][i])]

    def path_id(self, i: int) -> int:
        """Row ``i``'s index into :attr:`unique_paths` (rows of one file share it)."""
        return int(self._c["path"][i])

    @property
    def unique_paths(self) -> StringTable:
        """The distinct file paths (HDF5 files once, however many clips they hold)."""
        return self._c["paths"]  # type: ignore[no-any-return]

    def has_key(self) -> np.ndarray:
        """``bool`` per row: the record reads an HDF5 dataset (``key`` set)."""
        return self._c["key"] != _NONE  # type: ignore[no-any-return]

    def key(self, i: int) -> str | None:
        k = int(self._c["key"][i])
        return None if k == _NONE else self._c["keys"][k]

    def target(self, i: int) -> Target:
        """Row ``i``'s target, as the record stores it (``int``, ``tuple`` or ``dict``)."""
        c, kind = self._c, self._c["target_kind"]
        if kind == "int":
            return int(c["target"][i])
        if kind == "heads":
            return dict(zip(c["heads"], (int(v) for v in c["target"][i])))
        if kind == "multi":
            return tuple(int(v) for v in c["target"][c["target_offsets"][i] : c["target_offsets"][i + 1]])
        return c["target"][i]  # type: ignore[no-any-return]

    @property
    def nbytes(self) -> int:
        """Bytes held by the columns (arrays and string buffers)."""
        return sum(v.nbytes for v in self._c.values() if isinstance(v, (np.ndarray, StringTable)))

    def storage(self) -> dict[str, Any]:
        """The columns (for inspection: every one is a numpy array, a :class:`StringTable` or a small constant)."""
        return dict(self._c)

    # -- list-like comparisons -----------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecordTable) and other is self:
            return True
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(other) == self._n and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Sequence[ClipRecord]) -> list[ClipRecord]:
        return [*self, *other]

    def __radd__(self, other: Sequence[ClipRecord]) -> list[ClipRecord]:
        return [*other, *self]

    def __repr__(self) -> str:
        return f"RecordTable({self._n} records, {self.nbytes / 2**20:.1f} MiB)"


def _pack_targets(targets: list[Target]) -> dict[str, Any]:
    """Target columns: ``int`` -> int64; ``dict`` (same heads) -> (N, heads) int64; ``tuple`` -> flat + offsets.
    Anything else (mixed kinds) stays an object array: correct, but one object per row."""
    if all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in targets):
        return {"target_kind": "int", "target": np.array(targets, dtype=np.int64)}
    if targets and all(isinstance(t, dict) for t in targets):
        heads = tuple(targets[0])  # type: ignore[arg-type]
        if all(tuple(t) == heads for t in targets):  # type: ignore[arg-type]
            values = np.array([[t[h] for h in heads] for t in targets], dtype=np.int64)  # type: ignore[index]
            return {"target_kind": "heads", "heads": heads, "target": values}
    if targets and all(isinstance(t, tuple) for t in targets):
        offsets = np.zeros(len(targets) + 1, dtype=np.int64)
        np.cumsum([len(t) for t in targets], out=offsets[1:])  # type: ignore[arg-type]
        values = (v for t in targets for v in t)  # type: ignore[union-attr]
        flat = np.fromiter(values, dtype=np.int64, count=int(offsets[-1]))
        return {"target_kind": "multi", "target": flat, "target_offsets": offsets}
    column = np.empty(len(targets), dtype=object)
    column[:] = targets
    return {"target_kind": "object", "target": column}
