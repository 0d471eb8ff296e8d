"""Fuzzed audio inputs: every damaged file is classified with finite scores or refused with arinext's own error.

A seeded mutator damages clean encodings of short clips (WAV PCM 8/16/24/32-bit, float32 and float64, FLAC,
OGG/Vorbis and MP3; 8 to 48 kHz, 1 to 3 channels) with byte flips, overwritten runs, truncations, inserted and
deleted bytes, appended junk and corrupted WAV header fields (format tag, channels, rate, sample width, chunk
sizes), one to three mutations per input. Each input goes through three paths:

- ``predict_proba``: :meth:`arinext.AudioClassifier.predict_proba` on the file's bytes;
- ``scan``: :meth:`arinext.AudioClassifier.scan` on the bytes (the block reader of long files);
- ``framewise``: :meth:`arinext.AudioClassifier.framewise` on the bytes (the block reader and streamed
  feature maps behind frame scores, events and timestamp embeddings);
- ``decode``: the datasets' decoder (:func:`arinext.audio.io.load_audio` of a window of the file written to
  disk, resampled to the model's rate) followed by the model's log-mel front end.

An outcome is ``classified`` (scores all finite, softmax rows summing to 1; for ``decode``: finite
features), ``clean error`` (an :class:`arinext.ArinextError`, counted by kind), ``non-finite`` (a NaN or an
infinity in what came back) or ``foreign`` (any other exception). The package's promise is 0 non-finite and
0 foreign on every path. The model is the tiny ARIN with the demo's front end and random weights (what is
measured is the input path, not the classifier's accuracy).

    python benchmarks/fuzz_inputs.py --inputs 10000 --seed 0

``--paths`` picks some of the paths, ``--only I`` re-runs input ``I`` of the same sequence alone.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

#: Clean encodings the mutator starts from: (format, subtype, sample rates, channel counts).
ENCODINGS = [
    ("WAV", "PCM_U8", (8000, 22050), (1, 2)),
    ("WAV", "PCM_16", (8000, 16000, 44100), (1, 2, 3)),
    ("WAV", "PCM_24", (16000, 48000), (1, 2)),
    ("WAV", "PCM_32", (16000, 22050), (1, 2)),
    ("WAV", "FLOAT", (8000, 16000, 44100, 48000), (1, 2, 3)),
    ("WAV", "DOUBLE", (16000, 32000), (1, 2)),
    ("FLAC", "PCM_16", (16000, 44100), (1, 2)),
    ("FLAC", "PCM_24", (48000,), (1,)),
    ("OGG", "VORBIS", (16000, 44100), (1, 2)),
    ("MP3", "MPEG_LAYER_III", (16000, 44100), (1, 2)),
]

OUTCOMES = ("classified", "clean error", "non-finite", "foreign")
PATHS = ("predict_proba", "scan", "framewise", "decode")


def clip(rng: np.random.Generator, seconds: float, rate: int, channels: int) -> np.ndarray:
    """A tone in noise, a near-full-scale burst or digital silence, ``(N, channels)`` float32 in [-1, 1]."""
    n = max(1, int(seconds * rate))
    kind = rng.integers(3)
    if kind == 2:
        return np.zeros((n, channels), np.float32)
    t = np.arange(n)[:, None] / rate
    x = 0.4 * np.sin(2 * np.pi * rng.uniform(100, rate / 3) * t) + 0.05 * rng.standard_normal((n, channels))
    if kind == 1:
        x = np.clip(x * 2.5, -1.0, 1.0)
    return x.astype(np.float32)


def seed_corpus(seed: int = 0) -> list[tuple[str, bytes]]:
    """Clean files ``(name, bytes)``: every encoding x rate x channel count of :data:`ENCODINGS`."""
    rng = np.random.default_rng(seed)
    corpus = []
    for fmt, subtype, rates, channel_counts in ENCODINGS:
        for rate in rates:
            for channels in channel_counts:
                buf = io.BytesIO()
                x = clip(rng, float(rng.uniform(0.2, 1.2)), rate, channels)
                sf.write(buf, x, rate, format=fmt, subtype=subtype)
                corpus.append((f"{fmt}-{subtype}-{rate}Hz-{channels}ch", buf.getvalue()))
    return corpus


# -- the mutator ------------------------------------------------------------------------------------

_INTERESTING = (0, 1, 2, 3, 4, 6, 8, 16, 24, 32, 64, 0x7F, 0x80, 0xFF, 0xFFFE, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)


def _riff_fields(data: bytes) -> list[tuple[int, int]]:
    """``(offset, width)`` of the numeric header fields of a RIFF/WAVE file (RIFF size, fmt fields, chunk sizes)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return []
    fields = [(4, 4)]
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        fields.append((pos + 4, 4))
        if cid == b"fmt ":  # format tag, channels, rate, byte rate, block align, bits per sample
            fields += [(pos + 8, 2), (pos + 10, 2), (pos + 12, 4), (pos + 16, 4), (pos + 20, 2), (pos + 22, 2)]
        if cid == b"data":
            break
        pos += 8 + size + (size & 1)
    return [(o, w) for o, w in fields if o + w <= len(data)]


