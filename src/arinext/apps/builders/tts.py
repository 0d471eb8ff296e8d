"""Speech engines from Debian ``main`` (espeak-ng, flite, festival): voice inventory and synthesis.

A :class:`Voice` is one way of calling an engine; its ``speaker`` names the person or model behind
it, which is what dataset splits must keep apart: an espeak-ng voice is an accent x variant pair
(formant synthesis, each pair is its own modelled voice), while flite and festival voices are
recordings of real people, and CMU's ``slt`` and ``kal`` are in both engines, so they map to one
speaker each.

Licences: espeak-ng GPL-3+, flite BSD-like (CMU), festival and its festvox voices CMU/CSTR free
licences (Debian ``main``).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...audio.io import load_audio, resample
from ._common import BuildError, require_tool, run_tool

__all__ = [
    "ENGINES",
    "ESPEAK_ACCENTS",
    "FESTIVAL_VOICES",
    "FLITE_VOICES",
    "ClipParams",
    "Voice",
    "check_engine",
    "draw_params",
    "espeak_variants",
    "list_voices",
    "synthesize",
]

#: Engine name -> (binary, Debian package).
ENGINES = {"espeak-ng": ("espeak-ng", "espeak-ng"), "flite": ("flite", "flite"), "festival": ("text2wave", "festival")}

#: The eight English accents of espeak-ng (its ``gmw`` language files).
ESPEAK_ACCENTS = (
    "en-us",
    "en",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-rp",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)

#: flite voice -> speaker. ``kal16`` is the 16 kHz build of the 8 kHz ``kal``; only the former is used.
FLITE_VOICES = {"kal16": "cmu-kal", "awb": "cmu-awb", "rms": "cmu-rms", "slt": "cmu-slt"}

#: festival voice -> (speaker, Debian package holding it).
FESTIVAL_VOICES = {
    "kal_diphone": ("cmu-kal", "festvox-kallpc16k"),
    "ked_diphone": ("cmu-ked", "festvox-kdlpc16k"),
    "cmu_us_slt_arctic_hts": ("cmu-slt", "festvox-us-slt-hts"),
}

_FESTIVAL_VOICE_DIRS = ("/usr/share/festival/voices/english", "/usr/share/festival/voices/us")


@dataclass(frozen=True)
class Voice:
    """One engine voice: ``engine`` and its ``name`` argument, plus the ``speaker`` behind it."""

    engine: str
    name: str
    speaker: str


@dataclass(frozen=True)
class ClipParams:
    """Per-clip variation. ``speed`` scales the speaking rate (>1 faster); ``pitch`` is espeak-ng's
    0-99 pitch (ignored elsewhere); ``warp`` resamples the output as if recorded at ``rate * warp``,
    moving pitch and formants together (flite and festival have no voice-independent pitch control)."""

    speed: float
    pitch: int
    warp: float

    def describe(self) -> str:
        return f"speed={self.speed:.3f};pitch={self.pitch};warp={self.warp:.3f}"


def check_engine(engine: str) -> str:
    """Return the engine binary's path or raise :class:`EngineNotFoundError` naming the Debian package."""
    if engine not in ENGINES:
        raise ValueError(f"unknown speech engine {engine!r}; choose from {sorted(ENGINES)}")
    return require_tool(*ENGINES[engine])


def espeak_variants() -> list[str]:
    """espeak-ng voice variants (``!v/<name>`` files); names with spaces are skipped (they cannot be
    passed as ``accent+variant``)."""
    out = run_tool([check_engine("espeak-ng"), "--voices=variant"], "espeak-ng --voices=variant")
    names = []
    for line in out.splitlines()[1:]:
        m = re.search(r"\s!v/(\S+)(\s+\(.*\))?\s*$", line)
        if m:
            names.append(m.group(1))
    if not names:
        raise BuildError("espeak-ng --voices=variant listed no variants; is espeak-ng-data complete?")
    return sorted(set(names))


