"""Clips/s per CPU core of the two feature paths, and how many cores feed a given training rate.

- ``workers`` (``data.features: workers``, the default): a loader worker decodes a clip, crops it, computes its
  log-mel and SpecAugment (``AudioClipDataset(features=True)``);
- ``device`` (``data.features: device``): the worker decodes and crops only (``features="device"``; it also draws
  the clip's SpecAugment parameters, a few integers), and the training device computes the log-mels and
  SpecAugment of whole batches (``arinext.data.batch_features.BatchFeatures``).

Generates VGG-Sound-like clips (10 s WAV, 16 kHz mono by default) in a temporary folder, then times, in this
process with one torch thread (a loader worker's setting), each path's work per training clip, the two paths
taking turns round by round (``--rounds``, median). "Per core" is one worker process on one core. The
device-side cost of the batched log-mel + SpecAugment is timed here on the CPU (``--threads``) as a stand-in
for the GPU, where ``benchmarks/device_check.py`` measures it. Both paths' features are compared, so the two
figures are for the same output.

    python benchmarks/feature_path.py [--preset vggsound] [--clips 64] [--rounds 5] [--batch 32] [--rate 16000]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from loader_throughput import make_clips

from arinext import get_preset
from arinext.audio.augment import SpecAugment
from arinext.data import AudioClipDataset, collate_clips
from arinext.data.batch_features import BatchFeatures

TARGETS = (500, 1000, 2000)  # training clips/s to feed


def paths(records, preset: str) -> dict[str, AudioClipDataset]:
    fe = get_preset(preset)
    return {
        "workers": AudioClipDataset(records, fe, training=True, spec_augment=SpecAugment()),
        "device": AudioClipDataset(records, fe, training=True, spec_augment=SpecAugment(), features="device"),
    }


def seconds_per_clip(ds: AudioClipDataset, epoch: int) -> float:
    """Wall seconds per item of one pass over ``ds`` (epoch ``epoch``: fresh crops and masks)."""
    ds.set_epoch(epoch)
    tic = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    return (time.perf_counter() - tic) / len(ds)


def interleaved_rates(datasets: dict[str, AudioClipDataset], rounds: int) -> dict[str, float]:
    """Clips/s per core of each dataset, the median over ``rounds`` rounds in which they take turns."""
    times: dict[str, list[float]] = {name: [] for name in datasets}
    for r in range(rounds + 1):
        for name, ds in datasets.items():
            t = seconds_per_clip(ds, r)
            if r:  # round 0 warms the page cache and the allocator
                times[name].append(t)
    return {name: 1.0 / statistics.median(t) for name, t in times.items()}


def device_seconds_per_clip(ds: AudioClipDataset, batch: int, device: str, repeats: int = 5) -> float:
    """Seconds per clip of :class:`BatchFeatures` on one collated batch of ``ds`` on ``device`` (median)."""
    features = BatchFeatures.for_dataset(ds).to(device)
    items = collate_clips([ds[i % len(ds)] for i in range(batch)])
    items["inputs"] = items["inputs"].to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    times = []
    for _ in range(repeats + 1):
        sync()
        tic = time.perf_counter()
        features(items)
        sync()
        times.append(time.perf_counter() - tic)
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
    p.add_argument("--rate", type=int, default=16000, help="rate of the generated files (resampled if not the preset's)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the device-side stand-in on the CPU")
    args = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        records = make_clips(Path(tmp), args.clips, sr=args.rate)
        datasets = paths(records, args.preset)
        diff = max_feature_difference(datasets, min(8, args.clips))
        per_core = interleaved_rates(datasets, args.rounds)
        torch.set_num_threads(args.threads)
        on_device = device_seconds_per_clip(datasets["device"], args.batch, "cpu")
    fe = get_preset(args.preset)
    print(f"preset {args.preset}: {fe.clip_seconds} s crops -> {fe.num_frames}x{fe.n_mels} log-mel, SpecAugment; "
          f"{args.clips} clips of 10 s at {args.rate} Hz (WAV); torch {torch.__version__}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")  # fmt: skip
    print(f"max |device - workers| feature difference: {diff:.2e}")
    print(f"{'workers: decode + crop + log-mel + SpecAugment':58s} {per_core['workers']:7.1f} clips/s per core")
    print(f"{'device:  decode + crop (+ SpecAugment draws)':58s} {per_core['device']:7.1f} clips/s per core")
    print(f"  ratio device/workers: {per_core['device'] / per_core['workers']:.2f}x")
    print(f"{'device side: batched log-mel + SpecAugment on this CPU':58s} {1 / on_device:7.1f} clips/s "
          f"({args.threads} thread{'s' if args.threads > 1 else ''}, batch {args.batch}; "
          f"{on_device * 1e3:.2f} ms/clip)")  # fmt: skip
    print()
    print("\n".join(cores_table(per_core)))


if __name__ == "__main__":
    main()
