"""``arinext bench`` and the inference-speed passes (equivalence, measurement helpers, CLI end to end)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import arinext
from arinext.apps.bench import parse_size, peak_forward_memory, roofline
from arinext.cli import main
from arinext.inference import AxisCroppedDWConv2d, crop_depthwise_kernels, optimize_for_inference
from arinext.utils.timing import LatencyStats, time_interleaved

from .conftest import tiny_model


@pytest.mark.parametrize("axis", ["time", "freq"])
@pytest.mark.parametrize("length", [1, 2, 4, 8, 10, 11, 12, 30])
def test_cropped_dw_conv_is_exact(axis: str, length: int) -> None:
    k = 21
    shape, pad = ((k, 1), (k // 2, 0)) if axis == "time" else ((1, k), (0, k // 2))
    conv = nn.Conv2d(6, 6, shape, padding=pad, groups=6, bias=True).double()
    cropped = AxisCroppedDWConv2d(conv)
    size = (length, 5) if axis == "time" else (5, length)
    x = torch.randn(2, 6, *size, dtype=torch.float64)
    torch.testing.assert_close(cropped(x), conv(x), rtol=0, atol=1e-12)
    assert cropped.state_dict().keys() == conv.state_dict().keys()


def test_cropped_dw_conv_rejects_other_convs() -> None:
    assert not AxisCroppedDWConv2d.is_eligible(nn.Conv2d(4, 4, (3, 3), padding=1, groups=4))
    assert not AxisCroppedDWConv2d.is_eligible(nn.Conv2d(4, 8, (21, 1), padding=(10, 0), groups=4))
    assert not AxisCroppedDWConv2d.is_eligible(nn.Conv2d(4, 4, (21, 1), padding=(10, 0), stride=2, groups=4))
    with pytest.raises(ValueError, match="depthwise"):
        AxisCroppedDWConv2d(nn.Conv2d(4, 4, 1))


def test_optimize_for_inference_is_equivalent_and_crops() -> None:
    model = tiny_model(5).double()
    x = torch.randn(2, 1, 32, 32, dtype=torch.float64)  # stage 4/5 see 2 and 1 mel bins: cropping is active
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = optimize_for_inference(model)
    torch.testing.assert_close(fast(x), model(x), rtol=1e-9, atol=1e-9)
    assert sum(isinstance(m, AxisCroppedDWConv2d) for m in fast.modules()) == 8  # 2 per block, 4 blocks
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # input model untouched


def test_crop_pass_on_paper_fold_keeps_state_dict() -> None:
    fused = arinext.reparameterize_model(arinext.create_model("audio_rep_inception_next_tiny", num_classes=3))
    keys = list(fused.state_dict())
    assert crop_depthwise_kernels(fused) == 8
    assert list(fused.state_dict()) == keys


def test_latency_stats() -> None:
    stats = LatencyStats.from_seconds([0.001 * i for i in range(1, 11)])
    assert stats.median_ms == pytest.approx(5.5) and stats.p90_ms == pytest.approx(9.0)
    assert stats.min_ms == pytest.approx(1.0) and stats.runs == 10
    with pytest.raises(ValueError):
        LatencyStats.from_seconds([])


def test_time_interleaved_round_robin() -> None:
    calls: list[str] = []
    stats = time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3, 1, progress=False)
    assert calls == ["a", "b"] + ["a", "b"] * 3
    assert stats["a"].runs == 3


def test_peak_forward_memory_sees_temporaries() -> None:
    def fn() -> torch.Tensor:
        big = torch.ones(1024, 1024)  # 4 MiB, freed at return
        return big.sum()

    assert peak_forward_memory(fn) >= 4 * 2**20


def test_roofline_reports_positive_rates() -> None:
    roof = roofline(matmul_size=128, copy_mib=4, runs=2)
    assert roof["matmul_gmacs"] > 0 and roof["copy_gbs"] > 0


def test_parse_size() -> None:
    assert parse_size("vggsound") == ("vggsound", 512, 128)
    assert parse_size("epic_sounds") == ("epic_sounds", 416, 128)
    assert parse_size("100x40") == ("100x40", 100, 40)
    with pytest.raises(ValueError, match="bad input size"):
        parse_size("512-128")


def test_cli_bench_quick_end_to_end(tmp_path, capsys) -> None:
    out = tmp_path / "bench"
    code = main(["bench", "--quick", "--roofline", "--threads", "1", "--out", str(out)])
    assert code == 0
    result = json.loads((out / "bench.json").read_text())
    candidates = {r["candidate"] for r in result["rows"]}
    assert "slowfast_audio_r50:train" in candidates and "audio_rep_inception_next_tiny:onnx" in candidates
    assert {r["batch"] for r in result["rows"]} == {1, 2}
    for r in result["rows"]:
        assert r["median_ms"] > 0 and r["p90_ms"] >= r["median_ms"] and r["macs"] > 0
        if r["candidate"] == r["reference"]:
            assert r["speedup_vs_reference"] == pytest.approx(1.0)
    by_name = {r["candidate"]: r for r in result["rows"] if r["batch"] == 1}
    assert (
        by_name["audio_rep_inception_next_tiny:full"]["params"]
        < by_name["audio_rep_inception_next_tiny:train"]["params"]
    )
    assert result["roofline"]["matmul_gmacs"] > 0
    # the Slow-Fast row of each form is the same-form reference: fast is compared with fast
    for batch in (1, 2):
        rows = {r["candidate"]: r for r in result["rows"] if r["batch"] == batch}
        sf, arin = rows["slowfast_audio_r50:fast"], rows["audio_rep_inception_next_tiny:fast"]
        assert sf["speedup_vs_reference_same_form"] == pytest.approx(1.0)
        assert arin["speedup_vs_reference_same_form"] == pytest.approx(sf["median_ms"] / arin["median_ms"])
        assert rows["audio_rep_inception_next_tiny:paper"]["speedup_vs_reference_same_form"] is None
    assert result["config"]["retain_memory"] and "malloc" in (out / "bench.md").read_text()
    assert (out / "bench.png").stat().st_size > 0
    assert "| model:form |" in (out / "bench.md").read_text()
    assert "ratio" in capsys.readouterr().out


def test_cli_bench_rejects_unknown_form(tmp_path, capsys) -> None:
    code = main(["bench", "--candidates", "audio_rep_inception_next_tiny:turbo", "--out", str(tmp_path)])
    assert code == 2
    assert "turbo" in capsys.readouterr().err
