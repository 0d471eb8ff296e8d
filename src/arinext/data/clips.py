"""The one clip dataset: manifest records in, ``{"inputs", "target", "index"}`` dicts out.

:class:`AudioClipDataset` decodes the crop(s) of each record (files through
:func:`arinext.audio.io.load_audio`, EPIC audio from HDF5), resamples to the front end's rate,
down-mixes to mono, cuts crops with :mod:`arinext.data.sampling` and computes the log-mel with
:class:`arinext.audio.frontend.LogMel` in the worker, one clip at a time. Bad clips either raise
:class:`~arinext.audio.io.AudioDecodeError` or come back as ``{"inputs": None, "error": ...}``
items, which :func:`collate_clips` moves to the batch's ``"bad"`` list. An error of the package raised in a
loader worker reaches the main process as itself through :class:`ClipLoader` (what :func:`make_loader`
returns), not as torch's wrapper holding the worker's traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from ..audio.frontend import FrontendConfig, LogMel
from ..audio.io import AudioDecodeError
from ..utils.errors import ArinextError, ConfigError
from ..utils.progress import progress_bar
from .cache import FeatureCache
from .readers import clip_duration, read_clip
from .waveforms import WaveformCache
from .records import ClipRecord, Manifest, PadMode
from .sampling import crop_length, fit_frames, frame_crop, pad_waveform_edge, plan_crops
from .storage import RecordTable

__all__ = ["AudioClipDataset", "BadClipReport", "ClipLoader", "clip_features", "collate_clips", "make_loader"]

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
        features: return log-mels; if false, the (padded) waveform crops ``(1, N)``; ``"device"``: the
            waveform crops that :class:`~arinext.data.batch_features.BatchFeatures` turns into the same
            log-mels (SpecAugment included) batched on the training device, so workers only decode and crop.
        cache_dir: folder for a :class:`~arinext.data.cache.FeatureCache` of segment log-mels.
        seed: base of the per-clip random streams (``seed``, epoch, index).
        waveform_transform: ``f(waveform (N,), generator) -> waveform``, training only, before the
            front end (e.g. :class:`arinext.audio.augment.BackgroundNoise`); not with ``cache_dir``.
        num_classes: classes for multi-hot targets when given plain records.
        pad_mode: ``"frames"`` or ``"waveform"``; default the manifest's (``"frames"`` for records).
        cache_dtype: ``"float32"`` or ``"float16"`` storage in the cache.
        cache_max_bytes: bound of the feature cache folder (:class:`~arinext.data.cache.FeatureCache`);
            beyond it clips are computed, not cached. ``None``: no bound.

    ``dataset[i]`` is ``{"inputs": (1, T, F) | (views, 1, T, F), "target": ..., "index": i}`` or,
    for a skipped bad clip, ``{"inputs": None, "error": "<source>: <problem>", "index": i}``.
    Targets: ``int``; a float multi-hot ``(C,)`` tensor for multi-label manifests; ``dict[str, int]``.
    With ``features="device"`` the inputs are zero-padded waveform crops ``(1, L)`` (``(views, 1, L)``) and
    the item also holds ``"frames"``, the log-mel frames each crop has before edge padding, and in training
    ``"spec_augment"``, the crop's SpecAugment draws (:meth:`arinext.audio.augment.SpecAugment.draw`) from
    the clip's random stream.

    Call :meth:`set_epoch` before each epoch so that training crops and augmentations change. The epoch
    lives in shared memory, so the call also reaches DataLoader workers that persist across epochs.
    :attr:`waveform_cache` (see :func:`arinext.data.waveforms.attach_waveform_cache`) keeps each file it
    has room for in shared memory the first time it is read, and serves it from there, with the same
    samples as decoding it. The records are kept in arrays (:class:`~arinext.data.storage.RecordTable`), so
    workers reading them do not copy them.
    """

    def __init__(
        self,
        manifest_or_records: Manifest | Sequence[ClipRecord],
        frontend: FrontendConfig,
        training: bool,
        views: int = 1,
        on_bad_clip: Literal["error", "skip"] | None = None,
        spec_augment: nn.Module | None = None,
        features: bool | Literal["device"] = True,
        cache_dir: str | Path | None = None,
        seed: int = 0,
        waveform_transform: WaveformTransform | None = None,
        num_classes: int | None = None,
        pad_mode: PadMode | None = None,
        cache_dtype: str = "float32",
        cache_max_bytes: int | None = None,
    ) -> None:
        manifest = manifest_or_records if isinstance(manifest_or_records, Manifest) else None
        # arrays, not a list of objects: workers read them without copying (arinext.data.storage)
        self.records = RecordTable.from_records(manifest.records if manifest else manifest_or_records)
        self.multi_label = bool(manifest and manifest.multi_label) or bool(
            len(self.records) and isinstance(self.records.target(0), tuple)
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
        if features not in (True, False, "device"):
            raise ConfigError(f"features must be True, False or 'device', got {features!r}")
        if cache_dir is not None and (waveform_transform is not None or features is not True):
            raise ConfigError(
                "cache_dir caches log-mels: it cannot be combined with waveform_transform or features=False/'device'"
            )
        if features == "device" and spec_augment is not None and not callable(getattr(spec_augment, "draw", None)):
            raise ConfigError("features='device' needs a spec_augment with draw() and apply(), like SpecAugment")
        self.spec_augment, self.features, self.waveform_transform = spec_augment, features, waveform_transform
        self.logmel = LogMel(frontend)
        self.cache = None
        if cache_dir is not None:
            self.cache = FeatureCache(cache_dir, frontend, self.pad_mode, cache_dtype, cache_max_bytes)
        self.waveform_cache: WaveformCache | None = None
        self.waveform_slots: np.ndarray | None = None  # cache slot of each distinct path (-1: not cached)
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
        extra: dict[str, torch.Tensor] = {}
        try:
            inputs = self._inputs(rec, self._generator(index), extra, self._slot(index))
        except ArinextError as exc:
            if isinstance(exc, AudioDecodeError) and self.on_bad_clip == "skip":
                log.debug("skipping bad clip %s", exc)
                return {"inputs": None, "error": str(exc), "index": index}
            if get_worker_info() is None:
                raise
            # a loader worker: torch would hand the error over as a RuntimeError holding the worker's traceback;
            # the item carries it to the main process instead, where ClipLoader raises it as it was
            return {"inputs": None, "error": str(exc), "index": index, "fatal": _carry(exc)}
        return {"inputs": inputs, "target": self._target(rec), "index": index, **extra}

    def _target(self, rec: ClipRecord) -> int | torch.Tensor | dict[str, int]:
        if isinstance(rec.target, tuple):
            hot = torch.zeros(int(self.num_classes or 0))
            hot[list(rec.target)] = 1.0
            return hot
        return rec.target

    def _slot(self, index: int) -> int:
        """The waveform-cache slot of record ``index``'s file, ``-1`` when it is not cached."""
        if self.waveform_cache is None or self.waveform_slots is None:
            return -1
        return int(self.waveform_slots[self.records.path_id(index)])

    def _segment(self, rec: ClipRecord, slot: int = -1) -> tuple[float, float, int]:
        """``(start, end)`` seconds of the record inside its file, and its length in samples."""
        duration = self.waveform_cache.duration(slot) if slot >= 0 else None  # type: ignore[union-attr]
        if duration is None:
            duration = clip_duration(rec)
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

    def _inputs(
        self, rec: ClipRecord, g: torch.Generator, extra: dict[str, torch.Tensor], slot: int = -1
    ) -> torch.Tensor:
        fe = self.frontend
        start, end, samples = self._segment(rec, slot)
        crops = plan_crops(samples, fe.clip_samples, self.training, self.views, g)
        if self.cache is not None:
            segment = self.cache.load(rec, lambda: self._segment_features(rec, start, end, slot))
            full = torch.from_numpy(np.array(segment))
            views = [frame_crop(full, off, fe.hop_length, fe.num_frames)[None].float() for off, _ in crops]
        else:
            lo, hi = min(o for o, _ in crops), max(o + n for o, n in crops)
            x = self._read(rec, start + lo / fe.sample_rate, start + hi / fe.sample_rate, slot)
            views = [self._crop_inputs(x[o - lo : o - lo + n], rec, g) for o, n in crops]
        if self.features == "device":
            out = self._device_inputs(views, rec, g, extra)
            return out if self.views > 1 else out[0]
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
        if self.features is not True:
            return wave[None]
        return fit_frames(clip_features(wave, self.logmel, rec.source), self.frontend.num_frames)

    def _device_inputs(
        self, views: list[torch.Tensor], rec: ClipRecord, g: torch.Generator, extra: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Zero-padded crops ``(views, 1, L)``; their frame counts and SpecAugment draws go to ``extra``."""
        fe = self.frontend
        out = torch.zeros(len(views), 1, crop_length(fe.clip_samples))
        frames = []
        for i, wave in enumerate(views):
            if not float(wave.abs().max()) <= self.logmel.safe_amplitude:  # rare: the exact check of the features
                clip_features(wave, self.logmel, rec.source)
            out[i, :, : wave.shape[-1]] = wave
            frames.append(min(fe.num_frames, fe.frames_for(wave.shape[-1])))
        extra["frames"] = torch.tensor(frames if self.views > 1 else frames[0])
        if self.training and self.spec_augment is not None and self.spec_augment.training:
            draw = self.spec_augment.draw  # type: ignore[operator]
            draws = torch.stack([draw(fe.num_frames, fe.n_mels, g) for _ in views])
            extra["spec_augment"] = draws if self.views > 1 else draws[0]
        return out

    def _read(self, rec: ClipRecord, start: float, end: float, slot: int = -1) -> np.ndarray:
        if slot >= 0 and self.waveform_cache is not None:
            return self.waveform_cache.read(slot, rec.path, start, end, self.frontend.sample_rate)
        return read_clip(rec, start, end, self.frontend.sample_rate)

    def _segment_features(self, rec: ClipRecord, start: float, end: float, slot: int = -1) -> np.ndarray:
        x = self._read(rec, start, end, slot)
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
        ds, rec, slot = self.dataset, self.dataset.records[index], self.dataset._slot(index)
        assert ds.cache is not None
        try:
            start, end, _ = ds._segment(rec, slot)
            ds.cache.load(rec, lambda: ds._segment_features(rec, start, end, slot))
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
        "bad": [it["error"] for it in items if it.get("inputs") is None and "fatal" not in it],
        "index": torch.tensor([it["index"] for it in good], dtype=torch.long),
    }
    fatal = [it["fatal"] for it in items if "fatal" in it]
    if fatal:
        batch["fatal"] = fatal[0]
    if not good:
        batch.update(inputs=None, target=None)
        return batch
    batch["inputs"] = _stack([it["inputs"] for it in good])
    for key in ("frames", "spec_augment"):  # features="device"
        if key in good[0]:
            batch[key] = torch.stack([it[key] for it in good])
    targets = [it["target"] for it in good]
    if isinstance(targets[0], dict):
        batch["target"] = {k: torch.tensor([t[k] for t in targets], dtype=torch.long) for k in targets[0]}
    elif isinstance(targets[0], torch.Tensor):
        batch["target"] = torch.stack(targets)
    else:
        batch["target"] = torch.tensor(targets, dtype=torch.long)
    return batch


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``torch.stack``; in a loader worker, straight into shared memory. The batch crosses to the main process
    through shared memory anyway, and a stack in private memory first would be copied there and freed: with
    8 MiB batches glibc keeps such freed blocks, and each worker's memory grew by ~300 MiB over its first
    minute (BENCHMARKS.md, "A VGG-Sound-sized dataset")."""
    if get_worker_info() is None:
        return torch.stack(tensors)
    first = tensors[0]
    storage = torch.UntypedStorage._new_shared(len(tensors) * first.numel() * first.element_size())  # noqa: SLF001
    out = torch.empty(0, dtype=first.dtype).set_(storage, 0, (len(tensors), *first.shape))
    return torch.stack(tensors, out=out)


def _carry(exc: ArinextError) -> tuple[type[ArinextError], str, tuple[Any, ...]]:
    """What the main process needs to raise ``exc`` again: its class, message and constructor arguments."""
    if isinstance(exc, AudioDecodeError):
        return type(exc), str(exc), (exc.source, exc.problem)
    return type(exc), str(exc), tuple(exc.args)


def _raise_carried(carried: tuple[type[ArinextError], str, tuple[Any, ...]]) -> None:
    cls, message, args = carried
    try:
        exc = cls(*args)
    except Exception:  # noqa: BLE001  (a class that cannot be built again: keep its message)
        exc = ArinextError(message)
    raise exc


class ClipLoader(DataLoader):
    """A ``DataLoader`` that raises an error of the package met in a worker (an unreadable clip with
    ``on_bad_clip="error"``, a missing extra) in the main process as the error itself, one line naming the
    clip, instead of torch's wrapper holding the worker's traceback."""

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        for batch in super().__iter__():
            if isinstance(batch, dict) and "fatal" in batch:
                _raise_carried(batch["fatal"])
            yield batch


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
    return ClipLoader(
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
