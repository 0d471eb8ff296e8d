"""``arinext models``: list the registered models with their size."""

from __future__ import annotations

import argparse

from ..models import create_model, list_models
from ..utils.complexity import count_params


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered models and their parameter counts")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'audio_rep*'")
    p.add_argument("--num-classes", type=int, default=309, help="head size used for the counts (default 309)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    width = max((len(n) for n in names), default=10)
    print(f"{'model':<{width}}  params ({args.num_classes} classes)")
    for name in names:
        print(f"{name:<{width}}  {count_params(create_model(name, num_classes=args.num_classes)):,}")
    return 0
