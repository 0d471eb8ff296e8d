"""From a :class:`~arinext.train.config.DataConfig` to datasets and loaders.

Datasets stored as files go through ``arinext.data`` (``get_manifest`` -> ``AudioClipDataset`` ->
``make_loader``); a generated dataset (``dataset: synthetic``, :mod:`arinext.data.synthetic`) is made by the
generator it is registered with (:func:`arinext.data.register_dataset`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from ..audio.frontend import FrontendConfig, get_preset
from ..data import Manifest, dataset_info
from ..data.holdout import HOLDOUT_SUBSETS, HoldoutSplit, holdout_from_dict, split_holdout
from ..utils.errors import ConfigError, DataError
from .config import DataConfig, default_num_workers
from .distributed import DistInfo

__all__ = [
    "DataBundle",
    "ResumableSampler",
    "build_dataset",
    "build_loader",
    "check_trainable",
    "data_fingerprint",
    "describe_labels",
    "holdout_split",
]

_log = logging.getLogger(__name__)


@dataclass
class DataBundle:
    """One subset's dataset with what the model and the task need to know about it."""

    dataset: Dataset
    labels: Any
    num_classes: int | dict[str, int]
    multi_label: bool
    frontend: FrontendConfig
    views: int
    manifest: Manifest | None = None  # None for generated data
    subset: str = ""


def check_trainable(train: DataBundle, val: DataBundle) -> None:
    """Refuse data that cannot train a classifier: an unlabelled subset (a challenge test set), fewer than
    two classes with training clips, or an empty validation subset. Classes of the label list without
    training clips (EPIC-KITCHENS-100's train split lacks some of its 97 verbs and 300 nouns) do not stop
    the run: one warning names them; the model keeps the whole label list, and evaluation scores per
    class only the classes that have clips.

    Raises:
        DataError: naming the subset and the classes.
    """
    if train.manifest is None:
        return
    where = train.manifest.source
    for bundle in (train, val):
        if bundle.manifest is not None and not bundle.manifest.labelled:
            raise DataError(
                f"{bundle.manifest.source}: the {bundle.subset} subset is unlabelled (a challenge test set): it "
                "cannot train or validate a model; arinext eval writes a submission file for it"
            )
    if len(val.dataset) == 0:  # type: ignore[arg-type]
        raise DataError(f"{where}: the {val.subset} subset has no clips; nothing to select the best epoch on")
    labels, present = train.labels, train.manifest.present_labels()
    heads = labels if isinstance(labels, dict) else {"": labels}
    found = present if isinstance(present, dict) else {"": present}
    absent = []
    for head, names in heads.items():
        tag = f" (head {head!r})" if head else ""
        if len(found[head]) < 2:
            shown = ", ".join(found[head]) or "none"
            raise DataError(
                f"{where}{tag}: only {len(found[head])} class has {train.subset} clips ({shown}); a classifier needs "
                "at least two"
            )
        missing = [n for n in names if n not in set(found[head])]
        if missing:
            absent.append(f"{head + ': ' if head else ''}{len(missing)} of {len(names)} ({', '.join(missing)})")
    if absent:
        _log.warning(
            "%s: classes without %s clips: %s. Training with the whole class list anyway: per-class metrics and "
            "their means cover the classes that have clips in the subset evaluated",
            where, train.subset, "; ".join(absent),
        )  # fmt: skip


def data_fingerprint(bundle: DataBundle) -> str:
    """``"N clips (hash)"`` of a subset's records (files, segments, targets): the same on every process, of
    every machine, that built the same data."""
    if bundle.manifest is None:
        return f"{len(bundle.dataset)} generated clips"  # type: ignore[arg-type]
    digest = hashlib.sha1()
    for r in bundle.manifest.records:
        digest.update(f"{r.path}\0{r.key}\0{r.start}\0{r.end}\0{r.target}\n".encode())
    return f"{len(bundle.manifest.records)} clips ({digest.hexdigest()[:12]})"


