"""Dataset builders: real voices and instruments from Debian ``main``, written in public datasets' layouts.

- :func:`build_keywords`: Speech Commands V2 layout from espeak-ng, flite and festival voices.
- :func:`build_instruments`: NSynth layout from General MIDI soundfonts (three sample families).
- :func:`build_events`: sound-event sets, clips of a keyword set placed at known times in noise.
"""

from ._common import BuildError, BuildResult, DatasetExistsError, EngineNotFoundError
from .event_mixtures import EventsBuild, build_events
from .instruments import GM_PROGRAMS, SOUNDFONTS, NoteGrid, build_instruments
from .keywords import WORD_SETS, build_keywords, check_words

__all__ = [
    "GM_PROGRAMS",
    "SOUNDFONTS",
    "WORD_SETS",
    "BuildError",
    "BuildResult",
    "DatasetExistsError",
    "EngineNotFoundError",
    "EventsBuild",
    "NoteGrid",
    "build_events",
    "build_instruments",
    "build_keywords",
    "check_words",
]
