"""Training-time augmentation as ``nn.Module``s: SpecAugment and background-noise mixing.

Every module acts only in training mode (``module.train()``) and returns its input unchanged in
eval mode. Randomness comes from a ``torch.Generator``: the module's own (seeded at construction)
or one passed to ``forward``, so a dataset can draw per-clip streams that do not depend on the
worker that serves the clip.

SpecAugment reproduces ``slowfast/datasets/spec_augment.py`` of the original code (shared by
Auditory Slow-Fast and AudioRepInceptionNeXt), applied to each ``(T, F)`` map:

1. time warp with ``W = 5`` (see :func:`time_warp` for how it differs from the original's
   ``sparse_image_warp``);
2. two frequency masks with ``F = 27``, then two time masks with ``T = 25``, each drawn as
   ``f = randrange(0, F)``, ``f0 = randrange(0, n - f)``, then the *end* drawn again as
   ``end = randrange(f0, f0 + f)``: the masked band is ``[f0, end)``, so its width is at most
   ``F - 2`` and on average about ``F / 4``; a draw of ``f = 0`` ends that group of masks early;
3. masked cells are set to the mean of the (already partly masked) spectrogram, not zero.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..utils.errors import ConfigError, DataError, InputError, PathNotFoundError
from .io import AudioDecodeError, load_audio

__all__ = ["BackgroundNoise", "SpecAugment", "mask_axis", "time_warp"]

log = logging.getLogger(__name__)


def _randrange(low: int, high: int, generator: torch.Generator | None) -> int:
    """Python's ``random.randrange(low, high)`` drawn from a torch generator."""
    return int(torch.randint(low, high, (1,), generator=generator).item())


def _draw_warp(num_frames: int, max_shift: int, generator: torch.Generator | None) -> tuple[int, int]:
    """``(centre, shift)`` of a time warp of ``num_frames`` frames; ``shift = 0`` leaves the map unchanged."""
    if max_shift <= 0 or num_frames <= 2 * max_shift + 1:
        return 0, 0
    centre = _randrange(max_shift, num_frames - max_shift, generator)
    return centre, _randrange(-max_shift, max_shift, generator)


