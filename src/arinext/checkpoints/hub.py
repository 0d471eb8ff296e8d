"""The Hugging Face Hub: checkpoints by repo id, and uploads of checkpoint directories.

A :func:`~arinext.checkpoints.save_pretrained` directory is already a Hub model repository
(``config.json``, ``model.safetensors``, ``README.md`` model card, and ``frame_head.*`` when a frame-level
head was fitted). This module adds the network side, and only it needs ``huggingface_hub``
(``pip install 'arinext[hub]'``), imported when a function needs it:

* :func:`from_pretrained` takes a local path (read by :func:`arinext.checkpoints.load`, no
  ``huggingface_hub`` needed) or a repo id ``"owner/name"`` (downloaded with ``snapshot_download``, which
  honours ``HF_HUB_OFFLINE=1`` and the local cache);
* :func:`push_to_hub` uploads a directory, or saves a model to a temporary directory first, with
  ``HfApi.create_repo`` + ``HfApi.upload_folder`` (``api=`` takes any object with those two methods).

:class:`arinext.checkpoints.hub_mixin.ARINextModel` is the same through ``PyTorchModelHubMixin``.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..utils.errors import ConfigError, PathNotFoundError
from ..utils.optional import require
from .card import CARD_NAME, FRAME_HEAD_CONFIG
from .pretrained import CONFIG_NAME, WEIGHTS_NAME, is_pretrained_dir, save_pretrained

__all__ = ["HUB_FILES", "download", "from_pretrained", "is_repo_id", "push_to_hub"]

#: What a download fetches: the checkpoint, its card and a frame-level head if there is one.
HUB_FILES = [CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, FRAME_HEAD_CONFIG, "frame_head.safetensors"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")


def is_repo_id(path_or_repo_id: str | os.PathLike) -> bool:
    """A Hub repo id (``owner/name``) that is not an existing local path."""
    text = os.fspath(path_or_repo_id)
    return not Path(text).exists() and bool(_REPO_ID.match(text)) and not text.startswith((".", "/"))


def download(
    repo_id: str,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> Path:
    """Fetch a checkpoint repository (only :data:`HUB_FILES`) into the Hub cache; returns its local folder."""
    hub = require("huggingface_hub", "hub", f"loading {repo_id!r} from the Hugging Face Hub")
    folder = hub.snapshot_download(
        repo_id=repo_id,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        token=token,
        allow_patterns=HUB_FILES,
    )
    return Path(folder)


def from_pretrained(
    path_or_repo_id: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> nn.Module:
    """A model from a local checkpoint (any form :func:`arinext.checkpoints.load` takes) or a Hub repo id."""
    from . import load  # the package's loader (this module is imported by it)

    if is_repo_id(path_or_repo_id):
        path: Path = download(str(path_or_repo_id), revision, cache_dir, local_files_only, token)
    else:
        path = Path(path_or_repo_id)
    return load(path, map_location=map_location)


def push_to_hub(
    model_or_dir: nn.Module | str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload arinext model",
    revision: str | None = None,
    api: Any = None,
    **save_kwargs: Any,
) -> Any:
    """Upload a save_pretrained directory, or a model (saved to a temporary directory with ``save_kwargs``).

    Returns what ``api.upload_folder`` returns (the commit information of ``huggingface_hub``).
    """
    if api is None:
        hub = require("huggingface_hub", "hub", "uploading to the Hugging Face Hub")
        api = hub.HfApi(token=token)
    url = api.create_repo(repo_id=repo_id, private=private, exist_ok=True)
    repo_id = getattr(url, "repo_id", None) or repo_id
    if isinstance(model_or_dir, nn.Module):
        with tempfile.TemporaryDirectory() as tmp:
            folder = save_pretrained(model_or_dir, Path(tmp) / "model", **save_kwargs)
            return api.upload_folder(
                repo_id=repo_id, repo_type="model", folder_path=str(folder), commit_message=commit_message,
                revision=revision,
            )  # fmt: skip
    folder = Path(model_or_dir)
    if not is_pretrained_dir(folder):
        raise PathNotFoundError(f"{folder}: not a save_pretrained directory ({CONFIG_NAME} + {WEIGHTS_NAME})")
    if save_kwargs:
        raise ConfigError(f"{sorted(save_kwargs)} apply when saving a model, not when uploading a directory")
    return api.upload_folder(
        repo_id=repo_id, repo_type="model", folder_path=str(folder), commit_message=commit_message,
        revision=revision, allow_patterns=HUB_FILES,
    )  # fmt: skip
