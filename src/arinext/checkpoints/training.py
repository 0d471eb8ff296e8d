"""Training checkpoints (``RUN/last.pt``, ``RUN/best.pt``) that survive a crash.

A checkpoint is a ``torch.save`` of plain data only (tensors, numbers, strings, lists, dicts): model,
optimizer and schedule state, the epoch, the metric history, the config as a dict, the labels and
front end of the data it was trained on, and every random number generator state as tensors, so it
reads back with ``torch.load(..., weights_only=True)``. :func:`save_checkpoint` writes a temporary file
in the same directory, flushes it to disk and renames it over the target, so a process killed
mid-write leaves the previous file intact.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..models import create_model, metadata, set_metadata
from ..utils.errors import ArinextError, PathNotFoundError

__all__ = [
    "CheckpointError",
    "capture_rng_state",
    "load_checkpoint",
    "load_state_strict",
    "model_from_checkpoint",
    "read_torch_file",
    "restore_rng_state",
    "save_checkpoint",
]

_log = logging.getLogger(__name__)


class CheckpointError(ArinextError, ValueError):
    """A file or directory that is not a usable checkpoint; the message names it and the problem."""


def read_torch_file(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with errors naming the file; a pickle that needs code is refused."""
    if not path.is_file():
        raise PathNotFoundError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        blocked = [ln for ln in lines if "GLOBAL" in ln]
        if blocked:
            raise CheckpointError(f"{path}: refused to load: unpickling it would run code ({blocked[0]})") from exc
        detail = next((ln for ln in lines if ln.startswith("Unsupported")), lines[-1] if lines else "")
        raise CheckpointError(
            f"{path}: refused to load: not a weights-only PyTorch file (corrupt, another format, or a pickle "
            f"that would run code; torch: {detail})"
        ) from exc
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({first})") from exc


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU (and CUDA) generator states as tensors and plain values."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    nps = state["numpy"]
    keys = nps["keys"].numpy().astype(np.uint32)
    np.random.set_state((nps["name"], keys, nps["pos"], nps["has_gauss"], nps["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Atomically write ``state`` to ``path``: temp file in the same directory, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # make the rename itself durable
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    _log.debug("wrote checkpoint %s", path)
    return path


def _first(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor], source: object, what: str = "") -> None:
    """``model.load_state_dict(state, strict=True)`` with a one-line error naming ``source`` and the first
    missing, unexpected or mis-shaped keys (PyTorch's own message lists every key)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({_first(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_first(unexpected)})")
    if shapes:
        problems.append(f"{len(shapes)} of another shape ({_first(shapes, 2)})")
    if problems:
        target = what or type(model).__name__
        raise CheckpointError(f"{source}: its weights do not fit {target}: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)


def is_training_checkpoint(state: Any) -> bool:
    """Whether a loaded file's content is one of our training checkpoints."""
    return isinstance(state, dict) and "model" in state and "config" in state


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no pickled code).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        CheckpointError: if the file is not a readable training checkpoint.
    """
    path = Path(path)
    state = read_torch_file(path, map_location)
    if not is_training_checkpoint(state):
        raise CheckpointError(f"{path}: not an arinext training checkpoint (no 'model' and 'config' entries)")
    return state


def model_from_checkpoint(state: dict[str, Any], path: str | Path) -> nn.Module:
    """Rebuild the training-form model of a training checkpoint and load its weights strictly.

    The model is in eval mode and carries its :class:`~arinext.models.ModelInfo` (``labels``, ``frontend``,
    ``recipe``, ``epoch``, ``source="training"``, ``path``).
    """
    cfg = state["config"]
    name, args = cfg["model"], dict(cfg.get("model_args") or {})
    model = create_model(name, num_classes=state["num_classes"], **args)
    load_state_strict(model, state["model"], path, repr(name))
    info = replace(
        metadata(model), labels=state.get("labels"), frontend=state.get("frontend"), recipe=cfg,
        epoch=int(state.get("epoch", 0)), source="training", path=str(path),
    )  # fmt: skip
    return set_metadata(model, info).eval()
