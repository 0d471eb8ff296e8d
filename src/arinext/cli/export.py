"""``arinext export``: a checkpoint to ONNX or TorchScript (always the full deploy fold), optionally int8.

``--quantize int8`` also writes ``<out stem>.int8.onnx`` (static by default: calibrated on training
clips of ``--calib-data``; see :mod:`arinext.deploy.quantize` for the recipe) and always checks it
against the fp32 file on clips not used for calibration: the ``--eval-subset`` of ``--eval-data``, or
else up to ``--check-clips`` other training clips of ``--calib-data``. Labels are matched to the
checkpoint's by name. It prints top-1 agreement, both accuracies and whether the file is portable
(computes the same on x64 CPUs without VNNI); if agreement is below ``--min-agreement`` or the file is
not portable, it removes the int8 file, keeps the fp32 one and exits with code 1, unless ``--force``.

A model card ``README.md`` (labels, front end, recipe, the files written and the command) goes next to the
output, unless a README that arinext did not write is already there.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.registry import list_datasets
from ..utils.jsonout import dumps
from . import CLIError, add_frontend_option, add_parser

if TYPE_CHECKING:
    from torch import nn
    from torch.utils.data import DataLoader

    from ..audio.frontend import FrontendConfig
    from ..data import Manifest

log = logging.getLogger(__name__)

#: Exit code of an int8 file refused by the check (the CLI's "a check reported a failure").
EXIT_INT8_REFUSED = 1


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_parser(
        sub,
        common,
        "export",
        help="export a checkpoint to ONNX / TorchScript (fused), optionally int8",
        epilog="Exit codes: 0 written (and int8 passed its check); 1 int8 refused by the check (the fp32 file "
        "is kept, the int8 file removed); 2 bad arguments, data or checkpoint.",
    )
    p.add_argument("checkpoint", help="run directory, RUN/best.pt, save_pretrained directory or authors' .pyth")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="file format")
    p.add_argument("--out", required=True, type=Path, help="output file (.onnx / .pt)")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the runtime-vs-PyTorch check")
    p.add_argument("--waveform", action="store_true", help="also write <stem>.waveform.onnx (front end in the graph)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    add_frontend_option(p)
    q = p.add_argument_group("int8 (ONNX only; always checked against fp32 on clips not used for calibration)")
    q.add_argument("--quantize", choices=("int8",), default=None, help="also write <stem>.int8.onnx")
    q.add_argument(
        "--quant-mode",
        choices=("dynamic", "static"),
        default="static",
        help="int8 mode: static (calibrated, ~3x faster than fp32) or dynamic (no calibration, slower than fp32)",
    )
    q.add_argument("--dataset", default="folder", choices=list_datasets(), help="dataset layout of the data roots")
    q.add_argument(
        "--calib-data",
        type=Path,
        help="data root: static calibration on its training subset; its other training clips check the int8 "
        "file when --eval-data is not given",
    )
    q.add_argument("--calib-batches", type=int, default=8, help="batches of --batch-size clips used for calibration")
    q.add_argument(
        "--check-clips", type=int, default=256, help="training clips of --calib-data held back for the check"
    )
    q.add_argument("--eval-data", type=Path, help="data root whose --eval-subset checks the int8 file")
    q.add_argument("--eval-subset", default="testing", help="subset of --eval-data to check on")
    q.add_argument("--batch-size", type=int, default=16, help="clips per calibration / check batch")
    q.add_argument(
        "--min-agreement", type=float, default=0.97, help="lowest top-1 agreement of int8 with fp32 that passes"
    )
    q.add_argument("--force", action="store_true", help="keep an int8 file that fails the check")
    p.set_defaults(func=run)


def subset_manifest(dataset: str, root: Path, subset: str, labels: Any) -> Manifest:
    """One subset of a data root, its targets re-indexed into the model's ``labels`` by name."""
    from ..data import get_manifest

    if labels is None:
        raise CLIError("the checkpoint stores no label names, so its classes cannot be matched to the data's")
    manifest = get_manifest(dataset, root, subset)
    if len(manifest) == 0:
        raise CLIError(f"{root}: no {subset} clips for dataset {dataset!r}")
    return manifest.relabel(labels)


def clip_loader(
    manifest: Manifest, frontend: FrontendConfig, batch_size: int, indices: Sequence[int] | None = None
) -> DataLoader:
    """Evaluation-mode log-mel batches (one centre crop per clip) of ``manifest`` (or of its ``indices``)."""
    from ..data import AudioClipDataset, make_loader

    if indices is not None:
        manifest = replace(manifest, records=[manifest.records[int(i)] for i in indices])
    ds = AudioClipDataset(manifest, frontend, training=False)
    return make_loader(ds, batch_size=batch_size, shuffle=False, num_workers=0)


