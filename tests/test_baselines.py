"""The paper's baselines: Auditory Slow-Fast (and its streams) and AudioInceptionNeXt."""

from __future__ import annotations

import pytest
import torch

import arinext
from arinext.models.slowfast import AudioSlowFast
from arinext.utils.complexity import count_macs, count_params

# Full-size counts of the original implementations (PAPER.md sections 2 and 6, VGG-Sound, 309 classes).
EXPECTED_PARAMS = {
    "slowfast_audio_r50": 26_679_453,
    "fast_audio_r50": 470_077,
    "audio_inception_next": 11_834_869,
}


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_param_counts_match_the_originals(name: str) -> None:
    assert count_params(arinext.create_model(name, num_classes=309)) == EXPECTED_PARAMS[name]


def test_slowfast_epic_sounds_params() -> None:
    # 416x128 EPIC-Sounds comparison, 44 classes: 26.069M in the original (PAPER.md section 2).
    assert count_params(arinext.create_model("slowfast_audio_r50", num_classes=44)) == 26_068_628


def test_slowfast_conv_macs_at_vggsound_input() -> None:
    macs = count_macs(arinext.create_model("slowfast_audio_r50", num_classes=309), (1, 1, 512, 128))
    assert round(macs["conv"] / 1e9, 3) == 5.521


def test_audio_inception_next_same_convs_as_rep_training_form() -> None:
    shape, arch = (1, 1, 64, 32), {"depths": (2, 1, 1, 1), "dims": (8, 16, 32, 64)}
    ain = arinext.create_model("audio_inception_next", num_classes=10, **arch)
    rep = arinext.create_model("audio_rep_inception_next", num_classes=10, **arch)
    assert count_macs(ain, shape) == count_macs(rep, shape)
    assert count_params(ain) == count_params(rep)


def _tiny_slowfast(**kw: object) -> AudioSlowFast:
    return AudioSlowFast(num_classes=5, width=16, depths=(1, 1, 1, 1), **kw).eval()  # type: ignore[arg-type]


@pytest.mark.parametrize("frames", [4, 33, 100, 128, 417])
def test_slowfast_any_length(frames: int) -> None:
    model = _tiny_slowfast()
    out = model(torch.randn(2, 1, frames, 64))
    assert out.shape == (2, 5) and torch.isfinite(out).all()


def test_slowfast_too_short_input_names_the_length() -> None:
    with pytest.raises(ValueError, match="T=3"):
        _tiny_slowfast()(torch.randn(1, 1, 3, 64))


def test_slow_pathway_sees_the_original_linspace_frames() -> None:
    model = _tiny_slowfast()
    x = torch.arange(512.0).reshape(1, 1, 512, 1)
    picked = model._slow_input(x).flatten()
    assert picked.numel() == 128
    assert torch.equal(picked, torch.linspace(0, 511, 128).long().float())


def test_slowfast_structure() -> None:
    model = arinext.create_model("slowfast_audio_r50", num_classes=309)
    assert len(model.fusions) == 4
    for fusion in model.fusions:
        assert fusion.conv.conv.kernel_size == (7, 1) and fusion.conv.conv.stride == (4, 1)
    # Slow res2 input: 64 stem channels + 16 fused; res5 output 2048 slow + 256 fast at the head.
    assert model.stages["slow"][0][0].a.conv.in_channels == 80
    assert model.head.fc.in_features == 2304


@pytest.mark.parametrize("name", ["slowfast_audio_r50", "slow_audio_r50", "fast_audio_r50", "audio_inception_next"])
def test_baselines_train_and_eval_give_logits(name: str) -> None:
    kwargs = {"depths": (1, 1, 1, 1)}
    kwargs.update({"width": 16} if "audio_r50" in name else {"dims": (8, 16, 32, 64)})
    model = arinext.create_model(name, num_classes=7, **kwargs)
    x = torch.randn(2, 1, 64, 32)
    model.train()
    loss = model(x).logsumexp(1).mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert model.eval()(x).shape == (2, 7)


@pytest.mark.parametrize("name", ["slowfast_audio_r50", "audio_inception_next"])
def test_full_fold_keeps_baseline_outputs(name: str) -> None:
    torch.manual_seed(0)
    kwargs = {"depths": (1, 1, 1, 1)}
    kwargs.update({"width": 16} if "audio_r50" in name else {"dims": (8, 16, 32, 64)})
    model = arinext.create_model(name, num_classes=7, **kwargs).double()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    x = torch.randn(2, 1, 64, 32, dtype=torch.float64)
    folded = arinext.reparameterize_model(model, fold="full")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(folded(x), model(x), atol=1e-9, rtol=1e-9)


def test_bad_pathways_rejected() -> None:
    with pytest.raises(ValueError, match="pathways"):
        AudioSlowFast(pathways=("fast", "slow"))
