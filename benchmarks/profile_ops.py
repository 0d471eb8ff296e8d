"""Where the time goes: share of CPU time and MACs by kind of layer, for several forms of one model.

Kinds: 1x1 convs, depthwise convs, other convs (stem, Slow-Fast's kxk), BatchNorm, elementwise
(ReLU, additions, pooling) and the rest. Uses forward hooks on the modules, so each module's time includes
its own kernel only; a conv fused with its ReLU and residual add (``ConvReLU``) counts as its conv. The page
faults of each form's forward pass are counted too (``getrusage``): ``--malloc retain`` runs the process
with :func:`arinext.utils.malloc.retain_freed_memory`, ``glibc`` (the default here) without it.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/profile_ops.py --threads 2 --batch 8
    OMP_WAIT_POLICY=PASSIVE python benchmarks/profile_ops.py --threads 2 --batch 8 --malloc retain

``--ops N`` also prints the N costliest operator calls of the two channels-last ARIN forms (``torch.profiler``,
grouped by input shape; ms per call), which is where the page faults show up: in the convs that allocate a
large output.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections import defaultdict

import torch
from torch import nn

from arinext.apps.bench import BenchConfig, build_form
from arinext.inference import ConvReLU, optimize_for_inference
from arinext.layers import reparameterize_model
from arinext.utils.malloc import retain_freed_memory


def kind(module: nn.Module) -> str | None:
    if isinstance(module, ConvReLU):
        return kind(module.conv)
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
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        for _ in range(runs):
            model(x)
        total = time.perf_counter() - start
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    for h in handles:
        h.remove()
    out = {k: v / runs for k, v in totals.items()}
    out["total"] = total / runs
    out["faults"] = faults / runs
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--frames", type=int, default=512)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--malloc", choices=["glibc", "retain"], default="glibc", help="see the module docstring")
    p.add_argument("--ops", type=int, default=0, metavar="N", help="also list the N costliest operator calls")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.malloc == "retain":
        retain_freed_memory()
    cfg = BenchConfig()
    x = torch.randn(args.batch, 1, args.frames, 128)
    base, _ = build_form("audio_rep_inception_next", "train", cfg, x)
    slowfast, _ = build_form("slowfast_audio_r50", "train", cfg, x)
    forms = {
        "paper fusion, NCHW": reparameterize_model(base),
        "full fold, NCHW": reparameterize_model(base, fold="full"),
        "full + crop + channels-last": optimize_for_inference(base, fuse_relu=False, retain_memory=False),
        "fast (the same + conv/ReLU/add fusion)": optimize_for_inference(base, retain_memory=False),
        "Slow-Fast fast": optimize_for_inference(slowfast, retain_memory=False),
    }
    print(f"audio_rep_inception_next, batch {args.batch}, {args.frames}x128, {args.threads} threads, "
          f"malloc {args.malloc}: ms per forward\n")  # fmt: skip
    kinds = ["1x1 conv", "depthwise conv", "other conv", "BatchNorm", "ReLU / pooling", "linear"]
    print("| form | " + " | ".join(kinds) + " | unhooked (adds, glue) | total | page faults |")
    print("|---|" + "---:|" * (len(kinds) + 3))
    for name, model in forms.items():
        t = profile(model, x, args.runs)
        hooked = sum(t.get(k, 0.0) for k in kinds)
        cells = [f"{1e3 * t.get(k, 0.0):.0f} ({100 * t.get(k, 0.0) / t['total']:.0f}%)" for k in kinds]
        tail = f" | {1e3 * (t['total'] - hooked):.0f} | {1e3 * t['total']:.0f} | {t['faults']:,.0f} |"
        print(f"| {name} | " + " | ".join(cells) + tail)
    for name in list(forms)[2:4] if args.ops else []:
        print(f"\n{name}: the {args.ops} costliest operator calls\n")
        print(top_ops(forms[name], x, args.runs, args.ops))


def top_ops(model: nn.Module, x: torch.Tensor, runs: int, n: int) -> str:
    """Markdown table of the ``n`` operator/shape pairs with the most self CPU time (``torch.profiler``)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch.inference_mode():
        model(x)
        with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(runs):
                model(x)
    events = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)
    lines = ["| operator | input shapes | calls per forward | ms per call | ms per forward |"]
    lines.append("|---|---|---:|---:|---:|")
    for e in events[:n]:
        shapes = ", ".join(str(list(s)) for s in e.input_shapes if s)
        per_call = e.self_cpu_time_total / 1e3 / e.count
        per_forward = e.self_cpu_time_total / 1e3 / runs
        lines.append(f"| {e.key} | {shapes} | {e.count / runs:g} | {per_call:.2f} | {per_forward:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
