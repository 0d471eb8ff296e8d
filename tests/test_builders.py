"""Dataset builders (keywords from espeak-ng, instrument notes from a GM soundfont) and the bundled sample."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from arinext.apps.builders import (
    GM_PROGRAMS,
    DatasetExistsError,
    EngineNotFoundError,
    build_instruments,
    build_keywords,
    check_words,
)
from arinext.apps.builders._common import EngineCrashError, prepare_output
from arinext.apps.builders.instruments import SOUNDFONTS, NoteGrid, midi_file, plan_notes
from arinext.apps.builders.keywords import assign_splits, finish_clip, speaker_id
from arinext.apps.builders.noise import colored_noise
from arinext.apps.builders.tts import (
    FESTIVAL_VOICES,
    ClipParams,
    Voice,
    espeak_data_path,
    espeak_random_voices,
    list_voices,
    synthesize,
)
from arinext.audio.io import load_audio
from arinext.cli import main
from arinext.data import get_manifest
from arinext.data.vocab import NSYNTH_FAMILIES, NSYNTH_FOLDERS
from arinext.data.vocab import SPEECH_COMMANDS_CORE_WORDS as CORE_WORDS

ASSET = Path(__file__).resolve().parents[1] / "src" / "arinext" / "assets" / "keywords10"
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)"
)
needs_fluid = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not Path(SOUNDFONTS["FluidR3Mono_GM"][0]).is_file(),
    reason="fluidsynth or FluidR3Mono_GM.sf3 not installed (apt-get install fluidsynth fluidr3mono-gm-soundfont)",
)
TINY_KW = {
    "words": ["yes", "no"], "engines": ["espeak-ng"], "accents": ["en-us", "en"], "num_espeak_voices": 6,
    "val_speakers": 1, "test_speakers": 2, "jobs": 2, "noise_seconds": 0.5,
}  # fmt: skip


def _read_layout(root: Path) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Split of every clip as the Speech Commands convention defines it, plus the manifest rows."""
    val = set((root / "validation_list.txt").read_text().split())
    test = set((root / "testing_list.txt").read_text().split())
    clips = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*_nohash_*.*"))
    split = {c: "testing" if c in test else "validation" if c in val else "training" for c in clips}
    assert val | test <= set(clips), "lists name files that do not exist"
    with open(root / "manifest.csv", newline="") as f:
        return split, list(csv.DictReader(f))


def _check_speaker_disjoint(split: dict[str, str]) -> dict[str, set[str]]:
    splits_of: dict[str, set[str]] = defaultdict(set)
    for path, s in split.items():
        splits_of[path.split("/")[1].split("_nohash_")[0]].add(s)
    mixed = {spk: s for spk, s in splits_of.items() if len(s) > 1}
    assert not mixed, f"speakers in several splits: {mixed}"
    return splits_of


