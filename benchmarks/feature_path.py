"""Clips/s per CPU core of the two feature paths, and how many cores feed a given training rate.

- ``workers`` (``data.features: workers``, the default): a loader worker decodes a clip, crops it, computes its
  log-mel and SpecAugment (``AudioClipDataset(features=True)``);
- ``device`` (``data.features: device``): the worker decodes and crops only (``features="device"``; it also draws
  the clip's SpecAugment parameters, a few integers), and the training device computes the log-mels and
  SpecAugment of whole batches (``arinext.data.batch_features.BatchFeatures``).

Generates VGG-Sound-like clips (10 s WAV, 16 kHz mono by default) in a temporary folder, then runs one loader
per path (``make_loader``, ``--loader-workers`` worker processes, batch 32), the two taking turns
(``--rounds`` turns of ``--loader-batches`` batches each, median). "Per core" is clips per CPU-second of the
loader: its workers' CPU time (``/proc/PID/stat``, read when they are idle again, so each turn's batches are
counted whole), collation and the hand-over to this process included. That is what a worker achieves on a core
of its own, whatever else the machine runs (not the caches it shares). The device-side cost of the batched
log-mel + SpecAugment is timed here on the CPU (``--threads``) as a stand-in for the GPU, where
``benchmarks/device_check.py`` measures it. Both paths' features are compared, so the figures are for the same
output.

    python benchmarks/feature_path.py [--preset vggsound] [--rate 16000] [--loader-workers 1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from loader_throughput import make_clips

from arinext import get_preset
from arinext.audio.augment import SpecAugment
from arinext.data import AudioClipDataset, collate_clips, make_loader
from arinext.data.batch_features import BatchFeatures

TARGETS = (500, 1000, 2000)  # training clips/s to feed


def paths(records, preset: str) -> dict[str, AudioClipDataset]:
    fe = get_preset(preset)
    return {
        "workers": AudioClipDataset(records, fe, training=True, spec_augment=SpecAugment()),
        "device": AudioClipDataset(records, fe, training=True, spec_augment=SpecAugment(), features="device"),
    }


def _proc_stat(pid: int) -> tuple[str, float]:
    """State letter and CPU seconds (user + system, all threads) of process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return fields[0], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _settled_cpu(pids: list[int]) -> float:
    """CPU seconds of the processes ``pids`` once they are idle: asleep, with no CPU used, at three polls in a row
    (a busy machine leaves a runnable process waiting, but in state R, not S)."""
    last, still = -1.0, 0
    while still < 3:
        time.sleep(0.03)
        stats = [_proc_stat(p) for p in pids]
        now = sum(cpu for _, cpu in stats)
        still = still + 1 if now == last and all(state == "S" for state, _ in stats) else 0
        last = now
    return last


def loader_rates(
    datasets: dict[str, AudioClipDataset], batch: int, batches: int, workers: int, rounds: int
) -> dict[str, float]:
    """Clips per CPU-second of whole loaders (their workers, collation and hand-over included, plus the
    receiving process), median over ``rounds`` turns of ``batches`` batches each. Each turn starts and ends with
    the loader's workers idle, their queue full (``batches`` batches taken, ``batches`` made again)."""
    iters, pids = {}, {}
    for name, ds in datasets.items():
        before = {p.pid for p in multiprocessing.active_children()}
        loader = make_loader(ds, batch, shuffle=True, num_workers=workers, drop_last=True, persistent_workers=True)
        iters[name] = iter(loader)
        next(iters[name])
        pids[name] = [p.pid for p in multiprocessing.active_children() if p.pid not in before]
    for it in iters.values():  # the batches each worker prepared ahead
        for _ in range(4 * workers):
            next(it)
    rates: dict[str, list[float]] = {name: [] for name in datasets}
    for _ in range(rounds):
        for name, it in iters.items():
            workers_cpu, main_cpu = _settled_cpu(pids[name]), time.process_time()
            for _ in range(batches):
                assert not next(it)["bad"]
            main_cpu = time.process_time() - main_cpu
            rates[name].append(batches * batch / (_settled_cpu(pids[name]) - workers_cpu + main_cpu))
    return {name: statistics.median(r) for name, r in rates.items()}


