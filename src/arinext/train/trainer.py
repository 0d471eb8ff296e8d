"""``fit``: a whole training run from a :class:`~arinext.train.config.TrainConfig`.

Output directory of a run::

    config.yaml      the resolved config
    last.pt          checkpoint after the latest epoch, or inside the current one (resume point)
    best.pt          checkpoint with the best validation ``select_metric``
    log.csv, tb/     per-epoch log (and TensorBoard events when installed)
    curves.png       loss/accuracy curves
    pretrained/      the best model as ``arinext.save_pretrained`` writes it

Only the main process (rank 0) writes files. ``resume=True`` continues from ``last.pt`` exactly:
model, optimizer, schedule, epoch, metric history and every RNG state (also each process's under DDP).
``last.pt`` is also written inside an epoch (``checkpoint_minutes``, ``checkpoint_steps``); resuming from
it skips the batches already trained on, so the run goes on with the batches it would have seen.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml
from torch import nn

from ..checkpoints import (
    CheckpointError,
    load,
    load_checkpoint,
    resolve,
    save_checkpoint,
    save_pretrained,
)
from ..checkpoints.training import capture_rng_state, load_state_strict, restore_rng_state
from ..data import AudioClipDataset, dataset_info
from ..data.waveforms import attach_waveform_cache
from ..models import create_model, metadata
from ..utils.cpu import configure_threads, load_average, usable_cpus, wait_policy_hint
from ..utils.errors import ConfigError
from ..utils.malloc import freed_memory_retained, retain_freed_memory
from ..utils.modules import unwrap_model
from .clip_checks import check_bad_fraction, check_sources, plan_feature_cache
from ..utils.jsonout import undefined_as_null, write_json
from .config import DataConfig, TrainConfig, default_num_workers
from .data import build_dataset, build_loader, check_trainable, data_fingerprint
from .distributed import (
    DistInfo,
    all_gather_list,
    all_reduce_sum,
    barrier,
    file_on_every_rank,
    init_distributed,
    same_on_every_rank,
)
from .engine import bf16_supported, freeze_batchnorm, param_groups, precise_bn, predict, train_one_epoch
from .report import EpochLogger, plot_curves
from .tasks import make_task

__all__ = ["FitResult", "FoldsResult", "fit", "fit_folds", "load_init_weights", "seed_everything"]

_log = logging.getLogger(__name__)

EpochHook = Callable[[int, dict[str, Any]], None]
#: ``plan(first_epoch_seconds) -> epochs``: the run's number of epochs, chosen after its first epoch
EpochPlan = Callable[[float], int]


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        best: best validation ``select_metric``.
        best_epoch: the 1-based epoch that reached it (``best.pt``).
        history: one row per epoch, as in ``log.csv``.
        model: the trained model after the last epoch (unwrapped, training form).
        run_dir: the run directory.
        val_clips, val_bad_clips: validation clips scored at the best epoch, and those that could not be read.
    """

    best: float
    best_epoch: int
    history: list[dict[str, Any]]
    model: nn.Module
    run_dir: Path
    val_clips: int = 0
    val_bad_clips: int = 0


@dataclass
class FoldsResult:
    """What :func:`fit_folds` returns for a cross-validated recipe: one :class:`FitResult` per fold."""

    select_metric: str
    folds: dict[int, FitResult] = field(default_factory=dict)

    @property
    def best(self) -> float:
        """The mean over folds of each fold's best validation metric."""
        return sum(r.best for r in self.folds.values()) / max(1, len(self.folds))

    @property
    def val_clips(self) -> int:
        """Validation clips scored, summed over folds."""
        return sum(r.val_clips for r in self.folds.values())

    @property
    def val_bad_clips(self) -> int:
        """Validation clips that could not be read, summed over folds."""
        return sum(r.val_bad_clips for r in self.folds.values())


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_init_weights(model: nn.Module, path: str, labels: Any = None) -> int:
    """Load every weight except the head's from ``path`` into ``model``; the head is re-initialised.

    Head rows of classes that the checkpoint and ``labels`` (the new dataset's class names) share are
    copied by name, so fine-tuning on an overlapping label set keeps what the model knew of those classes.
    The backbone must match exactly (same keys and shapes), otherwise ``ValueError`` names the
    differences: a fused (inference-form) checkpoint, for instance, cannot start a fine-tuning run.
    Returns the number of tensors loaded.
    """
    pretrained = load(path, form="training")
    source = {k: v for k, v in pretrained.state_dict().items() if not k.startswith("head.")}
    target = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    missing = sorted(set(target) - set(source))
    unexpected = sorted(set(source) - set(target))
    wrong = sorted(k for k in set(source) & set(target) if source[k].shape != target[k].shape)
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"weights in {path!r} do not fit the model's backbone: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, shape mismatch {wrong[:5]}"
        )
    # the head keeps the fresh initialisation it got when the model was built for this dataset
    model.load_state_dict(source, strict=False)
    kept = _copy_head_rows(pretrained, model, metadata(pretrained).labels, labels)
    _log.info("initialised %d tensors from %s (head re-initialised, %d classes kept by name)", len(source), path, kept)
    return len(source)


