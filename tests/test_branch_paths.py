"""The fast training path of ``ReparamMultiKernelDWConv`` (``branch_path``) against the plain reference.

Each path must compute the same function as the plain ``1 x k`` branches (outputs, gradients of the input
and of every parameter, BatchNorm running statistics after a training step) up to float rounding, keep
the state dict, and actually run the ``k x 1`` formulation where it says it does.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

import arinext
from arinext.layers.reparam import BRANCH_PATHS, ReparamMultiKernelDWConv, set_branch_path

from arinext.utils.modules import randomize_batchnorm

from .conftest import tiny_model

CL = torch.channels_last


class _ConvShapes(TorchFunctionMode):
    """Records the kernel shape of every ``F.conv2d`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.kernels: list[tuple[int, ...]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        if func is F.conv2d:
            self.kernels.append(tuple(args[1].shape[-2:]))
        return func(*args, **(kwargs or {}))


def _layer(channels: int = 6, kernel_sizes=(21, 11, 3), seed: int = 0) -> ReparamMultiKernelDWConv:
    torch.manual_seed(seed)
    layer = randomize_batchnorm(ReparamMultiKernelDWConv(channels, kernel_sizes, "freq"))
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    return layer


def _run(layer: ReparamMultiKernelDWConv, x: torch.Tensor, path: str) -> tuple:
    layer = copy.deepcopy(layer)
    layer.branch_path = path
    x = x.clone().requires_grad_(True)
    y = layer(x)
    y.backward(torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape))
    grads = {n: p.grad.clone() for n, p in layer.named_parameters()}
    return y.detach(), x.grad.clone(), grads, {n: b.clone() for n, b in layer.named_buffers()}, layer


@pytest.mark.parametrize("path", ["auto", "swap", "view"])
@pytest.mark.parametrize("shape", [(3, 6, 7, 40), (3, 6, 7, 16), (3, 6, 7, 4), (3, 6, 7, 1), (3, 6, 1, 5), (1, 6, 1, 40)])
@pytest.mark.parametrize("training", [True, False])
def test_paths_equal_plain_in_float64(path, shape, training):
    layer = _layer().double().to(memory_format=CL).train(training)
    x = torch.randn(*shape, dtype=torch.float64).contiguous(memory_format=CL)
    ref = _run(layer, x, "plain")
    out = _run(layer, x, path)
    tol = dict(atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(out[0], ref[0], **tol)  # output
    torch.testing.assert_close(out[1], ref[1], **tol)  # input gradient
    assert out[2].keys() == ref[2].keys()
    for name in ref[2]:
        torch.testing.assert_close(out[2][name], ref[2][name], **tol)
    for name in ref[3]:  # running mean/var and num_batches_tracked of every branch's BN
        torch.testing.assert_close(out[3][name], ref[3][name], **tol)
    assert out[0].is_contiguous(memory_format=CL)


def test_auto_selects_the_measured_path_and_runs_kx1_convs():
    layer = _layer()
    cases = {40: "view", 32: "view", 31: "swap", 9: "swap", 8: "plain", 4: "plain"}
    for bins, expected in cases.items():
        x = torch.randn(2, 6, 5, bins).contiguous(memory_format=CL)
        assert layer._freq_path(x) == expected, bins
    assert layer._freq_path(torch.randn(2, 6, 5, 40)) == "plain"  # NCHW input: the reference path
    for shape in ((1, 6, 5, 40), (2, 6, 1, 40), (2, 6, 5, 1)):  # a size-1 dim: plain (see the next test)
        assert layer._freq_path(torch.randn(*shape).contiguous(memory_format=CL)) == "plain", shape
    time_layer = ReparamMultiKernelDWConv(6, (21, 11, 3), "time")
    assert time_layer._freq_path(torch.randn(2, 6, 5, 40).contiguous(memory_format=CL)) == "plain"
    for path, kernels in (("plain", [(1, 21), (1, 11), (1, 3)]), ("auto", [(21, 1), (11, 1), (3, 1)])):
        layer.branch_path = path
        with _ConvShapes() as seen:
            layer(torch.randn(2, 6, 5, 40).contiguous(memory_format=CL))
        assert seen.kernels == kernels, path


def test_one_sgd_step_of_a_model_matches_plain_and_keeps_the_state_dict():
    base = tiny_model(5, seed=0, drop_rate=0.0).train()
    base = base.double().to(memory_format=CL)
    x = torch.randn(3, 1, 16, 128, dtype=torch.float64).contiguous(memory_format=CL)  # F 32, 16, 8, 4 in the stages
    y = torch.tensor([0, 1, 2])
    states = {}
    for path in BRANCH_PATHS:
        m = set_branch_path(copy.deepcopy(base).train(), path)
        opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(m(x), y).backward()
            opt.step()
        states[path] = m.state_dict()
    ref = states["plain"]
    for path, state in states.items():
        assert list(state) == list(ref), path
        for k in ref:
            torch.testing.assert_close(state[k], ref[k], atol=1e-9, rtol=1e-9, msg=f"{path}: {k}")


def test_float32_model_step_close_to_plain():
    torch.manual_seed(0)
    base = arinext.create_model("audio_rep_inception_next_tiny", num_classes=5, drop_rate=0.0).to(memory_format=CL)
    x = torch.randn(4, 1, 101, 64).contiguous(memory_format=CL)
    y = torch.tensor([0, 1, 2, 3])
    grads = {}
    for path in ("plain", "auto"):
        m = set_branch_path(copy.deepcopy(base).train(), path)
        F.cross_entropy(m(x), y).backward()
        grads[path] = torch.cat([p.grad.flatten() for p in m.parameters()])
    err = (grads["auto"] - grads["plain"]).norm() / grads["plain"].norm()
    assert err < 1e-5


@pytest.mark.parametrize("train", [False, True])
def test_why_size_one_dims_take_the_plain_path(train):
    """torch 2.13's CPU BatchNorm backward is wrong for a channels-last input whose size-1 dim has a
    non-canonical stride (as views and ``.contiguous(channels_last)`` no-ops produce) when the gradient is
    NCHW. The fast paths would create such tensors, so they hand size-1 shapes to the plain path. If this
    test starts failing, PyTorch fixed the bug and the guard in ``_freq_path`` can go."""
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(6).double().train(train)
    with torch.no_grad():
        bn.weight.normal_()
    x, g = torch.randn(3, 6, 3, 1, dtype=torch.float64), torch.randn(3, 6, 3, 1, dtype=torch.float64)
    odd = torch.empty_strided(x.shape, (18, 1, 6, 1), dtype=torch.float64).copy_(x).requires_grad_(True)
    ref = x.clone().requires_grad_(True)
    wrong = torch.autograd.grad(bn(odd), [odd], g)[0]
    right = torch.autograd.grad(bn(ref), [ref], g)[0]
    assert (wrong - right).abs().max() > 0.1


def test_branch_path_is_validated_and_survives_the_fold():
    with pytest.raises(ValueError, match="branch_path"):
        ReparamMultiKernelDWConv(4, (5, 3), "freq", branch_path="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="branch_path"):
        set_branch_path(torch.nn.Sequential(), "nchw")  # type: ignore[arg-type]
    layer = _layer().eval()
    x = torch.randn(2, 6, 5, 16).contiguous(memory_format=CL)
    y = layer(x)
    layer.reparameterize("full")
    torch.testing.assert_close(layer(x), y, atol=1e-4, rtol=1e-4)


def test_traced_training_form_uses_the_plain_graph():
    layer = _layer().eval().to(memory_format=CL)
    x = torch.randn(2, 6, 5, 16).contiguous(memory_format=CL)
    traced = torch.jit.trace(layer, x)
    torch.testing.assert_close(traced(x), layer(x), atol=1e-5, rtol=1e-5)
    assert "transpose" not in str(traced.graph)


def test_bf16_autocast_step_within_its_stated_tolerance():
    """``amp: true`` is not exact: BENCHMARKS.md ("Training speed") states the gradient differs from float32 by a
    few percent (relative L2) and the loss by far less; a larger error means autocast broke something."""
    from arinext.train.engine import autocast

    torch.manual_seed(0)
    base = arinext.create_model("audio_rep_inception_next_tiny", num_classes=5, drop_rate=0.0).to(memory_format=CL)
    x = torch.randn(8, 1, 101, 64).contiguous(memory_format=CL)
    y = torch.arange(8) % 5
    out = {}
    for amp in (False, True):
        m = copy.deepcopy(base).train()
        with autocast(torch.device("cpu"), amp):
            loss = F.cross_entropy(m(x), y)
        loss.backward()
        out[amp] = (loss.item(), torch.cat([p.grad.flatten() for p in m.parameters()]))
    (loss32, g32), (loss16, g16) = out[False], out[True]
    err = ((g16 - g32).norm() / g32.norm()).item()
    assert abs(loss16 - loss32) / loss32 < 0.02
    assert 1e-5 < err < 0.1, err  # not exact (so autocast did run in bf16), and within 10%
