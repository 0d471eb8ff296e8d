"""Export parity: ONNX (spectrogram and waveform graphs) and TorchScript match PyTorch; int8 tools work."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

import arinext
from arinext.audio.frontend import FrontendConfig, LogMel
from arinext.export import (
    ConvLogMel,
    check_onnx,
    compare_onnx_models,
    export_onnx,
    export_torchscript,
    load_torchscript,
    onnx_accuracy,
    onnx_logits,
    onnx_session,
    quantize_onnx,
    read_metadata,
)

from .conftest import FE_8K as FE
from .conftest import tiny_model

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.export

LABELS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return tiny_model(3, bn_seed=1, seed=0, head_std=0.3)


def spectrogram(batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 1, frames, FE.n_mels, generator=torch.Generator().manual_seed(seed)) * 3 - 4


def test_onnx_export_parity_dynamic_time_and_metadata(model, tmp_path) -> None:
    report = export_onnx(model, tmp_path / "m.onnx", frontend=FE, labels=LABELS)
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-4
    assert report.checked_lengths == (FE.frames_for(FE.sample_rate), FE.num_frames)
    session = onnx_session(tmp_path / "m.onnx")
    with torch.no_grad():
        for frames in (23, 77, 300):  # lengths never seen at export time
            x = spectrogram(3, frames, frames)
            np.testing.assert_allclose(onnx_logits(session, x), model(x).numpy(), atol=1e-4)
    meta = read_metadata(tmp_path / "m.onnx")
    assert meta["model"] == "audio_rep_inception_next_tiny" and meta["labels"] == LABELS
    assert FrontendConfig.from_dict(meta["frontend"]) == FE and meta["fold"] == "full" and meta["input"] == "spectrogram"
    ops = {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}
    assert "BatchNormalization" not in ops  # the full deploy fold was exported


def test_check_onnx_detects_a_mismatch(model, tmp_path) -> None:
    export_onnx(model, tmp_path / "m.onnx", frontend=FE, check=False)
    other = arinext.create_model("audio_rep_inception_next_tiny", num_classes=3).eval()
    with torch.no_grad():
        other.head.fc.weight.normal_(0, 1.0)
    with pytest.raises(RuntimeError, match="differs from PyTorch"):
        check_onnx(tmp_path / "m.onnx", other, [spectrogram(1, 40)])


def test_waveform_onnx_matches_logmel_pipeline(model, tmp_path) -> None:
    x = 0.1 * torch.randn(2, 6000, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(ConvLogMel(FE)(x), LogMel(FE)(x), atol=1e-4, rtol=0)
    report = export_onnx(model, tmp_path / "w.onnx", frontend=FE, input_kind="waveform")
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-4
    session = onnx_session(tmp_path / "w.onnx")
    with torch.no_grad():
        reference = model(LogMel(FE)(x)).numpy()  # the library's own front end + unfused model
    np.testing.assert_allclose(onnx_logits(session, x), reference, atol=1e-3)
    assert read_metadata(tmp_path / "w.onnx")["input"] == "waveform"


def test_torchscript_export_parity(model, tmp_path) -> None:
    report = export_torchscript(model, tmp_path / "m.pt", frontend=FE, labels=LABELS)
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-4
    module, meta = load_torchscript(tmp_path / "m.pt")
    assert meta["labels"] == LABELS and meta["frontend"]["n_mels"] == FE.n_mels
    x = spectrogram(2, 64)
    with torch.no_grad():
        torch.testing.assert_close(module(x), model(x), atol=1e-4, rtol=0)


def test_multi_head_models_are_rejected(tmp_path) -> None:
    m = arinext.create_model("audio_rep_inception_next_tiny", num_classes={"verb": 3, "noun": 4}).eval()
    with pytest.raises(ValueError, match="single-head"):
        export_onnx(m, tmp_path / "m.onnx", frontend=FE)


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_quantize_int8_and_measure(model, tmp_path, mode: str) -> None:
    export_onnx(model, tmp_path / "m.onnx", frontend=FE, labels=LABELS)
    calibration = [spectrogram(4, 51, seed) for seed in range(4)]
    int8 = quantize_onnx(tmp_path / "m.onnx", tmp_path / "q.onnx", mode, calibration if mode == "static" else None)
    meta = read_metadata(int8)
    assert meta["labels"] == LABELS and meta["quantization"] == f"int8-{mode}"
    with torch.no_grad():
        batches = [(x, model(x).argmax(-1)) for x in (spectrogram(8, 51, s) for s in range(10, 13))]
    stats = compare_onnx_models(tmp_path / "m.onnx", int8, batches, repeats=3)
    assert stats["size_mb"]["int8"] < stats["size_mb"]["fp32"]
    assert stats["accuracy"]["fp32"] == 1.0  # labels are the float model's own predictions
    assert stats["accuracy_change"] == pytest.approx(stats["accuracy"]["int8"] - 1.0)
    assert stats["n"] == 24 and 0.0 <= stats["top1_agreement"] <= 1.0
    assert onnx_accuracy(int8, batches)["accuracy"] == stats["accuracy"]["int8"]


def test_static_quantization_needs_calibration(model, tmp_path) -> None:
    export_onnx(model, tmp_path / "m.onnx", frontend=FE, check=False)
    with pytest.raises(ValueError, match="calibration"):
        quantize_onnx(tmp_path / "m.onnx", tmp_path / "q.onnx", "static")
    with pytest.raises(ValueError, match="mode"):
        quantize_onnx(tmp_path / "m.onnx", tmp_path / "q.onnx", "int4")  # type: ignore[arg-type]