@torch.no_grad()
def _copy_head_rows(source: nn.Module, target: nn.Module, old: Any, new: Any) -> int:
    """Copy the linear-head rows of the classes ``old`` and ``new`` share (single-head models only)."""
    src, dst = source.get_classifier(), target.get_classifier()  # type: ignore[operator]
    if not (isinstance(old, list) and isinstance(new, list)) or not isinstance(src, nn.Linear):
        return 0
    if not isinstance(dst, nn.Linear) or src.in_features != dst.in_features:
        return 0
    index = {name: i for i, name in enumerate(old)}
    shared = [(index[name], j) for j, name in enumerate(new) if name in index]
    for i, j in shared:
        dst.weight[j] = src.weight[i]
        dst.bias[j] = src.bias[i]
    return len(shared)


def _gather_rng(info: DistInfo) -> list[dict[str, Any]]:
    state = capture_rng_state()
    if not info.distributed:
        return [state]
    states: list[Any] = [None] * info.world_size
    dist.all_gather_object(states, state)
    return states


def _checkpoint_state(
    model: nn.Module, optimizer: torch.optim.Optimizer, cfg: TrainConfig, epoch: int, extra: dict[str, Any]
) -> dict[str, Any]:
    return {
        "model": unwrap_model(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": {"epoch": epoch, "lr_steps": list(cfg.optim.lr_steps), "lr_factors": list(cfg.optim.lr_factors)},
        "epoch": epoch,
        "config": cfg.to_dict(),
        **extra,
    }


def _resolve_amp(cfg: TrainConfig, device: torch.device) -> bool:
    if cfg.amp and not bf16_supported(device):
        _log.warning("bf16 autocast is not supported on %s: training in float32", device)
        return False
    return cfg.amp


def _build_model(cfg: TrainConfig, num_classes: Any, labels: Any, init: bool) -> nn.Module:
    model = create_model(cfg.model, num_classes=num_classes, **cfg.model_args)
    if init and cfg.init_from:
        load_init_weights(model, cfg.init_from, labels)
    if cfg.freezes_bn():
        n = freeze_batchnorm(model)
        _log.info("BatchNorm: %d layers frozen, the stem's trained (fine-tuning from %s)", n, cfg.init_from)
    elif cfg.optim.freeze_bn and not cfg.init_from:
        _log.warning(
            "BatchNorm: every layer trained: optim.freeze_bn=true is for fine-tuning, and this run starts from "
            "scratch (no init_from), where frozen BatchNorm would never learn its statistics"
        )
    else:
        why = "training from scratch" if not cfg.init_from else "optim.freeze_bn=false"
        _log.info("BatchNorm: every layer trained (%s)", why)
    return model


def _restore(
    path: Path, cfg: TrainConfig, num_classes: Any, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
) -> dict[str, Any]:
    """Load ``last.pt`` into ``model`` and ``optimizer``; return the loop state it holds."""
    ckpt = load_checkpoint(path, map_location=device)
    stored = (ckpt["config"].get("model"), ckpt.get("num_classes"))
    if stored != (cfg.model, num_classes):
        raise CheckpointError(
            f"--resume: {path} holds {stored[0]} with {stored[1]} classes, but this run builds {cfg.model} with "
            f"{num_classes} classes; use another --out, or drop --resume to start over"
        )
    load_state_strict(unwrap_model(model), ckpt["model"], f"--resume: {path}", "this run's model")
    optimizer.load_state_dict(ckpt["optimizer"])
    partial = ckpt.get("partial")
    if partial:
        _log.info("resuming %s in epoch %d after step %d", path, ckpt["epoch"] + 1, partial[0]["step"])
    else:
        _log.info("resuming %s after epoch %d", path, ckpt["epoch"])
    return {**{k: ckpt[k] for k in ("epoch", "best", "best_epoch", "history", "rng")}, "partial": partial}


def _preflight(cfg: TrainConfig) -> TrainConfig:
    """Checks that need no data (model, init_from, data root), before anything is scanned; absolute paths."""
    cfg = cfg.with_absolute_paths()
    if cfg.init_from:
        resolve(cfg.init_from)  # raises naming what was found and what is accepted
    if dataset_info(cfg.data.dataset).needs_root and not cfg.data.root:
        raise ConfigError(f"data.root is not set: pass --set data.root=/path/to/{cfg.data.dataset}")
    return cfg


def _setup_cpu(device: torch.device, workers: int, is_main: bool) -> None:
    """Cap torch's threads at the usable CPUs and say, once, how the CPUs are used and whether they are busy."""
    threads = configure_threads() if device.type == "cpu" else torch.get_num_threads()
    if device.type == "cpu":
        # freed activations stay in the heap for the next step instead of page-faulting back in each step
        # (2.3-2.5x the paper model's step at batch 32; BENCHMARKS.md, "Training speed")
        retain_freed_memory()
    if not is_main:
        return
    hint = wait_policy_hint()
    if hint:
        _log.warning(hint)
    cpus, load = usable_cpus(), load_average()
    _log.info(
        "CPU: %d usable, %d torch threads, %d data workers, OMP_WAIT_POLICY=%s, freed memory kept up to %s MiB, "
        "1-min load average %s",
        cpus, threads, workers, os.environ.get("OMP_WAIT_POLICY", "unset"), freed_memory_retained() or "0",
        "n/a" if load is None else f"{load:.1f}",
    )  # fmt: skip
    if load is not None and load > cpus:
        _log.warning(
            "other processes are using the CPUs (load average %.1f on %d CPUs): epochs will take longer than on an "
            "idle machine", load, cpus,
        )  # fmt: skip


def channels_last(setting: bool | None, device: torch.device) -> bool:
    """Whether the trainer runs the model channels-last: the ``channels_last`` setting, or by default
    (``None``) on the CPU only (on a GPU, cuDNN's depthwise kernels are faster in NCHW)."""
    return device.type == "cpu" if setting is None else bool(setting)


def _cache_waveforms(data: DataConfig, bundles: list[Any]) -> None:
    datasets = [b.dataset for b in bundles if isinstance(b.dataset, AudioClipDataset) and b.dataset.cache is None]
    if datasets:
        attach_waveform_cache(datasets, data.cache_waveforms, data.waveform_cache_mb)


def _validate(
    net: nn.Module, cfg: TrainConfig, train_loader: Any, val_loader: Any, task: Any, device: torch.device, amp: bool,
    progress: bool,
) -> dict[str, float]:  # fmt: skip
    """Precise-BN (if configured), then the validation metrics, with ``clips`` (scored) and ``bad_clips``."""
    if cfg.precise_bn_batches:
        precise_bn(net, train_loader, cfg.precise_bn_batches, device, cfg.freezes_bn(), amp)
    prediction = predict(net, val_loader, task, device, amp=amp, progress=progress, desc="val")
    summary = task.evaluate(prediction.scores, prediction.targets).summary
    if cfg.select_metric not in summary:
        raise ConfigError(f"select_metric {cfg.select_metric!r} is not one of {sorted(summary)}")
    bad = prediction.skipped
    if bad:
        shown = "; ".join(bad[:5]) + (f" (+{len(bad) - 5} more)" if len(bad) > 5 else "")
        _log.warning("validation: %d bad clip%s skipped: %s", len(bad), "s" if len(bad) != 1 else "", shown)
    return {**summary, "clips": float(len(prediction.indices)), "bad_clips": float(len(bad))}


class _StepCheckpoints:
    """``last.pt`` inside an epoch: every ``checkpoint_steps`` steps and after ``checkpoint_minutes`` minutes.

    Called after every training step with the epoch's progress (:func:`train_one_epoch`'s ``on_step``). The
    checkpoint holds what an epoch checkpoint holds, plus each process's progress in the epoch (``partial``);
    its ``epoch`` is the number of finished epochs. Under DDP every process takes part in writing it (the
    RNG states are gathered), so the time-based decision is agreed on by an all-reduce.
    """

    def __init__(self, cfg: TrainConfig, info: DistInfo, out: Path, model: nn.Module, optimizer: Any) -> None:
        self.cfg, self.info, self.out, self.model, self.optimizer = cfg, info, out, model, optimizer
        self.steps, self.seconds = cfg.checkpoint_steps, cfg.checkpoint_minutes * 60
        self.loop: dict[str, Any] = {}  # epoch, steps in it, best, best_epoch, history, static extras
        self.since = time.perf_counter()

    def start_epoch(self, **loop: Any) -> None:
        self.loop, self.since = loop, time.perf_counter()

    def _due(self, step: int) -> bool:
        due = self.steps > 0 and step % self.steps == 0
        if self.seconds > 0:
            late = time.perf_counter() - self.since >= self.seconds
            if self.info.distributed:
                late = all_reduce_sum([float(late)], self.info.device)[0] > 0
            due = due or late
        return due and step < self.loop["epoch_steps"]  # the epoch's own checkpoint follows its last step

    def __call__(self, progress: dict[str, Any]) -> None:
        if not self._due(progress["step"]):
            return
        partial = all_gather_list([progress])
        rng = _gather_rng(self.info)
        if self.info.is_main:
            loop = self.loop
            extra = {**loop["static"], "best": loop["best"], "best_epoch": loop["best_epoch"],
                     "history": loop["history"], "rng": rng, "partial": partial}  # fmt: skip
            save_checkpoint(_checkpoint_state(self.model, self.optimizer, self.cfg, loop["epoch"], extra),
                            self.out / "last.pt")  # fmt: skip
            _log.info("checkpoint in epoch %d at step %d of %d: %s", loop["epoch"] + 1, progress["step"],
                      loop["epoch_steps"], self.out / "last.pt")  # fmt: skip
        self.since = time.perf_counter()


def _write_epoch(out: Path, state: dict[str, Any], is_best: bool, logger: EpochLogger, row: dict[str, Any]) -> None:
    save_checkpoint(state, out / "last.pt")
    if is_best:  # best.pt is for evaluation and fine-tuning: no optimizer or RNG state
        save_checkpoint({k: v for k, v in state.items() if k not in ("optimizer", "rng")}, out / "best.pt")
    logger.log(row)
    _log.info("epoch %d: %s", row["epoch"], ", ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float)))


def _data(cfg: TrainConfig, info: DistInfo) -> tuple[Any, Any, Any, Any, Any]:
    """Training and validation bundles, checked (classes, audio present, cache sizes), and their loaders."""
    d = cfg.data
    train = build_dataset(d, d.train_subset, training=True, seed=cfg.seed)
    val = build_dataset(d, d.val_subset, training=False, seed=cfg.seed)
    check_trainable(train, val)
    if info.distributed:  # several machines: each builds its own index of the clips
        fingerprints = {f"the {b.subset} subset": data_fingerprint(b) for b in (train, val)}
        same_on_every_rank(fingerprints, "every machine needs the same data at the same data.root")
    for bundle in (train, val):
        check_sources(bundle, d)
    _cache_waveforms(d, [train, val])
    if info.is_main:
        plan_feature_cache(d, [train, val])
    train_loader, train_sampler = build_loader(train.dataset, d.batch_size, True, d.num_workers, info, cfg.seed)
    val_loader, _ = build_loader(val.dataset, d.eval_batch_size or d.batch_size, False, d.num_workers, info, cfg.seed)
    return train, val, train_loader, train_sampler, val_loader


def fit(
    cfg: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    progress: bool | None = None,
    on_epoch_end: EpochHook | None = None,
    plan_epochs: EpochPlan | None = None,
) -> FitResult:
    """Train ``cfg`` into ``out_dir``.

    Args:
        cfg: the experiment.
        out_dir: run directory (created).
        resume: continue from ``out_dir/last.pt`` when it exists (written after an epoch or inside one).
        progress: progress bars on the main process: ``None`` on a terminal only, ``True``/``False`` always/never.
        on_epoch_end: called as ``hook(epoch, row)`` on every process after each epoch's checkpoint.
        plan_epochs: for a time budget: called once, after the first epoch of a new run, with that
            epoch's wall seconds; it returns the run's number of epochs (at least 1, at most
            ``cfg.optim.epochs``). ``lr_steps`` and ``eval_every`` are scaled by the same ratio, and
            ``config.yaml`` and the checkpoints record the result. It is not called when resuming:
            resume with the schedule of the run's ``config.yaml``.

    Raises:
        DataError: more than ``data.max_bad_fraction`` of the training or validation clips are bad, before
            the first epoch (audio missing) or after any epoch (could not be read).
    """
    cfg = _preflight(cfg)
    out = Path(out_dir)
    info = init_distributed(cfg.device, cfg.dist_backend)
    device, amp = info.device, _resolve_amp(cfg, info.device)
    progress = progress if info.is_main else False
    seed_everything(cfg.seed)
    d = cfg.data
    _setup_cpu(device, default_num_workers() if d.num_workers is None else d.num_workers, info.is_main)
    train, val, train_loader, train_sampler, val_loader = _data(cfg, info)
    task = make_task(train.num_classes, train.labels, train.multi_label)

    last_path = out / "last.pt"
    resuming = resume and file_on_every_rank(last_path, device)
    if not resuming and last_path.is_file():
        _log.warning("%s exists: starting a new run over it (--resume continues it)", last_path)
    model = _build_model(cfg, train.num_classes, train.labels, init=not resuming).to(device)
    if channels_last(cfg.channels_last, device):
        model = model.to(memory_format=torch.channels_last)  # convs then emit NHWC activations
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # training crops share one shape: cuDNN picks its kernels once
    optimizer = torch.optim.SGD(
        param_groups(model, cfg.optim.weight_decay),
        lr=cfg.optim.lr,
        momentum=cfg.optim.momentum,
        nesterov=cfg.optim.nesterov,
    )
    state = {"epoch": 0, "best": float("-inf"), "best_epoch": -1, "history": [], "rng": None, "partial": None}
    if resuming:
        state = _restore(last_path, cfg, train.num_classes, model, optimizer, device)
    start_epoch, best, best_epoch = state["epoch"], state["best"], state["best_epoch"]
    history, rng_states, partial = list(state["history"]), state["rng"], state["partial"]
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    net = model
    if info.distributed:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    logger = EpochLogger(out, start_epoch) if info.is_main else None
    if rng_states is not None:
        restore_rng_state(rng_states[info.rank] if len(rng_states) == info.world_size else rng_states[0])
    else:
        seed_everything(cfg.seed + info.rank)  # different augmentation noise on each process

    extra_static = {"labels": train.labels, "num_classes": train.num_classes, "frontend": train.frontend.to_dict()}
    checkpoints = _StepCheckpoints(cfg, info, out, model, optimizer)
    epoch = start_epoch
    while epoch < cfg.optim.epochs:
        tic = time.perf_counter()
        lr = cfg.optim.lr_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        train_sampler.set_epoch(epoch)
        if hasattr(train.dataset, "set_epoch"):
            train.dataset.set_epoch(epoch)  # per-epoch crops and SpecAugment draws
        epoch_steps = len(train_loader)
        resumed = partial[info.rank] if partial and len(partial) == info.world_size else None
        if resumed:  # inside the epoch: the batches after the checkpoint's step, as an uninterrupted run
            train_sampler.skip_next(resumed["step"] * train_loader.batch_size)
        partial = None
        checkpoints.start_epoch(epoch=epoch, epoch_steps=epoch_steps, best=best, best_epoch=best_epoch,
                                history=history, static=extra_static)  # fmt: skip
        stats = train_one_epoch(net, train_loader, optimizer, task, device, epoch, cfg.freezes_bn(), amp, progress,
                                cfg.log_every_seconds, resumed, checkpoints)  # fmt: skip
        check_bad_fraction(stats["bad_clips"], len(train.dataset), "training", epoch + 1, d)  # type: ignore[arg-type]
        if plan_epochs is not None and epoch == 0 and not resumed:
            cfg = _replan(cfg, plan_epochs, time.perf_counter() - tic, info, out)
        row: dict[str, Any] = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in stats.items()}}
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.optim.epochs:
            summary = _validate(net, cfg, train_loader, val_loader, task, device, amp, progress)
            check_bad_fraction(summary["bad_clips"], len(val.dataset), "validation", epoch + 1, d)  # type: ignore
            row.update({f"val_{k}": v for k, v in summary.items()})
            if summary[cfg.select_metric] > best:
                best, best_epoch = summary[cfg.select_metric], epoch + 1
        history.append(row)
        rng = _gather_rng(info)  # after everything that draws random numbers this epoch
        if info.is_main:
            extra = {**extra_static, "best": best, "best_epoch": best_epoch, "history": history, "rng": rng}
            ckpt = _checkpoint_state(model, optimizer, cfg, epoch + 1, extra)
            _write_epoch(out, ckpt, best_epoch == epoch + 1, logger, row)  # type: ignore[arg-type]
        barrier()
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, row)
        epoch += 1
    if info.is_main:
        logger.close()  # type: ignore[union-attr]
        plot_curves(history, out / "curves.png")
        if cfg.export_pretrained and (out / "best.pt").is_file():
            _export_best(out, train.labels, train.frontend.to_dict(), cfg)
    barrier()
    at_best = history[best_epoch - 1] if 0 < best_epoch <= len(history) else {}
    return FitResult(best, best_epoch, history, model, out, int(at_best.get("val_clips", 0)),
                     int(at_best.get("val_bad_clips", 0)))  # fmt: skip


