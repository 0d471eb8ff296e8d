"""Sound event detection with a trained classifier: fit a frame head, choose decoding, score with sed_eval.

Sets come from ``arinext data events`` (``DIR/audio/*.flac`` + ``DIR/events.tsv``). The protocol:

1. **fit** (:func:`fit_frame_head`): timestamp embeddings of the mixtures of the *training* speakers (the
   backbone stays frozen), one label per timestamp (the event whose ``[onset, offset)`` holds it, else
   ``_background_``); a multinomial logistic regression (or one hidden layer) on standardised embeddings
   with ``context`` neighbours each side, full-batch L-BFGS with an L2 penalty;
2. **choose** the L2 weight and the decoding parameters (:class:`~arinext.inference.event_decoding.DecodeParams`) by
   event-based F1 on the mixtures of the *validation* speakers, then whether relabelling the events with
   the clip classifier (``relabel``) raises that F1;
3. **report** (:func:`evaluate_events`) event-based metrics on the mixtures of the *test* speakers with
   ``sed_eval.sound_event.EventBasedMetrics`` (onset collar 200 ms; offset collar max(200 ms, 20 % of the
   reference event's length), the DCASE convention).

Onset/offset errors are the mean absolute differences over the pairs that sed_eval's rule matches
(same label, both collars met; each reference and estimate used once, nearest onset first).
"""

from __future__ import annotations

import itertools
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..inference import AudioClassifier
from ..inference.event_decoding import DecodeParams, Event, FrameScores, decode_events
from ..inference.framehead import BACKGROUND, FrameHead, stack_context
from ..utils.errors import DataError, InputError, PathNotFoundError
from ..utils.optional import MissingExtraError
from ..utils.progress import progress_bar
from .builders.event_mixtures import read_event_table

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # dcase_util's pkg_resources deprecation warning
    try:
        import sed_eval
    except ImportError as exc:
        raise MissingExtraError("event-based metrics need sed_eval: pip install 'arinext[events]'") from exc

__all__ = [
    "COLLAR",
    "DECODE_GRID",
    "choose_decoding",
    "embed_set",
    "evaluate_events",
    "event_metrics",
    "fit_frame_head",
    "fit_lbfgs",
    "score_set",
]

log = logging.getLogger(__name__)

COLLAR = 0.2
OFFSET_FRACTION = 0.2

