"""Embeddings: cost of timestamp vs scene embeddings, and a linear probe on scene embeddings.

``--part cost``: per-call time of ``get_scene_embeddings`` and ``get_timestamp_embeddings`` (HEAR API,
hop 50 ms) on one 10 s clip, batch 1, timed interleaved in one process, for the tiny model with the demo's
front end and the paper-size model with the VGG-Sound front end (random weights: the cost does not depend
on them). For reference, the obvious alternative: one scene embedding per 1 s window every 50 ms
(windows batched 32 at a time, not padded).

``--part probe``: logistic regression on the scene embeddings of the bundled sample's training clips
(L2 weight chosen on the validation clips), accuracy on the test clips (unseen speakers) next to the
accuracy of the fine-tuned model itself on the same clips; and the same probe on the embeddings of the
same architecture with random weights, to show what training contributed.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/embeddings.py --part cost --threads 1
    OMP_WAIT_POLICY=PASSIVE python benchmarks/embeddings.py --part probe --models runs/demo/train/pretrained
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch

import arinext
from arinext.apps import hear
from arinext.apps.demo import DEMO_FRONTEND, bundled_sample
from arinext.apps.event_detection import fit_lbfgs
from arinext.audio.frontend import get_preset
from arinext.data import get_manifest
from arinext.utils.timing import time_interleaved


def _loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []


def cost(runs: int, seconds: float) -> dict:
    out: dict = {"loadavg_before": _loadavg(), "threads": torch.get_num_threads(), "clip_seconds": seconds}
    models = {
        "audio_rep_inception_next_tiny (demo front end)": (
            arinext.create_model("audio_rep_inception_next_tiny", num_classes=10),
            get_preset("speech_commands_v2", **DEMO_FRONTEND),
        ),
        "audio_rep_inception_next (vggsound front end)": (
            arinext.create_model("audio_rep_inception_next", num_classes=309),
            get_preset("vggsound"),
        ),
    }
    for name, (net, fe) in models.items():
        m = hear.HEARModel(net.eval(), fe)
        torch.manual_seed(0)
        audio = (torch.rand(1, int(seconds * fe.sample_rate)) * 2 - 1) * 0.3
        win, step = fe.sample_rate, int(0.05 * fe.sample_rate)
        windows = torch.nn.functional.pad(audio[:, None], (win // 2, win // 2), mode="reflect")[:, 0].unfold(1, win, step)[0]

        def sliding() -> torch.Tensor:  # 1 s windows as they are (no padding to the training crop)
            out = []
            for i in range(0, windows.shape[0], 32):
                feats = m.taps.model.forward_features(m.taps.spectrogram(windows[i : i + 32], pad=False))
                out.append(feats.mean(dim=(2, 3)))
            return torch.cat(out)

        calls = {
            "scene": lambda: hear.get_scene_embeddings(audio, m),
            "timestamp (hop 50 ms)": lambda: hear.get_timestamp_embeddings(audio, m),
            "1 s windows every 50 ms": sliding,
        }
        with torch.no_grad():
            fast = time_interleaved({k: v for k, v in calls.items() if k != "1 s windows every 50 ms"}, runs=runs)
            slow = time_interleaved(calls, runs=max(2, runs // 10), warmup=1)
        emb, ts = hear.get_timestamp_embeddings(audio, m)
        base = fast["scene"].median_ms
        out[name] = {
            "scene_ms": round(base, 2),
            "timestamp_ms": round(fast["timestamp (hop 50 ms)"].median_ms, 2),
            "timestamp_over_scene": round(fast["timestamp (hop 50 ms)"].median_ms / base, 3),
            "sliding_windows_ms": round(slow["1 s windows every 50 ms"].median_ms, 1),
            "sliding_over_scene": round(slow["1 s windows every 50 ms"].median_ms / slow["scene"].median_ms, 1),
            "timestamps": int(ts.shape[1]),
            "timestamp_dim": int(emb.shape[2]),
            "scene_dim": m.scene_embedding_size,
            "spread_p90_over_median": round(fast["timestamp (hop 50 ms)"].spread, 2),
        }
        print(name, json.dumps(out[name]), flush=True)
    out["loadavg_after"] = _loadavg()
    return out


def _subset(root: Path, subset: str, labels: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
    manifest = get_manifest("speech_commands_v2", root, subset).relabel(labels)
    waves = [arinext.audio.io.load_audio(r.path, sample_rate=16000)[0] for r in manifest.records]
    return waves, np.array([r.target for r in manifest.records])


def linear_probe(
    train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
    l2_grid: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1),
) -> dict:
    """Multinomial logistic regression on standardised features; L2 weight by validation accuracy."""
    x, y = torch.from_numpy(train[0]), torch.from_numpy(train[1])
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)

    def norm(a: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(a) - mean) / std

    best = None
    for lam in l2_grid:
        torch.manual_seed(0)
        lin = torch.nn.Linear(x.shape[1], int(y.max()) + 1)
        fit_lbfgs(lin, norm(train[0]), y, lam, max_iter=500)
        with torch.no_grad():
            acc_val = float((lin(norm(val[0])).argmax(1).numpy() == val[1]).mean())
            acc_test = float((lin(norm(test[0])).argmax(1).numpy() == test[1]).mean())
        if best is None or acc_val > best["val_accuracy"]:
            best = {"l2": lam, "val_accuracy": acc_val, "test_accuracy": acc_test}
    assert best is not None
    return best


def probe(models: list[str]) -> dict:
    root = bundled_sample()
    out: dict = {"loadavg_before": _loadavg()}
    for path in [*models, "random"]:
        if path == "random":
            torch.manual_seed(0)
            net = arinext.create_model("audio_rep_inception_next_tiny", num_classes=10).eval()
            fe, labels = get_preset("speech_commands_v2", **DEMO_FRONTEND), sorted(p.name for p in root.iterdir()
                                                                                    if p.is_dir() and not p.name.startswith("_"))  # fmt: skip
            clf = arinext.AudioClassifier(net, fe, labels)
        else:
            clf = arinext.AudioClassifier.from_pretrained(path, frame_head=False)
        data = {s: _subset(root, s, clf.labels) for s in ("training", "validation", "testing")}
        emb = {s: (clf.embed(w, sampling_rate=16000, batch_size=64), y) for s, (w, y) in data.items()}
        result = linear_probe(emb["training"], emb["validation"], emb["testing"])
        probs = clf.predict_proba(data["testing"][0], sampling_rate=16000, batch_size=64)
        result["model_test_accuracy"] = float((probs.argmax(1) == data["testing"][1]).mean())
        result["test_clips"] = len(data["testing"][1])
        result["embedding_dim"] = int(emb["testing"][0].shape[1])
        out[path] = result
        print(path, json.dumps(result), flush=True)
    out["loadavg_after"] = _loadavg()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=("cost", "probe"), required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=30, help="timed calls per candidate (cost)")
    p.add_argument("--seconds", type=float, default=10.0, help="clip length (cost)")
    p.add_argument("--models", nargs="*", default=[], help="trained checkpoints (probe)")
    p.add_argument("--out", default=None, help="also write the JSON here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    result = cost(args.runs, args.seconds) if args.part == "cost" else probe(args.models)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
