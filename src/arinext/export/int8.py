"""The int8 workflow in one call: calibrate -> quantize -> check -> refuse.

``arinext export --quantize int8`` and ``arinext demo`` both run :func:`export_int8`: it writes the int8 file
with :func:`~arinext.export.quantize.quantize_model` (dead BatchNorm channels neutralized, the static recipe
of :data:`~arinext.export.quantize.STATIC_RECIPE`), measures it against its fp32 file on clips that were not
used for calibration (:func:`~arinext.export.quantize.check_int8`: top-1 agreement, both accuracies,
portability to x64 CPUs without VNNI) and refuses it (:func:`~arinext.export.quantize.enforce_int8`: the int8
file is removed, the fp32 file kept) when the check fails, unless ``force``.

:func:`int8_clips` picks those clips from data roots as the command does: calibration clips spread over the
training subset of one root, check clips from an evaluation subset or from the other training clips, labels
matched to the model's by name. Needs ``pip install 'arinext[export]'``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import DataLoader

from ..audio.frontend import FrontendConfig
from ..checkpoints import CheckpointError
from ..data import AudioClipDataset, Manifest, get_manifest, make_loader
from ..utils.errors import ConfigError, DataError
from .quantize import (
    DEFAULT_MIN_AGREEMENT,
    Batch,
    Int8Check,
    Int8Refused,
    QuantMode,
    _split,
    check_int8,
    enforce_int8,
    file_sizes_mb,
    latency_ms,
    quantize_model,
    spread_split,
)
from .runtime import onnx_session

__all__ = ["Int8Clips", "Int8Result", "export_int8", "int8_clips", "int8_path_for"]


def int8_path_for(fp32_path: str | Path) -> Path:
    """Where the int8 file of ``fp32_path`` goes: ``<stem>.int8.onnx`` beside it."""
    fp32_path = Path(fp32_path)
    return fp32_path.with_name(fp32_path.stem + ".int8.onnx")


@dataclass
class Int8Clips:
    """The clips of the int8 workflow: ``calibration`` (``None`` for dynamic int8) and ``check`` batches,
    never the same clips; ``source`` says where the check clips come from (for messages)."""

    calibration: DataLoader | None
    check: DataLoader
    source: str


def _subset(dataset: str, root: Path, subset: str, labels: Any) -> Manifest:
    """One subset of a data root, its targets re-indexed into the model's ``labels`` by name."""
    if labels is None:
        raise CheckpointError("the checkpoint stores no label names, so its classes cannot be matched to the data's")
    manifest = get_manifest(dataset, root, subset)
    if len(manifest) == 0:
        raise DataError(f"{root}: no {subset} clips for dataset {dataset!r}")
    return manifest.relabel(labels)


def _loader(manifest: Manifest, frontend: FrontendConfig, batch_size: int, indices: Sequence[int] | None = None) -> DataLoader:
    """Evaluation-mode log-mel batches (one centre crop per clip) of ``manifest`` (or of its ``indices``)."""
    if indices is not None:
        manifest = replace(manifest, records=[manifest.records[int(i)] for i in indices])
    return make_loader(AudioClipDataset(manifest, frontend, training=False), batch_size=batch_size, shuffle=False, num_workers=0)


def int8_clips(
    dataset: str,
    labels: Any,
    frontend: FrontendConfig,
    calib_data: str | Path | None = None,
    eval_data: str | Path | None = None,
    eval_subset: str = "testing",
    calibration_clips: int = 128,
    check_clips: int = 256,
    batch_size: int = 16,
) -> Int8Clips:
    """Calibration and check clips from data roots in the layout of ``dataset``.

    Args:
        dataset: a registered dataset stored as files (``"folder"``, ``"speech_commands_v2"``, ...).
        labels: the model's class names; the data's classes are matched to them by name.
        frontend: the model's front end (the batches are its log-mels).
        calib_data: root whose training subset calibrates (``calibration_clips`` of them, spread over the
            subset; ``0`` for dynamic int8) and, without ``eval_data``, whose other training clips check
            (up to ``check_clips`` of them).
        eval_data: root whose ``eval_subset`` checks instead.
        batch_size: clips per batch.

    Raises:
        ConfigError: neither root, or no training clip is left to check on.
        CheckpointError: ``labels`` is ``None``.
        DataError: a subset has no clips.
    """
    if calib_data is None and eval_data is None:
        raise ConfigError("the int8 check needs clips not used for calibration: give eval_data or calib_data")
    calibration = check = None
    source = ""
    if calib_data is not None:
        calib_data = Path(calib_data)
        train = _subset(dataset, calib_data, "training", labels)
        calib_idx, held_idx = spread_split(len(train), calibration_clips, 0 if eval_data else check_clips)
        if calibration_clips:
            calibration = _loader(train, frontend, batch_size, calib_idx)
        if eval_data is None:
            if len(held_idx) == 0:
                raise ConfigError(
                    f"{calib_data}: all {len(train)} training clips are used for calibration, none is left to check "
                    "the int8 file: give evaluation data (--eval-data ROOT) or fewer calibration clips (--calib-batches)"
                )
            check = _loader(train, frontend, batch_size, held_idx)
            source = f"training clips of {calib_data} not used for calibration"
    if eval_data is not None:
        check = _loader(_subset(dataset, Path(eval_data), eval_subset, labels), frontend, batch_size)
        source = f"{eval_subset} clips of {eval_data}"
    assert check is not None
    return Int8Clips(calibration, check, source)