#: Decoding parameters tried on the validation set (every combination).
DECODE_GRID: dict[str, list[Any]] = {
    "threshold": [0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
    "low_ratio": [0.5, 0.75, 1.0],
    "median": [0.0, 0.15],
    "min_duration": [0.0, 0.1],
    "min_gap": [0.0, 0.1],
}

References = Mapping[str, Sequence[Mapping[str, Any]]]


def _audio_files(root: Path) -> list[Path]:
    if not (root / "audio").is_dir():
        raise PathNotFoundError(f"{root}: no audio/ folder (build a set with `arinext data events`)")
    files = sorted(p for p in (root / "audio").iterdir() if p.suffix.lower() in (".wav", ".flac"))
    if not files:
        raise PathNotFoundError(f"{root / 'audio'}: no .wav or .flac files (build a set with `arinext data events`)")
    return files


def _matched_errors(ref: Sequence[Mapping[str, Any]], est: Sequence[Event], collar: float) -> list[tuple[float, float]]:
    pairs, used = [], set()
    for r in sorted(ref, key=lambda e: e["onset"]):
        off_collar = max(collar, OFFSET_FRACTION * (r["offset"] - r["onset"]))
        cands = [
            (abs(e.onset - r["onset"]), i)
            for i, e in enumerate(est)
            if i not in used
            and e.label == r["event_label"]
            and abs(e.onset - r["onset"]) <= collar
            and abs(e.offset - r["offset"]) <= off_collar
        ]
        if cands:
            i = min(cands)[1]
            used.add(i)
            pairs.append((est[i].onset - r["onset"], est[i].offset - r["offset"]))
    return pairs


def _number(v: Any, undefined: float | None = None) -> float | None:
    """sed_eval's value as a float; its NaN (an undefined ratio) as ``undefined``."""
    v = float(v)
    return undefined if np.isnan(v) else v


def event_metrics(
    reference: References, estimated: Mapping[str, Sequence[Event]], labels: Sequence[str], collar: float = COLLAR
) -> dict[str, Any]:
    """Event-based metrics of ``estimated`` against ``reference`` (per file), computed by sed_eval.

    Returns ``f1``, ``precision``, ``recall``, ``error_rate``, ``deletion_rate``, ``insertion_rate``,
    ``substitution_rate`` (sed_eval, micro-averaged), ``class_f1`` (per label), ``reference_events``,
    ``estimated_events``, ``matched`` and ``onset_mae_ms``/``offset_mae_ms`` over the matched pairs.
    """
    metric = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=list(labels), t_collar=collar, percentage_of_length=OFFSET_FRACTION
    )
    errors: list[tuple[float, float]] = []
    n_est = 0
    for name in sorted(set(reference) | set(estimated)):
        ref = [dict(e, filename=name) for e in reference.get(name, [])]
        est = list(estimated.get(name, []))
        n_est += len(est)
        est_dicts = [{"filename": name, "event_label": e.label, "onset": e.onset, "offset": e.offset} for e in est]
        metric.evaluate(reference_event_list=ref, estimated_event_list=est_dicts)
        errors += _matched_errors(ref, est, collar)
    overall = metric.results_overall_metrics()
    class_wise = metric.results_class_wise_metrics()
    on = [abs(a) for a, _ in errors]
    off = [abs(b) for _, b in errors]
    return {
        "f1": _number(overall["f_measure"]["f_measure"], 0.0),  # no estimates (precision undefined): F1 0
        "precision": _number(overall["f_measure"]["precision"]),
        "recall": _number(overall["f_measure"]["recall"]),
        "error_rate": _number(overall["error_rate"]["error_rate"]),
        "deletion_rate": _number(overall["error_rate"]["deletion_rate"]),
        "insertion_rate": _number(overall["error_rate"]["insertion_rate"]),
        "substitution_rate": _number(overall["error_rate"]["substitution_rate"]),
        "class_f1": {k: _number(v["f_measure"]["f_measure"], 0.0) for k, v in class_wise.items()},
        "reference_events": int(sum(len(v) for v in reference.values())),
        "estimated_events": int(n_est),
        "matched": len(errors),
        "onset_mae_ms": round(1000 * float(np.mean(on)), 1) if on else None,
        "offset_mae_ms": round(1000 * float(np.mean(off)), 1) if off else None,
        "collar_s": collar,
    }


def score_set(
    clf: AudioClassifier, root: str | Path, head: str = "auto", progress: bool | None = False
) -> dict[str, FrameScores]:
    """Frame-level scores of every file of an events set: ``{filename: FrameScores}``."""
    files = _audio_files(Path(root))
    return {f.name: clf.framewise(f, head=head) for f in progress_bar(files, enabled=progress, desc="score", unit="file")}


def _grid(mode: str) -> list[DecodeParams]:
    out = []
    for combo in itertools.product(*DECODE_GRID.values()):
        g = dict(zip(DECODE_GRID, combo))
        out.append(
            DecodeParams(g["threshold"], g["threshold"] * g["low_ratio"], g["median"], g["min_duration"], g["min_gap"], mode)  # type: ignore[arg-type]
        )
    return out


def choose_decoding(
    frames: Mapping[str, FrameScores], reference: References, labels: Sequence[str], modes: Sequence[str]
) -> tuple[DecodeParams, float]:
    """The decoding parameters of :data:`DECODE_GRID` x ``modes`` with the best event F1 on ``frames``."""
    best: tuple[float, DecodeParams] | None = None
    for p in (p for mode in modes for p in _grid(mode)):
        est = {name: decode_events(fs, p) for name, fs in frames.items()}
        f1 = event_metrics(reference, est, labels)["f1"]
        if best is None or f1 > best[0] + 1e-12:
            best = (f1, p)
    assert best is not None
    return best[1], best[0]


