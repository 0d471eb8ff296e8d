"""TorchScript export of the fused model (spectrogram -> logits, any batch and time length).

The metadata of :func:`~arinext.export.graph.export_metadata` is stored as the extra file
``arinext.json`` inside the archive; :func:`load_torchscript` returns it with the module.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..audio.frontend import FrontendConfig
from ..checkpoints import model_frontend
from .graph import ExportReport, check_lengths, deploy_model, example_input, export_metadata

__all__ = ["export_torchscript", "load_torchscript"]

log = logging.getLogger(__name__)

EXTRA_FILE = "arinext.json"


def load_torchscript(path: str | Path) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """Load an archive written by :func:`export_torchscript`: ``(module, metadata)``."""
    extra = {EXTRA_FILE: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    meta = json.loads(extra[EXTRA_FILE] or "{}")
    return module, {k[len("arinext.") :]: v for k, v in meta.items()}


def export_torchscript(
    model: nn.Module,
    path: str | Path,
    frontend: FrontendConfig | str | Mapping[str, Any] | None = None,
    labels: Sequence[str] | None = None,
    check: bool = True,
    atol: float = 1e-4,
) -> ExportReport:
    """Trace the fully fused ``model`` to TorchScript and save it with its metadata.

    Args mirror :func:`~arinext.export.onnx.export_onnx` (spectrogram input only). With ``check`` the loaded
    archive is compared with eager PyTorch at two time lengths (1 s and the training crop).
    """
    fe = model_frontend(model, frontend)
    fused = deploy_model(model)
    lengths = check_lengths(fe, "spectrogram")
    meta = export_metadata(model, fe, labels, "spectrogram")
    meta = {k: (json.loads(v) if k in ("arinext.labels", "arinext.frontend") else v) for k, v in meta.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(fused, example_input(fe, "spectrogram", lengths[1]), check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={EXTRA_FILE: json.dumps(meta)})
    diff = None
    if check:
        loaded, _ = load_torchscript(path)
        diff = 0.0
        with torch.no_grad():
            for i, n in enumerate(lengths):
                x = example_input(fe, "spectrogram", n, batch=2, seed=i)
                diff = max(diff, float((loaded(x) - fused(x)).abs().max()))
        if diff > atol:
            raise RuntimeError(f"{path}: TorchScript differs from eager PyTorch by {diff:.3g} (> {atol:g})")
        log.info("TorchScript vs eager at %s frames: max abs diff %.2e", lengths, diff)
    return ExportReport(path, "spectrogram", diff, lengths if check else ())
