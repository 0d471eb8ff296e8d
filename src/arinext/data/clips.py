"""The one clip dataset: manifest records in, ``{"inputs", "target", "index"}`` dicts out.

:class:`AudioClipDataset` decodes the crop(s) of each record (files through
:func:`arinext.audio.io.load_audio`, EPIC audio from HDF5), resamples to the front end's rate,
down-mixes to mono, cuts crops with :mod:`arinext.data.sampling` and computes the log-mel with
:class:`arinext.audio.frontend.LogMel` in the worker, one clip at a time. Bad clips either raise
:class:`~arinext.audio.io.AudioDecodeError` or come back as ``{"inputs": None, "error": ...}``
items, which :func:`collate_clips` moves to the batch's ``"bad"`` list.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from ..audio.frontend import FrontendConfig, LogMel
from ..audio.io import AudioDecodeError
from ..utils.errors import ConfigError
from ..utils.progress import progress_bar
from .cache import FeatureCache
from .readers import clip_duration, read_clip
from .waveforms import WaveformCache
from .records import ClipRecord, Manifest, PadMode
from .sampling import crop_length, fit_frames, frame_crop, pad_waveform_edge, plan_crops

__all__ = ["AudioClipDataset", "BadClipReport", "clip_features", "collate_clips", "make_loader"]

log = logging.getLogger(__name__)

WaveformTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def clip_features(waveform: torch.Tensor, logmel: LogMel, source: object) -> torch.Tensor:
    """Log-mel ``(1, T, F)`` of a 1-D waveform; ``AudioDecodeError`` naming ``source`` if not finite.

    Finite samples can still overflow the STFT in float32 (values near 3e38), so the check is on
    the features, not only on the samples.
    """
    spec = logmel(waveform.reshape(1, -1))[0]
    if not bool(torch.isfinite(spec).all()):
        raise AudioDecodeError(source, "log-mel features are not finite (sample values too large)")
    return spec


class AudioClipDataset(Dataset):
    """Clips of a manifest as model inputs.

    Args:
        manifest_or_records: a :class:`Manifest`, or a list of :class:`ClipRecord`.
        frontend: front-end parameters (rate, window, crop length, ``num_frames``).
        training: random crops, SpecAugment and waveform transforms if true; uniformly spaced
            test crops otherwise.
        views: crops per clip; ``frontend.test_views`` is the paper's test setting.
        on_bad_clip: ``"skip"`` returns an error item, ``"error"`` raises ``AudioDecodeError``;
            default ``"skip"`` in training, ``"error"`` otherwise.
        spec_augment: e.g. :class:`arinext.audio.augment.SpecAugment`, applied in training only.
        features: return log-mels; if false, the (padded) waveform crops ``(1, N)``.
        cache_dir: folder for a :class:`~arinext.data.cache.FeatureCache` of segment log-mels.
        seed: base of the per-clip random streams (``seed``, epoch, index).
        waveform_transform: ``f(waveform (N,), generator) -> waveform``, training only, before the
            front end (e.g. :class:`arinext.audio.augment.BackgroundNoise`); not with ``cache_dir``.
        num_classes: classes for multi-hot targets when given plain records.
        pad_mode: ``"frames"`` or ``"waveform"``; default the manifest's (``"frames"`` for records).
        cache_dtype: ``"float32"`` or ``"float16"`` storage in the cache.

    ``dataset[i]`` is ``{"inputs": (1, T, F) | (views, 1, T, F), "target": ..., "index": i}`` or,
    for a skipped bad clip, ``{"inputs": None, "error": "<source>: <problem>", "index": i}``.
    Targets: ``int``; a float multi-hot ``(C,)`` tensor for multi-label manifests; ``dict[str, int]``.

    Call :meth:`set_epoch` before each epoch so that training crops and augmentations change. The epoch
    lives in shared memory, so the call also reaches DataLoader workers that persist across epochs.
    :attr:`waveform_cache` (see :func:`arinext.data.waveforms.attach_waveform_cache`) serves decoded
    files from memory, with the same samples as decoding them.
    """

    def __init__(
        self,
        manifest_or_records: Manifest | Sequence[ClipRecord],
        frontend: FrontendConfig,
        training: bool,
        views: int = 1,
        on_bad_clip: Literal["error", "skip"] | None = None,
        spec_augment: nn.Module | None = None,
        features: bool = True,
        cache_dir: str | Path | None = None,
        seed: int = 0,
        waveform_transform: WaveformTransform | None = None,
        num_classes: int | None = None,
        pad_mode: PadMode | None = None,
        cache_dtype: str = "float32",
    ) -> None:
        manifest = manifest_or_records if isinstance(manifest_or_records, Manifest) else None
        self.records: list[ClipRecord] = list(manifest.records if manifest else manifest_or_records)
        self.multi_label = bool(manifest and manifest.multi_label) or bool(
            self.records and isinstance(self.records[0].target, tuple)
        )
        if self.multi_label and num_classes is None:
            if manifest is None or not isinstance(manifest.num_classes, int):
                raise ConfigError("multi-label records need num_classes (or pass the Manifest)")
            num_classes = manifest.num_classes
        self.num_classes = num_classes
        self.frontend, self.training, self.views, self.seed = frontend, training, views, seed
        if views < 1:
            raise ConfigError(f"views must be >= 1, got {views}")
        self.on_bad_clip = on_bad_clip or ("skip" if training else "error")
        if self.on_bad_clip not in ("error", "skip"):
            raise ConfigError(f"on_bad_clip must be 'error' or 'skip', got {on_bad_clip!r}")
        self.pad_mode: PadMode = pad_mode or (manifest.pad_mode if manifest else "frames")
        if self.pad_mode not in ("frames", "waveform"):
            raise ConfigError(f"pad_mode must be 'frames' or 'waveform', got {self.pad_mode!r}")
        if cache_dir is not None and (waveform_transform is not None or not features):
            raise ConfigError(
                "cache_dir caches log-mels: it cannot be combined with waveform_transform or features=False"
            )
        self.spec_augment, self.features, self.waveform_transform = spec_augment, features, waveform_transform
        self.logmel = LogMel(frontend)
        self.cache = FeatureCache(cache_dir, frontend, self.pad_mode, cache_dtype) if cache_dir is not None else None
        self.waveform_cache: WaveformCache | None = None
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return len(self.records)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    @epoch.setter
    def epoch(self, value: int) -> None:
        self._epoch.fill_(int(value))

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of an epoch (crops, SpecAugment, noise), in this process and in the
        loader's workers (running or not)."""
        self.epoch = epoch

    def _generator(self, index: int) -> torch.Generator:
        state = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1, np.uint64)[0]
        return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = self.records[index]
        try:
            inputs = self._inputs(rec, self._generator(index))
        except AudioDecodeError as exc:
            if self.on_bad_clip == "error":
                raise
            log.debug("skipping bad clip %s", exc)
            return {"inputs": None, "error": str(exc), "index": index}
        return {"inputs": inputs, "target": self._target(rec), "index": index}

    def _target(self, rec: ClipRecord) -> int | torch.Tensor | dict[str, int]:
        if isinstance(rec.target, tuple):
            hot = torch.zeros(int(self.num_classes or 0))
            hot[list(rec.target)] = 1.0
            return hot
        return rec.target

    def _segment(self, rec: ClipRecord) -> tuple[float, float, int]:
        """``(start, end)`` seconds of the record inside its file, and its length in samples."""
        cached = self.waveform_cache is not None and rec.key is None and rec.path in self.waveform_cache
        duration = self.waveform_cache.duration(rec.path) if cached else clip_duration(rec)  # type: ignore[union-attr]
        if duration <= 0:
            raise AudioDecodeError(rec.source, "zero-length audio")
        start = rec.start or 0.0
        end = duration if rec.end is None else min(rec.end, duration)
        samples = int(round((end - start) * self.frontend.sample_rate))
        if samples <= 0:
            raise AudioDecodeError(
                rec.source, f"segment [{start:g}, {end:g}] s holds no audio (the file lasts {duration:.3f} s)"
            )
        return start, end, samples

    def _inputs(self, rec: ClipRecord, g: torch.Generator) -> torch.Tensor:
        fe = self.frontend
        start, end, samples = self._segment(rec)
        crops = plan_crops(samples, fe.clip_samples, self.training, self.views, g)
        if self.cache is not None:
            full = torch.from_numpy(np.array(self.cache.load(rec, lambda: self._segment_features(rec, start, end))))
            views = [frame_crop(full, off, fe.hop_length, fe.num_frames)[None].float() for off, _ in crops]
        else:
            lo, hi = min(o for o, _ in crops), max(o + n for o, n in crops)
            x = self._read(rec, start + lo / fe.sample_rate, start + hi / fe.sample_rate)
            views = [self._crop_inputs(x[o - lo : o - lo + n], rec, g) for o, n in crops]
        out = torch.stack(views)  # (views, 1, T, F) or (views, 1, N)
        if self.features and self.training and self.spec_augment is not None:
            out = self.spec_augment(out, generator=g)
        return out if self.views > 1 else out[0]

    def _crop_inputs(self, x: np.ndarray, rec: ClipRecord, g: torch.Generator) -> torch.Tensor:
        if x.size == 0:
            raise AudioDecodeError(rec.source, "crop lies outside the decoded audio")
        target_len = crop_length(self.frontend.clip_samples)
        if self.pad_mode == "waveform" or not self.features:
            x = pad_waveform_edge(x, target_len)
        wave = torch.from_numpy(np.ascontiguousarray(x))
        if self.training and self.waveform_transform is not None:
            wave = self.waveform_transform(wave, g)
        if not self.features:
            return wave[None]
        return fit_frames(clip_features(wave, self.logmel, rec.source), self.frontend.num_frames)

    def _read(self, rec: ClipRecord, start: float, end: float) -> np.ndarray:
        cache = self.waveform_cache
        if cache is not None and rec.key is None and rec.path in cache:
            return cache.read(rec.path, start, end, self.frontend.sample_rate)
        return read_clip(rec, start, end, self.frontend.sample_rate)

    def _segment_features(self, rec: ClipRecord, start: float, end: float) -> np.ndarray:
        x = self._read(rec, start, end)
        if self.pad_mode == "waveform":
            x = pad_waveform_edge(x, crop_length(self.frontend.clip_samples))
        return clip_features(torch.from_numpy(np.ascontiguousarray(x)), self.logmel, rec.source)[0].numpy()

    def fill_cache(self, num_workers: int = 0, progress: bool | None = None) -> BadClipReport:
        """Featurize every clip into the cache once (with a progress bar); returns the bad clips."""
        if self.cache is None:
            raise ConfigError("fill_cache needs a dataset built with cache_dir")
        report = BadClipReport()
        loader = DataLoader(
            _CacheFiller(self), batch_size=16, num_workers=num_workers, collate_fn=list, worker_init_fn=_worker_init
        )
        for errors in progress_bar(loader, enabled=progress, desc="feature cache", unit="batch"):
            report.update([e for e in errors if e])
        return report