def device_seconds_per_clip(ds: AudioClipDataset, batch: int, device: str, repeats: int = 5) -> float:
    """Seconds per clip of :class:`BatchFeatures` on one collated batch of ``ds`` on ``device`` (median): wall
    seconds on a GPU, CPU seconds of this process on the CPU."""
    features = BatchFeatures.for_dataset(ds).to(device)
    items = collate_clips([ds[i % len(ds)] for i in range(batch)])
    items["inputs"] = items["inputs"].to(device)
    gpu = device.startswith("cuda")
    clock = time.perf_counter if gpu else time.process_time
    times = []
    for _ in range(repeats + 1):
        if gpu:
            torch.cuda.synchronize()
        tic = clock()
        features(items)
        if gpu:
            torch.cuda.synchronize()
        times.append(clock() - tic)
    return statistics.median(times[1:]) / batch


def max_feature_difference(datasets: dict[str, AudioClipDataset], n: int, device: str = "cpu") -> float:
    """Largest |difference| between the two paths' features (SpecAugment included) over ``n`` clips, the
    device path's computed on ``device``."""
    worker, on_device = datasets["workers"], datasets["device"]
    worker.set_epoch(0)
    on_device.set_epoch(0)
    expected = torch.stack([worker[i]["inputs"] for i in range(n)])
    batch = collate_clips([on_device[i] for i in range(n)])
    batch["inputs"] = batch["inputs"].to(device)
    got = BatchFeatures.for_dataset(on_device).to(device)(batch)["inputs"].cpu()
    return float((got - expected).abs().max())


def cores_table(per_core: dict[str, float], targets=TARGETS) -> list[str]:
    """Markdown rows: worker cores needed per target training rate, each path."""
    rows = ["| training rate to feed | cores, `features: workers` | cores, `features: device` |", "|---|---|---|"]
    for target in targets:
        w, d = (math.ceil(target / per_core[k]) for k in ("workers", "device"))
        rows.append(f"| {target:,} clips/s | {w} | {d} |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="vggsound")
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rate", type=int, default=16000, help="rate of the generated files (resampled if not the preset)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the device-side stand-in on the CPU")
    p.add_argument("--loader-workers", type=int, default=1, help="workers of the whole-loader measurement")
    p.add_argument("--loader-batches", type=int, default=4, help="batches per turn of the whole-loader measurement")
    args = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        records = make_clips(Path(tmp), args.clips, sr=args.rate)
        datasets = paths(records, args.preset)
        diff = max_feature_difference(datasets, min(8, args.clips))
        w, k = args.loader_workers, args.loader_batches
        n = (4 * w + 2 + k * args.rounds) * args.batch  # no epoch boundary while timing
        loader = loader_rates(paths((records * n)[:n], args.preset), args.batch, k, w, args.rounds)
        torch.set_num_threads(args.threads)
        on_device = device_seconds_per_clip(datasets["device"], args.batch, "cpu")
    fe = get_preset(args.preset)
    print(f"preset {args.preset}: {fe.clip_seconds} s crops -> {fe.num_frames}x{fe.n_mels} log-mel, SpecAugment; "
          f"{args.clips} clips of 10 s at {args.rate} Hz (WAV); torch {torch.__version__}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")  # fmt: skip
    print(f"max |device - workers| feature difference: {diff:.2e}")
    print(f"loader, {w} worker{'s' if w > 1 else ''}, batch {args.batch} (collation and hand-over included):")
    print(f"{'  workers: decode + crop + log-mel + SpecAugment':58s} {loader['workers']:7.1f} clips/s per core")
    print(f"{'  device:  decode + crop (+ SpecAugment draws)':58s} {loader['device']:7.1f} clips/s per core")
    print(f"  ratio device/workers: {loader['device'] / loader['workers']:.2f}x")
    print(f"{'device side: batched log-mel + SpecAugment on this CPU':58s} {1 / on_device:7.1f} clips/s per core "
          f"({args.threads} thread{'s' if args.threads > 1 else ''}, batch {args.batch}; "
          f"{on_device * 1e3:.2f} ms/clip)")  # fmt: skip
    print()
    print("\n".join(cores_table(loader)))


if __name__ == "__main__":
    main()
