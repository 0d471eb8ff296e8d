"""The fast scan: block log-mels equal per-window log-mels bit for bit, batched windows equal unbatched ones
up to float rounding, and the batched model is the fused model's function."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import arinext.inference.stream as stream_module
from arinext.audio.frontend import FrontendConfig, LogMel, get_preset
from arinext.inference import AudioClassifier
from arinext.inference.window_features import block_features_supported, window_logmels

from .test_inference import FE, LABELS, make_model, tone

DEMO = dict(win_ms=25.0, hop_ms=10.0, n_mels=64, num_frames=101, clip_seconds=1.0)
FRONT_ENDS = {
    "vggsound": get_preset("vggsound"),
    "speech_commands_v2": get_preset("speech_commands_v2"),
    "demo": get_preset("speech_commands_v2", **DEMO),
    "small": FE,
    "hop_not_dividing_half_fft": FrontendConfig(sample_rate=8000, win_ms=20.0, hop_ms=12.0, n_fft=256, n_mels=16,
                                                num_frames=42, clip_seconds=0.5),  # fmt: skip
}


@pytest.mark.parametrize("name", list(FRONT_ENDS))
def test_block_logmels_equal_per_window_logmels(name):
    cfg = FRONT_ENDS[name]
    fe = LogMel(cfg)
    window = cfg.clip_samples
    hop = (window // 2) // cfg.hop_length * cfg.hop_length
    x = np.random.default_rng(0).standard_normal(window * 4 + 777).astype(np.float32)
    starts = list(range(333, x.size - window + 1, hop))
    assert len(starts) >= 5 and block_features_supported(fe, window, hop)
    block = window_logmels(x, starts, window, fe)
    for i, s in enumerate(starts):
        single = fe(torch.from_numpy(x[s : s + window]))
        assert torch.equal(block[i], single[0]), (name, i)


def test_block_logmels_reject_windows_off_the_grid():
    fe = LogMel(FE)
    x = np.zeros(20000, np.float32)
    assert not block_features_supported(fe, 4000, 2001)
    assert not block_features_supported(LogMel(FrontendConfig(n_fft=255, win_ms=10.0)), 16000, 8000)  # odd n_fft
    with pytest.raises(ValueError, match="hop grid"):
        window_logmels(x, [0, 2001], 4000, fe)


@pytest.fixture(scope="module")
def clf() -> AudioClassifier:
    return AudioClassifier(make_model(), frontend=FE, labels=LABELS)


@pytest.mark.parametrize("hop", [0.25, 0.2, 0.2375])  # on the 10 ms grid, and off it (per-window fallback)
def test_stream_equals_per_window_classification(clf, hop, monkeypatch):
    calls = []
    real = stream_module.window_logmels
    monkeypatch.setattr(stream_module, "window_logmels", lambda *a: calls.append(len(a[1])) or real(*a))
    x = tone(3.1, seed=7)
    windows = clf.scan(x, sampling_rate=8000, window=0.5, hop=hop, batch_size=1, block_seconds=1.3).windows
    full = [w for w in windows if round((w.end - w.start) * 8000) == 4000]
    assert len(full) >= 10
    for w in windows:  # every window, as if classified on its own
        s, e = round(w.start * 8000), round(w.end * 8000)
        np.testing.assert_array_equal(w.probs, clf.probs_from_waveforms([x[s:e]], min_frames=FE.num_frames)[0])
    on_grid = round(hop * 8000) % FE.hop_length == 0
    assert sum(calls) == (len(full) if on_grid else 0)  # the block path ran where it applies


def test_scan_batches_by_default_within_float_rounding(clf):
    x = tone(6.0, seed=9)
    one = clf.scan(x, sampling_rate=8000, batch_size=1)
    default = clf.scan(x, sampling_rate=8000)
    np.testing.assert_allclose(default.probs, one.probs, rtol=0, atol=1e-5)
    assert (default.probs.argmax(1) == one.probs.argmax(1)).all()
    assert clf._batch_model is not None  # the channels-last copy served the batches


def test_batched_model_is_the_fused_function():
    model = make_model(1)
    clf = AudioClassifier(model, frontend=FE, labels=LABELS)
    specs = torch.randn(6, 1, FE.num_frames, FE.n_mels)
    singles = np.concatenate([clf.probs_from_features(s[None]) for s in specs])
    assert clf._batch_model is None  # single clips keep the plain fused model
    batched = clf.probs_from_features(specs)
    np.testing.assert_allclose(batched, singles, rtol=0, atol=1e-6)
    with torch.no_grad():
        reference = torch.softmax(model(specs), -1).numpy()
    np.testing.assert_allclose(batched, reference, rtol=0, atol=1e-5)
    unfused = AudioClassifier(model, frontend=FE, labels=LABELS, fuse=False)
    unfused.probs_from_features(specs)
    assert unfused._batch_model is None  # fuse=False runs the model as given
