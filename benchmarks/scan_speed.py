"""Long-file scan speed: ``arinext predict`` on a 1-hour 44.1 kHz stereo WAV, before and after the fast scan.

Each measurement runs in its own process (so its peak RSS is its own) and times the whole call, file
decoding and resampling included:

- ``after``: ``arinext predict --model MODEL FILE`` exactly as a user runs it (block log-mels, 32 windows per
  forward pass through the channels-last fused copy: :mod:`arinext.inference.stream`);
- ``before``: the same scan with one log-mel per window and one window per forward pass (``batch_size=1``,
  the block features switched off): what ``arinext predict`` did before.

Models: the demo's tiny keyword model and the paper-size model (``audio_rep_inception_next``) with the demo's
front end (1 s windows, hop 0.5 s: 7,200 windows per hour), random weights unless ``--tiny`` names a trained
checkpoint (speed does not depend on the weights).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/scan_speed.py --wav /tmp/one_hour.wav --make

``--make`` writes the test file first if it is missing (noise with tones and bursts, 635 MB, PCM16).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

MODELS = {"tiny": "audio_rep_inception_next_tiny", "paper": "audio_rep_inception_next"}


def make_wav(path: Path, seconds: float = 3600.0, sr: int = 44100, seed: int = 0) -> None:
    """A stereo PCM16 file of noise, tones and bursts, written block by block (bounded memory)."""
    rng = np.random.default_rng(seed)
    with sf.SoundFile(path, "w", samplerate=sr, channels=2, subtype="PCM_16") as f:
        for start in range(0, int(seconds * sr), 60 * sr):
            n = min(60 * sr, int(seconds * sr) - start)
            t = (start + np.arange(n)) / sr
            tone = 0.2 * np.sin(2 * np.pi * rng.uniform(200, 3000) * t) * (np.sin(2 * np.pi * 0.3 * t) > 0)
            x = 0.05 * rng.standard_normal((n, 2)) + tone[:, None]
            f.write(np.clip(x, -1, 1).astype(np.float32))


def save_model(name: str, out: Path) -> Path:
    import arinext
    from arinext.apps.demo import DEMO_FRONTEND
    from arinext.audio.frontend import get_preset

    model = arinext.create_model(name, num_classes=10)
    fe = get_preset("speech_commands_v2", **DEMO_FRONTEND)
    arinext.save_pretrained(model, out, frontend=fe, labels=[f"class_{i}" for i in range(10)])
    return out


def child(mode: str, model: str, wav: str) -> None:
    """Runs in a fresh process: one scan, prints ``{"seconds": ...}``."""
    tic = time.perf_counter()
    if mode == "after":
        from arinext.cli import main

        code = main(["predict", "--model", model, wav, "--json", "-q"])
        assert code == 0, code
    else:
        import arinext.inference.stream as stream
        from arinext.inference import AudioClassifier

        stream.block_features_supported = lambda *a: False  # one LogMel per window, as before
        AudioClassifier.from_pretrained(model).scan(wav, batch_size=1)
    print(json.dumps({"seconds": time.perf_counter() - tic}), file=sys.stderr)


def measure(mode: str, model: Path, wav: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", mode, str(model), str(wav)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{mode} scan failed:\n{err}")
    seconds = json.loads(err.strip().splitlines()[-1])["seconds"]
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wav", type=Path, default=Path("one_hour_44k_stereo.wav"))
    p.add_argument("--make", action="store_true", help="write --wav first if it does not exist")
    p.add_argument("--tiny", type=Path, default=None, help="a trained tiny model (default: random weights)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--modes", nargs="+", default=["before", "after"], choices=["before", "after"])
    p.add_argument("--child", nargs=3, metavar=("MODE", "MODEL", "WAV"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(*args.child)
        return
    if not args.wav.is_file():
        if not args.make:
            raise SystemExit(f"{args.wav} does not exist (add --make to write it)")
        make_wav(args.wav)
    info = sf.info(args.wav)
    print(f"{args.wav.name}: {info.duration:.0f} s, {info.samplerate} Hz, {info.channels} channels; "
          f"load average before {os.getloadavg()[0]:.2f}\n")  # fmt: skip
    print("| model | scan | seconds | x real time | peak RSS MB |\n|---|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.models:
            model = args.tiny if key == "tiny" and args.tiny else save_model(MODELS[key], Path(tmp) / key)
            for mode in args.modes:
                r = measure(mode, model, args.wav)
                print(f"| {MODELS[key]} | {mode} | {r['seconds']:.1f} | {info.duration / r['seconds']:.0f}x | "
                      f"{r['peak_rss_mb']:.0f} |", flush=True)  # fmt: skip
    print(f"\nload average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
