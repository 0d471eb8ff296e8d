"""int8 quantization of the exported model with onnxruntime's tools, a check that it is portable, and a guard.

* ``mode="static"`` (the default of ``arinext export``): weights and activations quantized with ranges
  calibrated (MinMax) on representative inputs: :data:`STATIC_RECIPE`, QDQ format, per-channel int8
  weights limited to ``[-64, 64]`` (``reduce_range``), uint8 activations. About 3x faster than fp32 on CPU.
* ``mode="dynamic"``: weights quantized offline, activations at run time per batch
  (``quantize_dynamic``, :data:`DYNAMIC_RECIPE`); needs no data but is slower than fp32 on CPU, and a
  clip's result depends on the other clips in its batch (they share one activation range).

Two defects made post-training int8 of trained models collapse to chance (BENCHMARKS.md, "int8"):

1. **CPU-dependent saturation.** On x64 CPUs without AVX-512 VNNI, onnxruntime's uint8 x int8 kernels add
   two products into a saturating int16 (``VPMADDUBSW``); with 8-bit weights the stem conv, whose
   log-mel input quantizes to codes up to 255, overflows (2 * 255 * 127 > 32767): the same file scored
   93.1 % on a VNNI CPU and 23.8 % on an AVX2 one. ``reduce_range=True`` (7-bit weights, as onnxruntime's
   documentation advises for these CPUs) makes every sum fit; it costs no speed.
   :func:`u8s8_overflow_weights` finds int8 weights that can overflow, so the check does not need such a CPU.
2. **Dead channels blown up by the BatchNorm fold.** A channel that is 0 for every input (a dead ReLU)
   leaves the depthwise BNs behind it with ``running_var ~ 0``; the fold multiplies its kernel by
   ``gamma / sqrt(eps)`` (~300x), and one per-tensor weight scale (dynamic ``ConvInteger`` always uses
   one) then rounds every other channel to 0. :func:`neutralize_dead_bn_channels` gives those channels
   kernel 0 and bias ``beta``, which is what they computed on the training data, before the fold.

:func:`quantize_model` applies both fixes (the fp32 file is exported from the unchanged model);
:func:`check_int8` measures an int8 file against its fp32 file on clips not used for calibration and
:func:`enforce_int8` refuses it (removing it) when top-1 agreement is below a threshold or it is not portable.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..audio.frontend import FrontendConfig
from ..utils.errors import ArinextError, ConfigError, InputError, PathNotFoundError
from ..utils.optional import MissingExtraError
from ..utils.timing import time_interleaved
from .runtime import onnx_logits, onnx_session

try:
    import onnx
    from onnx import numpy_helper
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process
except ImportError as exc:
    raise MissingExtraError("int8 quantization needs onnx and onnxruntime: pip install 'arinext[export]'") from exc

__all__ = [
    "DEFAULT_MIN_AGREEMENT",
    "DYNAMIC_RECIPE",
    "MIN_CHECK_CLIPS",
    "STATIC_RECIPE",
    "Int8Check",
    "Int8Refused",
    "QuantizeReport",
    "check_int8",
    "compare_onnx_models",
    "enforce_int8",
    "file_sizes_mb",
    "latency_ms",
    "neutralize_dead_bn_channels",
    "onnx_accuracy",
    "quantize_model",
    "quantize_onnx",
    "spread_split",
    "u8s8_overflow_weights",
]

log = logging.getLogger(__name__)

QuantMode = Literal["dynamic", "static"]
Batch = Any  # an input array/tensor, an (inputs, targets) pair, or a collate_clips dict with "inputs"/"target"

#: ``quantize_static`` arguments of the static recipe (``per_channel`` and ``reduce_range`` can be overridden).
STATIC_RECIPE: dict[str, Any] = {
    "quant_format": QuantFormat.QDQ,
    "per_channel": True,
    "reduce_range": True,  # int8 weights in [-64, 64]: no int16 saturation on x64 CPUs without VNNI
    "activation_type": QuantType.QUInt8,
    "weight_type": QuantType.QInt8,
    "calibrate_method": CalibrationMethod.MinMax,
}
#: ``quantize_dynamic`` arguments (uint8 weights; onnxruntime quantizes ``ConvInteger`` weights per tensor).
DYNAMIC_RECIPE: dict[str, Any] = {"weight_type": QuantType.QUInt8, "per_channel": True}

#: Default lowest top-1 agreement between int8 and fp32 that :func:`enforce_int8` accepts.
DEFAULT_MIN_AGREEMENT = 0.97
#: Fewest check clips that can resolve the default threshold (one disagreement in 50 is 98 %).
MIN_CHECK_CLIPS = 50
#: Largest int8 weight magnitude whose pair sums fit in int16 with uint8 inputs: 2 * 255 * 64 = 32640.
U8S8_SAFE_WEIGHT = 64
#: A BatchNorm channel with ``running_var < DEAD_VAR_FACTOR * eps`` saw a constant input in training.
DEAD_VAR_FACTOR = 1e-3


# ------------------------------------------------------------------------------------------ the model side
@torch.no_grad()
def neutralize_dead_bn_channels(model: nn.Module, var_factor: float = DEAD_VAR_FACTOR) -> list[str]:
    """Make BatchNorm channels with (almost) zero running variance fold to kernel 0, bias ``beta``; in place.

    A channel whose ``running_var < var_factor * eps`` saw a constant conv output in training (in these
    models: its input channel is a ReLU that is 0 for every clip), so ``BN(conv(x)) == beta`` on the data.
    The fold would scale its kernel by ``gamma / sqrt(var + eps)`` ~ ``gamma / sqrt(eps)`` instead: exact in
    float, but hundreds of times larger than the other channels' weights, which ruins any per-tensor int8
    scale. Zeroing the channel's conv weights and setting its statistics to mean 0, var 1 keeps the output
    ``beta``. Call it on a copy of a training-form model: either fold already merges the depthwise
    branches' BatchNorms into their kernels.

    Returns:
        one ``"module: channels [i, ...]"`` line per BatchNorm changed (empty if none).
    """
    changed = []
    for name, module in model.named_modules():
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d) or bn.running_var is None:
            continue
        dead = bn.running_var < var_factor * bn.eps
        if not bool(dead.any()):
            continue
        conv.weight[dead] = 0
        if conv.bias is not None:
            conv.bias[dead] = 0
        bn.running_mean[dead] = 0  # type: ignore[index]
        bn.running_var[dead] = 1  # type: ignore[index]
        changed.append(f"{name}: channels {dead.nonzero().flatten().tolist()}")
    return changed


# ---------------------------------------------------------------------------------------------- batches
def _as_array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32))


def _split(batch: Batch) -> tuple[np.ndarray, np.ndarray | None]:
    """``(inputs, targets)`` of any accepted batch form; targets ``None`` for a bare input batch."""
    if isinstance(batch, Mapping):
        inputs, target = batch["inputs"], batch.get("target")
    elif isinstance(batch, (tuple, list)):
        inputs, target = batch
    else:
        inputs, target = batch, None
    if isinstance(target, Mapping):
        raise InputError("multi-head targets are not supported by the int8 tools")
    if isinstance(target, torch.Tensor):
        target = target.cpu().numpy()
    return _as_array(inputs), None if target is None else np.asarray(target)


class _Calibration(CalibrationDataReader):
    def __init__(self, input_name: str, batches: Iterable[Batch]) -> None:
        self.input_name = input_name
        self._iter: Iterator[Batch] = iter(batches)
        self.count = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._iter, None)
        if batch is None:
            return None
        self.count += 1
        return {self.input_name: _split(batch)[0]}


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantizer logs one INFO line per tensor on the root logger; keep warnings only."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def _copy_metadata(src: str | Path, dst: str | Path, extra: Mapping[str, str]) -> None:
    meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    proto = onnx.load(str(dst))
    del proto.metadata_props[:]
    for key, value in {**meta, **extra}.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(dst))


# ------------------------------------------------------------------------------------------- quantizing
def quantize_onnx(
    fp32_path: str | Path,
    int8_path: str | Path,
    mode: QuantMode = "dynamic",
    calibration: Iterable[Batch] | None = None,
    per_channel: bool = True,
    reduce_range: bool = True,
) -> Path:
    """Quantize an exported float model to int8 with :data:`STATIC_RECIPE` or :data:`DYNAMIC_RECIPE`.

    This works on the file as it is; :func:`quantize_model` also fixes dead channels first, which a
    dynamic (or per-tensor) int8 file of a trained model needs.

    Args:
        fp32_path: a float ONNX file (from :func:`~arinext.export.onnx.export_onnx`).
        int8_path: where to write the int8 model; the ``arinext.*`` metadata is carried over and
            ``arinext.quantization`` names the mode and recipe.
        mode: ``"dynamic"`` or ``"static"`` (see the module docstring).
        calibration: for ``"static"``: an iterable of input batches ``(B, 1, T, F)`` (arrays or
            tensors), of ``(inputs, targets)`` pairs, or of ``collate_clips`` dicts, e.g. a data loader.
        per_channel: per-output-channel weight scales (static; dynamic conv weights are per tensor anyway).
        reduce_range: static only: int8 weights in ``[-64, 64]``, so that the file computes the same on
            x64 CPUs without VNNI (``False`` reproduces the old recipe, which saturates there).
    """
    if mode not in ("dynamic", "static"):
        raise ConfigError(f"mode must be 'dynamic' or 'static', got {mode!r}")
    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    if not fp32_path.is_file():
        raise PathNotFoundError(f"{fp32_path}: no such ONNX file")
    int8_path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "static" and calibration is None:
        raise ConfigError("static quantization needs calibration inputs (e.g. a data loader over training clips)")
    with tempfile.TemporaryDirectory() as tmp, _quiet_root_logger():
        prepared = Path(tmp) / "prepared.onnx"  # shape inference + graph clean-up, as onnxruntime advises
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        if mode == "dynamic":
            quantize_dynamic(prepared, int8_path, **{**DYNAMIC_RECIPE, "per_channel": per_channel})
            recipe = "dynamic: ConvInteger, uint8 weights, activations quantized per batch at run time"
        else:
            input_name = onnx.load(str(prepared), load_external_data=False).graph.input[0].name
            reader = _Calibration(input_name, calibration)  # type: ignore[arg-type]
            kwargs = {**STATIC_RECIPE, "per_channel": per_channel, "reduce_range": reduce_range}
            quantize_static(prepared, int8_path, reader, **kwargs)
            if reader.count == 0:
                raise InputError("calibration produced no batches")
            log.info("static int8: calibrated on %d batches", reader.count)
            weights = "per-channel" if per_channel else "per-tensor"
            recipe = f"static: QDQ, {weights} int8 weights {'[-64, 64]' if reduce_range else '[-127, 127]'}, "
            recipe += "uint8 activations, MinMax"
    _copy_metadata(fp32_path, int8_path, {"arinext.quantization": f"int8-{mode}", "arinext.int8_recipe": recipe})
    return int8_path


@dataclass
class QuantizeReport:
    """What :func:`quantize_model` wrote: the int8 file, its recipe and the dead channels it neutralized."""

    path: Path
    mode: str
    recipe: str
    dead_channels: list[str] = field(default_factory=list)


def quantize_model(
    model: nn.Module,
    int8_path: str | Path,
    mode: QuantMode = "static",
    calibration: Iterable[Batch] | None = None,
    frontend: FrontendConfig | str | Mapping[str, Any] | None = None,
    labels: Sequence[str] | None = None,
    opset: int = 17,
    neutralize: bool = True,
    **recipe: Any,
) -> QuantizeReport:
    """int8 ONNX file of ``model`` with both fixes: dead channels neutralized on a copy, then the recipe.

    The model itself is not changed; export its fp32 file separately (:func:`~arinext.export.onnx.export_onnx`)
    so that the float file stays exact. ``neutralize=False`` and ``reduce_range=False`` reproduce the old,
    fragile recipe (for tests and benchmarks).

    Args:
        model: a classifier, best in training form: a fused model (``arinext reparam``) has no branch
            BatchNorm left to inspect, so its dead channels stay (the per-channel static recipe tolerates
            them; dynamic int8 does not, and :func:`check_int8` shows it).
        int8_path: the ``.int8.onnx`` file to write.
        mode, calibration: as for :func:`quantize_onnx`.
        frontend, labels, opset: stored with the file, as for :func:`~arinext.export.onnx.export_onnx`.
        recipe: ``per_channel`` / ``reduce_range`` overrides passed to :func:`quantize_onnx`.
    """
    from .onnx import export_onnx  # same package: ONNX export needs the same extra

    clean = copy.deepcopy(model).eval()
    dead = neutralize_dead_bn_channels(clean) if neutralize else []
    if dead:
        log.info("int8: %d BatchNorm(s) with dead channels neutralized before folding: %s", len(dead), "; ".join(dead))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "fp32_for_int8.onnx"
        export_onnx(clean, src, frontend=frontend, labels=labels, opset=opset, check=False)
        path = quantize_onnx(src, int8_path, mode, calibration, **recipe)
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return QuantizeReport(path, mode, meta["arinext.int8_recipe"], dead)


def u8s8_overflow_weights(int8_path: str | Path) -> list[tuple[str, int]]:
    """int8 weight tensors that can saturate x64 uint8 x int8 kernels on CPUs without VNNI.

    Such kernels (AVX2, AVX-512 without VNNI) add two uint8 x int8 products into a saturating int16, which
    is exact for every input only if ``2 * 255 * max|w| <= 32767``, i.e. every weight in ``[-64, 64]``.
    Checks every int8 initializer of two or more dimensions (conv and linear weights; uint8 weights use
    other kernels and cannot overflow this way).

    Returns:
        ``(initializer name, max |w|)`` for each weight that can overflow; empty means portable.
    """
    risky = []
    for t in onnx.load(str(int8_path)).graph.initializer:
        if t.data_type != onnx.TensorProto.INT8 or len(t.dims) < 2:
            continue
        largest = int(np.abs(numpy_helper.to_array(t).astype(np.int32)).max())
        if largest > U8S8_SAFE_WEIGHT:
            risky.append((t.name, largest))
    return risky


# ------------------------------------------------------------------------------------------- the guard
@dataclass
class Int8Check:
    """An int8 file measured against its fp32 file on clips that were not used for calibration.

    Attributes:
        clips: clips compared.
        source: where they came from (shown in messages).
        agreement: fraction of clips whose int8 top-1 class equals the fp32 top-1 class.
        fp32_accuracy, int8_accuracy: top-1 accuracies (``None`` when the clips carry no class labels).
        max_abs_logit_diff: largest ``|int8 - fp32|`` logit.
        min_agreement: the threshold.
        portable: no int8 weight can saturate on x64 CPUs without VNNI (:func:`u8s8_overflow_weights`).
        overflow_weights: how many int8 weight tensors could.
        passed: agreement >= min_agreement, portable and at least :data:`MIN_CHECK_CLIPS` clips.
    """

    clips: int
    source: str
    agreement: float
    fp32_accuracy: float | None
    int8_accuracy: float | None
    max_abs_logit_diff: float
    min_agreement: float
    portable: bool
    overflow_weights: int
    passed: bool

    @property
    def reason(self) -> str | None:
        """Why the check failed, in one clause; ``None`` if it passed."""
        reasons = []
        if self.agreement < self.min_agreement:
            reasons.append(f"top-1 agreement with fp32 {self.agreement:.1%} < {self.min_agreement:.1%}")
        if not self.portable:
            reasons.append(
                f"not portable: {self.overflow_weights} int8 weight tensor(s) outside [-64, 64] "
                "saturate on x64 CPUs without VNNI (quantize with reduce_range)"
            )
        if self.clips < MIN_CHECK_CLIPS:
            reasons.append(f"only {self.clips} clips to check (need {MIN_CHECK_CLIPS})")
        return "; ".join(reasons) or None

    def summary(self) -> str:
        """One line: agreement, both accuracies, portability and the verdict."""
        acc = ""
        if self.fp32_accuracy is not None and self.int8_accuracy is not None:
            acc = f", top-1 fp32 {self.fp32_accuracy:.1%} int8 {self.int8_accuracy:.1%}"
        verdict = "passed" if self.passed else f"REFUSED ({self.reason})"
        return (
            f"int8 check on {self.clips} {self.source}: agreement {self.agreement:.1%} "
            f"(min {self.min_agreement:.1%}){acc}, portable {'yes' if self.portable else 'no'} -> {verdict}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reason": self.reason}


def _logits_and_targets(session: Any, batches: Sequence[Batch]) -> tuple[np.ndarray, np.ndarray | None]:
    logits, targets = [], []
    for batch in batches:
        inputs, target = _split(batch)
        logits.append(onnx_logits(session, inputs))
        targets.append(target)
    if not logits:
        raise InputError("no clips to compare")
    labelled = all(t is not None and t.ndim == 1 for t in targets)  # single-label class indices
    return np.concatenate(logits), np.concatenate(targets) if labelled else None  # type: ignore[arg-type]


def check_int8(
    fp32_path: str | Path,
    int8_path: str | Path,
    batches: Iterable[Batch],
    source: str = "held-out clips",
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
) -> Int8Check:
    """Top-1 agreement, both accuracies and portability of an int8 file against its fp32 file.

    Args:
        batches: clips that were NOT used for calibration: input batches, ``(inputs, targets)`` pairs or
            ``collate_clips`` dicts, with targets indexed in the model's label order (match them by name:
            :meth:`arinext.data.Manifest.relabel`). Accuracies need single-label targets.
        source: what the clips are, for messages (e.g. ``"testing clips of data/"``).
        min_agreement: the lowest agreement that passes.
    """
    if not 0.0 <= min_agreement <= 1.0:
        raise ConfigError(f"min_agreement must be in [0, 1], got {min_agreement}")
    batches = list(batches)
    fp32, targets = _logits_and_targets(onnx_session(fp32_path), batches)
    int8, _ = _logits_and_targets(onnx_session(int8_path), batches)
    p32, p8 = fp32.argmax(-1), int8.argmax(-1)
    agreement = float((p32 == p8).mean())
    acc32 = acc8 = None
    if targets is not None:
        acc32, acc8 = float((p32 == targets).mean()), float((p8 == targets).mean())
    overflow = u8s8_overflow_weights(int8_path)
    n = len(p32)
    return Int8Check(
        clips=n,
        source=source,
        agreement=agreement,
        fp32_accuracy=acc32,
        int8_accuracy=acc8,
        max_abs_logit_diff=float(np.abs(fp32 - int8).max()),
        min_agreement=min_agreement,
        portable=not overflow,
        overflow_weights=len(overflow),
        passed=agreement >= min_agreement and not overflow and n >= MIN_CHECK_CLIPS,
    )


class Int8Refused(ArinextError, RuntimeError):
    """An int8 file failed :func:`check_int8` and was removed (``arinext export`` exits with code 1)."""


def enforce_int8(check: Int8Check, int8_path: str | Path, force: bool = False) -> None:
    """Refuse a failed check: remove ``int8_path`` and raise :class:`Int8Refused`, unless ``force``.

    The fp32 file is never touched.
    """
    if check.passed or force:
        return
    int8_path = Path(int8_path)
    int8_path.unlink(missing_ok=True)
    raise Int8Refused(
        f"int8 refused: {check.reason} on {check.clips} {check.source}; removed {int8_path.name}, "
        "kept the fp32 file (--force keeps the int8 file, --min-agreement sets the threshold)"
    )


def spread_split(n: int, first: int, second: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint index sets over ``range(n)``, each spread evenly (so every class of a sorted list shows up).

    ``first`` indices evenly spaced from the first to the last; then ``second`` (default: all the rest) of
    the remaining indices, also evenly spaced. Used to calibrate on some training clips and check on others.
    """
    a = _spread(np.arange(n), first)
    rest = np.setdiff1d(np.arange(n), a)
    return a, rest if second is None else _spread(rest, second)


