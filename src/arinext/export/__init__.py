"""Export: the fully fused model as a file (ONNX, TorchScript, int8 ONNX), checked against PyTorch.

Core (no extra needed): the registered formats (:mod:`.formats`), TorchScript export (:mod:`.torchscript`),
the waveform front end as convolutions (:mod:`.waveform`) and what every export shares (:mod:`.graph`:
folded graph, example inputs, metadata, the model card). ONNX export, int8 quantization, the int8 workflow
and ONNX Runtime sessions (:mod:`.onnx`, :mod:`.quantize`, :mod:`.int8`, :mod:`.runtime`) need
``pip install 'arinext[export]'``; their names are importable from here and load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .formats import EXPORT_FORMATS, ExportFormat, export_format, list_export_formats, register_export_format
from .graph import ExportReport, deploy_model, write_export_card
from .torchscript import export_torchscript, load_torchscript
from .waveform import ConvLogMel, WaveformClassifier

# names of the modules that need the `export` extra, imported when first asked for
_LAZY = {
    "check_onnx": "onnx",
    "export_onnx": "onnx",
    "read_metadata": "onnx",
    "Int8Clips": "int8",
    "Int8Result": "int8",
    "export_int8": "int8",
    "int8_clips": "int8",
    "Int8Check": "quantize",
    "Int8Refused": "quantize",
    "check_int8": "quantize",
    "compare_onnx_models": "quantize",
    "enforce_int8": "quantize",
    "neutralize_dead_bn_channels": "quantize",
    "onnx_accuracy": "quantize",
    "quantize_model": "quantize",
    "quantize_onnx": "quantize",
    "u8s8_overflow_weights": "quantize",
    "onnx_logits": "runtime",
    "onnx_session": "runtime",
}

__all__ = [
    "EXPORT_FORMATS",
    "ConvLogMel",
    "ExportFormat",
    "ExportReport",
    "WaveformClassifier",
    "deploy_model",
    "export_format",
    "export_torchscript",
    "list_export_formats",
    "load_torchscript",
    "register_export_format",
    "write_export_card",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
