"""Decoding audio files into float32 mono arrays, with errors that name the file and the problem."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Union

import numpy as np
import soundfile as sf
import soxr

__all__ = ["AudioDecodeError", "AudioSource", "load_audio", "resample", "check_waveform"]

log = logging.getLogger(__name__)

AudioSource = Union[str, os.PathLike, bytes]


class AudioDecodeError(ValueError):
    """An audio input that cannot be used; ``str()`` names the source and the problem."""

    def __init__(self, source: object, problem: str) -> None:
        self.source = _describe(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


def _describe(source: object) -> str:
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    return str(source)


def check_waveform(x: np.ndarray, source: object = "<array>") -> np.ndarray:
    """Validate a decoded waveform: non-empty, finite. Returns it as float32."""
    if x.size == 0:
        raise AudioDecodeError(source, "zero-length audio")
    x = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise AudioDecodeError(source, "audio contains NaN or Inf samples")
    return x


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample along the last axis with soxr (high quality); a no-op when the rates agree."""
    if orig_sr == target_sr:
        return x
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    y = soxr.resample(np.ascontiguousarray(x.T), orig_sr, target_sr, quality="HQ")
    return np.ascontiguousarray(np.asarray(y, dtype=np.float32).T)


def load_audio(
    source: AudioSource,
    sample_rate: int | None = None,
    start: float | None = None,
    end: float | None = None,
    mono: bool = True,
) -> tuple[np.ndarray, int]:
    """Decode a file path or the raw bytes of an audio file (WAV, FLAC, OGG, ...).

    Args:
        source: path or bytes.
        sample_rate: resample to this rate (soxr); ``None`` keeps the file's rate.
        start, end: seconds to read (only that part is decoded); ``None`` means the file's start/end.
        mono: average the channels.

    Returns:
        ``(waveform, rate)``: float32 of shape ``(N,)`` if ``mono`` else ``(channels, N)``.

    Raises:
        AudioDecodeError: unreadable, empty, corrupt, zero-length or non-finite audio.
    """
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise AudioDecodeError(source, "empty input (0 bytes)")
        handle: object = io.BytesIO(bytes(source))
    else:
        path = Path(source)
        if not path.exists():
            raise AudioDecodeError(source, "file not found")
        if path.is_dir():
            raise AudioDecodeError(source, "is a directory, not an audio file")
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise AudioDecodeError(source, f"cannot read ({exc.strerror})") from exc
        if size == 0:
            raise AudioDecodeError(source, "empty file (0 bytes)")
        if not os.access(path, os.R_OK):
            raise AudioDecodeError(source, "permission denied")
        handle = str(path)
    try:
        with sf.SoundFile(handle) as f:  # type: ignore[arg-type]
            sr = f.samplerate
            first = 0 if start is None else max(0, int(round(start * sr)))
            last = f.frames if end is None else min(f.frames, int(round(end * sr)))
            if first > 0:
                f.seek(min(first, f.frames))
            data = f.read(max(0, last - first), dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        raise AudioDecodeError(source, f"not a readable audio file ({exc.error_string})") from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise AudioDecodeError(source, f"corrupt or truncated audio ({exc})") from exc
    x = data.T  # (channels, N)
    if mono:
        x = x.mean(axis=0)
    x = check_waveform(x, source)
    if sample_rate is not None and sample_rate != sr:
        x = resample(x, sr, sample_rate)
        sr = sample_rate
    return x, sr
