"""Promises about the front end kept: ``save_pretrained(frontend=PRESET)`` works, and every command that runs a
checkpoint takes ``--frontend PRESET`` for one that stores no front end (as its error message says)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

import arinext
from arinext.apps import hear
from arinext.audio.frontend import get_preset
from arinext.checkpoints import CheckpointError, load
from arinext.cli import main
from arinext.export.torchscript import load_torchscript
from arinext.inference import AudioClassifier
from arinext.train.evaluation import evaluation_config
from arinext.utils.errors import ConfigError

from .conftest import tiny_model

PRESET = "speech_commands_v2"
LABELS = ["yes", "no"]


def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return tiny_model(len(LABELS), bn_seed=1)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread: pytest processes share the cores."""


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """A save_pretrained directory without a front end (like an authors' .pyth without AUDIO_DATA), and a clip."""
    root = tmp_path_factory.mktemp("bare")
    arinext.save_pretrained(tiny(), root / "model", labels=LABELS)
    sf.write(root / "clip.wav", 0.3 * np.sin(np.arange(16000) / 4.0).astype(np.float32), 16000)
    return root / "model", root / "clip.wav"


def test_save_pretrained_takes_a_preset_name(tmp_path) -> None:
    arinext.save_pretrained(tiny(), tmp_path / "m", labels=LABELS, frontend=PRESET)
    assert json.loads((tmp_path / "m" / "config.json").read_text())["frontend"] == get_preset(PRESET).to_dict()
    assert AudioClassifier.from_pretrained(tmp_path / "m").frontend_config == get_preset(PRESET)
    with pytest.raises(ValueError, match="unknown front-end preset 'speech'"):
        arinext.save_pretrained(tiny(), tmp_path / "x", frontend="speech")
    with pytest.raises(ValueError, match="unknown front-end keys: \\['hop'\\]"):
        arinext.save_pretrained(tiny(), tmp_path / "y", frontend={"hop": 10})
    with pytest.raises(ConfigError, match="unknown front-end field\\(s\\) \\['hop'\\] for preset 'vggsound'"):
        get_preset("vggsound", hop=10)  # was a TypeError


def test_predict_frontend_option(bare, capsys) -> None:
    model, clip = bare
    assert main(["predict", "-m", str(model), str(clip)]) == 2
    assert "no front-end parameters are stored with it; pass the preset it was trained with (--frontend PRESET" in (
        capsys.readouterr().err
    )
    assert main(["predict", "-m", str(model), "--frontend", PRESET, "--json", str(clip)]) == 0
    record = json.loads(capsys.readouterr().out)
    expected = AudioClassifier(load(model), frontend=PRESET)(str(clip))
    assert record["predictions"] == expected


def test_reparam_and_export_frontend_option(bare, tmp_path, capsys) -> None:
    model, _ = bare
    assert main(["reparam", str(model), str(tmp_path / "fused"), "--frontend", PRESET]) == 0
    assert load(tmp_path / "fused").pretrained_cfg["frontend"] == get_preset(PRESET).to_dict()
    out = tmp_path / "m.pt"
    export = ["export", str(model), "--format", "torchscript", "--no-check", "--out", str(out)]
    assert main(export) == 2
    assert "--frontend PRESET" in capsys.readouterr().err
    assert main([*export, "--frontend", PRESET]) == 0
    _, meta = load_torchscript(out)
    assert meta["frontend"] == get_preset(PRESET).to_dict()
    assert "## Front end" in (tmp_path / "README.md").read_text()  # the card shows the front end it was given
    assert "| hop_ms | 2.0 |" in (tmp_path / "README.md").read_text()


def test_eval_frontend_option_sets_the_recipe_preset(bare, monkeypatch, tmp_path, capsys) -> None:
    model, _ = bare
    seen = {}

    def fake_evaluate(checkpoint, out, overrides, subset, progress=None, by=None, sls=None):
        seen["overrides"] = overrides
        return {"fused": {"top1": float("nan")}, "clips": 3}

    monkeypatch.setattr("arinext.train.evaluation.evaluate_checkpoint", fake_evaluate)
    assert main(["eval", str(model), "--out", str(tmp_path), "--frontend", PRESET, "--set", "data.root=d"]) == 0
    assert json.loads(capsys.readouterr().out) == {"fused": {"top1": None}, "clips": 3}  # undefined: null, not NaN
    assert seen["overrides"] == [f"data.preset={PRESET}", "data.frontend={}", "data.root=d"]
    cfg = evaluation_config(load(model), seen["overrides"])
    assert cfg.data.preset == PRESET and cfg.data.frontend == {}


def test_events_frontend_option(bare, monkeypatch, tmp_path, capsys) -> None:
    model, _ = bare
    used = {}

    def fake_evaluate_events(clf, root, **kwargs):
        used["eval"] = clf.frontend_config
        return {"files": 1, "f1": float("nan")}  # an undefined value comes out as null, not NaN

    def fake_fit(clf, train, val, **kwargs):
        used["fit"] = clf.frontend_config
        raise CheckpointError("stop after loading")

    monkeypatch.setattr("arinext.apps.event_detection.evaluate_events", fake_evaluate_events)
    monkeypatch.setattr("arinext.apps.event_detection.fit_frame_head", fake_fit)
    assert main(["events", "eval", str(model), str(tmp_path), "--frontend", PRESET, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"files": 1, "f1": None}
    assert main(["events", "fit", str(model), "--train", "t", "--val", "v", "--frontend", PRESET]) == 2
    assert used == {"eval": get_preset(PRESET), "fit": get_preset(PRESET)}


def test_hear_load_model_frontend_argument(bare) -> None:
    model, _ = bare
    with pytest.raises(CheckpointError, match="frontend=... in Python"):
        hear.load_model(str(model))
    m = hear.load_model(str(model), frontend=PRESET)
    assert m.sample_rate == 16000
    assert hear.get_scene_embeddings(torch.zeros(1, 4000), m).shape == (1, m.scene_embedding_size)
