"""Measurements beyond latency: peak forward memory and the machine's roofline (matmul and copy rates)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch

from ...utils.timing import time_interleaved

__all__ = ["peak_forward_memory", "roofline"]


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: the profiler's C++ library prints a line at every start and stop
    (``USDT: ... profiler_start``) that no setting turns off."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


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

    with _native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
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
