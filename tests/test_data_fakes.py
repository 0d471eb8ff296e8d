"""Tiny fake datasets in each source's real on-disk layout (helpers shared by the data tests)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import soundfile as sf


def write_audio(path: Path, seconds: float = 0.25, sr: int = 16000, channels: int = 1, freq: float = 440.0) -> Path:
    """A sine tone (per-channel phase shift) as WAV or FLAC, from the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * sr))) / sr
    x = np.stack([0.3 * np.sin(2 * np.pi * freq * t + c) for c in range(channels)], axis=1)
    sf.write(path, x if channels > 1 else x[:, 0], sr, format="FLAC" if path.suffix == ".flac" else "WAV")
    return path


def make_speech_commands(root: Path, suffix: str = ".wav") -> Path:
    """3 words x 4 clips; one validation and one testing clip per word; background noise folder."""
    for w in ("yes", "no", "up"):
        for i in range(4):
            write_audio(root / w / f"spk{i}_nohash_0{suffix}", seconds=0.5)
    write_audio(root / "_background_noise_" / f"white{suffix}", seconds=2.0)
    (root / "validation_list.txt").write_text("yes/spk0_nohash_0.wav\nno/spk0_nohash_0.wav\nup/spk0_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("yes/spk1_nohash_0.wav\nno/spk1_nohash_0.wav\nup/spk1_nohash_0.wav\n")
    return root


URBAN_HEADER = ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]


def make_urbansound8k(root: Path, rows: list[tuple[str, int, int, str]] | None = None) -> Path:
    """Rows ``(file, fold, classID, class)``; default 2 clips in each of folds 1..3."""
    rows = rows or [
        (f"{f}00{i}-{c}-0-0.wav", f, c, name)
        for f in (1, 2, 3)
        for i, (c, name) in enumerate([(3, "dog_bark"), (8, "siren")])
    ]
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    with open(root / "metadata" / "UrbanSound8K.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(URBAN_HEADER)
        for name, fold, cid, cname in rows:
            w.writerow([name, 100, 0.0, 4.0, 1, fold, cid, cname])
            write_audio(root / "audio" / f"fold{fold}" / name, seconds=0.3, sr=44100, channels=2)
    return root


def make_nsynth(root: Path) -> Path:
    for folder, notes in (("nsynth-train", 3), ("nsynth-valid", 2), ("nsynth-test", 1)):
        meta = {}
        for i in range(notes):
            note = f"guitar_acoustic_00{i}-060-100" if i % 2 == 0 else f"bass_synthetic_00{i}-040-075"
            fam = 3 if i % 2 == 0 else 0
            meta[note] = {"instrument_family": fam, "instrument_family_str": ["bass", "", "", "guitar"][fam],
                          "instrument_str": note.rsplit("-", 2)[0]}  # fmt: skip
            write_audio(root / folder / "audio" / f"{note}.wav", seconds=0.3)
        (root / folder / "examples.json").parent.mkdir(parents=True, exist_ok=True)
        (root / folder / "examples.json").write_text(json.dumps(meta))
    return root


def make_vggsound(root: Path) -> Path:
    rows = [
        ("abc123XYZ_-", 30, "dog barking", "train"),
        ("def456uvw_a", 0, "playing piano", "train"),
        ("ghi789rst_b", 12, "dog barking", "test"),
        ("missing0000", 5, "playing piano", "train"),  # no audio file: left out
    ]
    with open(root.joinpath("vggsound.csv"), "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    for ytid, start, _, _ in rows[:3]:
        write_audio(root / "audio" / f"{ytid}_{start:06d}.wav", seconds=0.5)
    return root


def make_epic_hdf5(root: Path, videos: dict[str, float], sr: int = 24000) -> Path:
    import h5py

    root.mkdir(parents=True, exist_ok=True)
    with h5py.File(root / "EPIC-KITCHENS-100_audio.hdf5", "w") as f:
        for vid, seconds in videos.items():
            t = np.arange(int(seconds * sr)) / sr
            f.create_dataset(vid, data=(0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32))
    return root / "EPIC-KITCHENS-100_audio.hdf5"


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


SOUNDS_HEADER = ["annotation_id", "participant_id", "video_id", "start_timestamp", "stop_timestamp",
                 "start_sample", "stop_sample", "description", "class", "class_id"]  # fmt: skip
EPIC100_HEADER = ["narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
                  "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
                  "noun_class", "all_nouns", "all_noun_classes"]  # fmt: skip


def make_epic(root: Path) -> Path:
    make_epic_hdf5(root, {"P01_01": 6.0, "P02_03": 4.0})
    write_csv(root / "EPIC_Sounds_train.csv", SOUNDS_HEADER, [
        ["P01_01_0", "P01", "P01_01", "00:00:00.500", "00:00:01.000", 0, 0, "water", "water", 5],
        ["P01_01_1", "P01", "P01_01", "00:00:01.000", "00:00:04.500", 0, 0, "click", "click", 2],
        ["P02_03_0", "P02", "P02_03", "00:00:00.000", "00:00:03.000", 0, 0, "water", "water", 5],
    ])  # fmt: skip
    write_csv(root / "EPIC_Sounds_validation.csv", SOUNDS_HEADER, [
        ["P02_03_1", "P02", "P02_03", "00:00:03.000", "00:00:03.800", 0, 0, "scrub", "scrub / scrape", 43],
    ])  # fmt: skip
    write_csv(root / "EPIC_Sounds_recognition_test_timestamps.csv", SOUNDS_HEADER[:7], [
        ["P01_01_9", "P01", "P01_01", "00:00:05.000", "00:00:05.900", 0, 0],
    ])  # fmt: skip
    write_csv(root / "EPIC_100_train.csv", EPIC100_HEADER, [
        ["P01_01_0", "P01", "P01_01", "", "00:00:00.100", "00:00:02.500", 0, 0, "open tap", "open", 3, "tap", 0,
         "['tap']", "[0]"],
        ["P01_01_1", "P01", "P01_01", "", "00:00:02.000", "00:00:02.900", 0, 0, "wash cup", "wash", 2, "cup", 13,
         "['cup']", "[13]"],
    ])  # fmt: skip
    write_csv(root / "EPIC_100_validation.csv", EPIC100_HEADER, [
        ["P02_03_0", "P02", "P02_03", "", "00:00:01.000", "00:00:03.500", 0, 0, "close tap", "close", 4, "tap", 0,
         "['tap']", "[0]"],
    ])  # fmt: skip
    write_csv(root / "EPIC_100_verb_classes.csv", ["id", "key", "instances", "category"],
              [[i, f"verb{i}", "[]", "x"] for i in range(97)])  # fmt: skip
    return root
