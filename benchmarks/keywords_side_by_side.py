"""Accuracy vs latency of AudioRepInceptionNeXt and Slow-Fast trained the same way on the keyword sample.

Both models are trained from scratch with the demo's recipe (bundled ten-word sample, background noise,
SpecAugment, Nesterov SGD, step schedule, best checkpoint by validation top-1) for a wall-clock budget:
each model gets as many epochs as fit in ``--minutes`` (its epoch time is measured on a first epoch),
then is tested on the unseen test speakers and timed at batch 1 in one process.

    python benchmarks/keywords_side_by_side.py --minutes 7 --out side-by-side
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from arinext.apps.demo import DemoOptions, bundled_sample, featurize_subset, train_demo_model
from arinext.audio.frontend import get_preset
from arinext.checkpoints import load_pretrained
from arinext.data.manifests.speech_commands import word_folders
from arinext.inference import optimize_for_inference
from arinext.utils.timing import time_interleaved


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["audio_rep_inception_next_tiny", "slowfast_audio_r50"])
    p.add_argument("--minutes", type=float, default=7.0, help="training wall-clock budget per model")
    p.add_argument("--out", default="side-by-side")
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(2)
    root, out = bundled_sample(), Path(args.out)
    words = word_folders(root)
    base = DemoOptions()
    fe = get_preset("speech_commands_v2", **base.frontend)
    x, y, _ = featurize_subset(root, words, fe, "testing")
    rows, models = {}, {}
    for name in args.models:
        probe = DemoOptions(model=name, epochs=1, progress=False, out=str(out / f"{name}-probe"))
        tic = time.perf_counter()
        train_demo_model(probe, root, words, out / f"{name}-probe")
        epoch_s = time.perf_counter() - tic
        epochs = max(1, int(args.minutes * 60 / epoch_s))
        opts = DemoOptions(model=name, epochs=epochs, progress=False, out=str(out / name))
        tic = time.perf_counter()
        run = train_demo_model(opts, root, words, out / name)
        seconds = time.perf_counter() - tic
        model = load_pretrained(out / name / "pretrained")
        with torch.no_grad():
            pred = torch.cat([model(c) for c in x.split(64)]).argmax(-1).numpy()
        models[name] = optimize_for_inference(model)
        rows[name] = {
            "epochs": epochs,
            "train_seconds": round(seconds, 1),
            "best_val_top1": run["best"],
            "test_top1": float(np.mean(pred == y)),
        }
        print(name, rows[name], flush=True)
    example = x[:1]
    with torch.no_grad():
        stats = time_interleaved({n: (lambda m=m: m(example)) for n, m in models.items()}, runs=args.runs, progress=False)
    for name in rows:
        rows[name]["latency_ms_b1_fast"] = round(stats[name].median_ms, 2)
    print("| model | epochs in budget | train s | test top-1 (unseen speakers) | latency b1 ms (`fast` form) |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['epochs']} | {r['train_seconds']:.0f} | {r['test_top1']:.1%} | {r['latency_ms_b1_fast']:.2f} |")
    (out / "side_by_side.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
