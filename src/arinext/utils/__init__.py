"""Leaf helpers shared by every layer: complexity counts, the latency timer, optional imports."""

from .complexity import count_macs, count_params
from .errors import ArinextError, ConfigError, DataError, InputError
from .optional import MissingExtraError, require
from .timing import LatencyStats, time_interleaved

__all__ = [
    "ArinextError",
    "ConfigError",
    "DataError",
    "InputError",
    "LatencyStats",
    "MissingExtraError",
    "count_macs",
    "count_params",
    "require",
    "time_interleaved",
]
