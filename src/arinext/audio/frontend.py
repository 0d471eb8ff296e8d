"""The paper's log-mel front end as an ``nn.Module``.

Recipe of the original data pipeline (Auditory Slow-Fast / AudioRepInceptionNeXt loaders, which call
librosa): magnitude STFT with ``n_fft=2048``, a Hann window of ``win_ms``, hop ``hop_ms``, centred
frames with *constant* (zero) padding; 128 HTK mel bands with no area normalisation, ``f_min=0``,
``f_max=sr/2``; ``log(mel + 1e-6)``; no mean/std normalisation; time-major output.

Output layout is ``(B, 1, T, F)``: dim 2 is time (frames), dim 3 is frequency (mel bins).

The mel matrix is computed here from the HTK formula ``mel = 2595 * log10(1 + f / 700)`` with
triangular filters on the FFT bin frequencies, the construction librosa uses for
``librosa.filters.mel(htk=True, norm=None)``; ``tests/test_frontend.py`` checks it against librosa.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn

from ..utils.errors import ConfigError, InputError

__all__ = ["PRESETS", "FrontendConfig", "LogMel", "get_preset", "htk_mel_filterbank"]


@dataclass(frozen=True)
class FrontendConfig:
    """Front-end parameters of one dataset.

    Args:
        sample_rate: audio rate in Hz the front end expects (``AUDIO_DATA.SAMPLING_RATE``).
        win_ms: STFT window length in ms (``AUDIO_DATA.WINDOW_LENGTH``).
        hop_ms: STFT hop in ms (``AUDIO_DATA.HOP_LENGTH``; named ``noverlap`` in the original).
        num_frames: frames of one training crop (``AUDIO_DATA.NUM_FRAMES``).
        clip_seconds: length of one crop in seconds (``AUDIO_DATA.CLIP_SECS``); gives exactly
            ``num_frames`` frames with centred STFT frames.
        n_fft: FFT size.
        n_mels: mel bands (``AUDIO_DATA.NUM_FREQUENCIES``).
        f_min, f_max: mel range in Hz; ``f_max=None`` means ``sample_rate / 2``.
        log_offset: added before the log.
        test_views: uniformly spaced crops averaged at test time (``TEST.NUM_ENSEMBLE_VIEWS``).
    """

    sample_rate: int = 16000
    win_ms: float = 20.0
    hop_ms: float = 10.0
    num_frames: int = 512
    clip_seconds: float = 5.119
    n_fft: int = 2048
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float | None = None
    log_offset: float = 1e-6
    test_views: int = 1

    @property
    def win_length(self) -> int:
        return int(round(self.win_ms * self.sample_rate / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.hop_ms * self.sample_rate / 1000))

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

    def frames_for(self, num_samples: int) -> int:
        """Number of frames of a centred STFT over ``num_samples`` samples."""
        return 1 + num_samples // self.hop_length

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrontendConfig:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown front-end keys: {sorted(unknown)}")
        return cls(**d)


# Per-dataset presets (PAPER.md section 5). Crop lengths are the original CLIP_SECS values that give
# exactly NUM_FRAMES centred frames (e.g. 5.119 s at 16 kHz with a 10 ms hop -> 512 frames).
PRESETS: dict[str, FrontendConfig] = {
    "vggsound": FrontendConfig(16000, 20.0, 10.0, 512, 5.119, test_views=2),
    "epic_sounds": FrontendConfig(24000, 10.0, 5.0, 416, 2.079, test_views=5),
    "epic_kitchens_100": FrontendConfig(24000, 10.0, 5.0, 416, 2.079, test_views=10),
    "speech_commands_v2": FrontendConfig(16000, 5.0, 2.0, 512, 1.023, test_views=1),
    "urbansound8k": FrontendConfig(16000, 20.0, 10.0, 416, 4.159, test_views=2),
    "nsynth": FrontendConfig(16000, 20.0, 10.0, 416, 4.159, test_views=1),
}


def get_preset(name: str, **overrides: Any) -> FrontendConfig:
    """Return the preset ``name`` (see :data:`PRESETS`), optionally with fields replaced.

    Raises:
        ValueError: an unknown preset; :class:`~arinext.utils.errors.ConfigError` (a ``ValueError``) for an
            override that is not a :class:`FrontendConfig` field.
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown front-end preset {name!r}; choose from {sorted(PRESETS)}")
    fields = sorted(FrontendConfig.__dataclass_fields__)
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(f"unknown front-end field(s) {unknown} for preset {name!r}; fields: {fields}")
    return replace(PRESETS[name], **overrides)


def _hz_to_mel_htk(f: torch.Tensor | float) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(f, dtype=torch.float64) / 700.0)


