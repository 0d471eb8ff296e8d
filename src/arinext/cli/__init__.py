"""The ``arinext`` command line: thin subcommands that parse arguments and call the library.

Each subcommand lives in its own module of this package and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` (called with the parsed namespace, returns an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..version import __version__

# Subcommand modules, in the order ``arinext --help`` lists them.
_COMMANDS = ["models", "demo", "train", "evaluate", "data", "predict", "export", "reparam", "bench"]


class CLIError(Exception):
    """A user-facing error: printed as ``arinext: error: ...`` with exit code 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arinext",
        description="AudioRepInceptionNeXt: train, fuse, measure, export and run audio classifiers.",
    )
    parser.add_argument("--version", action="version", version=f"arinext {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except (CLIError, FileNotFoundError, ValueError) as exc:
        print(f"arinext {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
