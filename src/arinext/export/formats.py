"""Registered export formats: name -> the function that writes the file, imported when first used.

Every format is registered with :func:`register_export_format` in one
:class:`~arinext.utils.registry.Registry`, as every extension point is; ``arinext export --format`` offers
the registered names. A format whose writer needs an optional extra names its module, which is imported
only when a file of that format is written (so the core install can list, and refuse, it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..utils.registry import Registry
from .graph import ExportReport

__all__ = ["EXPORT_FORMATS", "ExportFormat", "export_format", "list_export_formats", "register_export_format"]


@dataclass(frozen=True)
class ExportFormat:
    """A registered export format.

    Attributes:
        module, function: the writer, ``function(model, path, check=..., **options) -> ExportReport``.
        suffix: the usual file suffix.
        inputs: input kind -> what the file maps to what (for model cards), e.g. ``{"spectrogram": ...}``.
        options: the keyword arguments the writer takes beyond ``model``, ``path`` and ``check``.
    """

    module: str
    function: str
    suffix: str
    inputs: Mapping[str, str]
    options: tuple[str, ...] = field(default_factory=tuple)

    def writer(self) -> Callable[..., ExportReport]:
        """The writing function (imports its module: a missing extra raises ``MissingExtraError`` here)."""
        return getattr(importlib.import_module(self.module), self.function)  # type: ignore[no-any-return]

    def write(self, model: Any, path: Any, check: bool = True, **options: Any) -> ExportReport:
        """Write ``model`` to ``path``; ``options`` this format does not take are left out."""
        return self.writer()(model, path, check=check, **{k: v for k, v in options.items() if k in self.options})

    def describe(self, input_kind: str = "spectrogram", int8: bool = False) -> str:
        """One line for a model card: input -> output of a file of this format."""
        return self.inputs[input_kind] + (" (int8)" if int8 else "")


#: Registered export formats by name.
EXPORT_FORMATS: Registry[ExportFormat] = Registry("export format")


def register_export_format(name: str, fmt: ExportFormat) -> ExportFormat:
    """Register an export format under ``name`` (the value of ``arinext export --format``)."""
    return EXPORT_FORMATS.register(name, fmt)


def export_format(name: str) -> ExportFormat:
    """The registered format ``name`` (a :class:`~arinext.utils.errors.ConfigError` if there is none)."""
    return EXPORT_FORMATS.get(name)


def list_export_formats() -> list[str]:
    """Registered export format names."""
    return EXPORT_FORMATS.names()


_SPECTROGRAM = "log-mel `(batch, 1, frames, mels)` -> logits"
register_export_format(
    "onnx",
    ExportFormat(
        "arinext.export.onnx", "export_onnx", ".onnx",
        {"spectrogram": _SPECTROGRAM, "waveform": "waveform `(batch, samples)` -> logits"},
        ("frontend", "opset", "input_kind"),
    ),
)  # fmt: skip
register_export_format(
    "torchscript",
    ExportFormat(
        "arinext.export.torchscript", "export_torchscript", ".pt", {"spectrogram": "log-mel -> logits (TorchScript)"},
        ("frontend",),
    ),
)
