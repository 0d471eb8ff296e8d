"""Load the authors' checkpoints (``.pyth`` files of the original SlowFast-style code base).

The file is a ``torch.save`` dict with ``model_state``, ``optimizer_state``, ``epoch`` and ``cfg`` (a YAML
string). It is read with ``torch.load(..., weights_only=True)`` only, so a file crafted to run code when
unpickled is refused. Key names are mapped one by one (``s2.pathway0_res0.branch2.a_bn_medium.weight`` ->
``stages.0.blocks.0.mixer.time_mixer.branches.1.bn.weight``); a key that maps to nothing, or a model key
that receives nothing, is an error naming it.

Three layouts exist: training form (branch convs only), the original "merge mode" (branches *and* the fused
``a_reparam``/``b_reparam`` convs) and the inference form (fused convs only).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from torch import nn

from ..audio.frontend import FrontendConfig
from ..layers.reparam import ReparamMultiKernelDWConv, reparameterize_model
from ..models import create_model, metadata, set_metadata
from ..utils.errors import ConfigError
from .training import CheckpointError, load_state_strict, read_torch_file

__all__ = ["OfficialCheckpointError", "convert_original_state_dict", "load_official_checkpoint"]

log = logging.getLogger(__name__)

# Original name pattern -> arinext name; {i} is the i-th group, renamed by _NAMES (axis, branch, MLP conv).
_NAMES = {"a": "time_mixer", "b": "freq_mixer", "c": "fc1", "d": "fc2", "": "0", "_medium": "1", "_small": "2"}
_RULES = [
    (re.compile(pattern), template)
    for pattern, template in {
        r"^s1\.pathway0_stem\.(conv|bn)\.(\w+)$": "stem.conv.{0}.{1}",
        r"^branch1\.(\w+)$": "shortcut.conv.{0}",
        r"^branch1_bn\.(\w+)$": "shortcut.bn.{0}",
        r"^branch2\.a_head\.(\w+)$": "mixer.head.conv.{0}",
        r"^branch2\.a_head_bn\.(\w+)$": "mixer.head.bn.{0}",
        r"^branch2\.([ab])_reparam\.(\w+)$": "mixer.{0}.reparam_conv.{1}",
        r"^branch2\.([ab])(_medium|_small|)\.(\w+)$": "mixer.{0}.branches.{1}.conv.{2}",
        r"^branch2\.([ab])_bn(_medium|_small|)\.(\w+)$": "mixer.{0}.branches.{1}.bn.{2}",
        r"^branch2\.(c|d)\.(\w+)$": "mlp.{0}.conv.{1}",
        r"^branch2\.(c|d)_bn\.(\w+)$": "mlp.{0}.bn.{1}",
        r"^head\.projection\.(\w+)$": "head.fc.{0}",
        r"^head\.projection_(verb|noun)\.(\w+)$": "head.fc.{0}.{1}",
    }.items()
]
_BLOCK = re.compile(r"^s([2-9])\.pathway0_res(\d+)\.(.+)$")

Form = Literal["auto", "training", "fused"]


class OfficialCheckpointError(CheckpointError):
    """The file is not a usable authors' checkpoint; the message names the file and the problem."""


def _map_key(key: str) -> str | None:
    prefix, rest = "", key
    m = _BLOCK.match(key)
    if m:
        prefix, rest = f"stages.{int(m[1]) - 2}.blocks.{int(m[2])}.", m[3]
    for pattern, template in _RULES:
        hit = pattern.match(rest)
        if hit and (m is not None) == (not rest.startswith(("s1.", "head."))):
            return prefix + template.format(*(_NAMES.get(g, g) for g in hit.groups()))
    return None


def convert_original_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename every key of an original AudioRepInceptionNeXt state dict to arinext's names.

    Raises:
        ValueError: naming the first key that has no arinext counterpart.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = _map_key(key.removeprefix("module."))
        if new is None:
            raise CheckpointError(f"unexpected key in original checkpoint: {key!r}")
        out[new] = value
    return out


