"""Benchmarks and inference-speed helpers: ``arinext bench`` and :func:`optimize_for_inference`."""

from .measure import LatencyStats, peak_forward_memory, roofline, time_interleaved
from .optimize import AxisCroppedDWConv2d, ChannelsLast, crop_depthwise_kernels, optimize_for_inference
from .report import plot, to_markdown, write_reports
from .runner import FORMS, BenchConfig, build_form, parse_size, run_bench

__all__ = [
    "FORMS",
    "AxisCroppedDWConv2d",
    "BenchConfig",
    "ChannelsLast",
    "LatencyStats",
    "build_form",
    "crop_depthwise_kernels",
    "optimize_for_inference",
    "parse_size",
    "peak_forward_memory",
    "plot",
    "roofline",
    "run_bench",
    "time_interleaved",
    "to_markdown",
    "write_reports",
]
