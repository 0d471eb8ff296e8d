"""Frame-level scores and sound events: ``FrameScores`` in, ``[Event(label, onset, offset, score)]`` out.

:func:`decode_events` turns scores on a regular time grid into events, per class or over all classes:

1. a median filter along time (``median`` seconds; 0 = off), edges repeated;
2. hysteresis: a region starts where the score reaches ``threshold`` and lasts while it stays at or above
   ``low`` (``low = threshold``: a plain threshold);
3. regions less than ``min_gap`` seconds apart are merged;
4. regions shorter than ``min_duration`` seconds are dropped.

Modes: ``"independent"`` thresholds every class on its own (multi-label, sigmoid scores);
``"exclusive"`` first keeps only the arg-max class at each time (single-label, softmax scores);
``"activity"`` finds regions on the summed score of all classes (the probability that *some* event is
active, for scores from a head with a background class) and labels each region with its class of highest
mean score, so that one event is never split between two labels. A grid point ``t_i`` stands for
``[t_i - hop/2, t_i + hop/2)``; an event's score is the mean score of its class over the event.

``DecodeParams.relabel`` asks for a second opinion on each event's label from the clip classifier itself
(:meth:`arinext.inference.AudioClassifier.events`, which has the audio): the events found here keep their
onset and offset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..utils.errors import ConfigError, InputError

__all__ = ["DecodeParams", "DecodeMode", "Event", "FrameScores", "decode_events", "median_filter"]

DecodeMode = Literal["independent", "exclusive", "activity"]
MODES = ("independent", "exclusive", "activity")


@dataclass
class FrameScores:
    """Scores on a regular time grid.

    Attributes:
        times: ``(T,)`` seconds, the centre of each grid point (``times[i] = i * hop``).
        scores: ``(T, C)`` class scores in ``labels`` order.
        labels: class names.
        source: what made the scores: ``"frame head"`` or ``"clip head per column"``.
    """

    times: np.ndarray
    scores: np.ndarray = field(repr=False)
    labels: list[str]
    source: str = ""

    def __post_init__(self) -> None:
        if self.scores.ndim != 2 or self.scores.shape != (len(self.times), len(self.labels)):
            raise InputError(
                f"scores must be (len(times), len(labels)) = ({len(self.times)}, {len(self.labels)}), "
                f"got {self.scores.shape}"
            )

    @property
    def hop(self) -> float:
        """Seconds between grid points (0 for a single point)."""
        return float(self.times[1] - self.times[0]) if len(self.times) > 1 else 0.0

    def to_dict(self, decimals: int = 4) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "hop": round(self.hop, 6),
            "times": np.round(self.times, 6).tolist(),
            "scores": np.round(self.scores, decimals).tolist(),
            "source": self.source,
        }


@dataclass(frozen=True)
class Event:
    """A detected sound event: ``label`` from ``onset`` to ``offset`` seconds, with its mean ``score``."""

    label: str
    onset: float
    offset: float
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "onset": self.onset, "offset": self.offset, "score": round(self.score, 4)}


@dataclass
class DecodeParams:
    """Parameters of :func:`decode_events` (see the module docstring); ``low=None`` means ``low = threshold``.

    ``relabel`` is not used by :func:`decode_events`: :meth:`AudioClassifier.events
    <arinext.inference.AudioClassifier.events>` then relabels the events with the clip classifier.
    """

    threshold: float = 0.5
    low: float | None = None
    median: float = 0.0
    min_duration: float = 0.0
    min_gap: float = 0.0
    mode: DecodeMode = "exclusive"
    relabel: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        low = self.threshold if self.low is None else self.low
        if not 0 <= low <= self.threshold:
            raise ConfigError(f"need 0 <= low <= threshold, got low={low}, threshold={self.threshold}")
        for name in ("median", "min_duration", "min_gap"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DecodeParams:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown decoding parameters {sorted(unknown)}; known: {sorted(known)}")
        return cls(**dict(d))


def median_filter(x: np.ndarray, size: int) -> np.ndarray:
    """Median over ``size`` (made odd) points along axis 0, edges repeated; equal to
    ``scipy.ndimage.median_filter(x, size=(size, 1), mode="nearest")`` for 2-D ``x``."""
    if size <= 1 or x.shape[0] == 0:
        return x
    size |= 1
    h = size // 2
    padded = np.pad(x, ((h, h),) + ((0, 0),) * (x.ndim - 1), mode="edge")
    return np.median(sliding_window_view(padded, size, axis=0), axis=-1)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _regions(s: np.ndarray, p: DecodeParams, hop: float) -> list[tuple[int, int]]:
    """Index spans ``[a, b)`` of one score track after hysteresis, gap merging and the length filter."""
    low = p.threshold if p.low is None else p.low
    spans = [(a, b) for a, b in _runs(s >= low) if s[a:b].max() >= p.threshold]
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and (a - merged[-1][1]) * hop < p.min_gap - 1e-9:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged if (b - a) * hop >= p.min_duration - 1e-9]


def decode_events(
    frames: FrameScores,
    params: DecodeParams | None = None,
    classes: Sequence[str] | None = None,
    **overrides: Any,
) -> list[Event]:
    """Events of ``frames`` sorted by onset (then label); see the module docstring for the steps.

    Args:
        frames: scores on a regular grid.
        params: decoding parameters (default :class:`DecodeParams`); keyword ``overrides`` replace fields.
        classes: only these labels are reported (default: all).
    """
    p = DecodeParams.from_dict({**(params or DecodeParams()).to_dict(), **overrides})
    labels = list(frames.labels)
    if classes is not None:
        unknown = sorted(set(classes) - set(labels))
        if unknown:
            raise ConfigError(f"classes {unknown} are not among the labels {labels}")
    keep = [k for k, name in enumerate(labels) if classes is None or name in set(classes)]
    if len(frames.times) == 0 or not keep:
        return []
    hop = frames.hop or 1.0
    scores = np.asarray(frames.scores, dtype=np.float64)
    if p.median > 0:
        scores = median_filter(scores, max(1, int(round(p.median / hop))))
    duration_end = float(frames.times[-1]) + hop / 2

    def make(a: int, b: int, k: int, track: np.ndarray) -> Event:
        onset = max(0.0, float(frames.times[a]) - hop / 2)
        offset = min(duration_end, float(frames.times[b - 1]) + hop / 2)
        return Event(labels[k], round(onset, 4), round(offset, 4), float(track[a:b].mean()))

    events: list[Event] = []
    if p.mode == "activity":
        sub = scores[:, keep]
        for a, b in _regions(sub.sum(axis=1), p, hop):
            j = int(sub[a:b].mean(axis=0).argmax())
            events.append(make(a, b, keep[j], scores[:, keep[j]]))
    else:
        tracks = scores
        if p.mode == "exclusive":
            top = scores.argmax(axis=1)
            tracks = np.where(np.arange(scores.shape[1])[None] == top[:, None], scores, 0.0)
        for k in keep:
            for a, b in _regions(tracks[:, k], p, hop):
                events.append(make(a, b, k, scores[:, k]))
    return sorted(events, key=lambda e: (e.onset, e.label))
