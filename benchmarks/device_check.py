"""The CUDA and NCCL checks of arinext in one script, for a machine with a GPU: PASS/FAIL lines and figures.

Run from the repository root after ``pip install -e '.[test]'`` (the checks need only the core install and
pytest; ``.[test]`` adds librosa for the front-end test):

    python benchmarks/device_check.py

In order (each line starts with PASS, FAIL, SKIP or INFO; the exit status is 1 if any check failed):

1. ``gpu-tests``: ``pytest -m gpu`` on the GPU tests (device features on CUDA, a run on CUDA with bf16, the front
   end and the HEAR wrapper on CUDA).
2. ``features``: the paper's VGG-Sound front end (5.119 s -> 512x128) with SpecAugment, the device path on the
   GPU against the workers path on the CPU: the largest difference.
3. ``per-core``: clips per CPU-second of a loader worker with each path on this machine's CPU, and the GPU's
   cost of the batched log-mel + SpecAugment (``benchmarks/feature_path.py``).
4. ``train``: training clips/s of the paper's model (309 classes, batch 32, the trainer's memory format, Nesterov
   SGD), fp32 and bf16 autocast: the GPU alone (batches already on it), then fed by W loader workers with ``data.features``
   ``workers`` and ``device``; then a table of the cores that feed the GPU's rate.
5. ``torchrun-nccl`` / ``torchrun-gloo``: the README's several-machines command as two one-process "machines"
   on this one (c10d rendezvous on localhost), both on the one GPU, a tiny model with device features. NCCL
   refuses two processes on one GPU ("Duplicate GPU detected"), which is reported as SKIP; gloo (CUDA tensors
   reduced through host memory, ``dist_backend=gloo``) must train and write the run from global rank 0.

``--device cpu`` runs everything but the CUDA parts on the CPU (with ``--model audio_rep_inception_next_tiny
--batch 8 --steps 2`` it takes a few minutes on 2 cores), to check the script itself.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from feature_path import device_seconds_per_clip, loader_rates, max_feature_difference, paths
from loader_throughput import make_clips

from arinext import create_model, get_preset
from arinext.audio.augment import SpecAugment
from arinext.data import AudioClipDataset, make_loader
from arinext.data.batch_features import BatchFeatures, FeatureLoader
from arinext.train.engine import autocast, bf16_supported, param_groups
from arinext.train.trainer import channels_last

ROOT = Path(__file__).resolve().parents[1]
RESULTS: list[tuple[str, str, str]] = []


def report(status: str, name: str, detail: str) -> None:
    RESULTS.append((status, name, detail))
    print(f"{status:4s} {name}: {detail}", flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---- 1. the GPU tests -----------------------------------------------------------------------------------------


def gpu_tests(timeout: float) -> None:
    try:
        import pytest  # noqa: F401
    except ImportError:
        report("SKIP", "gpu-tests", "pytest is not installed (pip install -e '.[test]')")
        return
    files = ["tests/test_cuda.py", "tests/test_frontend.py", "tests/test_hear.py"]
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "-rs", *files]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    last = lines[-1] if lines else proc.stderr[-300:]
    if proc.returncode == 0:
        report("PASS" if "passed" in last else "SKIP", "gpu-tests", last.strip("= "))
    else:
        print(proc.stdout[-4000:], proc.stderr[-2000:], sep="\n")
        report("FAIL", "gpu-tests", last.strip("= "))


# ---- 2./3. the feature paths ----------------------------------------------------------------------------------


def feature_checks(records: list, device: torch.device, batch: int) -> tuple[dict[str, float], float]:
    datasets = paths(records[:batch], "vggsound")
    diff = max_feature_difference(datasets, min(8, len(datasets["workers"])), str(device))
    tol = 1e-3  # cuFFT/cuBLAS vs the CPU; a misplaced mask would differ by about 1 or more
    report("PASS" if diff <= tol else "FAIL", "features", f"max |device path on {device} - workers path| = {diff:.2e}")
    rounds, turn = 3, 4  # a loader of one worker per path, taking turns of 4 batches
    n = (4 + 2 + rounds * turn) * batch
    per_core = loader_rates(paths((records * n)[:n], "vggsound"), batch, turn, 1, rounds)
    gpu = device_seconds_per_clip(datasets["device"], batch, str(device))
    report("INFO", "per-core", f"clips per CPU-second of a loader worker: data.features=workers (decode + crop + "
           f"log-mel + SpecAugment) {per_core['workers']:.1f}, data.features=device (decode + crop) "
           f"{per_core['device']:.1f}: {per_core['device'] / per_core['workers']:.1f}x")  # fmt: skip
    report("INFO", "per-core", f"batched log-mel + SpecAugment on {device}: {1 / gpu:.0f} clips/s "
           f"({gpu * batch * 1e3:.2f} ms per batch of {batch})")  # fmt: skip
    return per_core, gpu


# ---- 4. training rates ----------------------------------------------------------------------------------------


class TrainStep:
    """The trainer's step on the paper's model: its memory format, Nesterov SGD, cross-entropy, a sync per step."""

    def __init__(self, model: str, device: torch.device) -> None:
        self.device = device
        net = create_model(model, num_classes=309).to(device).train()
        # the trainer's memory format (channels-last on the CPU, NCHW + cuDNN autotuning on a GPU)
        self.model = net.to(memory_format=torch.channels_last) if channels_last(None, device) else net
        torch.backends.cudnn.benchmark = device.type == "cuda"
        self.opt = torch.optim.SGD(param_groups(self.model, 1e-4), lr=0.01, momentum=0.9, nesterov=True)

    def rate(self, batches: Iterator[dict], steps: int, amp: bool, warm: int) -> float:
        """Clips/s over ``steps`` steps after ``warm`` steps (enough to drain what the loader prepared ahead)."""
        tic, clips = 0.0, 0
        for i in range(warm + steps):
            if i == warm:
                sync(self.device)
                tic, clips = time.perf_counter(), 0
            b = next(batches)
            x = b["inputs"].to(self.device, non_blocking=True)
            y = b["target"].to(self.device, non_blocking=True)
            with autocast(self.device, amp):
                loss = F.cross_entropy(self.model(x), y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            if not math.isfinite(loss.item()):  # the trainer's per-step check (and sync)
                raise FloatingPointError(f"loss {loss.item()}")
            clips += x.shape[0]
        sync(self.device)
        return clips / (time.perf_counter() - tic)


def forever(loader) -> Iterator[dict]:
    while True:
        yield from loader


def train_rates(records: list, device: torch.device, model: str, batch: int, steps: int, workers: list[int]) -> dict:
    step = TrainStep(model, device)
    precisions = [False, True] if bf16_supported(device) else [False]
    fe = get_preset("vggsound")
    fixed = {"inputs": torch.randn(batch, 1, fe.num_frames, fe.n_mels, device=device),
             "target": torch.randint(0, 309, (batch,), device=device)}  # fmt: skip
    rates: dict = {}
    for amp in precisions:
        rates["gpu", 0, amp] = step.rate(iter(lambda: fixed, None), steps, amp, warm=3)
        report("INFO", "train", f"{model}, {'bf16' if amp else 'fp32'}, batches already on {device}: "
               f"{rates['gpu', 0, amp]:.1f} clips/s")  # fmt: skip
    for w in workers:
        warm = 4 * w + 3  # each worker prepares 4 batches ahead: a CPU-bound loader has drained them by then
        n = batch * (len(precisions) * (warm + steps) + 8)  # no epoch boundary inside the timed steps
        many = (records * (n // len(records) + 1))[:n]
        for place in ("workers", "device"):
            spec_augment = SpecAugment()
            ds = AudioClipDataset(many, fe, training=True, spec_augment=spec_augment,
                                  features="device" if place == "device" else True)  # fmt: skip
            loader = make_loader(ds, batch, shuffle=True, num_workers=w, drop_last=True, persistent_workers=True)
            if place == "device":
                loader = FeatureLoader(loader, BatchFeatures.for_dataset(ds), device)
            batches = forever(loader)
            for amp in precisions:
                rates[place, w, amp] = step.rate(batches, steps, amp, warm)
                report("INFO", "train", f"{'bf16' if amp else 'fp32'}, {w} workers, data.features={place}: "
                       f"{rates[place, w, amp]:.1f} clips/s")  # fmt: skip
            del batches, loader
    report("PASS", "train", f"{len(rates)} training rates measured, every loss finite")
    return rates


def cores_summary(rates: dict, per_core: dict[str, float], model: str) -> None:
    """Cores that feed the GPU's own training rate (batches already on it), with each feature path."""
    if not per_core:
        return
    for (src, _, amp), rate in rates.items():
        if src == "gpu":
            w, d = (math.ceil(rate / per_core[k]) for k in ("workers", "device"))
            what = f"{rate:.0f} clips/s ({model}, {'bf16' if amp else 'fp32'}, VGG-Sound front end)"
            report("INFO", "cores", f"to feed {what} you need {w} core{'s' * (w != 1)} with data.features=workers, "
                   f"{d} with data.features=device")  # fmt: skip


