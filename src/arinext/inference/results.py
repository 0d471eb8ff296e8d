"""Result types of the classifier: top-k label lists, per-window predictions and scan results, and the
check that no score or embedding handed out holds a NaN or an infinity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..audio.io import AudioDecodeError
from ..utils.errors import ConfigError, InputError

__all__ = [
    "NonFiniteOutputError",
    "Prediction",
    "ScanResult",
    "WindowPrediction",
    "aggregate_probs",
    "check_finite_output",
    "top_k_labels",
]

Prediction = dict[str, Any]  # {"label": str, "score": float}, the Hugging Face pipeline format
Aggregate = Literal["mean", "max"]


class NonFiniteOutputError(AudioDecodeError):
    """The model's output for an input holds a NaN or an infinity; ``str()`` names the input and the likely cause.

    Inputs within :mod:`arinext.audio.io`'s rule give finite outputs with finite weights, so this points at
    the checkpoint (weights that are not finite) or at an input that drives it beyond float range. It is
    an :class:`~arinext.audio.io.AudioDecodeError`, so code that skips unusable inputs skips this one too.
    """


def check_finite_output(
    values: torch.Tensor, what: str, sources: str | Sequence[str] | None = None, model: nn.Module | None = None
) -> torch.Tensor:
    """Return ``values`` ``(B, ...)`` if every entry is finite; else raise :class:`NonFiniteOutputError`
    naming the input: ``sources`` itself (one name for all rows) or ``sources[i]`` of the first bad row
    (``"item i of the batch"`` without sources). ``model``, if given, is checked for non-finite weights."""
    finite = torch.isfinite(values.reshape(values.shape[0], -1)).all(dim=1) if values.numel() else None
    if finite is None or bool(finite.all()):
        return values
    i = int((~finite).nonzero()[0, 0])
    source = f"item {i} of the batch"
    if isinstance(sources, str):
        source = sources
    elif sources is not None and i < len(sources):
        source = sources[i]
    cause = "the model's weights are finite: this input drives it beyond float range"
    if model is not None:
        tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
        bad = sum(int((~torch.isfinite(t)).sum()) for t in tensors)
        if bad:
            cause = f"the model's weights and buffers hold {bad} NaN or infinite values: a damaged checkpoint"
    raise NonFiniteOutputError(source, f"the model's {what} hold NaN or infinity ({cause})")


def top_k_labels(probs: np.ndarray, labels: Sequence[str], top_k: int | None = 5) -> list[Prediction]:
    """The ``top_k`` highest scores of one probability vector as ``[{"label", "score"}]``, best first.

    ``top_k=None`` (or larger than the number of classes) returns every class.
    """
    if len(probs) != len(labels):
        raise ValueError(f"{len(probs)} scores but {len(labels)} labels")
    k = len(labels) if top_k is None else max(1, min(int(top_k), len(labels)))
    order = np.argsort(-probs, kind="stable")[:k]
    return [{"label": labels[i], "score": float(probs[i])} for i in order]


def aggregate_probs(probs: np.ndarray, method: Aggregate = "mean") -> np.ndarray:
    """Clip-level scores from per-window scores ``(W, C)``: their ``"mean"`` or ``"max"`` over windows."""
    if method not in ("mean", "max"):
        raise ConfigError(f"aggregate must be 'mean' or 'max', got {method!r}")
    if probs.shape[0] == 0:
        raise InputError("no windows to aggregate")
    return probs.mean(axis=0) if method == "mean" else probs.max(axis=0)


@dataclass
class WindowPrediction:
    """Scores of one analysis window.

    Attributes:
        index: window number, from 0.
        start, end: the window's span in seconds (``end`` is clipped to the end of the audio).
        probs: scores of every class, ``(C,)``.
        predictions: top-k ``[{"label", "score"}]``.
    """

    index: int
    start: float
    end: float
    probs: np.ndarray = field(repr=False)
    predictions: list[Prediction]

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "predictions": self.predictions}


@dataclass
class ScanResult:
    """What :func:`arinext.inference.scan` returns.

    Attributes:
        windows: one :class:`WindowPrediction` per window, in time order.
        aggregate: clip-level top-k from the ``aggregate_method`` of the window scores.
        aggregate_method: ``"mean"`` or ``"max"``.
        duration: seconds of audio read (at the model's rate).
        window, hop: window length and hop in seconds.
    """

    windows: list[WindowPrediction]
    aggregate: list[Prediction]
    aggregate_method: str
    duration: float
    window: float
    hop: float

    @property
    def probs(self) -> np.ndarray:
        """Per-window scores ``(num_windows, C)``."""
        return np.stack([w.probs for w in self.windows])

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration": self.duration,
            "window": self.window,
            "hop": self.hop,
            "aggregate_method": self.aggregate_method,
            "aggregate": self.aggregate,
            "windows": [w.to_dict() for w in self.windows],
        }