def embed_set(
    clf: AudioClassifier, root: str | Path, stages: Sequence[int], hop_ms: float, progress: bool | None = False
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Timestamp embeddings of every file of an events set: ``{filename: (times s, (M, D))}``."""
    files = _audio_files(Path(root))
    bar = progress_bar(files, enabled=progress, desc="embed", unit="file")
    return {f.name: clf.timestamp_embeddings(f, hop=hop_ms / 1000.0, stages=stages) for f in bar}


def _frame_targets(times: np.ndarray, events: Sequence[Mapping[str, Any]], index: Mapping[str, int]) -> np.ndarray:
    y = np.full(len(times), len(index), dtype=np.int64)  # background
    for e in events:
        if e["event_label"] not in index:
            raise DataError(f"event label {e['event_label']!r} is not a class of the model ({sorted(index)})")
        y[(times >= e["onset"]) & (times < e["offset"])] = index[e["event_label"]]
    return y


def _head_frames(head: FrameHead, times: np.ndarray, emb: np.ndarray) -> FrameScores:
    """Frame scores of precomputed embeddings (the head's own label order)."""
    probs = head.scores(torch.from_numpy(emb)[None])[0]
    return FrameScores(times, probs.numpy(), list(head.labels), "frame head")


def fit_lbfgs(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, l2: float, max_iter: int = 300) -> None:
    """Fit ``module`` (logits of ``x``) to minimise mean cross-entropy + ``l2`` * (sum of squared weights)
    with full-batch L-BFGS (strong Wolfe line search): a logistic regression for a linear ``module``."""
    params = list(module.parameters())
    weights = [p for n, p in module.named_parameters() if n.endswith("weight")]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(module(x), y) + l2 * sum((w**2).sum() for w in weights)
        loss.backward()
        return loss

    opt.step(closure)


def fit_frame_head(
    clf: AudioClassifier,
    train: str | Path,
    validation: str | Path,
    stages: Sequence[int] = (-2, -1),
    hop_ms: float = 50.0,
    context: int = 2,
    hidden: int = 0,
    l2: Sequence[float] = (1e-3, 1e-2),
    modes: Sequence[str] = ("activity", "exclusive"),
    relabel: bool = True,
    max_iter: int = 300,
    seed: int = 0,
    progress: bool | None = False,
) -> FrameHead:
    """Fit a :class:`~arinext.inference.framehead.FrameHead` for ``clf`` (see the module docstring).

    The returned head carries the fingerprint of ``clf``'s weights, the decoding parameters and L2 weight
    chosen on ``validation``, and ``info`` with the validation metrics and the sets used; it is not
    attached to ``clf`` (``clf.attach_frame_head(head)``) nor saved (``head.save(DIR)``).
    """
    tic = time.perf_counter()
    torch.manual_seed(seed)
    labels = list(clf.labels)
    if BACKGROUND in labels:
        raise InputError(f"the model already has a {BACKGROUND!r} class")
    index = {name: i for i, name in enumerate(labels)}
    refs = {"train": read_event_table(train), "val": read_event_table(validation)}
    emb = {
        "train": embed_set(clf, train, stages, hop_ms, progress),
        "val": embed_set(clf, validation, stages, hop_ms, progress),
    }
    width = next(iter(emb["train"].values()))[1].shape[1]
    x_raw = torch.cat([stack_context(torch.from_numpy(e)[None], context)[0] for _, e in emb["train"].values()])
    y = torch.cat(
        [torch.from_numpy(_frame_targets(t, refs["train"].get(n, []), index)) for n, (t, _) in emb["train"].items()]
    )
    mean, std = x_raw.mean(0), x_raw.std(0).clamp_min(1e-6)
    x = (x_raw - mean) / std
    del x_raw
    best: tuple[float, float, FrameHead, DecodeParams, dict[str, Any]] | None = None
    for lam in l2:
        torch.manual_seed(seed)
        head = FrameHead(labels, width, stages, hop_ms, context, hidden)
        head.mean.copy_(mean)
        head.std.copy_(std)
        fit_lbfgs(head.net, x, y, lam, max_iter)
        head.eval()
        frames = {name: _head_frames(head, times, e) for name, (times, e) in emb["val"].items()}
        params, f1 = choose_decoding(frames, refs["val"], labels, modes)
        if relabel:  # the clip classifier's second opinion on the labels, kept if it helps on validation
            audio = Path(validation) / "audio"
            both = replace(params, relabel=True)
            est = {name: clf.events(audio / name, frames=fs, params=both) for name, fs in frames.items()}
            f1_both = event_metrics(refs["val"], est, labels)["f1"]
            log.info("frame head l2=%g: validation F1 %.3f without, %.3f with relabelling", lam, f1, f1_both)
            if f1_both > f1 + 1e-12:
                params, f1 = both, f1_both
        log.info("frame head l2=%g: validation event F1 %.3f with %s", lam, f1, params)
        if best is None or f1 > best[0] + 1e-12:
            audio = Path(validation) / "audio"
            est = {name: clf.events(audio / name, frames=fs, params=params) for name, fs in frames.items()}
            best = (f1, lam, head, params, event_metrics(refs["val"], est, labels))
    assert best is not None
    f1, lam, head, params, val_metrics = best
    head.model_fingerprint = clf.fingerprint
    head.decode = params
    head.info = {
        "l2": lam,
        "train_set": str(train),  # as given: the head may travel (Hub), local absolute paths should not
        "validation_set": str(validation),
        "train_frames": int(len(y)),
        "train_event_frames": int((y < len(labels)).sum()),
        "validation": {k: v for k, v in val_metrics.items() if k != "class_f1"},
        "seed": seed,
        "seconds": round(time.perf_counter() - tic, 1),
    }
    return head


def evaluate_events(
    clf: AudioClassifier,
    root: str | Path,
    head: str = "auto",
    params: DecodeParams | None = None,
    tune_on: str | Path | None = None,
    modes: Sequence[str] | None = None,
    progress: bool | None = False,
) -> dict[str, Any]:
    """Event-based metrics (:func:`event_metrics`) of ``clf`` on an events set.

    Decoding: ``params`` if given; else chosen on the set ``tune_on`` (over :data:`DECODE_GRID` and
    ``modes``) if given; else the frame head's stored parameters, or the classifier's defaults for the clip
    head (:meth:`AudioClassifier.events`). The result also names the ``head`` used and the ``decode``
    parameters.
    """
    reference = read_event_table(root)
    frames = score_set(clf, root, head, progress)
    source = next(iter(frames.values())).source
    tuned: dict[str, Any] = {}
    if params is None and tune_on is not None:
        if modes is None:
            modes = ("activity", "exclusive") if source == "frame head" else (
                ("exclusive", "activity") if clf.activation == "softmax" else ("independent",)
            )
        val_frames = score_set(clf, tune_on, head, progress)
        params, f1 = choose_decoding(val_frames, read_event_table(tune_on), clf.labels, modes)
        tuned = {"tuned_on": str(tune_on), "tuned_f1": f1}
    if params is None:
        params = clf.decode_params_for(next(iter(frames.values())))
    audio = Path(root) / "audio"
    estimated = {name: clf.events(audio / name, frames=fs, params=params) for name, fs in frames.items()}
    metrics = event_metrics(reference, estimated, clf.labels)
    return {"head": source, "decode": params.to_dict(), **tuned, **metrics, "files": len(frames)}
