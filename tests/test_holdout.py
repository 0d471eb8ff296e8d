"""Leave one source out: clip metadata from the manifests, the held-out split with its speaker closure,
``arinext eval --by`` and ``arinext loso``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from arinext.cli import main
from arinext.data import ClipRecord, Manifest, get_manifest
from arinext.data.holdout import Holdout, holdout_from_dict, per_source_accuracy, split_holdout
from arinext.train.config import DataConfig, load_config
from arinext.train.data import build_dataset

from .test_data_fakes import make_nsynth, write_csv

ASSET = Path(__file__).resolve().parents[1] / "src" / "arinext" / "assets" / "keywords10"
SR = 8000
FRONTEND = "{sample_rate: 8000, n_fft: 256, clip_seconds: 0.319, num_frames: 32, n_mels: 32, test_views: 1}"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rec(target: int, **meta: str) -> ClipRecord:
    return ClipRecord(f"{meta}.wav", target, meta=tuple(sorted(meta.items())))


def test_split_holdout_moves_the_source_and_closes_over_shared_speakers() -> None:
    subsets = {
        "training": [rec(0, engine="flite", speaker="kal"), rec(1, engine="festival", speaker="kal"),
                     rec(0, engine="festival", speaker="ked"), rec(1, engine="espeak", speaker="e1")],
        "validation": [rec(0, engine="espeak", speaker="e2"), rec(1, engine="flite", speaker="awb")],
        "testing": [rec(0, engine="espeak", speaker="e3"), rec(1, engine="festival", speaker="slt"),
                    rec(1, engine="flite", speaker="slt")],
    }  # fmt: skip
    manifests = {k: Manifest(v, ["a", "b"], source="m") for k, v in subsets.items()}
    split = split_holdout(manifests, Holdout("engine", ("flite",)))
    held = split.subsets["heldout"].records
    assert sorted(r.value("speaker") for r in held) == ["awb", "kal", "slt"], "every flite clip, from all subsets"
    assert [r.value("speaker") for r in split.subsets["training"].records] == ["ked", "e1"]
    assert [r.value("speaker") for r in split.subsets["validation"].records] == ["e2"]
    assert [r.value("speaker") for r in split.subsets["testing"].records] == ["e3"]
    assert split.removed == {"training": 1, "testing": 1}
    assert split.leaks == {"speaker=kal": 1, "speaker=slt": 1}
    summary = split.summary()
    assert summary["clips"] == {"training": 2, "validation": 1, "testing": 1, "heldout": 3}
    no_closure = split_holdout(manifests, Holdout("engine", ("flite",), closure=()))
    assert len(no_closure.subsets["training"]) == 3 and not no_closure.removed
    both = split_holdout(manifests, Holdout("engine", ("flite", "festival")))
    assert len(both.subsets["heldout"]) == 6 and len(both.subsets["training"]) == 1
    with pytest.raises(ValueError, match=r"no clip has engine='mbrola'; values found: \{'espeak'"):
        split_holdout(manifests, Holdout("engine", ("mbrola",)))
    with pytest.raises(ValueError, match="no clip has the metadata column 'device'; columns found"):
        split_holdout(manifests, Holdout("device", ("x",)))


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"values": ["a"]}, "column must name"),
        ({"column": "engine"}, "values must be"),
        ({"column": "engine", "values": ["a"], "closure": ["engine"]}, "must not contain the held-out column"),
        ({"column": "engine", "value": "a"}, "unknown key"),
    ],
)
def test_holdout_spec_errors(spec: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        holdout_from_dict(spec)
    with pytest.raises(ValueError, match=message):
        load_config("keywords", [f"data.holdout={json.dumps(spec)}"])


def test_holdout_spec_defaults() -> None:
    assert holdout_from_dict({"column": "engine", "values": "flite"}) == Holdout("engine", ("flite",), ("speaker",))


def test_per_source_accuracy_counts_each_value() -> None:
    records = [rec(0, engine="a"), rec(0, engine="a"), rec(0, engine="b"), ClipRecord("x.wav", 0)]
    table = per_source_accuracy(records, [True, False, True, True], "engine")
    assert table == {"(none)": {"clips": 1, "top1": 1.0}, "a": {"clips": 2, "top1": 0.5}, "b": {"clips": 1, "top1": 1.0}}


def test_keyword_build_metadata_reaches_the_records() -> None:
    test = get_manifest("speech_commands_v2", ASSET, "testing")
    engines = {r.value("engine") for r in test.records}
    assert engines <= {"espeak-ng", "flite", "festival"} and "espeak-ng" in engines
    for r in test.records:
        assert r.value("speaker") and r.value("voice") and r.value("params") is None and r.value("path") is None
    train = get_manifest("speech_commands_v2", ASSET, "training")
    kal = {r.value("engine") for r in train.records + test.records if r.value("speaker") == "cmu-kal"}
    assert kal == {"flite", "festival"}, "one speaker through two engines: what the closure is for"


def test_csv_and_nsynth_metadata(tmp_path: Path) -> None:
    rows = [["a.wav", "dog", "training", "phone", "s1"], ["b.wav", "cat", "testing", "", "s2"]]
    write_csv(tmp_path / "manifest.csv", ["path", "label", "split", "device", "speaker"], rows)
    train = get_manifest("csv", tmp_path, "training")
    assert train.records[0].meta == (("device", "phone"), ("speaker", "s1"))
    assert get_manifest("csv", tmp_path, "testing").records[0].meta == (("speaker", "s2"),), "empty values are left out"
    root = make_nsynth(tmp_path / "ns")
    records = get_manifest("nsynth", root, "training").records
    assert all(r.value("instrument_str") for r in records)


def make_sources(root: Path) -> Path:
    """A CSV dataset of tones: two classes, two devices (mic_b adds a hum and a hiss), speakers s0..s5;
    speaker s0 records on both devices."""
    rng = np.random.default_rng(0)
    rows = []
    for device in ("mic_a", "mic_b"):
        for speaker in range(6):
            if device == "mic_b" and speaker not in (0, 4, 5):
                continue
            split = {4: "validation", 5: "testing"}.get(speaker, "training")
            for label, freq in (("low", 400.0), ("high", 2000.0)):
                for k in range(3):
                    t = np.arange(int(0.4 * SR)) / SR
                    x = 0.4 * np.sin(2 * np.pi * freq * rng.uniform(0.9, 1.1) * t) + 0.02 * rng.standard_normal(t.size)
                    if device == "mic_b":
                        x += 0.2 * np.sin(2 * np.pi * 100 * t) + 0.1 * rng.standard_normal(t.size)
                    name = f"{device}/s{speaker}_{label}_{k}.wav"
                    (root / device).mkdir(parents=True, exist_ok=True)
                    sf.write(root / name, x.astype(np.float32), SR)
                    rows.append([name, label, split, device, f"s{speaker}"])
    return write_csv(root / "manifest.csv", ["path", "label", "split", "device", "speaker"], rows)


def test_build_dataset_serves_the_held_out_subsets(tmp_path: Path) -> None:
    make_sources(tmp_path)
    spec = {"column": "device", "values": ["mic_b"]}
    data = DataConfig(dataset="csv", root=str(tmp_path), preset="speech_commands_v2", holdout=spec)
    # mic_b: speakers s0, s4, s5 (18 clips); the closure drops mic_a's s0 (training), s4 (validation), s5 (testing)
    assert len(build_dataset(data, "heldout", training=False).dataset) == 18
    assert len(build_dataset(data, "training", training=True).dataset) == 18
    with pytest.raises(ValueError, match="the validation subset of 'csv' has no clips"):
        build_dataset(data, "validation", training=False)
    data.holdout = {**spec, "closure": []}
    sizes = {s: len(build_dataset(data, s, training=False).dataset) for s in ("training", "validation", "testing")}
    assert sizes == {"training": 24, "validation": 6, "testing": 6}
    with pytest.raises(ValueError, match="the 'heldout' subset needs data.holdout"):
        build_dataset(DataConfig(dataset="csv", root=str(tmp_path)), "heldout", training=False)


def test_loso_command_trains_each_fold_and_reports_both_accuracies(tmp_path: Path, capsys) -> None:
    root = make_sources(tmp_path / "data")
    sets = ["model=audio_rep_inception_next_tiny", "data.dataset=csv", f"data.root={root}", f"data.frontend={FRONTEND}",
            "data.preset=speech_commands_v2", "data.background_noise=null", "data.batch_size=6", "data.num_workers=0",
            "optim.epochs=2", "optim.lr_steps=[1]", "optim.lr_factors=[0.1]", "eval_every=1"]  # fmt: skip
    out = tmp_path / "loso"
    args = ["loso", "keywords", "--column", "device", "--closure", "", "--out", str(out), "-q"]
    assert main([*args, *sum((["--set", s] for s in sets), [])]) == 0
    table = capsys.readouterr().out
    assert "| held-out device |" in table and "| mic_a | 0 |" in table and "| mic_b | 0 |" in table
    content = json.loads((out / "loso.json").read_text())
    assert [f["value"] for f in content["folds"]] == ["mic_a", "mic_b"]
    for fold in content["folds"]:
        metrics = json.loads((Path(fold["run"]) / "eval" / "metrics.json").read_text())
        held = json.loads((Path(fold["run"]) / "eval" / "heldout" / "metrics.json").read_text())
        assert fold["heldout_top1"] == held["training_form"]["top1"] == metrics["heldout"]["training_form"]["top1"]
        assert fold["in_source_top1"] == metrics["training_form"]["top1"]
        assert fold["gap_top1"] == pytest.approx(metrics["gap_top1"])
        assert held["clips"] == fold["clips"]["heldout"] == (36 if fold["value"] == "mic_a" else 18)
        assert metrics["holdout"]["values"] == [fold["value"]]
    # resumed: folds already evaluated are read back, not trained again
    before = (out / "device=mic_a" / "seed0" / "best.pt").stat().st_mtime_ns
    assert main([*args, *sum((["--set", s] for s in sets), [])]) == 0
    assert (out / "device=mic_a" / "seed0" / "best.pt").stat().st_mtime_ns == before
    # eval --by on one fold's model: per-device accuracy of its held-out clips
    run = out / "device=mic_b" / "seed0"
    assert main(["eval", str(run), "--out", str(tmp_path / "by"), "--by", "speaker", "-q"]) == 0
    metrics = json.loads((tmp_path / "by" / "metrics.json").read_text())
    by_held = metrics["heldout"]["by"]["speaker"]
    assert set(by_held) == {"s0", "s4", "s5"} and sum(v["clips"] for v in by_held.values()) == 18
    mean = sum(v["top1"] * v["clips"] for v in by_held.values()) / 18
    assert mean == pytest.approx(metrics["heldout"]["training_form"]["top1"])
    assert main(["eval", str(run), "--out", str(tmp_path / "by2"), "--by", "room", "-q"]) == 2
    assert "no clip has the metadata column 'room'" in capsys.readouterr().err
    assert main(["loso", "keywords", "--column", "device", "--values", "mic_c", "--out", str(tmp_path / "x"),
                 *sum((["--set", s] for s in sets), [])]) == 2  # fmt: skip
    assert "no clip has device='mic_c'" in capsys.readouterr().err


def test_a_fold_that_would_leave_a_subset_empty_is_listed_not_trained(tmp_path: Path, capsys) -> None:
    root = make_sources(tmp_path / "data")
    sets = ["data.dataset=csv", f"data.root={root}", "data.background_noise=null"]
    # with the speaker closure, holding out mic_b removes s4 (validation) and s5 (testing) of mic_a too
    assert main(["loso", "keywords", "--column", "device", "--values", "mic_b", "--out", str(tmp_path / "l"),
                 *sum((["--set", s] for s in sets), []), "-q"]) == 1  # fmt: skip
    assert "| mic_b | 0 | 18 | | 0 | not trained: no validation clips | 18 | | |" in capsys.readouterr().out
