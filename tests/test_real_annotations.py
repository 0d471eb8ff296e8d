"""The paper's datasets with their publishers' own annotation files (tests/fixtures/annotations): every
adapter parses the real files, the class and clip counts are the published ones, and each problem row (a
missing file, an unknown label, a repeated clip, an EPIC segment past the end of its audio) is an error or
a counted warning.

Audio is generated at the paths the rows name: one short WAV hard-linked everywhere, and an HDF5 file
whose per-video datasets have the videos' real lengths (EPIC_100_video_info.csv) but store nothing (chunks
never written read back as a constant), so that the rows past the end of their audio exist as in the
real data. Whole files are parsed; only a sample of clips is decoded.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
import zipfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest
import torch

from arinext.audio import get_preset
from arinext.cli import main
from arinext.data import AudioClipDataset, get_manifest
from arinext.data.manifests.epic import HDF5_FILE
from arinext.data.vocab import SPEECH_COMMANDS_V2_WORDS, VGGSOUND_CLASSES
from arinext.utils.errors import ConfigError, DataError

from .test_data_fakes import write_audio

FIX = Path(__file__).parent / "fixtures" / "annotations"
# A small, fast front end for the clips these tests decode (8 kHz, 32 frames of 32 mel bands).
SMALL = {"sample_rate": 8000, "n_fft": 256, "win_ms": 10.0, "hop_ms": 5.0, "num_frames": 32, "clip_seconds": 0.155,
         "n_mels": 32}  # fmt: skip
SMALL_SET = "data.frontend={" + ", ".join(f"{k}: {v}" for k, v in SMALL.items()) + "}"
TINY_RUN = ["model=audio_rep_inception_next_tiny", SMALL_SET, "data.num_workers=0", "data.test_views=1"]


def sets(*overrides: str) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def unpack(src: Path, dest: Path) -> Path:
    """Copy a fixture to ``dest``, decompressing ``.gz``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix == ".gz":
        with gzip.open(src, "rb") as fh:
            dest.write_bytes(fh.read())
    else:
        shutil.copyfile(src, dest)
    return dest


def link_audio(paths: Iterable[Path], seconds: float = 0.2) -> int:
    """One short WAV at the first path, hard links to it at the others; returns the number of paths."""
    first, folders, n = None, set(), 0
    for p in paths:
        if p.parent not in folders:
            p.parent.mkdir(parents=True, exist_ok=True)
            folders.add(p.parent)
        if first is None:
            first = write_audio(p, seconds=seconds)
        else:
            os.link(first, p)
        n += 1
    return n


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def decode_sample(records: list, preset: str, n: int = 3) -> None:
    """Decode ``n`` records through the dataset (one test view each): finite log-mels of the small front end."""
    ds = AudioClipDataset(records[:n], get_preset(preset, **SMALL), training=False)
    for i in range(len(ds)):
        x = ds[i]["inputs"]
        assert x.shape == (1, SMALL["num_frames"], SMALL["n_mels"]) and bool(torch.isfinite(x).all())


def video_lengths() -> dict[str, float]:
    return {r["video_id"]: float(r["duration"]) for r in read_rows(FIX / "epic_kitchens_100" / "EPIC_100_video_info.csv")}


