"""Classification metrics on score matrices: top-k, mean class accuracy, mAP, mean AUC, d-prime.

All functions take ``scores`` of shape ``(N, C)`` (probabilities or logits, higher means more
likely) as torch tensors and return Python floats or tensors on the CPU. mAP/AUC follow the
VGG-Sound evaluation (``vggsound_metrics.py`` of the original code): one-vs-rest per class, averaged
over the classes that have at least one positive and one negative; ``d' = sqrt(2) * Phi^-1(mean AUC)``.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import torch

__all__ = [
    "average_precision",
    "confusion_matrix",
    "d_prime",
    "mean_auc",
    "mean_average_precision",
    "per_class_accuracy",
    "roc_auc",
    "topk_accuracy",
]


def topk_accuracy(scores: torch.Tensor, target: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, float]:
    """Fraction of rows whose ``target`` is among the ``k`` highest scores, for each ``k`` (capped at C)."""
    if scores.shape[0] == 0:
        return {k: float("nan") for k in ks}
    kmax = min(max(ks), scores.shape[1])
    top = scores.topk(kmax, dim=1).indices
    hit = top == target.view(-1, 1)
    return {k: hit[:, : min(k, kmax)].any(dim=1).float().mean().item() for k in ks}


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(C, C)`` int64 counts, rows = true class, columns = predicted class."""
    idx = target.long() * num_classes + pred.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """Recall of each class from a confusion matrix; NaN for classes absent from the targets."""
    support = confusion.sum(dim=1).double()
    correct = confusion.diagonal().double()
    return torch.where(support > 0, correct / support.clamp(min=1), torch.full_like(support, float("nan")))


def _valid_columns(labels: torch.Tensor) -> torch.Tensor:
    pos = labels.sum(dim=0)
    return (pos > 0) & (pos < labels.shape[0])


def _runs(sorted_scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For column-wise sorted scores ``(N, C)``: the first and the last row index of the run of equal scores
    each row belongs to (ties form one run)."""
    n = sorted_scores.shape[0]
    rows = torch.arange(n).view(-1, 1).expand_as(sorted_scores)
    first = torch.ones_like(sorted_scores, dtype=torch.bool)
    first[1:] = sorted_scores[1:] != sorted_scores[:-1]
    last = torch.ones_like(first)
    last[:-1] = first[1:]
    start = torch.where(first, rows, torch.zeros_like(rows)).cummax(dim=0).values
    end = torch.where(last, rows, torch.full_like(rows, n - 1)).flip(0).cummin(dim=0).values.flip(0)
    return start, end


def average_precision(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-class average precision ``sum_n (R_n - R_{n-1}) P_n`` over score-sorted rows, ``(C,)``.

    Tied scores are treated as one threshold. Classes without positives give NaN. All classes are
    computed at once: ``AP = sum_i y_i P(end of i's run of ties) / npos``.
    """
    scores, labels = scores.double(), labels.double()
    if scores.shape[0] == 0:
        return torch.full((scores.shape[1],), float("nan"), dtype=torch.float64)
    s, order = scores.sort(dim=0, descending=True)
    y = labels.gather(0, order)
    precision = y.cumsum(0) / torch.arange(1, len(s) + 1, dtype=torch.float64).view(-1, 1)
    _, end = _runs(s)
    npos = y.sum(dim=0)
    ap = (y * precision.gather(0, end)).sum(dim=0) / npos.clamp(min=1)
    return torch.where(npos > 0, ap, torch.full_like(ap, float("nan")))


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-class ROC AUC by the rank-sum (Mann-Whitney) formula with tied ranks averaged, ``(C,)``.

    Classes with no positive or no negative row give NaN. All classes are computed at once.
    """
    scores, labels = scores.double(), labels.double()
    n = scores.shape[0]
    if n == 0:
        return torch.full((scores.shape[1],), float("nan"), dtype=torch.float64)
    s, order = scores.sort(dim=0)
    y = labels.gather(0, order)
    start, end = _runs(s)
    ranks = (start + end).double() / 2 + 1  # the average 1-based rank of each run of ties
    npos = y.sum(dim=0)
    auc = ((ranks * y).sum(dim=0) - npos * (npos + 1) / 2) / (npos * (n - npos)).clamp(min=1)
    return torch.where((npos > 0) & (npos < n), auc, torch.full_like(auc, float("nan")))


def _nanmean(x: torch.Tensor) -> float:
    x = x[~torch.isnan(x)]
    return x.mean().item() if x.numel() else float("nan")


def mean_average_precision(scores: torch.Tensor, labels: torch.Tensor, ap: torch.Tensor | None = None) -> float:
    """mAP over the classes with at least one positive and one negative (``ap``: their
    :func:`average_precision`, if already computed)."""
    return _nanmean((average_precision(scores, labels) if ap is None else ap)[_valid_columns(labels)])


def mean_auc(scores: torch.Tensor, labels: torch.Tensor, auc: torch.Tensor | None = None) -> float:
    """Mean ROC AUC over the classes with at least one positive and one negative (``auc``: their
    :func:`roc_auc`, if already computed)."""
    return _nanmean(roc_auc(scores, labels) if auc is None else auc)


def d_prime(auc: float) -> float:
    """Sensitivity index ``d' = sqrt(2) * Phi^-1(AUC)`` (VGG-Sound's reported d')."""
    if not 0.0 < auc < 1.0:
        return float("nan") if math.isnan(auc) else math.copysign(float("inf"), auc - 0.5)
    return math.sqrt(2.0) * NormalDist().inv_cdf(auc)
