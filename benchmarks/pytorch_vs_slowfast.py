"""AudioRepInceptionNeXt against Auditory Slow-Fast in PyTorch: each model's best exact eager form, side by side.

Both models (309 classes, random weights with non-trivial BatchNorm statistics, VGG-Sound input 512x128)
get the same inference passes, so the ratio compares the architectures in one runtime:

* ``fold+CL``: :func:`arinext.optimize_for_inference` without ReLU fusion (full fold, cropped kernels where
  a model has them, channels-last): the ``fast`` form before the passes below;
* ``fused``: ``optimize_for_inference`` as it is now, each conv run with its ReLU and residual add as one
  oneDNN kernel (:func:`arinext.inference.fuse_conv_relu`).

The allocator setting (:func:`arinext.utils.malloc.retain_freed_memory`, part of ``optimize_for_inference``)
is process-wide and the OpenMP wait policy is read once when torch starts, so each (wait policy,
allocator) pair runs in its own child process; inside a child, the four candidates (two models x two
forms) are timed interleaved (:func:`arinext.utils.timing.time_interleaved`) at batch 8 and 1, so every
ratio compares runs made side by side. Page faults per forward pass and the load average are printed with
them. ``--onnx`` adds both models' full folds through ONNX Runtime to each child.

    python benchmarks/pytorch_vs_slowfast.py --runs 10
    python benchmarks/pytorch_vs_slowfast.py --policies PASSIVE --malloc retain --runs 20
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from typing import Any

ARIN, SLOWFAST = "audio_rep_inception_next", "slowfast_audio_r50"
FORMS = ("fold+CL", "fused")


def _faults_per_call(fn: Callable[[], Any], calls: int = 3) -> int:
    fn()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // calls


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Time both models in both forms, interleaved, in this process (allocator as ``args.malloc``)."""
    import warnings

    import torch

    from arinext.apps.bench import BenchConfig, build_form
    from arinext.apps.bench.runner import onnx_runner
    from arinext.inference import optimize_for_inference
    from arinext.layers import reparameterize_model
    from arinext.utils.malloc import retain_freed_memory
    from arinext.utils.timing import time_interleaved

    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    if args.malloc == "retain":
        retain_freed_memory()
    cfg = BenchConfig(num_classes=309)
    result: dict[str, Any] = {"policy": os.environ.get("OMP_WAIT_POLICY", "default"), "malloc": args.malloc,
                              "threads": args.threads, "load_before": os.getloadavg(), "batches": {}}  # fmt: skip
    for batch in args.batch_sizes:
        x = torch.randn(batch, 1, args.frames, 128)
        forms: dict[str, Callable[[torch.Tensor], Any]] = {}
        for name in (ARIN, SLOWFAST):
            base, _ = build_form(name, "train", cfg, x)
            forms[f"{name}:fold+CL"] = optimize_for_inference(base, fuse_relu=False, retain_memory=False)
            forms[f"{name}:fused"] = optimize_for_inference(base, retain_memory=False)
            if args.onnx:
                forms[f"{name}:onnx"] = onnx_runner(reparameterize_model(base, fold="full"), x, args.threads)
        with torch.inference_mode():
            diff = {n: float((forms[f"{n}:fused"](x) - forms[f"{n}:fold+CL"](x)).abs().max()) for n in (ARIN, SLOWFAST)}
            stats = time_interleaved({k: (lambda f=f: f(x)) for k, f in forms.items()}, args.runs, args.warmup)
            faults = {k: _faults_per_call(lambda f=f: f(x)) for k, f in forms.items()}
        result["batches"][str(batch)] = {
            "median_ms": {k: s.median_ms for k, s in stats.items()},
            "p90_ms": {k: s.p90_ms for k, s in stats.items()},
            "faults_per_forward": faults,
            "max_abs_diff_fused_vs_fold_cl": diff,
        }
    result["load_after"] = os.getloadavg()
    return result


def _table(results: list[dict[str, Any]], onnx: bool) -> str:
    forms = [*FORMS, "onnx"] if onnx else list(FORMS)
    head = "| wait policy | malloc | batch | " + " | ".join(
        f"{f}: ARIN ms | {f}: Slow-Fast ms | {f}: ratio" for f in forms
    ) + " | page faults per forward, ARIN / Slow-Fast (fused) | load average before, after |"
    lines = [head, "|---|---|---:|" + "---:|" * (3 * len(forms)) + "---|---|"]
    for r in results:
        for batch, b in r["batches"].items():
            cells = []
            for f in forms:
                a, s = b["median_ms"][f"{ARIN}:{f}"], b["median_ms"][f"{SLOWFAST}:{f}"]
                cells += [f"{a:.1f}", f"{s:.1f}", f"**{s / a:.2f}x**" if f == "fused" else f"{s / a:.2f}x"]
            fa = b["faults_per_forward"]
            load = f"{r['load_before'][0]:.2f}, {r['load_after'][0]:.2f}"
            lines.append(
                f"| {r['policy']} | {r['malloc']} | {batch} | " + " | ".join(cells)
                + f" | {fa[f'{ARIN}:fused']:,} / {fa[f'{SLOWFAST}:fused']:,} | {load} |"
            )  # fmt: skip
    return "\n".join(lines)


def _run_child(args: argparse.Namespace, policy: str, malloc: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--malloc", malloc, "--runs", str(args.runs), "--warmup",
           str(args.warmup), "--threads", str(args.threads), "--frames", str(args.frames), "--batch-sizes",
           *map(str, args.batch_sizes), *(["--onnx"] if args.onnx else [])]  # fmt: skip
    print(f"OMP_WAIT_POLICY={policy}, malloc {malloc} ...", file=sys.stderr, flush=True)
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policies", nargs="+", default=["PASSIVE", "ACTIVE"], help="OMP_WAIT_POLICY values")
    p.add_argument(
        "--malloc", nargs="+", default=["glibc", "retain"], choices=["glibc", "retain"],
        help="glibc: the C library's default; retain: arinext.utils.malloc.retain_freed_memory()",
    )  # fmt: skip
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 1])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--frames", type=int, default=512)
    p.add_argument("--runs", type=int, default=10, help="interleaved rounds per child process")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1, help="run every (policy, malloc) child this many times")
    p.add_argument("--onnx", action="store_true", help="add both full folds through ONNX Runtime")
    p.add_argument("--json", help="also write every child's result to this file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.malloc = args.malloc[0]
        print(json.dumps(child(args)))
        return
    pairs = [(policy, malloc) for policy in args.policies for malloc in args.malloc]
    results = [_run_child(args, *pair) for _ in range(args.repeat) for pair in pairs]
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    print(f"{ARIN} vs {SLOWFAST}, 309 classes, input {args.frames}x128, {args.threads} threads, {args.runs} "
          "interleaved rounds per child process; ratio = Slow-Fast ms / ARIN ms in the same form.\n")  # fmt: skip
    print(_table(results, args.onnx))
    diffs = [v for r in results for b in r["batches"].values() for v in b["max_abs_diff_fused_vs_fold_cl"].values()]
    print(f"\nlargest |fused - fold+CL| logit difference: {max(diffs):.2g}")


if __name__ == "__main__":
    main()