def _replan(cfg: TrainConfig, plan: EpochPlan, seconds: float, info: DistInfo, out: Path) -> TrainConfig:
    """``cfg`` with the epochs ``plan`` chose after a first epoch of ``seconds`` (the same on every process)."""
    wanted = torch.tensor([float(plan(seconds)) if info.is_main else 0.0])
    if info.distributed:
        dist.broadcast(wanted, src=0)
    old = cfg.optim.epochs
    epochs = int(min(old, max(1, wanted.item())))
    ratio = epochs / old
    optim = replace(cfg.optim, epochs=epochs, lr_steps=[max(1, round(s * ratio)) for s in cfg.optim.lr_steps])
    cfg = replace(cfg, optim=optim, eval_every=max(1, round(cfg.eval_every * ratio)))
    if info.is_main:
        _log.info("first epoch took %.1f s: training for %d of at most %d epochs (learning-rate steps at %s)",
                  seconds, epochs, old, optim.lr_steps)  # fmt: skip
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return cfg


def _export_best(out: Path, labels: Any, frontend: dict[str, Any], cfg: TrainConfig) -> None:
    model = load(out / "best.pt")  # keeps the training config, so `arinext eval RUN/pretrained` finds the data
    save_pretrained(model, out / "pretrained", labels=labels, frontend=frontend)
    _log.info("exported the best model (epoch %d) to %s", metadata(model).epoch, out / "pretrained")


