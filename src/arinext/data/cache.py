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
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..audio.frontend import FrontendConfig
from ..audio.io import AudioDecodeError
from ..utils.errors import ConfigError
from .records import ClipRecord, PadMode

__all__ = ["FeatureCache"]

log = logging.getLogger(__name__)

_FORMAT_VERSION = 1


def _digest(obj: object) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class FeatureCache:
    """Memory-mapped ``.npy`` log-mels of whole segments.

    Args:
        cache_dir: root folder (created if missing).
        frontend: the front end the features come from (part of the folder name).
        pad_mode: the dataset's pad mode (waveform padding changes short clips' features).
        dtype: storage dtype, ``"float32"`` or ``"float16"`` (half the disk, ~1e-2 rounding on log values).
    """

    def __init__(
        self, cache_dir: str | Path, frontend: FrontendConfig, pad_mode: PadMode = "frames", dtype: str = "float32"
    ) -> None:
        if dtype not in ("float32", "float16"):
            raise ConfigError(f"cache dtype must be float32 or float16, got {dtype!r}")
        tag = _digest([_FORMAT_VERSION, frontend.to_dict(), pad_mode, dtype])[:12]
        self.folder = Path(cache_dir) / f"logmel-{tag}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dtype = dtype

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
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, features)
        os.replace(tmp, path)  # atomic: concurrent workers never see a partial file
        return np.load(path, mmap_mode="r")

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.folder)!r}, dtype={self.dtype})"
