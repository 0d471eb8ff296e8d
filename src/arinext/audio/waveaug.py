"""Waveform augmentation for training clips: speed, pitch, rooms, microphones and channels.

Every augmentation is a callable ``f(waveform (N,), generator) -> waveform (N,)``, the signature of
``AudioClipDataset(waveform_transform=...)``. All its random parameters are drawn from the given
``torch.Generator`` (the dataset's stream of one (seed, epoch, clip)), never from a global random
state, so a clip is augmented the same way whichever DataLoader worker serves it, and a resumed run
sees the same draws. Each call makes the same draws whatever ``p`` is, so switching one augmentation
on or off does not change the draws of the others. The output has the input's length and dtype: an
augmentation that changes duration (speed) centre-crops or zero-pads back to the crop length.

This module draws parameters and fixes lengths; the signal processing comes from libraries:

====================  =========================================================  ==========================
augmentation          library                                                    licence
====================  =========================================================  ==========================
``speed``             ``soxr.resample`` (a core dependency)                      LGPL-2.1+
``pitch``             ``python-stretch`` (Signalsmith Stretch)                   MIT
``reverb``            ``pyroomacoustics`` shoebox rooms (image sources + ray     MIT; BSD-3
                      tracing) in a seeded, cached bank; ``scipy`` convolution
``eq``                ``scipy.signal.firwin2`` (linear-phase FIR)                BSD-3
``bandlimit``         ``scipy.signal.butter`` + ``sosfiltfilt`` (zero phase)      BSD-3
``mp3``               ``fast-mp3-augment`` (LAME encoder, minimp3 decoder)       LGPL-2.1+
``clipping``,         ``torch`` (a clamp, a product, a shift)                    -
``gain``, ``shift``
====================  =========================================================  ==========================

``pip install 'arinext[augment]'`` installs the libraries; an augmentation whose library is missing
says so when it is built. audiomentations was not used: it draws from Python's and numpy's global
random state (no seed argument), pins ``soxr<1.0`` and pulls in about 500 MB; its transforms for these
effects wrap the same libraries. :class:`SeededGlobalRandom` runs such a transform deterministically.

A recipe turns them on with ``data.augment`` (:func:`build_waveform_augment`)::

    data:
      augment: {speed: {p: 0.5}, reverb: {p: 0.3}, eq: true, bandlimit: {p: 0.1}, mp3: false}
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..utils.errors import ConfigError, DataError, InputError
from ..utils.optional import require

__all__ = [
    "AUGMENTATIONS",
    "ORDER",
    "BandLimit",
    "Clipping",
    "Compose",
    "Gain",
    "IRBank",
    "Mp3Codec",
    "PitchShift",
    "RandomEQ",
    "RoomReverb",
    "SeededGlobalRandom",
    "SpeedPerturb",
    "TimeShift",
    "build_waveform_augment",
    "check_augment_spec",
    "fit_length",
]

log = logging.getLogger(__name__)

WaveformTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _extra(module: str, purpose: str) -> Any:
    return require(module, "augment", purpose)


# ------------------------------------------------------------------------------------------------
# draws from the torch generator


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(1, generator=g, dtype=torch.float64))


def _log_uniform(g: torch.Generator, low: float, high: float) -> float:
    return math.exp(_uniform(g, math.log(low), math.log(high)))


def _randint(g: torch.Generator, low: int, high: int) -> int:
    """An integer in ``[low, high)``."""
    return int(torch.randint(low, high, (1,), generator=g))


def _apply(g: torch.Generator, p: float) -> bool:
    return float(torch.rand(1, generator=g, dtype=torch.float64)) < p


def _check_p(p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"p must be in [0, 1], got {p}")
    return float(p)


def _check_range(name: str, r: Sequence[float], low: float = -math.inf, high: float = math.inf) -> tuple[float, float]:
    if isinstance(r, (str, bytes)) or len(r) != 2:
        raise ConfigError(f"{name} must be [low, high], got {r!r}")
    lo, hi = float(r[0]), float(r[1])
    if not low <= lo <= hi <= high:
        raise ConfigError(f"{name} must be [low, high] with {low:g} <= low <= high <= {high:g}, got {list(r)}")
    return lo, hi


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _to_numpy(w: torch.Tensor) -> np.ndarray:
    if w.dim() != 1:
        raise InputError(f"expected a 1-D waveform (N,), got shape {tuple(w.shape)}")
    return np.ascontiguousarray(w.detach().cpu().numpy(), dtype=np.float32)


def _back(y: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """``y`` as a tensor of ``like``'s dtype; non-finite samples (from a degenerate input) become 0."""
    out = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).to(like.dtype)
    if out.shape != like.shape:
        raise RuntimeError(f"augmentation changed the length: {tuple(like.shape)} -> {tuple(out.shape)}")
    return torch.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Centre-crop or zero-pad ``y`` to ``n`` samples, keeping its middle in the middle."""
    if y.size == n:
        return y
    if y.size > n:
        start = (y.size - n) // 2
        return y[start : start + n]
    before = (n - y.size) // 2
    return np.pad(y, (before, n - y.size - before))


# ------------------------------------------------------------------------------------------------
# augmentations


class SpeedPerturb:
    """Speed perturbation (Ko et al. 2015): the clip played ``factor`` times faster, by resampling.

    Tempo, pitch and formants all scale by ``factor``, like a tape played faster. The resampled clip
    (``N / factor`` samples) is centre-cropped or zero-padded back to ``N``.

    Args:
        sample_rate: rate of the waveforms.
        factor: ``[low, high]``, the speed factor is drawn uniformly in it (Kaldi uses 0.9, 1.0, 1.1).
        p: probability of applying it to a clip.
    """

    def __init__(self, sample_rate: int, factor: Sequence[float] = (0.9, 1.1), p: float = 0.5) -> None:
        self.sample_rate, self.factor, self.p = sample_rate, _check_range("factor", factor, 0.5, 2.0), _check_p(p)

    def __call__(self, waveform: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import soxr

        go = _apply(generator, self.p)
        factor = _uniform(generator, *self.factor)
        if not go or factor == 1.0 or waveform.numel() == 0:
            return waveform
        x = _to_numpy(waveform)
        # The samples read as if recorded at sr * factor, converted to sr: N / factor samples.
        y = soxr.resample(x, round(self.sample_rate * factor), self.sample_rate, quality="HQ")
        return _back(fit_length(y, x.size), waveform)


class PitchShift:
    """Pitch shift by a number of semitones at constant duration (Signalsmith Stretch, python-stretch).

    The spectral envelope moves with the pitch (python-stretch has no formant control): a smaller or
    larger voice at the same tempo. With :class:`SpeedPerturb` it varies tempo and voice size apart.

    Args:
        sample_rate: rate of the waveforms.
        semitones: ``[low, high]``, drawn uniformly.
        p: probability of applying it.
    """

    def __init__(self, sample_rate: int, semitones: Sequence[float] = (-3.0, 3.0), p: float = 0.5) -> None:
        self.sample_rate, self.semitones, self.p = sample_rate, _check_range("semitones", semitones, -24, 24), _check_p(p)
        self._stretch = _extra("python_stretch", "pitch shifting (data.augment.pitch)")

    def __call__(self, waveform: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        go = _apply(generator, self.p)
        semitones = _uniform(generator, *self.semitones)
        if not go or semitones == 0.0 or waveform.numel() == 0:
            return waveform
        x = _to_numpy(waveform)
        stretch = self._stretch.Signalsmith.Stretch()
        stretch.preset(1, self.sample_rate)
        stretch.setTransposeSemitones(semitones)
        y = np.asarray(stretch.process(x[None]), dtype=np.float32)[0]
        return _back(fit_length(y, x.size), waveform)


class RandomEQ:
    """A random microphone/channel colouring: a smooth random gain curve as a linear-phase FIR filter.

    Gains in dB are drawn uniformly in ``gain_db`` at ``bands`` log-spaced frequencies from ``f_low`` to
    ``f_high`` (held flat below and above); ``scipy.signal.firwin2`` designs a ``taps``-long FIR (odd;
    1025 taps keep the 100-200 Hz bands within about 1.5 dB of their draw) and the convolution is
    centred (``mode="same"``), so the clip is not delayed.

    Attributes:
        last_curve: ``(frequencies_hz, gains_db)`` of the latest applied draw (for tests and plots).
    """

    def __init__(
        self,
        sample_rate: int,
        gain_db: Sequence[float] = (-10.0, 10.0),
        bands: int = 7,
        f_low: float = 100.0,
        f_high: float = 6000.0,
        taps: int = 1025,
        p: float = 0.5,
    ) -> None:
        if taps % 2 == 0 or taps < 3:
            raise ConfigError(f"taps must be odd and >= 3, got {taps}")
        if bands < 1:
            raise ConfigError(f"bands must be >= 1, got {bands}")
        if not 0 < f_low < f_high < sample_rate / 2:
            raise ConfigError(f"need 0 < f_low < f_high < sample_rate / 2, got {f_low}, {f_high}")
        self.sample_rate, self.gain_db, self.bands = sample_rate, _check_range("gain_db", gain_db, -40, 40), bands
        self.f_low, self.f_high, self.taps, self.p = f_low, f_high, taps, _check_p(p)
        self._signal = _extra("scipy.signal", "random EQ (data.augment.eq)")
        self.last_curve: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, waveform: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        go = _apply(generator, self.p)
        freqs = np.geomspace(self.f_low, self.f_high, self.bands)
        gains = np.array([_uniform(generator, *self.gain_db) for _ in range(self.bands)])
        if not go or waveform.numel() == 0:
            return waveform
        self.last_curve = (freqs, gains)
        nyquist = self.sample_rate / 2
        f = np.concatenate([[0.0], freqs, [nyquist]]) / nyquist
        a = 10.0 ** (np.concatenate([[gains[0]], gains, [gains[-1]]]) / 20.0)
        h = self._signal.firwin2(self.taps, f, a)
        x = _to_numpy(waveform)
        return _back(self._signal.fftconvolve(x, h, mode="same"), waveform)


class BandLimit:
    """A band-limited channel; by default the narrow-band telephone channel (G.712: 300-3400 Hz).

    A Butterworth band-pass (``scipy.signal.butter``, ``order`` per edge) with edges drawn log-uniformly
    in ``low_hz`` and ``high_hz``, run forward and backward (``sosfiltfilt``): zero phase, no delay.
    """

    def __init__(
        self,
        sample_rate: int,
        low_hz: Sequence[float] = (250.0, 350.0),
        high_hz: Sequence[float] = (3200.0, 3600.0),
        order: int = 6,
        p: float = 0.5,
    ) -> None:
        lo = _check_range("low_hz", low_hz, 1.0)
        hi = _check_range("high_hz", high_hz, 1.0, sample_rate / 2 * 0.999)
        if lo[1] >= hi[0]:
            raise ConfigError(f"low_hz {list(low_hz)} must lie below high_hz {list(high_hz)}")
        if order < 1:
            raise ConfigError(f"order must be >= 1, got {order}")
        self.sample_rate, self.low_hz, self.high_hz, self.order, self.p = sample_rate, lo, hi, order, _check_p(p)
        self._signal = _extra("scipy.signal", "band-limiting (data.augment.bandlimit)")

    @classmethod
    def telephone(cls, sample_rate: int, p: float = 0.5) -> BandLimit:
        """The telephone band: edges 250-350 Hz and 3.2-3.6 kHz, 6th order (the defaults)."""
        return cls(sample_rate, p=p)

    def __call__(self, waveform: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        go = _apply(generator, self.p)
        low = _log_uniform(generator, *self.low_hz)
        high = _log_uniform(generator, *self.high_hz)
        if not go:
            return waveform
        sos = self._signal.butter(self.order, [low, high], btype="bandpass", fs=self.sample_rate, output="sos")
        x = _to_numpy(waveform)
        if x.size <= 3 * (2 * len(sos) + 1):  # shorter than sosfiltfilt's padding
            return waveform
        return _back(self._signal.sosfiltfilt(sos, x), waveform)


class Clipping:
    """Hard clipping of the loudest samples, as an overdriven microphone preamplifier does.

    The threshold is the ``1 - fraction`` quantile of ``|x|``, ``fraction`` drawn uniformly in its range.

    Attributes:
        last_threshold: the threshold of the latest applied draw.
    """

    def __init__(self, fraction: Sequence[float] = (0.0, 0.05), p: float = 0.3) -> None:
        self.fraction, self.p = _check_range("fraction", fraction, 0.0, 0.9), _check_p(p)
        self.last_threshold: float | None = None

    def __call__(self, waveform: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        go = _apply(generator, self.p)
        fraction = _uniform(generator, *self.fraction)
        if not go or fraction <= 0.0 or waveform.numel() == 0:
            return waveform
        mag = waveform.detach().abs().flatten()
        k = min(mag.numel(), max(1, math.ceil((1.0 - fraction) * mag.numel())))
        threshold = float(torch.kthvalue(mag, k).values)
        self.last_threshold = threshold
        if threshold <= 0.0 or not math.isfinite(threshold):
            return waveform
        return waveform.clamp(-threshold, threshold)


class Mp3Codec:
    """A low-bitrate MP3 round trip (LAME encoder, minimp3 decoder) through fast-mp3-augment, delay removed.

    The bitrate (kbit/s) is drawn uniformly from ``bitrates``; at 16 kHz, MPEG-2 layer III allows 8-160.
    Clips shorter than 100 ms (the library's minimum) are returned unchanged.

    Attributes:
        last_bitrate: the bitrate of the latest applied draw.
    """

    def __init__(
        self, sample_rate: int, bitrates: Sequence[int] = (8, 16, 24, 32, 48, 64), quality: int = 7, p: float = 0.3
    ) -> None:
        self._mp3 = _extra("fast_mp3_augment", "MP3 compression (data.augment.mp3)")
        if sample_rate not in self._mp3.SUPPORTED_SAMPLE_RATES:
            raise ConfigError(f"fast-mp3-augment does not support {sample_rate} Hz")
        bad = [b for b in bitrates if b not in self._mp3.SUPPORTED_BITRATES]
        if not bitrates or bad:
            raise ConfigError(f"unsupported MP3 bitrates {bad}; choose from {sorted(self._mp3.SUPPORTED_BITRATES)}")
        self.sample_rate, self.bitrates, self.quality, self.p = sample_rate, list(bitrates), quality, _check_p(p)
        self.last_bitrate: int | None = None

    def __call__(self, waveform: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        go = _apply(generator, self.p)
        bitrate = self.bitrates[_randint(generator, 0, len(self.bitrates))]
        if not go or waveform.numel() < 0.1 * self.sample_rate:
            return waveform
        self.last_bitrate = bitrate
        x = _to_numpy(waveform)
        if not np.isfinite(x).all():
            return waveform
        # LAME clips at full scale: code a scaled copy and undo the scaling
        scale = max(1.0, float(np.max(np.abs(x))))
        y = self._mp3.compress_roundtrip(x / scale, self.sample_rate, bitrate, preserve_delay=False, quality=self.quality)
        return _back(fit_length(np.asarray(y, dtype=np.float32) * scale, x.size), waveform)


class Gain:
    """Multiply by a gain drawn uniformly in dB. On log-mel inputs alone this only shifts the features;
    it matters before clipping and the codec, and against additive noise."""

    def __init__(self, gain_db: Sequence[float] = (-12.0, 6.0), p: float = 0.5) -> None:
        self.gain_db, self.p = _check_range("gain_db", gain_db, -60, 40), _check_p(p)

    def __call__(self, waveform: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        go = _apply(generator, self.p)
        db = _uniform(generator, *self.gain_db)
        return waveform * (10.0 ** (db / 20.0)) if go else waveform


class TimeShift:
    """Shift the clip by up to ``max_seconds`` either way, filling with zeros (or wrapping, ``roll``).

    Attributes:
        last_shift: samples of the latest applied draw (positive: later).
    """

    def __init__(self, sample_rate: int, max_seconds: float = 0.1, roll: bool = False, p: float = 0.5) -> None:
        if max_seconds < 0:
            raise ConfigError(f"max_seconds must be >= 0, got {max_seconds}")
        self.max_shift, self.roll, self.p = int(round(max_seconds * sample_rate)), roll, _check_p(p)
        self.last_shift = 0

    def __call__(self, waveform: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        go = _apply(generator, self.p)
        shift = _randint(generator, -self.max_shift, self.max_shift + 1)
        n = waveform.shape[-1]
        if not go or shift == 0 or n == 0:
            return waveform
        self.last_shift = shift
        if self.roll:
            return torch.roll(waveform, shift, dims=-1)
        out = torch.zeros_like(waveform)
        if abs(shift) < n:
            if shift > 0:
                out[shift:] = waveform[: n - shift]
            else:
                out[: n + shift] = waveform[-shift:]
        return out


# ------------------------------------------------------------------------------------------------
# reverberation


def _align_ir(h: np.ndarray, pre: int = 16, top_db: float = 60.0) -> np.ndarray:
    """Start an impulse response ``pre`` samples before its direct path (its peak), so that convolving
    does not delay the clip, and cut its tail ``top_db`` below the peak."""
    h = np.asarray(h, dtype=np.float64).ravel()
    if h.size == 0 or not np.isfinite(h).all() or np.max(np.abs(h)) == 0:
        raise DataError("impulse response is empty, silent or not finite")
    peak = int(np.argmax(np.abs(h)))
    h = h[max(0, peak - pre) :]
    env = np.abs(h)
    last = int(np.flatnonzero(env >= env.max() * 10 ** (-top_db / 20))[-1])
    return h[: last + 1].astype(np.float32)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/arinext`` (``~/.cache/arinext``): where simulated impulse-response banks are kept."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "arinext"


class IRBank:
    """Room impulse responses at one sample rate: simulated (:meth:`simulate`) or read (:meth:`from_folder`).

    Attributes:
        irs: float32 impulse responses, each aligned on its direct path.
        info: one dict per response (room size, RT60, absorption, distance; or the file).
    """

    def __init__(self, irs: Sequence[np.ndarray], sample_rate: int, info: list[dict[str, Any]] | None = None) -> None:
        if not irs:
            raise InputError("an IRBank needs at least one impulse response")
        self.irs = [np.asarray(h, dtype=np.float32) for h in irs]
        self.sample_rate, self.info = sample_rate, info or [{} for _ in irs]

    def __len__(self) -> int:
        return len(self.irs)

    @classmethod
    def simulate(
        cls,
        count: int,
        sample_rate: int,
        seed: int = 0,
        rt60: Sequence[float] = (0.15, 0.8),
        size: Sequence[Sequence[float]] = ((3.0, 10.0), (3.0, 8.0), (2.4, 4.0)),
        margin: float = 0.5,
        min_distance: float = 0.3,
        method: str = "hybrid",
        max_order: int = 3,
        n_rays: int = 2000,
        cache_dir: str | Path | None = None,
    ) -> IRBank:
        """``count`` shoebox rooms simulated with pyroomacoustics, a pure function of the arguments.

        Room ``k`` draws from a numpy generator seeded with ``(seed, k)``: its dimensions (``size``, m),
        a target RT60 (s; turned into a wall absorption by Sabine's formula), and source and microphone
        positions at least ``margin`` m from the walls and ``min_distance`` m apart. ``"hybrid"`` runs
        image sources up to ``max_order`` plus ray tracing for the late tail (it reaches the target
        RT60; about 70-280 ms per room on one core); ``"ism"`` is image sources only (1-6 ms per room,
        short of RT60s above about 0.3 s). The ray tracer is seeded per room. With ``cache_dir`` the
        bank is stored there as ``irbank-<hash of the arguments>.npz`` and loaded on the next call.
        """
        pra = _extra("pyroomacoustics", "room reverberation (data.augment.reverb)")
        if method not in ("hybrid", "ism"):
            raise ConfigError(f"method must be 'hybrid' or 'ism', got {method!r}")
        if count < 1:
            raise ConfigError(f"count must be >= 1, got {count}")
        rt60 = _check_range("rt60", rt60, 0.01, 5.0)
        if len(size) != 3:
            raise ConfigError(f"size must hold 3 [low, high] ranges in metres, got {size!r}")
        dims = [_check_range("size", s, 2 * margin + 0.1, 100.0) for s in size]
        args = dict(count=count, sample_rate=sample_rate, seed=seed, rt60=list(rt60), size=[list(d) for d in dims],
                    margin=margin, min_distance=min_distance, method=method, max_order=max_order, n_rays=n_rays,
                    pyroomacoustics=pra.__version__)  # fmt: skip
        key = hashlib.sha1(json.dumps(args, sort_keys=True).encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"irbank-{key}.npz" if cache_dir is not None else None
        if path is not None and path.is_file():
            with np.load(path, allow_pickle=False) as z:
                return cls([z[f"ir{k}"] for k in range(count)], sample_rate, json.loads(str(z["info"])))
        log.info("simulating %d room impulse responses (%s, RT60 %s s)", count, method, list(rt60))
        irs, info = [], []
        for k in range(count):
            rng = np.random.default_rng([seed, k])
            dim = np.array([rng.uniform(*d) for d in dims])
            target = float(rng.uniform(*rt60))
            absorption, ism_order = pra.inverse_sabine(target, dim)
            absorption = float(min(max(absorption, 0.01), 0.99))
            lo, hi = np.full(3, margin), dim - margin
            src = rng.uniform(lo, hi)
            mic = rng.uniform(lo, hi)
            for _ in range(100):
                if np.linalg.norm(mic - src) >= min_distance:
                    break
                mic = rng.uniform(lo, hi)
            order = max_order if method == "hybrid" else min(max_order, int(ism_order))
            pra.random.seed(int(rng.integers(2**31)))  # the ray tracer's numpy and C++ generators
            room = pra.ShoeBox(dim, fs=sample_rate, materials=pra.Material(absorption), max_order=order,
                               ray_tracing=method == "hybrid", air_absorption=True)  # fmt: skip
            if method == "hybrid":
                room.set_ray_tracing(receiver_radius=0.5, n_rays=n_rays, energy_thres=1e-5)
            room.add_source(src)
            room.add_microphone(mic)
            room.compute_rir()
            irs.append(_align_ir(room.rir[0][0]))
            info.append({"size": dim.round(2).tolist(), "rt60": round(target, 3), "absorption": round(absorption, 3),
                         "distance": round(float(np.linalg.norm(mic - src)), 2)})  # fmt: skip
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez_compressed(tmp, info=json.dumps(info), **{f"ir{k}": h for k, h in enumerate(irs)})
            tmp.replace(path)
        return cls(irs, sample_rate, info)

    @classmethod
    def from_folder(cls, folder: str | Path, sample_rate: int, max_seconds: float = 2.0) -> IRBank:
        """Recorded impulse responses: every ``.wav``/``.flac`` under ``folder`` (first channel), resampled
        with soxr, aligned on the direct path and cut at ``max_seconds``."""
        from .io import load_audio

        files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".wav", ".flac"))
        if not files:
            raise DataError(f"no .wav or .flac impulse responses under {folder}")
        irs, info = [], []
        for f in files:
            h, _ = load_audio(f, sample_rate=sample_rate)
            irs.append(_align_ir(h)[: max(1, int(max_seconds * sample_rate))])
            info.append({"file": str(f)})
        return cls(irs, sample_rate, info)


class RoomReverb:
    """Convolve the clip with an impulse response drawn from an :class:`IRBank`.

    The response is aligned on its direct path (no delay) and the tail past the crop is cut, so the
    length is kept. ``wet`` is drawn uniformly in its range and mixes ``wet * reverberant + (1 - wet) *
    dry``; the result is rescaled to the input's RMS, so reverberation does not act as a gain.

    Attributes:
        last_index: the bank index of the latest applied draw.
    """

    def __init__(self, bank: IRBank, wet: Sequence[float] = (1.0, 1.0), p: float = 0.5) -> None:
        self.bank, self.wet, self.p = bank, _check_range("wet", wet, 0.0, 1.0), _check_p(p)
        self._signal = _extra("scipy.signal", "room reverberation (data.augment.reverb)")
        self.last_index: int | None = None

    def __call__(self, waveform: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        go = _apply(generator, self.p)
        index = _randint(generator, 0, len(self.bank))
        wet = _uniform(generator, *self.wet)
        if not go or waveform.numel() == 0:
            return waveform
        self.last_index = index
        x = _to_numpy(waveform)
        rms_in = _rms(x)
        if rms_in == 0.0 or not math.isfinite(rms_in):
            return waveform
        y = self._signal.fftconvolve(x, self.bank.irs[index])[: x.size]
        y = wet * y * (rms_in / max(_rms(y), 1e-12)) + (1.0 - wet) * x
        return _back(y * (rms_in / max(_rms(y), 1e-12)), waveform)


# ------------------------------------------------------------------------------------------------
# composition, foreign transforms, recipes


class Compose:
    """Apply transforms in order, each with its own probability, all drawing from one generator."""

    def __init__(self, transforms: Sequence[WaveformTransform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, waveform: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for t in self.transforms:
            waveform = t(waveform, generator)
        return waveform

    def __repr__(self) -> str:
        return f"Compose({', '.join(type(t).__name__ for t in self.transforms)})"


class SeededGlobalRandom:
    """Run a transform that draws from Python's ``random`` and numpy's global ``np.random`` (such as an
    audiomentations transform) deterministically.

    Both global states are seeded from ``generator``, the transform runs, and the previous states are
    put back, so nothing else in the process sees a change. Safe in DataLoader workers (processes), not
    when other threads use those globals. ``transform(samples float32 (N,), sample_rate) -> samples``
    (audiomentations' call convention); the output is fitted back to the input length.
    """

    def __init__(self, transform: Callable[[np.ndarray, int], np.ndarray], sample_rate: int) -> None:
        self.transform, self.sample_rate = transform, sample_rate

    def __call__(self, waveform: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        seed = _randint(generator, 0, 2**31 - 1)
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            random.seed(seed)
            np.random.seed(seed)
            x = _to_numpy(waveform)
            y = np.asarray(self.transform(x, self.sample_rate), dtype=np.float32).ravel()
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        return _back(fit_length(y, x.size), waveform)


def _reverb(sample_rate: int, **options: Any) -> RoomReverb:
    """``reverb`` of a recipe: a bank (simulated, or ``folder`` of recorded responses) and its draw."""
    own = {k: options.pop(k) for k in ("wet", "p") if k in options}
    folder, cache = options.pop("folder", None), options.pop("cache_dir", "auto")
    count = options.pop("bank_size", 64)
    if folder is not None:
        if options:
            raise ConfigError(f"data.augment.reverb: {sorted(options)} do not apply to a folder of impulse responses")
        bank = IRBank.from_folder(folder, sample_rate)
    else:
        cache_dir = default_cache_dir() / "ir_banks" if cache == "auto" else cache
        bank = IRBank.simulate(count, sample_rate, cache_dir=cache_dir, **options)
    return RoomReverb(bank, **own)


#: Recipe name -> constructor ``(sample_rate, **options)``; ``data.augment: {name: options | true | false}``.
AUGMENTATIONS: dict[str, Callable[..., WaveformTransform]] = {
    "speed": SpeedPerturb,
    "pitch": PitchShift,
    "shift": lambda sample_rate, **kw: TimeShift(sample_rate, **kw),
    "reverb": _reverb,
    "gain": lambda sample_rate, **kw: Gain(**kw),
    "eq": RandomEQ,
    "bandlimit": BandLimit,
    "clipping": lambda sample_rate, **kw: Clipping(**kw),
    "mp3": Mp3Codec,
}

#: The order of the chain, whatever the recipe's order: the talker (speed, pitch, timing), the room,
#: the background noise (``data.background_noise``), then the microphone and the channel.
ORDER = ("speed", "pitch", "shift", "reverb", "noise", "gain", "eq", "bandlimit", "clipping", "mp3")

_OPTIONS: dict[str, set[str]] = {
    "speed": {"factor", "p"},
    "pitch": {"semitones", "p"},
    "shift": {"max_seconds", "roll", "p"},
    "reverb": {"wet", "p", "folder", "cache_dir", "bank_size"} | set(inspect.signature(IRBank.simulate).parameters)
    - {"cls", "count", "sample_rate", "cache_dir"},
    "gain": {"gain_db", "p"},
    "eq": {"gain_db", "bands", "f_low", "f_high", "taps", "p"},
    "bandlimit": {"low_hz", "high_hz", "order", "p"},
    "clipping": {"fraction", "p"},
    "mp3": {"bitrates", "quality", "p"},
}


def check_augment_spec(spec: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The enabled augmentations of a ``data.augment`` mapping as ``{name: options}``, in :data:`ORDER`.

    Each value is ``true`` (the defaults), ``false``/``null`` (off) or a mapping of options. Unknown
    names and options raise ``ValueError`` naming them; the values themselves are checked when built.
    """
    if not spec:
        return {}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"data.augment must be a mapping of augmentation -> options, got {spec!r}")  # noqa: TRY004
    unknown = sorted(set(spec) - set(AUGMENTATIONS))
    if unknown:
        raise ConfigError(f"unknown augmentation(s) {unknown} in data.augment; choose from {list(AUGMENTATIONS)}")
    out: dict[str, dict[str, Any]] = {}
    for name in ORDER:
        value = spec.get(name)
        if value is None or value is False:
            continue
        if value is True:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"data.augment.{name} must be true, false or a mapping of options, got {value!r}")
        bad = sorted(set(value) - _OPTIONS[name])
        if bad:
            raise ConfigError(f"unknown option(s) {bad} of data.augment.{name}; known: {sorted(_OPTIONS[name])}")
        out[name] = dict(value)
    return out


def build_waveform_augment(
    spec: Mapping[str, Any] | None, sample_rate: int, noise: WaveformTransform | None = None
) -> WaveformTransform | None:
    """The waveform transform of a recipe: the enabled augmentations of ``spec`` and ``noise`` in
    :data:`ORDER`, as one :class:`Compose` (``noise`` alone, or ``None``, when nothing else is on).

    Raises:
        ValueError: an unknown augmentation or option, or a bad value (naming it).
        MissingExtraError: the library an augmentation needs is missing (``pip install 'arinext[augment]'``).
    """
    enabled = check_augment_spec(spec)
    chain: list[WaveformTransform] = []
    for name in ORDER:
        if name == "noise":
            if noise is not None:
                chain.append(noise)
            continue
        if name in enabled:
            try:
                chain.append(AUGMENTATIONS[name](sample_rate, **enabled[name]))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"data.augment.{name}: {exc}") from exc
    if not chain:
        return None
    return chain[0] if len(chain) == 1 and noise is not None and chain[0] is noise else Compose(chain)
