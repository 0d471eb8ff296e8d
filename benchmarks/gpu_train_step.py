"""Training step on a GPU: memory format, branch path, cuDNN autotuning and bf16, against Slow-Fast R50.

One step = forward, cross-entropy, backward, SGD (Nesterov, momentum 0.9) on one random batch already on the
GPU (no data loading), timed with a device synchronisation around ``--steps`` steps after ``--warmup`` steps.
The variants run one after the other in one process, each from the same seed:

- ``arin cl auto``: channels-last, the frequency-major branch path (``branch_path="auto"``): what the trainer
  runs on the CPU;
- ``arin nchw auto +bench``: NCHW with ``torch.backends.cudnn.benchmark``: what the trainer runs on a GPU
  (``channels_last: null``);
- ``arin nchw plain +bench``: the same with the reference branch path;
- each of these also under bf16 autocast (``--bf16``);
- ``slowfast nchw/cl +bench``: the paper's Slow-Fast R50 baseline in both memory formats.

    python benchmarks/gpu_train_step.py --batch 32

Prints a markdown table: ms per step, clips/s, and the ratio to the trainer's GPU form.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import arinext
from arinext.layers import set_branch_path

VARIANTS = {  # name: (model, channels_last, branch path, cudnn.benchmark)
    "arin cl auto": ("arin", True, "auto", False),
    "arin nchw auto +bench": ("arin", False, "auto", True),
    "arin nchw plain +bench": ("arin", False, "plain", True),
    "slowfast nchw +bench": ("slowfast_audio_r50", False, None, True),
    "slowfast cl +bench": ("slowfast_audio_r50", True, None, True),
}
REFERENCE = "arin nchw auto +bench"


def step_ms(model_name: str, cl: bool, path: str | None, bench: bool, bf16: bool, args: argparse.Namespace) -> float:
    torch.backends.cudnn.benchmark = bench
    torch.manual_seed(0)
    name = args.model if model_name == "arin" else model_name
    model = arinext.create_model(name, num_classes=args.classes).to(args.device).train()
    if path is not None:
        set_branch_path(model, path)
    x = torch.randn(args.batch, 1, args.frames, args.mels, device=args.device)
    y = torch.randint(0, args.classes, (args.batch,), device=args.device)
    if cl:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)

    def step() -> None:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    tic = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - tic) / args.steps * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="audio_rep_inception_next", help="the ARIN variant")
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=512)
    p.add_argument("--mels", type=int, default=128)
    p.add_argument("--classes", type=int, default=309)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--bf16", action="store_true", help="also every variant under bf16 autocast")
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_train_step.py needs CUDA")
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {args.model}, batch {args.batch}, "
          f"{args.frames}x{args.mels}, {args.classes} classes")  # fmt: skip
    rows = []
    for bf16 in (False, True) if args.bf16 else (False,):
        for name, (model, cl, path, bench) in VARIANTS.items():
            rows.append((f"{name}{' bf16' if bf16 else ''}", step_ms(model, cl, path, bench, bf16, args)))
    ref = dict(rows)[REFERENCE]
    print("| variant | ms/step | clips/s | vs trainer's GPU form |\n|---|---:|---:|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.1f} | {args.batch / ms * 1e3:.0f} | {ref / ms:.2f}x |")


if __name__ == "__main__":
    main()
