"""``arinext events``: fit a frame-level head for a classifier and score event detection with sed_eval.

``arinext events fit CHECKPOINT --train DIR --val DIR`` stores ``frame_head.json`` +
``frame_head.safetensors`` in the checkpoint's save_pretrained directory (then ``arinext predict --events``
and ``AudioClassifier.from_pretrained`` use it); ``arinext events eval CHECKPOINT DIR`` reports event-based
F1, precision, recall, error rate and onset/offset errors on a set built by ``arinext data events``.
Both need the ``events`` extra (sed_eval).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..utils.jsonout import dumps, undefined_as_null, write_json
from . import CLIError, add_frontend_option, add_parser, progress_setting


def _stages(text: str) -> list[int]:
    """``"3,4"`` (stage numbers from 1, as in the paper) -> ``[2, 3]`` (indices)."""
    try:
        stages = [int(t) - 1 for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated stage numbers, got {text!r}") from exc
    if not stages or min(stages) < 0:
        raise argparse.ArgumentTypeError(f"stage numbers start at 1, got {text!r}")
    return stages


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_parser(sub, common, "events", help="fit a frame-level head and score sound event detection (sed_eval)")
    ev_sub = p.add_subparsers(dest="action", metavar="ACTION")
    ev_sub.required = True

    fit = add_parser(ev_sub, common, "fit", help="fit a frame head on event sets and store it with the checkpoint")
    fit.add_argument("checkpoint", help="save_pretrained directory, or a run directory with pretrained/")
    fit.add_argument("--train", required=True, type=Path, help="events set of training speakers (arinext data events)")
    fit.add_argument("--val", required=True, type=Path, help="events set of validation speakers: chooses L2 and decoding")
    fit.add_argument("--out", type=Path, default=None, help="where to store the head (default: the checkpoint's directory)")
    fit.add_argument("--context", type=int, default=2, help="neighbouring timestamps on each side fed to the head")
    fit.add_argument("--hidden", type=int, default=0, help="hidden ReLU units (0: a linear head)")
    fit.add_argument("--hop", type=float, default=0.05, help="timestamp spacing in seconds")
    fit.add_argument("--stages", type=_stages, default="3,4", help="model stages (from 1) of the timestamp embeddings")
    fit.add_argument("--seed", type=int, default=0, help="seed of the head's initialisation")
    add_frontend_option(fit)
    fit.set_defaults(func=run_fit)

    ev = add_parser(ev_sub, common, "eval", help="event-based metrics on an events set (sed_eval, 200 ms collar)")
    ev.add_argument("checkpoint", help="run directory, save_pretrained directory, RUN/best.pt or .pyth")
    ev.add_argument("data", type=Path, help="events set (arinext data events), e.g. of the test speakers")
    ev.add_argument("--head", choices=("auto", "frame", "clip"), default="auto", help="frame head or clip head per column")
    ev.add_argument("--tune-on", type=Path, default=None, help="choose the decoding on this set (default: stored/defaults)")
    ev.add_argument("--json", action="store_true", help="print the metrics as JSON")
    ev.add_argument("--out", type=Path, default=None, help="also write the metrics to this JSON file")
    add_frontend_option(ev)
    ev.set_defaults(func=run_eval)


def _head_dir(checkpoint: str, out: Path | None) -> Path:
    from ..checkpoints import resolve

    if out is not None:
        return out
    kind, target = resolve(checkpoint)
    if kind == "pretrained":
        return target
    raise CLIError(
        f"{checkpoint}: the frame head is stored in a save_pretrained directory; pass one (e.g. RUN/pretrained) "
        "or --out DIR"
    )


def run_fit(args: argparse.Namespace) -> int:
    from ..apps.event_detection import fit_frame_head
    from ..checkpoints import write_model_card
    from ..inference import AudioClassifier
    from ..utils.provenance import current_command

    directory = _head_dir(args.checkpoint, args.out)
    clf = AudioClassifier.from_pretrained(args.checkpoint, frontend=args.frontend, frame_head=False)
    head = fit_frame_head(
        clf, args.train, args.val, stages=args.stages, hop_ms=args.hop * 1000.0, context=args.context,
        hidden=args.hidden, seed=args.seed, progress=progress_setting(args),
    )  # fmt: skip
    head.info["command"] = current_command()
    path = head.save(directory)
    if (directory / "config.json").is_file() and (directory / "README.md").is_file():
        write_model_card(directory)  # adds the frame head's section
    v = head.info["validation"]
    print(f"wrote {path} ({head.in_features}-d embeddings x {2 * head.context + 1} timestamps -> "
          f"{len(head.labels)} classes + background)")  # fmt: skip
    print(f"validation: event F1 {v['f1']:.3f} (P {_num(v['precision'])}, R {_num(v['recall'])}) with "
          f"{json.dumps(head.decode.to_dict())}, l2 {head.info['l2']:g}")  # fmt: skip
    return 0


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"  # sed_eval leaves precision undefined without estimates


def _summary(m: dict[str, Any]) -> str:
    errors = ""
    if m["onset_mae_ms"] is not None:
        errors = f", onset/offset error {m['onset_mae_ms']:.0f}/{m['offset_mae_ms']:.0f} ms"
    return (
        f"{m['files']} files, {m['reference_events']} events, {m['head']}: event F1 {m['f1']:.3f} "
        f"(P {_num(m['precision'])}, R {_num(m['recall'])}, ER {_num(m['error_rate'])}){errors}; "
        f"collar {1000 * m['collar_s']:.0f} ms"
    )


def run_eval(args: argparse.Namespace) -> int:
    from ..apps.event_detection import evaluate_events
    from ..inference import AudioClassifier

    clf = AudioClassifier.from_pretrained(args.checkpoint, frontend=args.frontend)
    if args.head == "frame" and clf.frame_head is None:
        raise CLIError(f"{args.checkpoint}: no frame head stored with it (fit one with `arinext events fit`)")
    metrics = evaluate_events(clf, args.data, head=args.head, tune_on=args.tune_on, progress=progress_setting(args))
    metrics = undefined_as_null(metrics)  # an undefined ratio is null, as the summary's "n/a"
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, metrics, indent=2)
    print(dumps(metrics, what="metrics") if args.json else _summary(metrics))
    return 0