def _arch_from_state(sd: Mapping[str, torch.Tensor], cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Architecture kwargs read off the tensor shapes (widths, depths, kernels) and the cfg (strides)."""
    stem = sd["stem.conv.conv.weight"]
    stages = sorted({int(k.split(".")[1]) for k in sd if k.startswith("stages.")})
    depths = [1 + max(int(k.split(".")[3]) for k in sd if k.startswith(f"stages.{s}.blocks.")) for s in stages]
    dims = [sd[f"stages.{s}.blocks.0.mixer.head.conv.weight"].shape[0] for s in stages]
    hidden = sd["stages.0.blocks.0.mlp.fc1.conv.weight"].shape[0]

    def kernels(mixer: str, dim: int) -> tuple[int, ...]:
        prefix = f"stages.0.blocks.0.mixer.{mixer}."
        ks = [sd[k].shape[dim] for k in sorted(sd) if k.startswith(prefix + "branches.") and k.endswith("conv.weight")]
        if not ks:
            k = sd[prefix + "reparam_conv.weight"].shape[dim]
            ks = [k] + [s for s in (11, 3) if s < k]
        return tuple(sorted(ks, reverse=True))

    resnet = cfg.get("RESNET", {})

    def strides(key: str) -> tuple[int, ...]:
        vals = resnet.get(key)
        return tuple(int(v[0]) for v in vals) if vals else (1, 2, 2, 2)

    head = sd.get("head.fc.weight")
    if head is not None:
        num_classes: Any = head.shape[0]
    else:
        num_classes = {h: sd[f"head.fc.{h}.weight"].shape[0] for h in ("verb", "noun") if f"head.fc.{h}.weight" in sd}
    return dict(
        in_chans=stem.shape[1],
        num_classes=num_classes,
        depths=tuple(depths),
        dims=tuple(dims),
        mlp_ratio=hidden // dims[0],
        time_kernel_sizes=kernels("time_mixer", 2),
        freq_kernel_sizes=kernels("freq_mixer", 3),
        stem_kernel=tuple(stem.shape[2:]),
        time_strides=strides("TIME_STRIDES"),
        freq_strides=strides("FREQUENCY_STRIDES"),
        drop_rate=float(cfg.get("MODEL", {}).get("DROPOUT_RATE", 0.5)),
    )


def _frontend_from_cfg(cfg: Mapping[str, Any]) -> FrontendConfig | None:
    audio = cfg.get("AUDIO_DATA")
    if not audio:
        return None
    return FrontendConfig(
        sample_rate=int(audio.get("SAMPLING_RATE", 24000)),
        win_ms=float(audio.get("WINDOW_LENGTH", 10)),
        hop_ms=float(audio.get("HOP_LENGTH", 5)),
        num_frames=int(audio.get("NUM_FRAMES", 400)),
        clip_seconds=float(audio.get("CLIP_SECS", 1.999)),
        n_mels=int(audio.get("NUM_FREQUENCIES", 128)),
        test_views=int(cfg.get("TEST", {}).get("NUM_ENSEMBLE_VIEWS", 1)),
    )


def _read(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    ckpt = read_torch_file(path, map_location)
    if not isinstance(ckpt, dict) or "model_state" not in ckpt:
        raise OfficialCheckpointError(f"{path}: not an authors' checkpoint (no 'model_state' entry)")
    return ckpt


def load_official_checkpoint(
    path: str | Path, form: Form = "auto", map_location: str | torch.device = "cpu", ckpt: dict[str, Any] | None = None
) -> nn.Module:
    """Build the arinext model that matches an authors' ``.pyth`` checkpoint and load it strictly.

    Args:
        path: the ``.pyth`` file (training form, merge-mode or inference form).
        form: ``"training"`` builds the multi-branch model (needs branch weights), ``"fused"`` the
            paper's inference model, ``"auto"`` the training form when branch weights are present.
            For a merge-mode file loaded as training form, its fused convs are checked against the
            fusion of its branches; for one loaded as fused, its branch weights are checked likewise.
        map_location: device for the tensors.
        ckpt: the file's content when the caller has already read it.

    Returns:
        The model in eval mode; its :class:`~arinext.models.ModelInfo` holds ``frontend`` (from the cfg's
        ``AUDIO_DATA``), ``labels`` (``None``: the file has no class names), ``dataset`` and ``source``
        (``"official"``).
    """
    path = Path(path)
    if ckpt is None:
        ckpt = _read(path, map_location)
    cfg_text = ckpt.get("cfg")
    cfg = yaml.safe_load(cfg_text) if isinstance(cfg_text, str) else {}
    try:
        sd = convert_original_state_dict(ckpt["model_state"])
    except ValueError as exc:
        raise OfficialCheckpointError(f"{path}: {exc}") from exc
    has_branches = any(".branches." in k for k in sd)
    has_fused = any(".reparam_conv." in k for k in sd)
    if form == "auto":
        form = "training" if has_branches else "fused"
    if form not in ("training", "fused"):
        raise ConfigError(f"form must be 'auto', 'training' or 'fused', got {form!r}")
    if form == "training" and not has_branches:
        raise OfficialCheckpointError(f"{path}: holds only fused weights; load it with form='fused'")
    try:
        arch = _arch_from_state(sd, cfg or {})
    except KeyError as exc:
        raise OfficialCheckpointError(f"{path}: missing key {exc} needed to infer the architecture") from exc
    name = "audio_rep_inception_next"
    model = create_model(name, **arch)
    if form == "training":
        own = {k: v for k, v in sd.items() if ".reparam_conv." not in k}
        extra = {k: v for k, v in sd.items() if ".reparam_conv." in k}
    else:
        if not has_fused:
            model.load_state_dict(sd, strict=True)  # fuse the branches ourselves
            own, extra = None, {}
        else:
            own = {k: v for k, v in sd.items() if ".branches." not in k}
            extra = {k: v for k, v in sd.items() if ".branches." in k}
        reparameterize_model(model, inplace=True)
    if own is not None:
        load_state_strict(model, own, path, f"the {form} form of {name!r}")
    if extra and has_branches and has_fused:
        _check_merge_consistency(sd, path)
    fe = _frontend_from_cfg(cfg or {})
    info = replace(
        metadata(model), frontend=fe.to_dict() if fe else None, source="official", path=str(path),
        dataset=(cfg or {}).get("TRAIN", {}).get("DATASET"),
    )  # fmt: skip
    set_metadata(model, info)
    log.info("loaded authors' checkpoint %s as %s form", path, form)
    return model.eval()


def _check_merge_consistency(sd: Mapping[str, torch.Tensor], path: Path, atol: float = 1e-4) -> None:
    """In a merge-mode file, the stored fused convs must equal the fusion of the stored branches."""
    for key in [k for k in sd if k.endswith(".reparam_conv.weight")]:
        prefix = key[: -len("reparam_conv.weight")]
        branch_keys = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix + "branches.")}
        weight = sd[key]
        sizes = sorted({v.shape[2] * v.shape[3] for k, v in branch_keys.items() if k.endswith("conv.weight")}, reverse=True)
        axis = "time" if weight.shape[2] > 1 or weight.shape[3] == 1 else "freq"
        layer = ReparamMultiKernelDWConv(weight.shape[0], sizes, axis).to(weight.dtype)  # type: ignore[arg-type]
        layer.load_state_dict(branch_keys, strict=True)
        layer.eval()
        kernel, bias = layer.get_kernel_bias()
        if not (torch.allclose(kernel, weight, atol=atol) and torch.allclose(bias, sd[prefix + "reparam_conv.bias"], atol=atol)):
            raise OfficialCheckpointError(f"{path}: fused conv {key} does not match the fusion of its branches")
