"""Event decoding: median filter, hysteresis, gap merging, minimum duration and the three modes."""

from __future__ import annotations

import numpy as np
import pytest

from arinext.inference.event_decoding import DecodeParams, Event, FrameScores, decode_events, median_filter


def frames(tracks: dict[str, list[float]], hop: float = 0.1) -> FrameScores:
    labels = list(tracks)
    scores = np.stack([np.asarray(tracks[k], dtype=float) for k in labels], axis=1)
    return FrameScores(np.arange(scores.shape[0]) * hop, scores, labels)


def spans(events: list[Event]) -> list[tuple[str, float, float]]:
    return [(e.label, e.onset, e.offset) for e in events]


def test_threshold_gives_onset_offset_on_the_grid() -> None:
    fs = frames({"a": [0, 0, 0.9, 0.9, 0.9, 0, 0], "b": [0.1] * 7})
    events = decode_events(fs, threshold=0.5, mode="independent")
    # grid points 2..4 cover [0.15, 0.45) s
    assert spans(events) == [("a", 0.15, 0.45)]
    assert events[0].score == pytest.approx(0.9)


def test_hysteresis_extends_an_event_while_above_low() -> None:
    track = [0, 0.4, 0.8, 0.4, 0.35, 0, 0.4, 0]
    fs = frames({"a": track})
    assert spans(decode_events(fs, threshold=0.7, mode="independent")) == [("a", 0.15, 0.25)]
    assert spans(decode_events(fs, threshold=0.7, low=0.3, mode="independent")) == [("a", 0.05, 0.45)]
    # a region above low that never reaches the threshold is not an event
    assert spans(decode_events(frames({"a": [0, 0.4, 0.4, 0]}), threshold=0.7, low=0.3, mode="independent")) == []


def test_gap_merging_and_minimum_duration() -> None:
    fs = frames({"a": [0.9, 0.9, 0, 0.9, 0, 0, 0, 0.9, 0]})
    assert len(decode_events(fs, mode="independent")) == 3
    merged = decode_events(fs, min_gap=0.15, mode="independent")
    assert spans(merged) == [("a", 0.0, 0.35), ("a", 0.65, 0.75)]
    assert spans(decode_events(fs, min_gap=0.15, min_duration=0.2, mode="independent")) == [("a", 0.0, 0.35)]


def test_median_filter_removes_spikes_and_fills_holes() -> None:
    fs = frames({"a": [0, 0, 0.9, 0, 0, 0.9, 0.9, 0.0, 0.9, 0.9, 0, 0]})
    assert len(decode_events(fs, mode="independent")) == 3
    assert spans(decode_events(fs, median=0.3, mode="independent")) == [("a", 0.45, 0.95)]


def test_median_filter_matches_scipy() -> None:
    ndimage = pytest.importorskip("scipy.ndimage")
    x = np.random.default_rng(0).random((50, 3))
    for size in (1, 3, 5, 9):
        np.testing.assert_allclose(median_filter(x, size), ndimage.median_filter(x, size=(size, 1), mode="nearest"))


def test_exclusive_keeps_only_the_argmax_class() -> None:
    fs = frames({"a": [0.6, 0.6, 0.6, 0.0], "b": [0.0, 0.7, 0.7, 0.6]})
    assert spans(decode_events(fs, mode="independent")) == [("a", 0.0, 0.25), ("b", 0.05, 0.35)]
    assert spans(decode_events(fs, mode="exclusive")) == [("a", 0.0, 0.05), ("b", 0.05, 0.35)]


def test_activity_mode_never_splits_an_event_between_labels() -> None:
    # the summed score stays above 0.5 over three points; per class, "a" leads first, then "b"
    fs = frames({"a": [0, 0.45, 0.2, 0.1, 0], "b": [0, 0.1, 0.4, 0.5, 0]})
    assert spans(decode_events(fs, threshold=0.5, mode="activity")) == [("b", 0.05, 0.35)]
    assert spans(decode_events(fs, threshold=0.4, mode="exclusive")) == [("a", 0.05, 0.15), ("b", 0.15, 0.35)]


def test_classes_filter_and_errors() -> None:
    fs = frames({"a": [0.9, 0.9], "b": [0.9, 0.9]})
    assert [e.label for e in decode_events(fs, classes=["b"], mode="independent")] == ["b"]
    with pytest.raises(ValueError, match="not among the labels"):
        decode_events(fs, classes=["zzz"])
    with pytest.raises(ValueError, match="low <= threshold"):
        decode_events(fs, threshold=0.5, low=0.6)
    with pytest.raises(ValueError, match="mode must be"):
        DecodeParams(mode="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown decoding parameters"):
        DecodeParams.from_dict({"treshold": 0.5})
    with pytest.raises(ValueError, match="scores must be"):
        FrameScores(np.zeros(3), np.zeros((2, 2)), ["a", "b"])


def test_events_are_clipped_to_the_audio_and_sorted() -> None:
    fs = frames({"b": [0.9, 0, 0, 0.9], "a": [0, 0, 0.9, 0]})
    events = decode_events(fs, mode="independent")
    assert spans(events) == [("b", 0.0, 0.05), ("a", 0.15, 0.25), ("b", 0.25, 0.35)]
    assert all(e.to_dict().keys() == {"label", "onset", "offset", "score"} for e in events)
