"""arinext's own checkpoint format: a directory with ``config.json`` and ``model.safetensors``.

``config.json`` holds everything needed to rebuild and use the model without pickle::

    {"format_version": 1, "arinext_version": "...", "model": "audio_rep_inception_next",
     "model_args": {"num_classes": 10, ...}, "fold": null | "paper" | "full",
     "labels": [...] | {"verb": [...], "noun": [...]} | null, "frontend": {...FrontendConfig...} | null,
     "train_config": {...the training recipe...} | null,
     "card": {"metrics": {...}, "command": "...", "license": ..., "dataset": ..., "name": ...}}

``train_config`` (optional) is the recipe the model was trained with, so that ``arinext eval`` can find
its data again. ``card`` holds what the model card needs beyond the rest (:mod:`.card`), and
:func:`save_pretrained` writes that card as ``README.md``, so the directory is a Hugging Face Hub model
repository as it stands (:mod:`.hub` uploads it).

A fused model is rebuilt by building the training form, applying the same fold to it (which fixes the
module structure) and then loading the saved tensors strictly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..audio.frontend import FrontendConfig, get_preset
from ..layers.reparam import reparameterize_model
from ..models import ModelInfo, create_model, metadata, set_metadata
from ..utils.errors import InputError
from ..utils.modules import unwrap_model
from ..version import __version__
from ..utils.jsonout import undefined_as_null, write_json
from ..utils.provenance import current_command
from .card import CARD_NAME, write_model_card
from .training import CheckpointError, load_state_strict

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "is_pretrained_dir", "load_pretrained_dir", "save_pretrained"]

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1

Labels = Sequence[str] | Mapping[str, Sequence[str]]


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
                    raise InputError(f"head {k!r} has {n} classes but {len(out.get(k, []))} labels were given")
        return out
    out_list = [str(x) for x in labels]
    if isinstance(num_classes, int) and len(out_list) != num_classes:
        raise InputError(f"model has {num_classes} classes but {len(out_list)} labels were given")
    return out_list


def save_pretrained(
    model: nn.Module,
    directory: str | Path,
    labels: Labels | None = None,
    frontend: FrontendConfig | str | Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    command: str | None = None,
    license: str | None = None,  # noqa: A002  (the Hub's field name)
    dataset: str | None = None,
    name: str | None = None,
    card: bool = True,
) -> Path:
    """Write ``model`` (training form or fused) to ``directory`` as ``config.json`` + ``model.safetensors``
    and a model card ``README.md``.

    Args:
        model: a model built by :func:`arinext.create_model` (its :func:`~arinext.models.metadata` names the
            architecture and its arguments).
        labels: class names, or a dict of them for a multi-head model; checked against the head size.
        frontend: the front-end parameters the model expects: a :class:`~arinext.FrontendConfig`, the name of
            a preset in :data:`arinext.PRESETS` (``"speech_commands_v2"``) or a dict of its fields; default the
            one stored with ``model``.
        metrics: for the card: ``{"test top-1": 0.915}`` or ``{name: {"value", "type", "dataset", "split"}}``.
        command: the command that produced the model; default the running ``arinext ...`` command line.
        license, dataset, name: the card's licence (default ``unknown``), dataset and title.
        card: write ``README.md`` (never over a README arinext did not write).

    Labels, front end and card fields not given are taken from the model's metadata (a model loaded from a
    directory keeps its card when saved again, e.g. after fusing).
    """
    model = unwrap_model(model)
    info = metadata(model)
    arch = info.name
    if arch is None:
        raise InputError("model has no registered name: build it with arinext.create_model()")
    args = dict(info.args)
    num_classes = args.get("num_classes", getattr(getattr(model, "head", None), "num_classes", None))
    if labels is None:
        labels = info.labels
    if frontend is None:
        frontend = info.frontend
    if isinstance(frontend, str):
        frontend = get_preset(frontend)
    elif frontend is not None and not isinstance(frontend, FrontendConfig):
        frontend = FrontendConfig.from_dict(dict(frontend))  # unknown keys fail here, not when loading
    if isinstance(frontend, FrontendConfig):
        frontend = frontend.to_dict()
    config = {
        "format_version": FORMAT_VERSION,
        "arinext_version": __version__,
        "model": arch,
        "model_args": _jsonable(args),
        "fold": info.fold,
        "labels": _check_labels(labels, num_classes),
        "frontend": dict(frontend) if frontend is not None else None,
        "train_config": _jsonable(info.recipe),
    }
    old_card = dict(info.card)
    card_fields = {"metrics": metrics, "command": command or current_command(), "license": license,
                   "dataset": dataset, "name": name}  # fmt: skip
    merged = {k: v if v is not None else old_card.get(k) for k, v in card_fields.items()}
    config["card"] = undefined_as_null(_jsonable({k: v for k, v in merged.items() if v is not None}))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt", "model": arch})
    write_json(directory / CONFIG_NAME, config, indent=2)
    if card and write_model_card(directory, CARD_NAME, config) is None:
        log.warning("%s: kept the existing %s (not written by arinext)", directory, CARD_NAME)
    log.info("saved %s (%s) to %s", config["model"], config["fold"] or "training form", directory)
    return directory


def is_pretrained_dir(path: Path) -> bool:
    """Whether ``path`` is a directory written by :func:`save_pretrained`."""
    return path.is_dir() and (path / CONFIG_NAME).is_file() and (path / WEIGHTS_NAME).is_file()


def load_pretrained_dir(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Load a directory written by :func:`save_pretrained` (strictly); eval mode, its metadata set."""
    path = Path(path)
    cfg_path, weights_path = path / CONFIG_NAME, path / WEIGHTS_NAME
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{cfg_path}: invalid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise CheckpointError(f"{cfg_path}: expected a JSON object")  # noqa: TRY004
    for key in ("model", "model_args", "fold"):
        if key not in config:
            raise CheckpointError(f"{cfg_path}: missing key {key!r}")
    if config.get("format_version", 1) > FORMAT_VERSION:
        raise CheckpointError(f"{cfg_path}: format_version {config['format_version']} is newer than this arinext")
    model = create_model(config["model"], **config["model_args"])
    if config["fold"] is not None:
        reparameterize_model(model, inplace=True, fold=config["fold"])
    state = load_file(str(weights_path), device=str(map_location))
    fold = f"{config['fold']} fold of " if config["fold"] else ""
    load_state_strict(model, state, weights_path, f"the {fold}{config['model']!r} its config.json describes")
    set_metadata(model, ModelInfo.from_config(config, source="pretrained", path=str(path)))
    return model.eval()
