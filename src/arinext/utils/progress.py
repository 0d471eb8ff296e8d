"""Progress bars and log lines that do not step on each other.

Every long loop in arinext shows a :func:`progress_bar`. Its ``enabled`` argument has three states:
``None`` (the default) shows the bar only when stderr is a terminal, so a log redirected to a file
holds no carriage returns or cursor movements; ``True`` forces it (``--progress``); ``False`` hides it
(``--quiet``). :class:`TqdmLoggingHandler` writes log records through ``tqdm.write``, so a log line
never lands in the middle of a bar.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

__all__ = ["TqdmLoggingHandler", "progress_bar"]

T = TypeVar("T")


def progress_bar(iterable: Iterable[T] | None = None, *, enabled: bool | None = None, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)`` shown on a terminal only (``enabled=None``), always (True) or never (False)."""
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("file", sys.stderr)
    # tqdm's disable=None hides the bar when its file is not a terminal
    return tqdm(iterable, disable=None if enabled is None else not enabled, **kwargs)


class TqdmLoggingHandler(logging.StreamHandler):
    """A stderr handler that writes through ``tqdm.write`` so log lines and bars keep to their own lines."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001  (logging must never raise)
            self.handleError(record)
