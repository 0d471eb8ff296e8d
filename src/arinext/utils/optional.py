"""Optional dependencies: import them with an error that says which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import ArinextError

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(ArinextError, ImportError):
    """An optional dependency is not installed; the message names the ``pip install`` line."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``pip install 'arinext[extra]'``.

    Args:
        module: the importable name (``"onnxruntime"``).
        extra: the arinext extra that provides it (``"export"``).
        purpose: what needs it, for the message (``"ONNX export"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(f"{purpose} needs {module}: pip install 'arinext[{extra}]'") from exc
