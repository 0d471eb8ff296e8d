"""The HEAR 2021 common API (https://hearbenchmark.com/hear-api.html) on any arinext checkpoint.

::

    from arinext.apps import hear

    model = hear.load_model("runs/demo/train/pretrained")       # a torch.nn.Module
    model.sample_rate, model.scene_embedding_size, model.timestamp_embedding_size   # 16000, 128, 192
    scene = hear.get_scene_embeddings(audio, model)              # (n_sounds, 128) float32
    emb, ts = hear.get_timestamp_embeddings(audio, model)        # (n_sounds, n_ts, 192), (n_sounds, n_ts) ms

``audio`` is ``(n_sounds, n_samples)``, mono in [-1, 1] at ``model.sample_rate``, on the model's device;
outputs are float32 on the same device. Audio follows the input rule of :mod:`arinext.audio.io`: a sound
with NaN, infinite or larger than +-64 samples is refused (:class:`~arinext.audio.io.AudioDecodeError` naming
the sound), integer tensors are scaled by their full scale, and no embedding holds a NaN or an infinity.
The validator runs as ``hear-validator arinext.apps.hear --model CHECKPOINT`` (any checkpoint form: run
directory, ``best.pt``, save_pretrained directory, authors' ``.pyth`` with its front end).

The embeddings are those of :mod:`arinext.inference.embeddings`, from one forward pass of the fused model:
the scene embedding is the global average of the last feature map (the classifier head's input), the
timestamp embeddings the frequency-averaged outputs of the last two stages interpolated every 50 ms,
centred on ``0, 50, 100, ...`` ms up to the clip's duration (exact multiples of the hop: no drift). Long
audio runs in spectrogram blocks with context on both sides, so memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..audio.io import AudioDecodeError, check_peak, check_waveform
from ..checkpoints import load, model_frontend
from ..inference.embeddings import FeatureTaps, timestamp_grid_ms
from ..inference.results import check_finite_output
from ..layers.reparam import reparameterize_model
from ..utils.errors import ConfigError, InputError
from ..utils.modules import unwrap_model

__all__ = ["HEARModel", "get_scene_embeddings", "get_timestamp_embeddings", "load_model"]

#: Sample rates the HEAR validator accepts.
HEAR_RATES = (16000, 22050, 32000, 44100, 48000)


class HEARModel(nn.Module):
    """An arinext model with the attributes and methods of the HEAR API.

    Args:
        model: a registered model (training form or fused; it is fused with the full deploy fold).
        frontend: its front end (a :class:`~arinext.FrontendConfig`, preset name or dict); default the one
            stored with the model.
        hop_ms: spacing of timestamp embeddings (HEAR suggests at most 50 ms).
        stages: stages whose outputs make a timestamp embedding (ARIN models).
        batch_size: sounds per forward pass.
        block_seconds: audio longer than this runs block by block.
    """

    def __init__(
        self,
        model: nn.Module,
        frontend: Any = None,
        hop_ms: float = 50.0,
        stages: Sequence[int] = (-2, -1),
        batch_size: int = 16,
        block_seconds: float = 60.0,
    ) -> None:
        super().__init__()
        model = unwrap_model(model)
        fe = model_frontend(model, frontend)
        if fe.sample_rate not in HEAR_RATES:
            raise InputError(f"HEAR accepts sample rates {HEAR_RATES}; this model's front end runs at {fe.sample_rate} Hz")
        self.taps = FeatureTaps(reparameterize_model(model, fold="full"), fe, stages, block_seconds=block_seconds)
        self.sample_rate = int(fe.sample_rate)
        self.scene_embedding_size = int(self.taps.scene_width)
        self.timestamp_embedding_size = int(self.taps.timestamp_width)
        self.hop_ms = float(hop_ms)
        self.batch_size = int(batch_size)
        self.eval()

    def train(self, mode: bool = True) -> HEARModel:
        return super().train(False)  # embeddings are always computed in inference mode

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.scene_embeddings(audio)

    def _check(self, audio: torch.Tensor) -> torch.Tensor:
        if not isinstance(audio, torch.Tensor) or audio.dim() != 2:
            shape = tuple(audio.shape) if isinstance(audio, torch.Tensor) else type(audio).__name__
            raise InputError(f"audio must be a (n_sounds, n_samples) tensor, got {shape}")
        if audio.shape[1] == 0:
            raise AudioDecodeError("audio", "has no samples (zero-length audio)")
        if not audio.is_floating_point():  # integer PCM: scaled as the decoders scale it
            scaled = check_waveform(audio.detach().cpu().numpy(), "audio")
            return torch.from_numpy(scaled).to(audio.device)
        for i, peak in enumerate(audio.detach().abs().amax(dim=1).tolist()):
            check_peak(peak, f"sound {i}")
        return audio

    def _names(self, audio: torch.Tensor, first: int) -> list[str]:
        return [f"sound {first + j}" for j in range(audio.shape[0])]

    @torch.no_grad()
    def scene_embeddings(self, audio: torch.Tensor) -> torch.Tensor:
        """``(n_sounds, scene_embedding_size)`` float32 on ``audio``'s device."""
        audio = self._check(audio)
        out = []
        for i in range(0, audio.shape[0], self.batch_size):
            part = audio[i : i + self.batch_size]
            out.append(check_finite_output(self.taps.scene(part), "embeddings", self._names(part, i), self.taps.model))
        return torch.cat(out).float().to(audio.device)

    @torch.no_grad()
    def timestamp_embeddings(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``((n_sounds, n_ts, timestamp_embedding_size), (n_sounds, n_ts))``: float32 embeddings and their
        times in ms, on ``audio``'s device."""
        audio = self._check(audio)
        times = timestamp_grid_ms(audio.shape[1], self.sample_rate, self.hop_ms)
        out = []
        for i in range(0, audio.shape[0], self.batch_size):
            part = audio[i : i + self.batch_size]
            emb = self.taps.timestamps_from_columns(self.taps.columns(part, self.taps.stage_ids), times)
            out.append(check_finite_output(emb, "embeddings", self._names(part, i), self.taps.model))
        emb = torch.cat(out).float().to(audio.device)
        ts = times.float().to(audio.device)[None].expand(audio.shape[0], -1).contiguous()
        return emb, ts


def load_model(model_file_path: str = "", **kwargs: Any) -> HEARModel:
    """HEAR ``load_model``: any arinext checkpoint (see :func:`arinext.checkpoints.load`); keyword arguments
    go to :class:`HEARModel` (``hop_ms``, ``stages``, ``frontend``, ...)."""
    if not model_file_path:
        raise ConfigError(
            "arinext has no built-in weights: pass a checkpoint (hear-validator arinext.apps.hear --model PATH)"
        )
    return HEARModel(load(Path(model_file_path)), **kwargs)


def get_scene_embeddings(audio: torch.Tensor, model: HEARModel) -> torch.Tensor:
    """HEAR ``get_scene_embeddings``: ``(n_sounds, model.scene_embedding_size)`` float32."""
    return model.scene_embeddings(audio)


def get_timestamp_embeddings(audio: torch.Tensor, model: HEARModel) -> tuple[torch.Tensor, torch.Tensor]:
    """HEAR ``get_timestamp_embeddings``: embeddings ``(n_sounds, n_ts, D)`` and timestamps in ms ``(n_sounds, n_ts)``."""
    return model.timestamp_embeddings(audio)