def _int8(args: argparse.Namespace, model: nn.Module, fp32: Path, frontend: FrontendConfig, labels: Any) -> int:
    from ..deploy.quantize import (
        Int8Refused,
        check_int8,
        enforce_int8,
        file_sizes_mb,
        latency_ms,
        quantize_model,
        spread_split,
    )
    from ..deploy.runtime import onnx_session

    int8 = fp32.with_name(fp32.stem + ".int8.onnx")
    calibration = check = None
    source = ""
    n_calib = args.calib_batches * args.batch_size if args.quant_mode == "static" else 0
    if args.calib_data is not None:
        train = subset_manifest(args.dataset, args.calib_data, "training", labels)
        calib_idx, held_idx = spread_split(len(train), n_calib, 0 if args.eval_data else args.check_clips)
        if n_calib:
            calibration = clip_loader(train, frontend, args.batch_size, calib_idx)
        if args.eval_data is None:
            if len(held_idx) == 0:
                raise CLIError(
                    f"{args.calib_data}: all {len(train)} training clips are used for calibration, none is left "
                    "to check the int8 file: give --eval-data ROOT or fewer --calib-batches"
                )
            check = clip_loader(train, frontend, args.batch_size, held_idx)
            source = f"training clips of {args.calib_data} not used for calibration"
    if args.eval_data is not None:
        check = clip_loader(
            subset_manifest(args.dataset, args.eval_data, args.eval_subset, labels), frontend, args.batch_size
        )
        source = f"{args.eval_subset} clips of {args.eval_data}"
    assert check is not None  # run() requires --calib-data or --eval-data

    built = quantize_model(
        model, int8, args.quant_mode, calibration, frontend=frontend, labels=labels, opset=args.opset
    )
    result = check_int8(fp32, int8, check, source=source, min_agreement=args.min_agreement)
    first = next(iter(check))["inputs"][:1]
    report: dict[str, Any] = {
        "int8": str(int8),
        "mode": args.quant_mode,
        "recipe": built.recipe,
        "calibration_clips": len(calibration.dataset) if calibration is not None else 0,  # type: ignore[arg-type]
        "dead_bn_channels_neutralized": built.dead_channels,
        "check": result.to_dict(),
        "size_mb": file_sizes_mb(fp32, int8),
        "latency_ms": latency_ms({"fp32": onnx_session(fp32), "int8": onnx_session(int8)}, first),
    }
    print(dumps(report, what="int8 report", indent=2))
    print(result.summary())
    try:
        enforce_int8(result, int8, force=args.force)
    except Int8Refused as exc:
        print(f"arinext export: {exc}", file=sys.stderr)
        return EXIT_INT8_REFUSED
    if not result.passed:
        print(f"--force: kept {int8} although it failed the check")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.quantize and args.format != "onnx":
        raise CLIError("--quantize int8 works on ONNX exports only (use --format onnx)")
    if args.quantize and args.quant_mode == "static" and args.calib_data is None:
        raise CLIError(
            "--quant-mode static needs --calib-data ROOT (or use --quant-mode dynamic with --eval-data ROOT)"
        )
    if args.quantize and args.calib_data is None and args.eval_data is None:
        raise CLIError(
            "the int8 check needs clips not used for calibration: give --eval-data ROOT or --calib-data ROOT"
        )
    calibrated_on_eval = args.quant_mode == "static" and args.calib_data is not None and args.eval_data is not None
    if calibrated_on_eval and args.eval_subset == "training" and args.calib_data.resolve() == args.eval_data.resolve():
        raise CLIError(
            "--eval-subset training of the --calib-data root would check int8 on its calibration clips: "
            "leave out --eval-data to check on the training clips held back from calibration"
        )
    if not 0.0 <= args.min_agreement <= 1.0:
        raise CLIError(f"--min-agreement must be between 0 and 1, got {args.min_agreement}")
    from ..checkpoints import load, model_frontend, model_labels
    from ..deploy.torchscript import export_torchscript

    model = load(args.checkpoint)
    frontend = model_frontend(model, args.frontend)
    if args.format == "torchscript":
        reports = [export_torchscript(model, args.out, frontend=frontend, check=args.check)]
    else:
        from ..deploy.onnx import export_onnx

        reports = [export_onnx(model, args.out, frontend=frontend, opset=args.opset, check=args.check)]
        if args.waveform:
            wave = args.out.with_name(args.out.stem + ".waveform.onnx")
            reports.append(
                export_onnx(model, wave, frontend, input_kind="waveform", opset=args.opset, check=args.check)
            )
    for r in reports:
        diff = "not checked"
        if r.max_abs_diff is not None:
            diff = f"max abs diff {r.max_abs_diff:.2e} at lengths {r.checked_lengths}"
        print(f"wrote {r.path} ({r.input} input, {diff})")
    written = [r.path for r in reports]
    code = 0
    if args.quantize:
        code = _int8(args, model, args.out, frontend, model_labels(model))
        int8 = args.out.with_name(args.out.stem + ".int8.onnx")
        if int8.is_file():  # a refused file is removed
            written.append(int8)
    card = _write_card(model, args, written, frontend)
    if card is not None:
        print(f"wrote {card}")
    return code


def _write_card(model: Any, args: argparse.Namespace, written: list[Path], frontend: FrontendConfig) -> Path | None:
    from ..checkpoints import write_model_card
    from ..utils.provenance import current_command
    from ..version import __version__

    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    config = {
        "model": cfg.get("model") or getattr(model, "model_name", "?"), "model_args": cfg.get("model_args") or {},
        "fold": "full", "labels": cfg.get("labels"), "frontend": frontend.to_dict(),
        "train_config": cfg.get("train_config"), "arinext_version": __version__,
        "card": {**(cfg.get("card") or {}), "command": current_command() or (cfg.get("card") or {}).get("command")},
    }  # fmt: skip
    inputs = {"onnx": "log-mel `(batch, 1, frames, mels)` -> logits", "torchscript": "log-mel -> logits (TorchScript)"}
    rows = [f"| `{p.name}` | {'waveform `(batch, samples)` -> logits' if '.waveform.' in p.name else inputs[args.format]}"
            f"{' (int8)' if '.int8.' in p.name else ''} |" for p in written]  # fmt: skip
    files = "\n".join(["## Exported files", "", "Full deploy fold; metadata (labels, front end) inside the file.", "",
                       "| file | input -> output |", "|---|---|", *rows])  # fmt: skip
    path = write_model_card(args.out.parent, config=config, files=files)
    if path is None:
        log.warning("%s: kept the existing README.md (not written by arinext)", args.out.parent)
    return path
