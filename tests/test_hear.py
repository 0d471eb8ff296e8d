"""The HEAR API (``arinext.apps.hear``): the checks of hear-validator 2021.0.6 written out, the validator
itself (installed with ``--no-deps`` by ``make install``; it imports tensorflow only for ``tf.Module``, so a
stub stands in), and what the validator cannot see: drift, batch independence, blocks, devices."""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest
import torch

import arinext
from arinext.apps import hear
from arinext.audio.frontend import FrontendConfig

from .conftest import FE_16K as FE
from .conftest import tiny_model



@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    net = tiny_model(4, bn_seed=1, seed=0)
    path = tmp_path_factory.mktemp("hear") / "model"
    arinext.save_pretrained(net, path, labels=["a", "b", "c", "d"], frontend=FE)
    return str(path)


@pytest.fixture(scope="module")
def model(ckpt) -> hear.HEARModel:
    return hear.load_model(ckpt)


def noise(n: int, seconds: float, rate: int = 16000, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, int(seconds * rate), generator=g) * 2 - 1


def test_load_model_attributes(model) -> None:
    assert isinstance(model, torch.nn.Module)
    assert model.sample_rate in (16000, 22050, 32000, 44100, 48000)
    assert type(model.scene_embedding_size) is int and model.scene_embedding_size == 128
    assert type(model.timestamp_embedding_size) is int and model.timestamp_embedding_size == 64 + 128
    with pytest.raises(ValueError, match="no built-in weights"):
        hear.load_model("")


@pytest.mark.parametrize("seconds", [1.07, 1.98, 4.0, 0.2, 0.05])
def test_timestamp_embeddings_contract(model, seconds) -> None:
    audio = noise(2, seconds)
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    assert emb.dtype == torch.float32 and emb.ndim == 3 and emb.shape[0] == 2
    assert ts.shape == emb.shape[:2] and emb.shape[2] == model.timestamp_embedding_size
    assert torch.isfinite(emb).all()
    t = ts.numpy().astype(np.float64)
    duration = 1000 * audio.shape[1] / model.sample_rate
    assert t[:, 0].tolist() == [0.0, 0.0] and t.max() <= duration
    if t.shape[1] > 1:
        d = np.diff(t, axis=1)
        assert np.abs(d - d.mean()).max() <= 1e-3 and d.max() <= 50.0
        assert t.max() >= duration - 50.0  # the end of the audio is covered


def test_scene_embeddings_contract(model) -> None:
    emb = hear.get_scene_embeddings(noise(4, 2.74), model)
    assert emb.dtype == torch.float32 and emb.shape == (4, model.scene_embedding_size)


def test_timestamps_do_not_drift_over_20_minutes(model) -> None:
    n = 20 * 60 * model.sample_rate
    ts = hear.timestamp_grid_ms(n, model.sample_rate, model.hop_ms)
    assert ts[-1].item() == 20 * 60 * 1000.0
    assert torch.equal(ts, torch.arange(len(ts), dtype=torch.float64) * 50.0)
    # a rate whose hop is a fractional number of samples (44.1 kHz, 25 ms = 1102.5 samples)
    ts = hear.timestamp_grid_ms(37 * 60 * 44100, 44100, 25.0)
    assert ts[-1].item() == 37 * 60 * 1000.0 and len(ts) == 37 * 60 * 40 + 1


def test_batch_independence(model) -> None:
    audio = noise(3, 2.0, seed=1)
    emb, _ = hear.get_timestamp_embeddings(audio, model)
    one, _ = hear.get_timestamp_embeddings(audio[1:2], model)
    torch.testing.assert_close(emb[1:2], one, atol=1e-5, rtol=1e-5)
    scene = hear.get_scene_embeddings(audio, model)
    torch.testing.assert_close(scene[2:], hear.get_scene_embeddings(audio[2:], model), atol=1e-5, rtol=1e-5)
    small = hear.HEARModel(arinext.load(model_path(model)), batch_size=1)
    torch.testing.assert_close(hear.get_scene_embeddings(audio, small), scene, atol=1e-5, rtol=1e-5)


def model_path(model: hear.HEARModel) -> str:
    return arinext.models.metadata(model.taps.model).path


