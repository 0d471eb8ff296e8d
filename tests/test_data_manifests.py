"""Every manifest adapter against a tiny fake tree in the source's real layout."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from arinext.audio import PRESETS
from arinext.data import ClipRecord, Manifest, dataset_preset, get_manifest, list_datasets
from arinext.data.manifests.urbansound8k import URBANSOUND8K_CLASSES
from arinext.data.vocab import SPEECH_COMMANDS_V2_WORDS, VGGSOUND_CLASSES
from arinext.utils.errors import ConfigError, DataError

from .test_data_fakes import (
    make_epic,
    make_nsynth,
    make_speech_commands,
    make_urbansound8k,
    make_vggsound,
    write_audio,
    write_csv,
)


def test_registry_names_and_presets():
    stored = ["speech_commands_v2", "urbansound8k", "nsynth", "vggsound", "epic_sounds", "epic_kitchens_100", "folder",
              "csv"]  # fmt: skip
    assert list_datasets(stored=True) == stored and list_datasets() == [*stored, "synthetic"]
    for name in list_datasets():
        assert dataset_preset(name) in PRESETS
    assert dataset_preset("folder") == "vggsound"
    with pytest.raises(ConfigError, match="unknown dataset 'audioset'; choose from speech_commands_v2, "):
        get_manifest("audioset", ".", "training")
    with pytest.raises(ConfigError, match="'synthetic' is generated"):
        get_manifest("synthetic", ".", "training")


def test_invalid_subset_and_missing_root(tmp_path):
    with pytest.raises(ValueError, match="unknown subset 'train'"):
        get_manifest("nsynth", tmp_path, "train")
    with pytest.raises(RuntimeError, match="examples.json not found"):
        get_manifest("nsynth", tmp_path, "training")
    with pytest.raises(RuntimeError, match="does not exist"):
        get_manifest("speech_commands_v2", tmp_path / "nope", "training")


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_speech_commands(tmp_path, suffix):
    root = make_speech_commands(tmp_path, suffix)
    m = {s: get_manifest("speech_commands_v2", root, s) for s in ("training", "validation", "testing")}
    assert [len(m[s]) for s in m] == [6, 3, 3]
    # the classes are the word folders found, in the V2 class order: a build of three words has three classes
    assert m["training"].labels == ["no", "up", "yes"] and m["training"].num_classes == 3
    full = get_manifest("speech_commands_v2", root, "training", labels=SPEECH_COMMANDS_V2_WORDS)
    assert full.num_classes == 35 and full.present_labels() == ["no", "up", "yes"]
    names = {s: {Path(r.path).parent.name + "/" + Path(r.path).stem for r in m[s].records} for s in m}
    assert names["validation"] == {"yes/spk0_nohash_0", "no/spk0_nohash_0", "up/spk0_nohash_0"}
    assert not names["training"] & (names["validation"] | names["testing"])
    assert all(r.path.endswith(suffix) for r in m["training"].records)
    assert all("_background_noise_" not in r.path for s in m for r in m[s].records)
    for r in m["training"].records:
        assert m["training"].labels[r.target] == Path(r.path).parent.name
    for r in full.records:
        assert SPEECH_COMMANDS_V2_WORDS[r.target] == Path(r.path).parent.name
    assert {r.group for r in m["training"].records} == {"spk2", "spk3"}


def test_speech_commands_unknown_word_and_duplicate_list_row(tmp_path):
    root = make_speech_commands(tmp_path)
    write_audio(root / "hello" / "a_nohash_0.wav")
    assert get_manifest("speech_commands_v2", root, "training").labels == ["no", "up", "yes", "hello"]
    with pytest.raises(ValueError, match="label 'hello' is not in the label list"):
        get_manifest("speech_commands_v2", root, "training", labels=SPEECH_COMMANDS_V2_WORDS)
    (root / "hello" / "a_nohash_0.wav").unlink()
    (root / "testing_list.txt").write_text("yes/spk1_nohash_0.wav\nyes/spk1_nohash_0.wav\n")
    with pytest.raises(ValueError, match=r"testing_list.txt row 2: duplicated entry"):
        get_manifest("speech_commands_v2", root, "testing")


@pytest.mark.parametrize("fold", [1, 2, 3])
def test_urbansound8k_folds(tmp_path, fold):
    root = make_urbansound8k(tmp_path)
    train = get_manifest("urbansound8k", root, "training", fold=fold)
    test = get_manifest("urbansound8k", root, "testing", fold=fold)
    assert len(train) == 4 and len(test) == 2
    assert {r.group for r in test.records} == {f"fold{fold}"}
    assert f"fold{fold}" not in {r.group for r in train.records}
    assert get_manifest("urbansound8k", root, "validation", fold=fold).records == test.records
    assert test.num_classes == 10 and test.pad_mode == "waveform"
    assert sorted(URBANSOUND8K_CLASSES[r.target] for r in test.records) == ["dog_bark", "siren"]
    assert all(Path(r.path).is_file() for r in train.records + test.records)


def test_urbansound8k_bad_rows(tmp_path):
    with pytest.raises(ValueError, match="fold must be 1..10"):
        get_manifest("urbansound8k", make_urbansound8k(tmp_path / "a"), "training", fold=11)
    root = make_urbansound8k(tmp_path / "b", [("x.wav", 1, 3, "siren")])
    with pytest.raises(ValueError, match=r"UrbanSound8K.csv row 2: classID 3 is 'dog_bark', not 'siren'"):
        get_manifest("urbansound8k", root, "testing")
    root = make_urbansound8k(tmp_path / "c", [("x.wav", 1, 3, "dog_bark"), ("x.wav", 1, 3, "dog_bark")])
    with pytest.raises(ValueError, match=r"row 3: duplicated manifest row, same clip as .*row 2"):
        get_manifest("urbansound8k", root, "testing")


def test_nsynth(tmp_path):
    root = make_nsynth(tmp_path)
    sizes = {s: len(get_manifest("nsynth", root, s)) for s in ("training", "validation", "testing")}
    assert sizes == {"training": 3, "validation": 2, "testing": 1}
    m = get_manifest("nsynth", root, "training")
    assert m.num_classes == 11
    assert Counter(m.labels[r.target] for r in m.records) == {"guitar": 2, "bass": 1}
    assert all(Path(r.path).is_file() and "nsynth-train/audio" in r.path for r in m.records)


def test_nsynth_duplicate_and_bad_family(tmp_path):
    root = make_nsynth(tmp_path)
    path = root / "nsynth-test" / "examples.json"
    path.write_text('{"a": {"instrument_family": 1}, "a": {"instrument_family": 1}}')
    with pytest.raises(ValueError, match="duplicated manifest entry 'a'"):
        get_manifest("nsynth", root, "testing")
    path.write_text(json.dumps({"a": {"instrument_family": 12}}))
    with pytest.raises(ValueError, match=r"entry 'a': class id 12 is outside \[0, 11\)"):
        get_manifest("nsynth", root, "testing")


def test_vggsound(tmp_path, caplog):
    root = make_vggsound(tmp_path)
    with caplog.at_level("WARNING"):
        train = get_manifest("vggsound", root, "training")
    assert "1 of 3 rows of the train split name an audio file that does not exist" in caplog.text
    assert "vggsound.csv row 4: " in caplog.text and "Left out" in caplog.text
    test = get_manifest("vggsound", root, "testing")
    assert train.labels == VGGSOUND_CLASSES == test.labels  # the 309 published classes, not the CSV's two
    dog, piano = VGGSOUND_CLASSES.index("dog barking"), VGGSOUND_CLASSES.index("playing piano")
    assert [(Path(r.path).name, r.target) for r in train.records] == [
        ("abc123XYZ_-_000030.wav", dog),
        ("def456uvw_a_000000.wav", piano),
    ]
    assert [r.group for r in test.records] == ["ghi789rst_b"]
    assert get_manifest("vggsound", root, "validation").records == test.records
    with pytest.raises(DataError, match=r"1 of 3 rows .* does not exist: .*row 4: .*missing=warn\|drop\|error"):
        get_manifest("vggsound", root, "training", missing="error")
    assert len(get_manifest("vggsound", root, "training", missing="warn")) == 3


def test_epic_sounds(tmp_path):
    root = make_epic(tmp_path)
    train = get_manifest("epic_sounds", root, "training")
    assert len(train) == 3 and train.num_classes == 44
    r = train.records[1]
    assert (r.key, r.start, r.end, r.target) == ("P01_01", 1.0, 4.5, 2)
    assert r.path.endswith("EPIC-KITCHENS-100_audio.hdf5")
    assert train.labels[5] == "water" and train.labels[43] == "scrub / scrape" and train.labels[0] == "class_0"
    val = get_manifest("epic_sounds", root, "validation")
    assert [(r.key, r.target) for r in val.records] == [("P02_03", 43)]
    test = get_manifest("epic_sounds", root, "testing")
    assert [(r.start, r.target) for r in test.records] == [(5.0, -1)]


def test_epic_kitchens_100(tmp_path):
    root = make_epic(tmp_path)
    train = get_manifest("epic_kitchens_100", root, "training")
    assert train.num_classes == {"verb": 97, "noun": 300}
    assert [r.target for r in train.records] == [{"verb": 3, "noun": 0}, {"verb": 2, "noun": 13}]
    assert train.labels["verb"][3] == "verb3" and train.labels["noun"][13] == "noun_13"
    assert train.records[0].start == pytest.approx(0.1) and train.records[0].end == pytest.approx(2.5)
    assert len(get_manifest("epic_kitchens_100", root, "validation")) == 1


def test_epic_duplicate_id_and_bad_timestamp(tmp_path):
    root = make_epic(tmp_path)
    from .test_data_fakes import SOUNDS_HEADER

    row = ["P01_01_0", "P01", "P01_01", "00:00:00.500", "00:00:01.000", 0, 0, "water", "water", 5]
    write_csv(root / "EPIC_Sounds_validation.csv", SOUNDS_HEADER, [row, row])
    with pytest.raises(ValueError, match=r"EPIC_Sounds_validation.csv row 3: duplicated manifest row"):
        get_manifest("epic_sounds", root, "validation")
    write_csv(root / "EPIC_Sounds_validation.csv", SOUNDS_HEADER, [row[:3] + ["0:00.5", *row[4:]]])
    with pytest.raises(ValueError, match=r"row 2: bad timestamp '0:00.5'"):
        get_manifest("epic_sounds", root, "validation")


def test_folder_hash_split_and_explicit_split(tmp_path):
    for c in ("cat", "dog"):
        for i in range(20):
            write_audio(tmp_path / "flat" / c / f"{i}.wav", seconds=0.05)
    parts = {s: get_manifest("folder", tmp_path / "flat", s) for s in ("training", "validation", "testing")}
    assert sum(len(m) for m in parts.values()) == 40 and len(parts["training"]) > len(parts["testing"])
    paths = [{r.path for r in m.records} for m in parts.values()]
    assert not (paths[0] & paths[1] or paths[0] & paths[2] or paths[1] & paths[2])
    assert parts["training"].labels == ["cat", "dog"]
    write_audio(tmp_path / "split" / "train" / "cat" / "a.wav", seconds=0.05)
    write_audio(tmp_path / "split" / "test" / "dog" / "b.wav", seconds=0.05)
    test = get_manifest("folder", tmp_path / "split", "testing")
    assert test.labels == ["cat", "dog"] and [r.target for r in test.records] == [1]


def test_csv_manifest_multilabel_and_errors(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["path", "label", "split"], [
        ["a.wav", "dog", "training"], ["b.wav", "dog;car", "train"], ["c.wav", "car", "testing"],
    ])  # fmt: skip
    m = get_manifest("csv", path, "training")
    assert isinstance(m, Manifest) and m.multi_label and m.labels == ["car", "dog"]
    assert [r.target for r in m.records] == [(1,), (1, 0)]
    assert m.records[0] == ClipRecord(str(tmp_path / "a.wav"), (1,))
    assert [r.target for r in get_manifest("csv", path, "testing").records] == [(0,)]
    write_csv(
        tmp_path / "bad.csv", ["path", "label", "split"], [["a.wav", "dog", "training"], ["b.wav", "cow", "training"]]
    )
    with pytest.raises(ValueError, match=r"bad.csv row 3: label 'cow' is not in the label list"):
        get_manifest("csv", tmp_path / "bad.csv", "training", labels=["dog"])
    write_csv(tmp_path / "dup.csv", ["path", "label"], [["a.wav", "dog"], ["a.wav", "dog"]])
    with pytest.raises(ValueError, match=r"dup.csv row 3: duplicated manifest row, 'a.wav' is already at .*row 2"):
        get_manifest("csv", tmp_path / "dup.csv", "training")
    write_csv(tmp_path / "nolabel.csv", ["path"], [["a.wav"]])
    with pytest.raises(ValueError, match=r"missing column\(s\) \['label'\]"):
        get_manifest("csv", tmp_path / "nolabel.csv", "training")
