"""Model registry: ``register_model``, ``create_model``, ``list_models``.

Every architecture variant is a function decorated with ``@register_model`` that returns an
``nn.Module`` mapping ``(B, 1, T, F)`` log-mel spectrograms to logits.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from torch import nn

from .info import ModelInfo, set_metadata

__all__ = ["create_model", "is_model", "list_models", "register_model"]

_model_entrypoints: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a model constructor under its function name."""
    name = fn.__name__
    if name in _model_entrypoints:
        raise ValueError(f"model {name!r} is registered twice")
    _model_entrypoints[name] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models that match a shell-style ``pattern``."""
    return sorted(n for n in _model_entrypoints if fnmatch.fnmatch(n, pattern))


def is_model(name: str) -> bool:
    return name in _model_entrypoints


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model.

    Args:
        name: a name from :func:`list_models`, e.g. ``"audio_rep_inception_next"``.
        **kwargs: forwarded to the model constructor (``num_classes``, ``inference_mode``, ...);
            they override the variant's architecture defaults.

    Raises:
        ValueError: if ``name`` is not registered.
    """
    if name not in _model_entrypoints:
        known = ", ".join(list_models())
        raise ValueError(f"unknown model {name!r}; registered models: {known}")
    model = _model_entrypoints[name](**kwargs)
    # Recorded so that save_pretrained() can rebuild the same architecture (arinext.models.metadata reads it).
    args = {k: v for k, v in kwargs.items() if k != "inference_mode"}
    return set_metadata(model, ModelInfo(name=name, args=args))
