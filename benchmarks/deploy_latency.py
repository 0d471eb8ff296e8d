"""Deployment benchmark: one fused model through four runtimes, scan speed, and the int8 accuracy cost.

Three parts, all in one process so that the numbers are comparable ratios on the same machine:

1. ``latency``: batch-1 latency of the same fully fused model (``reparameterize_model(fold="full")``)
   through PyTorch eager, TorchScript, ONNX Runtime fp32 and ONNX Runtime int8 (dynamic and static),
   at 1 s and 5.12 s of VGG-Sound input (101x128 and 512x128 frames). Timings are interleaved.
2. ``scan``: real-time factor of ``AudioClassifier.scan`` on a generated long file (default 10 min).
3. ``int8``: accuracy of fp32 vs int8 ONNX on a generated, separable task: tones and noise bands in
   the ``folder`` layout, ``audio_rep_inception_next_tiny`` trained for a short time on CPU, static
   int8 (:func:`arinext.export.quantize_model`, the recipe of ``arinext export``) calibrated on training
   clips, measured on the held-out testing subset.

Usage::

    python benchmarks/deploy_latency.py                         # everything, JSON to stdout
    python benchmarks/deploy_latency.py --parts latency --model audio_rep_inception_next
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import warnings
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

import arinext
from arinext.data import AudioClipDataset, get_manifest, make_loader
from arinext.export import (
    compare_onnx_models,
    export_onnx,
    export_torchscript,
    onnx_session,
    quantize_model,
    quantize_onnx,
)
from arinext.inference import AudioClassifier
from arinext.utils.timing import time_interleaved
from arinext.utils.modules import randomize_batchnorm

log = logging.getLogger("deploy_latency")
PRESET = "vggsound"


def _randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random BN parameters and statistics so that the fold is not trivially exact; eval mode."""
    return randomize_batchnorm(model, seed).eval()


def latency(model_name: str, runs: int, workdir: Path) -> dict[str, Any]:
    fe = arinext.get_preset(PRESET)
    model = _randomize(arinext.create_model(model_name, num_classes=309))
    fused = arinext.reparameterize_model(model, fold="full")
    onnx_path = workdir / "lat.onnx"
    export_onnx(model, onnx_path, frontend=fe)
    export_torchscript(model, workdir / "lat.pt", frontend=fe)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.load(str(workdir / "lat.pt"))
    calib = [torch.randn(1, 1, fe.num_frames, fe.n_mels) * 3 - 4 for _ in range(8)]
    quantize_onnx(onnx_path, workdir / "lat.dyn.onnx", "dynamic")
    quantize_onnx(onnx_path, workdir / "lat.static.onnx", "static", calib)
    sessions = {k: onnx_session(workdir / f"lat{k}.onnx") for k in ("", ".dyn", ".static")}
    out: dict[str, Any] = {"model": model_name, "torch_threads": torch.get_num_threads()}
    for frames in (101, 512):
        x = torch.randn(1, 1, frames, fe.n_mels) * 3 - 4
        xn = x.numpy()
        with torch.inference_mode():
            candidates = {
                "pytorch_eager": lambda: fused(x),
                "torchscript": lambda: scripted(x),
                "onnxruntime_fp32": lambda: sessions[""].run(None, {"spectrogram": xn}),
                "onnxruntime_int8_dynamic": lambda: sessions[".dyn"].run(None, {"spectrogram": xn}),
                "onnxruntime_int8_static": lambda: sessions[".static"].run(None, {"spectrogram": xn}),
            }
            stats = time_interleaved(candidates, runs=runs, warmup=3, progress=False)
        base = stats["pytorch_eager"].median_ms
        out[f"{frames}x{fe.n_mels}"] = {
            k: {"median_ms": round(s.median_ms, 2), "vs_eager": round(s.median_ms / base, 3)} for k, s in stats.items()
        }
    return out


def scan_rtf(model_name: str, minutes: float, workdir: Path, batch_size: int) -> dict[str, Any]:
    fe = arinext.get_preset(PRESET)
    clf = AudioClassifier(_randomize(arinext.create_model(model_name, num_classes=309)), frontend=fe)
    path = workdir / "long.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=44100, channels=2, subtype="PCM_16") as f:
        for _ in range(int(minutes * 6)):  # 10 s blocks, never the whole file in memory
            f.write((0.1 * rng.standard_normal((441000, 2))).astype(np.float32))
    out: dict[str, Any] = {"model": model_name, "file": "44.1 kHz stereo PCM16 noise", "minutes": minutes}
    for bs in sorted({1, batch_size}):
        tic = time.perf_counter()
        result = clf.scan(path, batch_size=bs)
        elapsed = time.perf_counter() - tic
        out[f"batch_{bs}"] = {
            "windows": len(result.windows),
            "seconds": round(elapsed, 1),
            "real_time_factor": round(elapsed / result.duration, 4),
            "x_real_time": round(result.duration / elapsed, 1),
        }
    return out


