"""``arinext demo``: train, evaluate, fuse, export, classify and time a keyword spotter, offline."""

from __future__ import annotations

import argparse
from typing import Any

from ..apps.demo import DemoOptions
from . import add_parser, progress_setting

HELP = "end to end on the bundled keyword sample: train, test, fuse, export ONNX/int8, classify, benchmark"
DESCRIPTION = (
    "Trains a small AudioRepInceptionNeXt on the bundled ten-word sample (or a dataset in the Speech Commands V2 "
    "layout), tests it on unseen speakers, checks fused = unfused = ONNX, classifies a clip, times the forms "
    "against Slow-Fast and writes OUT/report.md."
)


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected minutes >= 0 (0: no budget), got {text!r}")
    return value


def _augment(text: str) -> dict[str, Any]:
    import yaml

    from ..audio.waveaug import check_augment_spec

    try:
        spec = yaml.safe_load(text)
        check_augment_spec(spec)
    except (yaml.YAMLError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc).splitlines()[0]) from exc
    return dict(spec or {})


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    defaults = DemoOptions()
    p = add_parser(sub, common, "demo", help=HELP, description=DESCRIPTION)
    p.add_argument("--out", default=defaults.out, help="output directory")
    p.add_argument("--data", default=None, help="dataset in the Speech Commands V2 layout (default: bundled sample)")
    p.add_argument(
        "--model",
        default=defaults.model,
        choices=("audio_rep_inception_next_tiny", "audio_rep_inception_next_small", "audio_rep_inception_next"),
        help="model to train",
    )
    p.add_argument(
        "--minutes", type=_minutes, default=defaults.minutes,
        help="time budget of the whole demo: sets the epochs from the first epoch's time (0: exactly --epochs)",
    )  # fmt: skip
    p.add_argument("--epochs", type=int, default=defaults.epochs, help="the most training epochs")
    p.add_argument("--lr", type=float, default=defaults.lr, help="base learning rate")
    p.add_argument("--workers", type=int, default=defaults.num_workers, help="data-loading workers")
    p.add_argument("--bench-runs", type=int, default=defaults.bench_runs, help="timed runs per model")
    p.add_argument("--seed", type=int, default=defaults.seed, help="seed of the weights, data order and augmentation")
    p.add_argument(
        "--augment", type=_augment, default=None, metavar="MAPPING",
        help="waveform augmentation of the training clips, as data.augment of a recipe, e.g. "
        "'{speed: true, reverb: true}' (README, Waveform augmentation)",
    )  # fmt: skip
    p.add_argument(
        "--holdout", metavar="COLUMN=VALUE", default=None,
        help="leave one source out, e.g. engine=flite: train without it, report it beside the unseen speakers",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..apps.demo import run_demo

    opts = DemoOptions(
        out=args.out,
        data=args.data,
        model=args.model,
        epochs=args.epochs,
        minutes=args.minutes or None,
        lr=args.lr,
        num_workers=args.workers,
        bench_runs=args.bench_runs,
        seed=args.seed,
        progress=progress_setting(args),
        holdout=args.holdout,
        augment=args.augment or {},
    )
    r = run_demo(opts)
    n = r["test_clips"]
    print(f"\narinext demo: {r['model']} on {len(r['words'])} words, {n} test clips from unseen speakers")
    print(f"  {'form':<26} {'test top-1':>10}  {'same predictions':>16}")
    for name, row in r["fusion"].items():
        print(f"  {name:<26} {row['accuracy']:>10.1%}  {row['same_predictions']:>10}/{n}")
    e = r["export"]
    print(f"  {'ONNX Runtime fp32':<26} {e['onnx_accuracy']:>10.1%}  {e['onnx_same_predictions']:>10}/{n}")
    c = e["int8_check"]
    agree = round(c["agreement"] * n)
    print(f"  {'ONNX Runtime int8':<26} {e['int8_accuracy']:>10.1%}  {agree:>10}/{n} of fp32's")
    verdict = "passed" if c["passed"] else f"REFUSED: {c['reason']}"
    print(f"  int8 check: agreement {c['agreement']:.1%}, portable {'yes' if c['portable'] else 'no'} -> {verdict}")
    if "holdout" in r:
        h = r["holdout"]
        print(f"  {'held-out ' + h['source']:<26} {h['heldout_top1']:>10.1%}  ({h['heldout_clips']} clips never trained on)")
    top = r["classify"]["top3"][0]
    print(f"  classifier on {r['classify']['file']}: {top['label']} ({top['score']:.2f})")
    print(f"  {'latency, batch 1':<26} {'median ms':>10}")
    for name, row in r["latency"].items():
        print(f"  {name:<26} {row['median_ms']:>10.2f}")
    t = r["train"]
    b = t["budget"]
    if b.get("minutes"):
        print(f"  time budget {b['minutes']:g} min: {t['epochs']} epochs (first epoch {b['first_epoch_seconds']:.1f} s), "
              f"{b['total_seconds']:.0f} s in all")  # fmt: skip
    else:
        print(f"  {t['epochs']} epochs (no time budget), {b['total_seconds']:.0f} s in all")
    print(f"  report: {opts.out}/report.md")
    same = all(row["same_predictions"] == n for row in r["fusion"].values()) and e["onnx_same_predictions"] == n
    return 0 if same and c["passed"] else 1
