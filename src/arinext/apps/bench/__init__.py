"""``arinext bench``: params, MACs, peak memory and interleaved latency of model forms, and its reports."""

from .measure import peak_forward_memory, roofline
from .report import plot, to_markdown, write_reports
from .runner import FORMS, BenchConfig, build_form, parse_size, run_bench

__all__ = [
    "FORMS",
    "BenchConfig",
    "build_form",
    "parse_size",
    "peak_forward_memory",
    "plot",
    "roofline",
    "run_bench",
    "to_markdown",
    "write_reports",
]
