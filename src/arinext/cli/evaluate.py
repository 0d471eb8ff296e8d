"""``arinext eval``: multi-view test of a checkpoint, in training and fused form, with labels matched by name;
a challenge submission file for an unlabelled test subset."""

from __future__ import annotations

import argparse

from ..data.records import SUBSETS
from ..utils.jsonout import dumps, undefined_as_null
from . import add_frontend_option, add_parser, progress_setting
from .train import add_overrides

HELP = "evaluate a checkpoint (training form and fused form) on a test subset"
DESCRIPTION = (
    "Writes OUT/metrics.json, OUT/per_class*.csv and OUT/confusion*.png. The data comes from the recipe stored "
    "with the checkpoint; --set data.root=... (and data.dataset=...) point it elsewhere. A leave-one-source-out "
    "checkpoint (data.holdout in its recipe) is also tested on the held-out source (OUT/heldout/), side by side "
    "with the in-source test clips. An unlabelled subset (the EPIC-Sounds and EPIC-KITCHENS-100 challenge test "
    "sets) gives OUT/submission.zip in the challenge's format instead of metrics."
)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_parser(sub, common, "eval", help=HELP, description=DESCRIPTION)
    p.add_argument("checkpoint", help="run directory, RUN/best.pt, save_pretrained directory or authors' .pyth")
    p.add_argument("--out", required=True, help="report directory")
    p.add_argument(
        "--subset", choices=SUBSETS, help="default: the recipe's data.test_subset"
    )
    p.add_argument(
        "--by",
        metavar="COLUMN",
        help="also report top-1 per value of a metadata column of the clips (engine, voice, soundfont_family, "
        "a CSV column)",
    )
    p.add_argument(
        "--sls",
        metavar="PT,TL,TD",
        type=_sls,
        help="supervision levels 0..5 that a challenge submission declares (pre-training, training labels, "
        "training data); default 2,3,3 when the recipe fine-tunes from a checkpoint, else 0,3,3",
    )
    add_frontend_option(p)
    add_overrides(p)
    p.set_defaults(func=run)


def _sls(text: str) -> tuple[int, int, int]:
    from ..train.submission import parse_sls

    try:
        return parse_sls(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def run(args: argparse.Namespace) -> int:
    from ..train.evaluation import evaluate_checkpoint

    # --frontend is the preset as it stands; --set data.frontend=... after it still changes single fields
    preset = [f"data.preset={args.frontend}", "data.frontend={}"] if args.frontend else []
    content = evaluate_checkpoint(
        args.checkpoint, args.out, [*preset, *args.overrides], args.subset, progress=progress_setting(args),
        by=args.by, sls=args.sls,
    )  # fmt: skip
    keys = ("training_form", "fused", "max_abs_prob_diff", "clips", "by", "heldout", "gap_top1", "submission", "rows")
    print(dumps(undefined_as_null({k: content[k] for k in keys if k in content}), what="metrics", indent=2))
    return 0
