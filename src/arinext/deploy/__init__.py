"""Deployment: the fused model as a classifier, over long files and live streams, and as exported files.

Core (no extra needed): :class:`AudioClassifier`, :func:`scan`, :class:`AudioStream`,
:func:`optimize_for_inference`, TorchScript export. ONNX export and int8 quantization
(:mod:`arinext.deploy.onnx`, :mod:`arinext.deploy.quantize`, :mod:`arinext.deploy.runtime`) need
``pip install 'arinext[export]'``; their names are importable from here and load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .classifier import AudioClassifier, AudioInput, output_classes
from .graph import ExportReport, deploy_model
from .optimize import (
    AxisCroppedDWConv2d,
    ChannelsLast,
    ConvReLU,
    crop_depthwise_kernels,
    fuse_conv_relu,
    optimize_for_inference,
)
from .results import Prediction, ScanResult, WindowPrediction, aggregate_probs, top_k_labels
from .stream import AudioStream, WindowScorer, read_blocks, scan, window_count
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
    "AudioClassifier",
    "AudioInput",
    "AudioStream",
    "AxisCroppedDWConv2d",
    "ChannelsLast",
    "ConvLogMel",
    "ConvReLU",
    "ExportReport",
    "Prediction",
    "ScanResult",
    "WaveformClassifier",
    "WindowPrediction",
    "WindowScorer",
    "aggregate_probs",
    "crop_depthwise_kernels",
    "deploy_model",
    "export_torchscript",
    "fuse_conv_relu",
    "load_torchscript",
    "optimize_for_inference",
    "output_classes",
    "read_blocks",
    "scan",
    "top_k_labels",
    "window_count",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
