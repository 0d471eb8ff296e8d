"""A VGG-Sound-sized dataset: time to build it, time to the first batch, and the memory of every loader worker.

The index has VGG-Sound's real shape: 199,176 rows (``--rows``), the real class counts of the dataset's
``stat.csv`` (309 classes, summing to 199,176) and the real ids and labels of its ``test.csv`` (15,446 test
clips). The full ``vggsound.csv`` (ids of the training clips) is not published outside Git LFS, so the
training rows get made-up 11-character ids, distributed over the classes so that each class has its
``stat.csv`` count. Every clip is a hard link to one of four real-length files (10 s, 16 kHz, 16-bit), so the
tree costs a few MB. ``--annotations DIR`` is a folder holding ``stat.csv`` and ``test.csv`` of VGG-Sound
(github.com/hche11/VGGSound, ``data/``).

What is measured, in one process:

1. build: ``get_manifest("vggsound", ...)`` + ``AudioClipDataset`` for the training and the test subset, and
   the check the trainer makes before its first epoch that every clip's audio is there (a ``stat`` per file);
2. index sweep: a forked process (what a loader worker is) reads every record of the training set in a
   random order without decoding anything, once with the records as arinext stores them (arrays,
   ``arinext.data.storage.RecordTable``) and once as a Python list of ``ClipRecord`` objects (what a
   manifest was before): its private memory (USS) before and after;
3. loading: time to the first batch of a fresh loader (persistent workers), then ``--seconds`` of loading
   (decode, crop, log-mel, SpecAugment) with RSS, PSS and USS of the main process and of each worker sampled
   every ``--sample-every`` seconds, and the fill of the waveform cache when ``--waveform-cache-mb`` is set
   (``--stack private`` collates as before: each batch stacked in the worker's own memory, then copied);
4. the feature cache's size estimate for the training set (``data.cache_dir``), without writing it.

RSS counts every page a process maps, shared ones included (the torch libraries, the parent's heap that
a forked worker has not written to); PSS splits shared pages between the processes using them; USS is what
a process alone holds. Memory that grows per worker shows in USS.

    python benchmarks/dataset_scale.py --annotations VGGSound/data --rows 20000 --seconds 30   # quick
    python benchmarks/dataset_scale.py --annotations VGGSound/data --root /tmp/vgg200k --seconds 300
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader

import arinext.data.clips as clip_dataset
from arinext.audio import get_preset
from arinext.audio.augment import SpecAugment
from arinext.data import AudioClipDataset, get_manifest, make_loader
from arinext.data.cache import estimate_feature_bytes
from arinext.data.readers import missing_sources
from arinext.data.waveforms import attach_waveform_cache

FULL_ROWS = 199_176
SOURCES = 4  # distinct audio files behind the hard links


# -- the index -------------------------------------------------------------------------------------------


def _read_annotations(folder: Path) -> tuple[list[tuple[str, int]], list[tuple[str, int, str]]]:
    with open(folder / "stat.csv", newline="", encoding="utf-8") as fh:
        stat = [(row[0], int(row[1])) for row in csv.reader(fh) if row]
    test = []
    with open(folder / "test.csv", newline="", encoding="utf-8") as fh:
        for name, label in (row for row in csv.reader(fh) if row):
            ytid, start = name.rsplit(".", 1)[0].rsplit("_", 1)
            test.append((ytid, int(start), label))
    return stat, test


def _index_rows(stat: list[tuple[str, int]], test: list[tuple[str, int, str]], rows: int) -> list[list[Any]]:
    """``youtube_id,start_seconds,label,split`` rows: the real test rows and made-up training rows whose class
    counts are those of ``stat.csv``; with ``rows`` below the full size, every count scaled down."""
    total = sum(n for _, n in stat)
    scale = min(1.0, rows / total)
    rng = random.Random(0)
    test = rng.sample(test, round(len(test) * scale)) if scale < 1 else test
    in_test = Counter(label for _, _, label in test)
    out: list[list[Any]] = [[ytid, start, label, "test"] for ytid, start, label in test]
    n = 0
    for label, count in stat:
        for _ in range(max(0, round(count * scale) - in_test[label])):
            out.append([f"tr{n:09d}", (n * 7) % 300, label, "train"])
            n += 1
    rng.shuffle(out)
    return out


def build_index(root: Path, annotations: Path, rows: int) -> dict[str, Any]:
    """Write ``root/vggsound.csv`` and ``root/audio/`` (hard links); reuse them when already built for ``rows``."""
    stamp = root / "INDEX.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("rows_asked") == rows:
        return json.loads(stamp.read_text())
    if root.exists():
        shutil.rmtree(root)
    (root / "audio").mkdir(parents=True)
    stat, test = _read_annotations(annotations)
    table = _index_rows(stat, test, rows)
    tic = time.perf_counter()
    with open(root / "vggsound.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(table)
    rng = np.random.default_rng(0)
    sources = []
    for k in range(SOURCES):  # 10 s at 16 kHz: noise under a few tones, different per file
        t = np.arange(160_000) / 16000
        x = 0.05 * rng.standard_normal(t.size) + 0.2 * np.sin(2 * np.pi * (200 + 150 * k) * t)
        path = root / f"source{k}.wav"
        sf.write(path, x.astype(np.float32), 16000, subtype="PCM_16")
        sources.append(path)
    for i, (ytid, start, _, _) in enumerate(table):
        os.link(sources[i % SOURCES], root / "audio" / f"{ytid}_{start:06d}.wav")
    info = {
        "rows_asked": rows, "rows": len(table), "train": sum(r[3] == "train" for r in table),
        "test": sum(r[3] == "test" for r in table), "classes": len({r[2] for r in table}),
        "tree_seconds": round(time.perf_counter() - tic, 1),
    }  # fmt: skip
    stamp.write_text(json.dumps(info))
    return info


# -- memory ----------------------------------------------------------------------------------------------


def memory(pid: int) -> dict[str, float]:
    """RSS, PSS and USS (private clean + dirty) of ``pid`` in MiB, from ``/proc/<pid>/smaps_rollup``."""
    fields: dict[str, float] = {}
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1]) / 1024
    return {
        "rss": fields.get("Rss", 0.0),
        "pss": fields.get("Pss", 0.0),
        "uss": fields.get("Private_Clean", 0.0) + fields.get("Private_Dirty", 0.0),
    }


class Sampler(threading.Thread):
    """Samples the memory of the main process and of ``pids()`` every ``every`` seconds."""

    def __init__(self, pids: Any, every: float, extra: Any = None) -> None:
        super().__init__(daemon=True)
        self.pids, self.every, self.extra = pids, every, extra
        self.rows: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.start_time = time.perf_counter()

    def sample(self) -> None:
        row: dict[str, Any] = {"t": round(time.perf_counter() - self.start_time, 1), "main": memory(os.getpid())}
        for k, pid in enumerate(self.pids()):
            try:
                row[f"worker{k}"] = memory(pid)
            except OSError:
                pass
        if self.extra is not None:
            row.update(self.extra())
        self.rows.append(row)

    def run(self) -> None:
        while not self.stop.wait(self.every):
            self.sample()


# -- the measurements ------------------------------------------------------------------------------------


def build(root: Path) -> tuple[dict[str, float], AudioClipDataset, AudioClipDataset]:
    fe = get_preset("vggsound")
    times = {}
    tic = time.perf_counter()
    train_m = get_manifest("vggsound", root, "training")
    times["train_manifest_s"] = time.perf_counter() - tic
    tic2 = time.perf_counter()
    train = AudioClipDataset(train_m, fe, training=True, spec_augment=SpecAugment(seed=0))
    times["train_dataset_s"] = time.perf_counter() - tic2
    times["train_total_s"] = time.perf_counter() - tic
    tic = time.perf_counter()
    test = AudioClipDataset(get_manifest("vggsound", root, "validation"), fe, training=False, views=fe.test_views)
    times["test_total_s"] = time.perf_counter() - tic
    tic = time.perf_counter()
    missing = missing_sources(train.records) + missing_sources(test.records)
    times["audio_check_s"] = time.perf_counter() - tic  # what the trainer does before the first epoch
    assert not missing, missing[:3]
    times["train_clips"], times["test_clips"] = len(train), len(test)
    times["records_mib"] = (train.records.nbytes + test.records.nbytes) / 2**20
    return times, train, test


def _read_every_record(records: Any, conn: Any) -> None:
    order = np.random.default_rng(0).permutation(len(records)).tolist()  # a sampler's order, made first
    before = memory(os.getpid())["uss"]
    tic = time.perf_counter()
    for i in order:
        rec = records[i]
        _ = (rec.path, rec.target, rec.start)
    conn.send((before, memory(os.getpid())["uss"], time.perf_counter() - tic))


def sweep(records: Any) -> dict[str, float]:
    """USS of a forked process (what a loader worker is) before and after it reads every record (no decoding)."""
    ctx = mp.get_context("fork")
    here, there = ctx.Pipe()
    proc = ctx.Process(target=_read_every_record, args=(records, there))
    proc.start()
    before, after, seconds = here.recv()
    proc.join()
    return {"uss_before_mib": before, "uss_after_mib": after, "growth_mib": after - before, "seconds": seconds}


def _worker_pids(loader: DataLoader) -> list[int]:
    it = loader._iterator  # noqa: SLF001  (a benchmark may look at the workers)
    return [w.pid for w in it._workers] if it is not None else []  # noqa: SLF001


def load(ds: AudioClipDataset, args: argparse.Namespace, cache: Any) -> dict[str, Any]:
    loader = make_loader(ds, args.batch_size, shuffle=True, num_workers=args.workers, seed=0, drop_last=True,
                         persistent_workers=True)  # fmt: skip
    if args.stack == "private":  # the collation of before: batches stacked in the worker's own memory first
        clip_dataset._stack = torch.stack  # noqa: SLF001  (workers are forked: they inherit the change)

    def cache_fill() -> dict[str, Any]:
        return {} if cache is None else {"cache_files": cache.cached_files(), "cache_mib": cache.nbytes / 2**20}

    ds.set_epoch(0)
    tic = time.perf_counter()
    batches = iter(loader)
    next(batches)
    first = time.perf_counter() - tic
    sampler = Sampler(lambda: _worker_pids(loader), args.sample_every, cache_fill)
    sampler.sample()
    sampler.start()
    clips, epoch = args.batch_size, 0
    deadline = time.perf_counter() + args.seconds
    while time.perf_counter() < deadline:
        try:
            clips += len(next(batches)["index"])
        except StopIteration:
            epoch += 1
            ds.set_epoch(epoch)
            batches = iter(loader)
    sampler.stop.set()
    sampler.join()
    sampler.sample()
    return {"first_batch_s": first, "clips": clips, "clips_per_s": clips / (time.perf_counter() - tic),
            "samples": sampler.rows}  # fmt: skip


def _table(samples: list[dict[str, Any]]) -> str:
    procs = [k for k in samples[0] if k == "main" or k.startswith("worker")]
    head = "| t (s) | " + " | ".join(f"{p} RSS / PSS / USS (MiB)" for p in procs)
    extra = [k for k in samples[0] if k.startswith("cache")]
    head += "".join(f" | {k}" for k in extra) + " |"
    lines = [head, "|" + "---|" * (1 + len(procs) + len(extra))]
    for row in samples:
        cells = [f"{row[p]['rss']:.0f} / {row[p]['pss']:.0f} / {row[p]['uss']:.0f}" if p in row else "-" for p in procs]
        cells += [f"{row[k]:.0f}" for k in extra]
        lines.append(f"| {row['t']:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=FULL_ROWS, help="index rows (VGG-Sound: 199176)")
    p.add_argument("--root", type=Path, help="where to build the index (kept and reused); default a temp dir")
    p.add_argument("--annotations", type=Path, required=True,
                   help="folder with VGG-Sound's stat.csv and test.csv (the repository's data/ folder)")  # fmt: skip
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60.0, help="how long to load batches")
    p.add_argument("--sample-every", type=float, default=10.0)
    p.add_argument("--waveform-cache-mb", type=float, default=0.0, help="lazy waveform cache bound (0: off)")
    p.add_argument("--stack", choices=["shared", "private"], default="shared",
                   help="private: batches stacked in the worker's own memory first, as before (for comparison)")
    p.add_argument("--skip-sweep", action="store_true")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    torch.set_num_threads(1)
    root = args.root or Path(tempfile.mkdtemp(prefix="vggsound-scale-"))
    print(f"load average before: {open('/proc/loadavg').read().strip()}")
    info = build_index(root, args.annotations, args.rows)
    print(f"index: {info}")
    times, train, test = build(root)
    print("build: " + ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in times.items()))
    print(f"main process after build: {memory(os.getpid())}")
    result: dict[str, Any] = {"index": info, "build": times}
    if not args.skip_sweep:
        result["sweep"] = {"table": sweep(train.records), "list": sweep(list(train.records))}
        for k, v in result["sweep"].items():
            print(f"index sweep, records as {k}: " + ", ".join(f"{a}={b:.1f}" for a, b in v.items()))
    cache = None
    if args.waveform_cache_mb > 0:
        cache = attach_waveform_cache([train, test], True, args.waveform_cache_mb)
    est = estimate_feature_bytes(train.records, train.frontend)
    result["feature_cache_estimate_gib"] = est / 2**30
    print(f"feature cache estimate for the training set (float32): {est / 2**30:.1f} GiB")
    result["load"] = load(train, args, cache)
    print(f"first batch: {result['load']['first_batch_s']:.1f} s; {result['load']['clips_per_s']:.1f} clips/s "
          f"over {args.seconds:g} s, {args.workers} workers")  # fmt: skip
    print(_table(result["load"]["samples"]))
    print(f"load average after: {open('/proc/loadavg').read().strip()}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.root is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
