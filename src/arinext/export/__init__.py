"""Deployment formats: ONNX (spectrogram or waveform input), TorchScript, and int8 ONNX."""

from .onnx import ExportReport, check_onnx, deploy_model, export_onnx, read_metadata
from .quantize import compare_onnx_models, median_latency_ms, onnx_accuracy, onnx_logits, onnx_session, quantize_onnx
from .torchscript import export_torchscript, load_torchscript
from .waveform import ConvLogMel, WaveformClassifier

__all__ = [
    "ConvLogMel",
    "ExportReport",
    "WaveformClassifier",
    "check_onnx",
    "compare_onnx_models",
    "deploy_model",
    "export_onnx",
    "export_torchscript",
    "load_torchscript",
    "median_latency_ms",
    "onnx_accuracy",
    "onnx_logits",
    "onnx_session",
    "quantize_onnx",
    "read_metadata",
]
