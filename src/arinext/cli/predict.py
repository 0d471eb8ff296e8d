"""``arinext predict``: classify audio files, folders or stdin with a checkpoint.

Clips up to ``--max-clip`` seconds run whole; longer files are scanned in windows with bounded memory
and reported by their clip-level aggregate (``--windows`` prints every window as well).

``--events`` reports sound events instead: frame-level scores of the whole file (read block by block),
decoded into ``(label, onset, offset, score)``; with ``--out DIR`` each input also gets
``DIR/<name>.events.json`` (events, decoding parameters and the frame scores) and, with ``--plot``,
``DIR/<name>.events.png`` (scores over time with the events shaded; needs the ``plot`` extra).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..audio.io import AudioDecodeError, audio_info
from ..data.manifests.custom import AUDIO_SUFFIXES
from ..utils.jsonout import dumps, write_json
from . import CLIError, add_frontend_option, add_parser

if TYPE_CHECKING:
    from ..inference import AudioClassifier

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
    add_frontend_option(p)
    e = p.add_argument_group("sound events")
    e.add_argument("--events", action="store_true", help="report events (label, onset, offset, score) per file")
    e.add_argument(
        "--head",
        choices=("auto", "frame", "clip"),
        default="auto",
        help="frame-level scores from the checkpoint's frame head, or the clip head per column (auto: frame if stored)",
    )
    e.add_argument("--threshold", type=float, default=None, help="event threshold (default: the stored decoding)")
    e.add_argument("--out", type=Path, default=None, help="write <name>.events.json (and .png with --plot) here")
    e.add_argument("--plot", action="store_true", help="also plot scores over time (needs arinext[plot]; with --out)")
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


def _output_stem(name: str, index: int) -> str:
    return "stdin" if name == "-" else f"{index:03d}_{Path(name).stem}"


def detect(clf: AudioClassifier, name: str, index: int, args: argparse.Namespace) -> dict[str, Any]:
    """Event record of one input: ``{"input", "duration", "head", "decode", "events"}``; writes files with --out."""
    source: str | bytes = sys.stdin.buffer.read() if name == "-" else name
    try:
        n, rate = audio_info(source)
    except AudioDecodeError as exc:
        raise AudioDecodeError(STDIN if name == "-" else name, exc.problem) from exc
    frames = clf.framewise(source, head=args.head)
    overrides = {} if args.threshold is None else {"threshold": args.threshold, "low": args.threshold}
    used = replace(clf.decode_params_for(frames), **overrides)
    events = clf.events(source, frames=frames, params=used)
    duration = n / rate
    record = {"input": name, "duration": duration, "head": frames.source, "decode": used.to_dict(),
              "events": [e.to_dict() for e in events]}  # fmt: skip
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = _output_stem(name, index)
        full = {**record, "frames": frames.to_dict()}
        write_json(args.out / f"{stem}.events.json", full)
        if args.plot:
            from ..inference.eventplot import plot_frame_scores

            plot_frame_scores(frames, events, args.out / f"{stem}.events.png", title=name, threshold=used.threshold)
    return record


def _print_events(record: dict[str, Any]) -> None:
    print(f"{record['input']}\t{len(record['events'])} events in {record['duration']:.2f} s ({record['head']})")
    for e in record["events"]:
        print(f"  [{e['onset']:8.2f}, {e['offset']:8.2f}] s\t{e['label']}={e['score']:.3f}")


def _print_table(record: dict[str, Any]) -> None:
    preds = " ".join(f"{p['label']}={p['score']:.3f}" for p in record["predictions"])
    print(f"{record['input']}\t{preds}")
    for w in record.get("windows", []):
        top = w["predictions"][0]
        print(f"  [{w['start']:8.2f}, {w['end']:8.2f}] s\t{top['label']}={top['score']:.3f}")


def run(args: argparse.Namespace) -> int:
    from ..inference import AudioClassifier

    if not args.model:
        raise CLIError(f"no checkpoint: pass --model CHECKPOINT (or set ${MODEL_ENV})")
    if args.inputs.count("-") > 1:
        raise CLIError("stdin ('-') can be given only once")
    if (args.out is not None or args.plot or args.threshold is not None) and not args.events:
        raise CLIError("--out, --plot and --threshold go with --events")
    if args.plot and args.out is None:
        raise CLIError("--plot writes files: give --out DIR")
    if args.plot:
        from ..inference import eventplot  # noqa: F401  (fails now, with the extra's name, if matplotlib is missing)
    clf = AudioClassifier.from_pretrained(args.model, frontend=args.frontend, fuse=not args.no_fuse)
    if args.events and args.head == "frame" and clf.frame_head is None:
        raise CLIError(f"{args.model}: no frame head stored with it (fit one with `arinext events fit`)")
    failures = 0
    for index, name in enumerate(expand_inputs(args.inputs)):
        try:
            record = detect(clf, name, index, args) if args.events else classify(clf, name, args)
        except AudioDecodeError as exc:
            print(f"arinext predict: skipping {exc}", file=sys.stderr)
            failures += 1
            continue
        if args.json:
            print(dumps(record, what=name))
        elif args.events:
            _print_events(record)
        else:
            _print_table(record)
    return 1 if failures else 0
