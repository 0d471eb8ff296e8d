"""Inference: the fused model as a classifier, over clips, long files and live streams, in PyTorch.

:class:`AudioClassifier` (labels, embeddings, frame-level scores, sound events), :func:`scan` and
:class:`AudioStream` over audio of any length, :func:`optimize_for_inference`. Everything here works with
the core install; writing model files (ONNX, TorchScript, int8) is :mod:`arinext.export`.
"""

from __future__ import annotations

from .classifier import AudioClassifier, AudioInput
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

__all__ = [
    "AudioClassifier",
    "AudioInput",
    "AudioStream",
    "AxisCroppedDWConv2d",
    "ChannelsLast",
    "ConvReLU",
    "Prediction",
    "ScanResult",
    "WindowPrediction",
    "WindowScorer",
    "aggregate_probs",
    "crop_depthwise_kernels",
    "fuse_conv_relu",
    "optimize_for_inference",
    "read_blocks",
    "scan",
    "top_k_labels",
    "window_count",
]
