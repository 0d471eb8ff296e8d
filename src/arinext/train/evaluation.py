"""Evaluate a checkpoint in its training form and its fused (re-parameterized) form.

Any checkpoint :func:`arinext.checkpoints.load` accepts works. The data comes from the training recipe
stored with it (a run's ``best.pt`` and its ``pretrained/`` directory both carry it), changed by
``--set`` overrides; a checkpoint without one (an authors' ``.pyth``) needs ``data.dataset`` and
``data.root``. The dataset's classes are matched to the model's labels **by name**: a class with clips
that the model does not know is an error.

Both forms see the same clips and views; their view-averaged probabilities must agree, and the report
says by how much (``max_abs_prob_diff``). Every clip is accounted for: before anything is decoded, the audio of every clip is looked for (as
before training); with ``data.on_bad_clip=error`` (the default here) a missing or unreadable clip stops the
evaluation naming the file; with ``skip`` the skipped clips are counted and listed in ``metrics.json``,
``clips`` is the number actually scored, and more than ``data.max_bad_fraction`` missing stops it. Output::

    metrics.json            {"training_form": {...}, "fused": {...}, "max_abs_prob_diff": ..., "clips": ...,
                             "by": {COLUMN: {value: {"clips", "top1"}}} with --by,
                             "heldout": {...}, "holdout": {...}, "gap_top1": ... for a leave-one-source-out run}
    heldout/                the held-out source's own report (a leave-one-source-out run)
    per_class.csv           per-class support, accuracy, AP, AUC (per_class_verb.csv, ... for several heads)
    confusion.png           confusion matrix, counts and row-normalised (confusion_verb.png, ...)

An unlabelled subset (the EPIC-Sounds and EPIC-KITCHENS-100 challenge test sets, the EPIC recipes' default
``testing``) has nothing to score against: the evaluation writes the challenge's submission file
(``submission.zip`` holding ``test.json``, :mod:`arinext.train.submission`) with the fused model's
view-averaged probabilities of every row, and ``metrics.json`` holds the clip counts, the forms'
probability difference and the submission's path, without metrics.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoints import CheckpointError, load
from ..data import Manifest, dataset_info
from ..layers.reparam import fold_state, reparameterize_model
from ..models import metadata
from ..utils.errors import ConfigError, DataError
from .clip_checks import check_sources
from .config import TrainConfig, apply_overrides, config_from_dict
from .data import build_dataset, build_loader, holdout_split
from .distributed import init_distributed
from .engine import bf16_supported, predict
from .report import write_eval_report
from .submission import make_submission, supervision_levels, write_submission
from .tasks import EvalResult, make_task

__all__ = ["evaluate_checkpoint", "evaluation_config"]

_log = logging.getLogger(__name__)


def _max_diff(a: Any, b: Any) -> float:
    if isinstance(a, dict):
        return max(_max_diff(a[k], b[k]) for k in a)
    return float((a - b).abs().max()) if a.numel() else 0.0


def evaluation_config(model: nn.Module, overrides: list[str] | None = None) -> TrainConfig:
    """The recipe stored with ``model`` (or the defaults), with ``overrides``; evaluation stops on bad clips
    unless ``data.on_bad_clip=skip`` is given."""
    info = metadata(model)
    stored = info.recipe
    values = dict(stored or {})
    if not stored:
        values = {"model": info.name}
    values = apply_overrides(values, ["data.on_bad_clip=error", *(overrides or [])])
    cfg = config_from_dict(values)
    if not cfg.data.root and dataset_info(cfg.data.dataset).needs_root:
        source = info.path
        raise ConfigError(
            f"{source}: the checkpoint stores no training recipe; pass --set data.dataset=NAME --set data.root=DIR"
        )
    return cfg


def _by_source(bundle: Any, prediction: Any, column: str) -> dict[str, dict[str, float | int]]:
    """Top-1 per value of a metadata column (single-label tasks)."""
    from ..data.holdout import per_source_accuracy

    if not isinstance(prediction.scores, torch.Tensor) or prediction.targets.dim() != 1:
        raise ConfigError(f"--by {column}: per-source accuracy needs a single-label, single-head task")
    records = [bundle.manifest.records[int(i)] for i in prediction.indices]
    correct = (prediction.scores.argmax(-1) == prediction.targets).tolist()
    if all(r.value(column) is None for r in records):
        found = sorted({k for r in records for k, _ in r.meta})
        raise DataError(f"--by {column}: no clip has the metadata column {column!r}; columns found: {found}")
    return per_source_accuracy(records, correct, column)


@dataclass
class _SubsetRun:
    """Both forms on one subset: their results (none for an unlabelled subset), what ``metrics.json`` says
    about the subset, the fused form's prediction and the subset's manifest."""

    results: dict[str, EvalResult]
    about: dict[str, Any]
    prediction: Any
    manifest: Manifest | None


def _evaluate_subset(
    model: nn.Module, cfg: TrainConfig, labels: Any, subset: str, info: Any, progress: bool | None, by: str | None
) -> _SubsetRun:
    """Both forms on one subset: their results, and what ``metrics.json`` says about the subset (clips,
    skipped clips, views, the forms' largest probability difference, the ``by`` table)."""
    bundle = build_dataset(cfg.data, subset, training=False, seed=cfg.seed, labels=labels)
    check_sources(bundle, cfg.data)  # missing audio: found before anything is decoded, counted like in training
    labelled = bundle.manifest is None or bundle.manifest.labelled
    if by and not labelled:
        raise ConfigError(f"--by {by}: the {subset} subset is unlabelled; there is no accuracy to split")
    d = cfg.data
    loader, _ = build_loader(bundle.dataset, d.eval_batch_size or d.batch_size, False, d.num_workers, info, cfg.seed)
    task = make_task(bundle.num_classes, bundle.labels, bundle.multi_label)
    forms = {"training_form": model, "fused": reparameterize_model(model)}
    if fold_state(model) is not None:  # stored fused: there is no training form to compare with
        forms = {"fused": model}
    amp = cfg.amp and bf16_supported(info.device)
    scores, results, skipped, by_source = {}, {}, [], {}
    for name, net in forms.items():
        prediction = predict(net, loader, task, info.device, amp, progress, desc=f"{name} ({subset})")
        scores[name] = prediction.scores
        if labelled:
            results[name] = task.evaluate(prediction.scores, prediction.targets)
        skipped = prediction.skipped
        if by and not by_source:
            by_source = _by_source(bundle, prediction, by)
    diff = _max_diff(scores["training_form"], scores["fused"]) if len(forms) == 2 else 0.0
    if skipped:
        _log.warning("%d clip(s) skipped as unreadable, e.g. %s", len(skipped), "; ".join(skipped[:3]))
    tol = 1e-2 if amp else 1e-3
    if diff > tol:
        raise ValueError(f"training and fused forms disagree: max |dp| = {diff:.3g} > {tol:g}")
    about: dict[str, Any] = {
        "max_abs_prob_diff": diff,
        "subset": subset,
        "views": bundle.views,
        "clips": len(bundle.dataset) - len(skipped),  # type: ignore[arg-type]
        "skipped_clips": len(skipped),
        "skipped_examples": skipped[:10],
    }
    if by:
        about["by"] = {by: by_source}
    return _SubsetRun(results, about, prediction, bundle.manifest)  # the last form's prediction: the fused one


def _submit(
    run: _SubsetRun, cfg: TrainConfig, labels: Any, out_dir: str | Path, sls: tuple[int, int, int] | None
) -> dict[str, Any]:
    """Write the challenge submission of an unlabelled subset and a ``metrics.json`` that says where it is."""
    assert run.manifest is not None
    levels = sls or supervision_levels(cfg.init_from)
    p = run.prediction
    submission = make_submission(cfg.data.dataset, run.manifest, p.scores, p.indices, labels, levels)
    path = write_submission(submission, Path(out_dir) / "submission.zip")
    levels_named = {k: submission[k] for k in ("sls_pt", "sls_tl", "sls_td")}
    content = {**run.about, "labelled": False, "submission": str(path), "challenge": submission["challenge"],
               "rows": len(submission["results"]), **levels_named}  # fmt: skip
    (Path(out_dir) / "metrics.json").write_text(json.dumps(content, indent=2, sort_keys=True, allow_nan=False) + "\n")
    _log.info("%s is unlabelled: wrote %s (%d rows, %s)", run.about["subset"], path, content["rows"], levels_named)
    return content


def evaluate_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    overrides: list[str] | None = None,
    subset: str | None = None,
    progress: bool | None = None,
    by: str | None = None,
    sls: tuple[int, int, int] | None = None,
) -> dict[str, Any]:
    """Multi-view test of ``checkpoint`` on its recipe's test subset (training and fused form).

    Args:
        checkpoint: run directory, ``best.pt``/``last.pt``, save_pretrained directory or authors' ``.pyth``.
        out_dir: where ``metrics.json``, ``per_class*.csv`` and ``confusion*.png`` go.
        overrides: ``--set`` style changes to the stored config (``data.root=...``, ``data.test_views=5``).
        subset: evaluate this subset instead of the config's ``data.test_subset``.
        progress: progress bars (``None``: on a terminal only).
        by: a metadata column (``engine``, ``soundfont_family``, a CSV column): also report top-1 per
            value of it (``metrics.json`` ``"by"``).
        sls: for an unlabelled subset, the supervision levels ``(pt, tl, td)`` the submission declares;
            default :func:`arinext.train.submission.supervision_levels` of the recipe.

    With ``data.holdout`` in the recipe (a leave-one-source-out run), the in-source test subset and the
    held-out source are both evaluated: ``metrics.json`` gets ``"heldout"`` (its metrics and clip
    count), ``"holdout"`` (the split) and ``"gap_top1"`` (in-source minus held-out top-1), and the
    held-out source's own report goes to ``OUT/heldout/``.

    An unlabelled subset gives ``OUT/submission.zip`` in its challenge's format instead of metrics (see
    the module docstring).

    Returns:
        The content of ``metrics.json``.

    Raises:
        ValueError: a class of the data is not among the model's labels, or the training and fused
            forms disagree on the probabilities by more than 1e-3 (a broken re-parameterization).
    """
    model = load(checkpoint)
    labels = metadata(model).labels
    if labels is None:
        raise CheckpointError(
            f"{checkpoint}: the checkpoint stores no class names, so its outputs cannot be matched to the data's "
            "classes; save it with arinext.save_pretrained(model, DIR, labels=[...]) first"
        )
    cfg = evaluation_config(model, overrides)
    info = init_distributed(cfg.device, cfg.dist_backend)
    subset = subset or cfg.data.test_subset
    model.to(info.device).eval()
    first_run = _evaluate_subset(model, cfg, labels, subset, info, progress, by)
    if first_run.manifest is not None and not first_run.manifest.labelled:
        return _submit(first_run, cfg, labels, out_dir, sls) if info.is_main else {}
    results, about = first_run.results, first_run.about
    run = {"checkpoint": str(checkpoint), "epoch": metadata(model).epoch, "dataset": cfg.data.dataset}
    extra = {**run, **about}
    if cfg.data.holdout and subset != "heldout":
        held_run = _evaluate_subset(model, cfg, labels, "heldout", info, progress, by)
        held, held_about = held_run.results, held_run.about
        held_content = write_eval_report(held, Path(out_dir) / "heldout", {**run, **held_about}) if info.is_main else {}
        first = next(iter(results))
        extra.update(
            heldout={k: held_content.get(k) for k in (*held, "clips", "skipped_clips", "by") if k in held_content},
            holdout=holdout_split(cfg.data).summary(),
            gap_top1=results[first].summary["top1"] - held[first].summary["top1"],
        )
    content = write_eval_report(results, out_dir, extra) if info.is_main else {}
    _log.info("%s: %s", subset, {k: round(v, 4) for k, v in results[next(iter(results))].summary.items()})
    return content
