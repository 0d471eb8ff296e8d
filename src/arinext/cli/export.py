"""``arinext export``: a checkpoint to ONNX or TorchScript (always the full deploy fold), optionally int8.

``--quantize int8`` also writes ``<out stem>.int8.onnx`` with onnxruntime's dynamic or static
quantization; static mode calibrates on clips from ``--calib-data``, and ``--eval-data`` reports the
size, latency and accuracy of the float and int8 files side by side.

A model card ``README.md`` (labels, front end, recipe, the files written and the command) goes next to the
output, unless a README that arinext did not write is already there.
"""

from __future__ import annotations

import argparse
import json
import logging
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.registry import list_datasets
from . import CLIError, add_parser

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from ..audio.frontend import FrontendConfig

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_parser(sub, common, "export", help="export a checkpoint to ONNX / TorchScript (fused), optionally int8")
    p.add_argument("checkpoint", help="run directory, RUN/best.pt, save_pretrained directory or authors' .pyth")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="file format")
    p.add_argument("--out", required=True, type=Path, help="output file (.onnx / .pt)")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the runtime-vs-PyTorch check")
    p.add_argument("--waveform", action="store_true", help="also write <stem>.waveform.onnx (front end in the graph)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    q = p.add_argument_group("int8 (ONNX only)")
    q.add_argument("--quantize", choices=("int8",), default=None, help="also write <stem>.int8.onnx")
    q.add_argument("--quant-mode", choices=("dynamic", "static"), default="static", help="int8 quantization mode")
    q.add_argument("--dataset", default="folder", choices=list_datasets(), help="dataset layout of the data roots")
    q.add_argument("--calib-data", type=Path, help="data root for static calibration (its training subset)")
    q.add_argument("--calib-batches", type=int, default=16, help="batches used for calibration")
    q.add_argument("--eval-data", type=Path, help="data root whose testing subset measures the int8 accuracy change")
    q.add_argument("--eval-subset", default="testing", help="subset of --eval-data to evaluate")
    q.add_argument("--batch-size", type=int, default=16, help="clips per calibration / evaluation batch")
    p.set_defaults(func=run)


def clip_loader(
    dataset: str, root: Path, subset: str, frontend: FrontendConfig, batch_size: int, labels: Any
) -> DataLoader:
    """Evaluation-mode log-mel batches (one centre crop per clip), targets indexed by the model's ``labels``."""
    from ..data import AudioClipDataset, get_manifest, make_loader

    manifest = get_manifest(dataset, root, subset)
    if len(manifest) == 0:
        raise CLIError(f"{root}: no {subset} clips for dataset {dataset!r}")
    if labels is None:
        raise CLIError("the checkpoint stores no label names, so its classes cannot be matched to the data's")
    ds = AudioClipDataset(manifest.relabel(labels), frontend, training=False)
    return make_loader(ds, batch_size=batch_size, shuffle=False, num_workers=0)


def _int8(args: argparse.Namespace, fp32: Path, frontend: FrontendConfig, labels: Any) -> dict[str, Any]:
    from ..deploy.quantize import compare_onnx_models, quantize_onnx

    int8 = fp32.with_name(fp32.stem + ".int8.onnx")
    calibration = None
    if args.quant_mode == "static":
        loader = clip_loader(args.dataset, args.calib_data, "training", frontend, args.batch_size, labels)
        calibration = islice(loader, args.calib_batches)
    quantize_onnx(fp32, int8, args.quant_mode, calibration)
    report: dict[str, Any] = {"int8": str(int8), "mode": args.quant_mode}
    if args.eval_data is not None:
        loader = clip_loader(args.dataset, args.eval_data, args.eval_subset, frontend, args.batch_size, labels)
        stats = compare_onnx_models(fp32, int8, loader)
        report.update(stats)
    return report


def run(args: argparse.Namespace) -> int:
    if args.quantize and args.format != "onnx":
        raise CLIError("--quantize int8 works on ONNX exports only (use --format onnx)")
    if args.quantize and args.quant_mode == "static" and args.calib_data is None:
        raise CLIError("--quant-mode static needs --calib-data ROOT (or use --quant-mode dynamic)")
    from ..checkpoints import load, model_frontend, model_labels
    from ..deploy.torchscript import export_torchscript

    model = load(args.checkpoint)
    frontend = model_frontend(model)
    if args.format == "torchscript":
        reports = [export_torchscript(model, args.out, check=args.check)]
    else:
        from ..deploy.onnx import export_onnx

        reports = [export_onnx(model, args.out, opset=args.opset, check=args.check)]
        if args.waveform:
            wave = args.out.with_name(args.out.stem + ".waveform.onnx")
            reports.append(export_onnx(model, wave, input_kind="waveform", opset=args.opset, check=args.check))
    for r in reports:
        diff = "not checked"
        if r.max_abs_diff is not None:
            diff = f"max abs diff {r.max_abs_diff:.2e} at lengths {r.checked_lengths}"
        print(f"wrote {r.path} ({r.input} input, {diff})")
    written = [r.path for r in reports]
    if args.quantize:
        int8 = _int8(args, args.out, frontend, model_labels(model))
        written.append(Path(int8["int8"]))
        print(json.dumps(int8, indent=2))
    card = _write_card(model, args, written)
    if card is not None:
        print(f"wrote {card}")
    return 0


def _write_card(model: Any, args: argparse.Namespace, written: list[Path]) -> Path | None:
    from ..checkpoints import write_model_card
    from ..utils.provenance import current_command
    from ..version import __version__

    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    config = {
        "model": cfg.get("model") or getattr(model, "model_name", "?"), "model_args": cfg.get("model_args") or {},
        "fold": "full", "labels": cfg.get("labels"), "frontend": cfg.get("frontend"),
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
