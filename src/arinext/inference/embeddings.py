"""Embeddings of a classifier's model: one vector per clip (scene) and one every ``hop`` ms (timestamps).

Both come from one forward pass over the log-mel spectrogram of the whole clip:

* **scene embedding**: the global average of the last feature map, i.e. exactly the vector the linear
  head reads (``model.forward_head(features, pre_logits=True)``): 128-d for the tiny model, 512-d for the
  paper's.
* **timestamp embeddings**: the outputs of the chosen stages (default the last two), each averaged over
  frequency and linearly interpolated in time onto a regular grid ``0, hop, 2 hop, ... <= duration``
  (default ``hop`` 50 ms), concatenated: 64 + 128 = 192-d (tiny), 256 + 512 = 768-d (paper).

Why interpolation: ARIN halves the time axis in the stem twice and in stages 2 to 4, so column ``j`` of
stage ``k`` is centred on input frame ``s_k * j`` with ``s_k`` = 4, 8, 16, 32 frames (every kernel is
symmetric and "same"-padded, and the STFT is centred): 40 / 80 / 160 / 320 ms at a 10 ms hop. Sliding
one-second windows every 50 ms would cost about 30 forward passes per second of audio; the interpolated
maps cost the same single pass as a scene embedding (BENCHMARKS.md, "Embeddings").

Other registered models (Slow-Fast) have no stage list: their final feature maps (one per pathway) are
the taps, with the time stride measured once on a probe input.

Audio longer than ``block_seconds`` runs block by block over the spectrogram, with ``context_seconds`` of
spectrogram on each side of a block (blocks start on the grid of the coarsest stride), so memory stays
bounded and the columns equal those of one pass up to float rounding. Audio shorter than the front end's
training crop is edge-padded to ``num_frames`` frames, as :class:`~arinext.inference.AudioClassifier` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from ..audio.frontend import FrontendConfig, LogMel
from ..data.sampling import fit_frames
from ..utils.errors import ConfigError, InputError

__all__ = ["FeatureTaps", "interpolate_columns", "timestamp_grid_ms"]


def timestamp_grid_ms(num_samples: int, sample_rate: int, hop_ms: float) -> torch.Tensor:
    """``0, hop, 2 hop, ...`` up to the duration, in ms (float64): exact multiples, so no drift."""
    if hop_ms <= 0:
        raise ConfigError(f"hop must be positive, got {hop_ms} ms")
    duration_ms = num_samples * 1000.0 / sample_rate
    count = int(math.floor(duration_ms / hop_ms + 1e-9)) + 1
    return torch.arange(count, dtype=torch.float64) * hop_ms


def interpolate_columns(columns: torch.Tensor, column_ms: float, times_ms: torch.Tensor) -> torch.Tensor:
    """Linear interpolation in time of ``columns`` ``(B, T', C)`` (column ``j`` centred on ``j * column_ms``)
    at ``times_ms`` ``(M,)``; times past the last centre take its value. Returns ``(B, M, C)``."""
    n = columns.shape[1]
    if n == 1:
        return columns.expand(-1, times_ms.shape[0], -1)
    u = (times_ms.to(columns.device, torch.float64) / column_ms).clamp(0, n - 1)
    i0 = u.floor().long().clamp(max=n - 2)
    w = (u - i0).to(columns.dtype)[None, :, None]
    return columns[:, i0] * (1 - w) + columns[:, i0 + 1] * w


def _is_staged(model: nn.Module) -> bool:
    """ARIN-style: ``stem`` then a sequence of ``stages`` whose first block carries the stride."""
    return isinstance(getattr(model, "stem", None), nn.Module) and isinstance(getattr(model, "stages", None), nn.Sequential)


def _stage_strides_and_widths(model: nn.Module) -> tuple[list[int], list[int]]:
    """Cumulative time stride (frames) and channel width of each stage output, read from the modules."""
    stem_stride = model.stem.conv.conv.stride[0] * model.stem.pool.stride  # type: ignore[union-attr]
    strides, widths, s = [], [], int(stem_stride)
    for stage in model.stages:  # type: ignore[union-attr]
        block = stage.blocks[0]
        s *= int(block.mixer.head.conv.stride[0])
        strides.append(s)
        widths.append(int(stage.blocks[-1].mlp.fc2.conv.out_channels))
    return strides, widths


class FeatureTaps(nn.Module):
    """Frequency-averaged feature maps ("columns") of a model, for scene and timestamp embeddings.

    Args:
        model: a registered model in eval mode (fused or not); its weights are shared, not copied.
        frontend: the front end the model was trained with.
        stages: stage outputs that make a timestamp embedding (0-based, negative from the end); ARIN only.
        block_seconds, context_seconds: spectrogram blocks for long audio (see the module docstring).
    """

    def __init__(
        self,
        model: nn.Module,
        frontend: FrontendConfig,
        stages: Sequence[int] = (-2, -1),
        block_seconds: float = 60.0,
        context_seconds: float = 10.24,
    ) -> None:
        super().__init__()
        self.model = model
        self.frontend_config = frontend
        self.logmel = LogMel(frontend)
        self.staged = _is_staged(model)
        if self.staged:
            self.strides, self.widths = _stage_strides_and_widths(model)
            n = len(self.strides)
            for s in stages:
                if not -n <= int(s) < n:
                    raise ConfigError(f"stage {s} out of range: the model has {n} stages")
            self.stage_ids = sorted({int(s) % n for s in stages})
            self.last = n - 1
        else:
            self.strides, self.widths = self._probe_maps()
            self.stage_ids = list(range(len(self.strides)))
            self.last = -1  # scene = the head's pooled features of every map
        grid = max(self.strides)
        fps = 1000.0 / frontend.hop_ms
        min_block = math.ceil(frontend.num_frames / grid) * grid  # short audio always fits one block
        self.block_frames = max(min_block, int(block_seconds * fps) // grid * grid)
        self.context_frames = int(math.ceil(context_seconds * fps / grid)) * grid
        self.eval()

    def _probe_maps(self) -> tuple[list[int], list[int]]:
        probe = 256
        p = next(self.model.parameters())
        x = torch.zeros(1, 1, probe, self.frontend_config.n_mels, device=p.device, dtype=p.dtype)
        with torch.no_grad():
            maps = self.model.forward_features(x)
        maps = [maps] if isinstance(maps, torch.Tensor) else list(maps)
        return [max(1, round(probe / m.shape[2])) for m in maps], [int(m.shape[1]) for m in maps]

    def train(self, mode: bool = True) -> FeatureTaps:
        return super().train(False)  # inference only

    @property
    def timestamp_width(self) -> int:
        return int(sum(self.widths[i] for i in self.stage_ids))

    @property
    def scene_width(self) -> int:
        return int(self.widths[self.last]) if self.staged else int(sum(self.widths))

    def column_ms(self, tap: int) -> float:
        """Time between two columns of ``tap`` in ms."""
        return self.strides[tap] * self.frontend_config.hop_ms

    # -- spectrogram and columns ----------------------------------------------------------------

    def spectrogram(self, audio: torch.Tensor, pad: bool = True) -> torch.Tensor:
        """Log-mel ``(B, 1, T, F)`` of waveforms ``(B, N)``; ``pad``: edge-padded to the crop's frames."""
        p = next(self.model.parameters())
        spec = self.logmel.to(p.device)(audio.to(p.device, torch.float32))
        return fit_frames(spec, max(spec.shape[2], self.frontend_config.num_frames)) if pad else spec

    def _columns_once(self, spec: torch.Tensor, taps: Sequence[int]) -> dict[int, torch.Tensor]:
        want = set(taps)
        out: dict[int, torch.Tensor] = {}
        if self.staged:
            x = self.model.stem(spec)  # type: ignore[operator]
            for i, stage in enumerate(self.model.stages):  # type: ignore[union-attr]
                x = stage(x)
                if i in want:
                    out[i] = x.mean(dim=3).transpose(1, 2)
                if i >= max(want):
                    break
            return out
        maps = self.model.forward_features(spec)
        maps = [maps] if isinstance(maps, torch.Tensor) else list(maps)
        return {i: m.mean(dim=3).transpose(1, 2) for i, m in enumerate(maps) if i in want}

    @torch.no_grad()
    def stream_columns(self, chunks: Iterable[torch.Tensor], taps: Sequence[int]) -> tuple[dict[int, torch.Tensor], int]:
        """Columns ``(B, T'_k, C_k)`` of each tap over audio given as consecutive chunks ``(B, n)`` of samples.

        Blocks of ``block_frames`` frames run with ``context_frames`` of audio on each side (block starts
        are multiples of the coarsest stride, so every tap's columns line up); only the current blocks'
        samples are held. Audio shorter than the front end's crop is edge-padded to ``num_frames`` frames
        and every column of the padded map is kept (as the classifier pools them). Returns the columns
        and the number of samples seen.
        """
        taps = sorted(set(taps))
        hop = self.frontend_config.hop_length
        block, ctx = self.block_frames * hop, self.context_frames * hop
        parts: dict[int, list[torch.Tensor]] = {k: [] for k in taps}
        buf: torch.Tensor | None = None
        buf_start = received = next_start = 0

        def run(start: int, final: bool) -> None:
            assert buf is not None
            lo, hi = max(0, start - ctx), min(received, start + block + ctx)
            spec = self.spectrogram(buf[:, lo - buf_start : hi - buf_start], pad=final and start == 0)
            cols = self._columns_once(spec, taps)
            total_frames = 1 + received // hop if final else None
            for k in taps:
                s = self.strides[k]
                a = (start - lo) // hop // s
                if final and start == 0 and spec.shape[2] > total_frames:  # padded short audio: keep all
                    parts[k].append(cols[k])
                    continue
                end_frame = start // hop + self.block_frames
                if total_frames is not None:
                    end_frame = min(end_frame, total_frames)
                b = a + math.ceil((end_frame - start // hop) / s)
                parts[k].append(cols[k][:, a:b])

        for chunk in chunks:
            if chunk.dim() != 2:
                raise InputError(f"audio must be (n_sounds, n_samples), got shape {tuple(chunk.shape)}")
            buf = chunk if buf is None else torch.cat([buf, chunk], dim=1)
            received += chunk.shape[1]
            while received >= next_start + block + ctx:
                run(next_start, final=False)
                next_start += block
                drop = max(0, next_start - ctx) - buf_start
                buf, buf_start = buf[:, drop:], buf_start + drop
        if buf is None or received == 0:
            raise InputError("audio has no samples")
        while next_start <= received:  # the block holding the last frame (centred on the last sample) too
            run(next_start, final=True)
            next_start += block
        return {k: torch.cat(p, dim=1) for k, p in parts.items()}, received

    def columns(self, audio: torch.Tensor, taps: Sequence[int]) -> dict[int, torch.Tensor]:
        """Columns ``(B, T'_k, C_k)`` of each tap for waveforms ``(B, N)`` (blocked if long)."""
        return self.stream_columns([audio], taps)[0]

    # -- embeddings -----------------------------------------------------------------------------

    @property
    def scene_taps(self) -> list[int]:
        """Taps whose mean over time makes the scene embedding (the maps the head pools)."""
        return [self.last] if self.staged else list(self.stage_ids)

    def scene_from_columns(self, cols: dict[int, torch.Tensor]) -> torch.Tensor:
        """Scene embeddings ``(B, D)`` from columns that include :attr:`scene_taps`."""
        return torch.cat([cols[k].mean(dim=1) for k in self.scene_taps], dim=1)

    def timestamps_from_columns(self, cols: dict[int, torch.Tensor], times_ms: torch.Tensor) -> torch.Tensor:
        """Timestamp embeddings ``(B, M, D)`` at ``times_ms`` ``(M,)`` from columns of the timestamp taps."""
        return torch.cat([interpolate_columns(cols[k], self.column_ms(k), times_ms) for k in self.stage_ids], dim=2)

    @torch.no_grad()
    def scene(self, audio: torch.Tensor) -> torch.Tensor:
        """Scene embeddings ``(B, D)`` of waveforms ``(B, N)``: the head's pooled input."""
        return self.scene_from_columns(self.columns(audio, self.scene_taps))

    @torch.no_grad()
    def timestamps(self, audio: torch.Tensor, hop_ms: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Timestamp embeddings ``(B, M, D)`` of waveforms ``(B, N)`` and their times in ms ``(M,)``."""
        times = timestamp_grid_ms(audio.shape[1], self.frontend_config.sample_rate, hop_ms)
        return self.timestamps_from_columns(self.columns(audio, self.stage_ids), times), times
