"""Clips/s of the data loader vs the training step it has to feed, in one process.

Generates VGG-Sound-like clips (10 s, 16 kHz mono WAV) in a temporary folder, then measures:

1. the loader: ``AudioClipDataset(training=True, spec_augment=SpecAugment())`` with the
   ``vggsound`` preset (random 5.119 s crop -> 512x128 log-mel) through ``make_loader`` with
   ``--workers`` worker processes, batch 32;
2. optionally (``--cache``) the same loader reading memory-mapped cached log-mels;
3. the training step of ``create_model("audio_rep_inception_next_small")`` at batch 32:
   forward + backward + SGD step, ``torch.set_num_threads(--threads)``.

Usage: python benchmarks/loader_throughput.py [--clips 64] [--batches 6] [--workers 2] [--threads 2] [--cache]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from arinext import create_model, get_preset
from arinext.audio.augment import SpecAugment
from arinext.data import AudioClipDataset, ClipRecord, make_loader


def make_clips(folder: Path, n: int, seconds: float = 10.0, sr: int = 16000) -> list[ClipRecord]:
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        x = (0.1 * rng.standard_normal(int(seconds * sr))).astype(np.float32)
        path = folder / f"clip{i:04d}.wav"
        sf.write(path, x, sr, subtype="PCM_16")
        records.append(ClipRecord(str(path), i % 309))
    return records


def loader_rate(ds: AudioClipDataset, batch: int, batches: int, workers: int) -> float:
    """Clips/s over ``batches`` batches, after one warm-up batch (worker start-up excluded)."""
    it = iter(make_loader(ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True))
    next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        b = next(it)
        assert b["inputs"].shape == (batch, 1, 512, 128) and not b["bad"]
    return batches * batch / (time.perf_counter() - t0)


def train_rate(batch: int, steps: int, threads: int) -> float:
    torch.set_num_threads(threads)
    model = create_model("audio_rep_inception_next_small", num_classes=309).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
    x, y = torch.randn(batch, 1, 512, 128), torch.randint(0, 309, (batch,))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--cache", action="store_true", help="also time the loader on cached log-mels")
    args = ap.parse_args()
    fe = get_preset("vggsound")
    with tempfile.TemporaryDirectory() as tmp:
        records = make_clips(Path(tmp), args.clips)
        needed = (args.batches + 1) * args.batch  # files are reused across batches when clips < needed
        records = (records * (needed // len(records) + 1))[:needed]
        ds = AudioClipDataset(records, fe, training=True, spec_augment=SpecAugment())
        rates = {
            "loader (decode + crop + log-mel + SpecAugment)": loader_rate(ds, args.batch, args.batches, args.workers)
        }
        if args.cache:
            cached = AudioClipDataset(records, fe, training=True, spec_augment=SpecAugment(), cache_dir=Path(tmp) / "c")
            cached.fill_cache(num_workers=args.workers)
            rates["loader, cached log-mels (mmap + crop + SpecAugment)"] = loader_rate(
                cached, args.batch, args.batches, args.workers
            )
    step = train_rate(args.batch, args.steps, args.threads)
    print(
        f"workers={args.workers} threads={args.threads} batch={args.batch} clips={args.clips} (torch {torch.__version__})"
    )
    print(f"{'training step (audio_rep_inception_next_small, fwd+bwd+SGD)':58s} {step:8.1f} clips/s")
    for name, rate in rates.items():
        print(f"{name:58s} {rate:8.1f} clips/s  ({rate / step:.1f}x the training step)")


if __name__ == "__main__":
    main()