@pytest.fixture(scope="module")
def tiny_keywords(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    root = tmp_path_factory.mktemp("kw") / "a"
    build_keywords(root, seed=3, **TINY_KW)
    return root


@needs_espeak
def test_keywords_layout_and_splits(tiny_keywords: Path) -> None:
    root = tiny_keywords
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["_background_noise_", "no", "yes"]
    split, rows = _read_layout(root)
    assert len(split) == 2 * 6
    assert {r["path"]: r["split"] for r in rows} == split
    assert {r["label"] for r in rows} == {"yes", "no"} and all(r["path"].startswith(r["label"] + "/") for r in rows)
    splits_of = _check_speaker_disjoint(split)
    counts = {s: sum(v == {s} for v in splits_of.values()) for s in ("training", "validation", "testing")}
    assert counts == {"training": 3, "validation": 1, "testing": 2}
    for r in rows:  # file prefix is the hashed modelled voice (accent x variant)
        assert r["path"].split("/")[1].startswith(speaker_id(r["speaker"]) + "_nohash_")
        assert r["speaker"] == f"espeak-{r['voice']}"
    assert len(list((root / "_background_noise_").glob("*_noise.wav"))) == 3


@needs_espeak
def test_keywords_audio(tiny_keywords: Path) -> None:
    for path in tiny_keywords.glob("*/*_nohash_*.wav"):
        x, sr = sf.read(path, dtype="float32")
        assert sr == 16000 and x.shape == (16000,)
        peak_db = 20 * np.log10(np.max(np.abs(x)))
        assert -12.5 <= peak_db <= -0.9, (path, peak_db)
        assert np.abs(x[:50]).max() < 0.1 * np.abs(x).max() or np.abs(x[-50:]).max() < 0.1 * np.abs(x).max()


@needs_espeak
def test_keywords_reproducible_force_and_flac(tiny_keywords: Path, tmp_path: Path) -> None:
    again = tmp_path / "b"
    build_keywords(again, seed=3, **{**TINY_KW, "jobs": 1})
    files = sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tiny_keywords) for p in tiny_keywords.rglob("*") if p.is_file())
    for rel in files:
        assert (again / rel).read_bytes() == (tiny_keywords / rel).read_bytes(), rel
    with pytest.raises(DatasetExistsError, match="--force"):
        build_keywords(again, seed=4, **TINY_KW)
    assert (again / "manifest.csv").read_bytes() == (tiny_keywords / "manifest.csv").read_bytes()
    build_keywords(again, seed=4, fmt="flac", force=True, **TINY_KW)
    assert not list(again.rglob("*.wav")), "--force must replace the old build"
    flacs = list(again.glob("*/*_nohash_*.flac"))
    assert len(flacs) == 12 and sf.info(str(flacs[0])).format == "FLAC"
    assert (again / "manifest.csv").read_bytes() != (tiny_keywords / "manifest.csv").read_bytes()


def test_force_never_deletes_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(DatasetExistsError, match="not made by an arinext builder"):
        prepare_output(tmp_path, force=True)
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    assert prepare_output(tmp_path / "new", force=False).is_dir()


def test_missing_engine_names_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no engine on PATH
    with pytest.raises(EngineNotFoundError, match="apt-get install espeak-ng"):
        build_keywords(tmp_path / "out", engines=["espeak-ng"])
    with pytest.raises(EngineNotFoundError, match="apt-get install festival"):
        build_keywords(tmp_path / "out", engines=["festival"])
    with pytest.raises(EngineNotFoundError, match="apt-get install fluidsynth"):
        build_instruments(tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert main(["data", "keywords", str(tmp_path / "out"), "--engines", "flite"]) == 2


def test_missing_soundfont_names_debian_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if shutil.which("fluidsynth") is None:
        pytest.skip("fluidsynth not installed (apt-get install fluidsynth)")
    monkeypatch.setitem(SOUNDFONTS, "FluidR3_GM", (str(tmp_path / "nope.sf2"), "fluid-soundfont-gm", "fluid-r3"))
    with pytest.raises(EngineNotFoundError, match="apt-get install fluid-soundfont-gm"):
        build_instruments(tmp_path / "out", soundfonts=["FluidR3_GM"])


def test_assign_splits_is_deliberate_and_balanced() -> None:
    speakers = [f"espeak-{a}+v{i}" for a in ("en", "en-us", "en-029", "en-gb-x-rp") for i in range(25)]
    speakers += ["cmu-slt", "cmu-kal", "cmu-awb", "cmu-rms", "cmu-ked"]
    split = assign_splits(speakers, val=10, test=12, seed=0)
    assert sorted(split) == sorted(speakers)
    assert [sum(s == k for s in split.values()) for k in ("training", "validation", "testing")] == [83, 10, 12]
    for accent in ("en", "en-us", "en-029", "en-gb-x-rp"):  # every accent in the test split
        assert 2 <= sum(split[s] == "testing" for s in speakers if s.startswith(f"espeak-{accent}+")) <= 4
    assert assign_splits(speakers, 10, 12, seed=0) == split != assign_splits(speakers, 10, 12, seed=1)
    with pytest.raises(ValueError, match="leave any for training"):
        assign_splits(speakers[:5], val=2, test=3, seed=0)


def test_finish_clip_trims_levels_and_crops() -> None:
    rng = np.random.default_rng(0)
    word = np.concatenate([np.zeros(8000), np.sin(np.arange(4410) / 5.0), np.zeros(8000)]).astype(np.float32)
    clip, cropped = finish_clip(word, 22050, rng)
    assert clip.shape == (16000,) and not cropped
    assert 3200 - 10 <= np.count_nonzero(clip) <= 3200 + 2 * 480 + 10  # 0.2 s word + 30 ms pads
    assert -12 <= 20 * np.log10(np.abs(clip).max()) <= -1
    long_word = np.sin(np.arange(40000) / 5.0).astype(np.float32)
    clip, cropped = finish_clip(long_word, 16000, rng)
    assert cropped and clip.shape == (16000,) and clip[0] == 0.0 and clip[-1] == 0.0


@pytest.mark.parametrize("colour, slope", [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_colored_noise_spectrum(colour: str, slope: float) -> None:
    x = colored_noise(colour, 2**16, np.random.default_rng(0), rms_dbfs=-20)
    assert abs(20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2))) + 20) < 0.5 or colour == "brown"
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.arange(power.size)
    band = (f > 100) & (f < 20000)
    fitted = np.polyfit(np.log(f[band]), np.log(power[band]), 1)[0]
    assert abs(fitted - slope) < 0.15