def _frontend(data: DataConfig) -> FrontendConfig:
    name = data.preset if data.preset is not None else dataset_info(data.dataset).preset
    return get_preset(name, **data.frontend)


def describe_labels(labels: Any) -> int | dict[str, int]:
    """Class count(s) of a label list or of a dict of label lists."""
    return {k: len(v) for k, v in labels.items()} if isinstance(labels, dict) else len(labels)


_HOLDOUT_SPLITS: dict[str, HoldoutSplit] = {}


def holdout_split(data: DataConfig) -> HoldoutSplit:
    """The held-out split of ``data.holdout`` (:func:`arinext.data.holdout.split_holdout`), computed once
    per process for a given dataset and holdout."""
    from ..data import get_manifest

    key = json.dumps([data.dataset, data.root, data.dataset_args, data.holdout], sort_keys=True, default=str)
    if key not in _HOLDOUT_SPLITS:
        manifests = {s: get_manifest(data.dataset, data.root, s, **data.dataset_args) for s in HOLDOUT_SUBSETS[:3]}
        split = split_holdout(manifests, holdout_from_dict(data.holdout))
        _log.info("holding out %s: %s", split.holdout.describe(), split.summary())
        _HOLDOUT_SPLITS.clear()  # one dataset at a time
        _HOLDOUT_SPLITS[key] = split
    return _HOLDOUT_SPLITS[key]


def _manifest(data: DataConfig, subset: str) -> Manifest:
    from ..data import get_manifest

    if data.holdout:
        return holdout_split(data).subsets[subset]
    if subset == "heldout":
        raise ConfigError("the 'heldout' subset needs data.holdout (a column and the value(s) to hold out)")
    return get_manifest(data.dataset, data.root, subset, **data.dataset_args)


def build_dataset(data: DataConfig, subset: str, training: bool, seed: int = 0, labels: Any = None) -> DataBundle:
    """Dataset of ``subset`` (``"training" | "validation" | "testing"``, and ``"heldout"`` with
    ``data.holdout``) as configured by ``data``.

    Training datasets return one random crop (with the waveform augmentations of ``data.augment``,
    background noise and SpecAugment as configured); evaluation datasets return ``views`` uniform crops
    (``data.test_views``, else the preset's). With ``data.features: device`` the items are waveform crops
    whose log-mels (and SpecAugment) :func:`build_loader` computes on the training device. With
    ``data.holdout`` the subsets are those of :func:`holdout_split`: the held-out source is left out of
    training, validation and testing, and is the ``"heldout"`` subset. With ``labels`` (a model's class
    names) the targets index into them, matched by name (:meth:`arinext.data.Manifest.relabel`).
    """
    frontend = _frontend(data)
    views = 1 if training else (data.test_views or frontend.test_views)
    kwargs = dict(data.dataset_args)
    generator = dataset_info(data.dataset).generator
    if generator is not None:  # generated clips: no manifest, no files
        ds = generator(subset=subset, frontend=frontend, views=views, seed=seed, **kwargs)
        if labels is not None and list(labels) != list(ds.labels):
            raise DataError(f"{data.dataset} data has classes {ds.labels}, the model {list(labels)}")
        return DataBundle(ds, ds.labels, describe_labels(ds.labels), False, frontend, views, subset=subset)

    from ..data import AudioClipDataset

    if not data.root:
        raise ConfigError(f"data.root is not set: pass --set data.root=/path/to/{data.dataset}")
    manifest = _manifest(data, subset)
    if not manifest.records:
        raise DataError(f"{manifest.source or data.root}: the {subset} subset of {data.dataset!r} has no clips")
    if labels is not None:
        manifest = manifest.relabel(labels)
    spec_augment, noise = None, None
    if training and data.spec_augment:
        from ..audio.augment import SpecAugment

        spec_augment = SpecAugment(seed=seed, **data.spec_augment_args)
    if training and data.background_noise:
        from ..audio.augment import BackgroundNoise

        folder = Path(data.root) / "_background_noise_" if data.background_noise == "auto" else Path(data.background_noise)
        low, high = data.noise_snr_db
        noise = BackgroundNoise(folder, frontend.sample_rate, snr_db=(low, high), p=data.noise_p, seed=seed)
    transform = None
    if training:
        from ..audio.waveaug import build_waveform_augment

        transform = build_waveform_augment(data.augment, frontend.sample_rate, noise)
    ds = AudioClipDataset(
        manifest,
        frontend,
        training=training,
        views=views,
        on_bad_clip=data.on_bad_clip,
        spec_augment=spec_augment,
        features="device" if data.features == "device" else True,
        waveform_transform=transform,
        cache_dir=data.cache_dir,
        cache_max_bytes=int(data.feature_cache_gb * 2**30),
        seed=seed,
    )
    n = manifest.num_classes
    classes = f"{n} class{'es' if n != 1 else ''}" if isinstance(n, int) else ", ".join(f"{h}: {k}" for h, k in n.items())
    _log.info("%s/%s: %d clip%s, %s", data.dataset, subset, len(ds), "s" if len(ds) != 1 else "", classes)
    return DataBundle(ds, manifest.labels, manifest.num_classes, manifest.multi_label, frontend, views, manifest, subset)


