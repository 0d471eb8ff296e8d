"""The training loop's building blocks: one epoch, evaluation, Precise-BN, parameter groups, BN freezing.

Batches are dicts as produced by ``arinext.data.collate_clips``: ``"inputs"`` ``(B, 1, T, F)`` (or
``(B, V, 1, T, F)`` with ``V`` test views), ``"target"`` (``(B,)`` class indices, ``(B, C)`` multi-hot or
a dict of ``(B,)`` per head), ``"index"`` ``(B,)`` and optionally ``"bad"`` (skipped clips). Loss and
metrics come from a :class:`~arinext.train.tasks.Task`, so nothing here depends on the target type.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..audio.io import AudioDecodeError
from ..data.clips import BadClipReport
from ..layers.classifier import MultiHeadOutput
from ..utils.modules import unwrap_model
from ..utils.progress import progress_bar
from .distributed import all_gather_cat, all_gather_list, all_reduce_sum, every_rank
from .tasks import EvalResult, Task

__all__ = [
    "Predictions",
    "StepHook",
    "autocast",
    "bad_clip_hint",
    "evaluate",
    "freeze_batchnorm",
    "param_groups",
    "precise_bn",
    "predict",
    "set_train_mode",
    "train_one_epoch",
]

_log = logging.getLogger(__name__)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """bfloat16 autocast on ``device`` when ``enabled`` (a no-op context otherwise)."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def bf16_supported(device: torch.device) -> bool:
    """Whether bfloat16 autocast is usable on ``device``."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu"


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two SGD groups: weights with ``weight_decay``; BatchNorm parameters and biases without it."""
    decay, no_decay = [], []
    norm_params = {
        id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) for p in m.parameters()
    }
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if id(p) in norm_params or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _frozen_bns(model: nn.Module) -> list[nn.Module]:
    model = unwrap_model(model)
    stem = {id(m) for m in model.stem_batchnorms()}  # type: ignore[operator]
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and id(m) not in stem]


def freeze_batchnorm(model: nn.Module) -> int:
    """Freeze every BatchNorm2d except the stem's (``model.stem_batchnorms()``): no affine gradients.

    Combine with :func:`set_train_mode` (``freeze_bn=True``), which keeps them in eval mode so their
    running statistics stay fixed. Returns the number of frozen layers.
    """
    bns = _frozen_bns(model)
    for m in bns:
        for p in m.parameters():
            p.requires_grad_(False)
    return len(bns)


def set_train_mode(model: nn.Module, freeze_bn: bool = False) -> None:
    """``model.train()``, with the frozen BatchNorms (see :func:`freeze_batchnorm`) back in eval mode."""
    model.train()
    if freeze_bn:
        for m in _frozen_bns(model):
            m.eval()


def _to_device(target: Any, device: torch.device) -> Any:
    if isinstance(target, dict):
        return {k: v.to(device, non_blocking=True) for k, v in target.items()}
    return target.to(device, non_blocking=True)


@contextlib.contextmanager
def bad_clip_hint() -> Iterator[None]:
    """An unreadable clip that stops the loop (``data.on_bad_clip=error``) is raised again naming the setting."""
    try:
        yield
    except AudioDecodeError as exc:
        raise AudioDecodeError(
            exc.source, f"{exc.problem} (data.on_bad_clip=error stops at an unreadable clip; "
            "--set data.on_bad_clip=skip skips such clips and counts them)",
        ) from exc  # fmt: skip


@dataclass
class Predictions:
    """What :func:`predict` returns: one row per scored clip, sorted by dataset index.

    Attributes:
        scores: view-averaged probabilities ``(N, C)`` (a dict of them for several heads).
        targets: the clips' targets.
        indices: dataset index of each row.
        skipped: error messages of the clips that could not be read (skipped, not scored).
    """

    scores: Any
    targets: Any
    indices: torch.Tensor
    skipped: list[str] = field(default_factory=list)


class _DataWaits:
    """Time spent waiting for batches (starting or resuming the loader's workers included), and the time from
    ``start`` to the first batch."""

    def __init__(self, start: float) -> None:
        self.start, self.total, self.first_batch = start, 0.0, math.nan

    def iterate(self, loader: Iterable[Any]) -> Iterator[Any]:
        tic = self.start
        batches = iter(loader)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                self.total += time.perf_counter() - tic
                return
            now = time.perf_counter()
            self.total += now - tic
            if math.isnan(self.first_batch):
                self.first_batch = now - self.start
            yield batch
            tic = time.perf_counter()  # the consumer asks for the next batch


