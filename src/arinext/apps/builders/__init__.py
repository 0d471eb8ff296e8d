"""Dataset builders: real voices and instruments from Debian ``main``, written in public datasets' layouts.

- :func:`build_keywords`: Speech Commands V2 layout from espeak-ng, flite and festival voices.
- :func:`build_instruments`: NSynth layout from the Fluid General MIDI soundfonts.
"""

from ._common import BuildError, DatasetExistsError, EngineNotFoundError
from .instruments import GM_PROGRAMS, SOUNDFONTS, InstrumentsBuild, build_instruments
from .keywords import KeywordsBuild, build_keywords

__all__ = [
    "GM_PROGRAMS",
    "SOUNDFONTS",
    "BuildError",
    "DatasetExistsError",
    "EngineNotFoundError",
    "InstrumentsBuild",
    "KeywordsBuild",
    "build_instruments",
    "build_keywords",
]
