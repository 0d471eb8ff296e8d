"""Keep freed memory in the process: no page faults on every forward pass (glibc on Linux).

PyTorch allocates CPU tensors with ``malloc`` and frees them at once. glibc hands blocks larger than its mmap
threshold (128 KiB at first, raised as blocks are freed up to 32 MiB) straight back to the kernel, and trims
the top of its heap when more than the trim threshold is free. The next forward pass asks for the same
sizes again and the kernel maps every 4 KiB page anew, with a page fault and a zero-fill each. For the
paper-size AudioRepInceptionNeXt at batch 8 (512 x 128 inputs, activations of 32 MiB) that is 33,000-50,000
faults per forward pass, 21-43 % of its time on this project's 2-core VM; Auditory Slow-Fast, whose largest
maps are 4x smaller in time, has few or none (BENCHMARKS.md, "PyTorch against Slow-Fast in the same
runtime"). ONNX Runtime never pays this, because it keeps its own memory arena.

:func:`retain_freed_memory` raises both glibc thresholds (``mallopt``), so that freed blocks up to
``limit_mib`` stay in the heap for the next call: the process keeps its peak memory instead of returning it,
which is what every caching allocator (PyTorch's CUDA allocator, ONNX Runtime's arena) does. It is
process-wide and cannot be undone cleanly (glibc's dynamic threshold is off once set); it changes no
number that any computation produces. The same from the environment, before Python starts:
``MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824``.
"""

from __future__ import annotations

import ctypes
import logging
import sys

from .errors import ConfigError

__all__ = ["freed_memory_retained", "retain_freed_memory"]

_logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # glibc malloc.h
_M_MMAP_THRESHOLD = -3
_retained_mib: int | None = None


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        version = libc.gnu_get_libc_version  # absent from musl and other C libraries
        libc.mallopt  # noqa: B018  (raises AttributeError where there is no mallopt)
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_char_p
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


def retain_freed_memory(limit_mib: int = 1024) -> bool:
    """Let glibc keep freed blocks of up to ``limit_mib`` MiB for reuse (process-wide); ``True`` if applied.

    Does nothing (and returns ``False``) where the C library is not glibc. Calling it again with a limit no
    larger than the one in force is free; a larger limit raises the thresholds.
    """
    global _retained_mib
    if not 1 <= limit_mib <= 2047:
        raise ConfigError(f"limit_mib must be in 1..2047 (MiB; mallopt takes a C int), got {limit_mib}")
    if _retained_mib is not None and _retained_mib >= limit_mib:
        return True
    libc = _glibc()
    if libc is None:
        return False
    limit = limit_mib * 2**20
    ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, limit)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, limit))
    if ok:
        _retained_mib = limit_mib
        _logger.debug("glibc malloc keeps freed blocks up to %d MiB", limit_mib)
    return ok


def freed_memory_retained() -> int | None:
    """The ``limit_mib`` of :func:`retain_freed_memory` in force in this process, or ``None``."""
    return _retained_mib
