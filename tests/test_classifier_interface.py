"""Every registered model speaks the classifier interface the training and deployment code rely on."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import arinext
from arinext.layers import ClassifierModel, MultiHeadOutput
from arinext.train.engine import freeze_batchnorm, set_train_mode

ALL = arinext.list_models()
SMALL = {"depths": (1, 1, 1, 1)}


def _small(name: str, num_classes=5) -> nn.Module:
    extra = {"width": 16} if "audio_r50" in name else {"dims": (8, 16, 32, 64)}
    torch.manual_seed(0)
    return arinext.create_model(name, num_classes=num_classes, **SMALL, **extra)


@pytest.mark.parametrize("name", ALL)
def test_features_head_and_forward_agree(name):
    model = _small(name).eval()
    assert isinstance(model, ClassifierModel)
    x = torch.randn(2, 1, 64, 32)
    features = model.forward_features(x)
    pooled = model.forward_head(features, pre_logits=True)
    assert pooled.shape == (2, model.num_features)
    torch.testing.assert_close(model.forward_head(features), model(x))
    torch.testing.assert_close(model.get_classifier()(pooled), model(x))


@pytest.mark.parametrize("name", ALL)
def test_reset_classifier(name):
    model = _small(name)
    model.reset_classifier(11)
    assert model.eval()(torch.randn(1, 1, 64, 32)).shape == (1, 11)
    model.reset_classifier({"verb": 3, "noun": 4})
    out = model(torch.randn(1, 1, 64, 32))
    assert isinstance(out, MultiHeadOutput) and out["verb"].shape == (1, 3) and out["noun"].shape == (1, 4)
    assert isinstance(model.get_classifier(), nn.ModuleDict)


@pytest.mark.parametrize("name", ALL)
def test_freeze_bn_leaves_exactly_the_stem_batchnorms_trainable(name):
    model = _small(name)
    stem = model.stem_batchnorms()
    assert stem and all(isinstance(m, nn.BatchNorm2d) for m in stem)
    expected_stems = 2 if name == "slowfast_audio_r50" else 1  # Slow-Fast has a stem per pathway
    assert len(stem) == expected_stems
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    frozen = freeze_batchnorm(model)
    assert frozen == len(bns) - len(stem)
    trainable = [m for m in bns if any(p.requires_grad for p in m.parameters())]
    assert {id(m) for m in trainable} == {id(m) for m in stem}
    set_train_mode(model, freeze_bn=True)
    assert {id(m) for m in bns if m.training} == {id(m) for m in stem}
