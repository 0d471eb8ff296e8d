"""Cost of each waveform augmentation per 1 s clip, next to the demo's log-mel front end (one process,
interleaved runs, one thread), and of a recipe's whole chain at its probabilities.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/waveaug_cost.py [--runs 50] [--recipe keywords]

Prints a markdown table: median ms per clip and the ratio to the log-mel.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch

from arinext.apps.demo import DEMO_FRONTEND, bundled_sample
from arinext.audio import LogMel, get_preset
from arinext.audio.io import load_audio
from arinext.audio.waveaug import AUGMENTATIONS, build_waveform_augment
from arinext.train.config import load_config
from arinext.utils.timing import time_interleaved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--recipe", default="keywords", help="recipe whose data.augment chain is timed as a whole")
    args = parser.parse_args()
    torch.set_num_threads(1)
    x = torch.from_numpy(load_audio(next((bundled_sample() / "down").iterdir()), sample_rate=16000)[0])
    logmel = LogMel(get_preset("speech_commands_v2", **DEMO_FRONTEND))
    with tempfile.TemporaryDirectory() as tmp:
        one = {name: build_waveform_augment({name: {"p": 1.0, **({"cache_dir": tmp} if name == "reverb" else {})}}, 16000)
               for name in AUGMENTATIONS}  # fmt: skip
        chain = build_waveform_augment(load_config(args.recipe).data.augment, 16000)
        g = torch.Generator().manual_seed(0)
        calls = {"log-mel (demo front end)": lambda: logmel(x[None])}
        calls.update({name: (lambda t=t: t(x, g)) for name, t in one.items()})
        if chain is not None:
            calls[f"recipe '{args.recipe}' chain"] = lambda: chain(x, g)
        stats = time_interleaved(calls, runs=args.runs, warmup=3)
    base = stats["log-mel (demo front end)"].median_ms
    print(f"loadavg {os.getloadavg()[0]:.1f}, torch threads 1, {args.runs} interleaved runs")
    print("| augmentation (p=1) | ms per 1 s clip | x log-mel |\n|---|---:|---:|")
    for name, s in stats.items():
        print(f"| {name} | {s.median_ms:.2f} | {s.median_ms / base:.2f} |")


if __name__ == "__main__":
    main()
