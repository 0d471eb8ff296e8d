"""Model-level contract for every registered model, and the paper model's exact size."""

from __future__ import annotations

import json

import pytest
import torch

import arinext
from arinext.checkpoints.official import convert_original_state_dict
from arinext.layers.reparam import ReparamMultiKernelDWConv
from arinext.utils.complexity import count_macs, count_params

from .conftest import OFFICIAL, has_reparam_layers, tiny_model

ALL = arinext.list_models()
ARIN = arinext.list_models("audio_rep_inception_next*")
INPUT = (2, 1, 64, 32)


def _built(name: str, seed: int = 0, **kwargs) -> torch.nn.Module:
    return tiny_model(7, bn_seed=seed, seed=seed, name=name, **kwargs)


@pytest.mark.parametrize("name", ALL)
def test_forward_backward_every_parameter_gets_a_gradient(name):
    model = _built(name).train()
    out = model(torch.randn(*INPUT))
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    out.square().mean().backward()
    dead = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not dead, f"parameters without gradient: {dead[:5]}"


@pytest.mark.parametrize("name", ALL)
def test_logits_in_train_and_eval_and_any_length(name):
    model = _built(name)
    x = torch.randn(*INPUT)
    y_train = model.train()(x)
    model.eval()
    y_eval = model(x)
    assert y_train.shape == y_eval.shape == (2, 7)
    assert not torch.allclose(y_eval.softmax(-1).sum(-1), y_eval.sum(-1))  # raw logits, not probabilities
    for t, f in [(37, 32), (101, 128), (200, 20)]:
        assert model(torch.randn(1, 1, t, f)).shape == (1, 7)


@pytest.mark.parametrize("fold", ["paper", "full"])
@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-9), (torch.float32, 1e-5)])
@pytest.mark.parametrize("name", ALL)
def test_model_fusion_equivalence(name, fold, dtype, atol):
    model = _built(name).to(dtype).eval()
    x = torch.randn(*INPUT, dtype=dtype)
    with torch.no_grad():
        y0 = model(x)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        fused = arinext.reparameterize_model(model, fold=fold)
        y1 = fused(x)
    scale = max(1.0, y0.abs().max().item())
    torch.testing.assert_close(y1, y0, atol=atol * scale, rtol=0)
    # copy semantics: the original is untouched
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not fused.training
    # a second call changes nothing
    again = arinext.reparameterize_model(fused, fold=fold)
    for k, v in fused.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])
    if fold == "full" and has_reparam_layers(model):
        kinds = {type(m) for m in fused.modules() if not list(m.children())}
        assert not any(issubclass(k, torch.nn.modules.batchnorm._BatchNorm) for k in kinds), kinds


@pytest.mark.parametrize("name", ARIN)
def test_fused_state_dict_loads_strictly_into_inference_model(name):
    fused = arinext.reparameterize_model(_built(name))
    assert not any(".branches." in k for k in fused.state_dict())
    target = arinext.create_model(name, num_classes=7, inference_mode=True)
    target.load_state_dict(fused.state_dict(), strict=True)
    x = torch.randn(*INPUT)
    torch.testing.assert_close(target.eval()(x), fused(x))
    # training-form weights are refused by the inference model, and vice versa
    with pytest.raises(RuntimeError):
        target.load_state_dict(_built(name).state_dict(), strict=True)


def test_paper_model_size_and_macs():
    model = arinext.create_model("audio_rep_inception_next", num_classes=309)
    assert count_params(model) == 11_834_869
    fused = arinext.reparameterize_model(model)
    assert count_params(fused) == 11_691_381
    macs = count_macs(model, (1, 1, 512, 128))
    assert macs["conv"] == 2_578_776_064
    assert macs["linear"] == 512 * 309
    epic = arinext.create_model("audio_rep_inception_next", num_classes={"verb": 97, "noun": 300})
    assert count_params(epic) == 11_880_013  # PAPER.md: 11.880M
    out = epic.eval()(torch.randn(1, 1, 64, 32))
    assert set(out) == {"verb", "noun"} and out["verb"].shape == (1, 97)


@pytest.mark.parametrize("form", ["unmerged", "inference"])
def test_paper_model_keys_match_the_authors_full_model(form):
    path = OFFICIAL / "vggsound_full_state_dict_keys.json"
    if not path.is_file():
        pytest.skip("authors' fixtures not present")
    entries = json.loads(path.read_text())[form]["keys"]
    theirs = convert_original_state_dict({k: torch.empty(shape) for k, shape, _ in entries})
    model = arinext.create_model("audio_rep_inception_next", num_classes=309, inference_mode=form == "inference")
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in theirs.items()} == ours


def test_unknown_model_name_raises():
    with pytest.raises(ValueError, match="unknown model"):
        arinext.create_model("audio_rep_inception_next_huge")


def test_reset_classifier_and_registry():
    assert {"audio_rep_inception_next", "audio_rep_inception_next_small", "audio_rep_inception_next_tiny"} <= set(ALL)
    model = arinext.create_model("audio_rep_inception_next_tiny", num_classes=3)
    model.reset_classifier(11)
    assert model.eval()(torch.randn(1, 1, 64, 32)).shape == (1, 11)
    assert sum(isinstance(m, ReparamMultiKernelDWConv) for m in model.modules()) == 2 * 4
