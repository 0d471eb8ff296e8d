"""AudioClassifier: every input form, the pipeline output format, scan windowing and streaming = offline."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
import torch

import arinext
from arinext.audio.io import AudioDecodeError, resample
from arinext.inference import AudioClassifier, aggregate_probs, top_k_labels, window_count

from .conftest import FE_8K as FE
from .conftest import tiny_model

# A small front end keeps every test fast: 8 kHz, 0.5 s crops of 51 frames, 32 mel bins.
LABELS = ["alpha", "beta", "gamma", "delta"]


def make_model(seed: int = 0) -> torch.nn.Module:
    return tiny_model(len(LABELS), bn_seed=seed, seed=seed, head_std=0.1)  # spread scores: a meaningful ranking


@pytest.fixture(scope="module")
def clf() -> AudioClassifier:
    return AudioClassifier(make_model(), frontend=FE, labels=LABELS)


def tone(seconds: float, sr: int = 8000, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    noise = np.random.default_rng(seed).standard_normal(t.size) * 0.05
    return (0.5 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


def wav_bytes(x: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def check_format(preds: list, k: int) -> None:
    assert len(preds) == k
    assert all(set(p) == {"label", "score"} and isinstance(p["score"], float) for p in preds)
    scores = [p["score"] for p in preds]
    assert scores == sorted(scores, reverse=True)
    assert {p["label"] for p in preds} <= set(LABELS)


# -- input forms ------------------------------------------------------------------------------


def test_all_input_forms_agree(clf: AudioClassifier, tmp_path) -> None:
    x = tone(0.7)
    path = tmp_path / "clip.wav"
    sf.write(path, x, 8000, subtype="FLOAT")
    reference = clf(x, sampling_rate=8000, top_k=None)
    check_format(reference, len(LABELS))
    assert abs(sum(p["score"] for p in reference) - 1.0) < 1e-5  # softmax over all classes
    forms = [
        clf(str(path), top_k=None),
        clf(path, top_k=None),
        clf(wav_bytes(x, 8000), top_k=None),
        clf(torch.from_numpy(x), sampling_rate=8000, top_k=None),
        clf({"array": x, "sampling_rate": 8000}, top_k=None),
        clf({"raw": x, "sampling_rate": 8000}, top_k=None),
    ]
    for preds in forms:
        assert [p["label"] for p in preds] == [p["label"] for p in reference]
        np.testing.assert_allclose([p["score"] for p in preds], [p["score"] for p in reference], atol=1e-6)


def test_default_top_k_is_five_capped_by_classes(clf: AudioClassifier) -> None:
    check_format(clf(tone(0.5), sampling_rate=8000), len(LABELS))  # 4 classes < 5
    check_format(clf(tone(0.5), sampling_rate=8000, top_k=2), 2)


def test_batch_inputs_return_list_of_lists(clf: AudioClassifier) -> None:
    a, b = tone(0.5, freq=300), tone(1.3, freq=900, seed=1)
    batched = clf([a, {"array": b, "sampling_rate": 8000}], sampling_rate=8000, top_k=3)
    assert len(batched) == 2 and all(len(r) == 3 for r in batched)
    single = clf(a, sampling_rate=8000, top_k=3)
    assert [p["label"] for p in batched[0]] == [p["label"] for p in single]
    np.testing.assert_allclose([p["score"] for p in batched[0]], [p["score"] for p in single], atol=1e-6)
    two_d = clf(np.stack([a, a]), sampling_rate=8000, top_k=1)
    assert len(two_d) == 2 and two_d[0][0]["label"] == two_d[1][0]["label"]


def test_resampling_of_arrays_and_files(clf: AudioClassifier, tmp_path) -> None:
    x22 = tone(1.0, sr=22050)
    p22 = clf.predict_proba(x22, sampling_rate=22050)
    sf.write(tmp_path / "hi.wav", x22, 22050, subtype="FLOAT")
    np.testing.assert_allclose(clf.predict_proba(tmp_path / "hi.wav"), p22, atol=1e-5)
    # array at 22.05 kHz == the same array resampled to the model's 8 kHz beforehand
    np.testing.assert_allclose(clf.predict_proba(resample(x22, 22050, 8000), sampling_rate=8000), p22, atol=1e-6)
    assert not np.allclose(clf.predict_proba(x22, sampling_rate=8000), p22, atol=1e-3)  # the rate matters
    assert clf.load(x22, 22050).shape == (8000,)


def test_short_clip_is_padded_to_the_training_crop(clf: AudioClassifier) -> None:
    spec = clf.features(tone(0.1))
    assert spec.shape == (1, 1, FE.num_frames, FE.n_mels)
    torch.testing.assert_close(spec[0, 0, -1], spec[0, 0, 10])  # edge padding repeats the last real frame


def test_bad_inputs_raise_clear_errors(clf: AudioClassifier, tmp_path) -> None:
    with pytest.raises(ValueError, match="sampling_rate"):
        clf(tone(0.5))
    with pytest.raises(ValueError, match="1-D"):
        clf.load(np.zeros((2, 3, 4), np.float32), 8000)
    with pytest.raises(ValueError, match="'array' and 'sampling_rate'"):
        clf({"array": tone(0.5)})
    with pytest.raises(AudioDecodeError, match="missing.wav: file not found"):
        clf(tmp_path / "missing.wav")
    with pytest.raises(AudioDecodeError, match="NaN"):
        clf(np.full(800, np.nan, np.float32), sampling_rate=8000)
    with pytest.raises(TypeError, match="int"):
        clf(3)
    with pytest.raises(ValueError, match="4 classes but 2 labels"):
        AudioClassifier(make_model(), frontend=FE, labels=["a", "b"])


def test_default_labels_fusion_and_sigmoid() -> None:
    model = make_model()
    fused = AudioClassifier(model, frontend=FE)
    plain = AudioClassifier(model, frontend=FE, fuse=False)
    assert fused.labels == ["LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3"]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.model.modules())  # full deploy fold
    x = tone(0.5)
    np.testing.assert_allclose(fused.predict_proba(x, 8000), plain.predict_proba(x, 8000), atol=1e-5)
    sig = AudioClassifier(model, frontend=FE, activation="sigmoid").predict_proba(x, 8000)
    assert sig.shape == (1, 4) and abs(sig.sum() - 1.0) > 1e-3  # independent scores


def test_from_pretrained_directory_uses_stored_labels_and_frontend(tmp_path) -> None:
    model = make_model()
    arinext.save_pretrained(model, tmp_path / "ckpt", labels=LABELS, frontend=FE)
    loaded = AudioClassifier.from_pretrained(tmp_path / "ckpt")
    assert loaded.labels == LABELS and loaded.frontend_config == FE
    direct = AudioClassifier(model, frontend=FE, labels=LABELS)
    x = tone(0.6)
    np.testing.assert_allclose(loaded.predict_proba(x, 8000), direct.predict_proba(x, 8000), atol=1e-6)


def test_from_pretrained_official_checkpoint(official_dir) -> None:
    clf = AudioClassifier.from_pretrained(official_dir / "small_unmerged.pyth", frontend=FE)
    assert clf.num_classes == 10
    expected = torch.load(official_dir / "small_expected_outputs.pt", weights_only=True)
    x = torch.load(official_dir / "small_input.pt", weights_only=True)
    torch.testing.assert_close(
        torch.from_numpy(clf.probs_from_features(x)), expected["probs_unmerged"], atol=1e-5, rtol=0
    )


def test_result_helpers() -> None:
    probs = np.array([0.1, 0.6, 0.3], np.float32)
    assert [p["label"] for p in top_k_labels(probs, ["a", "b", "c"], 2)] == ["b", "c"]
    windows = np.array([[0.2, 0.8], [0.6, 0.4]])
    np.testing.assert_allclose(aggregate_probs(windows, "mean"), [0.4, 0.6])
    np.testing.assert_allclose(aggregate_probs(windows, "max"), [0.6, 0.8])
    with pytest.raises(ValueError, match="mean' or 'max"):
        aggregate_probs(windows, "median")  # type: ignore[arg-type]


# -- scan: windowing --------------------------------------------------------------------------

W, H = 4000, 2000  # 0.5 s windows, 0.25 s hop at 8 kHz


@pytest.mark.parametrize(
    "n, spans",
    [
        (1500, [(0, 1500)]),  # shorter than one window: one padded window
        (W, [(0, W)]),  # exactly one window
        (W + 2 * H, [(0, W), (H, H + W), (2 * H, 2 * H + W)]),  # exact multiple: no partial window
        (W + 2 * H + 700, [(0, W), (H, H + W), (2 * H, 2 * H + W), (3 * H, W + 2 * H + 700)]),  # last partial
    ],
)
def test_scan_window_boundaries(clf: AudioClassifier, tmp_path, n: int, spans: list) -> None:
    x = tone(n / 8000, seed=n)
    sf.write(tmp_path / "a.wav", x, 8000, subtype="FLOAT")
    result = clf.scan(tmp_path / "a.wav", window=0.5, hop=0.25, block_seconds=0.3)
    assert [(round(w.start * 8000), round(w.end * 8000)) for w in result.windows] == spans
    assert len(result.windows) == window_count(n, W, H)
    assert result.duration == pytest.approx(n / 8000)
    # each window equals classifying its samples directly (short ones padded to the window's frames)
    for w, (s, e) in zip(result.windows, spans):
        direct = clf.probs_from_waveforms([x[s:e]], min_frames=FE.frames_for(W))[0]
        np.testing.assert_array_equal(w.probs, direct)


def test_scan_aggregate_and_dict(clf: AudioClassifier) -> None:
    x = np.concatenate([tone(1.0, freq=200), tone(1.0, freq=3000, seed=2)])
    r_mean = clf.scan(x, sampling_rate=8000, window=0.5, hop=0.5, top_k=None)
    r_max = clf.scan(x, sampling_rate=8000, window=0.5, hop=0.5, top_k=2, aggregate="max")
    scores = dict((p["label"], p["score"]) for p in r_mean.aggregate)
    np.testing.assert_allclose([scores[lab] for lab in LABELS], r_mean.probs.mean(axis=0), atol=1e-6)
    assert r_max.aggregate[0]["score"] == pytest.approx(float(r_max.probs.max()))
    d = r_max.to_dict()
    assert d["aggregate_method"] == "max" and len(d["windows"]) == 4 and len(d["windows"][0]["predictions"]) == 2


def test_scan_default_window_is_the_training_crop(clf: AudioClassifier) -> None:
    r = clf.scan(tone(1.2), sampling_rate=8000)
    assert r.window == pytest.approx(FE.clip_seconds) and r.hop == pytest.approx(FE.clip_seconds / 2)


def test_scan_rejects_bad_arguments(clf: AudioClassifier, tmp_path) -> None:
    with pytest.raises(ValueError, match="hop"):
        clf.scan(tone(1.0), sampling_rate=8000, window=0.5, hop=0.6)
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(AudioDecodeError, match="junk.wav"):
        clf.scan(tmp_path / "junk.wav")


# -- streaming --------------------------------------------------------------------------------


@pytest.mark.parametrize("file_rate", [8000, 11025])
def test_streaming_equals_offline_scan(clf: AudioClassifier, tmp_path, file_rate: int) -> None:
    x = tone(2.37, sr=file_rate, seed=3)
    sf.write(tmp_path / "s.wav", x, file_rate, subtype="FLOAT")
    offline = clf.scan(tmp_path / "s.wav", window=0.5, hop=0.2, top_k=3, block_seconds=0.7, batch_size=1)

    stream = clf.stream(window=0.5, hop=0.2, sampling_rate=file_rate, top_k=3)
    rng = np.random.default_rng(0)
    online, i, peak = [], 0, 0
    while i < x.size:
        n = int(rng.integers(1, 3000))
        online.extend(stream.push(x[i : i + n]))
        peak = max(peak, stream._buffer.size)
        i += n
    online.extend(stream.flush())

    assert [(w.start, w.end) for w in online] == [(w.start, w.end) for w in offline.windows]
    for a, b in zip(online, offline.windows):
        np.testing.assert_array_equal(a.probs, b.probs)
        assert a.predictions == b.predictions
    assert peak <= 4000 + 3000  # bounded: one window plus one chunk, never the whole signal


def test_scan_batched_matches_unbatched(clf: AudioClassifier) -> None:
    x = tone(3.0, seed=5)
    one = clf.scan(x, sampling_rate=8000, window=0.5, hop=0.25, batch_size=1)
    many = clf.scan(x, sampling_rate=8000, window=0.5, hop=0.25, batch_size=4)
    np.testing.assert_allclose(many.probs, one.probs, atol=1e-5)


def test_stream_after_flush_and_bad_chunks(clf: AudioClassifier) -> None:
    stream = clf.stream(window=0.5, hop=0.25)
    assert stream.push(np.zeros(100, np.float32)) == []
    with pytest.raises(ValueError, match="1-D"):
        stream.push(np.zeros((2, 10), np.float32))
    assert len(stream.flush()) == 1
    with pytest.raises(RuntimeError, match="flushed"):
        stream.push(np.zeros(10, np.float32))