def _make_task(root: Path, clips_per_class: int, sr: int = 16000, seconds: float = 1.0) -> list[str]:
    """Six classes: three pure tones (300/1200/4000 Hz) and three noise bands, random level, phase, jitter."""
    rng = np.random.default_rng(0)
    n = int(sr * seconds)
    t = np.arange(n) / sr
    classes = {"tone_300": 300, "tone_1200": 1200, "tone_4000": 4000, "noise_low": (100, 800),
               "noise_mid": (1500, 3000), "noise_high": (5000, 7500)}  # fmt: skip
    for name, spec in classes.items():
        for subset in ("training", "testing"):
            d = root / subset / name
            d.mkdir(parents=True, exist_ok=True)
            for i in range(clips_per_class if subset == "training" else clips_per_class // 2):
                if isinstance(spec, tuple):
                    freqs = np.fft.rfftfreq(n, 1 / sr)
                    mag = ((freqs > spec[0]) & (freqs < spec[1])).astype(float)
                    x = np.fft.irfft(mag * np.exp(2j * np.pi * rng.random(freqs.size)), n)
                    x /= np.abs(x).max()
                else:
                    f = spec * (1 + 0.03 * rng.standard_normal())
                    x = np.sin(2 * np.pi * f * t + rng.random() * 6.28)
                x = x * 10 ** rng.uniform(-1.5, 0) + 0.02 * rng.standard_normal(n)
                sf.write(d / f"{i:03d}.wav", x.astype(np.float32), sr)
    return list(classes)


def int8_accuracy(workdir: Path, train_seconds: float, clips_per_class: int) -> dict[str, Any]:
    fe = arinext.get_preset("vggsound", num_frames=101, clip_seconds=1.0)  # 1 s clips, 101x128 frames
    root = workdir / "task"
    labels = _make_task(root, clips_per_class)
    train_set = AudioClipDataset(get_manifest("folder", root, "training"), fe, training=True)
    test_set = AudioClipDataset(get_manifest("folder", root, "testing"), fe, training=False)
    train = make_loader(train_set, batch_size=16, shuffle=True, num_workers=0)
    torch.manual_seed(0)
    model = arinext.create_model("audio_rep_inception_next_tiny", num_classes=len(labels))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    tic, epochs = time.perf_counter(), 0
    while time.perf_counter() - tic < train_seconds:
        model.train()
        for batch in train:
            loss = torch.nn.functional.cross_entropy(model(batch["inputs"]), batch["target"])
            opt.zero_grad()
            loss.backward()
            opt.step()
        epochs += 1
        log.info("epoch %d loss %.3f", epochs, float(loss))
    model.eval()
    fp32 = workdir / "task.onnx"
    export_onnx(model, fp32, frontend=fe, labels=labels)
    eval_loader = make_loader(test_set, batch_size=32, shuffle=False, num_workers=0)
    calib_set = AudioClipDataset(get_manifest("folder", root, "training"), fe, training=False)
    out: dict[str, Any] = {
        "task": f"{len(labels)} classes (3 tones, 3 noise bands), 1 s clips at 16 kHz, random level, noise floor",
        "train_clips": len(train_set), "test_clips": len(test_set), "epochs": epochs,
        "train_seconds": round(time.perf_counter() - tic, 1),
    }  # fmt: skip
    for mode in ("dynamic", "static"):
        calib = islice(make_loader(calib_set, batch_size=16, shuffle=True, num_workers=0), 8)
        # the recommended recipe: dead BN channels neutralized on a copy, static with reduce_range
        int8 = quantize_model(model, workdir / f"task.{mode}.onnx", mode, calib if mode == "static" else None, fe)
        stats = compare_onnx_models(fp32, int8.path, eval_loader)
        out[mode] = stats
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", nargs="+", default=["latency", "scan", "int8"], choices=["latency", "scan", "int8"])
    p.add_argument("--model", default="audio_rep_inception_next", help="model for latency and scan")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--minutes", type=float, default=10.0, help="length of the generated file for scan")
    p.add_argument("--scan-batch", type=int, default=8)
    p.add_argument("--train-seconds", type=float, default=120.0)
    p.add_argument("--clips-per-class", type=int, default=60)
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    results: dict[str, Any] = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "latency" in args.parts:
            results["latency"] = latency(args.model, args.runs, work)
        if "scan" in args.parts:
            results["scan"] = scan_rtf(args.model, args.minutes, work, args.scan_batch)
        if "int8" in args.parts:
            results["int8"] = int8_accuracy(work, args.train_seconds, args.clips_per_class)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
