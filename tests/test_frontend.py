"""The log-mel front end against the original librosa recipe, and its frame arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arinext.audio.frontend import PRESETS, FrontendConfig, LogMel, get_preset, htk_mel_filterbank

librosa = pytest.importorskip("librosa")


def _real_shaped_audio(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """A chirp plus harmonics, an onset and noise: spectrally rich, like real audio."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    x = 0.3 * np.sin(2 * np.pi * (200 * t + 1500 * t**2 / seconds))
    x += 0.2 * np.sin(2 * np.pi * 440 * t) * (t > seconds / 3)
    x += 0.05 * rng.standard_normal(t.shape)
    return x.astype(np.float32)


def _librosa_logmel(x: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """The original pipeline: librosa STFT (magnitude), HTK mel without norm, log(x + 1e-6), time-major."""
    spec = np.abs(
        librosa.stft(
            x, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length, window="hann",
            center=True, pad_mode="constant",
        )
    )
    fb = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, htk=True, norm=None)
    return np.log(fb @ spec + cfg.log_offset).T


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_matches_librosa(preset):
    cfg = get_preset(preset)
    x = _real_shaped_audio(min(cfg.clip_seconds, 2.0), cfg.sample_rate)
    ref = _librosa_logmel(x, cfg)
    ours = LogMel(cfg).double()(torch.from_numpy(x).double())[0, 0].numpy()
    assert ours.shape == ref.shape
    # compare where the mel energy is not at the 1e-6 floor (log is ill-conditioned there)
    mask = ref > np.log(1e-4)
    assert mask.mean() > 0.5
    np.testing.assert_allclose(ours[mask], ref[mask], atol=1e-4)
    np.testing.assert_allclose(np.exp(ours), np.exp(ref), rtol=1e-5, atol=1e-5)


def test_mel_matrix_matches_librosa():
    for sr in (16000, 24000):
        ref = librosa.filters.mel(sr=sr, n_fft=2048, n_mels=128, htk=True, norm=None)
        np.testing.assert_allclose(htk_mel_filterbank(sr, 2048, 128).numpy(), ref, atol=1e-6)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_clip_gives_exactly_num_frames(preset):
    cfg = get_preset(preset)
    assert cfg.frames_for(cfg.clip_samples) == cfg.num_frames
    out = LogMel(cfg)(torch.zeros(cfg.clip_samples))
    assert out.shape == (1, 1, cfg.num_frames, 128)


def test_vggsound_5119_ms_is_512_frames():
    fe = LogMel.from_preset("vggsound")
    assert fe(torch.zeros(3, int(5.119 * 16000))).shape == (3, 1, 512, 128)


def test_batched_equals_single_and_shapes():
    fe = LogMel.from_preset("speech_commands_v2")
    x = torch.randn(3, 16000)
    batch = fe(x)
    for i in range(3):
        torch.testing.assert_close(batch[i : i + 1], fe(x[i]))
    torch.testing.assert_close(fe(x.unsqueeze(1)), batch)
    assert torch.isfinite(fe(torch.zeros(1, 10))).all()  # shorter than one window: still finite
    with pytest.raises(ValueError):
        fe(torch.zeros(2, 2, 100))
    with pytest.raises(ValueError):
        get_preset("esc50")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_the_inputs_device():
    fe = LogMel.from_preset("vggsound").cuda()
    x = torch.randn(2, 16000)
    torch.testing.assert_close(fe(x.cuda()).cpu(), LogMel.from_preset("vggsound")(x), atol=1e-3, rtol=1e-4)
