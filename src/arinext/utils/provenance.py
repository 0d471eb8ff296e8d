"""Which ``arinext`` command is running, for the records that say how a file was made (model cards)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

__all__ = ["current_command", "set_command"]

_command: list[str] | None = None


def set_command(argv: Sequence[str] | None) -> None:
    """Record the arguments of the running ``arinext`` command (called by :func:`arinext.cli.main`)."""
    global _command
    _command = None if argv is None else [str(a) for a in argv]


def current_command() -> str | None:
    """``"arinext <arguments>"`` of the running command, or ``None`` outside the command line."""
    return None if _command is None else shlex.join(["arinext", *_command])
