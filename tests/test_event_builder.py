"""``arinext data events``: keyword clips at known times in noise, at a measured SNR, from one split only."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from arinext.apps.builders import DatasetExistsError
from arinext.apps.builders.event_mixtures import active_region, build_events, read_event_table
from arinext.apps.demo import bundled_sample
from arinext.cli import main
from arinext.data import get_manifest


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("events") / "test"
    result = build_events(out, subset="testing", files=3, seconds=12.0, events_per_file=4, snr_db=10.0, seed=3)
    return out, result


def test_layout_and_event_table(built) -> None:
    out, result = built
    assert sorted(p.name for p in out.iterdir()) == ["BUILD.json", "audio", "events.tsv", "labels.txt"]
    assert sorted(p.name for p in (out / "audio").iterdir()) == ["mix_000.flac", "mix_001.flac", "mix_002.flac"]
    table = read_event_table(out)
    assert sum(len(v) for v in table.values()) == result.events == 12
    labels = (out / "labels.txt").read_text().split()
    for name, events in table.items():
        info = sf.info(str(out / "audio" / name))
        assert info.samplerate == 16000 and info.frames == 12 * 16000
        events = sorted(events, key=lambda e: e["onset"])
        assert events[0]["onset"] >= 1.0 - 1e-3 and events[-1]["offset"] <= 12.0 - 1.0 + 1e-3
        for a, b in zip(events, events[1:]):
            assert b["onset"] - a["offset"] >= 1.0 - 1e-3  # no overlap, gaps of at least min_gap
        assert all(e["event_label"] in labels and 0.05 < e["offset"] - e["onset"] < 1.0 for e in events)


def test_clips_come_from_the_requested_split_only(built) -> None:
    out, result = built
    info = json.loads((out / "BUILD.json").read_text())
    test_paths = {str(p) for p in (r.path for r in get_manifest("speech_commands_v2", bundled_sample(), "testing").records)}
    used = {str(bundled_sample() / e["clip"]) for e in info["events"]}
    assert used <= test_paths and len(used) == 12 == result.clips
    assert result.speakers == len({p.split("/")[-1].split("_nohash_")[0] for p in used})


def test_snr_over_the_active_part_is_what_was_asked(built) -> None:
    """Re-measure: the event's samples minus the noise (rebuilt from the same generator) give the SNR."""
    out, _ = built
    info = json.loads((out / "BUILD.json").read_text())
    for ev in info["events"][:4]:
        word, sr = sf.read(str(bundled_sample() / ev["clip"]), dtype="float64")
        a, b = active_region(word, sr)
        mix, _ = sf.read(str(out / "audio" / ev["filename"]), dtype="float64")
        start = int(round(ev["onset"] * sr))
        seg = mix[start : start + (b - a)]
        # the noise around the event (1 s on the left) estimates the noise power in the event
        noise_power = np.mean(mix[start - sr : start - sr // 10] ** 2)
        word_power = np.mean(seg**2) - noise_power
        assert 10 * np.log10(word_power / noise_power) == pytest.approx(10.0, abs=1.5)
        assert ev["snr_db"] == 10.0


def test_reproducible_and_seed_dependent(tmp_path) -> None:
    kw = dict(subset="validation", files=1, seconds=8.0, events_per_file=3)
    build_events(tmp_path / "a", seed=1, **kw)
    build_events(tmp_path / "b", seed=1, **kw)
    build_events(tmp_path / "c", seed=2, **kw)
    a, b, c = ((tmp_path / x / "events.tsv").read_text() for x in "abc")
    assert a == b and a != c
    assert (tmp_path / "a" / "audio" / "mix_000.flac").read_bytes() == (tmp_path / "b" / "audio" / "mix_000.flac").read_bytes()


def test_snr_range_and_clip_reuse_across_passes(tmp_path) -> None:
    r = build_events(tmp_path / "r", subset="validation", files=14, seconds=14.0, events_per_file=8, snr_db=(5.0, 20.0))
    n_val = len(get_manifest("speech_commands_v2", bundled_sample(), "validation").records)
    assert r.events == 112 > n_val == r.clips  # every clip once before any is reused
    snrs = [e["snr_db"] for e in json.loads((tmp_path / "r" / "BUILD.json").read_text())["events"]]
    assert 5.0 <= min(snrs) < 8.0 and 17.0 < max(snrs) <= 20.0


def test_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="do not fit"):
        build_events(tmp_path / "x", files=1, seconds=3.0, events_per_file=5)
    with pytest.raises(ValueError, match="subset"):
        build_events(tmp_path / "y", subset="train")
    build_events(tmp_path / "z", files=1, seconds=5.0, events_per_file=2)
    with pytest.raises(DatasetExistsError):
        build_events(tmp_path / "z", files=1, seconds=5.0, events_per_file=2)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "events.tsv").write_text("filename\tonset\toffset\tevent_label\nmix.flac\tx\t1\tyes\n")
    with pytest.raises(ValueError, match="row 2"):
        read_event_table(tmp_path / "bad")


def test_cli(tmp_path, capsys) -> None:
    out = tmp_path / "ev"
    assert main(["data", "events", str(out), "--files", "2", "--seconds", "10", "--events-per-file", "3",
                 "--snr-db", "5,15", "-q"]) == 0  # fmt: skip
    assert "wrote 2 files with 6 events of 10 classes" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "events.tsv"), delimiter="\t"))
    assert len(rows) == 6 and set(rows[0]) == {"filename", "onset", "offset", "event_label"}
    with pytest.raises(SystemExit) as exc:
        main(["data", "events", str(out), "--snr-db", "1,2,3"])
    assert exc.value.code == 2 and "expected a number or LOW,HIGH" in capsys.readouterr().err
