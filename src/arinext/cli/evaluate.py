"""``arinext eval``: multi-view test of a training checkpoint, in training and fused form."""

from __future__ import annotations

import argparse
import json
import logging

from ..train.evaluation import evaluate_checkpoint
from .train import add_common


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a checkpoint (training form and fused form) on a test subset",
        description="Writes OUT/metrics.json, OUT/per_class*.csv and OUT/confusion*.png.",
    )
    p.add_argument("checkpoint", help="a training checkpoint (RUN/best.pt or RUN/last.pt)")
    p.add_argument("--out", required=True, help="report directory")
    p.add_argument(
        "--subset", choices=("training", "validation", "testing"), help="default: the recipe's data.test_subset"
    )
    add_common(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.quiet:
        logging.getLogger().setLevel(logging.WARNING)
    content = evaluate_checkpoint(args.checkpoint, args.out, args.overrides, args.subset, progress=not args.quiet)
    if not args.quiet:
        print(
            json.dumps(
                {k: content[k] for k in ("training_form", "fused", "max_abs_prob_diff") if k in content}, indent=2
            )
        )
    return 0
