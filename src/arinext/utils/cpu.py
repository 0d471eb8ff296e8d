"""The CPUs this process may use, and whether other processes are using them too (Linux signals).

Threads: :func:`usable_cpus` is the smaller of the CPU affinity mask and the cgroup CPU quota (a container
limited to 2 CPUs on a 64-core host sees 64 cores in its affinity mask, and PyTorch would start 64
threads); :func:`configure_threads` caps PyTorch's intra-op threads at that number.

OpenMP wait policy: libgomp (PyTorch's OpenMP runtime on Linux) lets idle threads spin for a while after
every parallel region. On a machine whose cores are shared, the spinning threads use up their share and
every barrier then waits for a descheduled thread: measured 10-25x slower training and 100x slower small
ops. ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep) avoids it, but the runtime reads it once, when torch is
imported; ``import arinext`` therefore sets it when torch is not imported yet (and the variable is unset),
and :func:`wait_policy_hint` says what to do otherwise.

Load: :func:`assess_load` turns four signals into a verdict with reasons, for timings that must not be
quoted from a busy machine: the run-queue wait of this process's own threads during the measurement
(:class:`RunQueueWait`, from ``/proc/self/task/*/schedstat``: time runnable but not running), the 1-minute
load average against the usable CPUs, CPU pressure (``/proc/pressure/cpu``, "some avg10") and the
run-to-run spread of the timings.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ConfigError

__all__ = [
    "LoadVerdict",
    "RunQueueWait",
    "assess_load",
    "cgroup_cpu_limit",
    "configure_threads",
    "cpu_pressure",
    "load_average",
    "usable_cpus",
    "wait_policy_hint",
]

#: Thresholds of :func:`assess_load`.
WAIT_FRACTION_LIMIT = 0.05  # our threads waited for a core more than 5% of their runnable time
PRESSURE_LIMIT = 10.0  # PSI "some avg10" in percent
SPREAD_P90_LIMIT = 1.25  # p90 / median of one candidate's runs
SPREAD_MIN_LIMIT = 1.5  # median / min of one candidate's runs


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def cgroup_cpu_limit() -> float | None:
    """CPUs allowed by this process's cgroup quota (v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), or ``None``."""
    text = _read("/proc/self/cgroup") or ""
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        path = path.strip()
        if hierarchy == "0" and not controllers:  # cgroup v2
            raw = _read(f"/sys/fs/cgroup{path.rstrip('/')}/cpu.max") or _read("/sys/fs/cgroup/cpu.max") or ""
            fields = raw.split()
            if len(fields) == 2 and fields[0] != "max":
                return int(fields[0]) / int(fields[1])
        elif "cpu" in controllers.split(","):  # cgroup v1
            for base in (f"/sys/fs/cgroup/cpu{path.rstrip('/')}", "/sys/fs/cgroup/cpu"):
                quota, period = _read(f"{base}/cpu.cfs_quota_us"), _read(f"{base}/cpu.cfs_period_us")
                if quota and period and int(quota) > 0:
                    return int(quota) / int(period)
    return None


