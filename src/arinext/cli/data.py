"""``arinext data``: build datasets from Debian's speech engines and soundfonts.

``arinext data keywords OUT`` writes a Speech Commands V2-style keyword set; ``arinext data
instruments OUT`` writes NSynth-style instrument notes; ``arinext data events OUT`` places keyword clips at
known times in noise (a sound-event test set). See :mod:`arinext.apps.builders`.
"""

from __future__ import annotations

import argparse
import logging

from ..apps.builders import build_instruments, build_keywords
from ..apps.builders.tts import ENGINES, ESPEAK_ACCENTS
from ..data.vocab import SPEECH_COMMANDS_CORE_WORDS, SPEECH_COMMANDS_V2_WORDS
from . import add_parser

log = logging.getLogger(__name__)

_WORD_SETS = {"core": SPEECH_COMMANDS_CORE_WORDS, "all": SPEECH_COMMANDS_V2_WORDS}


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
    kw.add_argument("--words", default="core", help="'core' (10 words), 'all' (35) or a comma list")
    kw.add_argument("--engines", type=_csv, default=list(ENGINES), help="comma list of engines")
    kw.add_argument("--accents", type=_csv, default=list(ESPEAK_ACCENTS), help="espeak-ng English accents")
    kw.add_argument("--espeak-voices", type=int, default=None, help="espeak-ng accent x variant voices (default: all)")
    kw.add_argument("--clips-per-voice", type=int, default=1, help="clips per voice and word")
    kw.add_argument("--val-speakers", type=float, default=0.1, help="count (>= 1) or fraction (< 1)")
    kw.add_argument("--test-speakers", type=float, default=0.1, help="count (>= 1) or fraction (< 1)")
    kw.add_argument("--format", choices=["wav", "flac"], default="wav", help="audio files")
    kw.add_argument("--noise-seconds", type=float, default=60.0, help="length of each background noise file")
    kw.set_defaults(func=run_keywords)

    inst = add_parser(data_sub, common, "instruments", help="NSynth-style notes rendered from GM soundfonts with fluidsynth")
    _build_options(inst)
    inst.add_argument("--soundfonts", type=_csv, default=["FluidR3Mono_GM"], help="comma list of names or paths")
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
    ev.add_argument("--subset", choices=("training", "validation", "testing"), default="testing", help="clips used")
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
    words = _WORD_SETS.get(args.words) or _csv(args.words)
    result = build_keywords(
        args.out, words=words, engines=args.engines, accents=args.accents, num_espeak_voices=args.espeak_voices,
        clips_per_voice=args.clips_per_voice, val_speakers=args.val_speakers, test_speakers=args.test_speakers,
        seed=args.seed, jobs=args.jobs, fmt=args.format, noise_seconds=args.noise_seconds, force=args.force,
    )  # fmt: skip
    total = sum(result.clips.values())
    log.info("%d clips in %.1f s (%.1f clips/s); speakers per split %s", total, result.seconds,
             total / max(result.seconds, 1e-9), result.speakers)  # fmt: skip
    return 0


def run_instruments(args: argparse.Namespace) -> int:
    result = build_instruments(
        args.out, soundfonts=args.soundfonts, programs=args.programs, velocities=args.velocities,
        pitch_step=args.pitch_step, valid=args.valid, test=args.test, seed=args.seed, jobs=args.jobs,
        batch=args.batch, force=args.force,
    )  # fmt: skip
    total = sum(result.notes.values())
    log.info("%d notes in %.1f s (%.1f notes/s); per family %s", total, result.seconds,
             total / max(result.seconds, 1e-9), result.families)  # fmt: skip
    return 0


def run_events(args: argparse.Namespace) -> int:
    from ..apps.builders.events import build_events

    snr = args.snr_db[0] if len(args.snr_db) == 1 else (args.snr_db[0], args.snr_db[1])
    result = build_events(
        args.out, source=args.source, subset=args.subset, files=args.files, seconds=args.seconds,
        events_per_file=args.events_per_file, snr_db=snr, min_gap=args.min_gap, noise_dbfs=args.noise_dbfs,
        seed=args.seed, fmt=args.format, force=args.force,
    )  # fmt: skip
    print(f"wrote {result.files} files with {result.events} events of {len(result.labels)} classes "
          f"({result.clips} distinct {args.subset} clips, {result.speakers} speakers) to {result.root}")  # fmt: skip
    return 0
