"""ONNX export of the fused model: spectrogram-to-logits (and optionally waveform-to-logits) graphs.

The exported model is always the full deploy fold (``reparameterize_model(model, fold="full")``):
convolutions with biases, ReLUs, pooling and the linear head, no BatchNorm. Inputs have a dynamic
batch and time axis. Metadata stored in the file (``metadata_props``, read back with
:func:`read_metadata`):

* ``arinext.model``: registered model name; ``arinext.fold``: ``"full"``;
* ``arinext.labels``: JSON list of class names (or ``null``);
* ``arinext.frontend``: JSON of the :class:`~arinext.FrontendConfig` the model expects;
* ``arinext.input``: ``"spectrogram"`` (``(B, 1, T, F)`` log-mel) or ``"waveform"`` (``(B, N)``);
* ``arinext.version``.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..audio.frontend import FrontendConfig
from ..checkpoints import model_frontend
from ..utils.errors import ConfigError
from ..utils.optional import MissingExtraError
from .graph import ExportReport, InputKind, check_lengths, deploy_model, example_input, export_metadata
from .runtime import onnx_session
from .waveform import WaveformClassifier

try:
    import onnx
except ImportError as exc:
    raise MissingExtraError("ONNX export needs onnx: pip install 'arinext[export]'") from exc

__all__ = ["check_onnx", "export_onnx", "read_metadata"]

log = logging.getLogger(__name__)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``arinext.*`` metadata of an exported ONNX file, JSON values decoded (``labels``, ``frontend``)."""
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    out: dict[str, Any] = {}
    for key, value in props.items():
        if key.startswith("arinext."):
            name = key[len("arinext.") :]
            out[name] = json.loads(value) if name in ("labels", "frontend") else value
    return out


def check_onnx(
    path: str | Path,
    reference: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    atol: float = 1e-4,
) -> float:
    """Run ``path`` with onnxruntime on each input and compare with ``reference``; returns the max abs diff.

    Raises:
        RuntimeError: if the difference exceeds ``atol`` times the logit scale ``max(1, max |logit|)``
            (float32 rounding grows with the size of the logits).
    """
    session = onnx_session(path)
    name = session.get_inputs()[0].name
    worst, scale = 0.0, 1.0
    with torch.no_grad():
        for x in example_inputs:
            expected = reference(x).numpy()
            scale = max(scale, float(np.abs(expected).max()))
            got = session.run(None, {name: x.numpy()})[0]
            if got.shape != expected.shape:
                shape = tuple(x.shape)
                raise RuntimeError(f"{path}: output shape {got.shape} != PyTorch {expected.shape} for input {shape}")
            worst = max(worst, float(np.abs(got - expected).max()))
    if worst > atol * scale:
        limit = f"{atol:g} x logit scale {scale:.3g}"
        raise RuntimeError(f"{path}: onnxruntime differs from PyTorch by {worst:.3g} (> {limit})")
    return worst


def export_onnx(
    model: nn.Module,
    path: str | Path,
    frontend: FrontendConfig | str | Mapping[str, Any] | None = None,
    labels: Sequence[str] | None = None,
    input_kind: InputKind = "spectrogram",
    opset: int = 17,
    check: bool = True,
    atol: float = 1e-4,
) -> ExportReport:
    """Export the fully fused ``model`` to ONNX with dynamic batch and time axes.

    Args:
        model: a classifier (training form or fused; it is fused again with ``fold="full"`` on a copy).
        path: output ``.onnx`` file.
        frontend: the front end the model was trained with (default: the one in its metadata).
        labels: class names stored as metadata (default: those in the model's metadata).
        input_kind: ``"spectrogram"`` exports ``(B, 1, T, F)`` log-mel -> logits; ``"waveform"`` puts the
            log-mel front end in the graph, ``(B, N)`` samples at the front end's rate -> logits.
        opset: ONNX opset.
        check: run onnxruntime at two input lengths (1 s and the training crop) and compare with PyTorch.
        atol: largest accepted logit difference for the check.

    Returns:
        an :class:`ExportReport` with the measured difference.
    """
    if input_kind not in ("spectrogram", "waveform"):
        raise ConfigError(f"input_kind must be 'spectrogram' or 'waveform', got {input_kind!r}")
    fe = model_frontend(model, frontend)
    fused = deploy_model(model)
    graph: nn.Module = WaveformClassifier(fe, fused).eval() if input_kind == "waveform" else fused
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lengths = check_lengths(fe, input_kind)
    axes = {0: "batch", 1: "samples"} if input_kind == "waveform" else {0: "batch", 2: "time"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (example_input(fe, input_kind, lengths[1]),),
            str(path),
            input_names=[input_kind],
            output_names=["logits"],
            dynamic_axes={input_kind: axes, "logits": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    proto = onnx.load(str(path))
    for key, value in export_metadata(model, fe, labels, input_kind).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
    diff = None
    if check:
        examples = [example_input(fe, input_kind, n, batch=2, seed=i) for i, n in enumerate(lengths)]
        diff = check_onnx(path, graph, examples, atol)
        log.info("onnxruntime vs PyTorch at lengths %s: max abs diff %.2e", lengths, diff)
    return ExportReport(path, input_kind, diff, lengths if check else ())