def _flip_bytes(data: bytearray, rng: np.random.Generator) -> str:
    k = int(rng.integers(1, 17))
    for pos in rng.integers(0, len(data), k):
        data[pos] ^= int(rng.integers(1, 256))
    return f"flip{k}"


def _flip_header(data: bytearray, rng: np.random.Generator) -> str:
    k = int(rng.integers(1, 5))
    for pos in rng.integers(0, min(len(data), 64), k):
        data[pos] ^= int(rng.integers(1, 256))
    return f"headflip{k}"


def _overwrite_run(data: bytearray, rng: np.random.Generator) -> str:
    n = int(rng.integers(1, 257))
    start = int(rng.integers(0, len(data)))
    fill = rng.choice([0x00, 0xFF, 0x7F, 0x80, -1])
    chunk = rng.integers(0, 256, n, dtype=np.uint8).tobytes() if fill < 0 else bytes([int(fill)]) * n
    data[start : start + n] = chunk[: len(data) - start]
    return f"run{n}"


def _truncate(data: bytearray, rng: np.random.Generator) -> str:
    cut = int(rng.integers(0, len(data)))
    del data[cut:]
    return "truncate"


def _splice(data: bytearray, rng: np.random.Generator) -> str:
    pos, n = int(rng.integers(0, len(data) + 1)), int(rng.integers(1, 65))
    if rng.random() < 0.5:
        data[pos:pos] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        return "insert"
    del data[pos : pos + n]
    return "delete"


def _append_junk(data: bytearray, rng: np.random.Generator) -> str:
    n = int(rng.integers(1, 4097))
    data += rng.integers(0, 256, n, dtype=np.uint8).tobytes() if rng.random() < 0.7 else bytes(data[:n])
    return "append"


