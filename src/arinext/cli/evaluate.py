"""``arinext eval``: multi-view test of a checkpoint, in training and fused form, with labels matched by name."""

from __future__ import annotations

import argparse
import json

from . import add_parser, progress_setting
from .train import add_overrides

HELP = "evaluate a checkpoint (training form and fused form) on a test subset"
DESCRIPTION = (
    "Writes OUT/metrics.json, OUT/per_class*.csv and OUT/confusion*.png. The data comes from the recipe stored "
    "with the checkpoint; --set data.root=... (and data.dataset=...) point it elsewhere."
)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_parser(sub, common, "eval", help=HELP, description=DESCRIPTION)
    p.add_argument("checkpoint", help="run directory, RUN/best.pt, save_pretrained directory or authors' .pyth")
    p.add_argument("--out", required=True, help="report directory")
    p.add_argument(
        "--subset", choices=("training", "validation", "testing"), help="default: the recipe's data.test_subset"
    )
    add_overrides(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train.evaluation import evaluate_checkpoint

    content = evaluate_checkpoint(
        args.checkpoint, args.out, args.overrides, args.subset, progress=progress_setting(args)
    )
    forms = [k for k in ("training_form", "fused") if k in content]
    print(json.dumps({k: content[k] for k in (*forms, "max_abs_prob_diff", "clips") if k in content}, indent=2))
    return 0
