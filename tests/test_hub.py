"""Hub-style checkpoints: the model card, loading without huggingface_hub, uploads through a fake HfApi,
and ``PyTorchModelHubMixin``. Nothing here touches the network (repo ids run with ``HF_HUB_OFFLINE=1``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import arinext
from arinext.checkpoints import CARD_NAME, push_to_hub, write_model_card
from arinext.checkpoints.card import CARD_MARKER, render_model_card
from arinext.checkpoints.hub import HUB_FILES, from_pretrained, is_repo_id
from arinext.cli import main

from .conftest import tiny_model

FE = arinext.get_preset("speech_commands_v2", win_ms=25.0, hop_ms=10.0, n_mels=64, num_frames=101, clip_seconds=1.0)
LABELS = ["yes", "no", "up"]
X = torch.randn(2, 1, 101, 64)


@pytest.fixture()
def net() -> torch.nn.Module:
    return tiny_model(3, bn_seed=1, seed=0)


@pytest.fixture()
def saved(net, tmp_path) -> Path:
    metrics = {"test top-1": {"value": 0.915, "dataset": "keywords10", "split": "test (unseen speakers)"}}
    return arinext.save_pretrained(net, tmp_path / "ckpt", labels=LABELS, frontend=FE, metrics=metrics,
                                   command="arinext demo --out runs/demo", license="apache-2.0")  # fmt: skip


def front_matter(text: str) -> dict:
    import yaml

    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_save_pretrained_writes_the_card(saved) -> None:
    assert sorted(p.name for p in saved.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    text = (saved / CARD_NAME).read_text()
    meta = front_matter(text)
    assert meta["library_name"] == "arinext" and meta["pipeline_tag"] == "audio-classification"
    assert meta["license"] == "apache-2.0" and "audio_rep_inception_next_tiny" in meta["tags"]
    assert meta["metrics"] == ["accuracy"] and meta["datasets"] == ["keywords10"]
    result = meta["model-index"][0]["results"][0]
    assert result["metrics"][0]["value"] == 0.915 and result["dataset"]["split"] == "test (unseen speakers)"
    assert "3 classes, in output order: `yes`, `no`, `up`" in text and "| n_mels | 64 |" in text
    assert "arinext demo --out runs/demo" in text and CARD_MARKER in text
    cfg = json.loads((saved / "config.json").read_text())
    assert cfg["card"]["metrics"]["test top-1"]["value"] == 0.915


def test_card_is_read_by_huggingface_hub(saved) -> None:
    hub = pytest.importorskip("huggingface_hub")
    card = hub.ModelCard.load(saved / CARD_NAME)  # a local file: parsed, not fetched
    assert card.data.library_name == "arinext" and card.data.pipeline_tag == "audio-classification"
    assert card.data.eval_results[0].metric_value == 0.915
    assert card.data.eval_results[0].dataset_name == "keywords10"


def test_card_without_metrics_or_licence_says_so(net, tmp_path) -> None:
    d = arinext.save_pretrained(net, tmp_path / "m", labels=LABELS, frontend=FE)
    meta = front_matter((d / CARD_NAME).read_text())
    assert meta["license"] == "unknown" and "metrics" not in meta and "model-index" not in meta
    assert "licence of these weights was not given" in (d / CARD_NAME).read_text()


def test_a_users_readme_is_never_replaced(net, tmp_path) -> None:
    d = tmp_path / "m"
    d.mkdir()
    (d / CARD_NAME).write_text("# my own notes\n")
    arinext.save_pretrained(net, d, labels=LABELS, frontend=FE)
    assert (d / CARD_NAME).read_text() == "# my own notes\n"
    assert write_model_card(d) is None


def test_card_survives_fusing_and_lists_a_frame_head(saved, tmp_path) -> None:
    fused = arinext.reparameterize_model(arinext.load(saved), fold="full")
    d = arinext.save_pretrained(fused, tmp_path / "fused")
    text = (d / CARD_NAME).read_text()
    assert "fused (full fold)" in text and "0.915" in text and "arinext demo --out runs/demo" in text
    head = {"labels": LABELS, "background": "_background_", "in_features": 192, "stages": [-2, -1], "hop_ms": 50.0,
            "context": 2, "hidden": 0, "decode": {"threshold": 0.5}, "info": {"validation": {"f1": 0.83, "precision": 0.8,
            "recall": 0.86, "reference_events": 96, "collar_s": 0.2}, "command": "arinext events fit X"}}  # fmt: skip
    cfg = json.loads((d / "config.json").read_text())
    text = render_model_card(cfg, head)
    assert "sound-event-detection" in front_matter(text)["tags"]
    assert "F1 0.830" in text and "arinext events fit X" in text and "--events" in text


def test_loading_a_directory_needs_no_huggingface_hub(saved) -> None:
    code = (
        "import sys; sys.modules['huggingface_hub'] = None\n"  # any import of it fails
        "import numpy as np, arinext\n"
        "from arinext.checkpoints import from_pretrained\n"
        "from arinext.utils.optional import MissingExtraError\n"
        f"m = from_pretrained({str(saved)!r})\n"
        f"clf = arinext.AudioClassifier.from_pretrained({str(saved)!r})\n"
        "print(clf(np.zeros(16000, 'float32'), sampling_rate=16000, top_k=1)[0]['label'])\n"
        "try:\n    from_pretrained('someone/some-model')\nexcept MissingExtraError as e:\n    print(e)\n"
        "try:\n    import arinext.checkpoints.hub_mixin\nexcept MissingExtraError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] in LABELS
    assert "pip install 'arinext[hub]'" in out[1] and "someone/some-model" in out[1]
    assert "pip install 'arinext[hub]'" in out[2]


def test_repo_ids_fail_fast_offline(tmp_path) -> None:
    pytest.importorskip("huggingface_hub")
    code = (
        "import arinext.checkpoints as c\n"
        "try:\n    c.from_pretrained('nobody-here/no-such-arinext-model')\n"
        "except Exception as e:\n    print(type(e).__name__)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, timeout=120)
    assert "NotFound" in out.stdout or "Offline" in out.stdout  # LocalEntryNotFoundError: no download attempted


def test_repo_id_or_path() -> None:
    assert is_repo_id("someone/model-1") and not is_repo_id("./someone/model") and not is_repo_id("model")
    assert not is_repo_id(str(Path(__file__).parent.name + "/" + Path(__file__).name))  # an existing path


class FakeApi:
    """Records what an upload would send; ``folder_path`` is copied before the temporary folder goes."""

    def __init__(self, token: str | None = None) -> None:
        self.calls: list[tuple] = []
        self.files: list[str] = []

    def create_repo(self, repo_id, private=None, exist_ok=False, **kw):
        self.calls.append(("create_repo", repo_id, private, exist_ok))
        return type("RepoUrl", (), {"repo_id": repo_id})()

    def upload_folder(self, repo_id, folder_path, repo_type=None, commit_message=None, revision=None, **kw):
        allowed = kw.get("allow_patterns")
        self.files = sorted(p.name for p in Path(folder_path).iterdir() if allowed is None or p.name in allowed)
        self.card = (Path(folder_path) / CARD_NAME).read_text()
        self.calls.append(("upload_folder", repo_id, repo_type))
        return f"https://huggingface.co/{repo_id}/commit/0"


def test_push_a_model_and_a_directory_with_a_fake_api(net, saved) -> None:
    api = FakeApi()
    url = push_to_hub(net, "me/kw", api=api, labels=LABELS, frontend=FE, private=True)
    assert url.endswith("me/kw/commit/0")
    assert api.calls == [("create_repo", "me/kw", True, True), ("upload_folder", "me/kw", "model")]
    assert api.files == ["README.md", "config.json", "model.safetensors"]
    (saved / "notes.txt").write_text("not uploaded")
    api = FakeApi()
    push_to_hub(saved, "me/kw", api=api)
    assert api.files == ["README.md", "config.json", "model.safetensors"] and set(api.files) <= set(HUB_FILES)
    with pytest.raises(FileNotFoundError, match="not a save_pretrained directory"):
        push_to_hub(saved.parent, "me/kw", api=FakeApi())


def test_pytorch_model_hub_mixin(net, saved, tmp_path, monkeypatch) -> None:
    hub = pytest.importorskip("huggingface_hub")
    from arinext.checkpoints.hub_mixin import ARINextModel

    m = ARINextModel.from_pretrained(str(saved))  # the mixin's own entry point, a local directory
    assert isinstance(m, hub.PyTorchModelHubMixin)
    with torch.no_grad():
        torch.testing.assert_close(m(X), net(X))
    m.save_pretrained(tmp_path / "again")
    cfg = json.loads((tmp_path / "again" / "config.json").read_text())
    assert cfg["model"] == "audio_rep_inception_next_tiny" and cfg["labels"] == LABELS
    assert CARD_MARKER in (tmp_path / "again" / CARD_NAME).read_text()  # our card, not the mixin's template
    with torch.no_grad():
        torch.testing.assert_close(arinext.load(tmp_path / "again")(X), net(X))  # arinext reads what the mixin wrote
    wrapped = ARINextModel.from_model(arinext.reparameterize_model(net, fold="full"))
    wrapped.save_pretrained(tmp_path / "fused")
    assert arinext.models.metadata(arinext.load(tmp_path / "fused")).fold == "full"

    api = FakeApi()
    monkeypatch.setattr(hub.hub_mixin, "HfApi", lambda token=None: api)
    assert m.push_to_hub("me/kw") == "https://huggingface.co/me/kw/commit/0"
    assert api.files == ["README.md", "config.json", "model.safetensors"] and CARD_MARKER in api.card


def test_from_pretrained_local_forms(saved) -> None:
    model = from_pretrained(saved)
    assert arinext.models.metadata(model).labels == LABELS and arinext.models.metadata(model).card["license"] == "apache-2.0"


def test_export_writes_a_card_next_to_its_output(saved, tmp_path, capsys) -> None:
    pytest.importorskip("onnx")
    out = tmp_path / "onnx" / "kw.onnx"
    assert main(["export", str(saved), "--out", str(out), "--waveform", "-q"]) == 0
    text = (out.parent / CARD_NAME).read_text()
    assert "| `kw.onnx` | log-mel" in text and "| `kw.waveform.onnx` | waveform" in text
    assert "fused (full fold)" in text and "0.915" in text and "arinext export" in text


def test_the_command_is_recorded_only_while_it_runs(net, tmp_path) -> None:
    from arinext.utils.provenance import current_command

    assert main(["models", "audio_rep_inception_next_tiny", "-q"]) == 0
    assert current_command() is None  # a later save_pretrained in the same process is not attributed to it
    assert main(["reparam", str(arinext.save_pretrained(net, tmp_path / "a", labels=LABELS, frontend=FE)),
                 str(tmp_path / "b"), "-q"]) == 0  # fmt: skip
    assert f"arinext reparam {tmp_path / 'a'} {tmp_path / 'b'} -q" in (tmp_path / "b" / CARD_NAME).read_text()
