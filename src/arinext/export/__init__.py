"""Export: the fully fused model as a file (ONNX, TorchScript, int8 ONNX), checked against PyTorch.

Core (no extra needed): TorchScript export (:mod:`.torchscript`), the waveform front end as convolutions
(:mod:`.waveform`) and what every export shares (:mod:`.graph`). ONNX export, int8 quantization and ONNX
Runtime sessions (:mod:`.onnx`, :mod:`.quantize`, :mod:`.runtime`) need ``pip install 'arinext[export]'``;
their names are importable from here and load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .graph import ExportReport, deploy_model
from .torchscript import export_torchscript, load_torchscript
from .waveform import ConvLogMel, WaveformClassifier

# names of the modules that need the `export` extra, imported when first asked for
_LAZY = {
    "check_onnx": "onnx",
    "export_onnx": "onnx",
    "read_metadata": "onnx",
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
    "ConvLogMel",
    "ExportReport",
    "WaveformClassifier",
    "deploy_model",
    "export_torchscript",
    "load_torchscript",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
