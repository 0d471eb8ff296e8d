"""Sliding-window classification of long audio: offline (:func:`scan`) and streaming (:class:`AudioStream`).

Windows are ``window`` samples long and start every ``hop`` samples (at the model's rate): at
``0, hop, 2*hop, ...``. Every full window is classified; after the last full window, one final,
shorter window ``[next_start, end)`` covers the remaining samples if any are left uncovered. Audio
shorter than one window therefore gives one window. With ``N`` samples the count is
``1 + ceil(max(0, N - window) / hop)``. Each window's log-mel is that of its own samples, and a
short last window is padded by repeating its last frame (as for short clips in training).

Speed: complete windows that start on the STFT's hop grid (the defaults do) share one STFT per block
(:func:`~arinext.inference.window_features.window_logmels`, bit-identical to one ``LogMel`` per window), and
:func:`scan` runs 32 windows per forward pass by default. Batching changes results only by float rounding
(about 1e-7 on probabilities: the math kernels block their sums differently for other batch sizes);
``batch_size=1`` gives exactly the streaming numbers.

:func:`scan` reads a file block by block with ``soundfile`` and feeds an :class:`AudioStream`, so memory
stays bounded by the window and block sizes, and the offline and streaming results are the same
numbers: both resample with one ``soxr.ResampleStream`` (whose output does not depend on how the input
is chunked) and run the same windows through the same code.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import soxr
import torch

from ..audio.frontend import FrontendConfig, LogMel
from ..audio.io import AudioDecodeError, check_sample_rate, check_waveform, decode_blocks, describe_source, open_audio
from ..utils.errors import ConfigError, InputError
from ..utils.progress import progress_bar
from .results import Aggregate, NonFiniteOutputError, ScanResult, WindowPrediction, aggregate_probs, top_k_labels
from .window_features import block_features_supported, window_logmels

__all__ = ["AudioStream", "WindowScorer", "read_blocks", "samples_as_numpy", "scan", "window_count"]

log = logging.getLogger(__name__)

_FEATURE_VALUES = 1 << 24  # most float32 magnitudes (about 64 MiB) held at once for a run of windows


class WindowScorer(Protocol):
    """What the sliding-window code needs from a classifier (:class:`~arinext.inference.AudioClassifier` is one)."""

    labels: list[str]
    frontend_config: FrontendConfig

    @property
    def sample_rate(self) -> int: ...

    def probs_from_waveforms(
        self,
        waveforms: Sequence[np.ndarray],
        min_frames: int | None = None,
        batch_size: int = 1,
        sources: Sequence[str] | None = None,
    ) -> np.ndarray: ...


def samples_as_numpy(x: Any) -> Any:
    """A tensor's samples as a numpy array on the CPU (half and bfloat16 as float32); anything else unchanged."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        return (x.float() if x.is_floating_point() else x).numpy()
    return x


def window_count(num_samples: int, window: int, hop: int) -> int:
    """Number of windows :func:`scan` produces for ``num_samples`` samples (0 for empty audio)."""
    if num_samples <= 0:
        return 0
    return 1 + math.ceil(max(0, num_samples - window) / hop)


