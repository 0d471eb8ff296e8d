"""Block-level re-parameterization: equivalence, idempotence, branch deletion, argument checks."""

from __future__ import annotations

import pytest
import torch

from arinext.layers.reparam import ConvNorm, ReparamMultiKernelDWConv, fold_state, pad_kernel_to, reparameterize_model
from arinext.utils.modules import randomize_batchnorm


TOL = {torch.float64: dict(atol=1e-9, rtol=1e-9), torch.float32: dict(atol=1e-5, rtol=1e-5)}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("axis", ["time", "freq"])
@pytest.mark.parametrize("kernel_sizes", [(21, 11, 3), (7, 3), (5,)])
@pytest.mark.parametrize("size", [(40, 24), (16, 4), (3, 2), (1, 1)])  # includes extents shorter than the kernel
@pytest.mark.parametrize("fold", ["paper", "full"])
def test_dw_block_equivalence(dtype, axis, kernel_sizes, size, fold):
    torch.manual_seed(0)
    layer = randomize_batchnorm(ReparamMultiKernelDWConv(6, kernel_sizes, axis)).to(dtype).eval()
    with torch.no_grad():  # random kernels, not the init's, so each branch matters
        for p in layer.parameters():
            p.normal_()
    x = torch.randn(2, 6, *size, dtype=dtype)
    y0 = layer(x)
    layer.reparameterize(fold)
    assert layer.branches is None and layer.reparam_conv is not None and layer.inference_mode
    y1 = layer(x)
    torch.testing.assert_close(y1, y0, **TOL[dtype])


def test_identity_really_folded_in_full_mode():
    layer = ReparamMultiKernelDWConv(4, (5, 3), "time").eval()
    layer.reparameterize("paper")
    k_paper = layer.reparam_conv.weight.detach().clone()
    layer.reparameterize("full")
    assert layer.identity_folded
    diff = layer.reparam_conv.weight.detach() - k_paper
    expected = torch.zeros_like(diff)
    expected[:, 0, 2, 0] = 1.0
    torch.testing.assert_close(diff, expected)


def test_reparameterize_is_idempotent():
    layer = randomize_batchnorm(ReparamMultiKernelDWConv(4, (7, 3), "freq")).eval()
    layer.reparameterize()
    conv = layer.reparam_conv
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    layer.reparameterize()
    assert layer.reparam_conv is conv
    for k, v in layer.state_dict().items():
        assert torch.equal(v, state[k])
    layer.reparameterize("full")
    w = layer.reparam_conv.weight.clone()
    layer.reparameterize("full")
    assert torch.equal(layer.reparam_conv.weight, w)


def test_reparameterize_deletes_branches_and_matches_inference_state_dict():
    layer = ReparamMultiKernelDWConv(4, (21, 11, 3), "time").eval()
    layer.reparameterize()
    fresh = ReparamMultiKernelDWConv(4, (21, 11, 3), "time", inference_mode=True)
    assert set(layer.state_dict()) == set(fresh.state_dict()) == {"reparam_conv.weight", "reparam_conv.bias"}
    fresh.load_state_dict(layer.state_dict(), strict=True)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_conv_norm_full_fold(dtype):
    torch.manual_seed(1)
    m = randomize_batchnorm(ConvNorm(3, 5, (5, 7), stride=2, padding=(2, 3))).to(dtype).eval()
    x = torch.randn(2, 3, 17, 9, dtype=dtype)
    y0 = m(x)
    m.reparameterize("paper")
    assert m.bn is not None  # the paper's fusion keeps it
    m.reparameterize("full")
    assert m.bn is None and m.conv.bias is not None
    torch.testing.assert_close(m(x), y0, **TOL[dtype])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_sizes=()),
        dict(kernel_sizes=(21, 10, 3)),
        dict(kernel_sizes=(3, 11, 21)),
        dict(kernel_sizes=(11, 11)),
        dict(kernel_sizes=(0,)),
        dict(axis="height"),
    ],
)
def test_invalid_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        ReparamMultiKernelDWConv(4, **{"kernel_sizes": (21, 11, 3), "axis": "time", **kwargs})


def test_invalid_fold_raises():
    with pytest.raises(ValueError):
        reparameterize_model(torch.nn.Identity(), fold="deploy")  # type: ignore[arg-type]


class _ScaledConv(torch.nn.Module):
    """A re-parameterizable layer that arinext does not know: ``conv(x) * scale`` folds into the conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 2, 3, padding=1)
        self.scale: torch.nn.Parameter | None = torch.nn.Parameter(torch.tensor(3.0))

    def forward(self, x):
        y = self.conv(x)
        return y * self.scale if self.scale is not None else y

    def fold_state(self):
        return "full" if self.scale is None else None

    def reparameterize(self, fold="paper"):
        if fold == "full" and self.scale is not None:
            with torch.no_grad():
                self.conv.weight.mul_(self.scale)
                self.conv.bias.mul_(self.scale)
            self.scale = None


def test_any_layer_with_a_reparameterize_method_is_fused():
    model = torch.nn.Sequential(torch.nn.ReLU(), _ScaledConv(), ConvNorm(2, 2, 1)).eval()
    x = torch.randn(1, 2, 5, 5)
    assert fold_state(model) is None
    fused = reparameterize_model(model, fold="full")
    assert fused[1].scale is None and fused[2].bn is None and fold_state(fused) == "full"
    torch.testing.assert_close(fused(x), model(x))
    assert reparameterize_model(model, fold="paper")[1].scale is not None  # the paper's fold leaves it


def test_pad_kernel_to_centres():
    k = torch.arange(3.0).reshape(1, 1, 3, 1)
    p = pad_kernel_to(k, (7, 1))
    assert p.flatten().tolist() == [0, 0, 0, 1, 2, 0, 0]
    with pytest.raises(ValueError):
        pad_kernel_to(k, (4, 1))


def test_kernel_bias_is_differentiable():
    layer = ReparamMultiKernelDWConv(3, (5, 3), "time")
    k, b = layer.get_kernel_bias()
    (k.sum() + b.sum()).backward()
    assert all(p.grad is not None for p in layer.parameters() if p.requires_grad)
