"""Decoded-waveform cache: files decoded once, then read from memory, filled as the clips are first read.

:class:`WaveformCache` holds whole files, decoded to mono float32 at the file's own rate, in one buffer of
at most ``capacity`` bytes in shared memory. Nothing is decoded up front: the first time any process (the
main one or a DataLoader worker) reads a clip of a file, it decodes the whole file, stores it if it still
fits, and cuts the clip from it; later reads of that file, by any process, come from the buffer. Once the
buffer is full, files not in it are read from disk as before (only the clip's window is decoded). Reading a
clip from the cache does what :func:`arinext.audio.io.load_audio` does with the file (the same sample
arithmetic for ``start``/``end``, the same down-mix, the same resampling of the same samples), so cached data
are exactly the decoded data (tested).

The buffer, the table of which file sits where, and a lock live in shared memory, so every worker of a
loader (forked or spawned, persistent or not) fills and reads one cache: the bound holds for the training
process and its workers together (each process of a multi-process run has its own cache). The buffer is
sized to the smaller of the bound and the dataset's estimated decoded size (from the headers of a sample of
files) and is taken when the cache is created.

:func:`attach_waveform_cache` creates the cache for one or more :class:`~arinext.data.AudioClipDataset`\\ s
(e.g. the training and validation subsets) and hands it to each.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..audio.io import AudioDecodeError, audio_info, load_audio, resample

if TYPE_CHECKING:
    from .clips import AudioClipDataset

__all__ = ["WaveformCache", "attach_waveform_cache", "estimate_decoded_bytes"]

log = logging.getLogger(__name__)

_SAMPLE_FILES = 32  # headers read to estimate the decoded size of a dataset
_SHM = "/dev/shm"  # where torch's shared memory lives on Linux
_NEW, _FILLING, _CACHED, _DISK = 0, 1, 2, 3  # state of a file in the cache


def _shared_floats(count: int) -> torch.Tensor:
    storage = torch.UntypedStorage._new_shared(count * 4)  # noqa: SLF001  (no copy of a private buffer)
    return torch.empty(0, dtype=torch.float32).set_(storage, 0, (count,))


def _window(
    samples: np.ndarray, rate: int, start: float | None, end: float | None, sample_rate: int, source: str
) -> np.ndarray:
    """Seconds ``[start, end)`` of decoded ``samples`` at ``sample_rate``, cut as ``load_audio`` cuts a file."""
    frames = samples.shape[0]
    first = 0 if start is None else max(0, int(round(start * rate)))
    last = frames if end is None else min(frames, int(round(end * rate)))
    if first >= frames or last <= first:
        lasts = f"audio lasts {frames / rate:.3f} s"
        raise AudioDecodeError(source, f"window [{start}, {end}] s holds no samples ({lasts})")
    x = samples[first:last]
    return resample(x, rate, sample_rate) if rate != sample_rate else x.copy()


class WaveformCache:
    """Whole files, decoded to mono float32 at their own rate, in one shared buffer filled on first read.

    Args:
        files: how many distinct files the cache may be asked about (slots ``0 .. files - 1``).
        capacity: most bytes of decoded audio to hold (rounded down to whole samples).

    Slots, not paths, name the files: a dataset maps each of its paths to a slot once
    (:func:`attach_waveform_cache`), so no per-file Python object is looked up while loading.
    """

    def __init__(self, files: int, capacity: int) -> None:
        self.capacity = max(0, int(capacity)) // 4 * 4
        self.buffer = _shared_floats(self.capacity // 4)
        self.offset = torch.zeros(files, dtype=torch.int64).share_memory_()
        self.frames = torch.zeros(files, dtype=torch.int64).share_memory_()
        self.rate = torch.zeros(files, dtype=torch.int64).share_memory_()
        self.state = torch.zeros(files, dtype=torch.uint8).share_memory_()
        self._used = torch.zeros(2, dtype=torch.int64).share_memory_()  # samples stored, "full" flag
        self._lock = multiprocessing.Lock()

    def __len__(self) -> int:
        return self.cached_files()

    def cached_files(self) -> int:
        """Files held in the buffer now."""
        return int((self.state == _CACHED).sum())

    @property
    def nbytes(self) -> int:
        """Bytes of decoded audio stored so far (at most :attr:`capacity`)."""
        return int(self._used[0]) * 4

    @property
    def full(self) -> bool:
        """A file did not fit: files read from now on stay on disk."""
        return bool(self._used[1])

    def _cached(self, slot: int) -> tuple[int, int, int] | None:
        with self._lock:  # the state is read under the lock: the samples it announces are written
            if int(self.state[slot]) != _CACHED:
                return None
            return int(self.offset[slot]), int(self.frames[slot]), int(self.rate[slot])

    def duration(self, slot: int) -> float | None:
        """Length in seconds of a cached file, ``None`` when it is not (yet) in the cache."""
        entry = self._cached(slot)
        return None if entry is None else entry[1] / entry[2]

    def read(self, slot: int, path: str, start: float | None, end: float | None, sample_rate: int) -> np.ndarray:
        """Seconds ``[start, end)`` of file ``slot`` (``path``) at ``sample_rate``: what ``load_audio(path,
        sample_rate, start, end)`` returns, as a new array; decodes and stores the whole file on its first read
        while there is room."""
        entry = self._cached(slot)
        if entry is not None:
            offset, frames, rate = entry
            return _window(self.buffer.numpy()[offset : offset + frames], rate, start, end, sample_rate, path)
        if int(self.state[slot]) == _DISK or self.full:
            return load_audio(path, sample_rate=sample_rate, start=start, end=end)[0]
        try:
            samples, rate = load_audio(path, sample_rate=None)
        except AudioDecodeError:
            self.state[slot] = _DISK  # read (and reported) through the normal path from now on
            raise
        self._store(slot, samples, rate)
        return _window(samples, rate, start, end, sample_rate, path)

    def _store(self, slot: int, samples: np.ndarray, rate: int) -> None:
        with self._lock:
            if int(self.state[slot]) != _NEW:  # another process is storing it, or it stays on disk
                return
            offset = int(self._used[0])
            if (offset + samples.size) * 4 > self.capacity:
                self._used[1] = 1
                self.state[slot] = _DISK
                return
            self._used[0] = offset + samples.size
            self.state[slot] = _FILLING
        self.buffer.numpy()[offset : offset + samples.size] = samples
        with self._lock:
            self.offset[slot], self.frames[slot], self.rate[slot] = offset, samples.size, int(rate)
            self.state[slot] = _CACHED

    def __repr__(self) -> str:
        return (
            f"WaveformCache({self.cached_files()} files, {self.nbytes / 2**20:.0f} of {self.capacity / 2**20:.0f} MiB"
            f"{', full' if self.full else ''})"
        )


def estimate_decoded_bytes(paths: Sequence[str], sample: int = _SAMPLE_FILES) -> int:
    """Estimated size of the decoded files (mono float32 at their own rate), from the headers of up to
    ``sample`` files spread over the list."""
    if not paths:
        return 0
    picked = [paths[i] for i in range(0, len(paths), max(1, len(paths) // sample))][:sample]
    sizes = []
    for path in picked:
        try:
            frames, _ = audio_info(path)
        except AudioDecodeError:
            continue
        sizes.append(frames * 4)
    return int(np.mean(sizes) * len(paths)) if sizes else 0


def _file_slots(datasets: Sequence[AudioClipDataset]) -> tuple[list[str], list[np.ndarray]]:
    """The distinct audio files (not HDF5) of ``datasets``, and per dataset the slot of each of its paths
    (``-1``: not cached)."""
    slot_of: dict[str, int] = {}
    per_dataset = []
    for ds in datasets:
        table = ds.records
        paths = table.unique_paths
        on_file = np.unique(table.storage()["path"][~table.has_key()])
        slots = np.full(len(paths), -1, dtype=np.int32)
        for pid in on_file:
            slots[pid] = slot_of.setdefault(paths[int(pid)], len(slot_of))
        per_dataset.append(slots)
    return list(slot_of), per_dataset


def _shm_room() -> int | None:
    try:
        st = os.statvfs(_SHM)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def attach_waveform_cache(
    datasets: Sequence[AudioClipDataset], enabled: bool | None = None, limit_mb: float = 1024.0
) -> WaveformCache | None:
    """Give ``datasets`` one waveform cache, filled as their clips are first read (no decoding here).

    Args:
        datasets: datasets to share one cache (e.g. the training and validation subsets).
        enabled: ``True`` caches up to ``limit_mb``; ``False`` does nothing; ``None`` (automatic) caches when
            the estimated decoded size fits ``limit_mb``.
        limit_mb: most MiB of decoded audio to hold; files beyond it are read from disk.

    Returns:
        the cache, or ``None`` when there is none.
    """
    if enabled is False or limit_mb <= 0:
        return None
    paths, slots = _file_slots(datasets)
    if not paths:
        return None
    limit = int(limit_mb * 2**20)
    estimate = estimate_decoded_bytes(paths)
    if enabled is None and estimate > limit:
        log.info(
            "waveform cache off: %d files decode to about %.0f MiB, above data.waveform_cache_mb=%g",
            len(paths), estimate / 2**20, limit_mb,
        )  # fmt: skip
        return None
    capacity = min(limit, int(estimate * 1.1) + 2**20) if estimate else limit
    room = _shm_room()
    if room is not None and capacity > room * 0.9:
        log.warning("waveform cache: %s has %.0f MiB free; caching %.0f MiB instead of %.0f MiB",
                    _SHM, room / 2**20, room * 0.9 / 2**20, capacity / 2**20)  # fmt: skip
        capacity = int(room * 0.9)
    cache = WaveformCache(len(paths), capacity)
    for ds, table in zip(datasets, slots):
        ds.waveform_cache, ds.waveform_slots = cache, table
    share = min(1.0, capacity / estimate) if estimate else 1.0
    log.info(
        "waveform cache: up to %.0f MiB (data.waveform_cache_mb=%g) for %d files of about %.0f MiB decoded "
        "(%.0f%% of them), filled as clips are first read",
        capacity / 2**20, limit_mb, len(paths), estimate / 2**20, 100 * share,
    )  # fmt: skip
    return cache
