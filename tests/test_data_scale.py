"""A 200k-clip manifest costs loader workers no memory of their own: records live in arrays, not in one Python
object per clip, and a worker that reads every record leaves the pages it read shared (no copy-on-read)."""

from __future__ import annotations

import multiprocessing as mp
import os
from dataclasses import replace

import numpy as np
import pytest

from arinext.data import ClipRecord, Manifest
from arinext.data.storage import RecordTable, StringTable

RECORDS = [
    ClipRecord("a.wav", 3),
    ClipRecord("b.wav", 0, start=0.5, end=2.25, group="spk1", meta=(("engine", "flite"), ("voice", "kal"))),
    ClipRecord("a.wav", 7, start=None, end=4.0),
]
EPIC = [
    ClipRecord("audio.hdf5", {"verb": 3, "noun": 0}, 0.1, 2.5, key="P01_01", group="P01_01"),
    ClipRecord("audio.hdf5", {"verb": -1, "noun": -1}, 5.0, 5.9, key="P02_03", group="P02_03"),
]
MULTI = [ClipRecord("x.wav", (1,)), ClipRecord("y.wav", (0, 2, 5)), ClipRecord("z.wav", ())]


@pytest.mark.parametrize("records", [RECORDS, EPIC, MULTI, [], [ClipRecord("m.wav", 1), ClipRecord("n.wav", (0,))]])
def test_record_table_gives_back_every_record(records):
    table = RecordTable.from_records(records)
    assert len(table) == len(records) and list(table) == records and table == records
    for i, rec in enumerate(records):
        assert table[i] == rec and table[i - len(records)] == rec
        assert type(table[i].target) is type(rec.target)
    assert table[::2] == records[::2] and table + records[:1] == records + records[:1]
    assert table.take([len(records) - 1 - i for i in range(len(records))]) == records[::-1]
    with pytest.raises(IndexError):
        table[len(records)]


def test_manifest_keeps_its_records_in_arrays():
    m = Manifest(RECORDS, ["c0", "c1"], source="m.csv")
    assert isinstance(m.records, RecordTable) and m.records == RECORDS
    assert m.records.unique_paths[0] == "a.wav" and len(m.records.unique_paths) == 2  # a path is stored once
    for column in m.records.storage().values():  # no per-record Python object anywhere
        assert isinstance(column, (np.ndarray, StringTable, str, tuple)), type(column)
        if isinstance(column, np.ndarray):
            assert column.dtype != object
    m.records = RECORDS[:1]  # assigning a list stores arrays too
    assert isinstance(m.records, RecordTable) and m.records == RECORDS[:1]
    assert replace(m, records=RECORDS[1:]).records == RECORDS[1:]


def _private_kib() -> int:
    with open("/proc/self/smaps_rollup") as fh:
        fields = {line.split()[0].rstrip(":"): int(line.split()[1]) for line in fh if line.strip().endswith("kB")}
    return fields["Private_Clean"] + fields["Private_Dirty"]


def _read_all(records, conn) -> None:
    before = _private_kib()
    total = 0
    for i in range(len(records)):
        rec = records[i]
        total += len(rec.path) + rec.target + (rec.start is None)
    conn.send((_private_kib() - before) / 1024)


def _worker_growth_mib(records) -> float:
    """Private memory a forked process gains by reading every record (what a loader worker does in an epoch)."""
    ctx = mp.get_context("fork")
    here, there = ctx.Pipe()
    proc = ctx.Process(target=_read_all, args=(records, there))
    proc.start()
    growth = here.recv()
    proc.join()
    return growth


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps_rollup"), reason="needs Linux /proc/<pid>/smaps_rollup")
def test_a_worker_reading_every_record_does_not_copy_the_manifest():
    n = 60_000
    records = [ClipRecord(f"/data/vggsound/audio/yt{i:09d}_000030.wav", i % 309, group=f"yt{i:09d}") for i in range(n)]
    as_list = _worker_growth_mib(records)  # the check can see a copy: a list of objects is copied as it is read
    assert as_list > 6, as_list
    table = Manifest(records, [f"c{i}" for i in range(309)]).records
    del records
    assert _worker_growth_mib(table) < 2, "reading the array-backed records copied them"
