"""Sound-event test sets: labelled clips placed at known times in long noise files.

From any dataset in the Speech Commands V2 layout (default: the bundled ten-word sample) and one of its
subsets (default ``testing``: speakers never seen in training), it writes::

    OUT/audio/mix_000.flac ...   mono 16-bit, ``seconds`` long, at the clips' rate (16 kHz)
    OUT/events.tsv               filename<TAB>onset<TAB>offset<TAB>event_label (seconds; the DCASE format
                                 that sed_eval and sed_scores_eval read)
    OUT/labels.txt               the dataset's classes, one per line
    OUT/BUILD.json               the parameters, and for every event its source clip and SNR

Recipe per file: coloured Gaussian noise (white, pink, brown in turn; :func:`.noise.colored_noise`) at
``noise_dbfs`` RMS; ``events_per_file`` clips taken in order from a seeded permutation of the subset
(every clip once before any is used again: a new permutation per pass), each trimmed to its *active part*: the 10 ms frames whose RMS is
within ``active_db`` dB of the clip's loudest frame. The reference onset and offset of an event are the
ends of that active part. Events never overlap, are at least ``min_gap`` seconds apart, and the spare time
is spread at random between them.

**SNR definition**: the power of the word over its active part divided by the power of the noise over the
same samples, in dB; ``snr_db`` is one value or a ``(low, high)`` range drawn uniformly per event. (The
keyword demo's ``noise_snr_db`` is measured over a whole one-second clip instead, which for a 0.3 s word
is about 5 dB easier.) A mixture that would clip is scaled down as a whole, which keeps every SNR.
"""

from __future__ import annotations

import csv
import logging
import time
from importlib.resources import files as package_files
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...audio.io import load_audio
from ...data import get_manifest
from ...data.records import SUBSETS
from ...utils.errors import ConfigError, DataError, PathNotFoundError
from ...utils.progress import progress_bar
from ._common import AUDIO_FORMATS, prepare_output, stable_rng, write_build_info, write_clip
from .noise import NOISE_COLOURS, colored_noise

__all__ = ["EVENTS_FILE", "EventsBuild", "active_region", "build_events", "read_event_table"]

log = logging.getLogger(__name__)

#: The reference event list of a build, in the DCASE format.
EVENTS_FILE = "events.tsv"


@dataclass
class EventsBuild:
    """What a build wrote."""

    root: Path
    files: int = 0
    events: int = 0
    labels: list[str] = field(default_factory=list)
    speakers: int = 0
    clips: int = 0
    seconds: float = 0.0


