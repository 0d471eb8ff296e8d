"""Metrics and tasks against independent references (scipy, hand-computed values)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from arinext.train.metrics import (
    average_precision,
    confusion_matrix,
    d_prime,
    mean_auc,
    per_class_accuracy,
    roc_auc,
    topk_accuracy,
)
from arinext.train.report import write_eval_report
from arinext.train.tasks import MultiHeadTask, MultiLabelTask, SingleLabelTask, make_task

stats = pytest.importorskip("scipy.stats")


def test_topk_accuracy_by_hand():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    target = torch.tensor([1, 1, 0])
    acc = topk_accuracy(scores, target, (1, 2, 5))
    assert acc[1] == pytest.approx(1 / 3) and acc[2] == pytest.approx(2 / 3) and acc[5] == 1.0


def test_confusion_and_per_class_accuracy():
    conf = confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 4)
    assert conf.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    acc = per_class_accuracy(conf)
    assert acc[:3].tolist() == [1.0, 1.0, 0.5] and math.isnan(acc[3])


def test_average_precision_by_hand():
    # ranking: pos, neg, pos, neg -> AP = (1/1 + 2/3) / 2
    scores = torch.tensor([[0.9], [0.8], [0.7], [0.1]])
    labels = torch.tensor([[1], [0], [1], [0]])
    assert average_precision(scores, labels)[0].item() == pytest.approx((1 + 2 / 3) / 2)


def test_auc_matches_mann_whitney_with_ties():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 6, (200, 3), generator=g).float()  # many ties
    labels = torch.randint(0, 2, (200, 3), generator=g)
    ours = roc_auc(scores, labels)
    for c in range(3):
        pos, neg = scores[labels[:, c] == 1, c].numpy(), scores[labels[:, c] == 0, c].numpy()
        u = stats.mannwhitneyu(pos, neg).statistic
        assert ours[c].item() == pytest.approx(u / (len(pos) * len(neg)), abs=1e-12)


def test_auc_skips_classes_without_positives():
    labels = torch.tensor([[1, 0], [0, 0], [1, 0]])
    assert math.isnan(roc_auc(torch.rand(3, 2), labels)[1])
    assert mean_auc(torch.tensor([[0.9, 0.1], [0.1, 0.2], [0.8, 0.3]]), labels) == pytest.approx(1.0)


def test_d_prime_matches_scipy():
    for auc in (0.6, 0.9, 0.974):
        assert d_prime(auc) == pytest.approx(math.sqrt(2) * stats.norm.ppf(auc), rel=1e-9)
    assert d_prime(0.5) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(d_prime(float("nan")))


def test_single_label_task_report():
    task = SingleLabelTask(["a", "b", "c"])
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 5.0, 0], [0, 0, 5.0]])
    target = torch.tensor([0, 1, 2, 2])
    assert task.correct(logits, target) == 3
    assert task.loss(logits, target).item() == pytest.approx(F.cross_entropy(logits, target).item())
    res = task.evaluate(task.scores(logits), target)
    assert res.summary["top1"] == 0.75 and res.summary["mean_class_acc"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert [r["class"] for r in res.per_class["class"]] == ["a", "b", "c"]
    assert res.per_class["class"][2]["accuracy"] == 0.5 and res.confusion["class"][2, 1] == 1


def test_multi_label_task():
    task = make_task(3, ["x", "y", "z"], multi_label=True)
    assert isinstance(task, MultiLabelTask)
    logits = torch.tensor([[3.0, -3, 2], [-3, 3, -3]])
    target = torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    assert task.loss(logits, target).item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, target).item())
    res = task.evaluate(task.scores(logits), target)
    assert res.summary["mAP"] == pytest.approx(1.0) and res.summary["precision_at_1"] == 1.0


def test_multi_head_task_loss_and_action_metrics():
    task = make_task({"verb": 3, "noun": 4}, {"verb": ["v0", "v1", "v2"], "noun": ["n0", "n1", "n2", "n3"]})
    assert isinstance(task, MultiHeadTask)
    g = torch.Generator().manual_seed(1)
    out = {"verb": torch.randn(50, 3, generator=g), "noun": torch.randn(50, 4, generator=g)}
    tgt = {"verb": torch.randint(0, 3, (50,), generator=g), "noun": torch.randint(0, 4, (50,), generator=g)}
    expected = 0.5 * (F.cross_entropy(out["verb"], tgt["verb"]) + F.cross_entropy(out["noun"], tgt["noun"]))
    assert task.loss(out, tgt).item() == pytest.approx(expected.item())
    res = task.evaluate(task.scores(out), tgt)
    both = (out["verb"].argmax(1) == tgt["verb"]) & (out["noun"].argmax(1) == tgt["noun"])
    assert res.summary["action_top1"] == pytest.approx(both.float().mean().item())
    # action top-5 by brute force over all 12 (verb, noun) pairs of the product score
    p = task.scores(out)
    joint = (p["verb"][:, :, None] * p["noun"][:, None, :]).flatten(1)
    truth = tgt["verb"] * 4 + tgt["noun"]
    brute = (joint.topk(5, dim=1).indices == truth[:, None]).any(1).float().mean().item()
    assert res.summary["action_top5"] == pytest.approx(brute)
    assert {"verb_top1", "noun_top5", "verb_mean_class_acc"} <= set(res.summary)
    assert set(res.per_class) == {"verb", "noun"}


def test_eval_report_files_for_two_heads(tmp_path):
    task = make_task({"verb": 3, "noun": 4})
    g = torch.Generator().manual_seed(2)
    scores = task.scores({"verb": torch.randn(20, 3, generator=g), "noun": torch.randn(20, 4, generator=g)})
    target = {"verb": torch.randint(0, 3, (20,), generator=g), "noun": torch.randint(0, 4, (20,), generator=g)}
    res = task.evaluate(scores, target)
    content = write_eval_report({"training_form": res, "fused": res}, tmp_path, {"max_abs_prob_diff": 0.0})
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == content and saved["fused"]["action_top1"] == res.summary["action_top1"]
    names = {p.name for p in tmp_path.iterdir()}
    assert {"per_class_verb.csv", "per_class_noun.csv", "confusion_verb.png", "confusion_noun.png"} <= names
    assert len((tmp_path / "per_class_noun.csv").read_text().splitlines()) == 1 + 4
