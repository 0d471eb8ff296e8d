"""Frame-level scores and embeddings over audio of any length, for :class:`~arinext.inference.AudioClassifier`.

A file is read block by block (``soundfile``), resampled with one ``soxr.ResampleStream`` and fed to
:meth:`FeatureTaps.stream_columns <arinext.inference.embeddings.FeatureTaps.stream_columns>`, so memory is
bounded by the block size and by the (small) column maps, not by the length of the file; arrays are used
as they are. Both give the numbers of one pass over the whole spectrogram up to float rounding at block
boundaries (``tests/test_frames.py``).

Frame-level scores come from one of two heads:

* ``"frame"``: a :class:`~arinext.inference.framehead.FrameHead` fitted on the model's timestamp embeddings
  (with a background class), stored with the checkpoint;
* ``"clip"``: the classifier's own linear head applied to every column of the last feature map, the
  columns interpolated onto the time grid first (PANNs' frame-wise output). Because the head is linear and
  the pooling an average, the mean of the per-column logits is the clip's logits. Without a background
  class, and trained on whole clips, it localises short events poorly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import soxr
import torch

from ..utils.errors import ConfigError, InputError
from .embeddings import FeatureTaps, interpolate_columns, timestamp_grid_ms
from ..audio.io import AudioDecodeError, audio_info, load_audio
from .event_decoding import Event, FrameScores
from .stream import read_blocks

if TYPE_CHECKING:
    from .classifier import AudioClassifier

__all__ = [
    "RELABEL_SHIFTS",
    "HeadChoice",
    "audio_chunks",
    "clip_frame_scores",
    "frame_head_scores",
    "relabel_events",
    "stream_columns",
    "window_reader",
]

HeadChoice = Literal["auto", "frame", "clip"]

#: Offsets (s) of the classifier windows centred on an event that :func:`relabel_events` averages.
RELABEL_SHIFTS = (-0.15, 0.0, 0.15)


def audio_chunks(
    clf: AudioClassifier, item: Any, sampling_rate: int | None = None, block_seconds: float = 10.0
) -> Iterator[np.ndarray]:
    """Mono float32 chunks at the model's rate: a file (path or bytes) block by block, any other input whole."""
    if isinstance(item, (str, os.PathLike, bytes, bytearray)):
        rate, _, blocks = read_blocks(item, block_seconds)
        if rate == clf.sample_rate:
            yield from blocks
            return
        resampler = soxr.ResampleStream(rate, clf.sample_rate, 1, dtype="float32", quality="HQ")
        read = made = 0
        for block in blocks:
            out = np.asarray(resampler.resample_chunk(block), dtype=np.float32)
            read, made = read + block.size, made + out.size
            yield out
        last = np.asarray(resampler.resample_chunk(np.zeros(0, np.float32), last=True), dtype=np.float32)
        if made + last.size == 0:  # as load_audio refuses it: nothing is left at the model's rate
            raise AudioDecodeError(item, f"{read} sample(s) at {rate} Hz leave none at {clf.sample_rate} Hz")
        yield last
        return
    yield clf.load(item, sampling_rate)


def stream_columns(
    taps: FeatureTaps, chunks: Iterator[np.ndarray], which: Sequence[int]
) -> tuple[dict[int, torch.Tensor], int]:
    """Columns of one clip given as chunks (see :meth:`FeatureTaps.stream_columns`)."""
    tensors = (torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32))[None] for c in chunks if c.size)
    return taps.stream_columns(tensors, which)


def clip_frame_scores(clf: AudioClassifier, taps: FeatureTaps, chunks: Iterator[np.ndarray], hop: float) -> FrameScores:
    """The classifier's head on every column of the last map, interpolated every ``hop`` seconds."""
    cols, n = stream_columns(taps, chunks, taps.scene_taps)
    if len(taps.scene_taps) != 1:
        raise InputError("frame-level clip scores need a model with one final feature map")
    k = taps.scene_taps[0]
    times = timestamp_grid_ms(n, clf.sample_rate, hop * 1000.0)
    feats = interpolate_columns(cols[k], taps.column_ms(k), times)[0]
    with torch.no_grad():
        logits = clf.model.head.logits(feats)  # type: ignore[operator,union-attr]
        probs = torch.softmax(logits, dim=-1) if clf.activation == "softmax" else torch.sigmoid(logits)
    return FrameScores((times / 1000.0).numpy(), probs.float().cpu().numpy(), list(clf.labels), "clip head per column")


