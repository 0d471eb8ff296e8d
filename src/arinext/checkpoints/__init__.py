"""Checkpoints: one :func:`load` for every form a model is stored in.

Accepted by :func:`load` (and so by every ``arinext`` command and by ``AudioClassifier.from_pretrained``):

* a **run directory** written by ``arinext train`` (its ``best.pt``, else ``last.pt``);
* a **training checkpoint** file, ``RUN/best.pt`` or ``RUN/last.pt`` (:mod:`.training`);
* a **save_pretrained directory**: ``config.json`` + ``model.safetensors`` (:mod:`.pretrained`);
* an **authors' checkpoint**, the original code's ``.pyth`` file (:mod:`.official`).

Whatever the form, the model comes back in eval mode with its :class:`~arinext.models.ModelInfo`
(:func:`arinext.models.metadata`): ``name``, ``args``, ``fold``, ``labels``, ``frontend``, ``recipe`` (the
training recipe, if known), ``source`` (``"training"``, ``"pretrained"`` or ``"official"``) and ``path``.

A save_pretrained directory is a Hugging Face Hub model repository: :mod:`.card` writes its
``README.md``, :mod:`.hub` loads repo ids and uploads (``huggingface_hub`` needed only there), and
:mod:`.hub_mixin` offers the same through ``PyTorchModelHubMixin``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ..audio.frontend import PRESETS, FrontendConfig, get_preset
from ..models.info import metadata
from ..utils.errors import PathNotFoundError
from .card import CARD_NAME, render_model_card, write_model_card
from .hub import from_pretrained, push_to_hub
from .official import OfficialCheckpointError, convert_original_state_dict, load_official_checkpoint
from .pretrained import CONFIG_NAME, WEIGHTS_NAME, is_pretrained_dir, load_pretrained_dir, save_pretrained
from .training import (
    CheckpointError,
    is_training_checkpoint,
    load_checkpoint,
    model_from_checkpoint,
    read_torch_file,
    save_checkpoint,
)

__all__ = [
    "ACCEPTED",
    "CARD_NAME",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "CheckpointError",
    "OfficialCheckpointError",
    "convert_original_state_dict",
    "from_pretrained",
    "load",
    "load_checkpoint",
    "load_official_checkpoint",
    "load_pretrained",
    "model_frontend",
    "push_to_hub",
    "render_model_card",
    "resolve",
    "save_checkpoint",
    "save_pretrained",
    "write_model_card",
]

Kind = Literal["training", "pretrained", "official"]
Form = Literal["auto", "training", "fused"]

#: What :func:`load` accepts, for error messages.
ACCEPTED = (
    "a run directory (with best.pt or last.pt), RUN/best.pt or RUN/last.pt, "
    f"a save_pretrained directory ({CONFIG_NAME} + {WEIGHTS_NAME}) or an authors' .pyth file"
)


def _describe_dir(path: Path) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    if not names:
        return "an empty directory"
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    return f"a directory holding {shown}"


def resolve(path: str | Path) -> tuple[Kind, Path]:
    """Which form ``path`` is and which file or directory to read: ``(kind, path)``.

    A run directory resolves to its ``best.pt`` (else ``last.pt``). Files are told apart by content
    when :func:`load` reads them; here ``.pyth`` means the authors' format and any other file a
    training checkpoint.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: ``path`` is none of the accepted forms; says what was found.
    """
    path = Path(path)
    if not path.exists():
        raise PathNotFoundError(f"{path}: no such file or directory (expected {ACCEPTED})")
    if path.is_file():
        return ("official" if path.suffix == ".pyth" else "training"), path
    if is_pretrained_dir(path):
        return "pretrained", path
    for name in ("best.pt", "last.pt"):
        if (path / name).is_file():
            return "training", path / name
    if is_pretrained_dir(path / "pretrained"):
        return "pretrained", path / "pretrained"
    raise CheckpointError(f"{path}: {_describe_dir(path)}; expected {ACCEPTED}")


def load(path: str | Path, form: Form = "auto", map_location: str | torch.device = "cpu") -> nn.Module:
    """Load a model from any accepted checkpoint form (see the module docstring); strict, eval mode.

    Args:
        path: run directory, ``best.pt``/``last.pt``, save_pretrained directory or authors' ``.pyth``.
        form: for authors' checkpoints, ``"training"`` (multi-branch), ``"fused"`` or ``"auto"``;
            other forms load as stored.
        map_location: device for the tensors.
    """
    kind, target = resolve(path)
    if kind == "pretrained":
        return load_pretrained_dir(target, map_location)
    state = read_torch_file(target, map_location)
    if is_training_checkpoint(state):
        return model_from_checkpoint(state, target)
    if isinstance(state, dict) and "model_state" in state:
        return load_official_checkpoint(target, form=form, map_location=map_location, ckpt=state)
    raise CheckpointError(
        f"{target}: a PyTorch file that is neither an arinext training checkpoint nor an authors' checkpoint; "
        f"expected {ACCEPTED}"
    )


def load_pretrained(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Same as :func:`load` (kept under the name of arinext 0.1)."""
    return load(path, map_location=map_location)


def model_frontend(
    model: nn.Module, override: FrontendConfig | str | Mapping[str, Any] | None = None
) -> FrontendConfig:
    """The front end of ``model``: ``override`` (config, preset name or dict) or the one stored with it.

    Raises:
        CheckpointError: neither is given (an authors' checkpoint without an ``AUDIO_DATA`` section).
    """
    frontend: Any = override
    if frontend is None:
        frontend = metadata(model).frontend
    if frontend is None:
        source = metadata(model).path or "the model"
        raise CheckpointError(
            f"{source}: no front-end parameters are stored with it; pass the preset it was trained with "
            f"(--frontend PRESET on the command line, frontend=... in Python), one of {', '.join(sorted(PRESETS))}"
        )
    if isinstance(frontend, FrontendConfig):
        return frontend
    if isinstance(frontend, str):
        return get_preset(frontend)
    return FrontendConfig.from_dict(dict(frontend))
