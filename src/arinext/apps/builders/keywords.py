"""Keyword-spotting dataset in the Speech Commands V2 layout, spoken by Debian's speech engines.

Layout (the real dataset's, so the Speech Commands adapter reads it unchanged)::

    ROOT/<word>/<speaker>_nohash_<n>.<wav|flac>    1 s, 16 kHz, mono, 16-bit
    ROOT/validation_list.txt                       paths relative to ROOT, one per line
    ROOT/testing_list.txt                          (training = every other clip)
    ROOT/_background_noise_/{white,pink,brown}_noise.<ext>
    ROOT/manifest.csv                              path,label,engine,voice,speaker,method,language,params,split
    ROOT/BUILD.json                                build parameters

``<speaker>`` is 8 hex digits of the SHA-1 of the modelled speaker (see :mod:`.tts`), as in Speech
Commands; splits are made on speakers, so no voice is heard in two splits.

Recipe per clip: engine WAV -> mono -> soxr to 16 kHz -> trim silence 40 dB below the peak with 30 ms
pad -> random peak level in -12..-1 dBFS -> random offset inside the 1 s clip (a word longer than 1 s
is centre-cropped with 10 ms fades and flagged ``cropped=1`` in ``params``). Everything random is drawn
from generators seeded by ``(seed, voice, word, clip index)``, so a build does not depend on ``jobs``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...audio.io import resample
from ...data.records import SUBSETS
from ...data.vocab import SPEECH_COMMANDS_CORE_WORDS, SPEECH_COMMANDS_V2_WORDS
from ...utils.errors import ConfigError
from ._common import (
    AUDIO_FORMATS,
    BuildError,
    BuildResult,
    parallel_map,
    prepare_output,
    stable_rng,
    write_build_info,
    write_clip,
)
from .noise import write_background_noise
from .tts import (
    ENGINES,
    ENGLISH_FESTIVAL_VOICES,
    ESPEAK_ACCENTS,
    Voice,
    draw_params,
    espeak_data_path,
    espeak_random_voices,
    list_voices,
    synthesize,
)

__all__ = [
    "WORD_SETS",
    "assign_splits",
    "build_keywords",
    "check_words",
    "finish_clip",
    "select_voices",
    "speaker_id",
]

log = logging.getLogger(__name__)

_TRIM_DB = 40.0
_PAD_S = 0.03
_FADE_S = 0.01
_LEVEL_DBFS = (-12.0, -1.0)


#: Names that stand for word lists in :func:`check_words` (and ``--words``).
WORD_SETS = {"core": SPEECH_COMMANDS_CORE_WORDS, "all": SPEECH_COMMANDS_V2_WORDS}


def check_words(words: Sequence[str]) -> list[str]:
    """Expand the set names of :data:`WORD_SETS` and check every word against the 35 Speech Commands V2
    words; raises ``ValueError`` naming an unknown or repeated word before any work starts."""
    out: list[str] = []
    for w in words:
        out += list(WORD_SETS[w]) if w in WORD_SETS else [w]
    unknown = [w for w in out if w not in SPEECH_COMMANDS_V2_WORDS]
    if unknown:
        raise ConfigError(
            f"unknown word(s) {unknown}: use the Speech Commands V2 words ({', '.join(SPEECH_COMMANDS_V2_WORDS)}) "
            f"or the sets {sorted(WORD_SETS)}"
        )
    repeated = sorted({w for w in out if out.count(w) > 1})
    if not out or repeated:
        raise ConfigError(f"words must be a non-empty list without repeats, got {list(words)} (repeated: {repeated})")
    return out


@dataclass(frozen=True)
class _Job:
    voice: Voice
    word: str
    index: int  # clip index of this voice for this word
    n: int  # clip number of the speaker for this word (the `_nohash_<n>` part)
    split: str
    base_speed: float
    base_pitch: int


def speaker_id(speaker: str) -> str:
    """The 8-hex-digit file-name prefix of a speaker (Speech Commands style)."""
    return hashlib.sha1(speaker.encode()).hexdigest()[:8]


def select_voices(voices: Sequence[Voice], num_espeak: int | None, seed: int) -> list[Voice]:
    """Keep every flite/festival voice and ``num_espeak`` espeak-ng voices (all if ``None``).

    The espeak-ng pick spreads over accents and variants: variants are shuffled and dealt to the
    accents in turn, so the first ``len(variants)`` voices all use different variants.
    """
    espeak = [v for v in voices if v.engine == "espeak-ng"]
    others = [v for v in voices if v.engine != "espeak-ng"]
    if num_espeak is None or num_espeak >= len(espeak):
        return others + espeak
    if num_espeak < 0:
        raise ConfigError(f"num_espeak must be >= 0, got {num_espeak}")
    by_name = {v.name: v for v in espeak}
    accents = sorted({v.name.split("+", 1)[0] for v in espeak})
    variants = sorted({v.name.split("+", 1)[1] for v in espeak})
    order = stable_rng(seed, "variants").permutation(len(variants))
    picked: list[Voice] = []
    k = 0
    while len(picked) < num_espeak:
        # Shift the accent on every pass over the variants so a variant never repeats an accent.
        name = f"{accents[(k + k // len(variants)) % len(accents)]}+{variants[order[k % len(variants)]]}"
        if name in by_name and by_name[name] not in picked:
            picked.append(by_name[name])
        k += 1
    return others + picked


def _group(speaker: str) -> str:
    return speaker.split("+", 1)[0] if speaker.startswith("espeak-") else "human"


def _count(spec: float, total: int) -> int:
    """A split size given as a count (>= 1) or as a fraction of ``total`` (< 1)."""
    if spec < 0:
        raise ConfigError(f"split sizes must be >= 0, got {spec}")
    return round(spec * total) if spec < 1 else int(spec)


def assign_splits(speakers: Sequence[str], val: float, test: float, seed: int) -> dict[str, str]:
    """Deal speakers to ``testing``, ``validation`` and ``training`` deliberately, not by hash.

    Speakers are grouped (espeak-ng accent, or the recorded CMU voices), shuffled within groups and
    interleaved so that every prefix of the order samples the groups in proportion; the first ones
    go to testing, the next to validation, the rest to training. ``val``/``test`` are counts (>= 1) or
    fractions (< 1) of the speakers; at least one speaker must remain for training.
    """
    speakers = sorted(set(speakers))
    n_test, n_val = _count(test, len(speakers)), _count(val, len(speakers))
    if n_test + n_val >= len(speakers):
        raise ConfigError(
            f"{len(speakers)} speakers cannot give {n_test} test + {n_val} validation speakers and leave any for "
            "training; use more voices or smaller splits"
        )
    groups: dict[str, list[str]] = {}
    for s in speakers:
        groups.setdefault(_group(s), []).append(s)
    keyed = []
    for name, members in sorted(groups.items()):
        perm = stable_rng(seed, "split", name).permutation(len(members))
        offset = stable_rng(seed, "offset", name).uniform(0, 1)
        keyed += [((j + offset) / len(members), name, members[i]) for j, i in enumerate(perm)]
    order = [s for _, _, s in sorted(keyed)]
    split = ("testing", "validation", "training")
    return {s: split[(k >= n_test) + (k >= n_test + n_val)] for k, s in enumerate(order)}


def finish_clip(
    x: np.ndarray, sr: int, rng: np.random.Generator, sample_rate: int = 16000, seconds: float = 1.0
) -> tuple[np.ndarray, bool]:
    """Turn raw engine output into a fixed-length clip; returns ``(clip, cropped)``.

    Resample to ``sample_rate``, trim silence 40 dB under the peak (keeping 30 ms), set a random peak
    level in -12..-1 dBFS and place the word at a random offset; longer words are centre-cropped.
    """
    x = resample(x, sr, sample_rate)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 0:
        raise BuildError("the engine produced only silence")
    loud = np.flatnonzero(np.abs(x) >= peak * 10 ** (-_TRIM_DB / 20))
    pad = int(_PAD_S * sample_rate)
    x = x[max(0, loud[0] - pad) : loud[-1] + pad + 1]
    x = x * (10 ** (rng.uniform(*_LEVEL_DBFS) / 20) / peak)
    length = round(seconds * sample_rate)
    out = np.zeros(length, dtype=np.float32)
    if x.size > length:
        start = (x.size - length) // 2
        out[:] = x[start : start + length]
        fade = np.linspace(0.0, 1.0, int(_FADE_S * sample_rate), dtype=np.float32)
        out[: fade.size] *= fade
        out[-fade.size :] *= fade[::-1]
        return out, True
    offset = int(rng.integers(0, length - x.size + 1))
    out[offset : offset + x.size] = x
    return out, False


def _clips_of(clips_per_voice: int | Mapping[str, int], engine: str) -> int:
    return int(clips_per_voice.get(engine, 1) if isinstance(clips_per_voice, Mapping) else clips_per_voice)


def _plan(
    voices: Sequence[Voice],
    words: Sequence[str],
    clips_per_voice: int | Mapping[str, int],
    split_of: dict[str, str],
    seed: int,
) -> list[_Job]:
    by_speaker: dict[str, list[Voice]] = {}
    for v in voices:
        by_speaker.setdefault(v.speaker, []).append(v)
    jobs = []
    for speaker, vs in sorted(by_speaker.items()):
        for word in words:
            n = 0
            for v in vs:
                rng = stable_rng(seed, "voice", v.engine, v.name)
                base_speed, base_pitch = float(rng.uniform(0.85, 1.2)), int(rng.integers(25, 76))
                for index in range(_clips_of(clips_per_voice, v.engine)):
                    jobs.append(_Job(v, word, index, n, split_of[speaker], base_speed, base_pitch))
                    n += 1
    return jobs


def _make_clip(job: _Job, root: Path, workdir: Path, seed: int, fmt: str, sample_rate: int) -> dict[str, str]:
    rng = stable_rng(seed, "clip", job.voice.engine, job.voice.name, job.word, job.index)
    params = draw_params(rng, job.base_speed, job.base_pitch, job.voice)
    x, sr, params = synthesize(job.voice, job.word, params, workdir)
    try:
        clip, cropped = finish_clip(x, sr, rng, sample_rate)
    except BuildError as exc:
        raise BuildError(f"{job.voice.engine} voice {job.voice.name!r}, word {job.word!r}: {exc}") from exc
    rel = f"{job.word}/{speaker_id(job.voice.speaker)}_nohash_{job.n}{AUDIO_FORMATS[fmt][0]}"
    write_clip(root / rel, clip, sample_rate, fmt)
    return {
        "path": rel,
        "label": job.word,
        "engine": job.voice.engine,
        "voice": job.voice.name,
        "speaker": job.voice.speaker,
        "method": job.voice.method,
        "language": job.voice.language,
        "params": params.describe() + (";cropped=1" if cropped else ""),
        "split": job.split,
    }


def _write_lists(root: Path, rows: list[dict[str, str]]) -> None:
    rows.sort(key=lambda r: r["path"])
    for split, name in (("validation", "validation_list.txt"), ("testing", "testing_list.txt")):
        (root / name).write_text("".join(f"{r['path']}\n" for r in rows if r["split"] == split))
    with open(root / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def build_keywords(
    root: str | Path,
    words: Sequence[str] = SPEECH_COMMANDS_CORE_WORDS,
    engines: Sequence[str] = ("espeak-ng", "flite", "festival"),
    accents: Sequence[str] = ESPEAK_ACCENTS,
    num_espeak_voices: int | None = None,
    clips_per_voice: int | Mapping[str, int] = 1,
    val_speakers: float = 0.1,
    test_speakers: float = 0.1,
    seed: int = 0,
    jobs: int = 1,
    fmt: str = "wav",
    noise_seconds: float = 60.0,
    sample_rate: int = 16000,
    force: bool = False,
    festival_voices: Sequence[str] = ENGLISH_FESTIVAL_VOICES,
    espeak_random: int = 0,
) -> BuildResult:
    """Synthesize a Speech Commands V2-style keyword dataset into ``root``.

    Args:
        root: output directory; must be empty or missing unless ``force``.
        words: Speech Commands V2 words, one folder each, or the set names ``core``/``all`` (default:
            the ten core words); an unknown word is an error before anything is synthesized.
        engines: any of ``espeak-ng``, ``flite``, ``festival``.
        accents: espeak-ng English accents to use (default all eight).
        num_espeak_voices: how many espeak-ng accent x variant voices (default all, about 800).
        clips_per_voice: clips per voice and word, each with its own speed/pitch/level/offset; one
            number for every engine, or ``{engine: clips}`` (engines not named get 1).
        val_speakers, test_speakers: speakers per split, as a count (>= 1) or a fraction (< 1); a split
            that would get no speaker is an error.
        seed: seeds voice choice, splits and every per-clip random draw.
        jobs: parallel engine processes.
        fmt: ``wav`` or ``flac`` (16-bit PCM either way).
        noise_seconds: length of each background noise file (0 writes none).
        sample_rate: output rate.
        force: replace an earlier build in ``root``.
        festival_voices: festival voices (names of :data:`~arinext.apps.builders.tts.FESTIVAL_VOICES`);
            default the English ones.
        espeak_random: extra espeak-ng voices made from random variant files (new vocal tracts, pitch
            ranges and voice qualities; :func:`~arinext.apps.builders.tts.espeak_random_variant`), each
            its own speaker.

    Returns:
        A :class:`~arinext.apps.builders.BuildResult`: clips per split, speakers per split
        (``groups``), cropped clips (``flagged``).

    Raises:
        ValueError: an unknown word, engine or voice, or a split that would be empty.
        EngineNotFoundError: an engine is not installed (names the Debian package).
        DatasetExistsError: ``root`` holds files and ``force`` is false.
        BuildError: an engine failed (names voice and word).
    """
    words = check_words(words)
    if fmt not in AUDIO_FORMATS:
        raise ConfigError(f"unknown audio format {fmt!r}; choose one of {sorted(AUDIO_FORMATS)}")
    unknown = [e for e in (clips_per_voice if isinstance(clips_per_voice, Mapping) else {}) if e not in ENGINES]
    if unknown:
        raise ConfigError(f"clips_per_voice names unknown engine(s) {unknown}; engines: {sorted(ENGINES)}")
    if min([_clips_of(clips_per_voice, e) for e in engines] or [1]) < 1:
        raise ConfigError(f"clips_per_voice must be >= 1, got {clips_per_voice}")
    start = time.perf_counter()
    voices = select_voices(list_voices(engines, accents, festival_voices), num_espeak_voices, seed)
    if "espeak-ng" in engines:
        voices += espeak_random_voices(espeak_random, accents, seed)
    split_of = assign_splits([v.speaker for v in voices], val_speakers, test_speakers, seed)
    for split, option in (("validation", "val_speakers"), ("testing", "test_speakers")):
        if split not in split_of.values():
            raise ConfigError(
                f"the {split} split would be empty: {len(split_of)} speakers with {option}="
                f"{val_speakers if split == 'validation' else test_speakers} give it none; use more voices or a count"
            )
    info = {
        "builder": "keywords",
        "words": list(words),
        "engines": list(engines),
        "accents": list(accents),
        "num_espeak_voices": num_espeak_voices,
        "espeak_random": espeak_random,
        "festival_voices": list(festival_voices),
        "clips_per_voice": dict(clips_per_voice) if isinstance(clips_per_voice, Mapping) else clips_per_voice,
        "val_speakers": val_speakers,
        "test_speakers": test_speakers,
        "seed": seed,
        "format": fmt,
        "noise_seconds": noise_seconds,
        "sample_rate": sample_rate,
    }
    with tempfile.TemporaryDirectory(prefix="arinext-kw-") as tmp:
        if any(v.variant is not None for v in voices):
            path = espeak_data_path(Path(tmp), voices)
            voices = [dataclasses.replace(v, data_path=path) if v.variant is not None else v for v in voices]
        plan = _plan(voices, words, clips_per_voice, split_of, seed)
        root = prepare_output(root, force)
        write_build_info(root, {**info, "complete": False})
        log.info(
            "synthesizing %d clips: %d words x %d voices (%d speakers)", len(plan), len(words), len(voices), len(split_of)
        )
        rows = parallel_map(
            lambda j: _make_clip(j, root, Path(tmp), seed, fmt, sample_rate), plan, jobs, desc="keywords"
        )
    _write_lists(root, rows)
    if noise_seconds > 0:
        write_background_noise(root, noise_seconds, seed, sample_rate, fmt)
    write_build_info(root, {**info, "complete": True})
    result = BuildResult(root, "clip", seconds=time.perf_counter() - start)
    for split in SUBSETS:
        result.splits[split] = sum(r["split"] == split for r in rows)
        result.groups[f"{split} speakers"] = sum(s == split for s in split_of.values())
    result.flagged["cropped"] = sum("cropped=1" in r["params"] for r in rows)
    log.info("wrote %s", result.summary())
    return result
