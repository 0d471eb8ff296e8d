"""Instrument-note dataset in the NSynth layout, rendered from General MIDI soundfonts with fluidsynth.

Layout (NSynth's, so the NSynth adapter reads it unchanged)::

    ROOT/nsynth-{train,valid,test}/examples.json   note_str -> attributes (see below)
    ROOT/nsynth-{train,valid,test}/audio/<note_str>.wav   4 s, 16 kHz, mono, 16-bit
    ROOT/BUILD.json                                 build parameters

Each note is held 3 s and released, as in NSynth, with reverb and chorus off, rendered at 44.1 kHz
(fluidsynth does not band-limit, so rendering at 16 kHz would alias) and resampled to 16 kHz with
soxr. The General MIDI program -> NSynth family table, with each program's pitch range, follows the
project's data notes (85 programs); ``instrument_source`` (acoustic 0, electronic 1, synthetic 2) is
our reading of the GM program names. A note is split by a seeded hash of (program, pitch, velocity),
so the same note from two soundfonts (near copies of one sample lineage) never lands in two splits.
Silent renders (some presets are mute at some pitch/velocity) are skipped.

Soundfonts (:data:`SOUNDFONTS`), with their sample *family* (lineage), which ``examples.json`` records as
``soundfont_family`` so that a model can be trained on one family and tested on another
(``arinext loso ... --column soundfont_family``):

- family ``fluid-r3``: ``FluidR3Mono_GM`` (Debian ``fluidr3mono-gm-soundfont``), ``FluidR3_GM``
  (``fluid-soundfont-gm``) and ``MuseScore_General`` (``musescore-general-soundfont``), all MIT: one
  sample lineage (MuseScore General is an adaptation of Fluid R3 Mono, says its copyright file), so
  holding out one of them is not a new source;
- family ``timgm6mb``: ``TimGM6mb`` (``timgm6mb-soundfont``, GPL-2; Tim Brechbill's own and public-domain
  samples, 6 MB);
- family ``csound-gm``: ``CsoundGM`` (``csound-soundfont``, the Csound project's ``sf_GMbank.sf2``, a
  "GM GS Bank" marked Public Domain in its own header; the Debian package is LGPL-2.1+, 4 MB).
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ...audio.io import resample
from ...data.vocab import NSYNTH_FAMILIES, NSYNTH_FOLDERS, NSYNTH_SOURCES
from ...utils.errors import ConfigError
from ._common import (
    BuildResult,
    EngineNotFoundError,
    parallel_map,
    prepare_output,
    require_tool,
    run_tool,
    write_build_info,
    write_clip,
)

__all__ = [
    "GM_PROGRAMS",
    "SOUNDFONTS",
    "VELOCITIES",
    "Note",
    "NoteGrid",
    "build_instruments",
    "find_soundfont",
    "midi_file",
    "plan_notes",
]

log = logging.getLogger(__name__)

VELOCITIES = (25, 50, 75, 100, 127)

# (family, programs, lowest pitch, highest pitch), GM programs 0-based.
_TABLE: list[tuple[str, Iterable[int], int, int]] = [
    ("keyboard", range(4), 28, 96), ("keyboard", (4, 5), 28, 91), ("keyboard", (6, 7), 29, 89),
    ("mallet", (8,), 60, 96), ("mallet", (9,), 72, 105), ("mallet", (11,), 53, 89), ("mallet", (12,), 45, 96),
    ("mallet", (13,), 60, 100), ("mallet", (14,), 55, 80),
    ("organ", range(16, 21), 36, 96),
    ("guitar", (24, 25, 26, 27, 29, 30), 40, 84), ("guitar", (28,), 40, 76), ("guitar", (31,), 52, 84),
    ("guitar", (105,), 48, 84),
    ("bass", (32,), 28, 55), ("bass", range(33, 38), 28, 60), ("bass", (38, 39), 24, 60),
    ("string", (40, 110), 55, 96), ("string", (41,), 48, 84), ("string", (42,), 36, 76), ("string", (43,), 28, 55),
    ("string", (44, 45, 48, 49, 50, 51), 36, 91), ("string", (46,), 28, 96),
    ("vocal", (52, 53, 54), 45, 79),
    ("brass", (56, 59), 55, 82), ("brass", (57,), 40, 72), ("brass", (58,), 28, 58), ("brass", (60,), 41, 77),
    ("brass", (61, 62, 63), 36, 84),
    ("reed", (64,), 56, 87), ("reed", (65,), 49, 80), ("reed", (66,), 44, 75), ("reed", (67,), 36, 69),
    ("reed", (68,), 58, 91), ("reed", (69,), 52, 81), ("reed", (70,), 34, 72), ("reed", (71,), 50, 91),
    ("reed", (109,), 60, 77), ("reed", (111,), 60, 84),
    ("flute", (72,), 74, 102), ("flute", (73, 78), 60, 96), ("flute", (74, 75, 79), 60, 91), ("flute", (76,), 60, 84),
    ("flute", (77,), 55, 84),
    ("synth_lead", range(80, 88), 36, 96),
]  # fmt: skip
_SYNTHETIC = {38, 39, 50, 51, 54, 62, 63, *range(80, 88)}
_ELECTRONIC = {4, 5, 7, 16, 17, 18, *range(26, 32), *range(33, 38)}

#: GM program -> (family, source, (lowest pitch, highest pitch)).
GM_PROGRAMS: dict[int, tuple[str, str, tuple[int, int]]] = {
    p: (fam, "synthetic" if p in _SYNTHETIC else "electronic" if p in _ELECTRONIC else "acoustic", (lo, hi))
    for fam, programs, lo, hi in _TABLE
    for p in programs
}

#: Soundfont name -> (file, Debian package, sample family). Named explicitly: the sf2 folders can hold
#: drum-only fonts. Fonts of one family share samples: hold out a family, not a font.
SOUNDFONTS = {
    "FluidR3Mono_GM": ("/usr/share/sounds/sf3/FluidR3Mono_GM.sf3", "fluidr3mono-gm-soundfont", "fluid-r3"),
    "FluidR3_GM": ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluid-soundfont-gm", "fluid-r3"),
    "MuseScore_General": ("/usr/share/sounds/sf3/MuseScore_General.sf3", "musescore-general-soundfont", "fluid-r3"),
    "TimGM6mb": ("/usr/share/sounds/sf2/TimGM6mb.sf2", "timgm6mb-soundfont", "timgm6mb"),
    "CsoundGM": ("/usr/share/sounds/sf2/sf_GMbank.sf2", "csound-soundfont", "csound-gm"),
}

_RENDER_SR = 44100
_HOLD_S, _NOTE_S, _PERIOD_S = 3.0, 4.0, 4.5  # held, kept, spacing between notes in one render
_TICKS_PER_S = 2000  # 1000 ticks per quarter at 120 bpm
_SILENT_DBFS = -70.0
_GAIN = 1.2  # fluidsynth's master gain: velocity-127 notes peak around -6 dBFS, velocity 25 near -30


@dataclass(frozen=True)
class Note:
    """One note to render: soundfont index/name, GM program, MIDI pitch and velocity, and its split."""

    font: int
    font_name: str
    program: int
    pitch: int
    velocity: int
    split: str

    @property
    def note_str(self) -> str:
        family, source, _ = GM_PROGRAMS[self.program]
        return f"{family}_{source}_{self.instrument:03d}-{self.pitch:03d}-{self.velocity:03d}"

    @property
    def instrument(self) -> int:
        return 128 * self.font + self.program


def find_soundfont(name: str) -> Path:
    """Resolve a soundfont name of :data:`SOUNDFONTS` (or a path to an .sf2/.sf3 file).

    Raises:
        EngineNotFoundError: the soundfont is not installed (names the Debian package).
    """
    if name in SOUNDFONTS:
        path, package, _ = SOUNDFONTS[name]
        if not Path(path).is_file():
            raise EngineNotFoundError(
                f"soundfont {name} ({path}) is not installed; install it with: apt-get install {package}"
            )
        return Path(path)
    path = Path(name)
    if path.suffix.lower() not in (".sf2", ".sf3") or not path.is_file():
        raise ConfigError(f"unknown soundfont {name!r}: give one of {sorted(SOUNDFONTS)} or an existing .sf2/.sf3 file")
    return path


def _split_of(program: int, pitch: int, velocity: int, seed: int, valid: float, test: float) -> str:
    digest = hashlib.sha256(f"{seed}:{program}:{pitch}:{velocity}".encode()).digest()
    u = int.from_bytes(digest[:8], "little") / 2**64
    return "testing" if u < test else "validation" if u < test + valid else "training"


@dataclass(frozen=True)
class NoteGrid:
    """Which notes to render from each soundfont, and how they are split.

    Args:
        programs: GM programs (0-based); ``None``: all 85 of :data:`GM_PROGRAMS`.
        velocities: MIDI velocities (NSynth uses 25, 50, 75, 100, 127).
        pitch_step: every ``pitch_step``-th pitch of each program's range.
        valid, test: fractions of (program, pitch, velocity) triples per split.
        seed: seeds the split hash.
    """

    programs: tuple[int, ...] | None = None
    velocities: tuple[int, ...] = VELOCITIES
    pitch_step: int = 1
    valid: float = 0.1
    test: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        programs = sorted(GM_PROGRAMS) if self.programs is None else list(self.programs)
        unknown = [p for p in programs if p not in GM_PROGRAMS]
        if unknown:
            raise ConfigError(f"GM programs {unknown} have no NSynth family; choose from {sorted(GM_PROGRAMS)}")
        if self.pitch_step < 1 or not self.velocities or any(not 1 <= v <= 127 for v in self.velocities):
            raise ConfigError(
                f"need pitch_step >= 1 and velocities in 1..127, got {self.pitch_step}, {list(self.velocities)}"
            )
        if self.valid < 0 or self.test < 0 or self.valid + self.test >= 1:
            raise ConfigError(f"valid and test fractions must be >= 0 and sum below 1, got {self.valid}, {self.test}")


def plan_notes(fonts: Sequence[str], grid: NoteGrid = NoteGrid()) -> list[Note]:
    """Every (soundfont, program, pitch in the program's range every ``pitch_step``, velocity) note of ``grid``."""
    programs = sorted(GM_PROGRAMS) if grid.programs is None else list(grid.programs)
    notes = []
    for font, name in enumerate(fonts):
        for program in programs:
            lo, hi = GM_PROGRAMS[program][2]
            for pitch in range(lo, hi + 1, grid.pitch_step):
                for vel in grid.velocities:
                    split = _split_of(program, pitch, vel, grid.seed, grid.valid, grid.test)
                    notes.append(Note(font, name, program, pitch, vel, split))
    return notes


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    while n > 0x7F:
        n >>= 7
        out.append(0x80 | (n & 0x7F))
    return bytes(reversed(out))


def midi_file(notes: Sequence[Note]) -> bytes:
    """A type-0 MIDI file playing ``notes`` on channel 0, one every 4.5 s: program change and note-on
    at the start, note-off after 3 s, all-sound-off after 4 s (so no release leaks into the next)."""
    events: list[tuple[int, bytes]] = [(0, b"\xff\x51\x03\x07\xa1\x20")]  # tempo: 500000 us per quarter
    for k, note in enumerate(notes):
        t = round(k * _PERIOD_S * _TICKS_PER_S)
        events += [
            (t, bytes([0xC0, note.program])),
            (t, bytes([0x90, note.pitch, note.velocity])),
            (t + int(_HOLD_S * _TICKS_PER_S), bytes([0x80, note.pitch, 0])),
            (t + int(_NOTE_S * _TICKS_PER_S), bytes([0xB0, 120, 0])),
        ]
    events.append((round(len(notes) * _PERIOD_S * _TICKS_PER_S), b"\xff\x2f\x00"))
    track, now = bytearray(), 0
    for t, data in sorted(events, key=lambda e: e[0]):  # stable: keeps program change before note-on
        track += _vlq(t - now) + data
        now = t
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, _TICKS_PER_S // 2)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def _render_batch(notes: Sequence[Note], font_path: Path, root: Path, workdir: Path) -> list[tuple[Note, bool]]:
    """Render ``notes`` in one fluidsynth run (the soundfont loads once) and write each 4 s note."""
    binary = require_tool("fluidsynth", "fluidsynth")
    first = notes[0]
    what = f"fluidsynth {font_path.name}, notes {first.note_str} .. {notes[-1].note_str}"
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        mid, wav = Path(tmp, "notes.mid"), Path(tmp, "notes.wav")
        mid.write_bytes(midi_file(notes))
        args = [binary, "-n", "-i", "-q", "-F", str(wav), "-T", "wav", "-O", "float", "-r", str(_RENDER_SR),
                "-R", "0", "-C", "0", "-g", str(_GAIN), str(font_path), str(mid)]  # fmt: skip
        run_tool(args, what, timeout=60 + 2 * len(notes))
        if not wav.is_file():
            raise EngineNotFoundError(f"{what}: fluidsynth wrote no audio")
        out = []
        with sf.SoundFile(str(wav)) as f:
            for k, note in enumerate(notes):
                f.seek(min(round(k * _PERIOD_S * _RENDER_SR), f.frames))
                x = f.read(int(_NOTE_S * _RENDER_SR), dtype="float32", always_2d=True).mean(axis=1)
                silent = x.size == 0 or float(np.max(np.abs(x))) < 10 ** (_SILENT_DBFS / 20)
                if not silent:
                    x = np.pad(x, (0, int(_NOTE_S * _RENDER_SR) - x.size))
                    path = root / NSYNTH_FOLDERS[note.split] / "audio" / f"{note.note_str}.wav"
                    y = resample(x, _RENDER_SR, 16000)
                    if float(np.max(np.abs(y))) > 1.0:
                        log.warning("%s: clipped at full scale", note.note_str)
                    write_clip(path, y, 16000, "wav")
                out.append((note, not silent))
    return out


def _examples_entry(note: Note) -> dict[str, object]:
    family, source, _ = GM_PROGRAMS[note.program]
    return {
        "note_str": note.note_str,
        "instrument": note.instrument,
        "instrument_str": note.note_str.rsplit("-", 2)[0],
        "instrument_family": NSYNTH_FAMILIES.index(family),
        "instrument_family_str": family,
        "instrument_source": NSYNTH_SOURCES.index(source),
        "instrument_source_str": source,
        "pitch": note.pitch,
        "velocity": note.velocity,
        "sample_rate": 16000,
        "program": note.program,
        "soundfont": note.font_name,
        "soundfont_family": SOUNDFONTS[note.font_name][2] if note.font_name in SOUNDFONTS else note.font_name,
    }


def build_instruments(
    root: str | Path,
    soundfonts: Sequence[str] = ("FluidR3Mono_GM",),
    grid: NoteGrid = NoteGrid(),
    jobs: int = 1,
    batch: int = 200,
    force: bool = False,
) -> BuildResult:
    """Render NSynth-style instrument notes into ``root``.

    Args:
        root: output directory; must be empty or missing unless ``force``.
        soundfonts: names of :data:`SOUNDFONTS` or paths to .sf2/.sf3 files (a path is its own family).
        grid: the notes and their split (:class:`NoteGrid`).
        jobs: parallel fluidsynth processes.
        batch: notes per fluidsynth run (the soundfont is loaded once per run).
        force: replace an earlier build in ``root``.

    Returns:
        A :class:`~arinext.apps.builders.BuildResult`: notes per split, notes per family (``groups``),
        silent renders skipped (``flagged``).

    Raises:
        EngineNotFoundError: fluidsynth or a soundfont is missing (names the Debian package).
        DatasetExistsError: ``root`` holds files and ``force`` is false.
        BuildError: fluidsynth failed (names soundfont and notes).
    """
    require_tool("fluidsynth", "fluidsynth")
    paths = [find_soundfont(name) for name in soundfonts]
    notes = plan_notes(soundfonts, grid)
    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")
    start = time.perf_counter()
    root = prepare_output(root, force)
    info = {
        "builder": "instruments", "soundfonts": list(soundfonts),
        "programs": None if grid.programs is None else list(grid.programs), "velocities": list(grid.velocities),
        "pitch_step": grid.pitch_step, "valid": grid.valid, "test": grid.test, "seed": grid.seed,
    }  # fmt: skip
    write_build_info(root, {**info, "complete": False})
    # Batches never mix soundfonts; a smaller batch keeps every job busy on small builds.
    size = max(1, min(batch, -(-len(notes) // jobs)))
    per_font = [[n for n in notes if n.font == font] for font in range(len(paths))]
    batches = [group[i : i + size] for group in per_font for i in range(0, len(group), size)]
    log.info("rendering %d notes from %d soundfont(s) in %d fluidsynth runs", len(notes), len(paths), len(batches))
    with tempfile.TemporaryDirectory(prefix="arinext-inst-") as tmp:
        done = parallel_map(
            lambda b: _render_batch(b, paths[b[0].font], root, Path(tmp)), batches, jobs, desc="instruments", unit="run"
        )
    kept = [note for result in done for note, ok in result if ok]
    result = BuildResult(root, "note", seconds=time.perf_counter() - start)
    result.flagged["silent renders skipped"] = len(notes) - len(kept)
    for split, folder in NSYNTH_FOLDERS.items():
        entries = {n.note_str: _examples_entry(n) for n in kept if n.split == split}
        (root / folder).mkdir(exist_ok=True)
        (root / folder / "examples.json").write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
        result.splits[split] = len(entries)
    for note in kept:
        family = GM_PROGRAMS[note.program][0]
        result.groups[family] = result.groups.get(family, 0) + 1
    write_build_info(root, {**info, "complete": True})
    log.info("wrote %s", result.summary())
    return result
