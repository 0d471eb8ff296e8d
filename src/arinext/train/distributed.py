"""PyTorch DDP helpers for runs launched with ``torchrun`` (gloo on CPU, NCCL on GPU), on one machine or several.

``torchrun`` sets ``RANK`` (the process's global rank), ``WORLD_SIZE`` (all processes of all machines) and
``LOCAL_RANK`` (its rank on its machine, which picks its GPU). Data is shared out by global rank, and only
global rank 0 writes files. Without the ``torchrun`` environment (``WORLD_SIZE`` unset or 1) every helper
degrades to the single-process case, so the same training code runs both ways.
"""

from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ..utils.errors import ConfigError, DataError

__all__ = [
    "DistInfo",
    "all_gather_cat",
    "all_gather_list",
    "all_reduce_sum",
    "barrier",
    "cleanup_distributed",
    "every_rank",
    "file_on_every_rank",
    "init_distributed",
    "same_on_every_rank",
]

BACKENDS = ("auto", "nccl", "gloo")

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Rank, world size and the device this process trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")  # noqa: RUF009 (immutable)

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints, logs and reports."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto", backend: str = "auto") -> DistInfo:
    """Join the process group described by ``torchrun``'s environment variables, if any.

    Args:
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``. Each process takes GPU
            ``LOCAL_RANK`` of its machine.
        backend: ``"auto"`` (NCCL on GPU, gloo on CPU), ``"nccl"`` or ``"gloo"``. gloo also reduces CUDA
            tensors (through host memory): it runs where NCCL cannot, e.g. several processes on one GPU.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"dist_backend must be one of {BACKENDS}, got {backend!r}")
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but CUDA is not available")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK is {local_rank} but this machine has {torch.cuda.device_count()} CUDA device(s): "
                "start at most one process per GPU (torchrun --nproc-per-node)"
            )
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        if backend == "auto":
            backend = "nccl" if use_cuda else "gloo"
        if backend == "nccl" and not use_cuda:
            raise ConfigError("dist_backend 'nccl' needs CUDA devices; use 'gloo' (or 'auto') on the CPU")
        # with device_id, NCCL connects now, so a bad setup fails here rather than at the first reduction
        dist.init_process_group(backend=backend, device_id=dev if backend == "nccl" else None)
        _log.info("joined process group: rank %d of %d (%s, %s)", rank, world_size, backend, dev)
    return DistInfo(rank, world_size, local_rank, dev)


def same_on_every_rank(values: dict[str, Any], hint: str) -> None:
    """Raise ``DataError`` naming the first key of ``values`` whose value differs between processes, and
    ``hint`` (what to do). Every process must pass the same keys. A no-op without a process group."""
    if not dist.is_initialized():
        return
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, values)
    for key in values:
        seen = [p[key] for p in parts]
        if any(v != seen[0] for v in seen):
            shown = ", ".join(f"rank {r}: {v}" for r, v in enumerate(seen))
            raise DataError(f"{key} differs between processes ({shown}): {hint}")


def file_on_every_rank(path: str | Path, device: torch.device) -> bool:
    """Whether ``path`` is a file, answered the same by every process; ``ConfigError`` if only some see it
    (a run directory that is not on a filesystem shared by all machines)."""
    here = Path(path).is_file()
    if not dist.is_initialized():
        return here
    count, world = all_reduce_sum([float(here)], device)[0], dist.get_world_size()
    if 0 < count < world:
        raise ConfigError(
            f"{path} exists for {count:.0f} of {world} processes: with several machines, --out must be a folder "
            "that all of them see (a shared filesystem)"
        )
    return here


def cleanup_distributed() -> None:
    """Leave the process group (a no-op without one).

    Call it once the ``DistributedDataParallel`` wrappers are dropped: a gloo group that something still
    holds outlives ``destroy_process_group`` and is torn down at interpreter exit, which can abort the
    process (SIGABRT, "terminate called without an active exception") after a run that succeeded.
    """
    if dist.is_initialized():
        gc.collect()  # DDP's reducer sits in reference cycles: free it (and its hold on the group) first
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum a list of numbers over all processes (identity without a process group)."""
    if not dist.is_initialized():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def every_rank(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` holds on every process (``flag`` itself without a process group)."""
    if not dist.is_initialized():
        return flag
    return all_reduce_sum([0.0 if flag else 1.0], device)[0] == 0


def all_gather_list(items: list[Any]) -> list[Any]:
    """Concatenate the (picklable) lists every process holds (identity without a process group)."""
    if not dist.is_initialized():
        return list(items)
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, list(items))
    return [x for part in parts for x in part]


def all_gather_cat(x: Any, device: torch.device) -> Any:
    """Concatenate along dim 0 the tensors (or dicts of tensors) every process holds.

    The per-process row counts may differ; tensors come back on the CPU.
    """
    if isinstance(x, dict):
        return {k: all_gather_cat(v, device) for k, v in x.items()}
    if not dist.is_initialized():
        return x.cpu()
    world = dist.get_world_size()
    local = x.to(device)
    n = torch.tensor([local.shape[0]], device=device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    rows = int(max(s.item() for s in sizes))
    padded = torch.zeros((rows, *local.shape[1:]), dtype=local.dtype, device=device)
    padded[: local.shape[0]] = local
    parts = [torch.zeros_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())].cpu() for p, s in zip(parts, sizes)])
