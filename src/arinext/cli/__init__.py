"""The ``arinext`` command line: thin subcommands that parse arguments and call the library.

Each subcommand lives in its own module of this package, registered in :data:`COMMANDS` (a
:class:`~arinext.utils.registry.Registry`, as every extension point is), and exposes
``register(subparsers, common)``, which adds its parser and sets ``func`` (called with the parsed
namespace, returns an exit code).
Registering imports nothing heavy: every module that needs an optional extra (ONNX, plotting, HDF5)
is imported inside the command's ``run``, so ``arinext --help`` and the core commands work with a
plain ``pip install arinext``.

Exit codes: 0 success; 1 some inputs failed (e.g. ``predict`` skipped unreadable files) or a check
reported a failure; 2 an expected error (bad arguments, config, data, checkpoint or missing extra),
printed as one line ``arinext <command>: error: ...``; 3 an internal error. ``-v`` adds tracebacks and
debug logs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback

from ..utils.errors import ArinextError
from ..utils.optional import MissingExtraError
from ..utils.progress import TqdmLoggingHandler
from ..utils.provenance import set_command
from ..utils.registry import Registry
from ..version import __version__

__all__ = ["COMMANDS", "CLIError", "add_frontend_option", "build_parser", "main", "register_command"]

#: Subcommands: name -> the module of this package that registers its parser, in ``arinext --help`` order.
COMMANDS: Registry[str] = Registry("command")


def register_command(name: str, module: str | None = None) -> str:
    """Register the subcommand module ``module`` (default: ``name``, a module of this package)."""
    return COMMANDS.register(name, f"{__name__}.{module or name}")


for _name in ("models", "demo", "train", "evaluate", "loso", "data", "predict", "events", "export", "reparam", "bench"):
    register_command(_name)


class CLIError(ArinextError):
    """A user-facing error: printed as ``arinext <command>: error: ...`` with exit code 2, no traceback."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` for every option that has a meaningful default (not None, False or a flag)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if "%(default)" in help_text or "default" in help_text.lower():
            return help_text
        no_default = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if no_default or isinstance(action, argparse._StoreConstAction):
            return help_text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return help_text + " (default: %(default)s)"
        return help_text


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="store_true", help="debug logs, and tracebacks for errors")
    group.add_argument("-q", "--quiet", action="store_true", help="warnings and results only, no progress bars")
    group.add_argument(
        "--progress", action="store_true", help="progress bars even when stderr is not a terminal (a log file)"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arinext",
        description="Train, fuse, measure, export and run AudioRepInceptionNeXt audio classifiers.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"arinext {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    common = _common_options()
    for name in COMMANDS:
        importlib.import_module(COMMANDS.get(name)).register(sub, common)
    return parser


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, name: str, **kwargs: object):
    """A subcommand parser with the shared output options and the defaults-showing help formatter."""
    return sub.add_parser(name, parents=[common], formatter_class=HelpFormatter, **kwargs)  # type: ignore[arg-type]


def add_frontend_option(p: argparse.ArgumentParser) -> None:
    """``--frontend PRESET``, for commands that load a checkpoint whose front end matters."""
    from ..audio.frontend import PRESETS

    p.add_argument(
        "--frontend",
        metavar="PRESET",
        choices=sorted(PRESETS),
        default=None,
        help="front-end preset to run the checkpoint with, for one that stores none (an authors' .pyth without "
        f"AUDIO_DATA); replaces a stored one. One of: {', '.join(sorted(PRESETS))}",
    )


def progress_setting(args: argparse.Namespace) -> bool | None:
    """Bars: ``False`` with ``--quiet``, ``True`` with ``--progress``, else only on a terminal (``None``)."""
    if getattr(args, "quiet", False):
        return False
    return True if getattr(args, "progress", False) else None


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return message if record.levelno == logging.INFO else f"{record.levelname.lower()}: {message}"


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Log to stderr through tqdm (lines never land inside a bar); only rank 0 of a DDP run says INFO."""
    rank = int(os.environ.get("RANK", "0"))
    level = logging.DEBUG if verbose else logging.WARNING if quiet or rank > 0 else logging.INFO
    handler = TqdmLoggingHandler()
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s" if verbose else "%(message)s"
    handler.setFormatter(logging.Formatter(fmt) if verbose else _Formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # third-party libraries: warnings only
    logging.getLogger("arinext").setLevel(level)


def _expected(exc: BaseException) -> bool:
    """Errors that come from the user's input rather than from a bug: exactly the :class:`ArinextError` ones
    (any other exception, a plain ``ValueError`` included, is an internal error)."""
    return isinstance(exc, ArinextError)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    set_command(sys.argv[1:] if argv is None else argv)  # model cards record the command that made them
    setup_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"arinext {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (every failure becomes one line; -v shows the traceback)
        if args.verbose:
            traceback.print_exc()
        if _expected(exc):
            print(f"arinext {args.command}: error: {exc}", file=sys.stderr)
            return 2
        print(
            f"arinext {args.command}: internal error: {type(exc).__name__}: {exc} "
            "(run again with -v for the traceback)",
            file=sys.stderr,
        )
        return 3
    finally:
        set_command(None)
        if "torch.distributed" in sys.modules:  # train and eval under torchrun: leave the group before exit
            from ..train.distributed import cleanup_distributed

            cleanup_distributed()
