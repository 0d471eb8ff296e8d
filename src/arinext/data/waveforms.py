"""Decoded-waveform cache: a dataset that fits in memory is decoded once, not once per epoch.

:class:`WaveformCache` holds the whole decoded audio of each file (mono float32 at the file's own rate) in
one buffer. Reading a clip from it does what :func:`arinext.audio.io.load_audio` does with the file (the
same sample arithmetic for ``start``/``end``, the same down-mix, the same resampling of the same samples),
so the cached data are exactly the decoded data (tested). The buffer lives in shared memory: DataLoader
workers read it without copies, also when they are spawned rather than forked.

:func:`attach_waveform_cache` decodes the files of one or more :class:`~arinext.data.AudioClipDataset`
(in parallel with DataLoader workers) and hands every dataset the cache. It caches when asked to, or,
with ``enabled=None``, when an estimate of the decoded size (from the headers of a sample of files) fits
the size limit; files beyond the limit, HDF5 records and files that fail to decode are read from disk as
before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..audio.io import AudioDecodeError, audio_info, load_audio, resample
from ..utils.progress import progress_bar

if TYPE_CHECKING:
    from .clips import AudioClipDataset
    from .records import ClipRecord

__all__ = ["WaveformCache", "attach_waveform_cache", "estimate_decoded_bytes"]

log = logging.getLogger(__name__)

_SAMPLE_FILES = 32  # headers read to estimate the decoded size of a dataset
_PARALLEL_FROM = 200  # files from which decoding runs in worker processes


class WaveformCache:
    """Whole files, decoded to mono float32 at their own rate, in one shared-memory buffer.

    Args:
        arrays: ``{path: (samples, rate)}``, the output of ``load_audio(path, sample_rate=None)``.
    """

    def __init__(self, arrays: dict[str, tuple[np.ndarray, int]]) -> None:
        total = sum(a.size for a, _ in arrays.values())
        self.buffer = torch.empty(total, dtype=torch.float32).share_memory_()
        flat = self.buffer.numpy()
        self.index: dict[str, tuple[int, int, int]] = {}  # path -> (offset, frames, rate)
        offset = 0
        for path, (samples, rate) in arrays.items():
            flat[offset : offset + samples.size] = samples
            self.index[path] = (offset, samples.size, int(rate))
            offset += samples.size

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, path: object) -> bool:
        return path in self.index

    @property
    def nbytes(self) -> int:
        return self.buffer.numel() * 4

    def duration(self, path: str) -> float:
        """Length in seconds of a cached file."""
        _, frames, rate = self.index[path]
        return frames / rate

    def read(self, path: str, start: float | None, end: float | None, sample_rate: int) -> np.ndarray:
        """Seconds ``[start, end)`` of a cached file at ``sample_rate``: what ``load_audio(path, sample_rate,
        start, end)`` returns, as a new array."""
        offset, frames, rate = self.index[path]
        first = 0 if start is None else max(0, int(round(start * rate)))
        last = frames if end is None else min(frames, int(round(end * rate)))
        if first >= frames or last <= first:
            raise AudioDecodeError(
                path, f"window [{start}, {end}] s holds no samples (audio lasts {frames / rate:.3f} s)"
            )
        x = self.buffer.numpy()[offset + first : offset + last]
        return resample(x, rate, sample_rate) if rate != sample_rate else x.copy()


class _Decoder(Dataset):
    """Path -> ``(path, samples, rate)``, or ``(path, None, 0)`` for a file the normal path must read."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[str, np.ndarray | None, int]:
        path = self.paths[i]
        try:
            samples, rate = load_audio(path, sample_rate=None)
        except AudioDecodeError:  # left to the normal path, which reports it where the clip is used
            return path, None, 0
        return path, samples, rate


def _cacheable_paths(datasets: Sequence[AudioClipDataset]) -> list[str]:
    records: list[ClipRecord] = [r for ds in datasets for r in ds.records]
    return list(dict.fromkeys(r.path for r in records if r.key is None))


def estimate_decoded_bytes(paths: Sequence[str], sample: int = _SAMPLE_FILES) -> int:
    """Estimated size of the decoded files (mono float32 at their own rate), from the headers of up to
    ``sample`` files spread over the list."""
    if not paths:
        return 0
    picked = paths[:: max(1, len(paths) // sample)][:sample]
    sizes = []
    for path in picked:
        try:
            frames, _ = audio_info(path)
        except AudioDecodeError:
            continue
        sizes.append(frames * 4)
    return int(np.mean(sizes) * len(paths)) if sizes else 0


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)


def attach_waveform_cache(
    datasets: Sequence[AudioClipDataset],
    enabled: bool | None = None,
    limit_mb: float = 1024.0,
    num_workers: int = 0,
    progress: bool | None = False,
) -> WaveformCache | None:
    """Decode the files of ``datasets`` once and make every dataset read its clips from memory.

    Args:
        datasets: datasets to share one cache (e.g. the training and validation subsets).
        enabled: ``True`` caches up to ``limit_mb``; ``False`` does nothing; ``None`` (automatic) caches when
            the estimated decoded size fits ``limit_mb``.
        limit_mb: most MiB of decoded audio to hold; files beyond it are read from disk.
        num_workers: processes decoding in parallel.
        progress: a progress bar (``None``: on a terminal only).

    Returns:
        the cache, or ``None`` when nothing was cached.
    """
    if enabled is False or limit_mb <= 0:
        return None
    paths = _cacheable_paths(datasets)
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
    tic = time.perf_counter()
    num_workers = num_workers if len(paths) >= _PARALLEL_FROM else 0  # starting workers costs more than a few files
    loader = DataLoader(
        _Decoder(paths), batch_size=None, num_workers=num_workers, worker_init_fn=_worker_init,
        prefetch_factor=4 if num_workers else None,
    )  # fmt: skip
    arrays: dict[str, tuple[np.ndarray, int]] = {}
    used, skipped, full = 0, 0, False
    for path, samples, rate in progress_bar(loader, enabled=progress, desc="decoding audio", total=len(paths)):
        if samples is None:
            skipped += 1
            continue
        samples = np.asarray(samples)  # the loader hands numpy arrays over as tensors
        if used + samples.nbytes > limit:
            full = True
            continue
        arrays[path] = (samples, rate)
        used += samples.nbytes
    cache = WaveformCache(arrays)
    arrays.clear()
    for ds in datasets:
        ds.waveform_cache = cache
    log.info(
        "waveform cache: %d of %d files decoded into %.0f MiB in %.1f s%s%s",
        len(cache), len(paths), cache.nbytes / 2**20, time.perf_counter() - tic,
        f"; {len(paths) - len(cache) - skipped} left on disk (limit {limit_mb:g} MiB)" if full else "",
        f"; {skipped} unreadable, read (and reported) per clip" if skipped else "",
    )  # fmt: skip
    return cache