def test_gm_table_matches_nsynth_families() -> None:
    assert len(GM_PROGRAMS) == 85
    per_family = defaultdict(int)
    for family, _, (lo, hi) in GM_PROGRAMS.values():
        per_family[family] += 1
        assert 0 <= lo < hi <= 127
    assert dict(per_family) == {
        "string": 12, "reed": 10, "guitar": 9, "keyboard": 8, "bass": 8, "brass": 8, "flute": 8, "synth_lead": 8,
        "mallet": 6, "organ": 5, "vocal": 3,
    }  # fmt: skip
    assert set(per_family) == set(NSYNTH_FAMILIES)
    notes = plan_notes(["A", "B"], NoteGrid(programs=(0, 40), velocities=(25, 127), seed=0))
    split_of = {(n.program, n.pitch, n.velocity): n.split for n in notes if n.font == 0}
    assert all(split_of[(n.program, n.pitch, n.velocity)] == n.split for n in notes if n.font == 1)


def test_midi_file_is_well_formed() -> None:
    notes = plan_notes(["A"], NoteGrid(programs=(73,), velocities=(100,), pitch_step=30))
    data = midi_file(notes)
    assert data[:4] == b"MThd" and data[14:18] == b"MTrk"
    assert int.from_bytes(data[18:22], "big") == len(data) - 22
    assert data.endswith(b"\xff\x2f\x00") and data.count(bytes([0xC0, 73])) == len(notes)