def _mel_to_hz_htk(m: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def htk_mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Triangular HTK-scale mel filters without area normalisation, shape ``(n_mels, n_fft//2+1)``.

    Same construction as ``librosa.filters.mel(htk=True, norm=None)``: ``n_mels + 2`` points
    equally spaced on the HTK mel scale, each filter rising from point ``i`` to ``i+1`` and
    falling to ``i+2``, evaluated at the FFT bin centre frequencies, peak value 1.
    """
    f_max = sample_rate / 2.0 if f_max is None else f_max
    if not 0.0 <= f_min < f_max <= sample_rate / 2.0:
        raise ConfigError(f"need 0 <= f_min < f_max <= sample_rate/2, got {f_min}, {f_max}")
    fft_freqs = torch.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)
    mel_pts = torch.linspace(
        float(_hz_to_mel_htk(f_min)), float(_hz_to_mel_htk(f_max)), n_mels + 2, dtype=torch.float64
    )
    hz_pts = _mel_to_hz_htk(mel_pts)
    fdiff = hz_pts[1:] - hz_pts[:-1]
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    return torch.clamp(torch.minimum(lower, upper), min=0.0)


class LogMel(nn.Module):
    """Waveform to log-mel spectrogram, batched, on the input's device.

    Args:
        config: a :class:`FrontendConfig`; ``LogMel.from_preset("vggsound")`` builds one by name.

    Shapes:
        input ``(N,)``, ``(B, N)`` or ``(B, 1, N)`` float waveform at ``config.sample_rate``;
        output ``(B, 1, T, n_mels)`` with ``T = 1 + N // hop_length``.

    Range: samples no larger than :attr:`safe_amplitude` in magnitude (about 1e34 for the presets) always
    give finite features (silence gives ``log(log_offset)``); near float32's limit (~1e38) the STFT overflows
    to inf and the mel product to NaN. arinext's decoders keep samples within +-64 (:mod:`arinext.audio.io`),
    far inside that range.

    Example:
        >>> fe = LogMel.from_preset("vggsound")
        >>> fe(torch.zeros(2, 81904)).shape
        torch.Size([2, 1, 512, 128])
    """

    def __init__(self, config: FrontendConfig | None = None) -> None:
        super().__init__()
        self.config = config or FrontendConfig()
        c = self.config
        if c.win_length > c.n_fft:
            raise ConfigError(f"window ({c.win_length} samples) is longer than n_fft ({c.n_fft})")
        if c.hop_length < 1:
            raise ConfigError(f"hop of {c.hop_ms} ms at {c.sample_rate} Hz is under one sample")
        self.register_buffer("window", torch.hann_window(c.win_length, periodic=True), persistent=False)
        fb = htk_mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, c.f_min, c.f_max)
        self.register_buffer("mel_fb", fb.T.contiguous().float(), persistent=False)
        # |STFT bin| <= max|x| * sum(window) and a mel band sums its bins with weights fb, so samples below
        # this bound give finite float32 features (10x margin under the float32 maximum for rounding)
        gain = float(self.window.sum()) * float(fb.sum(dim=1).max())
        self.safe_amplitude = 3e37 / max(gain, 1.0)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> LogMel:
        return cls(get_preset(name, **overrides))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() == 3:
            if waveform.shape[1] != 1:
                raise InputError(f"expected mono (B, 1, N) waveform, got shape {tuple(waveform.shape)}")
            waveform = waveform[:, 0]
        elif waveform.dim() == 1:
            waveform = waveform[None]
        elif waveform.dim() != 2:
            raise InputError(f"expected a (N,), (B, N) or (B, 1, N) waveform, got {tuple(waveform.shape)}")
        c = self.config
        dtype = waveform.dtype if waveform.dtype in (torch.float32, torch.float64) else torch.float32
        with torch.autocast(waveform.device.type, enabled=False):
            x = waveform.to(dtype)
            spec = torch.stft(
                x,
                n_fft=c.n_fft,
                hop_length=c.hop_length,
                win_length=c.win_length,
                window=self.window.to(dtype),
                center=True,
                pad_mode="constant",
                return_complex=True,
            ).abs()  # (B, n_fft//2+1, T), magnitude as in the original
            mel = torch.matmul(spec.transpose(1, 2), self.mel_fb.to(dtype))  # (B, T, n_mels)
            return torch.log(mel + c.log_offset).unsqueeze(1)

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"sample_rate={c.sample_rate}, n_fft={c.n_fft}, win_length={c.win_length}, "
            f"hop_length={c.hop_length}, n_mels={c.n_mels}"
        )