def write_hdf5(path: Path, lengths: dict[str, float], rate: int = 24000) -> Path:
    """One int16 dataset per video, ``lengths`` seconds long, no chunk written (reads back as 1: near silence)."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        for vid, seconds in lengths.items():
            n = int(round(seconds * rate))
            f.create_dataset(vid, shape=(n,), dtype="int16", chunks=(min(n, 1 << 16),), fillvalue=1)
    return path


EPIC_FILES = {
    "epic_sounds/EPIC_Sounds_validation.csv.gz": "EPIC_Sounds_validation.csv",
    "epic_sounds/EPIC_Sounds_recognition_test_timestamps.csv.gz": "EPIC_Sounds_recognition_test_timestamps.csv",
    "epic_kitchens_100/EPIC_100_validation.csv.gz": "EPIC_100_validation.csv",
    "epic_kitchens_100/EPIC_100_test_timestamps.csv.gz": "EPIC_100_test_timestamps.csv",
    # EPIC_100_train.csv is stored with Git LFS: the UDA source-train CSV has its columns and stands in for it
    "epic_kitchens_100/EPIC_100_uda_source_train.csv.gz": "EPIC_100_train.csv",
    "epic_kitchens_100/EPIC_100_verb_classes.csv": "EPIC_100_verb_classes.csv",
    "epic_kitchens_100/EPIC_100_noun_classes.csv": "EPIC_100_noun_classes.csv",
}


@pytest.fixture(scope="module")
def epic_root(tmp_path_factory) -> Path:
    """The EPIC annotation files and an HDF5 file with the real length of each of the 700 videos."""
    root = tmp_path_factory.mktemp("epic")
    for src, name in EPIC_FILES.items():
        unpack(FIX / src, root / name)
    write_hdf5(root / HDF5_FILE, video_lengths())
    return root


def test_urbansound8k_real_metadata(tmp_path, caplog):
    root = tmp_path / "UrbanSound8K"
    rows = read_rows(unpack(FIX / "urbansound8k" / "UrbanSound8K.csv.gz", root / "metadata" / "UrbanSound8K.csv"))
    assert link_audio(root / "audio" / f"fold{r['fold']}" / r["slice_file_name"] for r in rows) == 8732
    per_fold = Counter(int(r["fold"]) for r in rows)
    assert per_fold == {1: 873, 2: 888, 3: 925, 4: 990, 5: 936, 6: 823, 7: 838, 8: 806, 9: 816, 10: 837}
    for fold in range(1, 11):
        test = get_manifest("urbansound8k", root, "testing", fold=fold)
        train = get_manifest("urbansound8k", root, "training", fold=fold)
        assert (len(test), len(train)) == (per_fold[fold], 8732 - per_fold[fold])
        assert {r.group for r in test.records} == {f"fold{fold}"}
    assert test.num_classes == 10 and {r.target for r in train.records + test.records} == set(range(10))
    decode_sample(test.records, "urbansound8k")

    # a row naming a file that is not there: one counted warning (kept), left out, or an error naming the row
    (root / "audio" / "fold5" / "100032-3-0-0.wav").unlink()
    with caplog.at_level("WARNING", logger="arinext"):
        assert len(get_manifest("urbansound8k", root, "testing", fold=5)) == 936
    assert "1 of 936 rows name an audio file that does not exist: " in caplog.text
    assert "UrbanSound8K.csv row 2: " in caplog.text and "missing=warn|drop|error" in caplog.text
    assert len(get_manifest("urbansound8k", root, "testing", fold=5, missing="drop")) == 935
    with pytest.raises(DataError, match=r"UrbanSound8K.csv row 2: .*fold5/100032-3-0-0.wav"):
        get_manifest("urbansound8k", root, "testing", fold=5, missing="error")


def test_speech_commands_v2_real_lists(tmp_path, caplog):
    root = tmp_path / "speech_commands_v0.02"
    lists = {
        name: unpack(FIX / "speech_commands_v2" / f"{name}_list.txt.gz", root / f"{name}_list.txt").read_text().split()
        for name in ("validation", "testing")
    }
    assert (len(lists["validation"]), len(lists["testing"])) == (9981, 11005)
    training = [f"{w}/ffffffff_nohash_0.wav" for w in SPEECH_COMMANDS_V2_WORDS]  # one training clip per word
    link_audio(root / entry for entry in lists["validation"] + lists["testing"] + training)
    m = {s: get_manifest("speech_commands_v2", root, s) for s in ("training", "validation", "testing")}
    assert {s: len(v) for s, v in m.items()} == {"training": 35, "validation": 9981, "testing": 11005}
    assert m["testing"].labels == SPEECH_COMMANDS_V2_WORDS
    assert {m["testing"].labels[r.target] for r in m["testing"].records} == set(SPEECH_COMMANDS_V2_WORDS)
    decode_sample(m["validation"].records, "speech_commands_v2")

    # a listed clip without its file: one counted warning naming the list row, or an error
    (root / lists["testing"][-1]).unlink()
    with caplog.at_level("WARNING", logger="arinext"):
        assert len(get_manifest("speech_commands_v2", root, "testing")) == 11004
    assert "1 of 11005 rows of the testing list name no audio file: " in caplog.text
    assert "testing_list.txt row 11005: " in caplog.text
    with pytest.raises(DataError, match="testing_list.txt row 11005"):
        get_manifest("speech_commands_v2", root, "testing", missing="error")


def test_epic_sounds_real_files_and_segments_past_the_audio(epic_root, caplog):
    with caplog.at_level("WARNING", logger="arinext"):
        val = get_manifest("epic_sounds", epic_root, "validation")
    # issue 22 item 8: stop times beyond the audio's end are counted and reported, not clamped silently
    assert "21 of 8035 rows stop after their video's audio ends (by up to 0.277 s): " in caplog.text
    assert len(val) == 8035 and val.num_classes == 44 and val.labelled
    assert {r.target for r in val.records} == set(range(44))
    assert val.labels[4] == "rustle" and val.labels[34] == "ceramic / wood collision"
    assert val.records[0].value("annotation_id") == "P01_11_0"
    caplog.clear()
    with caplog.at_level("WARNING", logger="arinext"):
        test = get_manifest("epic_sounds", epic_root, "testing")
    assert len(test) == 5131 and not test.labelled and {r.target for r in test.records} == {-1}
    assert "19 of 5131 rows stop after their video's audio ends (by up to 691.080 s): " in caplog.text
    assert test.labels == val.labels  # the class names come from the labelled CSVs
    with pytest.raises(DataError, match=r"19 of 5131 rows stop after .*test_timestamps.csv row \d+: P\d+_\d+_\d+ stops "
                       r"at [\d.]+ s, the audio of P\d+_\d+ lasts [\d.]+ s.*past_end=warn\|error"):  # fmt: skip
        get_manifest("epic_sounds", epic_root, "testing", past_end="error")
    # the segment 691 s past its audio's end is read up to the end
    lengths = video_lengths()
    worst = max(test.records, key=lambda r: r.end - lengths[r.key])
    decode_sample([worst, *val.records[:2]], "epic_sounds")


def test_epic_videos_missing_from_the_hdf5_are_counted(epic_root, caplog):
    lengths = video_lengths()
    rows = read_rows(epic_root / "EPIC_Sounds_recognition_test_timestamps.csv")
    videos = {r["video_id"] for r in rows}
    write_hdf5(epic_root / "partial.hdf5", {v: lengths[v] for v in sorted(videos)[1:]})
    absent = sum(r["video_id"] == sorted(videos)[0] for r in rows)
    with caplog.at_level("WARNING", logger="arinext"):
        assert len(get_manifest("epic_sounds", epic_root, "testing", hdf5_file="partial.hdf5")) == 5131
    assert f"{absent} of 5131 rows name a video that " in caplog.text and "partial.hdf5 does not hold" in caplog.text
    kept = get_manifest("epic_sounds", epic_root, "testing", hdf5_file="partial.hdf5", missing="drop")
    assert len(kept) == 5131 - absent
    with pytest.raises(DataError, match=f"{absent} of 5131 rows name a video"):
        get_manifest("epic_sounds", epic_root, "testing", hdf5_file="partial.hdf5", missing="error")


def test_epic_kitchens_100_real_files(epic_root, caplog):
    with caplog.at_level("WARNING", logger="arinext"):
        val = get_manifest("epic_kitchens_100", epic_root, "validation")
        test = get_manifest("epic_kitchens_100", epic_root, "testing")
        train = get_manifest("epic_kitchens_100", epic_root, "training")
    assert val.num_classes == {"verb": 97, "noun": 300}
    assert val.labels["verb"][0] == "take" and val.labels["noun"][0] == "tap"
    assert (len(val), len(test), len(train)) == (9668, 13092, 16115)
    assert not test.labelled and test.records[0].value("narration_id") == "P01_101_0"
    assert "1 of 9668 rows stop after their video's audio ends" in caplog.text
    present = train.present_labels()
    assert (len(present["verb"]), len(present["noun"])) == (86, 219)  # the UDA training split lacks 11 and 81
    decode_sample(val.records, "epic_kitchens_100")


def test_epic_kitchens_100_trains_with_classes_missing_from_the_training_split(epic_root, caplog):
    """Issue 22 item 1: the published class lists are kept, one warning names the classes without clips."""
    from arinext.train.config import DataConfig
    from arinext.train.data import build_dataset, check_trainable

    data = DataConfig(dataset="epic_kitchens_100", root=str(epic_root), frontend=SMALL, num_workers=0)
    train = build_dataset(data, "training", training=True)
    val = build_dataset(data, "validation", training=False)
    with caplog.at_level("WARNING", logger="arinext"):
        check_trainable(train, val)
    warned = [r.message for r in caplog.records if "classes without training clips" in r.message]
    assert len(warned) == 1
    verbs = {int(r["verb_class"]) for r in read_rows(epic_root / "EPIC_100_train.csv")}
    missing = [train.labels["verb"][i] for i in range(97) if i not in verbs]
    assert f"verb: 11 of 97 ({', '.join(missing)})" in warned[0] and "noun: 81 of 300 (" in warned[0]
    test = build_dataset(data, "testing", training=False)
    with pytest.raises(DataError, match="the testing subset is unlabelled"):
        check_trainable(test, val)


def test_metrics_cover_the_classes_with_clips(epic_root):
    """The real validation split has 78 of the 97 verbs: per-class metrics of the other 19 are empty (not NaN),
    and the means are over the classes with clips."""
    from arinext.train.tasks import MultiHeadTask

    rows = read_rows(epic_root / "EPIC_100_validation.csv")
    target = {h: torch.tensor([int(r[f"{h}_class"]) for r in rows]) for h in ("verb", "noun")}
    g = torch.Generator().manual_seed(0)
    scores = {h: torch.rand(len(rows), n, generator=g).softmax(-1) for h, n in (("verb", 97), ("noun", 300))}
    labels = {h: [f"{h}{i}" for i in range(n)] for h, n in (("verb", 97), ("noun", 300))}
    result = MultiHeadTask(labels).evaluate(scores, target)
    verbs = set(target["verb"].tolist())
    assert result.summary["verb_classes_with_clips"] == len(verbs) == 78
    assert result.summary["noun_classes_with_clips"] == len(set(target["noun"].tolist())) == 211
    assert all(v == v for v in result.summary.values())  # no NaN
    table = result.per_class["verb"]
    assert all((r["accuracy"] is None) == (r["support"] == 0) for r in table)
    accuracies = [r["accuracy"] for r in table if r["support"]]
    assert result.summary["verb_mean_class_acc"] == pytest.approx(sum(accuracies) / 78)


def _small_epic_root(epic_root: Path, dest: Path, rows_per_file: dict[str, int]) -> Path:
    """The first rows of some of the real CSVs (header unchanged), the class files, and an HDF5 file of their
    videos at their real lengths."""
    videos: set[str] = set()
    for name, n in rows_per_file.items():
        with open(epic_root / name, newline="") as src:
            lines = src.readlines()[: n + 1]
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_text("".join(lines))
        videos |= {r["video_id"] for r in read_rows(dest / name)}
    for name in ("EPIC_100_verb_classes.csv", "EPIC_100_noun_classes.csv", "EPIC_Sounds_validation.csv"):
        if name not in rows_per_file:
            shutil.copyfile(epic_root / name, dest / name)
    lengths = video_lengths()
    write_hdf5(dest / HDF5_FILE, {v: lengths[v] for v in videos})
    return dest


def test_epic_kitchens_100_run_reports_metrics_of_supported_classes_only(epic_root, tmp_path):
    """A run on real rows whose training split lacks classes: it trains, and the evaluation scores per class only
    the classes with clips (empty cells, not NaN, for the others; means over the classes that have clips)."""
    root = _small_epic_root(epic_root, tmp_path / "epic", {"EPIC_100_train.csv": 24, "EPIC_100_validation.csv": 16})
    out = tmp_path / "run"
    args = ["train", "epic_kitchens_100", "--out", str(out), "-q"]
    recipe = [*TINY_RUN, f"data.root={root}", "data.batch_size=8", "optim.epochs=1", "precise_bn_batches=0",
              "export_pretrained=false"]  # fmt: skip
    assert main(args + sets(*recipe)) == 0
    row = read_rows(out / "log.csv")[-1]
    val_rows = read_rows(root / "EPIC_100_validation.csv")
    assert int(row["val_verb_classes_with_clips"]) == len({r["verb_class"] for r in val_rows})
    assert 0.0 <= float(row["val_verb_mean_class_acc"]) <= 1.0 and 0.0 <= float(row["val_noun_mAP"]) <= 1.0
    assert main(["eval", str(out), "--out", str(tmp_path / "val"), "--subset", "validation", "-q"]) == 0
    metrics = json.loads((tmp_path / "val" / "metrics.json").read_text())["fused"]
    assert metrics["noun_classes_with_clips"] == len({r["noun_class"] for r in val_rows})
    table = read_rows(tmp_path / "val" / "per_class_noun.csv")
    assert len(table) == 300
    for r in table:
        scored = int(r["support"]) > 0
        assert (r["accuracy"] != "") == scored and "nan" not in r.values()


@pytest.mark.parametrize(
    ("dataset", "csv_name", "rows", "challenge", "heads"),
    [
        ("epic_sounds", "EPIC_Sounds_recognition_test_timestamps.csv", 12, "audio_based_interaction_recognition",
         {"interaction": 44}),
        ("epic_kitchens_100", "EPIC_100_test_timestamps.csv", 12, "action_recognition", {"verb": 97, "noun": 300}),
    ],
)  # fmt: skip
def test_eval_on_an_unlabelled_test_split_writes_the_challenge_submission(
    epic_root, tmp_path, dataset, csv_name, rows, challenge, heads
):
    """Issue 22 item 2: real test-timestamp rows give a submission in the challenge's format, not a crash."""
    import arinext

    root = _small_epic_root(epic_root, tmp_path / "epic", {csv_name: rows})
    labels = get_manifest(dataset, root, "testing").labels
    # the model's classes in another order: the submission maps them back to the dataset's ids by name
    model_labels = {h: names[::-1] for h, names in labels.items()} if isinstance(labels, dict) else labels[::-1]
    num = {h: len(v) for h, v in labels.items()} if isinstance(labels, dict) else len(labels)
    model = arinext.create_model("audio_rep_inception_next_tiny", num_classes=num).eval()
    arinext.save_pretrained(model, tmp_path / "model", labels=model_labels)
    out = tmp_path / "test"
    argv = ["eval", str(tmp_path / "model"), "--out", str(out), "-q"]
    assert main(argv + sets(*TINY_RUN, f"data.dataset={dataset}", f"data.root={root}")) == 0
    with zipfile.ZipFile(out / "submission.zip") as zf:
        assert zf.namelist() == ["test.json"]
        sub = json.loads(zf.read("test.json"))
    assert sub["challenge"] == challenge and (sub["sls_pt"], sub["sls_tl"], sub["sls_td"]) == (0, 3, 3)
    assert sub["version"] == ("0.1" if dataset == "epic_sounds" else "0.2")
    assert sub.get("t_mod") == (0 if dataset == "epic_sounds" else None)
    id_column = "annotation_id" if dataset == "epic_sounds" else "narration_id"
    assert list(sub["results"]) == [r[id_column] for r in read_rows(root / csv_name)]
    for entry in sub["results"].values():
        assert {k: len(v) for k, v in entry.items()} == heads
        for scores in entry.values():
            assert list(scores) == [str(i) for i in range(len(scores))]
            assert abs(sum(scores.values()) - 1.0) < 1e-4
    assert json.loads((out / "metrics.json").read_text())["rows"] == rows
    assert main(argv + ["--sls", "2,3,4"] + sets(*TINY_RUN, f"data.dataset={dataset}", f"data.root={root}")) == 0
    with zipfile.ZipFile(out / "submission.zip") as zf:
        assert json.loads(zf.read("test.json"))["sls_td"] == 4


