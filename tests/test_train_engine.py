"""Engine pieces: weight-decay groups, BatchNorm freezing, Precise-BN, multi-view prediction."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from arinext import create_model
from arinext.train.data import SyntheticSpectrograms
from arinext.train.engine import freeze_batchnorm, param_groups, precise_bn, predict, set_train_mode, train_one_epoch
from arinext.train.tasks import SingleLabelTask

DEV = torch.device("cpu")


def tiny(num_classes: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return create_model("audio_rep_inception_next_tiny", num_classes=num_classes)


def loader(views: int = 1, batch: int = 8, clips: int = 4):
    ds = SyntheticSpectrograms(4, clips, num_frames=32, n_mels=32, views=views)
    return torch.utils.data.DataLoader(ds, batch_size=batch)


def test_no_weight_decay_on_batchnorm_and_bias():
    model = tiny()
    decay, no_decay = param_groups(model, 1e-4)
    bn_params = {id(p) for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()}
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    assert not any(id(p) in bn_params or p.dim() == 1 for p in decay["params"])
    assert bn_params <= {id(p) for p in no_decay["params"]}
    assert id(model.head.fc.bias) in {id(p) for p in no_decay["params"]}
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_frozen_batchnorm_keeps_stats_and_affine_but_stem_trains():
    model = tiny()
    n = freeze_batchnorm(model)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert n == len(bns) - 1
    stem = model.stem.conv.bn
    before = {id(m): (m.running_mean.clone(), m.weight.clone()) for m in bns}
    opt = torch.optim.SGD(param_groups(model, 1e-4)[0]["params"] + param_groups(model, 1e-4)[1]["params"], lr=0.1)
    train_one_epoch(model, loader(), opt, SingleLabelTask(num_classes=4), DEV, freeze_bn=True, progress=False)
    for m in bns:
        mean, weight = before[id(m)]
        if m is stem:
            assert m.training and not torch.equal(m.running_mean, mean) and not torch.equal(m.weight, weight)
        else:
            assert not m.training and torch.equal(m.running_mean, mean) and torch.equal(m.weight, weight)
            assert not m.weight.requires_grad


def test_precise_bn_is_the_plain_mean_over_batches():
    model = tiny()
    batches = list(loader(batch=4, clips=4))[:3]
    precise_bn(model, batches, num_batches=3, device=DEV)
    # reference: the stem BN sees the stem conv output; its precise mean is the mean of per-batch means
    with torch.no_grad():
        means = [model.stem.conv.conv(b["inputs"]).mean(dim=(0, 2, 3)) for b in batches]
    torch.testing.assert_close(model.stem.conv.bn.running_mean, torch.stack(means).mean(0))
    assert model.stem.conv.bn.momentum == 0.1  # restored


def test_precise_bn_leaves_frozen_layers_alone():
    model = tiny()
    freeze_batchnorm(model)
    frozen = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m is not model.stem.conv.bn]
    saved = [m.running_var.clone() for m in frozen]
    precise_bn(model, loader(), 2, DEV, freeze_bn=True)
    assert all(torch.equal(m.running_var, s) for m, s in zip(frozen, saved))
    assert not torch.equal(model.stem.conv.bn.running_var, torch.ones_like(model.stem.conv.bn.running_var))


def test_predict_averages_softmax_over_views():
    model = tiny().eval()
    task = SingleLabelTask(num_classes=4)
    scores, targets, index = predict(model, loader(views=3), task, DEV, progress=False)
    ds = loader(views=3).dataset
    item = ds[5]
    expected = model(item["inputs"]).softmax(-1).mean(0)
    torch.testing.assert_close(scores[5], expected, atol=1e-6, rtol=1e-5)
    assert index.tolist() == list(range(len(ds))) and targets[5] == item["target"]


def test_set_train_mode_only_freezes_when_asked():
    model = tiny()
    set_train_mode(model, freeze_bn=False)
    assert all(m.training for m in model.modules())
    set_train_mode(model, freeze_bn=True)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.training == (m is model.stem.conv.bn)
    assert model.head.drop.training


def test_loss_nan_raises():
    model = tiny()
    with torch.no_grad():
        model.head.fc.weight.fill_(float("nan"))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError):
        train_one_epoch(model, loader(), opt, SingleLabelTask(num_classes=4), DEV, progress=False)
