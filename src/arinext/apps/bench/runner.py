"""``arinext bench``: params, MACs, peak memory and latency of model forms, side by side, in one process.

A *form* is one way of running a registered model:

* ``train``: the training-time graph in eval mode, eager, NCHW (for Slow-Fast: the model as published);
* ``paper``: the paper's fusion, :func:`arinext.reparameterize_model` (multi-branch DW convs fused);
* ``full``: ``reparameterize_model(m, fold="full")`` (every BN and in-block identity folded too);
* ``fast``: :func:`arinext.inference.optimize_for_inference` (full fold, kernel cropping, channels-last, each conv
  fused with its ReLU and residual add); every model gets the same passes, so ``slowfast_audio_r50:fast`` is
  Slow-Fast's best exact eager form;
* ``compiled``: ``fast`` wrapped in ``torch.compile``;
* ``onnx``: the full fold exported with ``torch.onnx.export`` and run by ONNX Runtime (all graph
  optimisations on, as many intra-op threads as torch uses).

All candidates of one (input size, batch) are timed interleaved; ratios are against the reference, and
``speedup_vs_reference_same_form`` (the "same form" column) against the reference's model in the
candidate's own form (``fast`` against ``fast``), where that candidate is timed too.
Every form runs under the same allocator setting: by default the process keeps freed memory for reuse
(:func:`arinext.utils.malloc.retain_freed_memory`, as ``optimize_for_inference`` does), set before anything
is built, whatever the candidates.

Ratios from a machine whose CPUs other processes are using are misleading (candidates with many small
operators suffer most), so the runs are watched: the run-queue wait of this process's threads, the load
average, CPU pressure and the run-to-run spread go into ``result["load"]``
(:func:`arinext.utils.cpu.assess_load`), and a loaded machine is flagged in the reports.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ...audio.frontend import PRESETS, FrontendConfig
from ...inference.optimize import optimize_for_inference
from ...layers.reparam import ReparamMultiKernelDWConv, reparameterize_model
from ...models import create_model
from ...utils.complexity import count_macs, count_params
from ...utils.cpu import RunQueueWait, assess_load, configure_threads, cpu_pressure, load_average
from ...utils.errors import ConfigError
from ...utils.modules import randomize_batchnorm
from ...utils.malloc import freed_memory_retained, retain_freed_memory
from ...utils.timing import LatencyStats, time_interleaved
from .measure import peak_forward_memory, roofline

__all__ = ["FORMS", "BenchConfig", "build_form", "default_sizes", "onnx_runner", "parse_size", "run_bench"]

_logger = logging.getLogger(__name__)

FORMS = ("train", "paper", "full", "fast", "compiled", "onnx")
_MATMUL = "(fp32 matmul, roofline)"
_N_MELS = 128


def default_sizes() -> list[str]:
    """VGG-Sound (512x128) and EPIC-Sounds / NSynth (416x128) input lengths."""
    return ["vggsound", "epic_sounds"]


def parse_size(spec: str) -> tuple[str, int, int]:
    """``"vggsound"`` (a front-end preset) or ``"TxF"`` such as ``"512x128"`` -> (label, T, F)."""
    if spec in PRESETS:
        cfg = PRESETS[spec]
        return spec, cfg.num_frames, cfg.n_mels
    match = re.fullmatch(r"(\d+)x(\d+)", spec)
    if not match:
        raise ConfigError(f"bad input size {spec!r}: use a preset ({', '.join(sorted(PRESETS))}) or TxF like 512x128")
    t, f = int(match.group(1)), int(match.group(2))
    return spec, t, f


@dataclass
class BenchConfig:
    """What to measure. ``candidates`` are ``model:form`` strings; the first one of ``reference`` is 1.0x."""

    candidates: Sequence[str] = (
        "audio_rep_inception_next:train",
        "audio_rep_inception_next:paper",
        "audio_rep_inception_next:full",
        "audio_rep_inception_next:fast",
        "audio_rep_inception_next:onnx",
        "slowfast_audio_r50:train",
        "slowfast_audio_r50:fast",
    )
    reference: str = "slowfast_audio_r50:train"
    sizes: Sequence[str] = field(default_factory=default_sizes)
    batch_sizes: Sequence[int] = (1, 8)
    runs: int = 20
    warmup: int = 3
    num_classes: int = 309
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    device: str = "cpu"
    measure_memory: bool = True
    with_roofline: bool = False
    roofline_matmul: int = 2048
    roofline_copy_mib: int = 256
    seed: int = 0
    retain_memory: bool = True


def _split(candidate: str) -> tuple[str, str]:
    name, _, form = candidate.partition(":")
    form = form or "train"
    if form not in FORMS:
        raise ConfigError(f"unknown form {form!r} in {candidate!r}; choose from {', '.join(FORMS)}")
    return name, form


def onnx_runner(model: nn.Module, example: torch.Tensor, threads: int) -> Callable[[torch.Tensor], Any]:
    """Export ``model`` with :func:`arinext.export.onnx.export_onnx`; a callable running it in ONNX Runtime."""
    from ...export.onnx import export_onnx
    from ...export.runtime import onnx_logits, onnx_session

    path = os.path.join(tempfile.mkdtemp(prefix="arinext-bench-"), "model.onnx")
    export_onnx(model, path, frontend=FrontendConfig(num_frames=example.shape[2], n_mels=example.shape[3]), check=False)
    session = onnx_session(path, threads)
    return lambda x: onnx_logits(session, x)


def build_form(name: str, form: str, cfg: BenchConfig, example: torch.Tensor) -> tuple[nn.Module, Callable[..., Any]]:
    """(module for params/MACs, callable for timing) of one candidate."""
    torch.manual_seed(cfg.seed)
    base = create_model(name, num_classes=cfg.num_classes, **cfg.model_kwargs)
    randomize_batchnorm(base, cfg.seed)  # non-trivial BNs, so folding has real work to do
    base = base.eval().to(cfg.device)
    if form == "train":
        return base, base
    if form in ("paper", "full"):
        model = reparameterize_model(base, fold=form)
        return model, model
    if form in ("fast", "compiled"):
        fast = optimize_for_inference(base, retain_memory=cfg.retain_memory)
        plain = reparameterize_model(base, fold="full")
        return plain, (torch.compile(fast) if form == "compiled" else fast)
    if cfg.device != "cpu":
        raise ConfigError("the onnx form runs ONNX Runtime on CPU only")
    plain = reparameterize_model(base, fold="full")
    return plain, onnx_runner(plain, example, torch.get_num_threads())


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    info = {
        "cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "malloc_retains_mib": freed_memory_retained(),
    }  # fmt: skip
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def _has_reparam(name: str, cfg: BenchConfig) -> bool:
    model = create_model(name, num_classes=cfg.num_classes, **cfg.model_kwargs)
    return any(isinstance(m, ReparamMultiKernelDWConv) for m in model.modules())


def run_bench(cfg: BenchConfig) -> dict[str, Any]:
    """Measure every candidate at every (size, batch); returns a JSON-ready dict (see :mod:`.report`)."""
    threads = configure_threads(cfg.threads)
    if cfg.retain_memory and cfg.device == "cpu":
        retain_freed_memory()
    candidates = list(dict.fromkeys([*cfg.candidates, cfg.reference]))
    for cand in candidates:
        name, form = _split(cand)
        if form == "paper" and not _has_reparam(name, cfg):
            raise ConfigError(f"{cand}: model {name!r} has no re-parameterizable layers")
    result: dict[str, Any] = {"machine": _machine(), "config": _config_dict(cfg), "rows": []}
    if cfg.with_roofline:
        result["roofline"] = roofline(cfg.roofline_matmul, cfg.roofline_copy_mib, device=cfg.device)
    load_before, run_cpu, run_wait = load_average(), 0.0, 0.0
    spreads: dict[str, tuple[float, float, float]] = {}
    for size in cfg.sizes:
        label, frames, mels = parse_size(size)
        static: dict[str, dict[str, Any]] = {}
        for batch in cfg.batch_sizes:
            example = torch.randn(batch, 1, frames, mels, device=cfg.device)
            runners: dict[str, Callable[[], Any]] = {}
            for cand in candidates:
                module, runner = build_form(*_split(cand), cfg, example)
                runners[cand] = lambda r=runner, x=example: r(x)
                if cand not in static:
                    static[cand] = {
                        "params": count_params(module),
                        "macs": count_macs(module, (1, 1, frames, mels))["total"],
                    }
            _logger.info("timing %d candidates at %s, batch %d", len(runners), label, batch)
            with torch.inference_mode():
                timed = dict(runners)
                if cfg.with_roofline:  # interleaved too, so that the fraction sees the same machine load
                    a = torch.randn(cfg.roofline_matmul, cfg.roofline_matmul, device=cfg.device)
                    timed[_MATMUL] = lambda a=a: torch.mm(a, a)
                with RunQueueWait() as watch:
                    stats = time_interleaved(timed, cfg.runs, cfg.warmup, cfg.device)
                run_cpu += watch.cpu or 0.0
                run_wait += watch.wait or 0.0
                for cand, st in stats.items():
                    spreads[f"{cand} at {label}, batch {batch}"] = (st.median_ms, st.p90_ms, st.min_ms)
                memory = {c: _memory(c, r, cfg) for c, r in runners.items()} if cfg.measure_memory else {}
            matmul = stats.pop(_MATMUL, None)
            matmul_gmacs = cfg.roofline_matmul**3 / (matmul.median_ms * 1e-3) / 1e9 if matmul else None
            result["rows"].extend(_rows(label, frames, mels, batch, stats, static, memory, cfg.reference, matmul_gmacs))
    wait_fraction = run_wait / (run_cpu + run_wait) if run_cpu + run_wait > 0 else None
    verdict = assess_load(spreads, wait_fraction, load_before, load_average(), threads, cpu_pressure())
    result["load"] = {**verdict.to_dict(), "message": verdict.message()}
    return result


def _memory(candidate: str, runner: Callable[[], Any], cfg: BenchConfig) -> int | None:
    if candidate.endswith(":onnx"):
        return None  # ONNX Runtime allocates outside PyTorch's allocator
    return peak_forward_memory(runner, cfg.device)


def _rows(
    label: str,
    frames: int,
    mels: int,
    batch: int,
    stats: dict[str, LatencyStats],
    static: dict[str, dict[str, Any]],
    memory: dict[str, int | None],
    reference: str,
    matmul_gmacs: float | None,
) -> list[dict[str, Any]]:
    ref = stats[reference].median_ms
    ref_model = _split(reference)[0]
    rows = []
    for cand, st in stats.items():
        gmacs = static[cand]["macs"] * batch / (st.median_ms * 1e-3) / 1e9
        same_form = stats.get(f"{ref_model}:{_split(cand)[1]}")
        row = {
            "size": label, "frames": frames, "mels": mels, "batch": batch, "candidate": cand,
            **static[cand], **st.to_dict(),
            "speedup_vs_reference": ref / st.median_ms, "reference": reference,
            "speedup_vs_reference_same_form": same_form.median_ms / st.median_ms if same_form else None,
            "gmacs_per_s": gmacs, "peak_memory_mib": (memory.get(cand) or 0) / 2**20 if memory.get(cand) else None,
        }  # fmt: skip
        if matmul_gmacs:
            row["matmul_gmacs_interleaved"] = matmul_gmacs
            row["fraction_of_matmul"] = gmacs / matmul_gmacs
        rows.append(row)
    return rows


def _config_dict(cfg: BenchConfig) -> dict[str, Any]:
    return {
        "candidates": list(cfg.candidates), "reference": cfg.reference, "sizes": list(cfg.sizes),
        "batch_sizes": list(cfg.batch_sizes), "runs": cfg.runs, "warmup": cfg.warmup,
        "num_classes": cfg.num_classes, "model_kwargs": cfg.model_kwargs, "device": cfg.device,
        "retain_memory": cfg.retain_memory,
    }  # fmt: skip
