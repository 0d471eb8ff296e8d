"""Result types of the classifier: top-k label lists, per-window predictions and scan results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..utils.errors import ConfigError, InputError

__all__ = ["Prediction", "ScanResult", "WindowPrediction", "aggregate_probs", "top_k_labels"]

Prediction = dict[str, Any]  # {"label": str, "score": float}, the Hugging Face pipeline format
Aggregate = Literal["mean", "max"]


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
