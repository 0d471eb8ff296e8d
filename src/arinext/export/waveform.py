"""The log-mel front end written with export-friendly ops, for waveform-to-logits graphs.

:class:`~arinext.LogMel` calls ``torch.stft`` (complex FFT), which ONNX exporters and runtimes handle
unevenly. :class:`ConvLogMel` computes the same centred, zero-padded, Hann-windowed magnitude STFT as a
``conv1d`` with a fixed real/imaginary DFT basis (only the ``win_length`` non-zero taps of the window),
then the same HTK mel matrix and ``log(mel + offset)``. It is the same function up to float rounding of
a direct DFT instead of an FFT; ``tests/test_export.py`` bounds the difference.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..audio.frontend import FrontendConfig, htk_mel_filterbank
from ..utils.errors import ConfigError

__all__ = ["ConvLogMel", "WaveformClassifier"]


class ConvLogMel(nn.Module):
    """Waveform ``(B, N)`` to log-mel ``(B, 1, 1 + N // hop, n_mels)``, matching :class:`~arinext.LogMel`."""

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__()
        c = self.config = config
        n_fft, win = c.n_fft, c.win_length
        if win > n_fft:
            raise ConfigError(f"window ({win} samples) is longer than n_fft ({n_fft})")
        # torch.stft centres a win_length window inside the n_fft frame; only those taps are non-zero.
        left = (n_fft - win) // 2
        right = n_fft - left - win
        self.padding = (n_fft // 2 - left, n_fft // 2 - right)
        n = torch.arange(win, dtype=torch.float64)
        k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
        window = torch.hann_window(win, periodic=True, dtype=torch.float64)
        phase = 2 * math.pi * k[:, None] * (n[None, :] + left) / n_fft
        basis = torch.cat([torch.cos(phase), -torch.sin(phase)]) * window  # (2K, win)
        self.register_buffer("basis", basis[:, None, :].float(), persistent=False)
        fb = htk_mel_filterbank(c.sample_rate, n_fft, c.n_mels, c.f_min, c.f_max)
        self.register_buffer("mel_fb", fb.T.contiguous().float(), persistent=False)
        self.num_bins = n_fft // 2 + 1

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = F.pad(waveform.unsqueeze(1), self.padding)  # (B, 1, N + win)
        spec = F.conv1d(x, self.basis, stride=self.config.hop_length)  # (B, 2K, T)
        real, imag = spec[:, : self.num_bins], spec[:, self.num_bins :]
        mag = torch.sqrt(real * real + imag * imag)
        mel = torch.matmul(mag.transpose(1, 2), self.mel_fb)  # (B, T, n_mels)
        return torch.log(mel + self.config.log_offset).unsqueeze(1)


class WaveformClassifier(nn.Module):
    """``ConvLogMel`` followed by a spectrogram classifier: ``(B, N)`` samples -> ``(B, C)`` logits.

    Short inputs are not padded to the training crop here (the classifier runs on whatever frames there
    are); pad the waveform beforehand if that matters.
    """

    def __init__(self, frontend: FrontendConfig, model: nn.Module) -> None:
        super().__init__()
        self.frontend = ConvLogMel(frontend)
        self.model = model

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.model(self.frontend(waveform))
