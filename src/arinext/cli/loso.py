"""``arinext loso``: leave one source out, one training run per held-out source, one table."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_parser, progress_setting
from .data import _csv, _ints
from .train import add_overrides

HELP = "leave one source out: train without each source (engine, soundfont family, ...) and test on it"
DESCRIPTION = (
    "For each value of a metadata column of the clips (a keyword build's engine/method/language, an instrument "
    "build's soundfont_family, any extra column of a CSV manifest), trains RECIPE without that source and without "
    "the clips that share a closure column (speaker) with it, then tests the model on the unseen speakers of the "
    "other sources (in-source) and on the held-out source. Writes OUT/loso.json and OUT/loso.md; each fold's run "
    "and evaluation go to OUT/COLUMN=VALUE/seedS/. A fold already evaluated is read back, not trained again."
)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_parser(sub, common, "loso", help=HELP, description=DESCRIPTION)
    p.add_argument("recipe", help="YAML recipe path or packaged recipe name (e.g. keywords)")
    p.add_argument("--column", required=True, help="metadata column that names the sources, e.g. engine")
    p.add_argument("--values", type=_csv, default=None, help="sources to hold out, comma list (default: every value)")
    p.add_argument("--closure", type=_csv, default=["speaker"], help="columns a held-out clip shares with no other clip")
    p.add_argument("--seeds", type=_ints, default=None, help="training seeds, comma list (default: the recipe's seed)")
    p.add_argument("--out", required=True, help="sweep directory")
    add_overrides(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train.config import load_config
    from ..train.loso import leave_one_source_out

    cfg = load_config(args.recipe, args.overrides)
    content = leave_one_source_out(
        cfg, args.column, args.out, args.values, args.closure, args.seeds, progress=progress_setting(args)
    )
    print((Path(args.out) / "loso.md").read_text(), end="")
    return 0 if any("skipped" not in f for f in content["folds"]) else 1
