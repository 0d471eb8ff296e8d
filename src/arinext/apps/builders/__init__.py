"""Dataset builders: real voices and instruments from Debian ``main``, written in public datasets' layouts.

- :func:`build_keywords`: Speech Commands V2 layout from espeak-ng, flite and festival voices.
- :func:`build_instruments`: NSynth layout from the Fluid General MIDI soundfonts.
- :func:`build_events`: sound-event sets, clips of a keyword set placed at known times in noise.
"""

from ._common import BuildError, DatasetExistsError, EngineNotFoundError
from .events import EventsBuild, build_events
from .instruments import GM_PROGRAMS, SOUNDFONTS, InstrumentsBuild, build_instruments
from .keywords import KeywordsBuild, build_keywords

__all__ = [
    "GM_PROGRAMS",
    "SOUNDFONTS",
    "BuildError",
    "DatasetExistsError",
    "EngineNotFoundError",
    "EventsBuild",
    "InstrumentsBuild",
    "KeywordsBuild",
    "build_events",
    "build_instruments",
    "build_keywords",
]
