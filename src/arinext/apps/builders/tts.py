"""Speech engines from Debian ``main`` (espeak-ng, flite, festival): voice inventory and synthesis.

A :class:`Voice` is one way of calling an engine; its ``speaker`` names the person or model behind
it, which is what dataset splits must keep apart: an espeak-ng voice is an accent x variant pair
(formant synthesis, each pair is its own modelled voice), while flite and festival voices are
recordings of real people, and CMU's ``slt`` and ``kal`` are in both engines, so they map to one
speaker each. Each voice also carries its synthesis ``method`` (formant, diphone, clustergen, hts)
and ``language`` (the voice's own language: the Czech, Italian, Finnish and Catalan festival voices
read English words with their language's rules, so they give accented English).

Parameters each engine takes per clip (:class:`ClipParams`), measured on single words:

- espeak-ng: speaking rate (``-s``), pitch (``-p`` 0-99), voice variants (``+variant``), and *random
  variant files* (:func:`espeak_random_variant`): vocal-tract size (formant frequencies at a fixed
  pitch), pitch base and range, breathiness, roughness, flutter; each file is a new modelled speaker.
- flite: ``duration_stretch`` (rate) and ``int_f0_target_mean`` (pitch; honoured by kal16, awb, slt,
  ignored by rms).
- festival: ``Duration_Stretch`` for the diphone voices, ``-r`` of the HTS engine for the HTS voices
  (which ignore ``Duration_Stretch``), and the pitch target of ``int_lr_params`` for kal and ked.
- flite and festival: a resampling warp (pitch and formants together) for every voice.

Licences: espeak-ng GPL-3+; flite BSD-like (CMU); festival and its English festvox voices CMU/CSTR free
licences; festvox-czech-* GPL-3+ (czech-ph GPL-2+), festvox-italp16k/itapc16k GPL-2+, festvox-suopuhe-*
LGPL-2+, festvox-ca-ona-hts LGPL-2.1+ (all Debian ``main``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...audio.io import load_audio, resample
from ...utils.errors import ConfigError
from ._common import BuildError, EngineCrashError, require_tool, run_tool, stable_rng

__all__ = [
    "ENGINES",
    "ENGLISH_FESTIVAL_VOICES",
    "ESPEAK_ACCENTS",
    "FESTIVAL_VOICES",
    "FLITE_VOICES",
    "ClipParams",
    "Voice",
    "VoiceInfo",
    "check_engine",
    "draw_params",
    "espeak_data_path",
    "espeak_random_variant",
    "espeak_random_voices",
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


@dataclass(frozen=True)
class VoiceInfo:
    """A recorded voice: the ``speaker`` behind it, the Debian package, synthesis method, language,
    and its natural mean F0 in Hz when the engine takes a pitch target for it (else 0)."""

    speaker: str
    package: str
    method: str
    language: str = "en"
    f0: float = 0.0


#: flite voice -> :class:`VoiceInfo`. ``kal16`` is the 16 kHz build of the 8 kHz ``kal``; only the former is used.
#: ``rms`` ignores ``int_f0_target_mean``, hence no F0 for it.
FLITE_VOICES = {
    "kal16": VoiceInfo("cmu-kal", "flite", "diphone", f0=100.0),
    "awb": VoiceInfo("cmu-awb", "flite", "clustergen", f0=110.0),
    "rms": VoiceInfo("cmu-rms", "flite", "clustergen"),
    "slt": VoiceInfo("cmu-slt", "flite", "clustergen", f0=162.0),
}

#: festival voice -> :class:`VoiceInfo`. The English voices are used by default; the others (accented
#: English) are chosen with ``festival_voices``.
FESTIVAL_VOICES = {
    "kal_diphone": VoiceInfo("cmu-kal", "festvox-kallpc16k", "diphone", f0=105.0),
    "ked_diphone": VoiceInfo("cmu-ked", "festvox-kdlpc16k", "diphone", f0=105.0),
    "cmu_us_slt_arctic_hts": VoiceInfo("cmu-slt", "festvox-us-slt-hts", "hts"),
    "czech_dita": VoiceInfo("czech-dita", "festvox-czech-dita", "diphone", "cs"),
    "czech_krb": VoiceInfo("czech-krb", "festvox-czech-krb", "diphone", "cs"),
    "czech_machac": VoiceInfo("czech-machac", "festvox-czech-machac", "diphone", "cs"),
    "czech_ph": VoiceInfo("czech-ph", "festvox-czech-ph", "diphone", "cs"),
    "lp_diphone": VoiceInfo("ifd-lp", "festvox-italp16k", "diphone", "it"),
    "pc_diphone": VoiceInfo("ifd-pc", "festvox-itapc16k", "diphone", "it"),
    "suo_fi_lj_diphone": VoiceInfo("suopuhe-lj", "festvox-suopuhe-lj", "diphone", "fi"),
    "hy_fi_mv_diphone": VoiceInfo("suopuhe-mv", "festvox-suopuhe-mv", "diphone", "fi"),
    "upc_ca_ona_hts": VoiceInfo("upc-ona", "festvox-ca-ona-hts", "hts", "ca"),
}

#: The festival voices a build uses unless told otherwise: the English ones.
ENGLISH_FESTIVAL_VOICES = tuple(n for n, v in FESTIVAL_VOICES.items() if v.language == "en")

_FESTIVAL_VOICE_ROOT = Path("/usr/share/festival/voices")
_ESPEAK_DATA_DIRS = ("/usr/lib/x86_64-linux-gnu/espeak-ng-data", "/usr/lib/aarch64-linux-gnu/espeak-ng-data",
                     "/usr/share/espeak-ng-data", "/usr/lib/espeak-ng-data")  # fmt: skip
RANDOM_VARIANT_PREFIX = "arx"


@dataclass(frozen=True)
class Voice:
    """One engine voice: ``engine`` and its ``name`` argument, the ``speaker`` behind it, its synthesis
    ``method`` and ``language``, its natural ``f0`` when the engine takes a pitch target (else 0), and,
    for an espeak-ng random variant, the variant file's text (``variant``) and the private data folder
    that holds it (``data_path``, set when the build writes it)."""

    engine: str
    name: str
    speaker: str
    method: str = "formant"
    language: str = "en"
    f0: float = 0.0
    variant: str | None = None
    data_path: str | None = None


@dataclass(frozen=True)
class ClipParams:
    """Per-clip variation. ``speed`` scales the speaking rate (>1 faster); ``pitch`` is espeak-ng's
    0-99 pitch (ignored elsewhere); ``f0`` is the mean F0 target in Hz of the flite and festival voices
    that take one (0: the voice's own); ``warp`` resamples the output as if recorded at ``rate * warp``,
    moving pitch and formants together."""

    speed: float
    pitch: int
    warp: float
    f0: float = 0.0

    def describe(self) -> str:
        f0 = f";f0={self.f0:.0f}" if self.f0 else ""
        return f"speed={self.speed:.3f};pitch={self.pitch};warp={self.warp:.3f}{f0}"


def check_engine(engine: str) -> str:
    """Return the engine binary's path or raise :class:`EngineNotFoundError` naming the Debian package."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown speech engine {engine!r}; choose from {sorted(ENGINES)}")
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
    return any(_FESTIVAL_VOICE_ROOT.glob(f"*/{name}/festvox"))


def list_voices(
    engines: Sequence[str] = ("espeak-ng", "flite", "festival"),
    accents: Sequence[str] = ESPEAK_ACCENTS,
    festival_voices: Sequence[str] = ENGLISH_FESTIVAL_VOICES,
) -> list[Voice]:
    """Every usable voice of ``engines``, sorted: espeak-ng's accents x variants, flite's voices, and the
    installed ``festival_voices`` (names of :data:`FESTIVAL_VOICES`).

    Raises:
        EngineNotFoundError: an engine is missing (names the Debian package).
        BuildError: a requested festival voice is not installed (names its Debian package).
    """
    voices: list[Voice] = []
    for engine in engines:
        check_engine(engine)
        if engine == "espeak-ng":
            variants = espeak_variants()
            voices += [Voice(engine, f"{a}+{v}", f"espeak-{a}+{v}") for a in accents for v in variants]
        elif engine == "flite":
            available = set(run_tool([check_engine("flite"), "-lv"], "flite -lv").split())
            voices += [Voice(engine, n, i.speaker, i.method, i.language, i.f0) for n, i in FLITE_VOICES.items()
                       if n in available]  # fmt: skip
        else:
            unknown = [n for n in festival_voices if n not in FESTIVAL_VOICES]
            if unknown:
                raise ConfigError(f"unknown festival voice(s) {unknown}; choose from {list(FESTIVAL_VOICES)}")
            missing = [n for n in festival_voices if not _festival_installed(n)]
            if missing:
                pkgs = " ".join(FESTIVAL_VOICES[n].package for n in missing)
                raise BuildError(f"festival voice(s) {missing} are not installed; install them with: apt-get install {pkgs}")
            voices += [Voice(engine, n, i.speaker, i.method, i.language, i.f0)
                       for n in festival_voices for i in [FESTIVAL_VOICES[n]]]  # fmt: skip
    return sorted(voices, key=lambda v: (v.engine, v.name))


def espeak_random_variant(rng: np.random.Generator, name: str) -> str:
    """The text of an espeak-ng variant file for a new random voice (see espeak-ng's ``voices.md``).

    One vocal-tract scale ``s`` (0.82-1.2) moves every formant frequency, each with its own +-4 %
    jitter, so formants change at a fixed pitch (espeak-ng's built-in variants mostly do not); the
    pitch base follows the tract loosely (a smaller tract speaks higher), with its own spread and a
    random range. Breathiness, roughness and flutter are drawn too.
    """
    scale = float(rng.uniform(0.82, 1.2))
    base = float(np.clip(110.0 * scale**2.5 * 2 ** rng.uniform(-0.5, 0.5), 60.0, 280.0))
    top = base * float(rng.uniform(1.25, 1.9))
    lines = ["language variant", f"name {name}", f"pitch {base:.0f} {top:.0f}"]
    for k in range(1, 7):
        freq = 100.0 * scale * float(rng.uniform(0.96, 1.04))
        lines.append(f"formant {k} {freq:.0f} {rng.uniform(80, 120):.0f} {rng.uniform(80, 140):.0f}")
    lines += [f"roughness {int(rng.integers(0, 5))}", f"flutter {int(rng.integers(0, 80))}"]
    if rng.uniform() < 0.3:
        lines.append("breath " + " ".join(str(int(rng.integers(0, 4))) for _ in range(8)))
    return "\n".join(lines) + "\n"


def espeak_random_voices(count: int, accents: Sequence[str], seed: int) -> list[Voice]:
    """``count`` espeak-ng voices with random variant files, dealt to ``accents`` in turn; each variant is
    used once, so each is its own speaker (``espeak-<accent>+arxNNN``)."""
    if count < 0:
        raise ConfigError(f"the number of random espeak-ng voices must be >= 0, got {count}")
    voices = []
    for k in range(count):
        name = f"{RANDOM_VARIANT_PREFIX}{k:03d}"
        accent = accents[k % len(accents)]
        body = espeak_random_variant(stable_rng(seed, "espeak-variant", k), name)
        voices.append(Voice("espeak-ng", f"{accent}+{name}", f"espeak-{accent}+{name}", variant=body))
    return voices


def espeak_data_path(folder: Path, voices: Sequence[Voice]) -> str:
    """Write a private espeak-ng data folder under ``folder`` (links to the system's data plus the variant
    files of ``voices``) and return the ``--path`` argument that makes espeak-ng read it."""
    system = next((Path(d) for d in _ESPEAK_DATA_DIRS if Path(d, "voices", "!v").is_dir()), None)
    if system is None:
        raise BuildError(f"espeak-ng's data folder (voices/!v) was not found in {list(_ESPEAK_DATA_DIRS)}")
    data = folder / "espeak-ng-data"
    (data / "voices" / "!v").mkdir(parents=True)
    for entry in system.iterdir():
        if entry.name != "voices":
            (data / entry.name).symlink_to(entry)
    for entry in (system / "voices").iterdir():
        if entry.name != "!v":
            (data / "voices" / entry.name).symlink_to(entry)
    for entry in (system / "voices" / "!v").iterdir():
        (data / "voices" / "!v" / entry.name).symlink_to(entry)
    for v in voices:
        if v.variant is not None:
            (data / "voices" / "!v" / v.name.split("+", 1)[1]).write_text(v.variant)
    return str(folder)


def draw_params(rng: np.random.Generator, base_speed: float, base_pitch: int, voice: Voice) -> ClipParams:
    """Jitter a speaker's base speed/pitch for one clip; flite/festival get a pitch warp, and an F0
    target of +-3 semitones around the voice's own when the engine takes one."""
    speed = float(np.clip(base_speed * rng.uniform(0.9, 1.1), 0.7, 1.4))
    pitch = int(np.clip(base_pitch + rng.integers(-8, 9), 0, 99))
    warp = 1.0 if voice.engine == "espeak-ng" else float(rng.uniform(0.9, 1.12))
    f0 = voice.f0 * 2 ** (rng.uniform(-3, 3) / 12) if voice.f0 else 0.0
    return ClipParams(speed=round(speed, 3), pitch=pitch, warp=round(warp, 3), f0=round(f0, 1))


def _engine_args(voice: Voice, word: str, params: ClipParams, out: Path) -> tuple[list[str], str | None]:
    binary = check_engine(voice.engine)
    if voice.engine == "espeak-ng":
        wpm = str(round(175 * params.speed))
        path = [f"--path={voice.data_path}"] if voice.data_path else []
        return [binary, *path, "-v", voice.name, "-s", wpm, "-p", str(params.pitch), "-w", str(out), word], None
    stretch = f"{1.0 / params.speed:.3f}"
    if voice.engine == "flite":
        f0 = ["--setf", f"int_f0_target_mean={params.f0:.1f}"] if params.f0 else []
        return [binary, "-voice", voice.name, "--setf", f"duration_stretch={stretch}", *f0, "-t", word,
                "-o", str(out)], None  # fmt: skip
    evals = ["-eval", f"(voice_{voice.name})", "-eval", f"(Parameter.set 'Duration_Stretch {stretch})"]
    if voice.method == "hts":  # the HTS engine ignores Duration_Stretch; its own rate is -r (>1 faster)
        evals += ["-eval", f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {params.speed:.3f}))))']
    if params.f0:  # the voice's int_lr_params, with another target mean
        evals += ["-eval", f"(set! int_lr_params '((target_f0_mean {params.f0:.1f}) (target_f0_std {params.f0 * 0.14:.1f}) "
                           "(model_f0_mean 170) (model_f0_std 34)))"]  # fmt: skip
    return [binary, "-o", str(out), *evals], word


