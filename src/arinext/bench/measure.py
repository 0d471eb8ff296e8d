"""Measurement primitives: interleaved latency, peak forward memory, and the machine's roofline.

Latency runs are interleaved (run 1 of every candidate, then run 2 of every candidate, ...) so that
load changes on a shared machine hit all candidates alike; ratios are only meaningful inside one call.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

import torch
from tqdm import tqdm

__all__ = ["LatencyStats", "time_interleaved", "peak_forward_memory", "roofline"]


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
    progress: bool = True,
) -> dict[str, LatencyStats]:
    """Time each zero-argument callable ``runs`` times, round-robin, after ``warmup`` untimed calls each."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in tqdm(range(runs), desc="timing", disable=not progress, leave=False):
        for name, fn in candidates.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: LatencyStats.from_seconds(t) for name, t in times.items()}


def peak_forward_memory(fn: Callable[[], Any], device: torch.device | str = "cpu") -> int:
    """Peak bytes allocated by PyTorch during one call of ``fn`` (activations + workspace, not weights).

    CUDA: ``torch.cuda.max_memory_allocated`` above the starting level. CPU: the running sum of the
    allocation and free events recorded by ``torch.profiler`` with ``profile_memory=True``.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated() - base)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]  # type: ignore[union-attr]
    events.sort(key=lambda e: e.start_ns())
    current = peak = 0
    for event in events:
        current += event.nbytes()
        peak = max(peak, current)
    return peak


def roofline(
    matmul_size: int = 2048, copy_mib: int = 256, runs: int = 10, device: torch.device | str = "cpu"
) -> dict[str, float]:
    """This machine's attainable fp32 rates: a square matmul (GMAC/s) and a large copy (GB/s, read + write)."""
    device = torch.device(device)
    a = torch.randn(matmul_size, matmul_size, device=device)
    b = torch.randn(matmul_size, matmul_size, device=device)
    src = torch.empty(copy_mib * 2**20 // 4, device=device).normal_()
    dst = torch.empty_like(src)
    stats = time_interleaved(
        {"matmul": lambda: torch.mm(a, b), "copy": lambda: dst.copy_(src)}, runs, 2, device, progress=False
    )
    macs = matmul_size**3
    return {
        "matmul_size": matmul_size,
        "matmul_gmacs": macs / (stats["matmul"].min_ms * 1e-3) / 1e9,
        "matmul_gmacs_median": macs / (stats["matmul"].median_ms * 1e-3) / 1e9,
        "copy_mib": copy_mib,
        "copy_gbs": 2 * src.numel() * 4 / (stats["copy"].min_ms * 1e-3) / 1e9,
        "copy_gbs_median": 2 * src.numel() * 4 / (stats["copy"].median_ms * 1e-3) / 1e9,
        "threads": torch.get_num_threads(),
    }