# ---- 5. torchrun, two machines --------------------------------------------------------------------------------


def tone_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for subset, n in (("training", 4), ("validation", 2)):
        for c, freq in enumerate((300.0, 2500.0)):
            for i in range(n):
                t = np.arange(8000) / 16000
                x = 0.2 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(t.size)
                (root / subset / f"class{c}").mkdir(parents=True, exist_ok=True)
                sf.write(root / subset / f"class{c}" / f"{i}.wav", x.astype(np.float32), 16000)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_machines(tmp: Path, backend: str, device: torch.device, timeout: float) -> None:
    name = f"torchrun-{backend}"
    if backend == "nccl" and device.type != "cuda":
        report("SKIP", name, "NCCL needs CUDA")
        return
    out = tmp / f"run-{backend}"
    cmd = [  # torchrun, as python -m (where pip put the torchrun script does not matter)
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--rdzv-id", f"check-{backend}",
        "--local-addr", "127.0.0.1",  # a bare machine's host name may not resolve
        "-m", "arinext", "train", "folder", "--set", f"data.root={tone_folder(tmp / 'tones')}",
        "--set", "model=audio_rep_inception_next_tiny", "--set", "data.features=device",
        "--set", "data.frontend={clip_seconds: 0.319, num_frames: 32, n_mels: 32, n_fft: 512}",
        "--set", "data.batch_size=4", "--set", "data.num_workers=0", "--set", "optim.epochs=1",
        "--set", "optim.freeze_bn=false", "--set", "precise_bn_batches=2", "--set", "export_pretrained=false",
        "--set", f"device={device.type}", "--set", f"dist_backend={backend}", "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "NCCL_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]  # fmt: skip
    logs = []
    for proc in procs:
        try:
            logs.append(proc.communicate(timeout=timeout)[0])
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            report("FAIL", name, f"no result within {timeout:.0f} s")
            return
    log = "\n".join(logs)
    ok = all(p.returncode == 0 for p in procs)
    where = f"(gloo, {device}" if backend == "gloo" else f"(nccl, {device}"
    if ok and f"rank 0 of 2 {where}" in log and log.count("epoch 1: ") == 1 and (out / "last.pt").is_file():
        report("PASS", name, f"two one-process machines on {device} trained an epoch; rank 0 wrote {out.name}/last.pt")
    elif backend == "nccl" and "Duplicate GPU detected" in log:
        report("SKIP", name, "NCCL refuses two processes on one GPU (Duplicate GPU detected): it needs a GPU per "
               "process; gloo covers this machine")  # fmt: skip
    else:
        print(log[-5000:])
        report("FAIL", name, f"exit statuses {[p.returncode for p in procs]}")


