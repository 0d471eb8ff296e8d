"""The authors' checkpoints: strict key mapping, parity with their outputs, refusal of unsafe pickles."""

from __future__ import annotations

import pickle

import pytest
import torch

import arinext
from arinext.checkpoints import CheckpointError, OfficialCheckpointError, convert_original_state_dict
from arinext.layers import fold_state

CASES = [
    ("small_unmerged.pyth", "auto", "logits_unmerged", None),
    ("small_unmerged.pyth", "fused", "logits_unmerged", "paper"),
    ("small_merged.pyth", "auto", "logits_merged", None),
    ("small_merged.pyth", "fused", "logits_merged", "paper"),
    ("small_inference.pyth", "auto", "logits_inference", "paper"),
]


@pytest.mark.parametrize("filename,form,key,fold", CASES)
def test_official_fixtures_match(official_dir, filename, form, key, fold):
    x = torch.load(official_dir / "small_input.pt", weights_only=True)
    expected = torch.load(official_dir / "small_expected_outputs.pt", weights_only=True)
    model = arinext.load_official_checkpoint(official_dir / filename, form=form)
    assert fold_state(model) == fold
    with torch.no_grad():
        logits = model(x)
    torch.testing.assert_close(logits, expected[key], atol=1e-5, rtol=0)
    torch.testing.assert_close(logits.softmax(-1), expected[key.replace("logits", "probs")], atol=1e-6, rtol=0)
    info = arinext.models.metadata(model)
    assert info.frontend["sample_rate"] == 16000 and info.frontend["n_mels"] == 64 and info.source == "official"
    assert info.args["dims"] == (8, 16, 32, 64) and info.args["num_classes"] == 10 and info.fold == fold


def test_official_float64_and_stages(official_dir):
    x = torch.load(official_dir / "small_input.pt", weights_only=True)
    expected = torch.load(official_dir / "small_expected_outputs.pt", weights_only=True)
    model = arinext.load_official_checkpoint(official_dir / "small_unmerged.pyth").double()
    with torch.no_grad():
        torch.testing.assert_close(model(x.double()), expected["logits_unmerged_float64"], atol=1e-9, rtol=0)
        h = model.stem(x.double())
        torch.testing.assert_close(h.float(), expected["stages_unmerged"]["s1"], atol=1e-5, rtol=0)
        for i, stage in enumerate(model.stages):
            h = stage(h)
            torch.testing.assert_close(h.float(), expected["stages_unmerged"][f"s{i + 2}"], atol=1e-5, rtol=0)


def test_training_form_refused_for_fused_only_file(official_dir):
    with pytest.raises(OfficialCheckpointError, match="only fused"):
        arinext.load_official_checkpoint(official_dir / "small_inference.pyth", form="training")


def test_unexpected_and_missing_keys_are_named(official_dir, tmp_path):
    ckpt = torch.load(official_dir / "small_unmerged.pyth", weights_only=True)
    ckpt["model_state"]["s2.pathway0_res0.branch2.mystery.weight"] = torch.zeros(1)
    bad = tmp_path / "extra.pyth"
    torch.save(ckpt, bad)
    with pytest.raises(OfficialCheckpointError, match="mystery"):
        arinext.load_official_checkpoint(bad)
    ckpt = torch.load(official_dir / "small_unmerged.pyth", weights_only=True)
    del ckpt["model_state"]["s3.pathway0_res1.branch2.c_bn.running_var"]
    torch.save(ckpt, bad)
    with pytest.raises(CheckpointError, match=r"1 missing \(stages\.1\.blocks\.1\.mlp\.fc1\.bn\.running_var\)"):
        arinext.load_official_checkpoint(bad)


class _Exploit:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path(__import__('os').environ['ARINEXT_PWNED']).write_text('ran')",))


def test_malicious_pickle_is_refused_without_running(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("ARINEXT_PWNED", str(marker))
    path = tmp_path / "evil.pyth"
    with open(path, "wb") as f:
        pickle.dump({"model_state": {}, "cfg": "", "payload": _Exploit()}, f)
    with pytest.raises(CheckpointError, match="evil.pyth: refused to load"):
        arinext.load_official_checkpoint(path)
    assert not marker.exists()


def test_garbage_and_missing_files(tmp_path):
    junk = tmp_path / "junk.pyth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="junk.pyth: refused to load: not a weights-only PyTorch file"):
        arinext.load_official_checkpoint(junk)
    with pytest.raises(FileNotFoundError):
        arinext.load_official_checkpoint(tmp_path / "absent.pyth")
    torch.save({"weights": {}}, junk)
    with pytest.raises(OfficialCheckpointError, match="model_state"):
        arinext.load_official_checkpoint(junk)


def test_converter_renames_every_kind_of_key():
    sd = {
        "s1.pathway0_stem.conv.weight": 0,
        "s2.pathway0_res0.branch2.a_bn_medium.running_mean": 1,
        "s5.pathway0_res2.branch2.b_small.weight": 2,
        "s3.pathway0_res0.branch1_bn.bias": 3,
        "s4.pathway0_res5.branch2.b_reparam.bias": 4,
        "head.projection_noun.weight": 5,
    }
    assert convert_original_state_dict(sd) == {
        "stem.conv.conv.weight": 0,
        "stages.0.blocks.0.mixer.time_mixer.branches.1.bn.running_mean": 1,
        "stages.3.blocks.2.mixer.freq_mixer.branches.2.conv.weight": 2,
        "stages.1.blocks.0.shortcut.bn.bias": 3,
        "stages.2.blocks.5.mixer.freq_mixer.reparam_conv.bias": 4,
        "head.fc.noun.weight": 5,
    }
    with pytest.raises(ValueError, match="head.extra"):
        convert_original_state_dict({"head.extra.weight": 0})