def test_submission_scores_follow_the_dataset_class_ids():
    from arinext.data import ClipRecord, Manifest
    from arinext.train.submission import make_submission, parse_sls

    recs = [ClipRecord("a.hdf5", -1, 0.0, 1.0, "P01_01", meta=(("annotation_id", f"P01_01_{i}"),)) for i in range(2)]
    manifest = Manifest(recs, ["water", "click", "rustle"], labelled=False)
    scores = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])  # columns: the model's order below
    sub = make_submission("epic_sounds", manifest, scores, torch.tensor([1, 0]), ["rustle", "water", "click"], (0, 3, 3))
    assert sub["results"]["P01_01_1"]["interaction"] == {"0": 0.2, "1": 0.1, "2": 0.7}
    assert sub["results"]["P01_01_0"]["interaction"] == {"0": 0.3, "1": 0.6, "2": 0.1}
    with pytest.raises(DataError, match="not the dataset's 3 classes"):
        make_submission("epic_sounds", manifest, scores, torch.tensor([0, 1]), ["rustle", "water", "tap"], (0, 3, 3))
    with pytest.raises(DataError, match="no challenge submission format"):
        make_submission("vggsound", manifest, scores, torch.tensor([0, 1]), ["rustle", "water", "click"], (0, 3, 3))
    with pytest.raises(ConfigError, match="three supervision levels"):
        parse_sls("2,3,6")


