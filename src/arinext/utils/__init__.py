"""Leaf helpers shared by every layer: complexity counts, module helpers, the latency timer, optional imports."""

from .complexity import count_macs, count_params
from .errors import ArinextError, ConfigError, DataError, InputError, PathNotFoundError
from .modules import randomize_batchnorm, unwrap_model
from .optional import MissingExtraError, require
from .timing import LatencyStats, time_interleaved

__all__ = [
    "ArinextError",
    "ConfigError",
    "DataError",
    "InputError",
    "LatencyStats",
    "MissingExtraError",
    "PathNotFoundError",
    "count_macs",
    "count_params",
    "randomize_batchnorm",
    "require",
    "time_interleaved",
    "unwrap_model",
]