@needs_fluid
def test_instruments_nsynth_layout(tmp_path: Path) -> None:
    root = tmp_path / "nsynth"
    grid = NoteGrid(programs=(0, 73), velocities=(50, 127), pitch_step=12, test=0.3, valid=0.2)
    result = build_instruments(root, grid=grid, jobs=2)
    n_planned = len(plan_notes(["x"], grid))
    seen: dict[tuple[int, int, int], str] = {}
    total = 0
    for split, folder in NSYNTH_FOLDERS.items():
        examples = json.loads((root / folder / "examples.json").read_text())
        assert len(examples) == result.splits[split] and len(
            list((root / folder / "audio").iterdir())
        ) == len(examples)
        total += len(examples)
        for key, ex in examples.items():
            assert ex["note_str"] == key
            family = {0: "keyboard", 73: "flute"}[ex["program"]]
            assert ex["instrument_family_str"] == family and ex["instrument_family"] == NSYNTH_FAMILIES.index(family)
            assert ex["instrument_source_str"] == "acoustic" and ex["sample_rate"] == 16000
            assert ex["soundfont"] == "FluidR3Mono_GM" and ex["soundfont_family"] == "fluid-r3"
            assert key == f"{family}_acoustic_{ex['program']:03d}-{ex['pitch']:03d}-{ex['velocity']:03d}"
            assert seen.setdefault((ex["program"], ex["pitch"], ex["velocity"]), split) == split
            x, sr = sf.read(root / folder / "audio" / f"{key}.wav", dtype="float32")
            assert sr == 16000 and x.shape == (64000,)
            assert np.abs(x[:1600]).max() > 1e-3, "the note must start at onset"
            assert np.abs(x[-800:]).max() < np.abs(x).max()
    assert total == n_planned - result.flagged["silent renders skipped"] and total > 0
    assert min(result.splits.values()) > 0
    with pytest.raises(DatasetExistsError):
        build_instruments(root, grid=NoteGrid(programs=(0,), pitch_step=40))


# ---- the bundled sample -------------------------------------------------------------------------------

bundled = pytest.mark.skipif(not ASSET.is_dir(), reason="bundled keywords10 sample not present")


@bundled
def test_bundled_sample_promises() -> None:
    size = sum(p.stat().st_size for p in ASSET.rglob("*") if p.is_file())
    assert size <= 8 * 1024 * 1024, f"bundled sample is {size / 2**20:.2f} MiB"
    split, rows = _read_layout(ASSET)
    assert sorted({p.split("/")[0] for p in split}) == sorted(CORE_WORDS)
    assert all(p.endswith(".flac") for p in split) and len(rows) == len(split)
    _check_speaker_disjoint(split)
    spk_splits: dict[str, set[str]] = defaultdict(set)  # the modelled voice, e.g. slt in flite and festival
    for r in rows:
        spk_splits[r["speaker"]].add(r["split"])
    assert all(len(s) == 1 for s in spk_splits.values())
    for word in CORE_WORDS:
        speakers = defaultdict(set)
        for path, s in split.items():
            if path.startswith(word + "/"):
                speakers[s].add(path.split("/")[1].split("_nohash_")[0])
        assert len(speakers["testing"]) >= 10 and len(speakers["validation"]) >= 5 and len(speakers["training"]) >= 40
    assert 1 <= len(list((ASSET / "_background_noise_").glob("*.flac")))
    assert "arinext data keywords" in (ASSET / "README.md").read_text()


@bundled
def test_bundled_sample_decodes() -> None:
    for path in sorted(ASSET.glob("*/*.flac")):
        x, sr = load_audio(path)
        assert sr == 16000 and sf.info(str(path)).channels == 1
        if path.parent.name != "_background_noise_":
            assert x.shape == (16000,) and np.abs(x).max() > 0.05, path


# ---- word lists, empty splits, voices and parameter spaces ---------------------------------------------

needs_festival = pytest.mark.skipif(
    shutil.which("text2wave") is None or not Path("/usr/share/festival/voices").is_dir(),
    reason="festival not installed (apt-get install festival festvox-kallpc16k festvox-us-slt-hts)",
)
needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed (apt-get install flite)")


