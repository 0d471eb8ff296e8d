"""One base for the errors arinext expects: bad input, bad settings, a missing extra, a refused check.

Every error that the user can cause (a file that is not audio, a recipe key that does not exist, a
checkpoint of another model, a dataset row naming an unknown class) is an :class:`ArinextError`. The
command line prints those as one ``arinext <command>: error: ...`` line with exit status 2; any other
exception is a bug in arinext and exits with status 3 ("internal error"), even a ``ValueError``.

Each concrete class also derives from the built-in exception that code written before this base used to
catch (``ValueError``, ``FileNotFoundError``, ``ImportError``, ``RuntimeError``), so ``except ValueError``
keeps working. A ``ValueError`` that is not an :class:`ArinextError` is an internal invariant of arinext.
"""

from __future__ import annotations

__all__ = [
    "ArinextError",
    "ConfigError",
    "DataError",
    "InputError",
    "PathNotFoundError",
]


class ArinextError(Exception):
    """Base of every error caused by the user's input or environment, not by a bug in arinext."""


class ConfigError(ArinextError, ValueError):
    """A setting, argument or recipe value that cannot be used; the message names the key and the choices."""


class DataError(ArinextError, ValueError):
    """A dataset, manifest or annotation row that cannot be used; the message names the file and the row."""


class InputError(ArinextError, ValueError):
    """A value passed to a function that it cannot use (a waveform of the wrong shape, an unknown label)."""


class PathNotFoundError(ArinextError, FileNotFoundError):
    """A file or folder the user named does not exist; the message names it and what was expected there."""
