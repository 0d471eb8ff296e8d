"""Training step of AudioRepInceptionNeXt's training form: NCHW eager vs channels-last, interleaved.

One step = forward, cross-entropy, backward, SGD (Nesterov, momentum 0.9) on a random batch.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/train_step.py --threads 2 --batch 32 --runs 3
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import arinext
from arinext.utils.timing import time_interleaved


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, channels_last: bool) -> Callable[[], None]:
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="audio_rep_inception_next")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=512)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 1, args.frames, 128)
    y = torch.randint(0, 309, (args.batch,))
    steps = {
        "eager NCHW": make_step(arinext.create_model(args.model), x, y, False),
        "eager channels-last": make_step(arinext.create_model(args.model), x, y, True),
    }
    stats = time_interleaved(steps, args.runs, 1)
    ref = stats["eager NCHW"].median_ms
    print(f"{args.model}, batch {args.batch}, {args.frames}x128, {args.threads} threads\n")
    print("| training step | median s | clips/s | vs NCHW |\n|---|---:|---:|---:|")
    for name, st in stats.items():
        print(
            f"| {name} | {st.median_ms / 1e3:.2f} | {args.batch / st.median_ms * 1e3:.1f} | {ref / st.median_ms:.2f}x |"
        )


if __name__ == "__main__":
    main()