# ---- main -----------------------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--model", default="audio_rep_inception_next", help="the paper's model by default")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=30, help="timed training steps per setting (after the warm-up)")
    p.add_argument("--workers", type=int, nargs="*", default=None, help="loader workers (default: 4 and all cores - 2)")
    p.add_argument("--clips", type=int, default=48, help="generated 10 s clips")
    args = p.parse_args()
    t0 = time.perf_counter()
    if args.device == "cuda" and not torch.cuda.is_available():
        report("FAIL", "environment", f"no CUDA device (torch {torch.__version__}); --device cpu checks the rest")
        return 1
    device = torch.device(args.device, 0) if args.device == "cuda" else torch.device("cpu")
    cpus = len(os.sched_getaffinity(0))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    report("INFO", "environment", f"torch {torch.__version__}, {name}, {cpus} CPU cores, "
           f"bf16 {'yes' if bf16_supported(device) else 'no'}, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    workers = args.workers if args.workers is not None else sorted({4, max(4, cpus - 2)})
    tmp = Path(tempfile.mkdtemp(prefix="arinext-device-check-"))
    sections = [
        ("gpu-tests", lambda: gpu_tests(timeout=150)),
        ("features", None),
        ("train", None),
        ("torchrun-nccl", lambda: two_machines(tmp, "nccl", device, timeout=90)),
        ("torchrun-gloo", lambda: two_machines(tmp, "gloo", device, timeout=150)),
    ]
    try:
        records = make_clips(tmp, args.clips)
        per_core: dict[str, float] = {}
        for section, run in sections:
            tic = time.perf_counter()
            try:
                if section == "features":
                    per_core, _ = feature_checks(records, device, args.batch)
                elif section == "train":
                    rates = train_rates(records, device, args.model, args.batch, args.steps, workers)
                    cores_summary(rates, per_core, args.model)
                else:
                    run()
            except Exception as exc:  # noqa: BLE001  (one section's failure must not hide the others)
                report("FAIL", section, f"{type(exc).__name__}: {exc}")
            print(f"     ({section}: {time.perf_counter() - tic:.0f} s)", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    counts = {s: sum(r[0] == s for r in RESULTS) for s in ("PASS", "FAIL", "SKIP")}
    print(f"device_check: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped "
          f"in {time.perf_counter() - t0:.0f} s")  # fmt: skip
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