#: ``hook(progress)`` called after every training step with the epoch so far (see :func:`train_one_epoch`)
StepHook = Callable[[dict[str, Any]], None]


def train_one_epoch(
    model: nn.Module,
    loader: Iterable[dict[str, Any]],
    optimizer: torch.optim.Optimizer,
    task: Task,
    device: torch.device,
    epoch: int = 0,
    freeze_bn: bool = False,
    amp: bool = False,
    progress: bool | None = None,
    log_every: float = 60.0,
    resume: dict[str, Any] | None = None,
    on_step: StepHook | None = None,
) -> dict[str, float]:
    """Train one pass over ``loader``; returns ``loss``, ``acc`` and ``clips_per_s`` summed over processes,
    ``bad_clips`` (clips skipped as unreadable, summed), and this process's data waits: ``first_batch_s``
    (from the start of the epoch to its first batch, the time with no batch to train on) and ``data_wait_s``
    (all the time spent waiting for batches).

    ``optimizer``'s learning rate is used as set by the caller (the schedule is per epoch). Without a progress
    bar (stderr is not a terminal), a plain line with the step, clips/s and loss is logged every ``log_every``
    seconds (0: never). The bad clips of the epoch are logged once, at its end, as a count with examples.

    ``on_step(progress)`` runs after every step with this process's epoch so far, ``{"step", "loss_sum",
    "correct", "n", "bad"}`` (plain numbers, for a checkpoint inside the epoch); ``resume`` takes such a dict to
    continue an epoch, with ``loader`` yielding the batches after ``progress["step"]``.
    """
    set_train_mode(model, freeze_bn)
    lr = optimizer.param_groups[0]["lr"]
    done = dict(resume) if resume else {"step": 0, "loss_sum": 0.0, "correct": 0.0, "n": 0, "bad": 0}
    bad = BadClipReport()
    start = time.perf_counter()
    bar = progress_bar(loader, enabled=progress, desc=f"epoch {epoch + 1}", leave=False)
    total = done["step"] + len(loader) if hasattr(loader, "__len__") else None  # type: ignore[arg-type]
    waits, n_here, last_line = _DataWaits(start), 0, start
    with bad_clip_hint():
        for batch in waits.iterate(bar):
            bad.update(batch)
            done["step"] += 1
            inputs = batch["inputs"]
            # under DDP every process steps or none does: one that skipped a batch of bad clips alone would
            # leave the others waiting for its gradients
            if every_rank(inputs is not None and inputs.shape[0] > 0, device):
                loss, correct = _train_step(model, inputs, batch["target"], optimizer, task, device, amp, epoch)
                n = inputs.shape[0]
                done["loss_sum"] += loss * n
                done["correct"] += correct
                done["n"] += n
                n_here += n
            done["bad"] += len(batch.get("bad") or [])
            now = time.perf_counter()
            rate = n_here / max(now - start, 1e-9)
            if not bar.disable and done["n"]:
                bar.set_postfix(loss=f"{done['loss_sum'] / done['n']:.4f}", lr=f"{lr:.2e}", clips_s=f"{rate:.1f}")
            elif bar.disable and log_every > 0 and now - last_line >= log_every:
                last_line = now
                _log.info("epoch %d: step %d/%s, %.1f clips/s, loss %.4f, %d bad clips", epoch + 1, done["step"],
                          total or "?", rate, done["loss_sum"] / max(done["n"], 1), done["bad"])  # fmt: skip
            if on_step is not None:
                on_step(dict(done))
    if bad.count:
        _log.warning("epoch %d, training: %s", epoch + 1, bad.summary())
    elapsed = time.perf_counter() - start
    loss_sum, correct, n, bad_n, clips_here = all_reduce_sum(
        [done["loss_sum"], done["correct"], done["n"], done["bad"], n_here], device
    )
    return {
        "loss": loss_sum / max(n, 1),
        "acc": correct / max(n, 1),
        "clips_per_s": clips_here / max(elapsed, 1e-9),
        "lr": lr,
        "bad_clips": bad_n,
        "first_batch_s": waits.first_batch,
        "data_wait_s": waits.total,
    }


