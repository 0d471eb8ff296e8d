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


def average_precision(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-class average precision ``sum_n (R_n - R_{n-1}) P_n`` over score-sorted rows, ``(C,)``.

    Tied scores are treated as one threshold. Classes without positives give NaN.
    """
    scores, labels = scores.double(), labels.double()
    out = torch.full((scores.shape[1],), float("nan"), dtype=torch.float64)
    for c in range(scores.shape[1]):
        y = labels[:, c]
        npos = y.sum()
        if npos == 0:
            continue
        s, order = scores[:, c].sort(descending=True)
        tp = y[order].cumsum(0)
        # keep the last row of each run of equal scores: one threshold per distinct score
        last = torch.ones_like(s, dtype=torch.bool)
        last[:-1] = s[1:] != s[:-1]
        tp = tp[last]
        rank = torch.arange(1, len(s) + 1, dtype=torch.float64)[last]
        precision, recall = tp / rank, tp / npos
        delta = torch.diff(recall, prepend=torch.zeros(1, dtype=torch.float64))
        out[c] = (delta * precision).sum()
    return out


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-class ROC AUC by the rank-sum (Mann-Whitney) formula with tied ranks averaged, ``(C,)``.

    Classes with no positive or no negative row give NaN.
    """
    scores, labels = scores.double(), labels.bool()
    n = scores.shape[0]
    out = torch.full((scores.shape[1],), float("nan"), dtype=torch.float64)
    for c in range(scores.shape[1]):
        y = labels[:, c]
        npos = int(y.sum())
        if npos == 0 or npos == n:
            continue
        _, inverse, counts = torch.unique(scores[:, c], return_inverse=True, return_counts=True)
        # average rank of each distinct value: ranks first..last of its run, 1-based
        ends = counts.cumsum(0).double()
        avg_rank = ends - (counts.double() - 1) / 2
        ranks = avg_rank[inverse]
        out[c] = (ranks[y].sum() - npos * (npos + 1) / 2) / (npos * (n - npos))
    return out


def _nanmean(x: torch.Tensor) -> float:
    x = x[~torch.isnan(x)]
    return x.mean().item() if x.numel() else float("nan")


def mean_average_precision(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """mAP over the classes with at least one positive and one negative."""
    return _nanmean(average_precision(scores, labels)[_valid_columns(labels)])


def mean_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean ROC AUC over the classes with at least one positive and one negative."""
    return _nanmean(roc_auc(scores, labels))


def d_prime(auc: float) -> float:
    """Sensitivity index ``d' = sqrt(2) * Phi^-1(AUC)`` (VGG-Sound's reported d')."""
    if not 0.0 < auc < 1.0:
        return float("nan") if math.isnan(auc) else math.copysign(float("inf"), auc - 0.5)
    return math.sqrt(2.0) * NormalDist().inv_cdf(auc)
