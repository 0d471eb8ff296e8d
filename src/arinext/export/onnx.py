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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn

from ..audio.frontend import FrontendConfig
from ..inference.classifier import output_classes, resolve_frontend
from ..layers.reparam import reparameterize_model, unwrap_model
from ..version import __version__
from .waveform import WaveformClassifier

__all__ = [
    "ExportReport",
    "check_lengths",
    "check_onnx",
    "deploy_model",
    "example_input",
    "export_metadata",
    "export_onnx",
    "read_metadata",
]

log = logging.getLogger(__name__)

InputKind = Literal["spectrogram", "waveform"]


@dataclass
class ExportReport:
    """What an export wrote and how well it matches PyTorch.

    Attributes:
        path: the written file.
        input: ``"spectrogram"`` or ``"waveform"``.
        max_abs_diff: largest ``|runtime - PyTorch|`` logit difference over the checked lengths
            (``None`` without a check).
        checked_lengths: input lengths (frames, or samples for waveform graphs) that were compared.
    """

    path: Path
    input: str
    max_abs_diff: float | None
    checked_lengths: tuple[int, ...]


def deploy_model(model: nn.Module) -> nn.Module:
    """A float32 CPU copy of ``model`` with the full deploy fold, in eval mode (input unchanged)."""
    model = unwrap_model(model)
    output_classes(model)  # single-head models only
    return reparameterize_model(model, fold="full").float().cpu().eval()  # a deep copy, attributes included


def export_metadata(
    model: nn.Module, frontend: FrontendConfig, labels: Sequence[str] | None, input_kind: InputKind
) -> dict[str, str]:
    """The ``arinext.*`` key/value strings stored with an exported model."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if labels is None:
        labels = cfg.get("labels")
    return {
        "arinext.model": str(cfg.get("model") or getattr(model, "model_name", "unknown")),
        "arinext.fold": "full",
        "arinext.labels": json.dumps(list(labels) if labels is not None else None),
        "arinext.frontend": json.dumps(frontend.to_dict()),
        "arinext.input": input_kind,
        "arinext.version": __version__,
    }


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``arinext.*`` metadata of an exported ONNX file, JSON values decoded (``labels``, ``frontend``)."""
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    out: dict[str, Any] = {}
    for key, value in props.items():
        if key.startswith("arinext."):
            name = key[len("arinext.") :]
            out[name] = json.loads(value) if name in ("labels", "frontend") else value
    return out


def check_lengths(frontend: FrontendConfig, input_kind: InputKind) -> tuple[int, int]:
    """Two input lengths for the parity check: 1 s and the training crop (frames or samples)."""
    if input_kind == "waveform":
        return frontend.sample_rate, frontend.clip_samples
    return frontend.frames_for(frontend.sample_rate), frontend.num_frames


def example_input(
    frontend: FrontendConfig, input_kind: InputKind, length: int, batch: int = 1, seed: int = 0
) -> torch.Tensor:
    """A seeded random input: waveform ``(batch, length)`` or log-mel-like ``(batch, 1, length, n_mels)``."""
    g = torch.Generator().manual_seed(seed)
    if input_kind == "waveform":
        return 0.1 * torch.randn(batch, length, generator=g)
    # log-mel values are roughly in [-14, 5]; a shifted normal exercises the same range
    return torch.randn(batch, 1, length, frontend.n_mels, generator=g) * 3.0 - 4.0


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
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
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
        frontend: the front end the model was trained with (default: ``model.pretrained_cfg``).
        labels: class names stored as metadata (default: ``model.pretrained_cfg["labels"]``).
        input_kind: ``"spectrogram"`` exports ``(B, 1, T, F)`` log-mel -> logits; ``"waveform"`` puts the
            log-mel front end in the graph, ``(B, N)`` samples at the front end's rate -> logits.
        opset: ONNX opset.
        check: run onnxruntime at two input lengths (1 s and the training crop) and compare with PyTorch.
        atol: largest accepted logit difference for the check.

    Returns:
        an :class:`ExportReport` with the measured difference.
    """
    if input_kind not in ("spectrogram", "waveform"):
        raise ValueError(f"input_kind must be 'spectrogram' or 'waveform', got {input_kind!r}")
    fe = resolve_frontend(frontend, model)
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
