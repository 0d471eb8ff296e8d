"""arinext's own checkpoint directory: round trips for every form, strictness, no pickle."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import arinext
from arinext.checkpoints import CONFIG_NAME, WEIGHTS_NAME
from arinext.layers import fold_state

from .conftest import tiny_model


@pytest.mark.parametrize("fold", [None, "paper", "full"])
def test_round_trip(tmp_path, fold):
    model = tiny_model(3)
    if fold:
        model = arinext.reparameterize_model(model, fold=fold)
    labels = ["cat", "dog", "bird"]
    arinext.save_pretrained(model, tmp_path / "ckpt", labels=labels, frontend=arinext.get_preset("nsynth"))
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["README.md", CONFIG_NAME, WEIGHTS_NAME]
    config = json.loads((tmp_path / "ckpt" / CONFIG_NAME).read_text())
    assert config["fold"] == fold and config["labels"] == labels and config["frontend"]["num_frames"] == 416
    loaded = arinext.load_pretrained(tmp_path / "ckpt")
    assert fold_state(loaded) == fold and not loaded.training
    x = torch.randn(2, 1, 50, 40)
    torch.testing.assert_close(loaded(x), model(x))
    assert arinext.models.metadata(loaded).labels == labels and arinext.models.metadata(loaded).source == "pretrained"
    # the weights file is safetensors, not a pickle
    assert (tmp_path / "ckpt" / WEIGHTS_NAME).read_bytes()[8:9] == b"{"


def test_multi_head_round_trip(tmp_path):
    heads = {"verb": 4, "noun": 6}
    model = arinext.create_model("audio_rep_inception_next_tiny", num_classes=heads).eval()
    labels = {"verb": list("abcd"), "noun": list("uvwxyz")}
    arinext.save_pretrained(model, tmp_path, labels=labels)
    out = arinext.load_pretrained(tmp_path)(torch.randn(1, 1, 40, 40))
    assert out["noun"].shape == (1, 6)


def test_metadata_record_and_the_read_only_view(tmp_path):
    model = arinext.create_model("audio_rep_inception_next_tiny", num_classes=3)
    arinext.save_pretrained(model, tmp_path, labels=["a", "b", "c"], frontend=arinext.get_preset("nsynth"))
    loaded = arinext.load(tmp_path)
    info = arinext.models.metadata(loaded)
    assert (info.name, dict(info.args), info.fold, info.num_classes) == ("audio_rep_inception_next_tiny", {"num_classes": 3}, None, 3)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert info.to_config() == {k: config[k] for k in info.to_config()}  # the record is config.json's fields
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.labels = ["x"]  # type: ignore[misc]
    fused = arinext.reparameterize_model(loaded, fold="full")
    assert arinext.models.metadata(fused).fold == "full" and arinext.models.metadata(fused).labels == ["a", "b", "c"]
    # the dict of arinext 0.1, read-only, follows the record
    assert fused.pretrained_cfg["labels"] == ["a", "b", "c"] and fused.pretrained_cfg["fold"] == "full"
    with pytest.raises(TypeError):
        fused.pretrained_cfg["labels"] = ["x"]  # type: ignore[index]
    assert arinext.models.metadata(torch.nn.Linear(2, 2)) == arinext.models.ModelInfo()


def test_errors(tmp_path):
    model = arinext.create_model("audio_rep_inception_next_tiny", num_classes=3)
    with pytest.raises(ValueError, match="3 classes but 2 labels"):
        arinext.save_pretrained(model, tmp_path / "a", labels=["x", "y"])
    with pytest.raises(FileNotFoundError):
        arinext.load_pretrained(tmp_path / "nothing-here")
    with pytest.raises(ValueError, match="registered name"):
        arinext.save_pretrained(torch.nn.Linear(2, 2), tmp_path / "b")
    arinext.save_pretrained(model, tmp_path / "c")
    (tmp_path / "c" / CONFIG_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="invalid JSON"):
        arinext.load_pretrained(tmp_path / "c")


def test_weights_of_another_form_are_refused(tmp_path):
    model = arinext.create_model("audio_rep_inception_next_tiny", num_classes=3)
    arinext.save_pretrained(model, tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    config["fold"] = "paper"  # claims fused, holds training-form tensors
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"weights do not fit the paper fold of .* \d+ missing .* \d+ unexpected"):
        arinext.load_pretrained(tmp_path)


def test_official_checkpoint_through_load_pretrained(official_dir, tmp_path):
    model = arinext.load_pretrained(official_dir / "small_unmerged.pyth")
    fused = arinext.reparameterize_model(model)
    arinext.save_pretrained(fused, tmp_path)
    again = arinext.load_pretrained(tmp_path)
    x = torch.load(official_dir / "small_input.pt", weights_only=True)
    expected = torch.load(official_dir / "small_expected_outputs.pt", weights_only=True)["logits_unmerged"]
    torch.testing.assert_close(again(x), expected, atol=1e-5, rtol=0)
    assert arinext.models.metadata(again).frontend["n_mels"] == 64