def test_a_registered_recipe_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch, capsys):
    """Issue 22 item 5: ``arinext train vggsound`` in a folder that holds a ``vggsound/`` dataset folder."""
    from arinext.train.config import load_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "vggsound").mkdir()
    (tmp_path / "mydata").mkdir()
    assert load_config("vggsound", ["data.root=vggsound"]).data.dataset == "vggsound"
    with pytest.raises(ConfigError, match="unknown recipe 'mydata': a folder, not a recipe file, and not one of"):
        load_config("mydata")
    (tmp_path / "mine.yaml").write_text("model: audio_rep_inception_next_tiny\ndata: {dataset: vggsound}\n")
    assert load_config("mine.yaml").model == "audio_rep_inception_next_tiny"
    assert main(["train", "mydata", "--out", str(tmp_path / "run")]) == 2
    assert "unknown recipe 'mydata': a folder, not a recipe file" in capsys.readouterr().err


@pytest.fixture(scope="module")
def vggsound_test(tmp_path_factory) -> tuple[Path, list[list[str]]]:
    """The repository layout: data/test.csv, data/stat.csv, and a file for each of the 15,446 test clips."""
    root = tmp_path_factory.mktemp("vggsound")
    test_csv = unpack(FIX / "vggsound" / "test.csv.gz", root / "data" / "test.csv")
    unpack(FIX / "vggsound" / "stat.csv", root / "data" / "stat.csv")
    with open(test_csv, newline="") as fh:
        rows = list(csv.reader(fh))
    link_audio(root / "audio" / (name.rsplit(".", 1)[0] + ".wav") for name, _ in rows)
    return root, rows


