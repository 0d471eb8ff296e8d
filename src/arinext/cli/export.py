"""``arinext export``: a checkpoint to ONNX or TorchScript (always the full deploy fold), optionally int8.

The formats are those registered in :mod:`arinext.export.formats`. ``--quantize int8`` also writes
``<out stem>.int8.onnx`` with :func:`arinext.export.int8.export_int8` (static by default: calibrated on
training clips of ``--calib-data``), which checks it against the fp32 file on clips not used for
calibration (the ``--eval-subset`` of ``--eval-data``, or else up to ``--check-clips`` other training clips
of ``--calib-data``; labels matched to the checkpoint's by name) and refuses it (removed; exit code 1)
when agreement is below ``--min-agreement`` or the file is not portable, unless ``--force``.

A model card ``README.md`` (labels, front end, recipe, the files written and the command) goes next to the
output, unless a README that arinext did not write is already there.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..data.registry import list_datasets
from ..export.formats import list_export_formats
from ..utils.jsonout import dumps
from . import CLIError, add_frontend_option, add_parser

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
    p.add_argument("--format", choices=list_export_formats(), default="onnx", help="file format")
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
    q.add_argument(
        "--dataset", default="folder", choices=list_datasets(stored=True), help="dataset layout of the data roots"
    )
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


def _int8(args: argparse.Namespace, model: object, frontend: object, labels: object) -> tuple[int, Path | None]:
    """Calibrate, quantize, check and refuse (:func:`arinext.export.int8.export_int8`); prints the report."""
    from ..export.int8 import export_int8, int8_clips

    n_calib = args.calib_batches * args.batch_size if args.quant_mode == "static" else 0
    clips = int8_clips(
        args.dataset, labels, frontend, args.calib_data, args.eval_data, args.eval_subset, n_calib, args.check_clips,
        args.batch_size,
    )  # fmt: skip
    result = export_int8(
        model, args.out, clips.calibration, clips.check, mode=args.quant_mode, source=clips.source,  # type: ignore[arg-type]
        min_agreement=args.min_agreement, force=args.force, frontend=frontend, labels=labels, opset=args.opset,  # type: ignore[arg-type]
    )  # fmt: skip
    print(dumps(result.to_dict(), what="int8 report", indent=2))
    print(result.check.summary())
    if not result.kept:
        print(f"arinext export: {result.refusal}", file=sys.stderr)
        return EXIT_INT8_REFUSED, None
    if not result.check.passed:
        print(f"--force: kept {result.path} although it failed the check")
    return 0, result.path


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
    from ..checkpoints import load, model_frontend
    from ..export.formats import export_format
    from ..export.graph import write_export_card
    from ..models import metadata

    fmt = export_format(args.format)
    model = load(args.checkpoint)
    frontend = model_frontend(model, args.frontend)
    reports = [fmt.write(model, args.out, check=args.check, frontend=frontend, opset=args.opset)]
    if args.waveform and "waveform" in fmt.inputs:
        wave = args.out.with_name(args.out.stem + ".waveform" + fmt.suffix)
        reports.append(
            fmt.write(model, wave, check=args.check, frontend=frontend, opset=args.opset, input_kind="waveform")
        )
    for r in reports:
        diff = "not checked"
        if r.max_abs_diff is not None:
            diff = f"max abs diff {r.max_abs_diff:.2e} at lengths {r.checked_lengths}"
        print(f"wrote {r.path} ({r.input} input, {diff})")
    written = {r.path: fmt.describe(r.input) for r in reports}
    code = 0
    if args.quantize:
        code, int8 = _int8(args, model, frontend, metadata(model).labels)
        if int8 is not None:  # a refused file is removed
            written[int8] = fmt.describe("spectrogram", int8=True)
    card = write_export_card(model, args.out.parent, written, frontend)
    if card is not None:
        print(f"wrote {card}")
    else:
        log.warning("%s: kept the existing README.md (not written by arinext)", args.out.parent)
    return code