def fit_folds(
    cfg: TrainConfig, out_dir: str | Path, resume: bool = False, progress: bool | None = None
) -> FitResult | FoldsResult:
    """One :func:`fit` per ``cfg.data.folds`` entry ``k`` (as ``data.dataset_args.fold=k``) into
    ``out_dir/fold{k}``; writes ``folds.json`` with each fold's best validation metric and their mean
    (UrbanSound8K's 10-fold protocol). Without folds, a plain :func:`fit`."""
    if not cfg.data.folds:
        return fit(cfg, out_dir, resume, progress)
    result = FoldsResult(cfg.select_metric)
    for k in cfg.data.folds:
        _log.info("fold %d of %s", k, cfg.data.folds)
        # each fold's stored config names its fold, so `arinext eval RUN/fold3/best.pt` tests fold 3
        fold_cfg = copy.deepcopy(cfg)
        fold_cfg.data.folds = []
        fold_cfg.data.dataset_args["fold"] = k
        result.folds[k] = fit(fold_cfg, Path(out_dir) / f"fold{k}", resume, progress)
    summary = {
        "select_metric": cfg.select_metric,
        "folds": {str(k): r.best for k, r in result.folds.items()},
        "mean": result.best,
    }
    if int(torch.distributed.get_rank() if dist.is_initialized() else 0) == 0:
        write_json(Path(out_dir) / "folds.json", undefined_as_null(summary), indent=2)
    return result