class _CacheFiller(Dataset):
    """Index -> error string or ``None``; writing the cache entry is the side effect."""

    def __init__(self, dataset: AudioClipDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> str | None:
        ds, rec = self.dataset, self.dataset.records[index]
        assert ds.cache is not None
        try:
            start, end, _ = ds._segment(rec)
            ds.cache.load(rec, lambda: ds._segment_features(rec, start, end))
        except AudioDecodeError as exc:
            return str(exc)
        return None


def collate_clips(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch dataset items; skipped (bad) items go to ``"bad"``.

    Returns:
        ``{"inputs": (B, ...) or None if every item was bad, "target": LongTensor (B,) | float
        (B, C) | dict of LongTensor, "index": LongTensor (B,), "bad": list of error strings}``.
    """
    good = [it for it in items if it.get("inputs") is not None]
    batch: dict[str, Any] = {
        "bad": [it["error"] for it in items if it.get("inputs") is None],
        "index": torch.tensor([it["index"] for it in good], dtype=torch.long),
    }
    if not good:
        batch.update(inputs=None, target=None)
        return batch
    batch["inputs"] = torch.stack([it["inputs"] for it in good])
    targets = [it["target"] for it in good]
    if isinstance(targets[0], dict):
        batch["target"] = {k: torch.tensor([t[k] for t in targets], dtype=torch.long) for k in targets[0]}
    elif isinstance(targets[0], torch.Tensor):
        batch["target"] = torch.stack(targets)
    else:
        batch["target"] = torch.tensor(targets, dtype=torch.long)
    return batch


def _worker_init(worker_id: int) -> None:
    # Each worker featurizes one clip at a time: one thread each keeps workers from fighting over cores.
    torch.set_num_threads(1)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int,
    sampler: Sampler | None = None,
    seed: int = 0,
    drop_last: bool = False,
    persistent_workers: bool = False,
) -> DataLoader:
    """A ``DataLoader`` with :func:`collate_clips`, seeded shuffling and single-threaded workers.

    Each worker prepares up to 4 batches ahead. With ``persistent_workers`` the workers start once and
    serve every epoch (no start-up gap at each epoch); :meth:`AudioClipDataset.set_epoch` still reaches them.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_clips,
        drop_last=drop_last,
        generator=torch.Generator().manual_seed(seed),
        worker_init_fn=_worker_init,
        prefetch_factor=4 if num_workers > 0 else None,
        persistent_workers=persistent_workers and num_workers > 0,
    )


class BadClipReport:
    """Accumulates the ``"bad"`` lists of batches and formats the end-of-epoch summary.

    Args:
        max_shown: how many errors :meth:`summary` lists before ``(+N more)``.

    Example:
        >>> report = BadClipReport()
        >>> report.update({"bad": ["a.wav: empty file (0 bytes)"]})
        >>> report.summary()
        '1 bad clip skipped: a.wav: empty file (0 bytes)'
    """

    def __init__(self, max_shown: int = 5) -> None:
        self.max_shown = max_shown
        self.errors: list[str] = []

    def update(self, batch_or_errors: dict[str, Any] | Iterable[str]) -> None:
        """Add a batch's ``"bad"`` list (or a list of error strings)."""
        errors = batch_or_errors.get("bad", []) if isinstance(batch_or_errors, dict) else batch_or_errors
        self.errors.extend(errors)

    @property
    def count(self) -> int:
        return len(self.errors)

    def summary(self) -> str:
        """``"N bad clips skipped: first; second; ... (+k more)"``, or ``""`` when there were none."""
        if not self.errors:
            return ""
        shown = "; ".join(self.errors[: self.max_shown])
        more = f" (+{self.count - self.max_shown} more)" if self.count > self.max_shown else ""
        return f"{self.count} bad clip{'s' if self.count != 1 else ''} skipped: {shown}{more}"

    def reset(self) -> None:
        self.errors.clear()