def _f0(x: np.ndarray, sr: int) -> float:
    """Median F0 (Hz) of the loud 40 ms frames, from the autocorrelation peak in 60-400 Hz."""
    n = int(0.04 * sr)
    frames = [x[i : i + n] for i in range(0, x.size - n, n // 2)]
    energy = np.array([np.sum(f**2) for f in frames])
    out = []
    for f, e in zip(frames, energy):
        if e < 0.1 * energy.max():
            continue
        f = f * np.hanning(n)
        a = np.correlate(f, f, "full")[n - 1 :]
        lo, hi = int(sr / 400), int(sr / 60)
        lag = lo + int(np.argmax(a[lo:hi]))
        if a[lag] > 0.3 * a[0]:
            out.append(sr / lag)
    assert out, "no voiced frame"
    return float(np.median(out))


def _speech_seconds(x: np.ndarray, sr: int) -> float:
    loud = np.flatnonzero(np.abs(x) > 0.01 * np.abs(x).max())
    return (loud[-1] - loud[0]) / sr


def test_word_lists_expand_sets_and_refuse_unknown_words(tmp_path: Path, capsys) -> None:
    assert check_words(["core"]) == list(CORE_WORDS) and len(check_words(["all"])) == 35
    assert check_words(["yes", "visual"]) == ["yes", "visual"]
    with pytest.raises(ValueError, match=r"unknown word\(s\) \['foo'\]"):
        check_words(["core", "foo"])
    with pytest.raises(ValueError, match=r"repeated: \['yes'\]"):
        check_words(["core", "yes"])
    out = tmp_path / "kw"
    assert main(["data", "keywords", str(out), "--words", "core,foo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown word(s) ['foo']" in err and not out.exists()


@needs_espeak
def test_a_build_with_an_empty_split_is_refused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "kw"
    assert main(["data", "keywords", str(out), "--engines", "espeak-ng", "--espeak-voices", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the validation split would be empty: 2 speakers" in err
    assert not out.exists(), "refused before any work"


def test_random_espeak_variants_are_seeded_and_distinct() -> None:
    a = espeak_random_voices(20, ["en-us", "en"], seed=0)
    assert [v.variant for v in a] == [v.variant for v in espeak_random_voices(20, ["en-us", "en"], seed=0)]
    assert len({v.variant for v in a}) == 20 and len({v.speaker for v in a}) == 20
    assert {v.name.split("+")[0] for v in a} == {"en-us", "en"}
    pitches = [float(v.variant.split("\npitch ")[1].split()[0]) for v in a]  # type: ignore[union-attr]
    scales = [np.mean([float(line.split()[2]) for line in v.variant.splitlines() if line.startswith("formant")])
              for v in a]  # type: ignore[union-attr]  # fmt: skip
    assert max(pitches) / min(pitches) > 1.8 and max(scales) / min(scales) > 1.25
    assert np.corrcoef(pitches, scales)[0, 1] > 0.3, "a larger vocal tract speaks lower"


@needs_espeak
def test_random_espeak_variant_changes_the_voice(tmp_path: Path) -> None:
    voices = espeak_random_voices(12, ["en-us"], seed=1)
    path = espeak_data_path(tmp_path, voices)
    f0s = []
    for v in voices:
        x, sr, _ = synthesize(dataclasses.replace(v, data_path=path), "seven", ClipParams(1.0, 50, 1.0), tmp_path)
        f0s.append(_f0(x, sr))
    assert max(f0s) / min(f0s) > 1.5, f0s
    with pytest.raises(ValueError, match="no data folder"):
        synthesize(voices[0], "seven", ClipParams(1.0, 50, 1.0), tmp_path)


def _pitch_ratio(voice: Voice, low: float, high: float, workdir: Path) -> float:
    """Measured F0 of "seven" with the pitch target ``high`` over that with ``low``."""
    f0 = [_f0(*synthesize(voice, "seven", ClipParams(1.1, 50, 1.0, f0=target), workdir)[:2]) for target in (low, high)]
    return f0[1] / f0[0]


@needs_flite
def test_flite_pitch_target(tmp_path: Path) -> None:
    assert _pitch_ratio(Voice("flite", "slt", "cmu-slt", "clustergen", f0=162.0), 100.0, 200.0, tmp_path) > 1.5


@needs_festival
def test_festival_hts_rate_and_diphone_pitch(tmp_path: Path) -> None:
    if not Path("/usr/share/festival/voices/us/cmu_us_slt_arctic_hts").is_dir():
        pytest.skip("festvox-us-slt-hts not installed")
    slt = Voice("festival", "cmu_us_slt_arctic_hts", "cmu-slt", "hts")
    slow = _speech_seconds(*synthesize(slt, "seven", ClipParams(0.8, 50, 1.0), tmp_path)[:2])
    fast = _speech_seconds(*synthesize(slt, "seven", ClipParams(1.25, 50, 1.0), tmp_path)[:2])
    assert slow / fast > 1.2, "the HTS voice follows the speaking rate (it ignores Duration_Stretch)"
    assert _pitch_ratio(Voice("festival", "kal_diphone", "cmu-kal", "diphone", f0=105.0), 85.0, 140.0, tmp_path) > 1.3


@needs_festival
def test_a_crashing_engine_call_is_retried_at_another_speed(tmp_path: Path) -> None:
    if not any(Path("/usr/share/festival/voices").glob("*/pc_diphone/festvox")):
        pytest.skip("festvox-itapc16k not installed")
    pc = Voice("festival", "pc_diphone", "ifd-pc", "diphone", "it")
    x, sr, used = synthesize(pc, "no", ClipParams(1 / 1.3, 50, 1.0), tmp_path)  # festival crashes at stretch 1.3
    assert used.speed != round(1 / 1.3, 3) and x.size > 0.1 * sr
    with pytest.raises(EngineCrashError, match="status -11"):
        synthesize(pc, "no", ClipParams(1 / 1.3, 50, 1.0), tmp_path, retries=0)


@needs_festival
def test_accented_festival_voices_and_source_columns(tmp_path: Path) -> None:
    foreign = [n for n, v in FESTIVAL_VOICES.items() if v.language != "en" and any(
        Path("/usr/share/festival/voices").glob(f"*/{n}/festvox"))]  # fmt: skip
    if not foreign:
        pytest.skip("no accented festival voice installed (apt-get install festvox-czech-dita ...)")
    with pytest.raises(ValueError, match="unknown festival voice"):
        list_voices(["festival"], festival_voices=["nope"])
    root = tmp_path / "kw"
    result = build_keywords(root, words=["yes"], engines=["espeak-ng", "festival"], num_espeak_voices=4,
                            festival_voices=[foreign[0], "kal_diphone"], espeak_random=2, val_speakers=1,
                            test_speakers=1, clips_per_voice={"festival": 2}, noise_seconds=0, jobs=2)  # fmt: skip
    _, rows = _read_layout(root)
    assert result.total == len(rows) == 4 + 2 + 2 * 2
    by_voice = {r["voice"]: r for r in rows}
    assert by_voice[foreign[0]]["language"] == FESTIVAL_VOICES[foreign[0]].language != "en"
    assert by_voice["kal_diphone"]["method"] == "diphone" and by_voice["kal_diphone"]["language"] == "en"
    assert sum("+arx" in r["voice"] and r["method"] == "formant" for r in rows) == 2
    assert sum(r["voice"] == "kal_diphone" for r in rows) == 2 and "f0=" in by_voice["kal_diphone"]["params"]
    test = get_manifest("speech_commands_v2", root, "training").records
    assert {r.value("method") for r in test} <= {"formant", "diphone"} and all(r.value("language") for r in test)


@pytest.mark.parametrize("name", ["TimGM6mb", "CsoundGM"])
def test_other_soundfont_families(tmp_path: Path, name: str) -> None:
    path, package, family = SOUNDFONTS[name]
    if shutil.which("fluidsynth") is None or not Path(path).is_file():
        pytest.skip(f"fluidsynth or {name} not installed (apt-get install fluidsynth {package})")
    assert family != SOUNDFONTS["FluidR3Mono_GM"][2]
    root = tmp_path / "ns"
    build_instruments(root, soundfonts=[name], grid=NoteGrid(programs=(0, 40), velocities=(100,), pitch_step=12), jobs=2)
    records = [r for s in ("training", "validation", "testing") for r in get_manifest("nsynth", root, s).records]
    assert records and {(r.value("soundfont"), r.value("soundfont_family")) for r in records} == {(name, family)}