def test_scene_embedding_is_the_classifier_heads_input(ckpt, model) -> None:
    clf = arinext.AudioClassifier.from_pretrained(ckpt)
    audio = noise(2, 1.5, seed=2)
    scene = hear.get_scene_embeddings(audio, model)
    for i in range(2):
        spec = clf.features(audio[i].numpy())
        with torch.no_grad():
            pooled = clf.model.forward_head(clf.model.forward_features(spec), pre_logits=True)[0]
        torch.testing.assert_close(scene[i], pooled, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(clf.embed(audio[i].numpy(), sampling_rate=16000), pooled.numpy(), atol=1e-5)


def test_embeddings_change_with_the_audio_and_the_weights(ckpt, model) -> None:
    """A broken implementation (constant output, ignored weights) fails here."""
    a, b = noise(1, 1.0, seed=3), noise(1, 1.0, seed=4) * 0.01
    assert not torch.allclose(hear.get_scene_embeddings(a, model), hear.get_scene_embeddings(b, model))
    other = hear.HEARModel(tiny_model(4, bn_seed=7), FE)
    assert not torch.allclose(hear.get_scene_embeddings(a, model), hear.get_scene_embeddings(a, other))


def test_long_audio_in_blocks_equals_one_pass(ckpt) -> None:
    net = arinext.load(ckpt)
    audio = noise(1, 45.0, seed=5)
    blocked = hear.HEARModel(net, block_seconds=10.0)
    whole = hear.HEARModel(net, block_seconds=100.0)
    assert blocked.taps.block_frames < 4500 < whole.taps.block_frames
    eb, tb = blocked.timestamp_embeddings(audio)
    ew, tw = whole.timestamp_embeddings(audio)
    assert torch.equal(tb, tw) and eb.shape == ew.shape == (1, 901, 192)
    torch.testing.assert_close(eb, ew, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(blocked.scene_embeddings(audio), whole.scene_embeddings(audio), atol=1e-5, rtol=1e-5)


def test_rejects_bad_inputs_and_rates(model) -> None:
    with pytest.raises(ValueError, match="n_sounds, n_samples"):
        hear.get_scene_embeddings(torch.zeros(16000), model)
    with pytest.raises(ValueError, match="no samples"):
        hear.get_timestamp_embeddings(torch.zeros(1, 0), model)
    net = arinext.create_model("audio_rep_inception_next_tiny", num_classes=2)
    with pytest.raises(ValueError, match="sample rates"):
        hear.HEARModel(net, FrontendConfig(sample_rate=8000, n_fft=256, n_mels=32))


def test_other_registered_models_work_too() -> None:
    net = arinext.create_model("slowfast_audio_r50", num_classes=3).eval()
    m = hear.HEARModel(net, FE)
    audio = noise(2, 1.2, seed=6)
    emb, ts = hear.get_timestamp_embeddings(audio, m)
    assert emb.shape == (2, 25, m.timestamp_embedding_size) and ts[0, -1].item() == 1200.0
    scene = hear.get_scene_embeddings(audio, m)
    spec = m.taps.spectrogram(audio[:1])
    with torch.no_grad():
        pooled = net.forward_head(net.forward_features(spec), pre_logits=True)
    torch.testing.assert_close(scene[:1], pooled, atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_outputs_on_the_models_device(ckpt, monkeypatch) -> None:
    # cuDNN may run float32 convolutions in TF32 (10-bit mantissa) on Ampere and newer: off for the comparison
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    m = hear.load_model(ckpt).to("cuda")
    audio = noise(2, 1.5).to("cuda")
    emb, ts = hear.get_timestamp_embeddings(audio, m)
    assert emb.device.type == ts.device.type == "cuda"
    cpu = hear.load_model(ckpt)
    torch.testing.assert_close(emb.cpu(), hear.get_timestamp_embeddings(audio.cpu(), cpu)[0], atol=1e-3, rtol=1e-3)


def _tensorflow_stub(monkeypatch) -> None:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        tf = types.ModuleType("tensorflow")
        tf.Module = type("Module", (), {})  # nothing arinext returns is a tf.Module
        monkeypatch.setitem(sys.modules, "tensorflow", tf)


def test_hear_validator_passes(ckpt, monkeypatch, capsys) -> None:
    _tensorflow_stub(monkeypatch)
    validate = pytest.importorskip("hearvalidator.validate", reason="make install adds hearvalidator (--no-deps)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validate.ValidateModel("arinext.apps.hear", ckpt, device="cpu")()
    out = capsys.readouterr().out
    assert "Received embedding of shape: (2, 22, 192)" in out  # 1.07 s: 0, 50, ..., 1050 ms
    assert "Received embedding of shape: (4, 128)" in out
    # the validator only warns about hops over 50 ms and timestamps that miss the ends: those are errors here
    bad = [str(w.message) for w in caught if "50ms" in str(w.message) or "Your timestamps" in str(w.message)]
    assert not bad


def test_hear_validator_catches_a_broken_module(ckpt, monkeypatch) -> None:
    """The validator run above can fail: a module whose timestamps overrun the audio is rejected."""
    _tensorflow_stub(monkeypatch)
    validate = pytest.importorskip("hearvalidator.validate", reason="make install adds hearvalidator (--no-deps)")
    broken = types.ModuleType("broken_hear")
    broken.load_model = hear.load_model
    broken.get_scene_embeddings = hear.get_scene_embeddings

    def late(audio, model):
        emb, ts = hear.get_timestamp_embeddings(audio, model)
        return emb, ts + 100.0

    broken.get_timestamp_embeddings = late
    monkeypatch.setitem(sys.modules, "broken_hear", broken)
    with pytest.raises(validate.ModelError, match="timestamps end"):
        validate.ValidateModel("broken_hear", ckpt, device="cpu")()