class ResumableSampler(DistributedSampler):
    """A :class:`DistributedSampler` whose next pass can start part-way: :meth:`skip_next` leaves out the first
    indices of this process's share of the epoch (those of the batches trained on before a checkpoint)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._skip = 0

    def skip_next(self, count: int) -> None:
        """Leave out the first ``count`` indices of the next pass only."""
        self._skip = max(0, int(count))

    def __iter__(self) -> Iterator[int]:
        skip, self._skip = self._skip, 0
        return islice(super().__iter__(), skip, None)

    def __len__(self) -> int:
        return max(0, self.num_samples - self._skip)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    training: bool,
    num_workers: int | None,
    dist_info: DistInfo,
    seed: int = 0,
) -> tuple[Iterable[dict[str, Any]], DistributedSampler]:
    """Loader over this process's share of ``dataset``; ``batch_size`` is the total over processes.

    The order comes from a :class:`DistributedSampler` (also with one process) seeded with ``seed``;
    call ``sampler.set_epoch(epoch)`` each epoch, which makes the order a function of the epoch and
    lets a resumed run see exactly the batches of an uninterrupted one. Workers persist across epochs
    (started once, each preparing 4 batches ahead); ``dataset.set_epoch`` reaches them. The processes
    share the dataset out by global rank (``dist_info.rank`` of ``dist_info.world_size``), so several
    machines split it like several processes of one machine.

    A dataset built with ``features="device"`` (``data.features: device``) comes back wrapped in a
    :class:`~arinext.data.batch_features.FeatureLoader`: its batches leave the loader as waveform crops
    and reach the caller as log-mels computed on ``dist_info.device``.
    """
    world = dist_info.world_size
    if num_workers is None:
        num_workers = default_num_workers()
    if batch_size % world:
        raise ConfigError(f"batch size {batch_size} is not divisible by the {world} processes")
    sampler = ResumableSampler(
        dataset, num_replicas=world, rank=dist_info.rank, shuffle=training, seed=seed, drop_last=False
    )
    per_rank = batch_size // world
    # drop a last partial training batch: a batch of one breaks BatchNorm
    drop_last = training and len(sampler) > per_rank
    from ..data import make_loader

    loader = make_loader(
        dataset, per_rank, shuffle=False, num_workers=num_workers, sampler=sampler, seed=seed, drop_last=drop_last,
        persistent_workers=True,
    )  # fmt: skip
    if getattr(dataset, "features", True) == "device":
        from ..data.batch_features import BatchFeatures, FeatureLoader

        features = BatchFeatures.for_dataset(dataset)  # type: ignore[arg-type]
        return FeatureLoader(loader, features, dist_info.device), sampler
    return loader, sampler
