"""Generated background noise (white, pink, brown) for the ``_background_noise_/`` folder.

Speech Commands ships six long noise recordings that training code mixes under the words; ours are
generated, so they carry no licence question. Colours follow the usual power laws: white is flat,
pink falls 3 dB per octave (1/f power), brown 6 dB per octave (1/f^2 power).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...utils.errors import ConfigError
from ._common import AUDIO_FORMATS, stable_rng, write_clip

__all__ = ["NOISE_COLOURS", "colored_noise", "write_background_noise"]

#: Exponent ``a`` of the power spectrum ``1/f^a`` for each colour.
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}


def colored_noise(colour: str, n: int, rng: np.random.Generator, rms_dbfs: float = -26.0) -> np.ndarray:
    """Gaussian noise of length ``n`` shaped to ``1/f^a`` power and scaled to ``rms_dbfs``.

    Args:
        colour: a key of :data:`NOISE_COLOURS`.
        n: number of samples.
        rng: random generator.
        rms_dbfs: RMS level in dB relative to full scale.
    """
    if colour not in NOISE_COLOURS:
        raise ConfigError(f"unknown noise colour {colour!r}; choose one of {sorted(NOISE_COLOURS)}")
    if n <= 0:
        raise ConfigError(f"noise length must be positive, got {n}")
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(spec.size, dtype=np.float64)
    freqs[0] = 1.0  # keep DC finite; it is removed below
    spec *= freqs ** (-NOISE_COLOURS[colour] / 2.0)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    x *= 10 ** (rms_dbfs / 20) / max(float(np.sqrt(np.mean(x**2))), 1e-12)
    # Brown noise has rare large excursions; keep them below full scale instead of clipping.
    peak = float(np.max(np.abs(x)))
    if peak > 0.99:
        x *= 0.99 / peak
    return x.astype(np.float32)


def write_background_noise(
    root: Path, seconds: float, seed: int, sample_rate: int = 16000, fmt: str = "wav"
) -> list[Path]:
    """Write ``<colour>_noise.<ext>`` for every colour into ``root / '_background_noise_'``; returns the paths."""
    folder = root / "_background_noise_"
    paths = []
    for colour in NOISE_COLOURS:
        path = folder / f"{colour}_noise{AUDIO_FORMATS[fmt][0]}"
        x = colored_noise(colour, round(seconds * sample_rate), stable_rng(seed, "noise", colour))
        write_clip(path, x, sample_rate, fmt)
        paths.append(path)
    return paths
