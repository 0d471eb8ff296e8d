"""CLI smoke tests: ``arinext predict``, ``arinext export`` and ``arinext reparam`` on a tiny checkpoint."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

import arinext
from arinext.cli import main
from arinext.export import onnx_logits, onnx_session, read_metadata

from .conftest import FE_8K as FE
from .conftest import tiny_model

LABELS = ["low", "high"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    model = tiny_model(2, bn_seed=2, seed=0)
    path = tmp_path_factory.mktemp("ckpt") / "model"
    arinext.save_pretrained(model, path, labels=LABELS, frontend=FE)
    return str(path)


def write_tone(path, seconds: float, freq: float, sr: int = 8000) -> None:
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, subtype="FLOAT")


def test_predict_files_folders_and_json(ckpt, tmp_path, capsys) -> None:
    (tmp_path / "clips").mkdir()
    write_tone(tmp_path / "clips" / "a.wav", 0.6, 300)
    write_tone(tmp_path / "clips" / "b.wav", 0.6, 2000)
    assert main(["predict", "-m", ckpt, str(tmp_path / "clips"), "-k", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(tmp_path / "clips" / "a.wav"))
    assert lines[0].split("\t")[1].split("=")[0] in LABELS

    assert main(["predict", "-m", ckpt, "--json", str(tmp_path / "clips" / "a.wav")]) == 0
    record = json.loads(capsys.readouterr().out)
    clf = arinext.AudioClassifier.from_pretrained(ckpt)
    assert record["predictions"] == clf(str(tmp_path / "clips" / "a.wav"))


def test_predict_stdin_and_long_files_scan(ckpt, tmp_path, capsys, monkeypatch) -> None:
    write_tone(tmp_path / "long.wav", 2.2, 500)
    data = (tmp_path / "long.wav").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["predict", "-m", ckpt, "--json", "--max-clip", "1.0", "-"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["input"] == "-" and record["duration"] == pytest.approx(2.2)
    clf = arinext.AudioClassifier.from_pretrained(ckpt)
    assert record["predictions"] == clf.scan(str(tmp_path / "long.wav")).aggregate

    assert main(["predict", "-m", ckpt, "--windows", "--window", "1.0", "--hop", "1.0", str(tmp_path / "long.wav")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 + 3 and "[    2.00,     2.20] s" in out[-1]  # last partial window


def test_predict_errors(ckpt, tmp_path, capsys) -> None:
    (tmp_path / "bad.wav").write_bytes(b"RIFF....garbage")
    assert main(["predict", "-m", ckpt, str(tmp_path / "bad.wav")]) == 1
    assert "bad.wav" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["predict", "-m", ckpt, str(tmp_path / "empty")]) == 2
    assert "no audio files" in capsys.readouterr().err


def test_reparam_then_export_onnx_with_int8(ckpt, tmp_path, capsys) -> None:
    assert main(["reparam", ckpt, str(tmp_path / "fused")]) == 0
    out = capsys.readouterr().out
    assert "params:" in out and "max |logit difference|" in out
    before, after = (int(s.replace(",", "")) for s in out.split("params: ")[1].split("\n")[0].split(" -> "))
    assert after < before
    assert float(out.rsplit(": ", 1)[1]) < 1e-4
    fused = arinext.load_pretrained(tmp_path / "fused")
    assert arinext.models.metadata(fused).fold == "full" and arinext.models.metadata(fused).labels == LABELS

    onnx_path = tmp_path / "m.onnx"
    for i in range(30):  # the int8 check needs labelled clips: 60 tones, named like the checkpoint's classes
        for label, freq in (("low", 300), ("high", 2500)):
            (tmp_path / "data" / "testing" / label).mkdir(parents=True, exist_ok=True)
            write_tone(tmp_path / "data" / "testing" / label / f"{i}.wav", 0.5, freq * (1 + i / 100))
    args = ["export", str(tmp_path / "fused"), "--out", str(onnx_path), "--quantize", "int8", "--quant-mode", "dynamic"]
    code = main([*args, "--eval-data", str(tmp_path / "data")])
    out = capsys.readouterr().out
    check = json.loads(out[out.index("{") : out.rindex("}") + 1])["check"]
    assert code == 0 and check["clips"] == 60 and check["source"].startswith("testing clips of") and check["passed"]
    assert "max abs diff" in out and "int8 check on 60 testing clips" in out and (tmp_path / "m.int8.onnx").is_file()
    assert read_metadata(onnx_path)["labels"] == LABELS
    x = torch.randn(1, 1, 60, FE.n_mels) - 4
    with torch.no_grad():
        np.testing.assert_allclose(onnx_logits(onnx_session(onnx_path), x), fused(x).numpy(), atol=1e-4)


def test_export_torchscript_and_bad_flags(ckpt, tmp_path, capsys) -> None:
    assert main(["export", ckpt, "--format", "torchscript", "--out", str(tmp_path / "m.pt")]) == 0
    assert "max abs diff" in capsys.readouterr().out
    assert main(["export", ckpt, "--format", "torchscript", "--out", str(tmp_path / "x.pt"), "--quantize", "int8"]) == 2
    assert main(["export", ckpt, "--out", str(tmp_path / "y.onnx"), "--quantize", "int8"]) == 2
    assert "--calib-data" in capsys.readouterr().err
    # int8 is never written unchecked: dynamic mode needs clips for the check too
    args = ["export", ckpt, "--out", str(tmp_path / "z.onnx"), "--quantize", "int8", "--quant-mode", "dynamic"]
    assert main(args) == 2
    assert "--eval-data" in capsys.readouterr().err and not (tmp_path / "z.onnx").exists()
    # ... and never on its calibration clips
    args = ["export", ckpt, "--out", str(tmp_path / "z.onnx"), "--quantize", "int8", "--calib-data", str(tmp_path)]
    assert main([*args, "--eval-data", str(tmp_path), "--eval-subset", "training"]) == 2
    assert "calibration clips" in capsys.readouterr().err and not (tmp_path / "z.onnx").exists()
    assert main([*args, "--eval-data", str(tmp_path), "--min-agreement", "97"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err


def test_reparam_official_checkpoint(official_dir, tmp_path, capsys) -> None:
    assert main(["reparam", str(official_dir / "small_unmerged.pyth"), str(tmp_path / "off")]) == 0
    out = capsys.readouterr().out
    assert "222,370 ->" in out and float(out.rsplit(": ", 1)[1]) < 1e-4
