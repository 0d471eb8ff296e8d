"""``arinext train``: train or fine-tune from a YAML recipe, resumable, on one process or under ``torchrun``."""

from __future__ import annotations

import argparse
import logging

from . import add_parser, progress_setting


def add_overrides(p: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable), shared by ``train`` and ``eval``."""
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set optim.lr=0.003 --set data.root=/data/vggsound (repeatable)",
    )


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from ..train.config import list_recipes

    description = (
        f"Train from a recipe: a YAML file or one of the packaged recipes {list_recipes()}. "
        "Several processes or GPUs: torchrun --nproc-per-node N -m arinext train ..."
    )
    p = add_parser(sub, common, "train", help="train or fine-tune a model from a recipe", description=description)
    p.add_argument("recipe", help="YAML recipe path or packaged recipe name")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs, plots)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if it exists")
    add_overrides(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train.config import load_config
    from ..train.trainer import fit_folds

    cfg = load_config(args.recipe, args.overrides)
    result = fit_folds(cfg, args.out, resume=args.resume, progress=progress_setting(args))
    clips, bad = result.val_clips, result.val_bad_clips
    logging.getLogger("arinext").info(
        "done: best %s = %.4f on %d of %d validation clips, %d bad; run directory %s",
        cfg.select_metric, result.best, clips, clips + bad, bad, args.out,
    )  # fmt: skip
    return 0