def _header_field(data: bytearray, rng: np.random.Generator) -> str:
    fields = _riff_fields(bytes(data))
    if not fields:
        return _flip_header(data, rng)
    offset, width = fields[int(rng.integers(len(fields)))]
    value = int(rng.choice(_INTERESTING)) if rng.random() < 0.7 else int(rng.integers(0, 1 << (8 * width)))
    data[offset : offset + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    return f"field@{offset}"


MUTATIONS: list[Callable[[bytearray, np.random.Generator], str]] = [
    _flip_bytes, _flip_header, _overwrite_run, _truncate, _splice, _append_junk, _header_field, _header_field,
]  # fmt: skip


def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One to three random mutations of ``data``: ``(what was done, the damaged bytes)``."""
    out = bytearray(data)
    done = []
    for _ in range(int(rng.integers(1, 4))):
        if not out:
            break
        done.append(MUTATIONS[int(rng.integers(len(MUTATIONS)))](out, rng))
    return "+".join(done), bytes(out)


# -- running one input --------------------------------------------------------------------------------


def error_kind(exc: BaseException) -> str:
    """A short label of a clean error: its class and its problem without file names and numbers."""
    text = str(getattr(exc, "problem", exc))
    text = re.sub(r"\(.*\)", "", text)
    text = re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "N", text)
    return f"{type(exc).__name__}: {' '.join(text.split())[:70]}"


def run_path(call: Callable[[], Any], finite: Callable[[Any], bool]) -> tuple[str, str]:
    """``(outcome, detail)`` of one call; see the module docstring for the outcomes."""
    from arinext import ArinextError

    try:
        result = call()
    except ArinextError as exc:
        return "clean error", error_kind(exc)
    except Exception as exc:  # noqa: BLE001  (what the fuzzer is looking for)
        return "foreign", f"{type(exc).__name__}: {exc}"[:200]
    return ("classified", "") if finite(result) else ("non-finite", "")


def _probs_ok(p: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(p)) and np.allclose(p.sum(axis=-1), 1.0, atol=1e-3))


def check_input(
    clf: Any, data: bytes, path: Path | None = None, paths: tuple[str, ...] = PATHS
) -> dict[str, tuple[str, str]]:
    """The ``paths`` of the module docstring on one input (``decode`` only when a ``path`` to write it to is given)."""
    import torch

    from arinext.audio.io import load_audio

    def decode() -> torch.Tensor:
        assert path is not None
        path.write_bytes(data)
        x = load_audio(path, sample_rate=clf.sample_rate, start=0.05, end=0.55)[0]
        return clf.frontend(torch.from_numpy(x))

    calls: dict[str, tuple[Callable[[], Any], Callable[[Any], bool]]] = {
        "predict_proba": (lambda: clf.predict_proba(data), _probs_ok),
        "scan": (
            lambda: clf.scan(data, batch_size=4),
            lambda r: _probs_ok(r.probs) and all(np.isfinite(p["score"]) for p in r.aggregate),
        ),
        "framewise": (lambda: clf.framewise(data, head="clip", hop=0.05), lambda f: _probs_ok(f.scores)),
        "decode": (decode, lambda f: bool(torch.isfinite(f).all())),
    }
    return {p: run_path(*calls[p]) for p in paths if p != "decode" or path is not None}


def make_classifier(seed: int = 0) -> Any:
    """The tiny ARIN with the demo's front end, random weights and randomized BatchNorm statistics."""
    import torch

    import arinext
    from arinext.apps.demo import DEMO_FRONTEND
    from arinext.audio.frontend import get_preset
    from arinext.utils.modules import randomize_batchnorm

    torch.manual_seed(seed)
    model = arinext.create_model("audio_rep_inception_next_tiny", num_classes=10)
    randomize_batchnorm(model, seed)
    fe = get_preset("speech_commands_v2", **DEMO_FRONTEND)
    return arinext.AudioClassifier(model.eval(), frontend=fe, labels=[f"class_{i}" for i in range(10)])


def fuzz(
    clf: Any,
    inputs: int,
    seed: int = 0,
    paths: tuple[str, ...] = PATHS,
    workdir: Path | None = None,
    progress: bool = False,
    only: int | None = None,
) -> dict[str, Any]:
    """Run ``inputs`` mutated files through ``paths``; counts per path and outcome, examples of failures and
    the slowest inputs. ``only``: check just input number ``only`` of the same sequence (to reproduce one)."""
    corpus = seed_corpus(seed)
    rng = np.random.default_rng(seed + 1)
    counts = {p: Counter() for p in paths}
    kinds: Counter = Counter()
    bad: list[dict[str, Any]] = []
    slowest: list[tuple[float, int, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(workdir or tmp) / "input.bin"
        for i in range(inputs):
            name, clean = corpus[int(rng.integers(len(corpus)))]
            what, data = mutate(clean, rng)
            if only is not None and i != only:
                continue
            tic = time.perf_counter()
            outcomes = check_input(clf, data, target, paths)
            slowest = sorted([*slowest, (round(time.perf_counter() - tic, 3), i, name, what)], reverse=True)[:5]
            for path, (outcome, detail) in outcomes.items():
                counts[path][outcome] += 1
                if outcome == "clean error":
                    kinds[detail] += 1
                elif outcome != "classified" and len(bad) < 20:
                    bad.append({"input": i, "seed file": name, "mutation": what, "path": path,
                                "outcome": outcome, "detail": detail})  # fmt: skip
            if progress and (i + 1) % 500 == 0:
                summary = {p: dict(c) for p, c in counts.items()}
                print(f"{i + 1}/{inputs}: {json.dumps(summary)}", flush=True)
    return {
        "counts": {p: {o: counts[p][o] for o in OUTCOMES} for p in paths},
        "clean_error_kinds": kinds,
        "failures": bad,
        "slowest_inputs": [{"seconds": t, "input": i, "seed file": n, "mutation": w} for t, i, n, w in slowest],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=10000, help="mutated files to try")
    parser.add_argument("--seed", type=int, default=0, help="seed of the clean corpus and of the mutator")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated subset of {','.join(PATHS)}")
    parser.add_argument("--only", type=int, default=None, help="check only this input of the sequence (from 0)")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    paths = tuple(p for p in args.paths.split(",") if p)
    if not paths or set(paths) - set(PATHS):
        parser.error(f"--paths: choose from {','.join(PATHS)}, got {args.paths!r}")
    import torch

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    tic = time.perf_counter()
    report = fuzz(make_classifier(args.seed), args.inputs, args.seed, paths, progress=True, only=args.only)
    report.update(inputs=args.inputs, seed=args.seed, seconds=round(time.perf_counter() - tic, 1),
                  loadavg_before=load, loadavg_after=os.getloadavg()[0])  # fmt: skip
    print(f"\n{args.inputs} mutated inputs, seed {args.seed}, {report['seconds']} s")
    print(f"{'path':<14}" + "".join(f"{o:>13}" for o in OUTCOMES))
    for path, c in report["counts"].items():
        print(f"{path:<14}" + "".join(f"{c[o]:>13}" for o in OUTCOMES))
    print("\nclean errors by kind (all paths):")
    for kind, n in report["clean_error_kinds"].most_common():
        print(f"  {n:>6}  {kind}")
    for f in report["failures"]:
        print(f"FAILURE {json.dumps(f)}")
    print("slowest inputs (all paths):", json.dumps(report["slowest_inputs"]))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