def usable_cpus() -> int:
    """CPUs this process may run on: the affinity mask, capped by the cgroup quota (rounded up)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None and limit > 0:
        cpus = min(cpus, max(1, math.ceil(limit)))
    return max(1, cpus)


def configure_threads(threads: int | None = None) -> int:
    """Set PyTorch's intra-op threads: ``threads`` if given, else at most :func:`usable_cpus` (an
    ``OMP_NUM_THREADS`` in the environment is respected). Returns the number in use."""
    import torch

    if threads is not None:
        if threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    elif "OMP_NUM_THREADS" not in os.environ and torch.get_num_threads() > usable_cpus():
        torch.set_num_threads(usable_cpus())
    return torch.get_num_threads()


def wait_policy_hint() -> str | None:
    """A one-line hint when ``OMP_WAIT_POLICY`` is unset (torch was imported before arinext), else ``None``."""
    if os.environ.get("OMP_WAIT_POLICY") or os.environ.get("GOMP_SPINCOUNT"):
        return None
    return (
        "OMP_WAIT_POLICY is not set (torch was imported before arinext): OpenMP threads spin while idle, which "
        "makes training and timings many times slower when other processes share the CPUs; set "
        "OMP_WAIT_POLICY=PASSIVE in the environment (or import arinext before torch)"
    )


def load_average() -> float | None:
    """1-minute load average (runnable and uninterruptible tasks, all users), or ``None``."""
    text = _read("/proc/loadavg")
    try:
        return float(text.split()[0]) if text else None
    except (ValueError, IndexError):
        return None


def cpu_pressure() -> float | None:
    """PSI ``some avg10`` of the CPU in percent (share of the last 10 s in which a runnable task waited), or ``None``."""
    for line in (_read("/proc/pressure/cpu") or "").splitlines():
        if line.startswith("some"):
            try:
                return float(line.split("avg10=")[1].split()[0])
            except (IndexError, ValueError):
                return None
    return None


def _thread_schedstats() -> dict[str, tuple[int, int]] | None:
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    out = {}
    for tid in tids:
        text = _read(f"/proc/self/task/{tid}/schedstat")
        if text:
            try:
                run, wait = text.split()[:2]
                out[tid] = (int(run), int(wait))
            except ValueError:
                continue
    return out or None


class RunQueueWait:
    """Context manager: CPU time and run-queue wait of every thread of this process during the block.

    Attributes (after the block): ``wall``, ``cpu`` and ``wait`` in seconds (``cpu``/``wait`` are ``None``
    where ``/proc/self/task/*/schedstat`` is missing), and :attr:`wait_fraction`.
    """

    def __enter__(self) -> RunQueueWait:
        self._start = time.perf_counter()
        self._stats = _thread_schedstats()
        self.load_before = load_average()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._start
        self.load_after = load_average()
        self.pressure = cpu_pressure()
        end = _thread_schedstats()
        self.cpu: float | None = None
        self.wait: float | None = None
        if self._stats is not None and end is not None:
            run = wait = 0
            for tid, (r, w) in end.items():
                r0, w0 = self._stats.get(tid, (0, 0))
                run, wait = run + r - r0, wait + w - w0
            self.cpu, self.wait = run / 1e9, wait / 1e9

    @property
    def wait_fraction(self) -> float | None:
        """Run-queue wait / (run + wait): about 0 when every runnable moment of our threads got a core."""
        if self.cpu is None or self.wait is None or self.cpu + self.wait <= 0:
            return None
        return self.wait / (self.cpu + self.wait)


@dataclass
class LoadVerdict:
    """Whether a measurement ran on a shared (loaded) CPU, why, and the signals behind it."""

    loaded: bool
    reasons: list[str] = field(default_factory=list)
    signals: dict[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        if not self.loaded:
            return "the CPUs looked free during the runs"
        return (
            "WARNING: the CPUs were shared with other work during these measurements ("
            + "; ".join(self.reasons)
            + "): times are inflated and ratios between candidates are biased; measure again on an idle machine"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def assess_load(
    spreads: Mapping[str, tuple[float, float, float]] | None = None,
    wait_fraction: float | None = None,
    load_before: float | None = None,
    load_after: float | None = None,
    threads: int = 1,
    pressure: float | None = None,
    cpus: int | None = None,
) -> LoadVerdict:
    """Verdict from the signals; each one that trips adds a reason.

    Args:
        spreads: per candidate, ``(median, p90, min)`` of its run times in ms; p90/median > 1.25 or
            median/min > 1.5 trips.
        wait_fraction: :attr:`RunQueueWait.wait_fraction` over the measurement (> 5% trips).
        load_before, load_after: 1-minute load averages; before the runs, more than ``cpus - threads``
            other runnable tasks trip (after them, ``threads`` more, since the average then includes us).
        threads: threads this process runs.
        pressure: PSI ``some avg10`` (> 10% trips).
        cpus: usable CPUs (default :func:`usable_cpus`).
    """
    cpus = cpus or usable_cpus()
    reasons: list[str] = []
    free = cpus - threads + 0.5
    if load_before is not None and load_before > free:
        reasons.append(f"1-min load average {load_before:.1f} before the runs on {cpus} CPUs")
    if load_after is not None and load_after > free + threads:
        reasons.append(f"1-min load average {load_after:.1f} after the runs on {cpus} CPUs")
    if wait_fraction is not None and wait_fraction > WAIT_FRACTION_LIMIT:
        reasons.append(f"our threads waited for a CPU {100 * wait_fraction:.0f}% of their runnable time")
    if pressure is not None and pressure > PRESSURE_LIMIT:
        reasons.append(f"CPU pressure (PSI some avg10) {pressure:.0f}%")
    for name, (median, p90, low) in (spreads or {}).items():
        if low > 0 and (p90 / median > SPREAD_P90_LIMIT or median / low > SPREAD_MIN_LIMIT):
            reasons.append(f"{name}: runs spread {low:.1f}-{p90:.1f} ms (min to p90, median {median:.1f})")
    signals = dict(
        wait_fraction=wait_fraction, load_before=load_before, load_after=load_after, cpu_pressure=pressure,
        cpus=cpus, threads=threads,
    )  # fmt: skip
    return LoadVerdict(bool(reasons), reasons, signals)
