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

from ..utils.errors import ArinextError, InputError

__all__ = ["AudioDecodeError", "AudioSource", "audio_info", "check_waveform", "load_audio", "resample"]

log = logging.getLogger(__name__)

# (file rate, target rate) pairs already reported, so a dataset at 44.1 kHz logs once, not per clip.
_RESAMPLE_LOGGED: set[tuple[int, int]] = set()

AudioSource = Union[str, os.PathLike, bytes]


class AudioDecodeError(ArinextError, ValueError):
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
        raise InputError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    y = soxr.resample(np.ascontiguousarray(x.T), orig_sr, target_sr, quality="HQ")
    return np.ascontiguousarray(np.asarray(y, dtype=np.float32).T)


def _open_handle(source: AudioSource) -> object:
    """Check a path (exists, is a file, non-empty, readable) or bytes; return what soundfile opens."""
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise AudioDecodeError(source, "empty input (0 bytes)")
        data = bytes(source)
        _check_wav_truncation(data[:65536], len(data), source)
        return io.BytesIO(data)
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
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError as exc:
        raise AudioDecodeError(source, f"cannot read ({exc.strerror or exc})") from exc
    _check_wav_truncation(head, size, source)
    return str(path)


def _check_wav_truncation(head: bytes, total_size: int, source: object) -> None:
    """Raise if a RIFF/WAVE file holds fewer audio bytes than its ``data`` chunk header declares.

    libsndfile silently shortens such files to the bytes present, so a half-copied WAV would
    otherwise decode as a shorter clip without any error.
    """
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return
    order = "little" if head[:4] == b"RIFF" else "big"
    pos = 12
    while pos + 8 <= len(head):
        chunk_id, size = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], order)
        if chunk_id == b"data":
            available = total_size - (pos + 8)
            # 0 and 0xFFFFFFFF are the "size unknown" markers written by streaming encoders.
            if size not in (0, 0xFFFFFFFF) and available < size:
                raise AudioDecodeError(
                    source, f"truncated WAV: header declares {size} bytes of audio data, the file holds {available}"
                )
            return
        pos += 8 + size + (size & 1)


def audio_info(source: AudioSource) -> tuple[int, int]:
    """Return ``(num_frames, sample_rate)`` of an audio file without decoding it.

    Raises:
        AudioDecodeError: unreadable, empty, truncated or non-audio input.
    """
    handle = _open_handle(source)
    try:
        with sf.SoundFile(handle) as f:  # type: ignore[arg-type]
            return int(f.frames), int(f.samplerate)
    except (sf.LibsndfileError, RuntimeError, EOFError, OSError) as exc:
        raise AudioDecodeError(source, f"not a readable audio file ({_sf_message(exc)})") from exc


def _sf_message(exc: BaseException) -> str:
    message = str(getattr(exc, "error_string", "") or exc)
    # libsndfile's generic failure text says nothing to a user
    return "the decoder failed on damaged data" if message.strip() == "System error." else message


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
        sample_rate: resample to this rate (soxr); ``None`` keeps the file's rate. The first
            conversion between a given pair of rates is logged once (INFO).
        start, end: seconds to read (only that part is decoded); ``None`` means the file's start/end.
        mono: average the channels.

    Returns:
        ``(waveform, rate)``: float32 of shape ``(N,)`` if ``mono`` else ``(channels, N)``.

    Raises:
        AudioDecodeError: unreadable, empty, corrupt, truncated, zero-length or non-finite audio,
            or a ``start``/``end`` window that holds no samples.
    """
    handle = _open_handle(source)
    try:
        f = sf.SoundFile(handle)  # type: ignore[arg-type]
    except (sf.LibsndfileError, RuntimeError, EOFError, OSError) as exc:
        raise AudioDecodeError(source, f"not a readable audio file ({_sf_message(exc)})") from exc
    with f:
        sr = f.samplerate
        first = 0 if start is None else max(0, int(round(start * sr)))
        last = f.frames if end is None else min(f.frames, int(round(end * sr)))
        if f.frames > 0 and (first >= f.frames or last <= first):
            raise AudioDecodeError(
                source, f"window [{start}, {end}] s holds no samples (audio lasts {f.frames / sr:.3f} s)"
            )
        try:
            if first > 0:
                f.seek(first)
            data = f.read(max(0, last - first), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, EOFError, OSError) as exc:
            raise AudioDecodeError(source, f"corrupt or truncated audio ({_sf_message(exc)})") from exc
    if 0 < data.shape[0] < last - first:
        raise AudioDecodeError(source, f"truncated audio: expected {last - first} frames, decoded {data.shape[0]}")
    x = data.T  # (channels, N)
    if mono:
        x = x.mean(axis=0)
    x = check_waveform(x, source)
    if sample_rate is not None and sample_rate != sr:
        if (sr, sample_rate) not in _RESAMPLE_LOGGED:
            _RESAMPLE_LOGGED.add((sr, sample_rate))
            log.info("resampling audio from %d Hz to %d Hz with soxr (first file: %s)", sr, sample_rate, source)
        x = resample(x, sr, sample_rate)
        sr = sample_rate
    return x, sr