def frame_head_scores(clf: AudioClassifier, taps: FeatureTaps, chunks: Iterator[np.ndarray]) -> FrameScores:
    """The attached frame head on the timestamp embeddings, every ``head.hop_ms``; classifier label order."""
    head = clf.frame_head
    if head is None:
        raise ConfigError("no frame head is attached to this classifier (fit one with `arinext events fit`)")
    cols, n = stream_columns(taps, chunks, taps.stage_ids)
    times = timestamp_grid_ms(n, clf.sample_rate, head.hop_ms)
    emb = taps.timestamps_from_columns(cols, times)
    p = next(head.parameters())
    probs = head.scores(emb.to(p.device, p.dtype))[0]
    order = [head.labels.index(x) for x in clf.labels]
    return FrameScores((times / 1000.0).numpy(), probs[:, order].float().cpu().numpy(), list(clf.labels), "frame head")


def window_reader(clf: AudioClassifier, item: Any, sampling_rate: int | None = None) -> Callable[[float, float], np.ndarray]:
    """``read(start, end)``: samples of ``item`` between two times (s) at the model's rate, the window moved
    inside the audio when it would cross an end; a file is read window by window, not whole."""
    if isinstance(item, (str, os.PathLike, bytes, bytearray)):
        frames, rate = audio_info(item)
        duration = frames / rate

        def read_file(start: float, end: float) -> np.ndarray:
            start, end = _inside(start, end, duration)
            return load_audio(item, sample_rate=clf.sample_rate, start=start, end=end)[0]

        return read_file
    x = clf.load(item, sampling_rate)
    duration = x.size / clf.sample_rate

    def read_array(start: float, end: float) -> np.ndarray:
        start, end = _inside(start, end, duration)
        a = int(round(start * clf.sample_rate))
        return x[a : max(a + 1, int(round(end * clf.sample_rate)))]

    return read_array


def _inside(start: float, end: float, duration: float) -> tuple[float, float]:
    length = min(end - start, duration)
    start = min(max(0.0, start), duration - length)
    return start, start + length


def relabel_events(
    clf: AudioClassifier, events: Sequence[Event], frames: FrameScores, read: Callable[[float, float], np.ndarray]
) -> list[Event]:
    """Each event's label from two opinions: the mean frame scores over the event (normalised over the
    classes) times the clip classifier's mean log-probabilities on windows of the training crop's length
    centred on the event (shifted by :data:`RELABEL_SHIFTS`); the score is the combined posterior. Onsets
    and offsets are kept. ``frames`` must be in ``clf.labels`` order."""
    if list(frames.labels) != list(clf.labels):
        raise InputError("frame scores must be in the classifier's label order to relabel")
    crop = clf.frontend_config.clip_seconds
    out = []
    for e in events:
        centre = (e.onset + e.offset) / 2
        windows = [read(centre + s - crop / 2, centre + s + crop / 2) for s in RELABEL_SHIFTS]
        clip = clf.probs_from_waveforms(windows, batch_size=len(windows))
        inside = (frames.times >= e.onset) & (frames.times < e.offset)
        seg = frames.scores[inside].mean(axis=0) if inside.any() else frames.scores[np.argmin(abs(frames.times - centre))]
        logp = np.log(seg / max(float(seg.sum()), 1e-12) + 1e-9) + np.log(clip + 1e-9).mean(axis=0)
        post = np.exp(logp - logp.max())
        post /= post.sum()
        k = int(post.argmax())
        out.append(Event(clf.labels[k], e.onset, e.offset, float(post[k])))
    return out
