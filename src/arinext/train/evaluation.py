"""Evaluate a training checkpoint in its training form and its fused (re-parameterized) form.

Both forms see the same clips and views; their view-averaged probabilities must agree, and the
report says by how much (``max_abs_prob_diff``). Output directory::

    metrics.json            {"training_form": {...}, "fused": {...}, "max_abs_prob_diff": ..., ...}
    per_class.csv           per-class support, accuracy, AP, AUC (per_class_verb.csv, ... for several heads)
    confusion.png           row-normalised confusion matrix (confusion_verb.png, ...)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..layers.reparam import reparameterize_model
from ..models import create_model
from .checkpoint import load_checkpoint
from .config import apply_overrides, config_from_dict
from .data import build_dataset, build_loader
from .distributed import init_distributed
from .engine import bf16_supported, predict
from .report import write_eval_report
from .tasks import make_task

__all__ = ["evaluate_checkpoint"]

_log = logging.getLogger(__name__)


def _max_diff(a: Any, b: Any) -> float:
    if isinstance(a, dict):
        return max(_max_diff(a[k], b[k]) for k in a)
    return float((a - b).abs().max()) if a.numel() else 0.0


def evaluate_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    overrides: list[str] | None = None,
    subset: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Multi-view test of ``checkpoint`` (a ``last.pt``/``best.pt``) on its recipe's test subset.

    Args:
        checkpoint: training checkpoint; its stored config says which data and front end to use.
        out_dir: where ``metrics.json``, ``per_class*.csv`` and ``confusion*.png`` go.
        overrides: ``--set`` style changes to the stored config (``data.root=...``, ``data.test_views=5``).
        subset: evaluate this subset instead of the config's ``data.test_subset``.
        progress: tqdm progress bars.

    Returns:
        The content of ``metrics.json``.

    Raises:
        ValueError: if the training and fused forms disagree on the predicted classes' probabilities
            by more than 1e-3 (a broken re-parameterization).
    """
    ckpt = load_checkpoint(checkpoint)
    cfg = config_from_dict(apply_overrides(ckpt["config"], overrides or []))
    info = init_distributed(cfg.device)
    subset = subset or cfg.data.test_subset
    bundle = build_dataset(cfg.data, subset, training=False, seed=cfg.seed)
    if bundle.num_classes != ckpt["num_classes"]:
        raise ValueError(
            f"checkpoint {str(checkpoint)!r} has {ckpt['num_classes']} classes but {cfg.data.dataset!r}/{subset} "
            f"has {bundle.num_classes}"
        )
    d = cfg.data
    loader, _ = build_loader(bundle.dataset, d.eval_batch_size or d.batch_size, False, d.num_workers, info, cfg.seed)
    task = make_task(bundle.num_classes, ckpt.get("labels", bundle.labels), bundle.multi_label)
    model = create_model(cfg.model, num_classes=ckpt["num_classes"], **cfg.model_args)
    model.load_state_dict(ckpt["model"])
    model.to(info.device).eval()
    fused = reparameterize_model(model)
    amp = cfg.amp and bf16_supported(info.device)
    scores, results = {}, {}
    for name, net in (("training_form", model), ("fused", fused)):
        probs, targets, _ = predict(net, loader, task, info.device, amp, progress, desc=name)
        scores[name] = probs
        results[name] = task.evaluate(probs, targets)
    diff = _max_diff(scores["training_form"], scores["fused"])
    extra = {
        "max_abs_prob_diff": diff,
        "checkpoint": str(checkpoint),
        "epoch": int(ckpt["epoch"]),
        "dataset": cfg.data.dataset,
        "subset": subset,
        "views": bundle.views,
        "clips": len(bundle.dataset),
    }
    content = write_eval_report(results, out_dir, extra) if info.is_main else {}
    tol = 1e-2 if amp else 1e-3
    if diff > tol:
        raise ValueError(f"training and fused forms disagree: max |dp| = {diff:.3g} > {tol:g}")
    _log.info("%s: %s", subset, {k: round(v, 4) for k, v in results["training_form"].summary.items()})
    return content
