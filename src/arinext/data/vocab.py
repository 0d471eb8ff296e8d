"""Class vocabularies and split names of the public datasets, in one place.

Adapters (:mod:`arinext.data.manifests`) and the dataset builders (:mod:`arinext.apps.builders`) both
use these lists, so a word or a family has one spelling and one index everywhere.
"""

from __future__ import annotations

__all__ = [
    "NSYNTH_FAMILIES",
    "NSYNTH_FOLDERS",
    "NSYNTH_SOURCES",
    "SPEECH_COMMANDS_CORE_WORDS",
    "SPEECH_COMMANDS_V2_WORDS",
]

#: The 35 words of Speech Commands V2 (Warden 2018), in the class order used here (alphabetical).
SPEECH_COMMANDS_V2_WORDS = [
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four", "go",
    "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven",
    "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero",
]  # fmt: skip

#: The ten command words of the 12-class Speech Commands task (a subset of the 35).
SPEECH_COMMANDS_CORE_WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]

#: NSynth ``instrument_family`` names; the index is the family id of ``examples.json``.
NSYNTH_FAMILIES = [
    "bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead", "vocal",
]  # fmt: skip

#: NSynth ``instrument_source`` names; the index is the source id.
NSYNTH_SOURCES = ["acoustic", "electronic", "synthetic"]

#: Folder of each subset in the NSynth layout.
NSYNTH_FOLDERS = {"training": "nsynth-train", "validation": "nsynth-valid", "testing": "nsynth-test"}