def _train_step(
    model: nn.Module, inputs: torch.Tensor, target: Any, optimizer: torch.optim.Optimizer, task: Task,
    device: torch.device, amp: bool, epoch: int,
) -> tuple[float, float]:  # fmt: skip
    """One SGD step; returns the batch's mean loss and its number of correct predictions."""
    inputs = inputs.to(device, non_blocking=True)
    target = _to_device(target, device)
    with autocast(device, amp):
        outputs = model(inputs)
    loss = task.loss(outputs, target)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item(), task.correct(outputs, target)


def _merge_views(scores: Any, views: int) -> Any:
    if isinstance(scores, dict):
        return MultiHeadOutput({k: _merge_views(v, views) for k, v in scores.items()})
    return scores.view(-1, views, *scores.shape[1:]).mean(dim=1)


def _cat(parts: list[Any]) -> Any:
    if parts and isinstance(parts[0], dict):
        return MultiHeadOutput({k: torch.cat([p[k] for p in parts]) for k in parts[0]})
    return torch.cat(parts) if parts else torch.empty(0)


def _select(x: Any, keep: torch.Tensor) -> Any:
    return MultiHeadOutput({k: v[keep] for k, v in x.items()}) if isinstance(x, dict) else x[keep]


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: Iterable[dict[str, Any]],
    task: Task,
    device: torch.device,
    amp: bool = False,
    progress: bool | None = None,
    desc: str = "eval",
) -> Predictions:
    """View-averaged probabilities, targets and dataset indices of every clip, gathered over processes.

    Inputs of shape ``(B, V, 1, T, F)`` are ``V`` views of each clip: their softmax (sigmoid for
    multi-label) is averaged. Clips seen twice (padding of a distributed sampler) are kept once,
    and rows come back sorted by dataset index. Clips the loader skipped are listed in ``skipped``.
    """
    model.eval()
    scores, targets, indices, skipped = [], [], [], []
    with bad_clip_hint():
        for batch in progress_bar(loader, enabled=progress, desc=desc, leave=False):
            skipped.extend(batch.get("bad") or [])
            inputs = batch["inputs"]
            if inputs is None or inputs.shape[0] == 0:
                continue
            views = inputs.shape[1] if inputs.dim() == 5 else 1
            flat = inputs.reshape(-1, *inputs.shape[-3:]).to(device, non_blocking=True)
            with autocast(device, amp):
                outputs = model(flat)
            scores.append(_merge_views(task.scores(outputs), views))
            targets.append(batch["target"])
            indices.append(torch.as_tensor(batch["index"]).long())
    score, target, index = (all_gather_cat(_cat(x), device) for x in (scores, targets, indices))
    index, order = index.sort()
    keep = torch.ones_like(index, dtype=torch.bool)
    keep[1:] = index[1:] != index[:-1]
    order = order[keep]
    return Predictions(_select(score, order), _select(target, order), index[keep], all_gather_list(skipped))


def evaluate(
    model: nn.Module, loader: Iterable[dict[str, Any]], task: Task, device: torch.device, **kwargs: Any
) -> EvalResult:
    """Multi-view evaluation: :func:`predict` (same keyword arguments), then ``task.evaluate``."""
    prediction = predict(model, loader, task, device, **kwargs)
    return task.evaluate(prediction.scores, prediction.targets)


@torch.no_grad()
def precise_bn(
    model: nn.Module,
    loader: Iterable[dict[str, Any]],
    num_batches: int,
    device: torch.device,
    freeze_bn: bool = False,
    amp: bool = False,
) -> int:
    """Recompute BatchNorm running statistics as the plain average over ``num_batches`` training batches.

    The training-time exponential average lags behind the weights; the original recipe replaces it
    before each evaluation (``BN.USE_PRECISE_STATS``). Frozen BatchNorms are left alone. With several
    processes the statistics are averaged over them. Returns the number of batches used.
    """
    net = unwrap_model(model)
    frozen = {id(m) for m in _frozen_bns(net)} if freeze_bn else set()
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in frozen]
    if not bns or num_batches <= 0:
        return 0
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average = exact mean over the batches seen
    set_train_mode(net, freeze_bn)
    used = 0
    try:
        for batch in loader:
            if used >= num_batches:
                break
            inputs = batch["inputs"]
            if inputs is None or inputs.shape[0] == 0:
                continue
            with autocast(device, amp):
                net(inputs.to(device, non_blocking=True))
            used += 1
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
    if dist.is_initialized():
        world = dist.get_world_size()
        for m in bns:
            for buf in (m.running_mean, m.running_var):
                dist.all_reduce(buf)
                buf.div_(world)
    return used
