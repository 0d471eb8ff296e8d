"""Numbers are right or refused (issue: no silent wrong answers): classes from the data, labels matched by
name, every evaluated clip accounted for, data that cannot train refused before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arinext.checkpoints import load_checkpoint
from arinext.cli import main

from .test_data_fakes import make_speech_commands, write_audio

TINY = [
    "model=audio_rep_inception_next_tiny",
    "data.frontend={win_ms: 25.0, hop_ms: 10.0, n_mels: 32, num_frames: 51, clip_seconds: 0.5}",
    "data.batch_size=3",
    "data.num_workers=0",
    "optim.epochs=1",
    "optim.lr=0.05",
    "precise_bn_batches=0",
    "export_pretrained=false",
]


def sets(*overrides: str) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


@pytest.fixture(scope="module")
def words3(tmp_path_factory) -> tuple[Path, Path]:
    """A Speech Commands-layout build of three words, and a run of the speech_commands_v2 recipe on it."""
    root = make_speech_commands(tmp_path_factory.mktemp("sc") / "words3")
    out = root.parent / "run"
    assert main(["train", "speech_commands_v2", "--out", str(out), "-q", *sets(*TINY, f"data.root={root}")]) == 0
    return root, out


def test_recipe_head_has_the_classes_of_the_data(words3):
    _, out = words3
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["num_classes"] == 3 and ckpt["labels"] == ["no", "up", "yes"]  # not the 35 words of the recipe


def test_eval_counts_every_clip_or_refuses(words3, capsys):
    root, out = words3
    (root / "no" / "zz_bad.wav").write_text("not audio")  # a text file named .wav in the test split
    (root / "testing_list.txt").write_text((root / "testing_list.txt").read_text() + "no/zz_bad.wav\n")
    try:
        # default: evaluation stops at the bad clip and names it
        assert main(["eval", str(out), "--out", str(out / "e1"), "-q"]) == 2
        assert "zz_bad.wav" in capsys.readouterr().err
        # asked to skip: the skipped clip is counted, and `clips` is what was scored
        assert main(["eval", str(out), "--out", str(out / "e2"), "-q", "--set", "data.on_bad_clip=skip"]) == 0
        metrics = json.loads((out / "e2" / "metrics.json").read_text())
        assert metrics["clips"] == 3 and metrics["skipped_clips"] == 1 and "zz_bad.wav" in metrics["skipped_examples"][0]
        supports = [line.split(",")[1] for line in (out / "e2" / "per_class.csv").read_text().splitlines()[1:]]
        assert sum(map(int, supports)) == metrics["clips"]
    finally:
        (root / "no" / "zz_bad.wav").unlink()
        lines = (root / "testing_list.txt").read_text().splitlines()
        (root / "testing_list.txt").write_text("".join(f"{ln}\n" for ln in lines if "zz_bad" not in ln))


def test_eval_refuses_a_class_the_model_does_not_know(words3, capsys):
    root, out = words3
    write_audio(root / "left" / "spk1_nohash_0.wav", seconds=0.5)
    (root / "testing_list.txt").write_text((root / "testing_list.txt").read_text() + "left/spk1_nohash_0.wav\n")
    try:
        assert main(["eval", str(out), "--out", str(out / "e3"), "-q"]) == 2
        err = capsys.readouterr().err
        assert "1 class(es) with clips are not among the model's 3 labels: left" in err
    finally:
        import shutil

        shutil.rmtree(root / "left")
        lines = (root / "testing_list.txt").read_text().splitlines()
        (root / "testing_list.txt").write_text("".join(f"{ln}\n" for ln in lines if "left/" not in ln))


def test_a_one_class_folder_is_refused(tmp_path, capsys):
    for i in range(6):
        write_audio(tmp_path / "data" / "dog" / f"{i}.wav")
    code = main(["train", "folder", "--out", str(tmp_path / "run"), "-q", *sets(*TINY, f"data.root={tmp_path / 'data'}")])
    assert code == 2
    assert "only 1 class has training clips (dog); a classifier needs at least two" in capsys.readouterr().err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_a_class_without_training_clips_warns_and_an_empty_validation_split_is_refused(tmp_path, capsys, caplog):
    from arinext.train.config import load_config
    from arinext.train.data import build_dataset, check_trainable

    root = make_speech_commands(tmp_path / "sc")
    write_audio(root / "left" / "spk1_nohash_0.wav", seconds=0.5)  # only a test clip for "left"
    (root / "testing_list.txt").write_text((root / "testing_list.txt").read_text() + "left/spk1_nohash_0.wav\n")
    data = load_config("speech_commands_v2", [f"data.root={root}"]).data
    train, val = build_dataset(data, "training", training=True), build_dataset(data, "validation", training=False)
    with caplog.at_level("WARNING", logger="arinext"):
        check_trainable(train, val)  # the class list is kept: one warning names the class without clips
    assert "classes without training clips: 1 of 4 (left). Training with the whole class list" in caplog.text
    args = ["train", "speech_commands_v2", "--out", str(tmp_path / "r"), "-q", *sets(*TINY, f"data.root={root}")]
    (root / "validation_list.txt").write_text("")
    (root / "left" / "spk1_nohash_0.wav").unlink()
    (root / "testing_list.txt").write_text("yes/spk1_nohash_0.wav\n")
    assert main(args) == 2
    assert "the validation subset of 'speech_commands_v2' has no clips" in capsys.readouterr().err


def test_folder_adapter_does_not_count_background_noise_as_a_class(tmp_path):
    from arinext.data import get_manifest

    root = make_speech_commands(tmp_path / "sc")
    labels = get_manifest("folder", root, "training").labels
    assert "_background_noise_" not in labels and labels == ["no", "up", "yes"]
