"""Optional on-disk cache of log-mel features: computed once, then memory-mapped.

Each clip's segment (the record's ``[start, end]`` window, or the whole file) is featurized once
and written as ``<cache_dir>/logmel-<frontend hash>/<ab>/<clip hash>.npy``, shape ``(T, F)``.
Later reads use ``np.load(mmap_mode="r")``, so an epoch costs a page-cache read instead of a
decode + STFT. Crops are then cut in frames (:func:`arinext.data.sampling.frame_crop`).

Cached and uncached crops differ in two small ways: a cached crop starts on the hop grid (its
sample offset rounded down to a multiple of the hop), and its first and last few frames see the
neighbouring audio through their STFT windows where a crop featurized on its own sees zero
padding. Interior frames equal those of the grid-aligned crop featurized alone.

Keys include the file's size and modification time, so a replaced file is featurized again; a
change of front-end parameters or pad mode selects another folder.

The folder is bounded (``max_bytes``): once the features in it reach the bound, further clips are
featurized every time they are read and not written. The count of bytes in the folder (what an earlier
run left there, then every file written) is shared by every dataset using the folder in this process and
by their loader workers. :func:`estimate_feature_bytes` says how big the cache of a set of clips gets
before anything is written (VGG-Sound's 200k ten-second clips: about 100 GiB in float32).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio.frontend import FrontendConfig
from ..audio.io import AudioDecodeError
from ..utils.errors import ConfigError
from .readers import clip_duration
from .records import ClipRecord, PadMode

__all__ = ["FeatureCache", "estimate_feature_bytes"]

log = logging.getLogger(__name__)

_FORMAT_VERSION = 1
_NPY_HEADER = 128  # bytes of an .npy header
_SAMPLE_CLIPS = 32  # clips whose length is read to estimate a cache's size

# One byte count per cache folder in this process: datasets sharing a folder share the bound.
_FOLDER_COUNTS: dict[str, tuple[torch.Tensor, Any]] = {}


def _folder_bytes(folder: Path) -> int:
    total = 0
    for sub in os.scandir(folder):
        if sub.is_dir():
            total += sum(e.stat().st_size for e in os.scandir(sub.path) if e.name.endswith(".npy"))
    return total


def _folder_count(folder: Path) -> tuple[torch.Tensor, Any]:
    """``(shared [bytes in folder, full flag], lock)`` of ``folder``, scanned once per process."""
    key = str(folder.resolve())
    if key not in _FOLDER_COUNTS:
        count = torch.tensor([_folder_bytes(folder), 0], dtype=torch.int64).share_memory_()
        _FOLDER_COUNTS[key] = (count, multiprocessing.Lock())
    return _FOLDER_COUNTS[key]


def _digest(obj: object) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class FeatureCache:
    """Memory-mapped ``.npy`` log-mels of whole segments.

    Args:
        cache_dir: root folder (created if missing).
        frontend: the front end the features come from (part of the folder name).
        pad_mode: the dataset's pad mode (waveform padding changes short clips' features).
        dtype: storage dtype, ``"float32"`` or ``"float16"`` (half the disk, ~1e-2 rounding on log values).
        max_bytes: most bytes of features in the folder; beyond it clips are computed, not written.
            ``None``: no bound.
    """

    def __init__(
        self,
        cache_dir: str | Path,
        frontend: FrontendConfig,
        pad_mode: PadMode = "frames",
        dtype: str = "float32",
        max_bytes: int | None = None,
    ) -> None:
        if dtype not in ("float32", "float16"):
            raise ConfigError(f"cache dtype must be float32 or float16, got {dtype!r}")
        tag = _digest([_FORMAT_VERSION, frontend.to_dict(), pad_mode, dtype])[:12]
        self.folder = Path(cache_dir) / f"logmel-{tag}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dtype = dtype
        self.max_bytes = max_bytes
        self._count, self._lock = _folder_count(self.folder) if max_bytes is not None else (None, None)

    @property
    def nbytes(self) -> int | None:
        """Bytes of features in the folder (counted when there is a bound, else ``None``)."""
        return None if self._count is None else int(self._count[0])

    def disk_bytes(self) -> int:
        """Bytes of features in the folder now (the shared count when bounded, else a scan of the folder)."""
        return int(self._count[0]) if self._count is not None else _folder_bytes(self.folder)

    @property
    def full(self) -> bool:
        """A clip did not fit under ``max_bytes`` and was computed without being written."""
        return self._count is not None and bool(self._count[1])

    def _reserve(self, nbytes: int) -> bool:
        if self._count is None:
            return True
        with self._lock:
            if int(self._count[0]) + nbytes > self.max_bytes:  # type: ignore[operator]
                self._count[1] = 1
                return False
            self._count[0] += nbytes
            return True

    def path_for(self, rec: ClipRecord) -> Path:
        """Cache file of ``rec``; raises ``AudioDecodeError`` if its source file cannot be stat'ed."""
        try:
            st = os.stat(rec.path)
        except OSError as exc:
            raise AudioDecodeError(rec.path, f"cannot read ({exc.strerror or exc})") from exc
        key = _digest([os.path.abspath(rec.path), rec.key, rec.start, rec.end, st.st_size, st.st_mtime_ns])
        return self.folder / key[:2] / f"{key}.npy"

    def load(self, rec: ClipRecord, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached ``(T, F)`` features of ``rec``, computing and writing them on a miss."""
        path = self.path_for(rec)
        if path.exists():
            try:
                return np.load(path, mmap_mode="r")
            except (OSError, ValueError) as exc:  # a torn or foreign file: rebuild it
                log.warning("feature cache: rebuilding unreadable %s (%s)", path, exc)
        features = np.ascontiguousarray(compute(), dtype=self.dtype)
        if not self._reserve(features.nbytes + _NPY_HEADER):
            return features  # over the bound: computed, not cached
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, features)
        os.replace(tmp, path)  # atomic: concurrent workers never see a partial file
        return np.load(path, mmap_mode="r")

    def __repr__(self) -> str:
        bound = "" if self.max_bytes is None else f", max_bytes={self.max_bytes}"
        return f"FeatureCache({str(self.folder)!r}, dtype={self.dtype}{bound})"


def estimate_feature_bytes(
    records: Sequence[ClipRecord], frontend: FrontendConfig, dtype: str = "float32", sample: int = _SAMPLE_CLIPS
) -> int:
    """Estimated size of the cached features of ``records``: the mean over ``sample`` clips spread over the
    list (their windows, or their files' lengths from the headers) of ``frames x n_mels`` values, times the
    number of clips. Unreadable clips are left out of the mean."""
    if not len(records):
        return 0
    step = max(1, len(records) // sample)
    sizes = []
    for i in range(0, len(records), step)[:sample]:
        rec = records[i]
        try:
            end = rec.end if rec.end is not None else clip_duration(rec)
        except AudioDecodeError:
            continue
        frames = frontend.frames_for(int((end - (rec.start or 0.0)) * frontend.sample_rate))
        sizes.append(frames * frontend.n_mels * np.dtype(dtype).itemsize + _NPY_HEADER)
    return int(np.mean(sizes) * len(records)) if sizes else 0
