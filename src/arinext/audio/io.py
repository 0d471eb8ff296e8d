"""Decoding audio files into float32 mono arrays, with errors that name the file and the problem.

The input rule, the same on every path that takes audio (files, bytes, arrays, streamed chunks, HEAR
tensors, dataset clips): samples are float audio in [-1, 1] at a sample rate between
:data:`MIN_SAMPLE_RATE` and :data:`MAX_SAMPLE_RATE`.

* Integer samples are scaled to [-1, 1] by their full scale, as ``soundfile`` decodes PCM files: int8 and
  int16/int32 divided by 2^7, 2^15, 2^31, uint8 (8-bit WAV) centred on 128. Other integer types are refused.
* Float samples above full scale are kept as they are up to :data:`MAX_AMPLITUDE` (+36 dBFS: float files
  may hold overs). Beyond that, and for NaN or infinite samples, the audio is refused: such values come
  from damaged files or from integer samples stored as floats (divide 16-bit values by 32768), and would
  overflow the spectrogram into NaN scores. Refusing, not rescaling, is deliberate: a rescaled clip would
  be classified at a level it was never recorded at, silently.

Every refusal is an :class:`AudioDecodeError` (an :class:`~arinext.ArinextError`) whose message names the
source. Within the rule the front end and the models give finite outputs; :mod:`arinext.inference` checks its
scores all the same.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Union

import numpy as np
import soundfile as sf
import soxr

from ..utils.errors import ArinextError, InputError

__all__ = [
    "MAX_AMPLITUDE",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "AudioDecodeError",
    "AudioSource",
    "audio_info",
    "check_peak",
    "check_sample_rate",
    "check_waveform",
    "decode_blocks",
    "describe_source",
    "load_audio",
    "open_audio",
    "resample",
]

log = logging.getLogger(__name__)

#: Largest magnitude of a float sample that is accepted (+36 dBFS); see the module docstring.
MAX_AMPLITUDE = 64.0
#: Sample rates (Hz) accepted from files and with arrays: telephone band to ultrasonic recorders.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 1_000_000

# Integer sample types and (offset, full scale) that map them to [-1, 1], as libsndfile decodes PCM.
_INT_SCALES = {np.dtype(np.int8): (0.0, 2.0**7), np.dtype(np.uint8): (128.0, 2.0**7),
               np.dtype(np.int16): (0.0, 2.0**15), np.dtype(np.int32): (0.0, 2.0**31)}  # fmt: skip

# Frames decoded per read: a header that claims billions of frames costs memory only for what decodes.
_READ_FRAMES = 1 << 20

# (file rate, target rate) pairs already reported, so a dataset at 44.1 kHz logs once, not per clip.
_RESAMPLE_LOGGED: set[tuple[int, int]] = set()

AudioSource = Union[str, os.PathLike, bytes]


class AudioDecodeError(ArinextError, ValueError):
    """An audio input that cannot be used; ``str()`` names the source and the problem."""

    def __init__(self, source: object, problem: str) -> None:
        self.source = describe_source(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


def describe_source(source: object) -> str:
    """How errors name an input: a path as given, ``<N bytes>`` for file bytes, ``<array>`` for samples."""
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return "<array>" if hasattr(source, "shape") else str(source)


def check_sample_rate(rate: object, source: object = "<array>") -> int:
    """``rate`` as an int if it is a whole number of Hz within [:data:`MIN_SAMPLE_RATE`, :data:`MAX_SAMPLE_RATE`].

    Raises:
        AudioDecodeError: any other rate (a damaged header, or a rate in kHz passed as Hz).
    """
    try:
        value = int(rate)  # type: ignore[call-overload]
        whole = value == rate
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or not MIN_SAMPLE_RATE <= value <= MAX_SAMPLE_RATE:
        raise AudioDecodeError(
            source, f"sample rate {rate!r} Hz is not a whole number in [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz"
        )
    return value


def check_waveform(x: object, source: object = "<array>") -> np.ndarray:
    """Apply the input rule (module docstring) to samples of any shape; returns them as float32.

    Raises:
        AudioDecodeError: empty, non-numeric, NaN/infinite or louder than :data:`MAX_AMPLITUDE` samples.
    """
    a = np.asarray(x)
    if a.size == 0:
        raise AudioDecodeError(source, "zero-length audio")
    if a.dtype in _INT_SCALES:
        offset, scale = _INT_SCALES[a.dtype]
        return ((a.astype(np.float32) - np.float32(offset)) / np.float32(scale)).astype(np.float32)
    if a.dtype.kind != "f":
        raise AudioDecodeError(
            source, f"samples of type {a.dtype} are not audio: give float samples in [-1, 1] or int8/16/32 PCM"
        )
    check_peak(float(np.max(np.abs(a))), source)  # NaN if any sample is NaN
    return a.astype(np.float32, copy=False)


def check_peak(peak: float, source: object = "<array>") -> None:
    """Refuse audio whose largest ``|sample|`` is ``peak`` if that is NaN, infinite or above :data:`MAX_AMPLITUDE`.

    Raises:
        AudioDecodeError: naming ``source``; the message says what is accepted.
    """
    if not np.isfinite(peak):
        raise AudioDecodeError(source, "audio contains NaN or Inf samples")
    if peak > MAX_AMPLITUDE:
        raise AudioDecodeError(
            source,
            f"samples reach {peak:.3g}; float audio must lie within [-1, 1] (at most {MAX_AMPLITUDE:g} is "
            "accepted): a damaged file, or integer values stored as floats (divide 16-bit values by 32768)",
        )


def resample(x: np.ndarray, orig_sr: int, target_sr: int, source: object = "<array>") -> np.ndarray:
    """Resample along the last axis with soxr (high quality); a no-op when the rates agree.

    Raises:
        AudioDecodeError: a rate outside [:data:`MIN_SAMPLE_RATE`, :data:`MAX_SAMPLE_RATE`], or audio too short
            to leave one sample at ``target_sr`` (names ``source``).
    """
    if orig_sr == target_sr:
        return x
    orig_sr, target_sr = check_sample_rate(orig_sr, source), check_sample_rate(target_sr, source)
    y = np.asarray(soxr.resample(np.ascontiguousarray(x.T), orig_sr, target_sr, quality="HQ"), dtype=np.float32)
    if y.shape[0] == 0 < x.shape[-1]:
        raise AudioDecodeError(source, f"{x.shape[-1]} sample(s) at {orig_sr} Hz leave none at {target_sr} Hz")
    return np.ascontiguousarray(y.T)


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


def open_audio(source: AudioSource) -> sf.SoundFile:
    """Open a file path or file bytes for reading with ``soundfile``, after the checks of :func:`load_audio`
    that need no decoding (readable, non-empty, not a truncated WAV, a sample rate within the input rule).

    Raises:
        AudioDecodeError: unreadable, empty, truncated or non-audio input, or an implausible sample rate.
    """
    handle = _open_handle(source)
    try:
        f = sf.SoundFile(handle)  # type: ignore[arg-type]
    except (sf.LibsndfileError, RuntimeError, EOFError, OSError) as exc:
        raise AudioDecodeError(source, f"not a readable audio file ({_sf_message(exc)})") from exc
    try:
        check_sample_rate(f.samplerate, source)
    except AudioDecodeError:
        f.close()
        raise
    return f


def audio_info(source: AudioSource) -> tuple[int, int]:
    """Return ``(num_frames, sample_rate)`` of an audio file without decoding it.

    Raises:
        AudioDecodeError: unreadable, empty, truncated or non-audio input, or an implausible sample rate.
    """
    with open_audio(source) as f:
        return int(f.frames), int(f.samplerate)


def _sf_message(exc: BaseException) -> str:
    message = str(getattr(exc, "error_string", "") or exc)
    # libsndfile's generic failure text says nothing to a user
    return "the decoder failed on damaged data" if message.strip() == "System error." else message


def decode_blocks(
    f: sf.SoundFile, count: int, source: object, block_frames: int = _READ_FRAMES
) -> Iterator[np.ndarray]:
    """Decode ``count`` frames from ``f``'s position, ``block_frames`` at a time: float32 ``(frames, channels)``
    blocks, each checked by the input rule (:func:`check_waveform`).

    Reading stops at the end of the decodable data, so a header that claims more frames than the file
    holds costs neither memory nor time (``soundfile``'s own ``blocks()`` would hand out stale buffers
    for every missing frame); fewer frames than ``count`` is then an error, as is none at all.

    Raises:
        AudioDecodeError: the decoder fails, the data ends early, or a block breaks the input rule.
    """
    left = count
    while left > 0:
        want = min(left, block_frames)
        try:
            part = f.read(want, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, EOFError, OSError) as exc:
            raise AudioDecodeError(source, f"corrupt or truncated audio ({_sf_message(exc)})") from exc
        if part.shape[0]:
            yield check_waveform(part, source)
        left -= part.shape[0]
        if part.shape[0] < want:
            break
    if left == count:
        raise AudioDecodeError(source, "zero-length audio")
    if left > 0:
        raise AudioDecodeError(source, f"truncated audio: expected {count} frames, decoded {count - left}")


def load_audio(
    source: AudioSource,
    sample_rate: int | None = None,
    start: float | None = None,
    end: float | None = None,
    mono: bool = True,
) -> tuple[np.ndarray, int]:
    """Decode a file path or the raw bytes of an audio file (WAV, FLAC, OGG, MP3, ...).

    The samples follow the input rule of this module (float in [-1, 1], refused beyond
    :data:`MAX_AMPLITUDE`, NaN or infinity; a file rate within [:data:`MIN_SAMPLE_RATE`,
    :data:`MAX_SAMPLE_RATE`]).

    Args:
        source: path or bytes.
        sample_rate: resample to this rate (soxr); ``None`` keeps the file's rate. The first
            conversion between a given pair of rates is logged once (INFO).
        start, end: seconds to read (only that part is decoded); ``None`` means the file's start/end.
        mono: average the channels.

    Returns:
        ``(waveform, rate)``: float32 of shape ``(N,)`` if ``mono`` else ``(channels, N)``.

    Raises:
        AudioDecodeError: unreadable, empty, corrupt, truncated, zero-length, non-finite or overflowing
            audio, an implausible sample rate, or a ``start``/``end`` window that holds no samples.
    """
    with open_audio(source) as f:
        sr = f.samplerate
        first = 0 if start is None else max(0, int(round(start * sr)))
        last = f.frames if end is None else min(f.frames, int(round(end * sr)))
        if f.frames > 0 and (first >= f.frames or last <= first):
            raise AudioDecodeError(
                source, f"window [{start}, {end}] s holds no samples (audio lasts {f.frames / sr:.3f} s)"
            )
        if first > 0:
            try:
                f.seek(first)
            except (sf.LibsndfileError, RuntimeError, EOFError, OSError) as exc:
                raise AudioDecodeError(source, f"corrupt or truncated audio ({_sf_message(exc)})") from exc
        blocks = list(decode_blocks(f, last - first, source))  # checked before the channels are averaged
    x = (blocks[0] if len(blocks) == 1 else np.concatenate(blocks)).T  # (channels, N)
    if mono:
        x = x.mean(axis=0)
    if sample_rate is not None and sample_rate != sr:
        if (sr, sample_rate) not in _RESAMPLE_LOGGED:
            _RESAMPLE_LOGGED.add((sr, sample_rate))
            log.info("resampling audio from %d Hz to %d Hz with soxr (first file: %s)", sr, sample_rate, source)
        x = resample(x, sr, sample_rate, source)
        sr = sample_rate
    return x, sr