def test_vggsound_split_files_and_class_list(vggsound_test):
    root, rows = vggsound_test
    with open(root / "data" / "stat.csv", newline="") as fh:
        stat = list(csv.reader(fh))
    assert (len(stat), sum(int(r[1]) for r in stat)) == (309, 199176)
    test = get_manifest("vggsound", root, "testing")  # finds data/{split}.csv
    assert len(test) == 15446 == len(rows) and test.labels == VGGSOUND_CLASSES
    assert len({r.target for r in test.records}) == 309
    assert get_manifest("vggsound", root, "testing", classes_file="data/stat.csv").labels == sorted(r[0] for r in stat)
    first = test.records[0]
    assert Path(first.path).name == rows[0][0].replace(".mp4", ".wav") and test.labels[first.target] == rows[0][1]
    decode_sample(test.records, "vggsound")
    with pytest.raises(ConfigError, match=r"no split column.*\{split\}"):
        get_manifest("vggsound", root, "testing", csv_file="data/test.csv")


def _write_vggsound_csv(path: Path, rows: list[list[str]]) -> Path:
    """The dataset's vggsound.csv form (youtube_id,start_seconds,label,split) of split-file rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for name, label in rows:
        ytid, _, start = name.rsplit(".", 1)[0].rpartition("_")
        out.append([ytid, str(int(start)), label, "test"])
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(out)
    return path


def test_vggsound_labels_are_checked_and_repeated_rows_kept_once(vggsound_test, tmp_path, caplog):
    """Issue 22 item 6: a misspelt label is an error naming the row (not class 310); repeated rows warn."""
    root, rows = vggsound_test
    misspelt = [list(r) for r in rows]
    n = next(i for i, r in enumerate(misspelt) if r[1] == "dog barking")
    misspelt[n][1] = "dog barkng"
    _write_vggsound_csv(root / "vggsound.csv", misspelt)
    try:
        with pytest.raises(DataError, match=rf"vggsound.csv row {n + 1}: label 'dog barkng' is not in the label list "
                           r"\(309 labels: .*did you mean 'dog barking'"):  # fmt: skip
            get_manifest("vggsound", root, "testing")
        # the public vggsound.csv lists some clips twice (291 rows more than the split files): keep one of each
        _write_vggsound_csv(root / "vggsound.csv", rows + rows[:291])
        with caplog.at_level("WARNING", logger="arinext"):
            test = get_manifest("vggsound", root, "testing")
        assert len(test) == 15446 and test.num_classes == 309
        assert "291 of 15737 rows repeat an earlier row: " in caplog.text and "vggsound.csv row 15447: " in caplog.text
    finally:
        (root / "vggsound.csv").unlink()


def test_vggsound_name_format_with_a_sub_folder(vggsound_test, tmp_path, caplog):
    """Issue 22 item 6: files under per-prefix sub-folders are found, not reported missing."""
    _, rows = vggsound_test
    root = tmp_path / "vgg"
    sample = rows[:500]
    _write_vggsound_csv(root / "vggsound.csv", rows)
    link_audio(root / "audio" / name[:2] / name.replace(".mp4", ".flac") for name, _ in sample)
    with caplog.at_level("WARNING", logger="arinext"):
        test = get_manifest("vggsound", root, "testing", name_format="{ytid:.2}/{ytid}_{start:06d}.flac")
    assert len(test) == 500 and Path(test.records[0].path).parent.name == rows[0][0][:2]
    assert f"{15446 - 500} of 15446 rows of the test split name an audio file that does not exist" in caplog.text
