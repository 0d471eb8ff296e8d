"""``arinext bench``: params, MACs, peak memory and interleaved latency of model forms, with ratios."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from . import CLIError, add_parser

log = logging.getLogger(__name__)

HELP = "benchmark model forms (training, fused, fully folded, optimized, ONNX Runtime) side by side"
DESCRIPTION = (
    "All candidates of one input size and batch are timed interleaved in this process; ratios are speed-ups "
    "over --reference and, in the 'same form' column, over the reference's model in the row's own form (fast "
    "against fast: every model gets the same optimize_for_inference passes). Writes bench.json, bench.md and "
    "bench.png to --out. When other processes use the CPUs during the runs (run-queue wait, load average, CPU "
    "pressure, run-to-run spread), a warning says so on stderr and in bench.md, and bench.json has "
    "load.loaded = true."
)

def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from ..apps.bench.runner import FORMS, BenchConfig

    d = BenchConfig()
    p = add_parser(sub, common, "bench", help=HELP, description=DESCRIPTION)
    p.add_argument(
        "--candidates", nargs="+", default=list(d.candidates), metavar="MODEL:FORM",
        help=f"registered model and form ({', '.join(FORMS)}); default: ARIN forms and Slow-Fast",
    )  # fmt: skip
    p.add_argument("--reference", default=d.reference, help="candidate the ratios are relative to")
    p.add_argument("--sizes", nargs="+", default=list(d.sizes), help="presets (vggsound, ...) or TxF like 512x128")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=list(d.batch_sizes), help="batch sizes to time")
    p.add_argument("--runs", type=int, default=d.runs, help="timed runs per candidate (median and p90 reported)")
    p.add_argument("--warmup", type=int, default=d.warmup, help="untimed runs per candidate first")
    p.add_argument("--num-classes", type=int, default=d.num_classes, help="head size of every model")
    p.add_argument("--threads", type=int, default=None, help="torch (and ONNX Runtime) intra-op threads")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--roofline", action="store_true", help="also measure matmul GMAC/s and copy GB/s")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    p.add_argument(
        "--no-retain-memory", action="store_true",
        help="leave malloc at the C library's default, which returns freed memory to the OS (large batches then "
        "pay page faults on every run); by default the process keeps it, as optimize_for_inference does",
    )  # fmt: skip
    p.add_argument(
        "--accuracy", nargs="*", default=[], metavar="MODEL=ACC", help="top-1 per model: plot accuracy vs latency"
    )
    p.add_argument(
        "--quick", action="store_true", help="tiny models and inputs, 2 runs: checks the pipeline in seconds"
    )
    p.add_argument("--out", default="bench-results", help="output folder")
    p.set_defaults(func=run)


def _parse_accuracy(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise CLIError(f"--accuracy expects MODEL=ACC, got {item!r}")
    return out


def run(args: argparse.Namespace) -> int:
    from ..apps.bench import BenchConfig, run_bench, to_markdown, write_reports

    cfg = BenchConfig(
        candidates=args.candidates, reference=args.reference, sizes=args.sizes, batch_sizes=args.batch_sizes,
        runs=args.runs, warmup=args.warmup, num_classes=args.num_classes, threads=args.threads,
        device=args.device, measure_memory=not args.no_memory, with_roofline=args.roofline,
        retain_memory=not args.no_retain_memory,
    )  # fmt: skip
    if args.quick:
        cfg.sizes, cfg.batch_sizes, cfg.runs, cfg.warmup = ["64x32"], [1, 2], 2, 1
        cfg.model_kwargs = {"depths": (1, 1, 1, 1)}
        cfg.roofline_matmul, cfg.roofline_copy_mib = 256, 8
        cfg.candidates = [
            c.replace("audio_rep_inception_next:", "audio_rep_inception_next_tiny:") for c in cfg.candidates
        ]
        cfg.reference = cfg.reference.replace("audio_rep_inception_next:", "audio_rep_inception_next_tiny:")
    accuracy = _parse_accuracy(args.accuracy)
    result = run_bench(cfg)
    paths = write_reports(result, args.out, accuracy or None)
    print(to_markdown(result))
    if result["load"]["loaded"]:
        print(f"arinext bench: {result['load']['message']}", file=sys.stderr)
    print(json.dumps({k: str(v) for k, v in paths.items()}))
    return 0
