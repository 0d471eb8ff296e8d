"""A frame-level head: per-timestamp class scores (with a background class) from timestamp embeddings.

A clip classifier trained on one-second crops has no "nothing here" class and its head was never asked
*when* a word occurs, so its per-column scores find short events poorly (README, "Frame-level scores and
events"). A :class:`FrameHead` is a small classifier on the model's timestamp embeddings (frozen
backbone): the embeddings at ``t - context*hop ... t + context*hop`` are concatenated, standardised and
mapped by a linear layer (or one hidden layer) to the model's classes plus ``_background_``. It is fitted
by :func:`arinext.apps.event_detection.fit_frame_head` on generated mixtures (``arinext data events``) and stored
next to the checkpoint it was fitted on::

    my-model/frame_head.json          labels, stages, hop, context, model fingerprint, decoding parameters
                                      chosen on validation mixtures, the metrics and the fitting command
    my-model/frame_head.safetensors   weights (standardisation folded in as buffers)

The fingerprint (SHA-256 of the backbone's weights as loaded) makes a head refuse a model it was not
fitted on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..checkpoints import CheckpointError
from ..checkpoints.card import FRAME_HEAD_CONFIG
from ..utils.errors import ConfigError, InputError, PathNotFoundError
from ..utils.jsonout import undefined_as_null, write_json
from .event_decoding import DecodeParams

__all__ = ["BACKGROUND", "FRAME_HEAD_CONFIG", "FRAME_HEAD_WEIGHTS", "FrameHead", "find_frame_head", "weights_fingerprint"]

FRAME_HEAD_WEIGHTS = "frame_head.safetensors"
BACKGROUND = "_background_"
FORMAT_VERSION = 1


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 (hex, 16 digits) of a model's state dict: names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()[:16]


def stack_context(emb: torch.Tensor, context: int) -> torch.Tensor:
    """``(B, M, D) -> (B, M, D * (2 context + 1))``: each row with its ``context`` neighbours on both sides
    (edge rows repeated), oldest first."""
    if context == 0:
        return emb
    m = emb.shape[1]
    idx = torch.arange(m, device=emb.device)
    shifted = [emb[:, (idx + d).clamp(0, m - 1)] for d in range(-context, context + 1)]
    return torch.cat(shifted, dim=2)


class FrameHead(nn.Module):
    """Class scores per timestamp from timestamp embeddings.

    Args:
        labels: the event classes, in the classifier's label order (the background class is added).
        in_features: width of one timestamp embedding.
        stages: the model stages the embeddings come from (as :class:`~arinext.inference.embeddings.FeatureTaps` takes).
        hop_ms: spacing of the embeddings the head was fitted on.
        context: neighbours on each side concatenated to each embedding.
        hidden: width of a hidden ReLU layer; 0 = a linear head.
    """

    def __init__(
        self,
        labels: Sequence[str],
        in_features: int,
        stages: Sequence[int] = (-2, -1),
        hop_ms: float = 50.0,
        context: int = 0,
        hidden: int = 0,
    ) -> None:
        super().__init__()
        self.labels = [str(x) for x in labels]
        if BACKGROUND in self.labels:
            raise InputError(f"{BACKGROUND!r} is reserved for the background class")
        if context < 0 or hidden < 0 or in_features < 1:
            raise ConfigError("need in_features >= 1, context >= 0 and hidden >= 0")
        self.in_features, self.stages, self.hop_ms = int(in_features), [int(s) for s in stages], float(hop_ms)
        self.context, self.hidden = int(context), int(hidden)
        width = self.in_features * (2 * self.context + 1)
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))
        out = len(self.labels) + 1
        self.net: nn.Module = (
            nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, out)) if hidden else nn.Linear(width, out)
        )
        self.model_fingerprint: str | None = None
        self.decode = DecodeParams(mode="activity")
        self.info: dict[str, Any] = {}

    @property
    def output_labels(self) -> list[str]:
        return [*self.labels, BACKGROUND]

    def inputs(self, emb: torch.Tensor) -> torch.Tensor:
        """Standardised, context-stacked inputs ``(B, M, width)`` of embeddings ``(B, M, in_features)``."""
        if emb.shape[-1] != self.in_features:
            raise InputError(f"frame head expects {self.in_features}-d embeddings, got {emb.shape[-1]}")
        return (stack_context(emb, self.context) - self.mean) / self.std

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, M, len(labels) + 1)``, the background class last."""
        return self.net(self.inputs(emb))

    @torch.no_grad()
    def scores(self, emb: torch.Tensor) -> torch.Tensor:
        """Class probabilities without the background column, ``(B, M, len(labels))``; their sum is the
        probability that some event is active."""
        return torch.softmax(self.forward(emb), dim=-1)[..., :-1]

    # -- storage --------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "labels": self.labels,
            "background": BACKGROUND,
            "in_features": self.in_features,
            "stages": self.stages,
            "hop_ms": self.hop_ms,
            "context": self.context,
            "hidden": self.hidden,
            "model_fingerprint": self.model_fingerprint,
            "decode": self.decode.to_dict(),
            "info": self.info,
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``frame_head.json`` and ``frame_head.safetensors`` into ``directory``; returns the JSON path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(directory / FRAME_HEAD_WEIGHTS), metadata={"format": "pt"})
        path = directory / FRAME_HEAD_CONFIG
        write_json(path, undefined_as_null(_jsonable(self.config())), indent=2)
        return path

    @classmethod
    def load(cls, directory: str | Path) -> FrameHead:
        """Read a head written by :meth:`save` (strictly)."""
        directory = Path(directory)
        cfg_path = directory / FRAME_HEAD_CONFIG
        if not cfg_path.is_file():
            raise PathNotFoundError(f"{cfg_path}: no frame head there (fit one with `arinext events fit`)")
        try:
            cfg = json.loads(cfg_path.read_text())
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{cfg_path}: invalid JSON ({exc})") from exc
        missing = [k for k in ("labels", "in_features", "stages", "hop_ms", "context") if k not in cfg]
        if missing:
            raise CheckpointError(f"{cfg_path}: missing keys {missing}")
        if cfg.get("format_version", 1) > FORMAT_VERSION:
            raise CheckpointError(f"{cfg_path}: format_version {cfg['format_version']} is newer than this arinext")
        head = cls(cfg["labels"], cfg["in_features"], cfg["stages"], cfg["hop_ms"], cfg["context"], cfg.get("hidden", 0))
        weights = directory / FRAME_HEAD_WEIGHTS
        if not weights.is_file():
            raise PathNotFoundError(f"{weights}: missing (the weights of {cfg_path})")
        state = load_file(str(weights))
        try:
            head.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{weights}: does not match {cfg_path} ({exc})") from exc
        head.model_fingerprint = cfg.get("model_fingerprint")
        head.decode = DecodeParams.from_dict(cfg.get("decode") or {"mode": "activity"})
        head.info = dict(cfg.get("info") or {})
        return head.eval()

    def check_model(self, fingerprint: str, labels: Sequence[str], where: str = "frame head") -> list[int]:
        """Refuse a model the head was not fitted on; returns the head's class order in ``labels`` indices."""
        if self.model_fingerprint is not None and fingerprint != self.model_fingerprint:
            raise CheckpointError(
                f"{where} was fitted on a model with weights {self.model_fingerprint}, not on this one ({fingerprint})"
            )
        if sorted(self.labels) != sorted(labels):
            raise CheckpointError(f"{where} has classes {self.labels}, the model {list(labels)}")
        return [self.labels.index(x) for x in labels]


def find_frame_head(path: str | Path) -> Path | None:
    """The directory holding a frame head for checkpoint ``path``: ``path`` itself or ``path/pretrained``."""
    path = Path(path)
    for d in (path, path / "pretrained"):
        if (d / FRAME_HEAD_CONFIG).is_file():
            return d
    return None


def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v
