"""What the trainer checks about the clips before and during a run: bad clips and the size of the caches.

- Before the first epoch (and before an evaluation), :func:`check_sources` looks for the audio of every clip
  without decoding anything (a ``stat`` per file, a key lookup per HDF5 dataset) and stops the run when more
  than ``data.max_bad_fraction`` of a subset is missing (or when any is, with ``data.on_bad_clip=error``);
  below that it warns once with the count and examples.
- After every epoch, :func:`check_bad_fraction` stops the run when the clips that could not be read (missing
  or undecodable) exceed the same fraction.
- :func:`plan_feature_cache` estimates the size of the feature cache (``data.cache_dir``) before it is
  filled and says how much of it fits ``data.feature_cache_gb`` and the free disk.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from ..data import AudioClipDataset
from ..data.cache import estimate_feature_bytes
from ..data.readers import missing_sources
from ..utils.errors import DataError
from .config import DataConfig

__all__ = ["check_bad_fraction", "check_sources", "plan_feature_cache"]

_log = logging.getLogger(__name__)

_SHOWN = 3  # examples in a message


def _size(nbytes: float) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MiB"


def _share(bad: int, total: int) -> str:
    return f"{bad} of {total} ({100 * bad / max(total, 1):.1f}%)"


def check_sources(bundle: Any, data: DataConfig) -> int:
    """The number of clips of ``bundle`` (a :class:`~arinext.train.data.DataBundle`) whose audio is not there.

    Raises:
        DataError: any is missing with ``data.on_bad_clip=error``, or more than ``data.max_bad_fraction``.
    """
    if not isinstance(bundle.dataset, AudioClipDataset):
        return 0
    missing = missing_sources(bundle.dataset.records)
    if not missing:
        return 0
    total = len(bundle.dataset)
    what = f"{_share(len(missing), total)} {bundle.subset} clips have no audio (missing file or HDF5 dataset)"
    examples = "; ".join(msg for _, msg in missing[:_SHOWN]) + (" ..." if len(missing) > _SHOWN else "")
    if data.on_bad_clip == "error":
        raise DataError(
            f"{what}, e.g. {examples}; data.on_bad_clip=error stops at them (--set data.on_bad_clip=skip skips and "
            "counts them)"
        )
    if len(missing) > data.max_bad_fraction * total:
        raise DataError(
            f"{what}, above data.max_bad_fraction={data.max_bad_fraction:g}; e.g. {examples}. Check data.root and "
            "the audio (or raise data.max_bad_fraction)"
        )
    _log.warning("%s: they are skipped and counted as bad clips every epoch; e.g. %s", what, examples)
    return len(missing)


def check_bad_fraction(bad: float, total: int, subset: str, epoch: int, data: DataConfig) -> None:
    """Stop the run when ``bad`` of ``total`` clips of ``subset`` could not be read in ``epoch`` (1-based)
    is above ``data.max_bad_fraction`` (the epoch's warning lists examples)."""
    if bad > data.max_bad_fraction * total:
        raise DataError(
            f"epoch {epoch}: {_share(int(bad), total)} {subset} clips could not be read, above "
            f"data.max_bad_fraction={data.max_bad_fraction:g} (the warning above lists some)"
        )


def plan_feature_cache(data: DataConfig, bundles: list[Any]) -> int | None:
    """Log the estimated size of the feature cache of ``bundles`` against ``data.feature_cache_gb`` and the
    free disk (a warning when it does not fit) and return the estimate in bytes (``None``: no cache)."""
    datasets = [b.dataset for b in bundles if isinstance(b.dataset, AudioClipDataset) and b.dataset.cache is not None]
    if not datasets:
        return None
    cache = datasets[0].cache
    estimate = sum(estimate_feature_bytes(ds.records, ds.frontend, cache.dtype) for ds in datasets)
    clips = sum(len(ds) for ds in datasets)
    bound = int(data.feature_cache_gb * 2**30)
    there = cache.disk_bytes()
    free = shutil.disk_usage(Path(cache.folder)).free
    reach = max(there, min(bound, there + free))  # what the folder can hold by the end (files there are kept)
    fits = estimate <= reach
    line = (
        f"feature cache {cache.folder}: about {_size(estimate)} for {clips} clips ({_size(there)} there now), "
        f"data.feature_cache_gb={data.feature_cache_gb:g}, {_size(free)} free on its disk"
    )
    if fits:
        _log.info("%s", line)
    else:
        share = min(1.0, reach / max(estimate, 1))
        _log.warning("%s: about %.0f%% of the clips will be cached, the rest computed every epoch", line, 100 * share)
    return estimate
