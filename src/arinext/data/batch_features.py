"""Log-mel features and SpecAugment of whole batches on the training device, from waveform crops.

With ``AudioClipDataset(features="device")`` the loader workers only decode, resample and crop (and run
the waveform augmentations, which are waveform operations); :class:`BatchFeatures` then computes the
log-mels of a batch on the batch's device with the batched :class:`arinext.audio.frontend.LogMel`, edge-pads
short crops' frames and applies the SpecAugment draws each worker took from the clip's random stream. The
result is the worker path's features: the same crop, the same frames (to float rounding of a batched
STFT and matrix product) and the same masks. :class:`FeatureLoader` wraps a loader so that every batch
comes out with its features on the device, for training, Precise-BN and evaluation alike.

Example:
    >>> ds = AudioClipDataset(manifest, get_preset("vggsound"), training=True, spec_augment=SpecAugment(),
    ...                       features="device")  # doctest: +SKIP
    >>> loader = FeatureLoader(make_loader(ds, 32, True, 4), BatchFeatures.for_dataset(ds), "cuda")  # doctest: +SKIP
    >>> next(iter(loader))["inputs"].shape  # doctest: +SKIP
    torch.Size([32, 1, 512, 128])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from ..audio.augment import SpecAugment
from ..audio.frontend import FrontendConfig, LogMel
from ..utils.errors import ConfigError, InputError
from .clips import AudioClipDataset

__all__ = ["BatchFeatures", "FeatureLoader"]


class BatchFeatures(nn.Module):
    """Turn a batch of ``features="device"`` items into the worker path's log-mel inputs, on its device.

    Args:
        frontend: the dataset's front end.
        spec_augment: the dataset's SpecAugment (whose :meth:`~arinext.audio.augment.SpecAugment.draw`
            made the batch's ``"spec_augment"`` rows); ``None`` if the dataset has none.

    ``forward(batch)`` takes a batch of :func:`arinext.data.collate_clips` with ``"inputs"`` waveforms
    ``(B, 1, L)`` or ``(B, V, 1, L)`` and ``"frames"`` ``(B,)`` or ``(B, V)`` (and optionally
    ``"spec_augment"``), and returns it with ``"inputs"`` ``(B, 1, T, F)`` or ``(B, V, 1, T, F)`` computed
    on the waveforms' device. Move the module to that device first (``.to(device)``).
    """

    def __init__(self, frontend: FrontendConfig, spec_augment: SpecAugment | None = None) -> None:
        super().__init__()
        self.logmel = LogMel(frontend)
        self.spec_augment = spec_augment

    @classmethod
    def for_dataset(cls, dataset: AudioClipDataset) -> BatchFeatures:
        """The features of ``dataset``'s items (its front end and SpecAugment)."""
        if dataset.features != "device":
            raise ConfigError("BatchFeatures needs an AudioClipDataset built with features='device'")
        return cls(dataset.frontend, dataset.spec_augment)  # type: ignore[arg-type]

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        wave = batch["inputs"]
        if wave is None:  # every clip of the batch was bad
            return batch
        if "frames" not in batch:
            raise InputError("the batch has no 'frames': its dataset was not built with features='device'")
        lead = wave.shape[:-2]  # (B,) or (B, V)
        flat = wave.reshape(-1, wave.shape[-1])
        if flat.device.type == "cpu":  # a whole batch's STFT falls out of the CPU caches: 2x slower than clip by clip
            spec = torch.cat([self.logmel(x[None]) for x in flat])[:, 0]
        else:
            spec = self.logmel(flat)[:, 0]  # (N, T', F)
        spec = self._fit_frames(spec, batch["frames"].reshape(-1))
        draws = batch.get("spec_augment")
        if draws is not None:
            if self.spec_augment is None:
                raise InputError("the batch carries SpecAugment draws but no SpecAugment was given")
            spec = self.spec_augment.apply(spec, draws.reshape(spec.shape[0], -1))
        return {**batch, "inputs": spec.reshape(*lead, 1, *spec.shape[-2:])}

    def _fit_frames(self, spec: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """The first ``num_frames`` frames of each map, frames from ``frames[i]`` on replaced by the last real one
        (:func:`arinext.data.sampling.fit_frames` of the crop featurized alone)."""
        t = self.logmel.config.num_frames
        frames = frames.cpu()
        if spec.shape[1] >= t and bool((frames >= t).all()):
            return spec[:, :t]
        index = torch.minimum(torch.arange(t)[None], frames[:, None] - 1).to(spec.device)  # (N, T)
        return spec.gather(1, index[..., None].expand(-1, -1, spec.shape[-1]))


class FeatureLoader:
    """Iterate ``loader`` with each batch's inputs moved to ``device`` and featurized there by ``features``.

    Has the loader's ``len``, ``dataset`` and ``sampler``, so it can stand in for the loader in the
    training loop, Precise-BN and evaluation.
    """

    def __init__(self, loader: Iterable[dict[str, Any]], features: BatchFeatures, device: torch.device | str) -> None:
        self.loader, self.device = loader, torch.device(device)
        self.features = features.to(self.device)

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    @property
    def dataset(self) -> Any:
        return getattr(self.loader, "dataset", None)

    @property
    def sampler(self) -> Any:
        return getattr(self.loader, "sampler", None)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.loader:
            if batch["inputs"] is not None:
                batch = {**batch, "inputs": batch["inputs"].to(self.device, non_blocking=True)}
            yield self.features(batch)
