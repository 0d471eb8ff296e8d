"""Log-mels of many overlapping windows of one signal at once: one STFT for the block, not one per window.

A sliding-window scan with the default hop of half a window transforms every sample twice when each window
runs its own :class:`~arinext.audio.frontend.LogMel`. When the windows start on the STFT's hop grid
(``hop_samples % hop_length == 0``, true for the defaults), frame ``t`` of the window starting at ``s`` is the
STFT frame centred on sample ``s + t * hop_length`` of the signal, so:

* every frame whose whole ``n_fft`` span lies inside its window reads exactly the samples the per-window
  STFT reads: these come from ONE ``torch.stft(center=False)`` over the block;
* the few frames at each edge of a window (``ceil((n_fft // 2) / hop_length)`` per side) see the window's zero
  padding: they are computed per window, batched, from the window's first and last samples with the same
  centred, zero-padded STFT as :class:`LogMel`;
* the mel projection and the log run once on all windows.

The result equals ``LogMel`` applied to each window separately, bit for bit (``tests/test_scan_speed.py``
checks the presets and the demo's front end).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..audio.frontend import LogMel

__all__ = ["block_features_supported", "window_logmels"]


def block_features_supported(frontend: LogMel, window_samples: int, hop_samples: int) -> bool:
    """Whether :func:`window_logmels` can share one STFT between windows ``hop_samples`` apart."""
    c = frontend.config
    return hop_samples % c.hop_length == 0 and window_samples >= c.n_fft and c.n_fft % 2 == 0


def _magnitudes(x: torch.Tensor, fe: LogMel, center: bool) -> torch.Tensor:
    c = fe.config
    spec = torch.stft(
        x, n_fft=c.n_fft, hop_length=c.hop_length, win_length=c.win_length, window=fe.window.to(x.dtype),
        center=center, pad_mode="constant", return_complex=True,
    ).abs()  # fmt: skip
    return spec.transpose(-1, -2)  # (..., frames, bins)


@torch.no_grad()
def window_logmels(signal: np.ndarray | torch.Tensor, starts: list[int], window: int, fe: LogMel) -> torch.Tensor:
    """Log-mel ``(n, 1, T, n_mels)`` of the windows ``signal[s : s + window]`` for ``s`` in ``starts``.

    Args:
        signal: 1-D float32 samples holding every window completely.
        starts: window starts, ascending, each a multiple of ``fe.config.hop_length`` after the first.
        window: window length in samples (at least ``n_fft``, which must be even).
        fe: the front end; the result equals ``fe(signal[s : s + window])`` for every window.
    """
    c = fe.config
    h, n_fft, half = c.hop_length, c.n_fft, c.n_fft // 2
    x = torch.as_tensor(signal, dtype=torch.float32).to(fe.window.device)
    if not starts:
        return torch.empty(0, 1, c.frames_for(window), c.n_mels, device=x.device)
    s0 = starts[0]
    if any((s - s0) % h for s in starts) or window < n_fft or n_fft % 2 or starts[-1] + window > x.numel():
        raise ValueError(
            "windows must lie inside the signal, be at least n_fft (even) long and start on the hop grid"
        )
    frames = 1 + window // h
    t_lo = math.ceil(half / h)  # first frame whose span [t*h - half, t*h - half + n_fft) starts inside the window
    t_hi = (window + half - n_fft) // h  # last frame whose span ends inside it
    mags = torch.empty(len(starts), frames, n_fft // 2 + 1, device=x.device)
    if t_hi >= t_lo:  # interior frames of every window from one STFT over the block
        steps = [(s - s0) // h for s in starts]
        block = x[s0 + t_lo * h - half : starts[-1] + t_hi * h - half + n_fft]
        interior = _magnitudes(block, fe, center=False)  # frame j is frame t_lo + j of the first window
        count = t_hi - t_lo + 1
        for i, m in enumerate(steps):
            mags[i, t_lo : t_hi + 1] = interior[m : m + count]
    windows = torch.stack([x[s : s + window] for s in starts])
    if t_lo > 0:  # head frames 0 .. t_lo - 1 read the window's first samples and its left zero padding
        head = min(window, (t_lo - 1) * h - half + n_fft)
        mags[:, :t_lo] = _magnitudes(windows[:, :head], fe, center=True)[:, :t_lo]
    if t_hi + 1 < frames:  # tail frames read the last samples and the right zero padding
        first = max(t_lo, t_hi + 1)
        tail_start = max(0, (first * h - half) // h * h)
        tail = _magnitudes(windows[:, tail_start:], fe, center=True)  # frame k is centred on tail_start + k*h
        k0 = (first * h - tail_start) // h
        mags[:, first:] = tail[:, k0 : k0 + frames - first]
    mel = torch.matmul(mags, fe.mel_fb)
    return torch.log(mel + c.log_offset).unsqueeze(1)
