"""Strict JSON for everything arinext writes: no ``NaN``, ``Infinity`` or ``-Infinity``, which are not JSON.

Python's ``json.dumps`` writes those tokens by default, and strict parsers (``jq``, browsers, most other
languages) reject the whole document. Two rules:

* :func:`undefined_as_null` turns every non-finite float into ``null``: for metrics, where NaN means
  "undefined" (a precision without predictions, a class without test clips);
* :func:`dumps` refuses to write a non-finite number (:class:`NonFiniteJSONError`, naming the key path):
  for scores and predictions, which must never hold one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ArinextError

__all__ = ["NonFiniteJSONError", "dumps", "undefined_as_null", "write_json"]


class NonFiniteJSONError(ArinextError, ValueError):
    """A value to be written as JSON holds NaN or an infinity; the message names where."""


def _scalar(x: Any) -> Any:
    """numpy and torch scalars as Python numbers; anything else unchanged."""
    item = getattr(x, "item", None)
    if callable(item) and getattr(x, "ndim", None) == 0:
        return item()
    return x


def undefined_as_null(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float (in dicts, lists and tuples, at any depth) replaced by ``None``."""
    obj = _scalar(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: undefined_as_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [undefined_as_null(v) for v in obj]
    return obj


def _first_non_finite(obj: Any, path: str = "") -> str | None:
    obj = _scalar(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return f"{path or '(top level)'} = {obj}"
    items = obj.items() if isinstance(obj, Mapping) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for k, v in items:
        found = _first_non_finite(v, f"{path}[{k!r}]" if isinstance(k, int) else f"{path}.{k}" if path else str(k))
        if found is not None:
            return found
    return None


def dumps(obj: Any, what: str = "output", **kwargs: Any) -> str:
    """``json.dumps(obj, allow_nan=False, **kwargs)``.

    Raises:
        NonFiniteJSONError: ``obj`` holds NaN or an infinity; names ``what`` and the key path.
    """
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError as exc:
        where = _first_non_finite(obj)
        if where is None:
            raise
        raise NonFiniteJSONError(f"{what}: cannot write {where} as JSON (not a finite number)") from exc


def write_json(path: str | Path, obj: Any, **kwargs: Any) -> Path:
    """Write ``obj`` to ``path`` as strict JSON (:func:`dumps`) with a final newline; returns the path."""
    path = Path(path)
    path.write_text(dumps(obj, what=str(path), **kwargs) + "\n")
    return path
