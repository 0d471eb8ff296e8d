"""``arinext data``: build datasets from Debian's speech engines and soundfonts.

``arinext data keywords OUT`` writes a Speech Commands V2-style keyword set; ``arinext data
instruments OUT`` writes NSynth-style instrument notes; ``arinext data events OUT`` places keyword clips at
known times in noise (a sound-event test set). See :mod:`arinext.apps.builders`.
"""

from __future__ import annotations

import argparse

from ..apps.builders import NoteGrid, build_instruments, build_keywords
from ..apps.builders.instruments import SOUNDFONTS
from ..apps.builders.tts import ENGINES, ENGLISH_FESTIVAL_VOICES, ESPEAK_ACCENTS, FESTIVAL_VOICES
from ..data.records import SUBSETS
from . import add_parser


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in _csv(text)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc


def _floats(text: str) -> list[float]:
    try:
        values = [float(t) for t in _csv(text)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number or LOW,HIGH, got {text!r}") from exc
    if len(values) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected a number or LOW,HIGH, got {text!r}")
    return values


def _clips_per_voice(text: str) -> int | dict[str, int]:
    """``3`` (every engine) or ``espeak-ng=1,flite=8,festival=8`` (unnamed engines: 1)."""
    try:
        if "=" not in text:
            return int(text)
        pairs = [item.split("=", 1) for item in _csv(text)]
        return {engine.strip(): int(n) for engine, n in pairs}
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected N or ENGINE=N,ENGINE=N, got {text!r}") from exc


def _festival_voices(text: str) -> list[str]:
    return list(FESTIVAL_VOICES) if text == "all" else list(ENGLISH_FESTIVAL_VOICES) if text == "english" else _csv(text)


def _build_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="output directory (must be empty or missing unless --force)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("-j", "--jobs", type=int, default=1, help="parallel engine processes")
    p.add_argument("--force", action="store_true", help="replace an earlier build in OUT")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_parser(sub, common, "data", help="build datasets from Debian speech engines and soundfonts")
    data_sub = p.add_subparsers(dest="builder", metavar="BUILDER")
    data_sub.required = True

    kw = add_parser(data_sub, common, "keywords", help="Speech Commands V2-style keywords from espeak-ng, flite, festival")
    _build_options(kw)
    kw.add_argument(
        "--words", type=_csv, default=["core"],
        help="comma list of Speech Commands V2 words and the sets 'core' (10 words) and 'all' (35)",
    )  # fmt: skip
    kw.add_argument("--engines", type=_csv, default=list(ENGINES), help="comma list of engines")
    kw.add_argument("--accents", type=_csv, default=list(ESPEAK_ACCENTS), help="espeak-ng English accents")
    kw.add_argument("--espeak-voices", type=int, default=None, help="espeak-ng accent x variant voices (default: all)")
    kw.add_argument(
        "--espeak-random", type=int, default=0,
        help="extra espeak-ng voices from random variant files (vocal tract, pitch range, voice quality)",
    )  # fmt: skip
    kw.add_argument(
        "--festival-voices", type=_festival_voices, default=list(ENGLISH_FESTIVAL_VOICES),
        help=f"'english', 'all' (adds accented English from Czech, Italian, Finnish and Catalan voices) or a comma "
        f"list of {list(FESTIVAL_VOICES)}",
    )  # fmt: skip
    kw.add_argument(
        "--clips-per-voice", type=_clips_per_voice, default=1,
        help="clips per voice and word: N, or ENGINE=N,... (engines not named: 1), e.g. espeak-ng=1,flite=8,festival=8",
    )  # fmt: skip
    kw.add_argument("--val-speakers", type=float, default=0.1, help="count (>= 1) or fraction (< 1)")
    kw.add_argument("--test-speakers", type=float, default=0.1, help="count (>= 1) or fraction (< 1)")
    kw.add_argument("--format", choices=["wav", "flac"], default="wav", help="audio files")
    kw.add_argument("--noise-seconds", type=float, default=60.0, help="length of each background noise file")
    kw.set_defaults(func=run_keywords)

    inst = add_parser(data_sub, common, "instruments", help="NSynth-style notes rendered from GM soundfonts with fluidsynth")
    _build_options(inst)
    inst.add_argument(
        "--soundfonts", type=_csv, default=["FluidR3Mono_GM"], help=f"comma list of {list(SOUNDFONTS)} or .sf2/.sf3 paths"
    )
    inst.add_argument("--programs", type=_ints, default=None, help="GM programs, 0-based (default: all 85)")
    inst.add_argument("--velocities", type=_ints, default=[25, 50, 75, 100, 127], help="MIDI velocities")
    inst.add_argument("--pitch-step", type=int, default=1, help="render every n-th pitch of each range")
    inst.add_argument("--valid", type=float, default=0.1, help="fraction of notes for nsynth-valid")
    inst.add_argument("--test", type=float, default=0.1, help="fraction of notes for nsynth-test")
    inst.add_argument("--batch", type=int, default=200, help="notes per fluidsynth run")
    inst.set_defaults(func=run_instruments)

    ev = add_parser(data_sub, common, "events", help="sound-event sets: keyword clips at known times in noise")
    ev.add_argument("out", help="output directory (must be empty or missing unless --force)")
    ev.add_argument("--source", default=None, help="Speech Commands V2-layout dataset (default: the bundled sample)")
    ev.add_argument("--subset", choices=SUBSETS, default="testing", help="clips used")
    ev.add_argument("--files", type=int, default=10, help="number of mixtures")
    ev.add_argument("--seconds", type=float, default=30.0, help="length of each mixture")
    ev.add_argument("--events-per-file", type=int, default=8, help="events per mixture")
    ev.add_argument(
        "--snr-db", type=_floats, default=[10.0], help="SNR over each word's active part: one value or LOW,HIGH"
    )
    ev.add_argument("--min-gap", type=float, default=1.0, help="least noise-only seconds around each event")
    ev.add_argument("--noise-dbfs", type=float, default=-30.0, help="RMS level of the noise")
    ev.add_argument("--format", choices=["wav", "flac"], default="flac", help="audio files")
    ev.add_argument("--seed", type=int, default=0, help="random seed")
    ev.add_argument("--force", action="store_true", help="replace an earlier build in OUT")
    ev.set_defaults(func=run_events)


def run_keywords(args: argparse.Namespace) -> int:
    result = build_keywords(
        args.out, words=args.words, engines=args.engines, accents=args.accents, num_espeak_voices=args.espeak_voices,
        clips_per_voice=args.clips_per_voice, val_speakers=args.val_speakers, test_speakers=args.test_speakers,
        seed=args.seed, jobs=args.jobs, fmt=args.format, noise_seconds=args.noise_seconds, force=args.force,
        festival_voices=args.festival_voices, espeak_random=args.espeak_random,
    )  # fmt: skip
    return 0 if result.total else 1


def run_instruments(args: argparse.Namespace) -> int:
    grid = NoteGrid(
        None if args.programs is None else tuple(args.programs), tuple(args.velocities), args.pitch_step, args.valid,
        args.test, args.seed,
    )  # fmt: skip
    result = build_instruments(args.out, soundfonts=args.soundfonts, grid=grid, jobs=args.jobs, batch=args.batch,
                               force=args.force)  # fmt: skip
    return 0 if result.total else 1


def run_events(args: argparse.Namespace) -> int:
    from ..apps.builders.event_mixtures import build_events

    snr = args.snr_db[0] if len(args.snr_db) == 1 else (args.snr_db[0], args.snr_db[1])
    result = build_events(
        args.out, source=args.source, subset=args.subset, files=args.files, seconds=args.seconds,
        events_per_file=args.events_per_file, snr_db=snr, min_gap=args.min_gap, noise_dbfs=args.noise_dbfs,
        seed=args.seed, fmt=args.format, force=args.force,
    )  # fmt: skip
    print(f"wrote {result.files} files with {result.events} events of {len(result.labels)} classes "
          f"({result.clips} distinct {args.subset} clips, {result.speakers} speakers) to {result.root}")  # fmt: skip
    return 0
