"""What every export writes: the fully folded float32 graph, example inputs, metadata, the export report and
the model card next to the files.

Shared by the ONNX (:mod:`.onnx`) and TorchScript (:mod:`.torchscript`) exporters. The exported model is
always the full deploy fold (``reparameterize_model(model, fold="full")``): convolutions with biases,
ReLUs, pooling and the linear head, no BatchNorm.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ..audio.frontend import FrontendConfig
from ..checkpoints.card import write_model_card
from ..layers.classifier import output_classes
from ..layers.reparam import reparameterize_model
from ..models.info import metadata
from ..utils.modules import unwrap_model
from ..utils.provenance import current_command
from ..version import __version__

__all__ = [
    "ExportReport",
    "InputKind",
    "check_lengths",
    "deploy_model",
    "example_input",
    "export_metadata",
    "write_export_card",
]

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
    info = metadata(model)
    if labels is None:
        labels = info.labels  # type: ignore[assignment]
    return {
        "arinext.model": str(info.name or "unknown"),
        "arinext.fold": "full",
        "arinext.labels": json.dumps(list(labels) if labels is not None else None),
        "arinext.frontend": json.dumps(frontend.to_dict()),
        "arinext.input": input_kind,
        "arinext.version": __version__,
    }


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


def write_export_card(
    model: nn.Module, directory: str | Path, files: Mapping[Path, str], frontend: FrontendConfig | None = None
) -> Path | None:
    """The model card ``README.md`` of exported files: the model's metadata (labels, front end, recipe), the
    command that ran, and one row per file (``files``: path -> what it maps to what). ``frontend``: the front
    end written into the files, when it is not the one stored with the model.

    Returns the card's path, or ``None`` when ``directory`` holds a README that arinext did not write.
    """
    info = metadata(model)
    card = {**info.card, "command": current_command() or info.card.get("command")}
    config = {**info.to_config(), "fold": "full", "arinext_version": __version__, "card": card}
    if frontend is not None:
        config["frontend"] = frontend.to_dict()
    rows = [f"| `{Path(p).name}` | {what} |" for p, what in files.items()]
    text = ["## Exported files", "", "Full deploy fold; metadata (labels, front end) inside the file.", "",
            "| file | input -> output |", "|---|---|", *rows]  # fmt: skip
    return write_model_card(directory, config=config, files="\n".join(text))
