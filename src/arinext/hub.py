"""arinext's own checkpoint format: a directory with ``config.json`` and ``model.safetensors``.

``config.json`` holds everything needed to rebuild and use the model without pickle::

    {"format_version": 1, "arinext_version": "...", "model": "audio_rep_inception_next",
     "model_args": {"num_classes": 10, ...}, "fold": null | "paper" | "full",
     "labels": [...] | {"verb": [...], "noun": [...]} | null, "frontend": {...FrontendConfig...} | null}

A fused model is rebuilt by building the training form, applying the same fold to it (which fixes the
module structure) and then loading the saved tensors strictly.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from .audio.frontend import FrontendConfig
from .layers.reparam import ConvNorm, ReparamMultiKernelDWConv, reparameterize_model, unwrap_model
from .models import create_model
from .version import __version__

__all__ = ["save_pretrained", "load_pretrained", "model_fold", "CONFIG_NAME", "WEIGHTS_NAME"]

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1

Labels = Sequence[str] | Mapping[str, Sequence[str]]


def model_fold(model: nn.Module) -> str | None:
    """``None`` for a training-form model, ``"paper"`` or ``"full"`` for a fused one."""
    fold = None
    for m in model.modules():
        if isinstance(m, ReparamMultiKernelDWConv):
            if m.identity_folded:
                return "full"
            if m.reparam_conv is not None:
                fold = "paper"
        elif isinstance(m, ConvNorm) and m.bn is None:
            return "full"
    return fold


def _jsonable(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v


def _check_labels(labels: Labels | None, num_classes: Any) -> Any:
    if labels is None:
        return None
    if isinstance(labels, Mapping):
        out = {k: list(v) for k, v in labels.items()}
        if isinstance(num_classes, Mapping):
            for k, n in num_classes.items():
                if len(out.get(k, [])) != n:
                    raise ValueError(f"head {k!r} has {n} classes but {len(out.get(k, []))} labels were given")
        return out
    out_list = [str(x) for x in labels]
    if isinstance(num_classes, int) and len(out_list) != num_classes:
        raise ValueError(f"model has {num_classes} classes but {len(out_list)} labels were given")
    return out_list


def save_pretrained(
    model: nn.Module,
    directory: str | Path,
    labels: Labels | None = None,
    frontend: FrontendConfig | Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` (training form or fused) to ``directory`` as ``config.json`` + ``model.safetensors``.

    Args:
        model: a model built by :func:`arinext.create_model` (it carries ``model_name``/``model_args``).
        labels: class names, or a dict of them for a multi-head model; checked against the head size.
        frontend: the front-end parameters the model expects (a preset from :data:`arinext.PRESETS`).
    """
    model = unwrap_model(model)
    name = getattr(model, "model_name", None)
    if name is None:
        raise ValueError("model has no 'model_name': build it with arinext.create_model()")
    args = dict(getattr(model, "model_args", {}))
    pretrained = getattr(model, "pretrained_cfg", {}) or {}
    num_classes = args.get("num_classes", getattr(getattr(model, "head", None), "num_classes", None))
    if labels is None:
        labels = pretrained.get("labels")
    if frontend is None:
        frontend = pretrained.get("frontend")
    if isinstance(frontend, FrontendConfig):
        frontend = frontend.to_dict()
    config = {
        "format_version": FORMAT_VERSION,
        "arinext_version": __version__,
        "model": name,
        "model_args": _jsonable(args),
        "fold": model_fold(model),
        "labels": _check_labels(labels, num_classes),
        "frontend": dict(frontend) if frontend is not None else None,
    }
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt", "model": name})
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    log.info("saved %s (%s) to %s", name, config["fold"] or "training form", directory)
    return directory


def load_pretrained(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Load a model saved by :func:`save_pretrained`, or an authors' ``.pyth`` checkpoint.

    The returned model is in eval mode and has ``pretrained_cfg`` (the config dict: ``model``,
    ``model_args``, ``fold``, ``labels``, ``frontend``). Loading is strict.
    """
    path = Path(path)
    if path.is_file() and path.suffix in (".pyth", ".pth", ".pt"):
        from .models.convert import load_official_checkpoint

        return load_official_checkpoint(path, map_location=map_location)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: not a checkpoint directory (expected {CONFIG_NAME} + {WEIGHTS_NAME})")
    cfg_path, weights_path = path / CONFIG_NAME, path / WEIGHTS_NAME
    for p in (cfg_path, weights_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing")
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{cfg_path}: invalid JSON ({exc})") from exc
    for key in ("model", "model_args", "fold"):
        if key not in config:
            raise ValueError(f"{cfg_path}: missing key {key!r}")
    if config.get("format_version", 1) > FORMAT_VERSION:
        raise ValueError(f"{cfg_path}: format_version {config['format_version']} is newer than this arinext")
    model = create_model(config["model"], **config["model_args"])
    if config["fold"] is not None:
        reparameterize_model(model, inplace=True, fold=config["fold"])
    state = load_file(str(weights_path), device=str(map_location))
    model.load_state_dict(state, strict=True)
    model.pretrained_cfg = config  # type: ignore[assignment]
    return model.eval()
