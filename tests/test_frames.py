"""Frame-level scores and embeddings on ``AudioClassifier``: time axis, identities, long files, frame heads."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

import arinext
from arinext.inference import AudioClassifier
from arinext.inference.embeddings import FeatureTaps, interpolate_columns, timestamp_grid_ms
from arinext.inference.framehead import FRAME_HEAD_CONFIG, FrameHead, stack_context, weights_fingerprint

from .conftest import FE_16K as FE
from .conftest import tiny_model

LABELS = ["a", "b", "c"]


def make_model(seed: int = 0) -> torch.nn.Module:
    return tiny_model(3, bn_seed=seed + 1, seed=seed)


@pytest.fixture(scope="module")
def clf() -> AudioClassifier:
    return AudioClassifier(make_model(), FE, LABELS)


def noise(seconds: float, seed: int = 0, rate: int = 16000) -> np.ndarray:
    return (np.random.default_rng(seed).uniform(-0.5, 0.5, int(seconds * rate))).astype(np.float32)


def test_interpolation_and_grid() -> None:
    cols = torch.tensor([[[0.0], [10.0], [20.0]]])  # centres 0, 100, 200 ms
    out = interpolate_columns(cols, 100.0, torch.tensor([0.0, 50.0, 100.0, 250.0]))
    assert out[0, :, 0].tolist() == [0.0, 5.0, 10.0, 20.0]
    assert timestamp_grid_ms(16000, 16000, 50.0).tolist() == [50.0 * i for i in range(21)]
    assert timestamp_grid_ms(15999, 16000, 50.0)[-1].item() == 950.0
    with pytest.raises(ValueError):
        timestamp_grid_ms(100, 16000, 0.0)


def test_stage_strides_are_read_from_the_model() -> None:
    taps = FeatureTaps(arinext.create_model("audio_rep_inception_next_tiny", num_classes=2).eval(), FE)
    assert taps.strides == [4, 8, 16, 32] and taps.widths == [16, 32, 64, 128] and taps.stage_ids == [2, 3]
    # columns of stage k sit every stride_k frames: a 3 s clip (301 frames) gives ceil(301 / s) of them
    cols = taps.columns(torch.zeros(1, 48000), [0, 1, 2, 3])
    assert [cols[k].shape[1] for k in range(4)] == [76, 38, 19, 10]
    with pytest.raises(ValueError, match="out of range"):
        FeatureTaps(taps.model, FE, stages=(5,))


def test_mean_of_per_column_logits_is_the_clip_logits(clf) -> None:
    x = noise(2.3, seed=1)
    spec = clf.features(x)
    cols = clf.feature_taps().columns(torch.from_numpy(x)[None], [3])[3]
    with torch.no_grad():
        torch.testing.assert_close(clf.model.head.logits(cols).mean(1), clf.model(spec), atol=1e-5, rtol=1e-5)


def test_embed_matches_the_heads_input_for_clips_and_batches(clf) -> None:
    clips = [noise(1.0, seed=2), noise(0.4, seed=3), noise(1.0, seed=4)]
    single = np.stack([clf.embed(c, sampling_rate=16000) for c in clips])
    batch = clf.embed(clips, sampling_rate=16000)
    assert batch.shape == (3, 128) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, single, atol=1e-5)
    for c, e in zip(clips, single):
        with torch.no_grad():
            logits = clf.model.head.logits(torch.from_numpy(e))
        np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), clf.predict_proba(c, sampling_rate=16000)[0], atol=1e-5)


def test_framewise_clip_head_time_axis(clf) -> None:
    fs = clf.framewise(noise(2.345, seed=5), sampling_rate=16000, head="clip")
    assert fs.source == "clip head per column" and fs.labels == LABELS
    assert fs.hop == pytest.approx(0.01) and fs.times[0] == 0.0 and fs.times[-1] == pytest.approx(2.34)
    assert fs.scores.shape == (235, 3)
    np.testing.assert_allclose(fs.scores.sum(1), 1.0, atol=1e-5)  # softmax per time
    coarse = clf.framewise(noise(2.345, seed=5), sampling_rate=16000, head="clip", hop=0.05)
    assert coarse.scores.shape == (47, 3)
    np.testing.assert_allclose(coarse.scores, fs.scores[::5], atol=1e-5)  # same curve, sampled every 50 ms
    with pytest.raises(ValueError, match="no frame head"):
        clf.framewise(noise(1.0), sampling_rate=16000, head="frame")


def test_a_file_read_in_blocks_equals_the_array_in_one_pass(tmp_path) -> None:
    x = noise(50.0, seed=6)
    sf.write(tmp_path / "long.flac", x, 16000, subtype="PCM_16")
    x16, _ = sf.read(tmp_path / "long.flac", dtype="float32")
    clf = AudioClassifier(make_model(), FE, LABELS)
    t_file, e_file = clf.timestamp_embeddings(str(tmp_path / "long.flac"))  # 10 s reads, one 60 s block
    t_arr, e_arr = clf.timestamp_embeddings(x16, sampling_rate=16000)
    np.testing.assert_array_equal(t_file, t_arr)
    np.testing.assert_allclose(e_file, e_arr, atol=1e-5)
    small = clf.feature_taps(block_seconds=10.0)  # 10 s blocks with 10.24 s of context each side
    cols, n = small.stream_columns((torch.from_numpy(x16[i : i + 7000])[None] for i in range(0, x16.size, 7000)), [2, 3])
    e_blocks = small.timestamps_from_columns(cols, timestamp_grid_ms(n, 16000, 50.0))[0].numpy()
    assert n == x16.size and e_blocks.shape == e_arr.shape == (1001, 192)
    np.testing.assert_allclose(e_blocks, e_arr, atol=1e-4)
    # and the frame scores of a file come through the same path
    fs = clf.framewise(str(tmp_path / "long.flac"), head="clip", hop=0.05)
    assert fs.times.shape == (1001,) and fs.times[-1] == pytest.approx(50.0)


def test_file_at_another_rate_is_resampled_on_the_fly(tmp_path, clf) -> None:
    x = noise(3.0, seed=7, rate=22050)
    sf.write(tmp_path / "c.wav", x, 22050, subtype="FLOAT")
    times, emb = clf.timestamp_embeddings(str(tmp_path / "c.wav"))
    times2, emb2 = clf.timestamp_embeddings(x, sampling_rate=22050)
    np.testing.assert_array_equal(times, times2)
    assert times[-1] == pytest.approx(3.0)
    np.testing.assert_allclose(emb, emb2, atol=2e-3)


def test_stack_context() -> None:
    e = torch.arange(4.0).reshape(1, 4, 1)
    assert stack_context(e, 1)[0].tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]]


def trained_head(clf: AudioClassifier, context: int = 1) -> FrameHead:
    torch.manual_seed(0)
    head = FrameHead(["c", "a", "b"], clf.feature_taps().timestamp_width, (-2, -1), 50.0, context, hidden=4)
    for p in head.parameters():
        torch.nn.init.normal_(p, std=0.5)
    head.model_fingerprint = clf.fingerprint
    head.decode = arinext.inference.event_decoding.DecodeParams(threshold=0.3, mode="activity")
    head.info = {"validation": {"f1": 0.5}}
    return head.eval()


def test_frame_head_round_trip_and_use(tmp_path) -> None:
    model = make_model()
    path = tmp_path / "model"
    arinext.save_pretrained(model, path, labels=LABELS, frontend=FE)
    clf = AudioClassifier.from_pretrained(path)
    assert clf.frame_head is None
    head = trained_head(clf)
    head.save(path)
    loaded = FrameHead.load(path)
    assert loaded.labels == ["c", "a", "b"] and loaded.decode == head.decode and loaded.info == head.info
    emb = torch.randn(1, 7, head.in_features)
    torch.testing.assert_close(loaded(emb), head(emb))

    clf2 = AudioClassifier.from_pretrained(path)  # found next to the weights
    assert clf2.frame_head is not None
    x = noise(3.0, seed=8)
    fs = clf2.framewise(x, sampling_rate=16000)
    assert fs.source == "frame head" and fs.labels == LABELS and fs.hop == pytest.approx(0.05)
    _, e = clf2.timestamp_embeddings(x, sampling_rate=16000)
    expected = head.scores(torch.from_numpy(e)[None])[0].numpy()[:, [1, 2, 0]]  # head order -> classifier order
    np.testing.assert_allclose(fs.scores, expected, atol=1e-5)
    assert np.all(fs.scores.sum(1) <= 1 + 1e-6)  # the background class holds the rest
    assert clf2.events(fs) == arinext.inference.event_decoding.decode_events(fs, head.decode)
    assert clf2.framewise(x, sampling_rate=16000, head="clip").source == "clip head per column"
    with pytest.raises(ValueError, match="fitted every 50 ms"):
        clf2.framewise(x, sampling_rate=16000, hop=0.02)
    assert AudioClassifier.from_pretrained(path, frame_head=False).frame_head is None


def test_frame_head_refuses_another_model(tmp_path) -> None:
    clf = AudioClassifier(make_model(0), FE, LABELS)
    head = trained_head(clf)
    head.save(tmp_path)
    other = AudioClassifier(make_model(1), FE, LABELS)
    assert other.fingerprint != clf.fingerprint == weights_fingerprint(make_model(0))
    with pytest.raises(ValueError, match="fitted on a model with weights"):
        other.attach_frame_head(tmp_path)
    with pytest.raises(ValueError, match="has classes"):
        AudioClassifier(make_model(0), FE, ["a", "b", "z"]).attach_frame_head(tmp_path)
    # the fused and the training form share the fingerprint of the weights they were built from
    assert AudioClassifier(make_model(0), FE, LABELS, fuse=False).fingerprint == clf.fingerprint


def test_frame_head_files_are_checked(tmp_path) -> None:
    clf = AudioClassifier(make_model(), FE, LABELS)
    trained_head(clf).save(tmp_path)
    (tmp_path / "frame_head.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="frame_head.safetensors"):
        FrameHead.load(tmp_path)
    (tmp_path / FRAME_HEAD_CONFIG).write_text("{")
    with pytest.raises(ValueError, match="invalid JSON"):
        FrameHead.load(tmp_path)
    with pytest.raises(ValueError, match="reserved"):
        FrameHead(["_background_"], 4)


def test_relabel_takes_the_clip_classifiers_opinion(tmp_path, clf) -> None:
    x = noise(4.0, seed=9)
    sf.write(tmp_path / "x.wav", x, 16000, subtype="FLOAT")
    times = np.arange(81) * 0.05
    flat = arinext.inference.event_decoding.FrameScores(times, np.full((81, 3), 0.3), LABELS, "frame head")
    flat.scores[40:50] = 0.32  # one event at [1.975, 2.475) s, all classes alike: the classifier decides
    params = arinext.inference.event_decoding.DecodeParams(threshold=0.9, mode="activity", relabel=True)
    events = clf.events(str(tmp_path / "x.wav"), frames=flat, params=params)
    assert [(e.onset, e.offset) for e in events] == [(1.975, 2.475)]
    centre = 2.225
    windows = [x[int((centre + s - 0.5) * 16000) : int((centre + s + 0.5) * 16000)] for s in (-0.15, 0.0, 0.15)]
    expected = np.log(clf.predict_proba(windows, sampling_rate=16000) + 1e-9).mean(0)
    assert events[0].label == LABELS[int(expected.argmax())] != "a"  # not what the frame scores alone give
    assert clf.events(x, sampling_rate=16000, frames=flat, params=params) == events  # arrays: the same windows
    assert clf.events(flat, params=params, relabel=False)[0].label == "a"  # without: the first of equal scores
    with pytest.raises(ValueError, match="relabel needs the audio"):
        clf.events(flat, params=params)


def test_a_stale_frame_head_next_to_new_weights_is_skipped_with_a_warning(tmp_path, caplog) -> None:
    arinext.save_pretrained(make_model(0), tmp_path, labels=LABELS, frontend=FE)
    trained_head(AudioClassifier.from_pretrained(tmp_path)).save(tmp_path)
    assert AudioClassifier.from_pretrained(tmp_path).frame_head is not None
    arinext.save_pretrained(make_model(1), tmp_path, labels=LABELS, frontend=FE)  # new weights, old head
    clf = AudioClassifier.from_pretrained(tmp_path)
    assert clf.frame_head is None and "not using the frame head" in caplog.text
    with pytest.raises(ValueError, match="fitted on a model with weights"):
        AudioClassifier.from_pretrained(tmp_path, frame_head=tmp_path)  # asked for explicitly: an error