def _warp(spec: torch.Tensor, centre: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Warp the time axis of each ``(T, F)`` map of ``spec (B, T, F)`` by its ``centre (B,)`` and ``shift (B,)``."""
    t = spec.shape[-2]
    if t < 2:
        return spec
    c = centre.to(spec.device, torch.float64)[:, None]
    moved = c + shift.to(spec.device, torch.float64)[:, None]
    out_pos = torch.arange(t, dtype=torch.float64, device=spec.device)
    # the branch not taken may divide by zero (moved = 0); torch.where drops it
    src = torch.where(
        out_pos < moved,
        out_pos * c / moved,
        c + (out_pos - moved) * (t - 1 - c) / (t - 1 - moved),
    )
    lo = src.floor().clamp(0, t - 2).long()
    frac = (src - lo).clamp(0, 1).to(spec.dtype).unsqueeze(-1)
    if spec.shape[0] == 1:  # one map (a loader worker): plain indexing is cheaper
        return spec if int(shift[0]) == 0 else spec[:, lo[0]] * (1 - frac) + spec[:, lo[0] + 1] * frac
    rows = torch.arange(spec.shape[0], device=spec.device)[:, None]
    warped = spec[rows, lo] * (1 - frac) + spec[rows, lo + 1] * frac
    keep = (shift.to(spec.device) == 0)[:, None, None]
    return torch.where(keep, spec, warped)


def time_warp(spec: torch.Tensor, max_shift: int = 5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Piecewise-linear warp of the time axis of one ``(T, F)`` map.

    A centre frame ``c`` is drawn in ``[W, T - W)`` and moved to ``c + d`` with ``d`` drawn in
    ``[-W, W)`` (the original's two ``randrange`` calls). Output frames ``[0, c + d]`` read input
    frames ``[0, c]`` and output frames ``[c + d, T - 1]`` read ``[c, T - 1]``, both stretched
    linearly, with linear interpolation between neighbouring input frames. Both ends stay fixed.

    Relation to the original: it calls ``sparse_image_warp`` with a single control point at
    ``(F // 2, x)`` shifted by ``d`` in time, ``num_boundary_points=0`` and a polyharmonic spline
    of order 2, then bilinear resampling. Without boundary anchors that one-point spline does not
    pin the edges, and its ``x`` is taken from the spectrogram *value* at the drawn column rather
    than the column index, so its warp is not a well-defined time warp around ``c``. We implement
    the warp the SpecAugment paper describes (same ``W``, same draw ranges, same frequency
    independence) instead of reproducing that artefact; the distortion budget (at most ``W``
    frames of displacement) is the same.
    """
    centre, shift = _draw_warp(spec.shape[-2], max_shift, generator)
    if shift == 0:
        return spec
    return _warp(spec.reshape(1, *spec.shape[-2:]), torch.tensor([centre]), torch.tensor([shift])).reshape(spec.shape)


def _draw_bands(size: int, max_width: int, num_masks: int, generator: torch.Generator | None) -> list[tuple[int, int]]:
    """The original's ``[start, end)`` mask bands along an axis of ``size`` cells (see the module docstring)."""
    bands: list[tuple[int, int]] = []
    for _ in range(num_masks):
        width = _randrange(0, max_width, generator)
        if size - width <= 0:
            break
        start = _randrange(0, size - width, generator)
        if width == 0:  # the original returns here, skipping the remaining masks
            break
        bands.append((start, _randrange(start, start + width, generator)))
    return bands


def _fill_bands(spec: torch.Tensor, bands: torch.Tensor, axis: int) -> torch.Tensor:
    """Set band ``k`` of each map of ``spec (B, T, F)`` to that map's mean, for ``k = 0, 1, ...`` in turn.

    ``bands (B, K, 2)`` holds ``[start, end)`` pairs along ``axis`` (-2 time, -1 frequency); an empty
    band (``start == end``) changes nothing. Each mean is taken after the bands before it are filled.
    """
    if spec.shape[0] == 1:  # one map (a loader worker): slices are cheaper than masks
        out = spec.clone()
        for start, end in bands[0].tolist():
            if end > start:
                index = [slice(None)] * out.dim()
                index[axis] = slice(start, end)
                out[tuple(index)] = out.mean()
        return out
    size = spec.shape[axis]
    pos = torch.arange(size, device=spec.device)
    bands = bands.to(spec.device)
    for k in range(bands.shape[1]):
        start, end = bands[:, k, :1], bands[:, k, 1:]  # (B, 1)
        inside = (pos >= start) & (pos < end)  # (B, size)
        inside = inside[:, None, :] if axis == -1 else inside[:, :, None]
        spec = torch.where(inside, spec.mean(dim=(-2, -1), keepdim=True), spec)
    return spec


def mask_axis(
    spec: torch.Tensor, max_width: int, num_masks: int, axis: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Apply the original's masks along ``axis`` (-2 time, -1 frequency) of one ``(T, F)`` map.

    Returns the masked copy and the ``[start, end)`` bands, for inspection and tests.
    """
    bands = _draw_bands(spec.shape[axis], max_width, num_masks, generator)
    if not bands:
        return spec.clone(), bands
    out = _fill_bands(spec.reshape(1, *spec.shape[-2:]), torch.tensor([bands]), axis)
    return out.reshape(spec.shape), bands


class SpecAugment(nn.Module):
    """The paper's SpecAugment on log-mel inputs of shape ``(..., T, F)``; identity in eval mode.

    Args:
        time_warp: ``W``, maximum time-warp displacement in frames (0 disables).
        freq_mask: ``F``, frequency masks draw a width in ``[0, F)``.
        time_mask: ``T``, time masks draw a width in ``[0, T)``.
        num_freq_masks, num_time_masks: masks per map.
        seed: seed of the module's own generator (used when ``forward`` gets none).

    Each ``(T, F)`` map in the leading dimensions is augmented independently. The random draws
    depend only on the map's size, so they are split from the arithmetic: :meth:`draw` takes one map's
    draws as a small integer tensor, :meth:`apply` applies a batch of them on the batch's device.
    ``forward`` is the two in a row, so a map augmented from drawn parameters (for instance on the
    training GPU, with parameters drawn in a loader worker) gets the masks ``forward`` would give it.
    """

    def __init__(
        self,
        time_warp: int = 5,
        freq_mask: int = 27,
        time_mask: int = 25,
        num_freq_masks: int = 2,
        num_time_masks: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if min(time_warp, freq_mask, time_mask, num_freq_masks, num_time_masks) < 0:
            raise ConfigError("SpecAugment parameters must be >= 0")
        self.time_warp, self.freq_mask, self.time_mask = time_warp, freq_mask, time_mask
        self.num_freq_masks, self.num_time_masks = num_freq_masks, num_time_masks
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def num_params(self) -> int:
        """Length of one map's parameter vector (:meth:`draw`)."""
        return 2 + 2 * (self.num_freq_masks + self.num_time_masks)

    def draw(self, num_frames: int, n_mels: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The random draws of one ``(num_frames, n_mels)`` map, in ``forward``'s order.

        Returns an int64 vector of :attr:`num_params` values: the warp's ``(centre, shift)``, then a
        ``(start, end)`` pair per frequency mask and per time mask (``(0, 0)`` for a mask not drawn).
        """
        g = generator if generator is not None else self.generator
        warp = _draw_warp(num_frames, self.time_warp, g)
        freq = _draw_bands(n_mels, self.freq_mask, self.num_freq_masks, g)
        time = _draw_bands(num_frames, self.time_mask, self.num_time_masks, g)
        freq += [(0, 0)] * (self.num_freq_masks - len(freq))
        time += [(0, 0)] * (self.num_time_masks - len(time))
        return torch.tensor([*warp, *(v for band in freq + time for v in band)], dtype=torch.int64)

    def apply(self, spec: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Augment each ``(T, F)`` map of ``spec (..., T, F)`` with its row of ``params (..., num_params)``
        (from :meth:`draw`), on ``spec``'s device: time warp, frequency masks, then time masks."""
        maps = spec.reshape(-1, *spec.shape[-2:])
        p = params.reshape(-1, self.num_params)
        if p.shape[0] != maps.shape[0]:
            raise InputError(f"{maps.shape[0]} maps but {p.shape[0]} rows of SpecAugment parameters")
        if not len(p):
            return spec
        maps = _warp(maps, p[:, 0], p[:, 1])
        split = 2 + 2 * self.num_freq_masks
        maps = _fill_bands(maps, p[:, 2:split].reshape(len(p), -1, 2), -1)
        maps = _fill_bands(maps, p[:, split:].reshape(len(p), -1, 2), -2)
        return maps.reshape(spec.shape)

    def augment_map(self, spec: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment one ``(T, F)`` map (warp, frequency masks, time masks)."""
        return self.apply(spec, self.draw(*spec.shape[-2:], generator))

    def forward(self, spec: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.training:
            return spec
        if spec.dim() < 2:
            raise InputError(f"expected a (..., T, F) spectrogram, got shape {tuple(spec.shape)}")
        g = generator if generator is not None else self.generator
        n = spec[..., 0, 0].numel()
        params = torch.stack([self.draw(*spec.shape[-2:], g) for _ in range(n)])
        return self.apply(spec, params)

    def extra_repr(self) -> str:
        return (
            f"time_warp={self.time_warp}, freq_mask={self.freq_mask}x{self.num_freq_masks}, "
            f"time_mask={self.time_mask}x{self.num_time_masks}"
        )


class BackgroundNoise(nn.Module):
    """Mix a random stretch of background noise into a waveform at a random SNR.

    Args:
        noise: a folder of ``.wav``/``.flac`` files (e.g. Speech Commands' ``_background_noise_``)
            or a sequence of 1-D waveforms already at ``sample_rate``.
        sample_rate: rate of the waveforms this module receives; noise files are resampled to it.
        snr_db: ``(low, high)`` range of the signal-to-noise ratio, drawn uniformly in dB.
        p: probability of mixing noise into a given clip.
        seed: seed of the module's generator.

    ``forward(waveform (..., N), generator=None)``; identity in eval mode or on silent input.
    """

    def __init__(
        self,
        noise: str | Path | Sequence[np.ndarray | torch.Tensor],
        sample_rate: int,
        snr_db: tuple[float, float] = (0.0, 15.0),
        p: float = 0.8,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"p must be in [0, 1], got {p}")
        if snr_db[0] > snr_db[1]:
            raise ConfigError(f"snr_db must be (low, high), got {snr_db}")
        self.noises = (
            self._load(noise, sample_rate)
            if isinstance(noise, (str, Path))
            else [torch.as_tensor(np.asarray(n, dtype=np.float32)).flatten() for n in noise]
        )
        self.noises = [n for n in self.noises if n.numel() > 0 and float(n.pow(2).mean()) > 0]
        if not self.noises:
            where = noise if isinstance(noise, (str, Path)) else "the given arrays"
            raise DataError(f"no usable (non-silent, non-empty) noise in {where}")
        self.snr_db, self.p = snr_db, p
        self.generator = torch.Generator().manual_seed(seed)

    @staticmethod
    def _load(folder: str | Path, sample_rate: int) -> list[torch.Tensor]:
        if not Path(folder).is_dir():
            raise PathNotFoundError(f"{folder}: no such folder of background-noise recordings")
        files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".wav", ".flac"))
        if not files:
            raise DataError(f"no .wav or .flac noise files in {folder}")
        out = []
        for f in files:
            try:
                out.append(torch.from_numpy(load_audio(f, sample_rate=sample_rate)[0]))
            except AudioDecodeError as exc:
                log.warning("background noise: skipping %s", exc)
        return out

    def forward(self, waveform: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.training:
            return waveform
        g = generator if generator is not None else self.generator
        if float(torch.rand(1, generator=g)) >= self.p:
            return waveform
        n = waveform.shape[-1]
        noise = self.noises[_randrange(0, len(self.noises), g)]
        if noise.numel() < n:
            noise = noise.repeat(math.ceil(n / noise.numel()))
        offset = _randrange(0, noise.numel() - n + 1, g)
        segment = noise[offset : offset + n].to(waveform.dtype)
        p_signal = float(waveform.double().pow(2).mean())
        p_noise = float(segment.double().pow(2).mean())
        if p_signal == 0.0 or p_noise == 0.0:
            return waveform
        snr = self.snr_db[0] + float(torch.rand(1, generator=g)) * (self.snr_db[1] - self.snr_db[0])
        gain = math.sqrt(p_signal / (p_noise * 10.0 ** (snr / 10.0)))
        return waveform + gain * segment
