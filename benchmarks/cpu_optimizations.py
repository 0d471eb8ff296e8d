"""Each CPU inference optimisation of the fused AudioRepInceptionNeXt, measured step by step.

All variants are built from the same model (random weights, non-trivial BN statistics) and timed
interleaved in this process, against Auditory Slow-Fast in PyTorch eager. Prints a Markdown table.
``--malloc retain`` runs the whole process with :func:`arinext.utils.malloc.retain_freed_memory` (what
``optimize_for_inference`` sets up); ``glibc`` (the default here, as when the first tables of BENCHMARKS.md
were measured) leaves malloc alone, so the two settings need two runs.

    python benchmarks/cpu_optimizations.py --threads 2 --batch-sizes 1 8 --runs 10
    python benchmarks/cpu_optimizations.py --threads 2 --batch-sizes 1 8 --runs 10 --malloc retain
"""

from __future__ import annotations

import argparse
import logging
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from arinext.apps.bench import BenchConfig, build_form
from arinext.apps.bench.runner import onnx_runner
from arinext.inference import optimize_for_inference
from arinext.layers import reparameterize_model
from arinext.utils.complexity import count_macs
from arinext.utils.malloc import retain_freed_memory
from arinext.utils.timing import time_interleaved

_log = logging.getLogger("cpu_optimizations")
ARIN = "audio_rep_inception_next"
SLOWFAST = "slowfast_audio_r50"


def _mkldnn(model: nn.Module) -> Callable[[torch.Tensor], Any]:
    """oneDNN opaque tensors end to end (``torch.utils.mkldnn.to_mkldnn``): weights reordered once."""
    from torch.utils import mkldnn as mkldnn_utils

    converted = mkldnn_utils.to_mkldnn(reparameterize_model(model, fold="full"))
    return lambda x: converted(x.to_mkldnn()).to_dense()


def variants(cfg: BenchConfig, example: torch.Tensor, with_compile: bool) -> dict[str, Callable[[], Any]]:
    base, _ = build_form(ARIN, "train", cfg, example)
    sf, _ = build_form(SLOWFAST, "train", cfg, example)
    opt = dict(fuse_relu=False, retain_memory=False)  # one pass at a time; malloc is set in main()
    forms: dict[str, Any] = {
        "slowfast eager NCHW (reference)": sf,
        "slowfast full fold + channels-last": optimize_for_inference(sf, **opt),
        "slowfast full fold + channels-last + conv/ReLU/add fusion (`fast`)": optimize_for_inference(
            sf, retain_memory=False
        ),
        "ARIN training form": base,
        "ARIN paper fusion (authors' inference model)": reparameterize_model(base),
        "ARIN full fold": reparameterize_model(base, fold="full"),
        "ARIN full fold + crop": optimize_for_inference(base, channels_last=False, **opt),
        "ARIN full fold + channels-last": optimize_for_inference(base, crop_kernels=False, **opt),
        "ARIN full + channels-last + crop": optimize_for_inference(base, **opt),
        "ARIN full + channels-last + crop + conv/ReLU/add fusion (`fast`)": optimize_for_inference(
            base, retain_memory=False
        ),
    }
    try:
        forms["ARIN full fold, mkldnn tensors"] = _mkldnn(base)
        forms["ARIN full fold, mkldnn tensors"](example)
    except (RuntimeError, NotImplementedError) as exc:
        _log.warning("mkldnn path failed: %s", exc)
        forms.pop("ARIN full fold, mkldnn tensors", None)
    if with_compile:
        try:
            compiled = optimize_for_inference(base, compile=True, retain_memory=False)
            compiled(example)
            forms["ARIN `fast` + torch.compile"] = compiled
        except Exception as exc:  # noqa: BLE001  (any compiler failure is a result to report)
            _log.warning("torch.compile failed: %s", exc)
    forms["ARIN full fold, ONNX Runtime"] = onnx_runner(
        reparameterize_model(base, fold="full"), example, torch.get_num_threads()
    )
    return {name: (lambda f=f, x=example: f(x)) for name, f in forms.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--frames", type=int, default=512)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--compile", action="store_true", help="include torch.compile (slow first call)")
    p.add_argument("--malloc", choices=["glibc", "retain"], default="glibc", help="see the module docstring")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO)
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    if args.malloc == "retain":
        retain_freed_memory()
    cfg = BenchConfig()
    macs = count_macs(reparameterize_model(build_form(ARIN, "train", cfg, torch.zeros(1))[0]), (1, 1, args.frames, 128))
    print(f"threads={args.threads}, input {args.frames}x128, fused ARIN {macs['total'] / 1e9:.3f} GMACs, "
          f"malloc {args.malloc}")  # fmt: skip
    for batch in args.batch_sizes:
        example = torch.randn(batch, 1, args.frames, 128)
        with torch.inference_mode():
            cands = variants(cfg, example, args.compile)
            stats = time_interleaved(cands, args.runs, 2)
        ref = stats["slowfast eager NCHW (reference)"].median_ms
        print(f"\nbatch {batch}\n\n| variant | median ms | p90 ms | vs Slow-Fast eager |\n|---|---:|---:|---:|")
        for name, st in stats.items():
            print(f"| {name} | {st.median_ms:.1f} | {st.p90_ms:.1f} | {ref / st.median_ms:.2f}x |")


if __name__ == "__main__":
    main()
