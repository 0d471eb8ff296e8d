"""``arinext predict``: classify audio files, folders or stdin with a checkpoint.

Clips up to ``--max-clip`` seconds run whole; longer files are scanned in windows with bounded memory
and reported by their clip-level aggregate (``--windows`` prints every window as well).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..audio.io import AudioDecodeError, audio_info
from ..data.manifests.custom import AUDIO_SUFFIXES
from . import CLIError, add_parser

if TYPE_CHECKING:
    from ..deploy import AudioClassifier

MODEL_ENV = "ARINEXT_MODEL"
STDIN = "<stdin>"


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_parser(sub, common, "predict", help="classify audio files, folders or stdin ('-')")
    p.add_argument("inputs", nargs="+", help="audio files, folders (searched recursively) or '-' for stdin bytes")
    p.add_argument(
        "-m",
        "--model",
        default=os.environ.get(MODEL_ENV),
        help=f"run directory, RUN/best.pt, save_pretrained directory or authors' .pyth (default: ${MODEL_ENV})",
    )
    p.add_argument("-k", "--top-k", type=int, default=5, help="labels per clip")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    p.add_argument("--max-clip", type=float, default=30.0, help="seconds above which a file is scanned in windows")
    p.add_argument("--window", type=float, default=None, help="scan window in seconds (default: the training crop)")
    p.add_argument("--hop", type=float, default=None, help="scan hop in seconds (default: half the window)")
    p.add_argument("--aggregate", choices=("mean", "max"), default="mean", help="clip score of a scanned file")
    p.add_argument("--windows", action="store_true", help="scan every file and report each window")
    p.add_argument("--no-fuse", action="store_true", help="run the checkpoint as stored (no deploy fold)")
    p.set_defaults(func=run)


def expand_inputs(inputs: list[str]) -> Iterator[str]:
    """Files as given, folders expanded to their audio files (sorted, recursive), ``-`` kept."""
    for item in inputs:
        path = Path(item)
        if item != "-" and path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise CLIError(f"{item}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in this folder")
            yield from (str(p) for p in found)
        else:
            yield item


def classify(clf: AudioClassifier, name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Result record of one input: ``{"input", "predictions"[, "windows", "duration"]}``."""
    source: str | bytes = sys.stdin.buffer.read() if name == "-" else name
    try:
        frames, rate = audio_info(source)
    except AudioDecodeError as exc:
        raise AudioDecodeError(STDIN if name == "-" else name, exc.problem) from exc
    if args.windows or frames / rate > args.max_clip:
        result = clf.scan(source, window=args.window, hop=args.hop, top_k=args.top_k, aggregate=args.aggregate)
        record: dict[str, Any] = {"input": name, "predictions": result.aggregate, "duration": result.duration}
        if args.windows:
            record["windows"] = [w.to_dict() for w in result.windows]
        return record
    return {"input": name, "predictions": clf(source, top_k=args.top_k)}


def _print_table(record: dict[str, Any]) -> None:
    preds = " ".join(f"{p['label']}={p['score']:.3f}" for p in record["predictions"])
    print(f"{record['input']}\t{preds}")
    for w in record.get("windows", []):
        top = w["predictions"][0]
        print(f"  [{w['start']:8.2f}, {w['end']:8.2f}] s\t{top['label']}={top['score']:.3f}")


def run(args: argparse.Namespace) -> int:
    from ..deploy import AudioClassifier

    if not args.model:
        raise CLIError(f"no checkpoint: pass --model CHECKPOINT (or set ${MODEL_ENV})")
    if args.inputs.count("-") > 1:
        raise CLIError("stdin ('-') can be given only once")
    clf = AudioClassifier.from_pretrained(args.model, fuse=not args.no_fuse)
    failures = 0
    for name in expand_inputs(args.inputs):
        try:
            record = classify(clf, name, args)
        except AudioDecodeError as exc:
            print(f"arinext predict: skipping {exc}", file=sys.stderr)
            failures += 1
            continue
        if args.json:
            print(json.dumps(record))
        else:
            _print_table(record)
    return 1 if failures else 0