@dataclass
class Int8Result:
    """What :func:`export_int8` wrote and measured.

    Attributes:
        path: the int8 file (removed when refused).
        mode, recipe: the quantization mode and recipe.
        calibration_clips: clips the ranges were calibrated on (0 for dynamic int8).
        dead_channels: the BatchNorm channels neutralized before folding.
        check: the measurement against the fp32 file (:class:`~arinext.export.quantize.Int8Check`).
        size_mb, latency_ms: ``{"fp32", "int8"}`` file sizes and median batch-1 latencies (latency ``None``
            when not timed).
        refusal: why the file was refused and removed, in one line; ``None`` when it was kept.
    """

    path: Path
    mode: str
    recipe: str
    calibration_clips: int
    dead_channels: list[str]
    check: Int8Check
    size_mb: dict[str, float]
    latency_ms: dict[str, float] | None
    refusal: str | None

    @property
    def kept(self) -> bool:
        """Whether the int8 file is there: it passed the check, or ``force`` kept it."""
        return self.refusal is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "int8": str(self.path),
            "mode": self.mode,
            "recipe": self.recipe,
            "calibration_clips": self.calibration_clips,
            "dead_bn_channels_neutralized": self.dead_channels,
            "check": self.check.to_dict(),
            "size_mb": self.size_mb,
            "latency_ms": self.latency_ms,
            "kept": self.kept,
        }


class _Counted:
    """Passes batches through and counts their clips."""

    def __init__(self, batches: Iterable[Batch]) -> None:
        self.batches, self.clips = batches, 0

    def __iter__(self) -> Iterator[Batch]:
        for batch in self.batches:
            self.clips += len(_split(batch)[0])
            yield batch


def export_int8(
    model: nn.Module,
    fp32_path: str | Path,
    calibration: Iterable[Batch] | None,
    check: Iterable[Batch],
    int8_path: str | Path | None = None,
    mode: QuantMode = "static",
    source: str = "held-out clips",
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    force: bool = False,
    frontend: FrontendConfig | str | Mapping[str, Any] | None = None,
    labels: Sequence[str] | None = None,
    opset: int = 17,
    latency_repeats: int = 30,
) -> Int8Result:
    """Quantize ``model`` to int8, check the file against ``fp32_path`` and refuse it if the check fails.

    Args:
        model: the classifier, best in training form (its dead channels can then be neutralized).
        fp32_path: its fp32 ONNX file (:func:`~arinext.export.onnx.export_onnx`), the reference of the check.
        calibration: input batches for static int8 (``None`` for dynamic), e.g. :attr:`Int8Clips.calibration`.
        check: labelled batches NOT used for calibration (targets in the model's label order).
        int8_path: the file to write (default :func:`int8_path_for` of ``fp32_path``).
        mode: ``"static"`` or ``"dynamic"``.
        source: what the check clips are, for messages.
        min_agreement: the lowest top-1 agreement with fp32 that passes.
        force: keep a file that fails the check (``refusal`` stays ``None``; ``check.passed`` says it failed).
        frontend, labels, opset: stored with the file, as for ``export_onnx``.
        latency_repeats: timed runs of each file on one check clip (``0``: not timed).

    Returns:
        an :class:`Int8Result`; a refused file has been removed and ``refusal`` says why.
    """
    int8_path = Path(int8_path) if int8_path is not None else int8_path_for(fp32_path)
    counted = _Counted(calibration) if calibration is not None else None
    built = quantize_model(model, int8_path, mode, counted, frontend=frontend, labels=labels, opset=opset)
    batches = list(check)
    result = check_int8(fp32_path, built.path, batches, source=source, min_agreement=min_agreement)
    timed = None
    if latency_repeats > 0 and batches:
        first = _split(batches[0])[0][:1]
        timed = latency_ms({"fp32": onnx_session(fp32_path), "int8": onnx_session(built.path)}, first, latency_repeats)
    sizes = file_sizes_mb(fp32_path, built.path)
    refusal = None
    try:
        enforce_int8(result, built.path, force=force)
    except Int8Refused as exc:
        refusal = str(exc)
    return Int8Result(
        built.path, mode, built.recipe, counted.clips if counted else 0, built.dead_channels, result, sizes, timed, refusal
    )
