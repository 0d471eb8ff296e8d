"""The end-to-end demo: train, evaluate, fuse, export, classify and time a keyword spotter.

Runs offline on the bundled ten-word sample (``arinext/assets/keywords10``, built from Debian's
speech synthesizers by ``arinext data keywords``) or on any dataset in the Speech Commands V2 layout,
and writes ``report.md`` with the measured numbers and plots into the output directory.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..audio.frontend import FrontendConfig, get_preset
from ..checkpoints import load
from ..data import AudioClipDataset, get_manifest, make_loader
from ..data.manifests.speech_commands import word_folders
from ..inference import AudioClassifier
from ..layers.reparam import reparameterize_model
from ..models import create_model
from ..train import FitResult, fit, load_config
from ..train.config import DataConfig
from ..train.data import holdout_split
from ..train.evaluation import evaluate_checkpoint
from ..utils.complexity import count_macs, count_params
from ..utils.errors import ConfigError
from ..utils.jsonout import undefined_as_null, write_json
from ..utils.progress import progress_bar
from ..utils.timing import time_interleaved

__all__ = ["DEMO_FRONTEND", "DemoOptions", "bundled_sample", "featurize_subset", "run_demo", "train_demo_model"]

log = logging.getLogger(__name__)

#: The demo's front end: the paper's Speech Commands preset (16 kHz, n_fft 2048, HTK mels, log) with the
#: frame rate and band count of common keyword spotters (25 ms / 10 ms, 64 bands): 1 s -> 101 x 64.
DEMO_FRONTEND = dict(win_ms=25.0, hop_ms=10.0, n_mels=64, num_frames=101, clip_seconds=1.0)


def bundled_sample() -> Path:
    """Path of the bundled ten-word keyword sample (Speech Commands V2 layout, FLAC)."""
    return Path(str(files("arinext") / "assets" / "keywords10"))


@dataclass
class DemoOptions:
    """What the demo trains and measures; the defaults fit 2 CPU cores and 10 minutes."""

    out: str = "runs/demo"
    data: str | None = None
    model: str = "audio_rep_inception_next_tiny"
    #: the most epochs; the time budget picks the number (``minutes=None``: exactly this many)
    epochs: int = 120
    #: time budget of the whole demo: the epochs are set from the first epoch's measured time
    minutes: float | None = 4.5
    lr: float = 0.1
    batch_size: int = 32
    num_workers: int = 2
    seed: int = 0
    frontend: dict[str, Any] = field(default_factory=lambda: dict(DEMO_FRONTEND))
    baseline: str = "slowfast_audio_r50"
    bench_runs: int = 20
    progress: bool | None = None
    #: waveform augmentation of the training clips (``data.augment`` of :mod:`arinext.audio.waveaug`)
    augment: dict[str, Any] = field(default_factory=dict)
    #: ``"COLUMN=VALUE"`` (e.g. ``"engine=flite"``): train without that source, report it side by side
    holdout: str | None = None

    def holdout_spec(self) -> dict[str, Any]:
        """``data.holdout`` of the recipe: ``{}`` or ``{column, values: [value]}``."""
        if not self.holdout:
            return {}
        column, sep, value = self.holdout.partition("=")
        if not sep or not column or not value:
            raise ConfigError(f"--holdout must look like COLUMN=VALUE (e.g. engine=flite), got {self.holdout!r}")
        return {"column": column, "values": [value]}


#: Time kept for the phases after training (evaluation, fusion checks, ONNX export, int8 check, classification,
#: benchmark), in first-epoch times: they took 2.1 of them in ``arinext demo`` (5.2 s after a 2.5 s first epoch;
#: BENCHMARKS.md, "Training speed"), and this keeps more than twice that.
AFTER_TRAINING_EPOCHS = 5.0
#: the budget never trains fewer epochs than this (it then says that the budget will be exceeded)
MIN_BUDGET_EPOCHS = 10


def budget_epochs(minutes: float, elapsed: float, first_epoch: float, max_epochs: int) -> int:
    """Epochs that fit the demo into ``minutes`` after ``elapsed`` seconds, the first epoch taking ``first_epoch``.

    The rest of the budget, less :data:`AFTER_TRAINING_EPOCHS` epoch-times for the later phases, is divided
    by the first epoch's time plus 10% (validation passes and margin; later epochs are a little faster, as
    the data workers and kernels are already warm). Between :data:`MIN_BUDGET_EPOCHS` and ``max_epochs``.
    """
    left = minutes * 60.0 - elapsed - AFTER_TRAINING_EPOCHS * first_epoch
    fit = 1 + int(max(0.0, left) // (1.1 * first_epoch))
    epochs = max(min(MIN_BUDGET_EPOCHS, max_epochs), min(max_epochs, fit))
    if fit < MIN_BUDGET_EPOCHS:
        log.warning("the first epoch took %.1f s: %d epochs (the fewest the demo trains) will exceed the %.1f-minute "
                    "budget", first_epoch, epochs, minutes)  # fmt: skip
    return epochs


def train_demo_model(
    opts: DemoOptions, root: Path, words: list[str], out: Path, plan: Callable[[float], int] | None = None
) -> FitResult:
    """Train the demo's keyword model into ``out``; ``plan`` (see :func:`arinext.train.fit`) may set the epochs."""
    lr_steps = [int(opts.epochs * 0.6), int(opts.epochs * 0.85)]
    cfg = load_config(
        {
            "model": opts.model,
            "model_args": {"drop_rate": 0.2},
            "data": {
                "dataset": "speech_commands_v2",
                "root": str(root),
                "dataset_args": {"labels": words},
                "preset": "speech_commands_v2",
                "frontend": opts.frontend,
                "batch_size": opts.batch_size,
                "num_workers": opts.num_workers,
                "spec_augment": True,
                # the paper's masks are sized for 512 frames x 128 bands; scaled to the demo's 101 x 64
                "spec_augment_args": {"time_mask": 10, "freq_mask": 13},
                "background_noise": "auto",
                "noise_snr_db": [5.0, 25.0],
                "augment": opts.augment,
                "holdout": opts.holdout_spec(),
            },
            "optim": {
                "lr": opts.lr,
                "epochs": opts.epochs,
                "lr_steps": lr_steps,
                "lr_factors": [0.1, 0.01],
                "weight_decay": 1e-4,
            },
            "precise_bn_batches": 0,
            "eval_every": max(1, opts.epochs // 8),
            "seed": opts.seed,
            "device": "cpu",
        }
    )
    return fit(cfg, out, progress=opts.progress, plan_epochs=plan)


def featurize_subset(
    root: Path, words: list[str], fe: FrontendConfig, subset: str, limit: int | None = None, holdout: Any = None
) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """Log-mels (no augmentation), targets and paths of one subset; ``limit`` clips spread over all words.
    With ``holdout`` (a ``data.holdout`` mapping) the subsets are those of the held-out split."""
    if holdout:
        data = DataConfig(dataset="speech_commands_v2", root=str(root), dataset_args={"labels": words}, holdout=holdout)
        manifest = holdout_split(data).subsets[subset]
    else:
        manifest = get_manifest("speech_commands_v2", root, subset, labels=words)
    if limit is not None:
        manifest.records = manifest.records[:: max(1, len(manifest.records) // limit)][:limit]
    ds = AudioClipDataset(manifest, fe, training=False, on_bad_clip="error")
    xs, ys = [], []
    for batch in make_loader(ds, 64, False, 0):
        xs.append(batch["inputs"])
        ys.append(batch["target"].numpy())
    return torch.cat(xs), np.concatenate(ys), [r.path for r in manifest.records]


@torch.no_grad()
def _predictions(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    return torch.cat([model(chunk) for chunk in x.split(64)]).argmax(-1).numpy()


def _latency(opts: DemoOptions, trained: nn.Module, num_classes: int, shape: tuple[int, ...]) -> dict[str, Any]:
    x = torch.randn(*shape)
    forms: dict[str, nn.Module] = {
        "ARIN training form": trained.eval(),
        "ARIN fused (paper)": reparameterize_model(trained),
        "ARIN fused (full fold)": reparameterize_model(trained, fold="full"),
    }
    baseline = create_model(opts.baseline, num_classes=num_classes).eval()
    forms[f"{opts.baseline} (eager)"] = baseline
    calls = {name: (lambda m=m: m(x)) for name, m in forms.items()}
    with torch.no_grad():
        stats = time_interleaved(calls, runs=opts.bench_runs, warmup=3, progress=opts.progress)
    return {
        name: {
            "median_ms": stats[name].median_ms,
            "p90_ms": stats[name].p90_ms,
            "params": count_params(m),
            "macs": count_macs(m, shape)["total"],
        }
        for name, m in forms.items()
    }


def _plot_latency(latency: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plotting is optional
        return None
    names = list(latency)
    values = [latency[n]["median_ms"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.barh(names, values, color=["#888", "#4a7", "#2a5", "#c63"][: len(names)])
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.1f} ms", va="center")
    ax.invert_yaxis()
    ax.set_xlabel("median latency, batch 1 (ms)")
    ax.set_xlim(0, max(values) * 1.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_demo(opts: DemoOptions) -> dict[str, Any]:
    """Run every phase and write ``report.md``; returns the numbers it reports."""
    start = time.perf_counter()
    torch.manual_seed(opts.seed)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(opts.data) if opts.data else bundled_sample()
    words = word_folders(root)
    fe = get_preset("speech_commands_v2", **opts.frontend)
    phases = ["train", "evaluate", "fuse", "export", "classify", "benchmark", "report"]
    bar = progress_bar(phases, enabled=opts.progress, desc="demo", unit="phase")
    data_name = str(root) if opts.data else "the bundled sample (arinext/assets/keywords10)"
    results: dict[str, Any] = {"model": opts.model, "words": words, "data": data_name, "frontend": fe.to_dict(),
                               "augment": sorted(k for k, v in opts.augment.items() if v)}  # fmt: skip
    timings: dict[str, float] = {}

    def phase(name: str) -> None:
        bar.set_postfix_str(name)
        timings[name] = time.perf_counter()

    def done(name: str) -> None:
        timings[name] = time.perf_counter() - timings[name]
        bar.update(1)

    phase("train")
    budget: dict[str, Any] = {"minutes": opts.minutes, "max_epochs": opts.epochs}

    def plan(first_epoch: float) -> int:
        elapsed = time.perf_counter() - start
        epochs = budget_epochs(opts.minutes, elapsed, first_epoch, opts.epochs)  # type: ignore[arg-type]
        budget.update(first_epoch_seconds=first_epoch, elapsed_after_first_epoch=elapsed)
        log.info("time budget %g min: the first epoch took %.1f s, so the demo trains %d epochs (at most %d)",
                 opts.minutes, first_epoch, epochs, opts.epochs)  # fmt: skip
        return epochs

    run = train_demo_model(opts, root, words, out / "train", plan=plan if opts.minutes else None)
    run.model.eval()
    epochs = len(run.history)
    results["train"] = {"best_val_top1": run.best, "best_epoch": run.best_epoch, "epochs": epochs, "budget": budget}
    done("train")

    phase("evaluate")
    holdout = opts.holdout_spec()
    has_engine = any(r.value("engine") for r in get_manifest("speech_commands_v2", root, "testing", labels=words).records)
    metrics = evaluate_checkpoint(
        out / "train" / "best.pt", out / "eval", progress=opts.progress, by="engine" if has_engine else None
    )
    results["test"] = {
        "top1": metrics["training_form"]["top1"],
        "top1_fused": metrics["fused"]["top1"],
        "clips": metrics["clips"],
        "max_abs_prob_diff": metrics["max_abs_prob_diff"],
        "by_engine": metrics.get("by", {}).get("engine", {}),
    }
    if holdout:
        results["holdout"] = {
            "source": opts.holdout,
            "heldout_top1": metrics["heldout"]["training_form"]["top1"],
            "heldout_clips": metrics["heldout"]["clips"],
            "gap_top1": metrics["gap_top1"],
            "split": metrics["holdout"],
        }
    done("evaluate")

    phase("fuse")
    best = load(out / "train" / "pretrained")
    x, y, paths = featurize_subset(root, words, fe, "testing", holdout=holdout)
    forms = {
        "training form": best,
        "fused (paper)": reparameterize_model(best),
        "fused (full fold)": reparameterize_model(best, fold="full"),
    }
    preds = {name: _predictions(m, x) for name, m in forms.items()}
    with torch.no_grad():
        logits = {name: m(x) for name, m in forms.items()}
    results["test_clips"] = len(y)
    results["fusion"] = {
        name: {
            "accuracy": float((p == y).mean()),
            "same_predictions": int((p == preds["training form"]).sum()),
            "max_abs_logit_diff": float((logits[name] - logits["training form"]).abs().max()),
        }
        for name, p in preds.items()
    }
    done("fuse")

    phase("export")
    from ..export.int8 import export_int8
    from ..export.onnx import export_onnx
    from ..export.runtime import onnx_logits, onnx_session

    report = export_onnx(best, out / "model.onnx", frontend=fe, labels=words)
    session = onnx_session(out / "model.onnx")
    onnx_pred = onnx_logits(session, x.numpy()).argmax(-1)
    # calibration ranges come from training clips; the int8 check runs on the test clips, never calibrated on;
    # a file that fails the check is refused (removed) as `arinext export --quantize int8` refuses it
    calib = list(featurize_subset(root, words, fe, "training", limit=128, holdout=holdout)[0].split(16))
    test = list(zip(x.split(64), torch.from_numpy(y).split(64)))
    int8 = export_int8(best, out / "model.onnx", calib, test, source="test clips", frontend=fe, labels=words,
                       latency_repeats=0)  # fmt: skip
    check = int8.check
    results["export"] = {
        "onnx_check_max_abs_diff": report.max_abs_diff,
        "onnx_accuracy": float((onnx_pred == y).mean()),
        "onnx_same_predictions": int((onnx_pred == preds["training form"]).sum()),
        "int8_accuracy": check.int8_accuracy,
        "int8_check": {**check.to_dict(), "summary": check.summary()},
        "int8_recipe": int8.recipe,
        "int8_calibration_clips": int8.calibration_clips,
        "int8_dead_bn_channels": int8.dead_channels,
        "onnx_mb": int8.size_mb["fp32"],
        "int8_mb": int8.size_mb["int8"] if int8.kept else None,
    }
    done("export")

    phase("classify")
    clf = AudioClassifier.from_pretrained(out / "train" / "pretrained")
    example = paths[0]
    results["classify"] = {"file": str(Path(example).relative_to(root)), "top3": clf(example, top_k=3)}
    done("classify")

    phase("benchmark")
    results["latency"] = _latency(opts, best, len(words), (1, 1, fe.num_frames, fe.n_mels))
    results["latency_setup"] = {"threads": torch.get_num_threads(),
                                "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset")}  # fmt: skip
    done("benchmark")

    phase("report")
    _plot_latency(results["latency"], out / "latency.png")
    results["phase_seconds"] = {k: v for k, v in timings.items() if k != "report"}
    results["train"]["budget"]["total_seconds"] = time.perf_counter() - start
    write_json(out / "results.json", undefined_as_null(results), indent=2, default=str)
    (out / "report.md").write_text(render_report(results))
    done("report")
    bar.close()
    return results


def _int8_line(e: dict[str, Any]) -> str:
    c = e["int8_check"]
    verdict = "passed" if c["passed"] else f"**refused** ({c['reason']}); the int8 file was removed"
    return (
        f"int8 check (as `arinext export --quantize int8` runs it, on the {c['clips']} test clips, never used for "
        f"calibration): top-1 agreement with ONNX fp32 {c['agreement']:.1%} (threshold {c['min_agreement']:.0%}), "
        f"top-1 fp32 {c['fp32_accuracy']:.1%}, int8 {c['int8_accuracy']:.1%}, portable to x64 CPUs without VNNI: "
        f"{'yes' if c['portable'] else 'no'}; verdict: {verdict}. Recipe: {e['int8_recipe']}, calibrated on "
        f"{e['int8_calibration_clips']} training clips; {len(e['int8_dead_bn_channels'])} BatchNorm(s) with dead "
        "channels neutralized before folding (BENCHMARKS.md, int8)."
    )


def _source_lines(r: dict[str, Any]) -> list[str]:
    """The report's "by source" table: unseen speakers per engine and, with a held-out source, its accuracy."""
    by, held = r["test"].get("by_engine") or {}, r.get("holdout")
    if not by and not held:
        return []
    lines = ["## Accuracy by source", "", "| source | test clips | top-1 (training form) |", "|---|---:|---:|"]
    lines += [f"| {engine}, unseen speakers | {row['clips']} | {row['top1']:.1%} |" for engine, row in by.items()]
    if held:
        lines += [
            f"| all trained-on sources, unseen speakers (in-source) | {r['test']['clips']} | {r['test']['top1']:.1%} |",
            f"| held-out source {held['source']} (never trained on) | {held['heldout_clips']} | {held['heldout_top1']:.1%} |",
            "",
            f"Held out: {held['source']}, and every clip sharing a speaker with it "
            f"({sum(held['split']['removed_by_closure'].values())} clips). Gap: {100 * held['gap_top1']:.1f} points.",
        ]
    return [*lines, ""]


def _budget_line(t: dict[str, Any]) -> str:
    b = t["budget"]
    total = f"{b['total_seconds']:.0f} s in all" if "total_seconds" in b else ""
    if not b.get("minutes"):
        return f"No time budget (`--minutes 0`): {t['epochs']} epochs as asked; {total}."
    return (
        f"Time budget {b['minutes']:g} min (`--minutes`): the first epoch took {b['first_epoch_seconds']:.1f} s, "
        f"so the demo trained {t['epochs']} epochs (at most {b['max_epochs']}); {total}."
    )


def render_report(r: dict[str, Any]) -> str:
    """Markdown report of a :func:`run_demo` result."""
    fe, n_test = r["frontend"], r["test_clips"]
    lines = [
        "# arinext demo report",
        "",
        f"Model `{r['model']}` trained from scratch for {r['train']['epochs']} epochs on {r['data']} "
        f"({len(r['words'])} words: {', '.join(r['words'])}), with background noise, SpecAugment"
        f"{' and waveform augmentation (' + ', '.join(r['augment']) + ')' if r.get('augment') else ''}. "
        f"Front end: {fe['sample_rate']} Hz, {fe['win_ms']:g}/{fe['hop_ms']:g} ms, {fe['n_mels']} mel bands, "
        f"{fe['num_frames']} frames per clip. Test speakers are never seen in training.",
        "",
        "## Accuracy on unseen test speakers",
        "",
        "| form | test top-1 | predictions equal to the training form |",
        "|---|---|---|",
    ]
    for name, row in r["fusion"].items():
        lines.append(f"| {name} | {row['accuracy']:.1%} | {row['same_predictions']}/{n_test} |")
    e = r["export"]
    lines += [
        f"| ONNX Runtime fp32 | {e['onnx_accuracy']:.1%} | {e['onnx_same_predictions']}/{n_test} |",
        f"| ONNX Runtime int8 (static) | {e['int8_accuracy']:.1%} | "
        + f"{round(e['int8_check']['agreement'] * n_test)}/{n_test} (of ONNX fp32's) |",
        "",
        f"Best validation top-1 {r['train']['best_val_top1']:.1%} at epoch {r['train']['best_epoch']}; "
        f"`arinext eval` on the test split: {r['test']['top1']:.1%} (training form), "
        f"{r['test']['top1_fused']:.1%} (fused), largest probability difference {r['test']['max_abs_prob_diff']:.1e}. "
        f"Fused logits differ from the training form's by at most "
        f"{max(v['max_abs_logit_diff'] for v in r['fusion'].values()):.1e}; the ONNX export check "
        f"(onnxruntime vs PyTorch) by {e['onnx_check_max_abs_diff']:.1e}. "
        f"ONNX file {e['onnx_mb']:.2f} MB"
        + (f", int8 {e['int8_mb']:.2f} MB." if e["int8_mb"] is not None else "; the int8 file was refused."),
        "",
        _int8_line(e),
        "",
        *_source_lines(r),
        "![training curves](train/curves.png)",
        "",
        "![confusion matrix](eval/confusion.png)",
        "",
        "## One clip through the one-line classifier",
        "",
        f"`AudioClassifier.from_pretrained(...)(\"{r['classify']['file']}\", top_k=3)` returned:",
        "",
        "```",
        json.dumps(r["classify"]["top3"]),
        "```",
        "",
        "## Latency (batch 1, this machine, one process, interleaved runs)",
        "",
        "| model | params | MACs | median ms | p90 ms |",
        "|---|---|---|---|---|",
    ]
    for name, row in r["latency"].items():
        lines.append(
            f"| {name} | {row['params']:,} | {row['macs'] / 1e6:.1f} M | {row['median_ms']:.2f} | {row['p90_ms']:.2f} |"
        )
    lines += [
        "",
        f"{r['latency_setup']['threads']} threads, OMP_WAIT_POLICY={r['latency_setup']['omp_wait_policy']} "
        "(PASSIVE, arinext's default, keeps training fair to other processes but makes these small forward "
        "passes slower on an idle machine than spinning threads; README, Quick start). "
        "The Slow-Fast row is the paper's full-size baseline (random weights, not trained here) on the same "
        "input: it shows what the paper's comparison model costs at this input size, not a size-matched "
        "contest. Paper-size ARIN vs Slow-Fast: BENCHMARKS.md.",
        "",
        "![latency](latency.png)",
        "",
        "## Time per phase (s)",
        "",
    ]
    lines.append(" | ".join(f"{k} {v:.0f}" for k, v in r["phase_seconds"].items()))
    lines += ["", _budget_line(r["train"]), ""]
    return "\n".join(lines) + "\n"