class AudioStream:
    """Classify audio that arrives in chunks: one prediction per hop, as soon as its window is complete.

    Args:
        classifier: the classifier to run (an :class:`~arinext.inference.AudioClassifier`).
        window: window length in seconds; default the front end's training crop (``clip_seconds``).
        hop: hop in seconds, ``0 < hop <= window``; default half the window.
        sampling_rate: rate of the pushed samples; default the model's rate. Other rates are
            resampled on the fly with ``soxr.ResampleStream``.
        top_k: labels reported per window.
        batch_size: windows completed by one :meth:`push` run through the model this many at a time
            (1 keeps every window's numbers independent of the chunking, bit for bit).

    Example:
        >>> stream = clf.stream(window=1.0, hop=0.5)  # doctest: +SKIP
        >>> for chunk in microphone_chunks():  # doctest: +SKIP
        ...     for w in stream.push(chunk):
        ...         print(w.start, w.predictions[0])
        >>> stream.flush()  # the final, partial window  # doctest: +SKIP
    """

    def __init__(
        self,
        classifier: WindowScorer,
        window: float | None = None,
        hop: float | None = None,
        sampling_rate: int | None = None,
        top_k: int | None = 5,
        batch_size: int = 1,
    ) -> None:
        self.classifier = classifier
        sr = classifier.sample_rate
        window = classifier.frontend_config.clip_seconds if window is None else float(window)
        hop = window / 2 if hop is None else float(hop)
        self.window_samples = int(round(window * sr))
        self.hop_samples = int(round(hop * sr))
        if self.window_samples < 1 or self.hop_samples < 1:
            raise ConfigError(f"window ({window} s) and hop ({hop} s) must each be at least one sample")
        if self.hop_samples > self.window_samples:
            raise ConfigError(f"hop ({hop} s) must not be longer than the window ({window} s)")
        self.window, self.hop = self.window_samples / sr, self.hop_samples / sr
        self.input_rate = sr if sampling_rate is None else check_sample_rate(sampling_rate, "sampling_rate")
        self.top_k = top_k
        self.batch_size = batch_size
        self.min_frames = classifier.frontend_config.frames_for(self.window_samples)
        self._resampler = None
        if self.input_rate != sr:
            self._resampler = soxr.ResampleStream(self.input_rate, sr, 1, dtype="float32", quality="HQ")
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # absolute index (at the model's rate) of _buffer[0]
        self._next_start = 0  # start of the next window to emit
        self._covered = 0  # end of the last emitted window
        self._received = 0  # samples received so far, at the model's rate
        self._emitted = 0
        self._finished = False

    @property
    def samples_received(self) -> int:
        return self._received

    def _append(self, samples: np.ndarray) -> None:
        if samples.size:
            self._buffer = np.concatenate([self._buffer, samples])
            self._received += samples.size

    def _full_window_starts(self) -> list[int]:
        starts = []
        while self._received >= self._next_start + self.window_samples:
            starts.append(self._next_start)
            self._covered = self._next_start + self.window_samples
            self._next_start += self.hop_samples
        return starts

    def _predict_full_windows(self) -> list[WindowPrediction]:
        """Classify every complete window in the buffer, then drop the samples no later window needs."""
        starts = self._full_window_starts()
        try:
            probs = self._full_window_probs([s - self._buffer_start for s in starts]) if starts else None
        except NonFiniteOutputError as exc:
            sr = self.classifier.sample_rate
            where = f"windows {starts[0] / sr:.2f}-{(starts[-1] + self.window_samples) / sr:.2f} s of the stream"
            raise NonFiniteOutputError(where, exc.problem) from exc
        self._drop_consumed()
        return self._results([(s, self.window_samples) for s in starts], probs)

    def _full_window_probs(self, offsets: list[int]) -> np.ndarray:
        clf, w = self.classifier, self.window_samples
        fe = getattr(clf, "frontend", None)
        if not (isinstance(fe, LogMel) and hasattr(clf, "probs_from_features")) or not block_features_supported(
            fe, w, self.hop_samples
        ):
            windows = [self._buffer[o : o + w].copy() for o in offsets]
            return clf.probs_from_waveforms(windows, min_frames=self.min_frames, batch_size=self.batch_size)
        bs = max(1, self.batch_size)
        per_window = self.min_frames * (fe.config.n_fft // 2 + 1)
        chunk = max(bs, _FEATURE_VALUES // per_window // bs * bs)  # whole batches per run of windows
        out = []
        for i in range(0, len(offsets), chunk):
            specs = window_logmels(self._buffer, offsets[i : i + chunk], w, fe)
            out += [clf.probs_from_features(specs[j : j + bs]) for j in range(0, specs.shape[0], bs)]  # type: ignore[attr-defined]
        return np.concatenate(out)

    def _drop_consumed(self) -> None:
        drop = min(self._next_start, self._received) - self._buffer_start
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._buffer_start += drop

    def _results(self, spans: list[tuple[int, int]], probs: np.ndarray | None) -> list[WindowPrediction]:
        """``WindowPrediction`` of windows ``(start, length)`` (samples at the model's rate) with their scores."""
        sr = self.classifier.sample_rate
        out = []
        for (start, length), p in zip(spans, probs if probs is not None else []):
            out.append(
                WindowPrediction(
                    index=self._emitted,
                    start=start / sr,
                    end=(start + length) / sr,
                    probs=p,
                    predictions=top_k_labels(p, self.classifier.labels, self.top_k),
                )
            )
            self._emitted += 1
        return out

    def _to_model_rate(self, chunk: Any, last: bool) -> np.ndarray:
        x = np.asarray(samples_as_numpy(chunk))
        if x.ndim != 1:
            raise InputError(f"push() takes 1-D mono chunks, got shape {x.shape}")
        x = check_waveform(x, f"chunk at {self._received / self.classifier.sample_rate:.3f} s") if x.size else x
        x = x.astype(np.float32, copy=False)
        if self._resampler is None:
            return x
        return np.asarray(self._resampler.resample_chunk(x, last=last), dtype=np.float32)

    def push(self, chunk: np.ndarray | torch.Tensor) -> list[WindowPrediction]:
        """Add samples (any number, 1-D, at ``sampling_rate``); returns the windows completed by them."""
        if self._finished:
            raise RuntimeError("stream already flushed; start a new one with classifier.stream()")
        self._append(self._to_model_rate(chunk, last=False))
        return self._predict_full_windows()

    def flush(self) -> list[WindowPrediction]:
        """End of input: returns the remaining full windows and the final partial one, if any."""
        if self._finished:
            return []
        self._append(self._to_model_rate(np.zeros(0, dtype=np.float32), last=True))
        self._finished = True
        out = self._predict_full_windows()
        if self._received > self._covered:  # the final, shorter window
            rest = self._buffer[self._next_start - self._buffer_start :].copy()
            sr = self.classifier.sample_rate
            where = f"window {self._next_start / sr:.2f}-{self._received / sr:.2f} s of the stream"
            probs = self.classifier.probs_from_waveforms([rest], min_frames=self.min_frames, sources=[where])
            out += self._results([(self._next_start, rest.size)], probs)
            self._covered = self._received
        return out


def read_blocks(
    source: str | os.PathLike | bytes, block_seconds: float = 10.0
) -> tuple[int, int, Iterator[np.ndarray]]:
    """Open an audio file for block reading: ``(sample_rate, frames, iterator of mono float32 blocks)``.

    Only one block is in memory at a time; the file is opened and every block checked as
    :func:`~arinext.audio.io.load_audio` checks a whole file, and errors name the file
    (:class:`~arinext.audio.io.AudioDecodeError`).
    """
    f = open_audio(source)
    blocksize = max(1, int(block_seconds * f.samplerate))

    def blocks() -> Iterator[np.ndarray]:
        with f:
            for block in decode_blocks(f, f.frames, source, blocksize):
                yield block.mean(axis=1)

    return f.samplerate, f.frames, blocks()


def scan(
    classifier: WindowScorer,
    source: Any,
    window: float | None = None,
    hop: float | None = None,
    top_k: int | None = 5,
    aggregate: Aggregate = "mean",
    sampling_rate: int | None = None,
    batch_size: int = 32,
    block_seconds: float = 10.0,
    progress: bool | None = False,
) -> ScanResult:
    """Slide ``classifier`` over audio of any length with bounded memory.

    Args:
        classifier: an :class:`~arinext.inference.AudioClassifier` (any :class:`WindowScorer`).
        source: a file path or file bytes (read in blocks), or a 1-D array with ``sampling_rate``
            (or a ``{"array", "sampling_rate"}`` dict).
        window, hop: seconds; defaults: the front end's crop and half of it (see :class:`AudioStream`).
        top_k: labels per window and for the aggregate.
        aggregate: clip-level score, ``"mean"`` or ``"max"`` of the window probabilities.
        batch_size: windows per forward pass; the default 32 is faster and differs from 1 only by float
            rounding (about 1e-7 on probabilities); 1 gives exactly the numbers of a default
            :class:`AudioStream`.
        block_seconds: seconds of audio decoded per read.
        progress: a bar over the file: ``None`` on a terminal only, ``True`` always, ``False`` never.

    Returns:
        a :class:`~arinext.inference.ScanResult` (``windows`` with start/end seconds and top-k, and ``aggregate``).
    """
    if aggregate not in ("mean", "max"):
        raise ConfigError(f"aggregate must be 'mean' or 'max', got {aggregate!r}")
    if isinstance(source, Mapping):
        source, sampling_rate = source["array"], int(source["sampling_rate"])
    if isinstance(source, (np.ndarray, torch.Tensor)):
        if sampling_rate is None:
            raise InputError("an array input needs its rate: pass sampling_rate=<Hz>")
        x = np.asarray(samples_as_numpy(source))
        if x.ndim != 1:  # flattening (N, 2) would interleave the channels into one wrong waveform
            raise InputError(f"scan() takes a 1-D mono array, got shape {x.shape}: average the channels first")
        x = check_waveform(x)
        rate = check_sample_rate(sampling_rate)
        step = max(1, int(block_seconds * rate))
        frames, blocks = x.size, (x[i : i + step] for i in range(0, x.size, step))
    else:
        rate, frames, blocks = read_blocks(source, block_seconds)
    stream = AudioStream(classifier, window, hop, sampling_rate=rate, top_k=top_k, batch_size=batch_size)
    windows: list[WindowPrediction] = []
    tic = time.perf_counter()
    bar_format = "{l_bar}{bar}| {n:.0f}/{total:.0f} s"
    try:
        with progress_bar(total=frames / rate, enabled=progress, unit="s", desc="scan", bar_format=bar_format) as bar:
            for block in blocks:
                windows.extend(stream.push(block))
                bar.update(block.size / rate)
        windows.extend(stream.flush())
    except NonFiniteOutputError as exc:  # name the file, not only the stream's windows
        raise NonFiniteOutputError(describe_source(source), f"{exc.source}: {exc.problem}") from exc
    if not windows:
        problem = f"{frames} sample(s) at {rate} Hz leave none at {classifier.sample_rate} Hz"
        raise AudioDecodeError(describe_source(source), problem)
    elapsed = time.perf_counter() - tic
    duration = stream.samples_received / classifier.sample_rate
    speed = duration / max(elapsed, 1e-9)
    log.info("scanned %.1f s of audio in %.2f s (%.1fx real time), %d windows", duration, elapsed, speed, len(windows))
    probs = np.stack([w.probs for w in windows])
    return ScanResult(
        windows=windows,
        aggregate=top_k_labels(aggregate_probs(probs, aggregate), classifier.labels, top_k),
        aggregate_method=aggregate,
        duration=duration,
        window=stream.window,
        hop=stream.hop,
    )