def _festival_installed(name: str) -> bool:
    return any(Path(d, name).is_dir() for d in _FESTIVAL_VOICE_DIRS)


def list_voices(
    engines: Sequence[str] = ("espeak-ng", "flite", "festival"), accents: Sequence[str] = ESPEAK_ACCENTS
) -> list[Voice]:
    """Every usable voice of ``engines``, sorted. Raises if an engine (or every festival voice) is missing."""
    voices: list[Voice] = []
    for engine in engines:
        check_engine(engine)
        if engine == "espeak-ng":
            variants = espeak_variants()
            voices += [Voice(engine, f"{a}+{v}", f"espeak-{a}+{v}") for a in accents for v in variants]
        elif engine == "flite":
            available = set(run_tool([check_engine("flite"), "-lv"], "flite -lv").split())
            voices += [Voice(engine, n, s) for n, s in FLITE_VOICES.items() if n in available]
        else:
            found = [Voice(engine, n, s) for n, (s, _) in FESTIVAL_VOICES.items() if _festival_installed(n)]
            if not found:
                pkgs = " ".join(p for _, p in FESTIVAL_VOICES.values())
                raise BuildError(
                    f"festival has none of its voices installed; install them with: apt-get install {pkgs}"
                )
            voices += found
    return sorted(voices, key=lambda v: (v.engine, v.name))


def draw_params(rng: np.random.Generator, base_speed: float, base_pitch: int, engine: str) -> ClipParams:
    """Jitter a speaker's base speed/pitch for one clip; flite/festival get a pitch warp instead."""
    speed = float(np.clip(base_speed * rng.uniform(0.9, 1.1), 0.7, 1.4))
    pitch = int(np.clip(base_pitch + rng.integers(-8, 9), 0, 99))
    warp = 1.0 if engine == "espeak-ng" else float(rng.uniform(0.9, 1.12))
    return ClipParams(speed=round(speed, 3), pitch=pitch, warp=round(warp, 3))


def _engine_args(voice: Voice, word: str, params: ClipParams, out: Path) -> tuple[list[str], str | None]:
    binary = check_engine(voice.engine)
    if voice.engine == "espeak-ng":
        wpm = str(round(175 * params.speed))
        return [binary, "-v", voice.name, "-s", wpm, "-p", str(params.pitch), "-w", str(out), word], None
    stretch = f"{1.0 / params.speed:.3f}"
    if voice.engine == "flite":
        return [binary, "-voice", voice.name, "--setf", f"duration_stretch={stretch}", "-t", word, "-o", str(out)], None
    return [
        binary, "-o", str(out), "-eval", f"(voice_{voice.name})",
        "-eval", f"(Parameter.set 'Duration_Stretch {stretch})",
    ], word  # fmt: skip


def synthesize(voice: Voice, word: str, params: ClipParams, workdir: Path) -> tuple[np.ndarray, int]:
    """Speak ``word`` with ``voice`` and return ``(mono float32 waveform, rate)``, warp applied.

    Raises:
        BuildError: the engine failed or wrote no audio (the message names voice and word).
    """
    if not re.fullmatch(r"[a-z' ]+", word):
        raise ValueError(f"words must be lower-case letters, got {word!r}")
    what = f"{voice.engine} voice {voice.name!r}, word {word!r}"
    fd, name = tempfile.mkstemp(suffix=".wav", dir=workdir)
    os.close(fd)
    out = Path(name)
    args, stdin = _engine_args(voice, word, params, out)
    run_tool(args, what, stdin=stdin)
    if not out.is_file() or out.stat().st_size <= 44:
        raise BuildError(f"{what}: the engine wrote no audio")
    try:
        x, sr = load_audio(out)
    finally:
        out.unlink(missing_ok=True)
    if params.warp != 1.0:
        # Reading the samples at rate sr*warp and converting back to sr raises pitch by `warp`.
        x = resample(x, round(sr * params.warp), sr)
    return x, sr
