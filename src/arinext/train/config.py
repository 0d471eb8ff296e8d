"""Experiment configuration: small dataclasses loaded from one YAML recipe, with ``--set`` overrides.

A recipe is a flat YAML file (see ``arinext/configs/*.yaml``)::

    model: audio_rep_inception_next
    model_args: {drop_rate: 0.5}
    data: {dataset: vggsound, root: /data/vggsound, batch_size: 32}
    optim: {lr: 0.01, epochs: 50, lr_steps: [30, 40], lr_factors: [0.1, 0.01]}
    precise_bn_batches: 200

Unknown keys are an error. The number of classes is never part of a recipe: it comes from the
dataset's label map (``Manifest.num_classes``). The config object stops at the entry layer: the CLI
and :mod:`arinext.train.trainer` unpack it into plain arguments.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..audio.waveaug import check_augment_spec
from ..data.holdout import holdout_from_dict
from ..data.records import SUBSETS
from ..models import is_model, list_models
from ..utils.cpu import usable_cpus
from ..utils.errors import ConfigError, PathNotFoundError

__all__ = [
    "DataConfig",
    "OptimConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "default_num_workers",
    "list_recipes",
    "load_config",
]

_BAD_CLIP_POLICIES = ("error", "skip")
_FEATURE_PLACES = ("workers", "device")
# Free-form mappings: their sub-keys are checked by the component that receives them.
_OPEN_DICTS = {"model_args", "dataset_args", "frontend", "spec_augment_args", "augment", "holdout"}


@dataclass
class DataConfig:
    """Where the clips come from and how they are batched.

    Args:
        dataset: a name from ``arinext.data.list_datasets()`` (``"vggsound"``, ``"folder"``, ``"csv"``, ...;
            ``"synthetic"``: generated band-limited noise spectrograms for smoke tests and benchmarks, no root).
        root: dataset root directory (or the CSV file for ``"csv"``).
        preset: front-end preset from ``arinext.PRESETS``; ``None`` takes the dataset's default.
        frontend: fields of the preset to replace, e.g. ``{num_frames: 400, clip_seconds: 1.999}``.
        dataset_args: extra keyword arguments of ``get_manifest`` (e.g. CSV column names).
        folds: cross-validation folds (UrbanSound8K): one full run per fold, passed as ``fold=k``.
        train_subset, val_subset, test_subset: ``"training" | "validation" | "testing"``.
        batch_size: total batch over all processes (``TRAIN.BATCH_SIZE``); each of ``N`` processes takes ``1/N``.
        eval_batch_size: batch size for evaluation; ``None`` uses ``batch_size``.
        num_workers: data-loading worker processes per training process; ``None`` picks one from the
            CPU count (:func:`default_num_workers`).
        spec_augment: SpecAugment on training crops (the paper's recipes: on).
        spec_augment_args: keyword arguments of :class:`arinext.audio.augment.SpecAugment` (mask widths
            and counts); empty means the paper's values (W=5, F=27, T=25, two masks each).
        background_noise: folder of noise recordings mixed into training clips at a random SNR
            (``"auto"``: the dataset's ``_background_noise_`` folder); ``None`` turns it off.
        noise_snr_db: ``[low, high]`` SNR range in dB for the background noise.
        noise_p: probability that a training clip gets background noise.
        augment: waveform augmentation of training clips, ``{name: options | true | false}`` with names
            ``speed pitch shift reverb gain eq bandlimit clipping mp3`` (:mod:`arinext.audio.waveaug`;
            the libraries come with ``pip install 'arinext[augment]'``); empty: none.
        holdout: leave one source out (:mod:`arinext.data.holdout`): ``{column: engine, values: [flite],
            closure: [speaker]}`` trains and validates without the clips whose metadata ``column`` is one
            of ``values`` (and without every clip sharing a ``closure`` value with them); evaluation then
            reports the in-source test clips and the held-out source side by side. Empty: off.
        test_views: uniformly spaced crops per test clip; ``None`` takes the preset's ``test_views``.
        on_bad_clip: ``"skip"`` drops undecodable clips (counted per epoch in ``log.csv``, one warning per
            epoch with examples), ``"error"`` raises.
        max_bad_fraction: training stops when more than this fraction of the training or validation clips
            are bad: checked before the first epoch (files and HDF5 datasets that do not exist, found
            without decoding anything) and after every epoch (clips that could not be read).
        cache_dir: feature cache directory passed to the dataset, or ``None``.
        features: where the log-mel features and SpecAugment are computed: ``"workers"`` (the loader's worker
            processes, one clip at a time) or ``"device"`` (the training device, a batch at a time: the workers
            only decode and crop, so fewer CPU cores feed a GPU; the same features, see
            :mod:`arinext.data.batch_features`). Waveform augmentation and background noise stay in the workers.
        feature_cache_gb: most GiB of features written under ``cache_dir``; beyond it clips are computed
            every epoch, not cached. The trainer logs an estimate of the full cache's size before filling it.
        cache_waveforms: keep the decoded audio of the training and validation files in shared memory, so
            that each file is decoded once rather than every epoch (the same samples; see
            :mod:`arinext.data.waveforms`), filled as the clips are first read: ``null`` (automatic) when
            it is estimated to fit ``waveform_cache_mb``, ``true`` up to that size, ``false`` never.
        waveform_cache_mb: most MiB of decoded audio the cache holds (mono float32 at the files' rates),
            for the training process and its loader workers together.
    """

    dataset: str = "folder"
    root: str = ""
    preset: str | None = None
    frontend: dict[str, Any] = field(default_factory=dict)
    dataset_args: dict[str, Any] = field(default_factory=dict)
    folds: list[int] = field(default_factory=list)
    train_subset: str = "training"
    val_subset: str = "validation"
    test_subset: str = "testing"
    batch_size: int = 32
    eval_batch_size: int | None = None
    num_workers: int | None = None
    spec_augment: bool = True
    spec_augment_args: dict[str, Any] = field(default_factory=dict)
    background_noise: str | None = None
    noise_snr_db: list[float] = field(default_factory=lambda: [5.0, 20.0])
    noise_p: float = 0.8
    augment: dict[str, Any] = field(default_factory=dict)
    holdout: dict[str, Any] = field(default_factory=dict)
    test_views: int | None = None
    on_bad_clip: str = "skip"
    max_bad_fraction: float = 0.05
    cache_dir: str | None = None
    features: str = "workers"
    feature_cache_gb: float = 50.0
    cache_waveforms: bool | None = None
    waveform_cache_mb: float = 1024.0


@dataclass
class OptimConfig:
    """SGD with step-wise relative learning rates (``SOLVER.LR_POLICY: steps_with_relative_lrs``).

    Args:
        lr: base learning rate (``SOLVER.BASE_LR``).
        momentum, nesterov: SGD momentum (``SOLVER.MOMENTUM``, ``SOLVER.NESTEROV``).
        weight_decay: L2 on conv/linear weights; never on BatchNorm parameters or biases.
        epochs: total epochs (``SOLVER.MAX_EPOCH``).
        lr_steps: epochs at which the learning rate changes (``SOLVER.STEPS`` without the leading 0).
        lr_factors: learning rate from each step on, relative to ``lr`` (``SOLVER.LRS`` without the leading 1).
        freeze_bn: keep every BatchNorm except the stem's in eval mode with frozen affine
            parameters (``BN.FREEZE``; the paper's fine-tuning recipes), when fine-tuning (``init_from``
            set); ``None`` does the same. From scratch BatchNorm is always trained (see :meth:`TrainConfig.freezes_bn`).
    """

    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    epochs: int = 50
    lr_steps: list[int] = field(default_factory=lambda: [30, 40])
    lr_factors: list[float] = field(default_factory=lambda: [0.1, 0.01])
    freeze_bn: bool | None = False

    def lr_at(self, epoch: int) -> float:
        """Learning rate of the 0-based ``epoch``."""
        factor = 1.0
        for step, f in zip(self.lr_steps, self.lr_factors):
            if epoch >= step:
                factor = f
        return self.lr * factor


@dataclass
class TrainConfig:
    """One experiment.

    Args:
        model: a name from ``arinext.list_models()``.
        model_args: constructor keyword arguments (``num_classes`` excluded: it comes from the dataset).
        data: :class:`DataConfig`.
        optim: :class:`OptimConfig`.
        init_from: weights to fine-tune from: an ``arinext.save_pretrained`` directory, the authors'
            ``.pyth`` checkpoint, or a training checkpoint of ours (``best.pt``). The head is re-initialised.
        precise_bn_batches: recompute BatchNorm statistics on this many training batches before each
            evaluation (``BN.NUM_BATCHES_PRECISE``; 0 turns it off).
        amp: bfloat16 autocast where the device supports it (opt-in). Not exact: gradients differ from
            float32 by about 3% (relative L2). On the CPU it is much faster for the paper-size model at
            512x128 and much slower for the demo's tiny model at 101x64 (BENCHMARKS.md, "Training speed").
        channels_last: keep weights and activations in channels-last (NHWC) memory format; the same
            maths. ``null`` (default): on the CPU only. On the CPU it makes training steps faster, and the
            frequency-axis depthwise branches then also run as ``k x 1`` convs on frequency-major memory
            (``arinext.layers.set_branch_path``); on a GPU cuDNN's depthwise kernels are faster in NCHW
            (2.0x for the paper's model on an H200; BENCHMARKS.md, "Training on a GPU"), where the trainer
            also turns on ``torch.backends.cudnn.benchmark`` (the training crops have one shape).
        seed: seed of every random number generator.
        eval_every: validate every this many epochs (and always after the last one).
        select_metric: validation metric that picks ``best.pt`` (higher is better).
        export_pretrained: write the best model with ``arinext.save_pretrained`` at the end.
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
        dist_backend: process group backend under ``torchrun``: ``"auto"`` (NCCL on GPU, gloo on CPU),
            ``"nccl"`` or ``"gloo"`` (which also runs on GPUs, e.g. several processes sharing one).
        checkpoint_minutes: also write ``last.pt`` inside an epoch, every this many minutes of it (0: off);
            ``--resume`` continues from that step, with the batches an uninterrupted run would see.
        checkpoint_steps: also write ``last.pt`` inside an epoch every this many steps (0: off).
        log_every_seconds: without a progress bar (stderr is not a terminal), log a line with the step,
            clips/s and loss this often during an epoch (0: never).
    """

    model: str = "audio_rep_inception_next"
    model_args: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    init_from: str | None = None
    precise_bn_batches: int = 0
    amp: bool = False
    channels_last: bool | None = None
    seed: int = 0
    eval_every: int = 1
    select_metric: str = "top1"
    export_pretrained: bool = True
    device: str = "auto"
    dist_backend: str = "auto"
    checkpoint_minutes: float = 30.0
    checkpoint_steps: int = 0
    log_every_seconds: float = 60.0

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON/``torch.load(weights_only=True)`` safe)."""
        return dataclasses.asdict(self)

    def freezes_bn(self) -> bool:
        """Whether this run freezes BatchNorm: ``optim.freeze_bn`` when fine-tuning (``init_from`` set; ``None``
        freezes then), never from scratch, where the statistics of an untrained model must be learnt."""
        return bool(self.init_from) and self.optim.freeze_bn is not False

    def with_absolute_paths(self) -> TrainConfig:
        """A copy whose paths (``data.root``, ``init_from``, noise and cache folders) are absolute, so that the
        config stored with a run means the same from any working directory."""
        out = copy.deepcopy(self)

        def absolute(p: str | None) -> str | None:
            return str(Path(p).expanduser().resolve()) if p else p

        out.data.root = absolute(out.data.root) or ""
        out.init_from = absolute(out.init_from)
        out.data.cache_dir = absolute(out.data.cache_dir)
        if out.data.background_noise not in (None, "auto"):
            out.data.background_noise = absolute(out.data.background_noise)
        return out

    def validate(self) -> TrainConfig:
        """Raise ``ValueError`` naming the first inconsistent field; return ``self``."""
        d, o = self.data, self.optim
        if not is_model(self.model):
            raise ConfigError(f"unknown model {self.model!r}; registered models: {', '.join(list_models())}")
        if "num_classes" in self.model_args:
            raise ConfigError("model_args.num_classes is not allowed: the number of classes comes from the dataset")
        for name in ("train_subset", "val_subset", "test_subset"):
            if getattr(d, name) not in SUBSETS:
                raise ConfigError(f"data.{name} must be one of {SUBSETS}, got {getattr(d, name)!r}")
        _check_features(d)
        if d.on_bad_clip not in _BAD_CLIP_POLICIES:
            raise ConfigError(f"data.on_bad_clip must be one of {_BAD_CLIP_POLICIES}, got {d.on_bad_clip!r}")
        if d.batch_size < 1 or (d.eval_batch_size is not None and d.eval_batch_size < 1):
            raise ConfigError("data.batch_size and data.eval_batch_size must be positive")
        if d.num_workers is not None and d.num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0 (or null for automatic), got {d.num_workers}")
        check_augment_spec(d.augment)
        if d.holdout:
            holdout_from_dict(d.holdout)
        if d.waveform_cache_mb < 0 or d.feature_cache_gb < 0:
            raise ConfigError(
                f"data.waveform_cache_mb and data.feature_cache_gb must be >= 0, got {d.waveform_cache_mb} and "
                f"{d.feature_cache_gb}"
            )
        if not 0 <= d.max_bad_fraction <= 1:
            raise ConfigError(f"data.max_bad_fraction must be in [0, 1], got {d.max_bad_fraction}")
        if self.checkpoint_minutes < 0 or self.checkpoint_steps < 0 or self.log_every_seconds < 0:
            raise ConfigError("checkpoint_minutes, checkpoint_steps and log_every_seconds must be >= 0 (0: off)")
        if d.test_views is not None and d.test_views < 1:
            raise ConfigError(f"data.test_views must be >= 1, got {d.test_views}")
        if o.epochs < 1:
            raise ConfigError(f"optim.epochs must be >= 1, got {o.epochs}")
        if len(o.lr_steps) != len(o.lr_factors):
            raise ConfigError(f"optim.lr_steps {o.lr_steps} and optim.lr_factors {o.lr_factors} differ in length")
        if list(o.lr_steps) != sorted(o.lr_steps):
            raise ConfigError(f"optim.lr_steps must be increasing, got {o.lr_steps}")
        if self.precise_bn_batches < 0 or self.eval_every < 1:
            raise ConfigError("precise_bn_batches must be >= 0 and eval_every >= 1")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.dist_backend not in ("auto", "nccl", "gloo"):
            raise ConfigError(f"dist_backend must be 'auto', 'nccl' or 'gloo', got {self.dist_backend!r}")
        return self


def _check_features(d: DataConfig) -> None:
    if d.features not in _FEATURE_PLACES:
        raise ConfigError(f"data.features must be one of {_FEATURE_PLACES}, got {d.features!r}")
    if d.features == "device" and d.cache_dir:
        raise ConfigError("data.features=device computes the log-mels on the device: drop data.cache_dir (their cache)")
    if d.features == "device" and d.dataset == "synthetic":
        raise ConfigError("data.features=device needs audio clips; data.dataset=synthetic generates spectrograms")


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """Instantiate dataclass ``cls`` from ``values``, recursing into nested dataclasses; unknown keys raise."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {type(values).__name__}")  # noqa: TRY004
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"unknown config key(s) {[prefix + k for k in unknown]}; known: {sorted(known)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        sub = _NESTED.get(name) if not where else None
        key = f"{where}.{name}" if where else name
        kwargs[name] = _build(sub, value, name) if sub is not None else _typed(key, hints[name], value)
    return cls(**kwargs)


def _allowed(hint: Any) -> tuple[type, ...]:
    """The runtime types a field annotation admits (``int | None`` -> ``(int, NoneType)``)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return tuple(t for arg in typing.get_args(hint) for t in _allowed(arg))
    if hint is Any:
        return (object,)
    return (typing.get_origin(hint) or hint,)


def _typed(key: str, hint: Any, value: Any) -> Any:
    """``value`` checked against the field's annotation; an int is accepted for a float field."""
    allowed = _allowed(hint)
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    # bool is an int subclass, but amp=1 or epochs=true are mistakes
    ok = bool in allowed or object in allowed if isinstance(value, bool) else isinstance(value, allowed)
    if not ok:
        names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
        raise ConfigError(f"config key {key!r} must be {names}, got {value!r}")
    return copy.deepcopy(value)


_NESTED: dict[str, type] = {"data": DataConfig, "optim": OptimConfig}


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a nested dict; unknown keys raise ``ValueError``."""
    return _build(TrainConfig, values or {}, "").validate()


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.sub=value")
    key, raw = item.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"override {item!r} has an empty key")
    return path, yaml.safe_load(raw) if raw.strip() else None


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of the nested dict ``values`` with ``key.sub=value`` overrides applied.

    Values are parsed as YAML (``optim.lr=3e-3``, ``data.folds=[1,2]``, ``init_from=null``). A key that
    is not a config field raises ``ValueError``, except below the free-form mappings
    ``model_args``, ``data.dataset_args`` and ``data.frontend``.
    """
    out = copy.deepcopy(values)
    defaults = TrainConfig().to_dict()
    for item in overrides:
        path, value = _parse_override(item)
        node, ref = out, defaults
        for i, part in enumerate(path[:-1]):
            if part in _OPEN_DICTS:
                ref = None
            elif ref is not None and not isinstance(ref.get(part), dict):
                raise ConfigError(f"unknown config key {'.'.join(path[: i + 1])!r} in override {item!r}")
            node = node.setdefault(part, {})
            ref = ref[part] if ref is not None else None
        if ref is not None and path[-1] not in ref:
            raise ConfigError(f"unknown config key {'.'.join(path)!r} in override {item!r}")
        node[path[-1]] = value
    return out


def default_num_workers() -> int:
    """Data-loading workers when ``data.num_workers`` is null: one per usable CPU beyond the one that trains,
    up to 4 (usable: the affinity mask capped by the cgroup quota, :func:`arinext.utils.cpu.usable_cpus`)."""
    return max(0, min(4, usable_cpus() - 1))


def list_recipes() -> list[str]:
    """Names of the recipes packaged in ``arinext/configs`` (``arinext train NAME``)."""
    root = resources.files("arinext") / "configs"
    return sorted(p.name[: -len(".yaml")] for p in root.iterdir() if p.name.endswith(".yaml"))


def _read_recipe(recipe: str | Path) -> dict[str, Any]:
    """The YAML of a recipe file, else of the packaged recipe of that name. A packaged name wins over a
    folder of the same name (``arinext train vggsound`` beside a ``vggsound/`` dataset folder)."""
    path = Path(recipe)
    packaged = resources.files("arinext") / "configs" / f"{recipe}.yaml"
    if path.is_file():
        text = path.read_text()
    elif path.suffix not in (".yaml", ".yml") and packaged.is_file():
        text = packaged.read_text()
    elif path.suffix in (".yaml", ".yml"):
        raise PathNotFoundError(f"recipe file {str(path)!r} does not exist")
    else:
        what = "a folder, not a recipe file" if path.is_dir() else "not a file"
        raise ConfigError(f"unknown recipe {str(recipe)!r}: {what}, and not one of {list_recipes()}")
    values = yaml.safe_load(text) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"recipe {str(recipe)!r} must hold a YAML mapping")  # noqa: TRY004
    return values


def load_config(recipe: str | Path | dict[str, Any], overrides: list[str] | None = None) -> TrainConfig:
    """Load a recipe (a YAML path, a packaged recipe name, or a dict) and apply ``--set`` overrides.

    Example:
        >>> cfg = load_config("vggsound", ["data.root=/data/vggsound", "optim.lr=0.003"])
        >>> cfg.optim.lr
        0.003
    """
    values = recipe if isinstance(recipe, dict) else _read_recipe(recipe)
    return config_from_dict(apply_overrides(values, overrides or []))
