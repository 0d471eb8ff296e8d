"""``arinext train``: train or fine-tune from a YAML recipe, resumable, on one process or under ``torchrun``."""

from __future__ import annotations

import argparse
import logging

from ..train.config import list_recipes, load_config
from ..train.trainer import fit_folds


def add_common(p: argparse.ArgumentParser) -> None:
    """Options shared by ``train`` and ``eval``: ``--set`` overrides and ``--quiet``."""
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set optim.lr=0.003 --set data.root=/data/vggsound (repeatable)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only (CI)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train or fine-tune a model from a recipe",
        description=f"Train from a recipe: a YAML file or one of the packaged recipes {list_recipes()}. "
        "Multi-GPU/multi-process: torchrun --nproc-per-node N -m arinext train ...",
    )
    p.add_argument("recipe", help="YAML recipe path or packaged recipe name")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs, plots)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if it exists")
    add_common(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.quiet:
        logging.getLogger().setLevel(logging.WARNING)
    cfg = load_config(args.recipe, args.overrides)
    result = fit_folds(cfg, args.out, resume=args.resume, progress=not args.quiet)
    best = result.get("best", result.get("mean"))
    logging.getLogger(__name__).info("done: best %s = %.4f; run directory %s", cfg.select_metric, best, args.out)
    return 0
