"""A plot of frame-level scores over time with the detected (and optionally the reference) events.

Needs matplotlib (``pip install 'arinext[plot]'``); ``arinext predict --events --plot`` draws one per file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.optional import MissingExtraError
from .event_decoding import Event, FrameScores

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as exc:
    raise MissingExtraError("plots need matplotlib: pip install 'arinext[plot]'") from exc

__all__ = ["plot_frame_scores"]


def plot_frame_scores(
    frames: FrameScores,
    events: Sequence[Event],
    path: str | Path,
    title: str = "",
    threshold: float | None = None,
    reference: Sequence[Mapping[str, Any]] | None = None,
    max_classes: int = 8,
) -> Path:
    """Write a PNG: the scores of the classes that have events (else the highest ones) over time, the
    detected events shaded and labelled, ``reference`` events (``event_label``/``onset``/``offset``) as
    bars underneath, and the threshold as a dashed line."""
    scores = np.asarray(frames.scores)
    named = [frames.labels.index(e.label) for e in events]
    order = list(dict.fromkeys(named)) + [int(k) for k in np.argsort(-scores.max(axis=0)) if int(k) not in named]
    shown = order[: max(1, max_classes)]
    duration = float(frames.times[-1]) if len(frames.times) else 0.0
    fig, ax = plt.subplots(figsize=(max(6.0, min(18.0, duration / 2 + 4)), 3.2))
    cmap = plt.get_cmap("tab10")
    colour = {k: cmap(i % 10) for i, k in enumerate(shown)}
    for k in shown:
        ax.plot(frames.times, scores[:, k], lw=1.0, color=colour[k], label=frames.labels[k])
    for e in events:
        k = frames.labels.index(e.label)
        ax.axvspan(e.onset, e.offset, color=colour.get(k, "grey"), alpha=0.2, lw=0)
        ax.text((e.onset + e.offset) / 2, 1.02, e.label, ha="center", va="bottom", fontsize=7, clip_on=False)
    for r in reference or []:
        ax.plot([r["onset"], r["offset"]], [-0.06, -0.06], color="k", lw=3, solid_capstyle="butt")
    if threshold is not None:
        ax.axhline(threshold, color="k", ls="--", lw=0.8)
    ax.set_xlim(0, max(duration, 1e-3))
    ax.set_ylim(-0.1 if reference else 0.0, 1.0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"score ({frames.source})" if frames.source else "score")
    if title:
        ax.set_title(title, fontsize=9, loc="left", pad=14)
    ax.legend(loc="upper right", fontsize=7, ncol=min(4, len(shown)), framealpha=0.8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
