"""int8 quantization of exported ONNX models with onnxruntime's tools, and how to measure its cost.

* ``mode="dynamic"``: weights quantized offline, activations quantized at run time per batch
  (``onnxruntime.quantization.quantize_dynamic``); needs no data.
* ``mode="static"``: weights and activations quantized with ranges calibrated (min/max) on
  representative inputs (``quantize_static``, QDQ format, per-channel weights); needs ``calibration``.

The fused model folds BatchNorm and the identity paths into the convolution kernels, which widens
their value ranges; RepVGG's authors report that this makes naive post-training int8 lossy. Measure it
with :func:`compare_onnx_models` on a labelled evaluation set before shipping an int8 file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..utils.optional import MissingExtraError
from ..utils.timing import time_interleaved
from .runtime import onnx_logits, onnx_session

try:
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process
except ImportError as exc:
    raise MissingExtraError("int8 quantization needs onnx and onnxruntime: pip install 'arinext[export]'") from exc

__all__ = ["compare_onnx_models", "onnx_accuracy", "quantize_onnx"]

log = logging.getLogger(__name__)

QuantMode = Literal["dynamic", "static"]
Batch = Any  # (inputs, targets) pair or a collate_clips dict with "inputs"/"target"


def _as_array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32))


def _split(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(batch, dict):
        inputs, target = batch["inputs"], batch["target"]
    else:
        inputs, target = batch
    if isinstance(target, dict):
        raise ValueError("multi-head targets are not supported by the int8 accuracy helper")
    return _as_array(inputs), np.asarray(target.cpu() if isinstance(target, torch.Tensor) else target)


class _Calibration(CalibrationDataReader):
    def __init__(self, input_name: str, batches: Iterable[Any]) -> None:
        self.input_name = input_name
        self._iter: Iterator[Any] = iter(batches)
        self.count = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._iter, None)
        if batch is None:
            return None
        if isinstance(batch, dict) or isinstance(batch, (tuple, list)):
            batch = _split(batch)[0]
        self.count += 1
        return {self.input_name: _as_array(batch)}


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantizer logs one INFO line per tensor on the root logger; keep warnings only."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def _copy_metadata(src: str | Path, dst: str | Path, mode: str) -> None:
    meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    proto = onnx.load(str(dst))
    del proto.metadata_props[:]
    for key, value in {**meta, "arinext.quantization": f"int8-{mode}"}.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(dst))


def quantize_onnx(
    fp32_path: str | Path,
    int8_path: str | Path,
    mode: QuantMode = "dynamic",
    calibration: Iterable[Any] | None = None,
    per_channel: bool = True,
) -> Path:
    """Quantize an exported float model to int8.

    Args:
        fp32_path: a float ONNX file (from :func:`~arinext.deploy.onnx.export_onnx`).
        int8_path: where to write the int8 model; the ``arinext.*`` metadata is carried over.
        mode: ``"dynamic"`` or ``"static"`` (see the module docstring).
        calibration: for ``"static"``: an iterable of input batches ``(B, 1, T, F)`` (arrays or
            tensors), of ``(inputs, targets)`` pairs, or of ``collate_clips`` dicts, e.g. a data loader.
        per_channel: per-output-channel weight scales (recommended for depthwise convs).
    """
    if mode not in ("dynamic", "static"):
        raise ValueError(f"mode must be 'dynamic' or 'static', got {mode!r}")
    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    if not fp32_path.is_file():
        raise FileNotFoundError(f"{fp32_path}: no such ONNX file")
    int8_path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "static" and calibration is None:
        raise ValueError("static quantization needs calibration inputs (e.g. a data loader over training clips)")
    with tempfile.TemporaryDirectory() as tmp, _quiet_root_logger():
        prepared = Path(tmp) / "prepared.onnx"  # shape inference + graph clean-up, as onnxruntime advises
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        if mode == "dynamic":
            quantize_dynamic(prepared, int8_path, weight_type=QuantType.QUInt8, per_channel=per_channel)
        else:
            input_name = onnx.load(str(prepared), load_external_data=False).graph.input[0].name
            reader = _Calibration(input_name, calibration)  # type: ignore[arg-type]
            quantize_static(
                prepared,
                int8_path,
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
            if reader.count == 0:
                raise ValueError("calibration produced no batches")
            log.info("static int8: calibrated on %d batches", reader.count)
    _copy_metadata(fp32_path, int8_path, mode)
    return int8_path


def onnx_accuracy(model: str | Path | Any, batches: Iterable[Batch]) -> dict[str, Any]:
    """Top-1 accuracy of an ONNX classifier on labelled batches (``(inputs, targets)`` or loader dicts).

    Returns ``{"accuracy", "n", "predictions"}`` (``predictions``: the arg-max class of each input).
    """
    session = onnx_session(model) if isinstance(model, (str, Path)) else model
    preds, targets = [], []
    for batch in batches:
        inputs, target = _split(batch)
        preds.append(onnx_logits(session, inputs).argmax(axis=-1))
        targets.append(target.reshape(-1))
    if not preds:
        raise ValueError("no evaluation batches")
    p, t = np.concatenate(preds), np.concatenate(targets)
    return {"accuracy": float((p == t).mean()), "n": int(t.size), "predictions": p}


def compare_onnx_models(
    fp32_path: str | Path,
    int8_path: str | Path,
    eval_batches: Iterable[Batch],
    latency_input: np.ndarray | None = None,
    repeats: int = 30,
) -> dict[str, Any]:
    """Size, latency and accuracy of a float model and its int8 version, measured side by side.

    Returns a dict with ``size_mb``, ``latency_ms`` (median on ``latency_input``, default the first
    evaluation batch's first item), ``accuracy`` (each a ``{"fp32", "int8"}`` pair), ``accuracy_change``
    (int8 - fp32, in accuracy points of 1.0) and ``top1_agreement`` (fraction of identical predictions).
    """
    batches = list(eval_batches)
    sessions = {"fp32": onnx_session(fp32_path), "int8": onnx_session(int8_path)}
    acc = {k: onnx_accuracy(s, batches) for k, s in sessions.items()}
    if latency_input is None:
        latency_input = _split(batches[0])[0][:1]
    stats = time_interleaved({k: (lambda s=s: onnx_logits(s, latency_input)) for k, s in sessions.items()}, repeats, 5)
    latency = {k: v.median_ms for k, v in stats.items()}
    return {
        "size_mb": {k: os.path.getsize(p) / 2**20 for k, p in (("fp32", fp32_path), ("int8", int8_path))},
        "latency_ms": latency,
        "accuracy": {k: v["accuracy"] for k, v in acc.items()},
        "accuracy_change": acc["int8"]["accuracy"] - acc["fp32"]["accuracy"],
        "top1_agreement": float((acc["int8"]["predictions"] == acc["fp32"]["predictions"]).mean()),
        "n": acc["fp32"]["n"],
    }
