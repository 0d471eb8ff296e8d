"""Inference: :class:`AudioClassifier` (clips), :func:`scan` (long files) and :class:`AudioStream` (live audio)."""

from .classifier import AudioClassifier, AudioInput, resolve_frontend
from .results import Prediction, ScanResult, WindowPrediction, aggregate_probs, top_k_labels
from .stream import AudioStream, read_blocks, scan, window_count

__all__ = [
    "AudioClassifier",
    "AudioInput",
    "AudioStream",
    "Prediction",
    "ScanResult",
    "WindowPrediction",
    "aggregate_probs",
    "read_blocks",
    "resolve_frontend",
    "scan",
    "top_k_labels",
    "window_count",
]
