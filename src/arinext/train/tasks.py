"""Loss and metrics per kind of task, so the training loop never branches on the target type.

- :class:`SingleLabelTask`: one class per clip, cross-entropy (VGG-Sound, EPIC-SOUNDS, Speech Commands,
  UrbanSound8K, NSynth, folder/CSV data).
- :class:`MultiLabelTask`: multi-hot targets, binary cross-entropy on each class.
- :class:`MultiHeadTask`: several single-label heads (EPIC-KITCHENS-100 ``{"verb", "noun"}``); loss is
  the mean of the heads' cross-entropies, metrics per head plus "action" (all heads right).

:func:`make_task` picks one from a dataset's ``num_classes`` / ``multi_label``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import torch
import torch.nn.functional as F

from ..layers.classifier import MultiHeadOutput
from .metrics import (
    average_precision,
    confusion_matrix,
    d_prime,
    mean_auc,
    mean_average_precision,
    per_class_accuracy,
    roc_auc,
    topk_accuracy,
)

__all__ = ["EvalResult", "MultiHeadTask", "MultiLabelTask", "SingleLabelTask", "Task", "make_task"]

#: What a task's model returns: logits ``(B, C)``, or a :class:`~arinext.layers.MultiHeadOutput`.
Out = TypeVar("Out", torch.Tensor, MultiHeadOutput)
Heads = dict[str, torch.Tensor]


@dataclass
class EvalResult:
    """Metrics of one evaluation.

    Attributes:
        summary: scalar metrics, e.g. ``{"top1": .., "top5": .., "mean_class_acc": .., "mAP": ..}``.
        per_class: per head (``"class"`` for a single head), one row per class with its name and metrics.
        confusion: per head, the ``(C, C)`` confusion matrix (true x predicted); empty for multi-label.
        labels: per head, the class names.
    """

    summary: dict[str, float]
    per_class: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    confusion: dict[str, torch.Tensor] = field(default_factory=dict)
    labels: dict[str, list[str]] = field(default_factory=dict)


class Task(Generic[Out]):
    """Interface: ``loss``, ``scores`` (probabilities), ``correct`` (training accuracy) and ``evaluate``.

    ``Out`` is what the model returns: a logits tensor, or a :class:`~arinext.layers.MultiHeadOutput`.
    """

    def loss(self, outputs: Out, target: Any) -> torch.Tensor:
        raise NotImplementedError

    def scores(self, outputs: Out) -> Out:
        """Logits to probabilities (what multi-view testing averages)."""
        raise NotImplementedError

    def correct(self, outputs: Out, target: Any) -> int:
        """Number of clips of the batch counted correct (top-1) for progress reporting."""
        raise NotImplementedError

    def evaluate(self, scores: Out, target: Any) -> EvalResult:
        """Metrics of view-averaged ``scores`` against all targets of a subset."""
        raise NotImplementedError


def _names(labels: list[str] | None, n: int) -> list[str]:
    return list(labels) if labels is not None else [str(i) for i in range(n)]


def _class_row(name: str, support: int, **metrics: torch.Tensor) -> dict[str, Any]:
    """One row of a per-class table; a class without clips has no metrics (empty cells, ``null`` in JSON)."""
    values = {k: (float(v) if support > 0 and not bool(torch.isnan(v)) else None) for k, v in metrics.items()}
    return {"class": name, "support": support, **values}


def _single_label_metrics(prefix: str, scores: torch.Tensor, target: torch.Tensor, labels: list[str]) -> EvalResult:
    num_classes = scores.shape[1]
    top = topk_accuracy(scores, target, (1, 5))
    conf = confusion_matrix(scores.argmax(dim=1), target, num_classes)
    acc = per_class_accuracy(conf)
    onehot = F.one_hot(target.long(), num_classes)
    ap, auc = average_precision(scores, onehot), roc_auc(scores, onehot)
    mauc = mean_auc(scores, onehot, auc)
    summary = {
        f"{prefix}top1": top[1],
        f"{prefix}top5": top[5],
        f"{prefix}mean_class_acc": float(acc[~acc.isnan()].mean()) if (~acc.isnan()).any() else float("nan"),
        f"{prefix}mAP": mean_average_precision(scores, onehot, ap),
        f"{prefix}mAUC": mauc,
        f"{prefix}d_prime": d_prime(mauc),
    }
    support = conf.sum(dim=1)
    summary[f"{prefix}classes_with_clips"] = int((support > 0).sum())
    rows = [_class_row(labels[c], int(support[c]), accuracy=acc[c], AP=ap[c], AUC=auc[c]) for c in range(num_classes)]
    head = prefix.rstrip("_") or "class"
    return EvalResult(summary, {head: rows}, {head: conf}, {head: labels})


class SingleLabelTask(Task[torch.Tensor]):
    """One class per clip: cross-entropy; top-1/top-5, mean class accuracy, mAP, mean AUC, d'."""

    def __init__(self, labels: list[str] | None = None, num_classes: int | None = None) -> None:
        if labels is None and num_classes is None:
            raise ValueError("give labels or num_classes")
        self.labels = _names(labels, int(num_classes or 0))

    def loss(self, outputs: torch.Tensor, target: Any) -> torch.Tensor:
        return F.cross_entropy(outputs.float(), target)

    def scores(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float().softmax(dim=-1)

    def correct(self, outputs: torch.Tensor, target: Any) -> int:
        return int((outputs.argmax(dim=-1) == target).sum())

    def evaluate(self, scores: torch.Tensor, target: Any) -> EvalResult:
        return _single_label_metrics("", scores, target, self.labels)


class MultiLabelTask(Task[torch.Tensor]):
    """Multi-hot targets: per-class binary cross-entropy; mAP, mean AUC, d', precision@1."""

    def __init__(self, labels: list[str] | None = None, num_classes: int | None = None) -> None:
        if labels is None and num_classes is None:
            raise ValueError("give labels or num_classes")
        self.labels = _names(labels, int(num_classes or 0))

    def loss(self, outputs: torch.Tensor, target: Any) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(outputs.float(), target.float())

    def scores(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float().sigmoid()

    def correct(self, outputs: torch.Tensor, target: Any) -> int:
        top = outputs.argmax(dim=-1, keepdim=True)
        return int(target.gather(1, top).sum())

    def evaluate(self, scores: torch.Tensor, target: Any) -> EvalResult:
        ap, auc = average_precision(scores, target), roc_auc(scores, target)
        mauc = mean_auc(scores, target, auc)
        summary = {
            "mAP": mean_average_precision(scores, target, ap),
            "mAUC": mauc,
            "d_prime": d_prime(mauc),
            "precision_at_1": self.correct(scores, target) / max(1, target.shape[0]),
        }
        support = target.sum(dim=0)
        summary["classes_with_clips"] = int((support > 0).sum())
        rows = [_class_row(self.labels[c], int(support[c]), AP=ap[c], AUC=auc[c]) for c in range(len(self.labels))]
        return EvalResult(summary, {"class": rows}, {}, {"class": self.labels})


class MultiHeadTask(Task[MultiHeadOutput]):
    """Several single-label heads (EPIC-KITCHENS-100 verb + noun): mean of the heads' cross-entropies.

    Metrics: each head's single-label metrics prefixed ``verb_``/``noun_``, plus ``action_top1`` and
    ``action_top5``: a clip's action is right when every head is; action scores are the product of
    the heads' probabilities, as in the EPIC-KITCHENS evaluation.
    """

    def __init__(self, labels: dict[str, list[str]] | None = None, num_classes: dict[str, int] | None = None) -> None:
        if labels is not None:
            self.labels = {k: list(v) for k, v in labels.items()}
        elif num_classes is not None:
            self.labels = {k: _names(None, n) for k, n in num_classes.items()}
        else:
            raise ValueError("give labels or num_classes")

    def loss(self, outputs: MultiHeadOutput, target: Any) -> torch.Tensor:
        losses = [F.cross_entropy(outputs[k].float(), target[k]) for k in self.labels]
        return torch.stack(losses).mean()

    def scores(self, outputs: MultiHeadOutput) -> MultiHeadOutput:
        return MultiHeadOutput({k: outputs[k].float().softmax(dim=-1) for k in self.labels})

    def _all_right(self, outputs: Heads, target: Any) -> torch.Tensor:
        hits = [outputs[k].argmax(dim=-1) == target[k] for k in self.labels]
        return torch.stack(hits).all(dim=0)

    def correct(self, outputs: MultiHeadOutput, target: Any) -> int:
        return int(self._all_right(outputs, target).sum())

    def _action_top5(self, scores: Heads, target: Heads) -> float:
        # The 5 best head-class combinations of the product score lie among each head's 5 best classes.
        k = 5
        n = target[next(iter(self.labels))].shape[0]
        joint = torch.ones(n, 1, dtype=torch.float64)
        combos = torch.zeros(n, 1, 0, dtype=torch.long)
        for head in self.labels:
            top = scores[head].double().topk(min(k, scores[head].shape[1]), dim=1)
            m, kk = joint.shape[1], top.values.shape[1]
            joint = (joint[:, :, None] * top.values[:, None, :]).flatten(1)
            new = top.indices[:, None, :, None].expand(n, m, kk, 1)
            combos = torch.cat([combos[:, :, None, :].expand(n, m, kk, combos.shape[2]), new], dim=3).flatten(1, 2)
        best = joint.topk(min(k, joint.shape[1]), dim=1).indices
        chosen = combos.gather(1, best[..., None].expand(n, best.shape[1], combos.shape[2]))
        truth = torch.stack([target[h].long() for h in self.labels], dim=1)
        hit = (chosen == truth[:, None, :]).all(dim=2).any(dim=1)
        return hit.float().mean().item() if n else float("nan")

    def evaluate(self, scores: MultiHeadOutput, target: Any) -> EvalResult:
        result = EvalResult({})
        for head in self.labels:
            head_scores, head_target = scores[head], target[head]
            part = _single_label_metrics(f"{head}_", head_scores, head_target, self.labels[head])
            result.summary.update(part.summary)
            result.per_class.update(part.per_class)
            result.confusion.update(part.confusion)
            result.labels.update(part.labels)
        n = max(1, target[next(iter(self.labels))].shape[0])
        result.summary["action_top1"] = self.correct(scores, target) / n
        result.summary["action_top5"] = self._action_top5(scores, target)
        # the single headline number used to pick the best checkpoint
        result.summary["top1"] = result.summary["action_top1"]
        return result


def make_task(num_classes: int | dict[str, int], labels: Any = None, multi_label: bool = False) -> Task[Any]:
    """The task for a dataset: multi-head for a dict of class counts, multi-label or single-label otherwise."""
    if isinstance(num_classes, dict):
        return MultiHeadTask(labels, num_classes)
    if multi_label:
        return MultiLabelTask(labels, num_classes)
    return SingleLabelTask(labels, num_classes)
