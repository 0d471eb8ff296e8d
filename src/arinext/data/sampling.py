"""Crop planning and padding: the one place where clips become fixed-length inputs.

Follows the original loaders (``get_start_end_idx`` / ``_extract_sound_feature`` in
``slowfast/datasets/audio_loader_*.py``):

- a segment of ``n`` samples and a crop of ``c = round(sr * clip_seconds)`` samples leave
  ``delta = max(n - c, 0)`` start positions;
- training takes one start uniformly in ``[0, delta]``; testing takes view ``i`` of ``V`` at
  ``linspace(0, delta, V)[i]`` (start truncated to an int, as the original does);
- the crop reads ``c - 1`` samples (the original's end index is inclusive of an off-by-one), which
  gives exactly ``num_frames`` centred frames, e.g. 5.119 s at 16 kHz / 10 ms hop: 81903 samples ->
  512 frames;
- a segment shorter than ``c`` is used whole: ``pad_mode="frames"`` edge-pads its log-mel frames to
  ``num_frames`` (all loaders but UrbanSound8K), ``pad_mode="waveform"`` edge-pads the samples to
  ``c - 1`` first (UrbanSound8K's ``librosa.util.fix_length(..., mode="edge")``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..utils.errors import ConfigError, DataError, InputError

__all__ = ["Crop", "crop_length", "fit_frames", "frame_crop", "pad_waveform_edge", "plan_crops"]

#: ``(offset, length)`` in samples inside a segment.
Crop = tuple[int, int]


def crop_length(clip_samples: int) -> int:
    """Samples actually read for one crop: the original slices ``[start, start + clip - 1)``."""
    return max(1, clip_samples - 1)


def plan_crops(
    num_samples: int,
    clip_samples: int,
    training: bool,
    views: int = 1,
    generator: torch.Generator | None = None,
) -> list[Crop]:
    """Where to cut ``views`` crops from a segment of ``num_samples`` samples.

    Args:
        num_samples: segment length (samples at the front end's rate).
        clip_samples: crop length ``round(sample_rate * clip_seconds)``.
        training: random crops (uniform start) if true, else ``views`` uniformly spaced crops.
        views: number of crops.
        generator: source of randomness for training crops.

    Returns:
        ``views`` pairs ``(offset, length)``; a segment shorter than the crop gives
        ``(0, num_samples)`` for every view (padding happens later, see :func:`fit_frames`).
    """
    if num_samples <= 0:
        raise DataError(f"segment has {num_samples} samples")
    if views < 1:
        raise ConfigError(f"views must be >= 1, got {views}")
    if num_samples < clip_samples:
        return [(0, num_samples)] * views
    delta = num_samples - clip_samples
    length = crop_length(clip_samples)
    if training:
        starts = (torch.rand(views, generator=generator, dtype=torch.float64) * delta).tolist()
    else:
        starts = np.linspace(0, delta, num=views).tolist()
    return [(int(s), length) for s in starts]


def fit_frames(spec: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Edge-pad (repeat the last frame) or trim the time axis (dim -2) to ``num_frames``."""
    t = spec.shape[-2]
    if t == num_frames:
        return spec
    if t > num_frames:
        return spec[..., :num_frames, :]
    if t == 0:
        raise InputError("cannot pad a spectrogram with no frames")
    last = spec[..., -1:, :].expand(*spec.shape[:-2], num_frames - t, spec.shape[-1])
    return torch.cat([spec, last], dim=-2)


def pad_waveform_edge(x: np.ndarray, length: int) -> np.ndarray:
    """Edge-pad (repeat the last sample) a 1-D waveform at the end up to ``length`` samples."""
    if x.shape[-1] >= length:
        return x
    return np.pad(x, (0, length - x.shape[-1]), mode="edge")


def frame_crop(spec: torch.Tensor, offset: int, hop_length: int, num_frames: int) -> torch.Tensor:
    """Cut a crop starting ``offset`` samples into a segment from the segment's ``(..., T, F)`` log-mel.

    Used with cached features: frame ``k`` of a crop starting at sample ``offset`` is centred on
    sample ``offset + k * hop``, i.e. segment frame ``offset / hop + k`` (rounded down). Edge-pads
    short results like :func:`fit_frames`.
    """
    first = offset // hop_length
    return fit_frames(spec[..., first : first + num_frames, :], num_frames)
