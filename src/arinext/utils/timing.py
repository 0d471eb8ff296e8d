"""The one latency timer: interleaved runs of several candidates, median and spread per candidate.

Runs are interleaved (run 1 of every candidate, then run 2 of every candidate, ...) so that load
changes on a shared machine hit all candidates alike; ratios are only meaningful inside one call.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from .errors import ConfigError
from .progress import progress_bar

__all__ = ["LatencyStats", "time_interleaved"]


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one candidate in milliseconds."""

    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    runs: int

    @classmethod
    def from_seconds(cls, times: list[float]) -> LatencyStats:
        if not times:
            raise ValueError("no timings")
        ms = sorted(t * 1e3 for t in times)
        p90 = ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))]
        return cls(statistics.median(ms), p90, statistics.fmean(ms), ms[0], len(ms))

    @property
    def spread(self) -> float:
        """``p90 / median``: 1.0 on a quiet machine, well above it when other work interferes."""
        return self.p90_ms / self.median_ms if self.median_ms > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sync(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_interleaved(
    candidates: Mapping[str, Callable[[], Any]],
    runs: int = 20,
    warmup: int = 3,
    device: torch.device | str | None = None,
    progress: bool | None = False,
) -> dict[str, LatencyStats]:
    """Time each zero-argument callable ``runs`` times, round-robin, after ``warmup`` untimed calls each."""
    if runs < 1:
        raise ConfigError(f"runs must be >= 1, got {runs}")
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in progress_bar(range(runs), enabled=progress, desc="timing", leave=False):
        for name, fn in candidates.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: LatencyStats.from_seconds(t) for name, t in times.items()}
