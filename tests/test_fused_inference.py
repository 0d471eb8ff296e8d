"""``optimize_for_inference``'s conv + ReLU (+ residual add) fusion and the retained malloc: the same function.

Float64 runs the fused modules' plain path (oneDNN's fused kernels are float32-only) and checks that the
graph rewrite computes the model's function for every registered model; float32 checks that the oneDNN
kernels are really used and agree with the float64 reference to float32 rounding.
"""

from __future__ import annotations

import copy
import io
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import arinext
from arinext.inference import ConvReLU, fuse_conv_relu, optimize_for_inference
from arinext.inference import optimize as optimize_module

from .conftest import tiny_model

ARIN_MODELS = arinext.list_models("audio*inception_next*")
SLOWFAST_MODELS = arinext.list_models("*audio_r50")
# (frames, mel bins): 7 frames are 2 after the stem, far shorter than the 21-tap kernels; 70 is not a
# multiple of 16 (Slow-Fast's padded lateral path); 101 frames is 1 s of the VGG-Sound front end.
SIZES = [(7, 16), (70, 24), (101, 40)]


def _model(name: str, dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(0)
    return tiny_model(11, name=name).to(dtype)


def _fused_count(model: nn.Module) -> int:
    return sum(isinstance(m, ConvReLU) for m in model.modules())


def test_every_registered_model_is_covered() -> None:
    """A newly registered model must join one of the lists below, and so the exactness tests."""
    assert set(arinext.list_models()) == set(ARIN_MODELS) | set(SLOWFAST_MODELS)
    assert set(ARIN_MODELS) == {
        "audio_rep_inception_next", "audio_rep_inception_next_small", "audio_rep_inception_next_tiny",
        "audio_inception_next",
    }  # fmt: skip


@pytest.mark.parametrize("name", ARIN_MODELS + SLOWFAST_MODELS)
def test_optimized_model_is_exact_in_float64(name: str, one_torch_thread) -> None:
    model = _model(name)
    fast = optimize_for_inference(model, retain_memory=False)
    convs = sum(isinstance(m, nn.Conv2d) for m in arinext.reparameterize_model(model, fold="full").modules())
    assert _fused_count(fast) >= 0.7 * convs  # all but the projection shortcuts (and the parallel mixer's adds)
    with torch.inference_mode():
        for frames, mels in SIZES:
            if name in SLOWFAST_MODELS and frames < 16:
                continue  # Slow-Fast needs at least alpha frames per slow step
            x = torch.randn(2, 1, frames, mels, dtype=torch.float64)
            ref = model(x)
            torch.testing.assert_close(fast(x), ref, rtol=1e-9, atol=1e-9 * float(ref.abs().max()))


@pytest.mark.parametrize("name", ["audio_rep_inception_next_tiny", "slowfast_audio_r50"])
def test_float32_runs_onednn_fused_kernels(name: str, monkeypatch, one_torch_thread) -> None:
    if optimize_module._CONV_RELU is None:
        pytest.skip("PyTorch built without oneDNN")
    calls = {"relu": 0, "add": 0, "add_": 0}

    def counting(key, op):
        def run(*args):
            calls[key] += 1
            return op(*args)

        return run

    monkeypatch.setattr(optimize_module, "_CONV_RELU", counting("relu", optimize_module._CONV_RELU))
    monkeypatch.setattr(optimize_module, "_CONV_ADD_RELU", counting("add", optimize_module._CONV_ADD_RELU))
    monkeypatch.setattr(optimize_module, "_CONV_ADD_RELU_", counting("add_", optimize_module._CONV_ADD_RELU_))
    reference = _model(name)
    model = _model(name, torch.float32)
    fast = optimize_for_inference(model, retain_memory=False)
    plain = optimize_for_inference(model, fuse_relu=False, retain_memory=False)
    x = torch.randn(3, 1, 101, 40)
    with torch.inference_mode():
        ref = reference(x.double())
        y = fast(x)
    assert calls["relu"] > 0 and calls["add"] + calls["add_"] > 0 and calls["add_"] > 0
    assert sum(calls.values()) == _fused_count(fast)  # every fused module took the oneDNN path
    scale = float(ref.abs().max())
    torch.testing.assert_close(y.double(), ref, rtol=0, atol=2e-5 * scale)
    with torch.inference_mode():
        torch.testing.assert_close(y, plain(x), rtol=0, atol=1e-5 * scale)


class _Residual(nn.Module):
    """``relu(c(.) + s)`` with ``s = s(x)``: ``c`` reads ``x``, or ``s`` itself (``"conv reads it"``), and ``s``
    is read again afterwards (``"read later"``); only in the ``"free"`` case may the sum overwrite ``s``."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.s, self.c, self.mode = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 3, padding=1), mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.s(x)
        y = torch.relu(s + self.c(s if self.mode == "conv reads it" else x))
        return y * s if self.mode == "read later" else y


@pytest.mark.parametrize("mode", ["free", "read later", "conv reads it"])
def test_addend_is_overwritten_only_when_nothing_reads_it_later(mode: str) -> None:
    torch.manual_seed(0)
    model = _Residual(mode).eval()
    fused, count = fuse_conv_relu(copy.deepcopy(model))
    assert count == 1
    (conv_relu,) = [m for m in fused.modules() if isinstance(m, ConvReLU)]
    assert conv_relu.overwrite is (mode == "free")
    x = torch.randn(2, 4, 9, 7)
    with torch.inference_mode():
        torch.testing.assert_close(fused(x), model(x), rtol=1e-6, atol=1e-6)


def test_broadcast_add_runs_the_plain_path() -> None:
    class Bias(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 5, 1)

        def forward(self, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.c(x) + b)

    model = Bias().eval()
    fused, count = fuse_conv_relu(copy.deepcopy(model))
    x, b = torch.randn(2, 3, 6, 4), torch.randn(1, 5, 1, 1)
    with torch.inference_mode():
        torch.testing.assert_close(fused(x, b), model(x, b))
    assert count == 1


def test_packed_weights_follow_shapes_copies_and_weight_updates() -> None:
    """Weights reordered for oneDNN at the first call serve other input shapes, pickles and copies, and are
    reordered again when the weights change in place (``load_state_dict``)."""
    model = _model("audio_rep_inception_next_tiny", torch.float32)
    fast = optimize_for_inference(model, retain_memory=False)
    plain = optimize_for_inference(model, fuse_relu=False, retain_memory=False)
    with torch.inference_mode():
        for frames in (64, 101, 7):
            x = torch.randn(2, 1, frames, 40)
            torch.testing.assert_close(fast(x), plain(x), rtol=1e-5, atol=1e-5)
    assert any(m._packed is not None for m in fast.modules() if isinstance(m, ConvReLU))
    buffer = io.BytesIO()
    torch.save(fast, buffer)
    buffer.seek(0)
    for clone in (copy.deepcopy(fast), torch.load(buffer, weights_only=False)):
        with torch.inference_mode():
            torch.testing.assert_close(clone(x), plain(x), rtol=1e-5, atol=1e-5)
    other = _model("audio_rep_inception_next_tiny", torch.float32)
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(1.5)
    fast.load_state_dict(optimize_for_inference(other, retain_memory=False).state_dict())
    with torch.inference_mode():
        expected = optimize_for_inference(other, fuse_relu=False, retain_memory=False)(x)
        torch.testing.assert_close(fast(x), expected, rtol=1e-5, atol=1e-5)


def test_input_tensor_is_never_overwritten() -> None:
    model = optimize_for_inference(_model("audio_rep_inception_next_tiny", torch.float32), retain_memory=False)
    x = torch.randn(2, 1, 64, 32).contiguous(memory_format=torch.channels_last)
    before = x.clone()
    with torch.inference_mode():
        model(x)
    assert torch.equal(x, before)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_autograd_tracing_and_parameters() -> None:
    model = _model("audio_rep_inception_next_tiny", torch.float32)
    fast = optimize_for_inference(model, retain_memory=False)
    assert not any(p.requires_grad for p in fast.parameters())
    x = torch.randn(2, 1, 64, 32, requires_grad=True)
    fast(x).sum().backward()  # the fused modules fall back to plain operators under autograd
    assert x.grad is not None and torch.isfinite(x.grad).all()
    traced = torch.jit.trace(fast, x.detach())  # and under tracing: a graph of standard operators
    assert "mkldnn::_convolution_pointwise" not in str(traced.inlined_graph)
    with torch.inference_mode():
        torch.testing.assert_close(traced(x.detach()), fast(x.detach()), rtol=1e-5, atol=1e-5)


def test_retain_freed_memory_stops_page_faults() -> None:
    """A fresh process frees and re-allocates 64 MiB: thousands of page faults each time unless memory is kept."""
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc malloc only")
    code = textwrap.dedent(
        """
        import resource, sys
        import torch
        from arinext.utils.malloc import freed_memory_retained, retain_freed_memory
        if sys.argv[1] == "retain":
            assert retain_freed_memory() and freed_memory_retained() == 1024
        else:
            assert freed_memory_retained() is None
        for _ in range(5):  # the heap settles after a few blocks (posix_memalign splits the first)
            torch.ones(16 * 2**20)
        counts = []
        for _ in range(6):  # 64 MiB, freed at once; the fewest faults of six (it can take a few more to settle)
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            torch.ones(16 * 2**20)
            counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
        print(min(counts))
        """
    )
    faults = {}
    for mode in ("glibc", "retain"):
        out = subprocess.run([sys.executable, "-c", code, mode], check=True, capture_output=True, text=True)
        faults[mode] = int(out.stdout.split()[-1])
    if faults["glibc"] < 4096:
        pytest.skip(f"this C library keeps freed memory by itself ({faults['glibc']} faults per 64 MiB)")
    assert faults["retain"] < 256, faults


def test_bad_arguments_are_arinext_errors() -> None:
    from arinext.utils.errors import ConfigError, InputError
    from arinext.utils.malloc import retain_freed_memory

    with pytest.raises(ConfigError, match="limit_mib"):
        retain_freed_memory(0)
    with pytest.raises(ConfigError, match="limit_mib"):
        retain_freed_memory(4096)
    with pytest.raises(InputError, match="ConvReLU"):
        ConvReLU(nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"))
    with pytest.raises(InputError, match="ConvReLU"):
        ConvReLU(nn.Linear(2, 2))  # type: ignore[arg-type]
