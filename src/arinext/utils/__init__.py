"""Leaf helpers shared by every layer: complexity counts, the latency timer, optional imports."""

from .complexity import count_macs, count_params
from .optional import MissingExtraError, require
from .timing import LatencyStats, time_interleaved

__all__ = ["LatencyStats", "MissingExtraError", "count_macs", "count_params", "require", "time_interleaved"]
