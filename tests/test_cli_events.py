"""The README's event-detection commands on small sets: ``arinext data events``, ``arinext events fit``,
``arinext events eval`` and ``arinext predict --events``, with a trained keyword model when one is
available (``../shared/fixtures/int8-collapse-kw10``, an earlier demo model: 93.1 % on the test speakers),
and the sed_eval metric checked on cases with a known answer."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

import arinext
from arinext.apps import event_detection as sed
from arinext.apps.builders.event_mixtures import build_events, read_event_table
from arinext.apps.demo import bundled_sample
from arinext.cli import main
from arinext.inference.event_decoding import Event

from .conftest import SHARED, tiny_model

KW_MODEL = Path(os.environ.get("ARINEXT_KW_MODEL", SHARED / "fixtures" / "int8-collapse-kw10"))
SMALL_GRID = {"threshold": [0.3, 0.5, 0.7], "low_ratio": [0.5, 1.0], "median": [0.0, 0.15], "min_duration": [0.0],
              "min_gap": [0.0]}  # fmt: skip


def test_metric_known_answers() -> None:
    ref = {"f.wav": [{"event_label": "yes", "onset": 1.0, "offset": 1.4}, {"event_label": "no", "onset": 3.0, "offset": 3.3}]}
    exact = {"f.wav": [Event("yes", 1.0, 1.4, 1.0), Event("no", 3.0, 3.3, 1.0)]}
    m = sed.event_metrics(ref, exact, ["yes", "no"])
    assert m["f1"] == 1.0 and m["error_rate"] == 0.0 and m["onset_mae_ms"] == 0.0 and m["matched"] == 2
    shifted = {"f.wav": [Event("yes", 1.15, 1.5, 1.0), Event("no", 3.25, 3.6, 1.0)]}  # 150 ms in, 250 ms out
    m = sed.event_metrics(ref, shifted, ["yes", "no"])
    assert m["f1"] == 0.5 and m["matched"] == 1 and m["onset_mae_ms"] == pytest.approx(150.0)
    swapped = {"f.wav": [Event("no", 1.0, 1.4, 1.0), Event("yes", 3.0, 3.3, 1.0)]}
    m = sed.event_metrics(ref, swapped, ["yes", "no"])
    assert m["f1"] == 0.0 and m["substitution_rate"] == 1.0
    m = sed.event_metrics(ref, {}, ["yes", "no"])
    assert m["f1"] == 0.0 and m["precision"] is None and m["deletion_rate"] == 1.0 and m["onset_mae_ms"] is None


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sed")
    build_events(root / "train", subset="training", files=30, seconds=20.0, events_per_file=6, snr_db=(5.0, 20.0))
    build_events(root / "val", subset="validation", files=4, seconds=20.0, events_per_file=6, seed=1)
    build_events(root / "test", subset="testing", files=6, seconds=20.0, events_per_file=6, seed=2)
    return root


@pytest.fixture(scope="module")
def kw_model(tmp_path_factory):
    if not (KW_MODEL / "model.safetensors").is_file():
        pytest.skip("keyword model fixture (../shared/fixtures/int8-collapse-kw10) not present")
    path = tmp_path_factory.mktemp("kw") / "kw10"
    shutil.copytree(KW_MODEL, path)
    return path


def test_frame_head_on_a_keyword_model_finds_the_words(kw_model, sets, monkeypatch) -> None:
    """A trained keyword model + a frame head fitted on training-speaker mixtures detects the test speakers'
    words in 10 dB noise; the clip head per column does not; a model with random weights does not either."""
    monkeypatch.setattr(sed, "DECODE_GRID", SMALL_GRID)
    torch.set_num_threads(1)
    clf = arinext.AudioClassifier.from_pretrained(kw_model, frame_head=False)
    head = sed.fit_frame_head(clf, sets / "train", sets / "val", l2=(1e-3,), modes=("activity",), max_iter=100)
    clf.attach_frame_head(head)
    m = sed.evaluate_events(clf, sets / "test")
    assert m["head"] == "frame head" and m["reference_events"] == 36
    assert m["f1"] >= 0.6 and m["onset_mae_ms"] < 100  # 128 events and the full grid: 0.82 (README)
    clip = sed.evaluate_events(clf, sets / "test", head="clip", tune_on=sets / "val")
    assert clip["f1"] < 0.4
    rand = arinext.AudioClassifier(tiny_model(10, bn_seed=3), frontend=clf.frontend_config, labels=clf.labels)
    rand_head = sed.fit_frame_head(rand, sets / "train", sets / "val", l2=(1e-3,), modes=("activity",), max_iter=100)
    rand.attach_frame_head(rand_head)
    assert sed.evaluate_events(rand, sets / "test")["f1"] < 0.4


def test_commands_as_in_the_readme(kw_model, sets, tmp_path, capsys, monkeypatch) -> None:
    """The README's commands, with smaller sets and decoding grid."""
    monkeypatch.setattr(sed, "DECODE_GRID", SMALL_GRID)
    torch.set_num_threads(1)
    assert main(["events", "fit", str(kw_model), "--train", str(sets / "train"), "--val", str(sets / "val"), "-q"]) == 0
    out = capsys.readouterr().out
    assert "frame_head.json" in out and "validation: event F1" in out
    assert (kw_model / "frame_head.safetensors").is_file()
    assert main(["events", "eval", str(kw_model), str(sets / "test"), "--out", str(tmp_path / "m.json"), "-q"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("6 files, 36 events, frame head: event F1 ")
    assert json.loads((tmp_path / "m.json").read_text())["reference_events"] == 36
    assert main(["events", "eval", str(kw_model), str(sets / "test"), "--head", "clip", "--tune-on", str(sets / "val"),
                 "-q"]) == 0  # fmt: skip
    assert "clip head per column: event F1 0." in capsys.readouterr().out

    mix = sets / "test" / "audio" / "mix_000.flac"
    assert main(["predict", "-m", str(kw_model), "--events", str(mix), "--out", str(tmp_path / "ev"), "--plot"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].startswith(f"{mix}\t") and "frame head" in text[0]
    saved = json.loads((tmp_path / "ev" / "000_mix_000.events.json").read_text())
    assert (tmp_path / "ev" / "000_mix_000.events.png").stat().st_size > 5000
    assert saved["duration"] == 20.0 and saved["frames"]["hop"] == 0.05 and len(saved["frames"]["times"]) == 401
    ref = read_event_table(sets / "test")["mix_000.flac"]
    hits = sum(any(e["label"] == r["event_label"] and abs(e["onset"] - r["onset"]) <= 0.2 for e in saved["events"]) for r in ref)
    assert hits >= 3  # of the 6 words in this file
    assert main(["predict", "-m", str(kw_model), "--events", "--json", "--head", "clip", "--threshold", "0.9", str(mix)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["head"] == "clip head per column" and record["decode"]["threshold"] == 0.9


def test_predict_events_errors(tmp_path, capsys) -> None:
    net = arinext.create_model("audio_rep_inception_next_tiny", num_classes=2).eval()
    arinext.save_pretrained(net, tmp_path / "m", labels=["x", "y"], frontend=arinext.get_preset("speech_commands_v2"))
    clip = next((bundled_sample() / "yes").iterdir())
    assert main(["predict", "-m", str(tmp_path / "m"), "--plot", str(clip)]) == 2
    assert "go with --events" in capsys.readouterr().err
    assert main(["predict", "-m", str(tmp_path / "m"), "--events", "--plot", str(clip)]) == 2
    assert "give --out DIR" in capsys.readouterr().err
    assert main(["predict", "-m", str(tmp_path / "m"), "--events", "--head", "frame", str(clip)]) == 2
    assert "no frame head" in capsys.readouterr().err
    assert main(["events", "fit", str(tmp_path / "m" / "model.safetensors"), "--train", "x", "--val", "y"]) == 2
    assert main(["predict", "-m", str(tmp_path / "m"), "--events", str(clip)]) == 0
    assert "events in 1.00 s (clip head per column)" in capsys.readouterr().out