def synthesize(
    voice: Voice, word: str, params: ClipParams, workdir: Path, retries: int = 3
) -> tuple[np.ndarray, int, ClipParams]:
    """Speak ``word`` with ``voice`` and return ``(mono float32 waveform, rate, parameters used)``, warp applied.

    Some festival diphone voices crash (segmentation fault) at particular duration stretches (pc_diphone
    on "no" at 0.77 and 1.3, for instance); a crashed call is retried with the speed 1 % higher, up to
    ``retries`` times, and the parameters actually used are returned.

    Raises:
        BuildError: the engine failed or wrote no audio (the message names voice and word).
    """
    if not re.fullmatch(r"[a-z' ]+", word):
        raise ConfigError(f"words must be lower-case letters, got {word!r}")
    if voice.variant is not None and voice.data_path is None:
        raise ConfigError(f"espeak-ng voice {voice.name!r} has a random variant but no data folder (espeak_data_path)")
    what = f"{voice.engine} voice {voice.name!r}, word {word!r}"
    fd, name = tempfile.mkstemp(suffix=".wav", dir=workdir)
    os.close(fd)
    out = Path(name)
    try:
        for attempt in range(retries + 1):
            args, stdin = _engine_args(voice, word, params, out)
            try:
                run_tool(args, what, stdin=stdin)
                break
            except EngineCrashError:
                if attempt == retries:
                    raise
                params = dataclasses.replace(params, speed=round(params.speed * 1.01, 3))
        if not out.is_file() or out.stat().st_size <= 44:
            raise BuildError(f"{what}: the engine wrote no audio")
        x, sr = load_audio(out)
    finally:
        out.unlink(missing_ok=True)
    if params.warp != 1.0:
        # Reading the samples at rate sr*warp and converting back to sr raises pitch by `warp`.
        x = resample(x, round(sr * params.warp), sr)
    return x, sr, params
