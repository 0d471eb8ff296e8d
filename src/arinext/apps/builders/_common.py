"""Shared plumbing of the dataset builders: tool checks, subprocess calls, output guard, parallel map."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import soundfile as sf

from ...utils.errors import ArinextError, ConfigError
from ...utils.progress import progress_bar

__all__ = [
    "AUDIO_FORMATS",
    "BUILD_MARKER",
    "BuildError",
    "BuildResult",
    "DatasetExistsError",
    "EngineCrashError",
    "EngineNotFoundError",
    "parallel_map",
    "prepare_output",
    "require_tool",
    "run_tool",
    "stable_rng",
    "write_build_info",
    "write_clip",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Written at the root of every built dataset; ``--force`` only deletes directories that hold it.
BUILD_MARKER = "BUILD.json"

#: ``--format`` value -> (file suffix, soundfile format). Both store 16-bit PCM.
AUDIO_FORMATS = {"wav": (".wav", "WAV"), "flac": (".flac", "FLAC")}


class BuildError(ArinextError, RuntimeError):
    """A synthesis or rendering step failed; the message names the voice/word or program/note."""


class EngineCrashError(BuildError):
    """An engine process was killed by a signal (e.g. festival's segmentation fault on some inputs)."""


class EngineNotFoundError(BuildError):
    """A speech engine, synthesizer or soundfont is missing; the message names the Debian package."""


class DatasetExistsError(BuildError):
    """The output directory already holds files and ``force`` was not given."""


@dataclass
class BuildResult:
    """What a build wrote.

    Attributes:
        root: the dataset folder.
        unit: what was made (``"clip"``, ``"note"``).
        splits: items per split (``training``, ``validation``, ``testing``).
        groups: a second count: speakers per split (keywords), notes per family (instruments).
        flagged: items worth a word, e.g. ``{"cropped": 3}`` or ``{"silent renders skipped": 12}``.
        seconds: wall-clock time of the build.
    """

    root: Path
    unit: str
    splits: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.splits.values())

    def summary(self) -> str:
        """``"N clips in T s (R clips/s): {per split}; {groups}; flagged"`` for the log."""
        rate = self.total / max(self.seconds, 1e-9)
        flags = "".join(f"; {n} {what}" for what, n in self.flagged.items())
        return (f"{self.total} {self.unit}s in {self.seconds:.1f} s ({rate:.1f} {self.unit}s/s): {self.splits}; "
                f"{self.groups}{flags}")  # fmt: skip


def require_tool(binary: str, debian_package: str) -> str:
    """Return the full path of ``binary`` on ``PATH`` or raise naming the Debian package that provides it."""
    path = shutil.which(binary)
    if path is None:
        raise EngineNotFoundError(
            f"'{binary}' is not installed (not found on PATH); install it with: apt-get install {debian_package}"
        )
    return path


def run_tool(args: Sequence[str], what: str, stdin: str | None = None, timeout: float = 120.0) -> str:
    """Run an engine with an argument list (never a shell string) and return its stdout.

    Args:
        args: program and arguments.
        what: names the voice/word or note being made, used in the error message.
        stdin: text fed to the program's standard input.
        timeout: seconds before the call counts as failed.

    Raises:
        BuildError: non-zero exit status, timeout, or the program could not be started.
    """
    try:
        proc = subprocess.run(list(args), input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"{what}: could not run {args[0]} ({exc})") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        error = EngineCrashError if proc.returncode < 0 else BuildError
        raise error(f"{what}: {Path(args[0]).name} exited with status {proc.returncode}: {' | '.join(detail)}")
    return proc.stdout


def prepare_output(root: str | Path, force: bool) -> Path:
    """Make ``root`` ready for a fresh build.

    An empty or missing directory is used as is. A non-empty one is refused unless ``force``; with
    ``force`` it is deleted only if an earlier build marked it with :data:`BUILD_MARKER`, so that a
    mistyped path never wipes unrelated files.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise DatasetExistsError(f"{root} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()):
        if not force:
            raise DatasetExistsError(f"{root} already holds files; rebuild it with --force")
        if not (root / BUILD_MARKER).is_file():
            raise DatasetExistsError(
                f"{root} is not empty and was not made by an arinext builder (no {BUILD_MARKER}); "
                "refusing to delete it even with --force"
            )
        log.info("removing the existing dataset in %s (--force)", root)
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    return root


def write_build_info(root: Path, info: dict[str, Any]) -> None:
    """Write the build parameters (and the marker that allows ``--force``) as sorted JSON."""
    (root / BUILD_MARKER).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def parallel_map(fn: Callable[[T], R], items: Iterable[T], jobs: int, desc: str, unit: str = "clip") -> list[R]:
    """``[fn(x) for x in items]`` on ``jobs`` threads, in input order, with a tqdm progress bar.

    Threads suffice: the work is dominated by engine subprocesses and by numpy/soxr, which release the GIL.
    """
    items = list(items)
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    bar = progress_bar(total=len(items), desc=desc, unit=unit)
    try:
        if jobs == 1:
            out = []
            for x in items:
                out.append(fn(x))
                bar.update()
            return out
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(fn, x) for x in items]
            out = []
            for fut in futures:
                out.append(fut.result())
                bar.update()
            return out
    finally:
        bar.close()


def write_clip(path: Path, x: np.ndarray, sample_rate: int, fmt: str) -> None:
    """Write a mono float clip as 16-bit PCM in ``fmt`` (a key of :data:`AUDIO_FORMATS`)."""
    if fmt not in AUDIO_FORMATS:
        raise ConfigError(f"unknown audio format {fmt!r}; choose one of {sorted(AUDIO_FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"compression_level": 1.0} if fmt == "flac" else {}
    sf.write(str(path), np.clip(x, -1.0, 1.0), sample_rate, subtype="PCM_16", format=AUDIO_FORMATS[fmt][1], **extra)


def stable_rng(seed: int, *parts: object) -> np.random.Generator:
    """A generator seeded from ``seed`` and ``parts`` (stable across runs, processes and job order)."""
    digest = hashlib.sha256(repr((seed,) + parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))
