"""The demo's training data path: time with no batch at each epoch start, and epoch time, before and after.

- ``before``: workers started again every epoch (``persistent_workers=False``), every FLAC file decoded and
  resampled again every epoch (no waveform cache): what the trainer did before.
- ``after``: what ``arinext train`` does now: workers started once (the epoch reaches them through shared
  memory), the decoded audio of the training files cached in shared memory as the first epoch reads them.

Both read the bundled keyword sample through the demo's recipe (``keywords``: 1 s crops, background noise,
SpecAugment), 2 workers, batch 32, and take turns epoch by epoch in one process. With ``--train`` every
batch also takes a training step of the demo's tiny model (2 threads), as in ``arinext demo``.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/data_path.py --epochs 4 --train
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from _demo_training import keywords_training_set, tiny_sgd_step

from arinext.data import make_loader
from arinext.data.waveforms import attach_waveform_cache


def epoch(loader, dataset, number: int, step) -> tuple[float, float]:
    dataset.set_epoch(number)
    tic = time.perf_counter()
    first = None
    for batch in loader:
        if first is None:
            first = time.perf_counter() - tic
        if step is not None:
            step(batch)
    return first or 0.0, time.perf_counter() - tic


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--train", action="store_true", help="a training step of the tiny model on every batch")
    args = p.parse_args()
    torch.set_num_threads(2)
    loaders = {}
    for mode in ("before", "after"):
        dataset = keywords_training_set()
        if mode == "after":
            attach_waveform_cache([dataset], True, 1024.0)  # filled as the first epoch reads the files
        loader = make_loader(dataset, 32, True, args.workers, seed=0, drop_last=True,
                             persistent_workers=mode == "after")  # fmt: skip
        loaders[mode] = (loader, dataset)
    step = tiny_sgd_step() if args.train else None

    rows: dict[str, list[tuple[float, float]]] = {m: [] for m in loaders}
    print(f"load average before {os.getloadavg()[0]:.2f}")
    for e in range(args.epochs):
        for mode, (loader, dataset) in loaders.items():
            rows[mode].append(epoch(loader, dataset, e, step))
    print(f"load average after {os.getloadavg()[0]:.2f}\n")
    what = "data + training step" if args.train else "data only"
    print(f"| loader | no batch at epoch start, s (epochs 1..{args.epochs}) | epoch s ({what}), median |")
    print("|---|---|---:|")
    for mode, r in rows.items():
        firsts = " ".join(f"{f:.2f}" for f, _ in r)
        print(f"| {mode} | {firsts} | {statistics.median(t for _, t in r):.2f} |")


if __name__ == "__main__":
    main()
