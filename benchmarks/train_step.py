"""Training step on the CPU: the reference NCHW form against what the trainer runs, and Slow-Fast R50, interleaved.

One step = forward, cross-entropy, backward, SGD (Nesterov, momentum 0.9) on one random batch. Every
variant gets the same weights (seeded) and the same batch, and the variants take turns, run after run,
in one process (``arinext.utils.timing.time_interleaved``), so a busy machine slows them alike.

Variants (``--variants``, default all but ``compile``):

- ``nchw``: ARIN in NCHW with ``branch_path="plain"``: the model as written, kernel for kernel; the reference
  (the authors' implementation runs the same operators: BENCHMARKS.md, "Training speed").
- ``cl``: channels-last, ``branch_path="plain"`` (the trainer before the frequency-major branch path).
- ``cl+auto``: channels-last with the default ``branch_path="auto"`` (what ``arinext train`` runs; exact).
- ``cl+auto+bf16``: the same under bfloat16 autocast (``amp: true``; not exact).
- ``cl+auto+compile``: the same through ``torch.compile`` (the first call compiles for minutes).
- ``slowfast+nchw``, ``slowfast+cl``, ``slowfast+cl+bf16``: the paper's Slow-Fast R50 baseline.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/train_step.py --threads 2 --batch 32 --runs 3

Prints a markdown table (median seconds per step, clips/s, ratio to ``nchw`` and to Slow-Fast in the same
memory format) and the machine-load verdict of ``arinext bench``. ``--malloc retain`` (the default) keeps freed
memory in the process for reuse, as ``arinext train`` does on the CPU (:mod:`arinext.utils.malloc`);
``--malloc glibc`` leaves glibc's default, under which each step page-faults its large activations back in.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import arinext
from arinext.layers import set_branch_path
from arinext.utils.cpu import RunQueueWait, assess_load
from arinext.utils.malloc import retain_freed_memory
from arinext.utils.timing import time_interleaved

VARIANTS = ("nchw", "cl", "cl+auto", "cl+auto+bf16", "cl+auto+compile", "slowfast+nchw", "slowfast+cl",
            "slowfast+cl+bf16")  # fmt: skip
DEFAULT = tuple(v for v in VARIANTS if "compile" not in v)


def build(variant: str, arin: str, classes: int) -> nn.Module:
    torch.manual_seed(0)
    if variant.startswith("slowfast"):
        return arinext.create_model("slowfast_audio_r50", num_classes=classes)
    model = arinext.create_model(arin, num_classes=classes)
    return set_branch_path(model, "auto" if "auto" in variant else "plain")


def make_step(variant: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    if "cl" in variant.split("+"):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    model.train()
    net = torch.compile(model) if "compile" in variant else model
    bf16 = "bf16" in variant

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="audio_rep_inception_next", help="the ARIN variant")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=512)
    p.add_argument("--mels", type=int, default=128)
    p.add_argument("--classes", type=int, default=309)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--variants", nargs="+", default=list(DEFAULT), choices=VARIANTS)
    p.add_argument("--malloc", choices=("retain", "glibc"), default="retain",
                   help="retain: keep freed memory for reuse, as arinext train does on the CPU; glibc: its default")  # fmt: skip
    args = p.parse_args()
    if args.malloc == "retain":
        retain_freed_memory()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 1, args.frames, args.mels)
    y = torch.randint(0, args.classes, (args.batch,))
    steps = {v: make_step(v, build(v, args.model, args.classes), x, y) for v in args.variants}
    with RunQueueWait() as watch:
        stats = time_interleaved(steps, args.runs, args.warmup)
    spreads = {n: (st.median_ms, st.p90_ms, st.min_ms) for n, st in stats.items()}
    verdict = assess_load(spreads, watch.wait_fraction, watch.load_before, watch.load_after, args.threads,
                          watch.pressure)  # fmt: skip
    print(f"{args.model} vs slowfast_audio_r50, batch {args.batch}, {args.frames}x{args.mels}, "
          f"{args.threads} threads, {args.runs} interleaved runs, malloc {args.malloc}\n")  # fmt: skip
    ref = stats["nchw"].median_ms if "nchw" in stats else None
    print("| variant | median s/step | clips/s | vs nchw | vs Slow-Fast, same format |\n|---|---:|---:|---:|---:|")
    for name, st in stats.items():
        fmt = "+".join(t for t in name.split("+") if t in ("nchw", "cl", "bf16"))
        sf = stats.get(f"slowfast+{fmt}") if not name.startswith("slowfast") else None
        vs_ref = f"{ref / st.median_ms:.2f}x" if ref else "-"
        vs_sf = f"{sf.median_ms / st.median_ms:.2f}x" if sf else "-"
        print(f"| {name} | {st.median_ms / 1e3:.2f} | {args.batch / st.median_ms * 1e3:.1f} | {vs_ref} | {vs_sf} |")
    print()
    print(f"load: {verdict.message()}")


if __name__ == "__main__":
    main()
