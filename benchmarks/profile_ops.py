"""Where the time goes: share of CPU time and MACs by kind of layer, for several forms of one model.

Kinds: 1x1 convs, depthwise convs, other convs (stem, Slow-Fast's kxk), BatchNorm, elementwise
(ReLU, additions, pooling) and the rest. Uses forward hooks on the modules (``torch.profiler`` record
functions), so each module's time includes its own kernel only.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/profile_ops.py --threads 2 --batch 8
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch
from torch import nn

from arinext.apps.bench import BenchConfig, build_form
from arinext.inference import optimize_for_inference
from arinext.layers import reparameterize_model


def kind(module: nn.Module) -> str | None:
    if isinstance(module, nn.Conv2d):
        if module.groups > 1 and module.groups == module.in_channels:
            return "depthwise conv"
        return "1x1 conv" if module.kernel_size == (1, 1) else "other conv"
    if isinstance(module, nn.BatchNorm2d):
        return "BatchNorm"
    if isinstance(module, (nn.ReLU, nn.MaxPool2d, nn.AdaptiveAvgPool2d)):
        return "ReLU / pooling"
    if isinstance(module, nn.Linear):
        return "linear"
    return None


def profile(model: nn.Module, x: torch.Tensor, runs: int) -> dict[str, float]:
    """Seconds per forward spent in each kind of leaf module (sum over ``runs`` / ``runs``)."""
    totals: dict[str, float] = defaultdict(float)
    starts: dict[int, float] = {}
    handles = []
    for m in model.modules():
        k = kind(m)
        if k is None:
            continue

        def pre(mod: nn.Module, _inp: object) -> None:
            starts[id(mod)] = time.perf_counter()

        def post(mod: nn.Module, _inp: object, _out: object, k: str = k) -> None:
            totals[k] += time.perf_counter() - starts[id(mod)]

        handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    with torch.inference_mode():
        model(x)
        totals.clear()
        start = time.perf_counter()
        for _ in range(runs):
            model(x)
        total = time.perf_counter() - start
    for h in handles:
        h.remove()
    out = {k: v / runs for k, v in totals.items()}
    out["total"] = total / runs
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--frames", type=int, default=512)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = BenchConfig()
    x = torch.randn(args.batch, 1, args.frames, 128)
    base, _ = build_form("audio_rep_inception_next", "train", cfg, x)
    forms = {
        "paper fusion, NCHW": reparameterize_model(base),
        "full fold, NCHW": reparameterize_model(base, fold="full"),
        "fast (full + crop + channels-last)": optimize_for_inference(base),
    }
    print(f"audio_rep_inception_next, batch {args.batch}, {args.frames}x128, {args.threads} threads: ms per forward\n")
    kinds = ["1x1 conv", "depthwise conv", "other conv", "BatchNorm", "ReLU / pooling", "linear"]
    print("| form | " + " | ".join(kinds) + " | unhooked (adds, glue) | total |")
    print("|---|" + "---:|" * (len(kinds) + 2))
    for name, model in forms.items():
        t = profile(model, x, args.runs)
        hooked = sum(t.get(k, 0.0) for k in kinds)
        cells = [f"{1e3 * t.get(k, 0.0):.0f} ({100 * t.get(k, 0.0) / t['total']:.0f}%)" for k in kinds]
        rest = t["total"] - hooked
        print(f"| {name} | " + " | ".join(cells) + f" | {1e3 * rest:.0f} | {1e3 * t['total']:.0f} |")


if __name__ == "__main__":
    main()
