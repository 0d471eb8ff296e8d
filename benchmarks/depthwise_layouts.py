"""The 21-tap depthwise convs and the stem's max-pool of the paper-size ARIN in other memory layouts.

Times, interleaved in one process, the fused model's depthwise convs (time kernel 21 x 1, frequency kernel
1 x 21, one per channel) on the activation shapes of stages 1-3 at 512 x 128 input, as the ``fast`` form runs
them (channels-last) and as alternatives would: NCHW; the time kernel as a 1 x 21 conv on a time-major
(B, C, F, T) copy, with the copies there and back; and a whole network kept time-major, where the time
kernel runs along the last axis and the frequency kernel along the other. Also the stem's 3 x 3 / 2
max-pool: channels-last, NCHW, and as two 1-D max-pools (the same maximum). The process keeps freed memory
(:func:`arinext.utils.malloc.retain_freed_memory`), as the ``fast`` form does.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/depthwise_layouts.py --runs 15
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from arinext.utils.malloc import retain_freed_memory
from arinext.utils.timing import time_interleaved

CL = torch.channels_last
K = 21


def _time_major(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(2, 3).contiguous(memory_format=CL)


def depthwise_variants(b: int, c: int, t: int, f: int) -> dict[str, Callable[[], Any]]:
    """The variants of one stage's two depthwise convs; checks first that they compute the same numbers."""
    x = torch.randn(b, c, t, f).contiguous(memory_format=CL)
    xn, xt = x.contiguous(), _time_major(x)
    w_time, w_freq, bias = torch.randn(c, 1, K, 1), torch.randn(c, 1, 1, K), torch.randn(c)
    w_time_t, w_freq_t = w_time.transpose(2, 3).contiguous(), w_freq.transpose(2, 3).contiguous()
    pad_h, pad_w = (K // 2, 0), (0, K // 2)

    def dw(inp: torch.Tensor, w: torch.Tensor, pad: tuple[int, int]) -> torch.Tensor:
        return F.conv2d(inp, w, bias, 1, pad, 1, c)

    variants: dict[str, Callable[[], Any]] = {
        "time 21x1, channels-last (fast)": lambda: dw(x, w_time, pad_h),
        "time 21x1, NCHW": lambda: dw(xn, w_time, pad_h),
        "time as 1x21 on a (B,C,F,T) copy, both copies": lambda: _time_major(dw(_time_major(x), w_time_t, pad_w)),
        "freq 1x21, channels-last (fast)": lambda: dw(x, w_freq, pad_w),
        "freq 1x21, NCHW": lambda: dw(xn, w_freq, pad_w),
        "time-major network: time as 1x21": lambda: dw(xt, w_time_t, pad_w),
        "time-major network: freq as 21x1": lambda: dw(xt, w_freq_t, pad_h),
    }
    with torch.inference_mode():
        time_ref, freq_ref = dw(x, w_time, pad_h), dw(x, w_freq, pad_w)
        for name, fn in variants.items():
            ref = time_ref if "time" in name.split(":")[-1] else freq_ref
            out = fn()
            torch.testing.assert_close(out.transpose(2, 3) if "time-major" in name else out, ref, rtol=1e-4, atol=1e-4)
    return variants


def pool_variants(b: int, c: int, t: int, f: int) -> dict[str, Callable[[], Any]]:
    """The stem's max-pool, three ways (the same maximum)."""
    x = torch.randn(b, c, t, f).contiguous(memory_format=CL)
    xn = x.contiguous()

    def two_pools() -> torch.Tensor:
        return F.max_pool2d(F.max_pool2d(x, (3, 1), (2, 1), (1, 0)), (1, 3), (1, 2), (0, 1))

    variants: dict[str, Callable[[], Any]] = {
        "max-pool 3x3/2, channels-last (fast)": lambda: F.max_pool2d(x, 3, 2, 1),
        "max-pool 3x3/2, NCHW": lambda: F.max_pool2d(xn, 3, 2, 1),
        "max-pool as 3x1/2 then 1x3/2": two_pools,
    }
    with torch.inference_mode():
        ref = F.max_pool2d(x, 3, 2, 1)
        for fn in variants.values():
            torch.testing.assert_close(fn(), ref, rtol=0, atol=0)
    return variants


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=15)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    retain_freed_memory()
    cases = [
        ("stage 1, batch 8", depthwise_variants(8, 64, 128, 32)),
        ("stage 2, batch 8", depthwise_variants(8, 128, 64, 16)),
        ("stage 3, batch 8", depthwise_variants(8, 256, 32, 8)),
        ("stage 1, batch 1", depthwise_variants(1, 64, 128, 32)),
        ("stem output, batch 8", pool_variants(8, 64, 256, 64)),
    ]
    print(f"{args.threads} threads, {args.runs} interleaved rounds per shape; median ms\n")
    print("| tensor (B, C, T, F) | variant | median ms |\n|---|---|---:|")
    with torch.inference_mode():
        for label, variants in cases:
            stats = time_interleaved(variants, args.runs, 3)
            for name, st in stats.items():
                print(f"| {label} | {name} | {st.median_ms:.2f} |")


if __name__ == "__main__":
    main()
