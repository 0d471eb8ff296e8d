"""Training throughput (clips/s) of a full SGD step: forward, loss, backward, Nesterov SGD update.

Inputs are random log-mel batches of the paper's shapes, so the number measures the model's
training cost alone (data loading is benchmarked by ``loader_throughput.py``). Each model and
shape is timed in this one process, after warm-up steps.

Usage:
    python benchmarks/train_throughput.py --threads 2 --batch 32 --steps 3
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

import arinext
from arinext.train.engine import autocast, param_groups
from arinext.train.tasks import SingleLabelTask

# (label, preset, clip seconds, frames x mel bins): 1.023 s (Speech Commands, 2 ms hop) and 5.119 s
# (VGG-Sound, 10 ms hop) both give 512 frames; 1 s at the VGG-Sound preset gives 101 frames.
SHAPES = [
    ("1.023 s, speech_commands_v2 preset", 512, 128),
    ("5.119 s, vggsound preset", 512, 128),
    ("1 s, vggsound preset", 101, 128),
]
MODELS = ["audio_rep_inception_next", "slowfast_audio_r50"]


def _check_frames() -> None:
    for preset, seconds, frames in (
        ("speech_commands_v2", 1.023, 512),
        ("vggsound", 5.119, 512),
        ("vggsound", 1.0, 101),
    ):
        fe = arinext.get_preset(preset)
        got = fe.frames_for(round(seconds * fe.sample_rate))
        if got != frames:
            raise RuntimeError(f"{preset} at {seconds} s gives {got} frames, expected {frames}")


def time_steps(name: str, frames: int, mels: int, batch: int, steps: int, warmup: int, amp: bool) -> float:
    torch.manual_seed(0)
    model = arinext.create_model(name, num_classes=309).train()
    opt = torch.optim.SGD(param_groups(model, 1e-4), lr=0.01, momentum=0.9, nesterov=True)
    task = SingleLabelTask(num_classes=309)
    x = torch.randn(batch, 1, frames, mels)
    y = torch.randint(0, 309, (batch,))
    dev = torch.device("cpu")
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        with autocast(dev, amp):
            out = model(x)
        loss = task.loss(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return batch / (sum(times) / len(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=3, help="timed steps per case")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--amp", action="store_true", help="bf16 autocast")
    p.add_argument("--models", nargs="*", default=None, help=f"default: those of {MODELS} that are registered")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    _check_frames()
    models = args.models or [m for m in MODELS if m in arinext.list_models()]
    rows = []
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} threads, "
        f"batch {args.batch}, {args.steps} timed steps after {args.warmup} warm-up, amp={args.amp}"
    )
    print("| model | input | T x F | train clips/s |\n|---|---|---|---|")
    for name in models:
        for label, frames, mels in SHAPES:
            rate = time_steps(name, frames, mels, args.batch, args.steps, args.warmup, args.amp)
            rows.append({"model": name, "input": label, "frames": frames, "mels": mels, "clips_per_s": rate})
            print(f"| {name} | {label} | {frames} x {mels} | {rate:.1f} |", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
