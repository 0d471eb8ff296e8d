"""Model registry: ``register_model``, ``create_model``, ``list_models``.

Every architecture variant is a function decorated with ``@register_model`` that returns an
``nn.Module`` mapping ``(B, 1, T, F)`` log-mel spectrograms to logits; the registry is a
:class:`~arinext.utils.registry.Registry`, as for every extension point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..utils.registry import Registry
from .info import ModelInfo, set_metadata

__all__ = ["MODELS", "create_model", "is_model", "list_models", "register_model"]

#: Registered model constructors by name.
MODELS: Registry[Callable[..., nn.Module]] = Registry("model")


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a model constructor under its function name."""
    return MODELS.register(fn.__name__, fn)


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models that match a shell-style ``pattern``."""
    return sorted(MODELS.names(pattern))


def is_model(name: str) -> bool:
    return name in MODELS


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model.

    Args:
        name: a name from :func:`list_models`, e.g. ``"audio_rep_inception_next"``.
        **kwargs: forwarded to the model constructor (``num_classes``, ``inference_mode``, ...);
            they override the variant's architecture defaults.

    Raises:
        ConfigError: if ``name`` is not registered.
    """
    model = MODELS.get(name)(**kwargs)
    # Recorded so that save_pretrained() can rebuild the same architecture (arinext.models.metadata reads it).
    args = {k: v for k, v in kwargs.items() if k != "inference_mode"}
    return set_metadata(model, ModelInfo(name=name, args=args))