def active_region(x: np.ndarray, sample_rate: int, active_db: float = 30.0, frame_ms: float = 10.0) -> tuple[int, int]:
    """``[start, end)`` in samples of the frames whose RMS is within ``active_db`` dB of the loudest one."""
    n = max(1, int(sample_rate * frame_ms / 1000))
    frames = max(1, len(x) // n)
    padded = np.zeros(frames * n, dtype=np.float64)
    padded[: min(len(x), frames * n)] = x[: frames * n]
    rms = np.sqrt(np.mean(padded.reshape(frames, n) ** 2, axis=1) + 1e-20)
    db = 20 * np.log10(rms)
    on = np.flatnonzero(db >= db.max() - active_db)
    return int(on[0] * n), int(min(len(x), (on[-1] + 1) * n))


def _snr_range(snr_db: float | tuple[float, float] | list[float]) -> tuple[float, float]:
    if isinstance(snr_db, (int, float)):
        return float(snr_db), float(snr_db)
    lo, hi = (float(v) for v in snr_db)
    if lo > hi:
        raise ConfigError(f"snr_db range must be (low, high), got {snr_db}")
    return lo, hi


def build_events(
    out: str | Path,
    source: str | Path | None = None,
    subset: str = "testing",
    files: int = 10,
    seconds: float = 30.0,
    events_per_file: int = 8,
    snr_db: float | tuple[float, float] = 10.0,
    min_gap: float = 1.0,
    noise_dbfs: float = -30.0,
    active_db: float = 30.0,
    seed: int = 0,
    fmt: str = "flac",
    force: bool = False,
) -> EventsBuild:
    """Build a sound-event set (see the module docstring); returns counts.

    Args:
        out: output directory (empty or missing, or an earlier build with ``force``).
        source: a Speech Commands V2-layout dataset; default the bundled sample.
        subset: ``training``, ``validation`` or ``testing`` clips of ``source``.
        files, seconds, events_per_file: number and length of the mixtures, events in each.
        snr_db: SNR in dB over each word's active part, or a ``(low, high)`` range.
        min_gap: least silence (noise only) before, between and after events, in seconds.
        noise_dbfs: RMS level of the noise.
        active_db: an event is the part of its clip within this many dB of the loudest 10 ms.
        seed: everything random derives from it.
        fmt: ``flac`` or ``wav``.
    """
    tic = time.perf_counter()
    if subset not in SUBSETS:
        raise ConfigError(f"subset must be one of {SUBSETS}, got {subset!r}")
    if files < 1 or events_per_file < 1 or seconds <= 0 or min_gap < 0:
        raise ConfigError("need files >= 1, events_per_file >= 1, seconds > 0 and min_gap >= 0")
    if fmt not in AUDIO_FORMATS:
        raise ConfigError(f"unknown audio format {fmt!r}; choose one of {sorted(AUDIO_FORMATS)}")
    snr_lo, snr_hi = _snr_range(snr_db)
    if source is None:
        source = Path(str(package_files("arinext") / "assets" / "keywords10"))  # the bundled sample
    manifest = get_manifest("speech_commands_v2", source, subset)
    records = list(manifest.records)
    if not records:
        raise DataError(f"{source}: no {subset} clips")
    root = prepare_output(out, force)
    labels = list(manifest.labels)  # type: ignore[arg-type]
    passes = -(-files * events_per_file // len(records))
    order = np.concatenate([stable_rng(seed, "order", p).permutation(len(records)) for p in range(passes)])
    colours = list(NOISE_COLOURS)
    rows: list[dict[str, Any]] = []
    rate: int | None = None
    speakers: set[str] = set()
    used: set[str] = set()
    for fi in progress_bar(range(files), desc="events", unit="file"):
        rng = stable_rng(seed, "file", fi)
        clips = []
        for j in range(events_per_file):
            rec = records[order[fi * events_per_file + j]]
            x, sr = load_audio(rec.path, sample_rate=rate)
            rate = rate or sr
            a, b = active_region(x, rate, active_db)
            clips.append((x[a:b].astype(np.float64), labels[rec.target], rec))  # type: ignore[index]
            speakers.add(str(rec.group))
            used.add(rec.path)
        n = int(round(seconds * rate))
        gap = int(round(min_gap * rate))
        slack = n - sum(len(c[0]) for c in clips) - gap * (len(clips) + 1)
        if slack < 0:
            raise ConfigError(f"{events_per_file} events do not fit in {seconds} s with {min_gap} s gaps")
        noise = colored_noise(colours[fi % len(colours)], n, rng, rms_dbfs=noise_dbfs).astype(np.float64)
        mix = noise.copy()
        cuts = np.sort(rng.uniform(0, slack, size=len(clips)))
        extra = np.diff(np.concatenate([[0.0], cuts])).astype(int)
        name = f"mix_{fi:03d}{AUDIO_FORMATS[fmt][0]}"
        pos = gap
        for (word, label, rec), ex in zip(clips, extra):
            start = pos + int(ex)
            seg = noise[start : start + len(word)]
            snr = float(rng.uniform(snr_lo, snr_hi)) if snr_hi > snr_lo else snr_lo
            gain = np.sqrt(np.mean(seg**2) / max(np.mean(word**2), 1e-20) * 10 ** (snr / 10))
            mix[start : start + len(word)] += gain * word
            rows.append(
                {"filename": name, "onset": start / rate, "offset": (start + len(word)) / rate, "event_label": label,
                 "clip": str(Path(rec.path).relative_to(Path(str(source)))), "snr_db": round(snr, 2)}
            )  # fmt: skip
            pos = start + len(word) + gap
        peak = float(np.max(np.abs(mix)))
        if peak > 0.99:
            mix *= 0.99 / peak
        write_clip(root / "audio" / name, mix.astype(np.float32), rate, fmt)
    with open(root / EVENTS_FILE, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["filename", "onset", "offset", "event_label"])
        for r in rows:
            w.writerow([r["filename"], f"{r['onset']:.4f}", f"{r['offset']:.4f}", r["event_label"]])
    (root / "labels.txt").write_text("\n".join(labels) + "\n")
    write_build_info(
        root,
        {"builder": "events", "source": str(source), "subset": subset, "files": files, "seconds": seconds,
         "events_per_file": events_per_file, "snr_db": [snr_lo, snr_hi], "snr_definition":
         "word power over its active part / noise power over the same samples", "min_gap": min_gap,
         "noise_dbfs": noise_dbfs, "active_db": active_db, "seed": seed, "format": fmt, "sample_rate": rate,
         "speakers": len(speakers), "distinct_clips": len(used), "events": rows},
    )  # fmt: skip
    result = EventsBuild(root, files, len(rows), labels, len(speakers), len(used), time.perf_counter() - tic)
    log.debug("built %s in %.1f s", root, result.seconds)
    return result


def read_event_table(root: str | Path) -> dict[str, list[dict[str, Any]]]:
    """``{filename: [{"filename", "event_label", "onset", "offset"}, ...]}`` from ``root/events.tsv``, every
    audio file of ``root/audio`` included (with an empty list if it has no events)."""
    root = Path(root)
    path = root / EVENTS_FILE
    if not path.is_file():
        raise PathNotFoundError(f"{path}: no event list (build one with `arinext data events`)")
    table: dict[str, list[dict[str, Any]]] = {}
    if (root / "audio").is_dir():
        for f in sorted((root / "audio").iterdir()):
            if f.suffix.lower() in (".wav", ".flac"):
                table[f.name] = []
    with open(path, newline="") as f:
        for i, row in enumerate(csv.DictReader(f, delimiter="\t"), start=2):
            try:
                ev = {"filename": row["filename"], "event_label": row["event_label"],
                      "onset": float(row["onset"]), "offset": float(row["offset"])}  # fmt: skip
            except (KeyError, TypeError, ValueError) as exc:
                raise DataError(f"{path} row {i}: expected filename, onset, offset, event_label ({exc})") from exc
            table.setdefault(ev["filename"], []).append(ev)
    return table
