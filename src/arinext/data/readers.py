"""Reading a clip's samples: audio files through :mod:`arinext.audio.io`, EPIC audio from HDF5.

The EPIC pipelines (Auditory Slow-Fast, AudioRepInceptionNeXt) keep the audio of every video in a
single HDF5 file, one 1-D dataset per video id, sampled at 24 kHz. A :class:`ClipRecord` with a
``key`` is read from that file; any other record is an audio file. Both readers raise
:class:`~arinext.audio.io.AudioDecodeError` naming the clip for every unusable input.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..audio.io import AudioDecodeError, audio_info, check_waveform, load_audio, resample
from ..utils.optional import require
from .records import ClipRecord

__all__ = ["HDF5_SAMPLE_RATE", "clip_duration", "hdf5_rate", "read_clip"]

#: Rate of the EPIC HDF5 audio when the file does not store one (``sample_rate``/``sr`` attribute).
HDF5_SAMPLE_RATE = 24000

# Open HDF5 files of this process, keyed by path. A DataLoader worker forked after the parent
# opened a file must not reuse the parent's handle, hence the pid check.
_HDF5_FILES: dict[str, tuple[int, Any]] = {}


def hdf5_rate(ds: Any, handle: Any) -> int:
    """Sample rate of an HDF5 audio dataset: its ``sample_rate``/``sr`` attribute, else the file's
    ``sample_rate``, else :data:`HDF5_SAMPLE_RATE`."""
    return int(ds.attrs.get("sample_rate", ds.attrs.get("sr", handle.attrs.get("sample_rate", HDF5_SAMPLE_RATE))))


def _hdf5_dataset(rec: ClipRecord) -> tuple[Any, int]:
    h5py = require("h5py", "data", "reading EPIC audio from HDF5")
    entry = _HDF5_FILES.get(rec.path)
    if entry is None or entry[0] != os.getpid():
        if not os.path.isfile(rec.path):
            raise AudioDecodeError(rec.path, "HDF5 file not found")
        try:
            handle = h5py.File(rec.path, "r")
        except OSError as exc:
            raise AudioDecodeError(rec.path, f"cannot open as HDF5 ({exc})") from exc
        entry = (os.getpid(), handle)
        _HDF5_FILES[rec.path] = entry
    handle = entry[1]
    if rec.key not in handle:
        raise AudioDecodeError(f"{rec.path}[{rec.key}]", "no such dataset in the HDF5 file")
    ds = handle[rec.key]
    if ds.ndim != 1:
        raise AudioDecodeError(f"{rec.path}[{rec.key}]", f"expected 1-D audio samples, got shape {ds.shape}")
    return ds, hdf5_rate(ds, handle)


def clip_duration(rec: ClipRecord) -> float:
    """Length in seconds of the whole file (or HDF5 dataset) that ``rec`` points into."""
    if rec.key is not None:
        ds, rate = _hdf5_dataset(rec)
        return ds.shape[0] / rate
    frames, rate = audio_info(rec.path)
    return frames / rate


def read_clip(rec: ClipRecord, start: float, end: float, sample_rate: int) -> np.ndarray:
    """Decode seconds ``[start, end)`` of the file behind ``rec`` as float32 mono at ``sample_rate``."""
    if rec.key is None:
        return load_audio(rec.path, sample_rate=sample_rate, start=start, end=end)[0]
    ds, rate = _hdf5_dataset(rec)
    first, last = max(0, int(round(start * rate))), min(ds.shape[0], int(round(end * rate)))
    try:
        x = np.asarray(ds[first:last])
    except OSError as exc:
        raise AudioDecodeError(rec.source, f"corrupt HDF5 data ({exc})") from exc
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
    x = check_waveform(x, rec.source)
    return resample(x, rate, sample_rate)