def _spread(idx: np.ndarray, k: int) -> np.ndarray:
    if k >= len(idx):
        return idx
    if k <= 0:
        return idx[:0]
    return idx[np.unique(np.round(np.linspace(0, len(idx) - 1, k)).astype(int))]


# ------------------------------------------------------------------------------------- measurements
def onnx_accuracy(model: str | Path | Any, batches: Iterable[Batch]) -> dict[str, Any]:
    """Top-1 accuracy of an ONNX classifier on labelled batches (``(inputs, targets)`` or loader dicts).

    Returns ``{"accuracy", "n", "predictions"}`` (``predictions``: the arg-max class of each input).
    """
    session = onnx_session(model) if isinstance(model, (str, Path)) else model
    logits, targets = _logits_and_targets(session, list(batches))
    if targets is None:
        raise InputError("onnx_accuracy needs single-label targets")
    p = logits.argmax(axis=-1)
    return {"accuracy": float((p == targets).mean()), "n": int(targets.size), "predictions": p}


def compare_onnx_models(
    fp32_path: str | Path,
    int8_path: str | Path,
    eval_batches: Iterable[Batch],
    latency_input: np.ndarray | None = None,
    repeats: int = 30,
) -> dict[str, Any]:
    """Size, latency and accuracy of a float model and its int8 version, measured side by side.

    Returns a dict with ``size_mb``, ``latency_ms`` (median on ``latency_input``, default the first
    evaluation batch's first item), ``accuracy`` (each a ``{"fp32", "int8"}`` pair), ``accuracy_change``
    (int8 - fp32, in accuracy points of 1.0) and ``top1_agreement`` (fraction of identical predictions).
    """
    batches = list(eval_batches)
    sessions = {"fp32": onnx_session(fp32_path), "int8": onnx_session(int8_path)}
    acc = {k: onnx_accuracy(s, batches) for k, s in sessions.items()}
    if latency_input is None:
        latency_input = _split(batches[0])[0][:1]
    return {
        "size_mb": file_sizes_mb(fp32_path, int8_path),
        "latency_ms": latency_ms(sessions, latency_input, repeats),
        "accuracy": {k: v["accuracy"] for k, v in acc.items()},
        "accuracy_change": acc["int8"]["accuracy"] - acc["fp32"]["accuracy"],
        "top1_agreement": float((acc["int8"]["predictions"] == acc["fp32"]["predictions"]).mean()),
        "n": acc["fp32"]["n"],
    }


def file_sizes_mb(fp32_path: str | Path, int8_path: str | Path) -> dict[str, float]:
    """``{"fp32": MB, "int8": MB}``."""
    return {k: os.path.getsize(p) / 2**20 for k, p in (("fp32", fp32_path), ("int8", int8_path))}


def latency_ms(sessions: Mapping[str, Any], inputs: Any, repeats: int = 30) -> dict[str, float]:
    """Median latency of each session on ``inputs``, timed interleaved in this process."""
    calls = {k: (lambda s=s: onnx_logits(s, inputs)) for k, s in sessions.items()}
    return {k: v.median_ms for k, v in time_interleaved(calls, repeats, 5).items()}
