"""End to end: train on generated tones through the ``folder`` adapter, evaluate both forms, fine-tune."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

import arinext
from arinext import create_model
from arinext.checkpoints.training import load_checkpoint
from arinext.cli import main
from arinext.train.trainer import load_init_weights

SR = 8000
TONES = {"low": 300.0, "mid": 1200.0, "high": 3000.0}
COUNTS = {"training": 12, "validation": 4, "testing": 6}
# A small front end so that the test runs in seconds: 0.319 s at 8 kHz -> 32 frames x 32 mel bins.
FRONTEND = "{sample_rate: 8000, n_fft: 256, clip_seconds: 0.319, num_frames: 32, n_mels: 32, test_views: 2}"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_tones(root: Path, seed: int = 0) -> Path:
    """root/<subset>/<class>/<i>.wav: noisy tones whose pitch is the class, 0.4-0.6 s long."""
    rng = np.random.default_rng(seed)
    for subset, n in COUNTS.items():
        for name, freq in TONES.items():
            folder = root / subset / name
            folder.mkdir(parents=True)
            for i in range(n):
                t = np.arange(int(SR * rng.uniform(0.4, 0.6))) / SR
                f = freq * rng.uniform(0.9, 1.1)
                x = rng.uniform(0.2, 0.5) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))
                x += 0.05 * rng.standard_normal(len(t))
                sf.write(folder / f"{i}.wav", x.astype(np.float32), SR)
    return root


def common(root: Path) -> list[str]:
    sets = [
        "model=audio_rep_inception_next_tiny",
        f"data.root={root}",
        f"data.frontend={FRONTEND}",
        "data.batch_size=12",
        "data.num_workers=0",
        "data.spec_augment=false",
        "precise_bn_batches=3",
    ]
    return [a for s in sets for a in ("--set", s)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_torch_thread) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("e2e")
    root = make_tones(tmp / "tones")
    out = tmp / "run"
    schedule = ["optim.lr=0.05", "optim.epochs=8", "optim.lr_steps=[6]", "optim.lr_factors=[0.1]",
                "optim.freeze_bn=false"]  # fmt: skip
    args = ["train", "folder", "--out", str(out), "--quiet", *common(root)]
    assert main(args + [a for s in schedule for a in ("--set", s)]) == 0
    return root, out


def test_training_learns_the_tones(trained):
    _, out = trained
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["labels"] == sorted(TONES) and ckpt["num_classes"] == 3
    assert ckpt["history"][-1]["val_top1"] >= 0.75
    assert {"log.csv", "curves.png", "config.yaml", "last.pt"} <= {p.name for p in out.iterdir()}
    assert (out / "pretrained").is_dir()


def test_eval_reports_both_forms_equal_and_well_above_chance(trained):
    _, out = trained
    report = out / "eval"
    assert main(["eval", str(out / "best.pt"), "--out", str(report), "--quiet"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["views"] == 2 and metrics["clips"] == 3 * COUNTS["testing"]
    assert metrics["training_form"]["top1"] >= 0.8  # chance is 1/3
    assert metrics["fused"]["top1"] == metrics["training_form"]["top1"]
    assert metrics["max_abs_prob_diff"] < 1e-4
    assert {"confusion.png", "per_class.csv"} <= {p.name for p in report.iterdir()}
    table = (report / "per_class.csv").read_text().splitlines()
    assert table[0].startswith("class,support,accuracy") and len(table) == 4


def test_finetune_from_checkpoint_with_frozen_bn(trained):
    root, out = trained
    ft = out.parent / "ft"
    sets = [f"init_from={out / 'best.pt'}", "optim.epochs=1", "optim.lr=0.01", "optim.lr_steps=[]",
            "optim.lr_factors=[]", "export_pretrained=false"]  # fmt: skip
    args = ["train", "folder", "--out", str(ft), "--quiet", *common(root)]
    assert main(args + [a for s in sets for a in ("--set", s)]) == 0
    before, after = load_checkpoint(out / "best.pt")["model"], load_checkpoint(ft / "last.pt")["model"]
    for key in ("running_mean", "weight"):  # frozen BatchNorm: statistics and affine carried over unchanged
        deep = f"stages.1.blocks.0.mixer.head.bn.{key}"
        assert (before[deep] == after[deep]).all()
        assert not (before[f"stem.conv.bn.{key}"] == after[f"stem.conv.bn.{key}"]).all()
    assert not (
        before["stages.1.blocks.0.mixer.head.conv.weight"] == after["stages.1.blocks.0.mixer.head.conv.weight"]
    ).all()


def test_mismatched_backbone_is_refused(trained, tmp_path, capsys):
    root, out = trained
    args = ["train", "folder", "--out", str(tmp_path / "x"), "--quiet", *common(root),
            "--set", f"init_from={out / 'pretrained'}", "--set", "model_args={inference_mode: true}"]  # fmt: skip
    assert main(args) == 2
    assert "do not fit the model's backbone" in capsys.readouterr().err


def test_init_from_save_pretrained_directory(trained):
    _, out = trained
    torch.manual_seed(1)
    model = create_model("audio_rep_inception_next_tiny", num_classes=5)
    fresh_head = model.head.fc.weight.clone()
    assert load_init_weights(model, str(out / "pretrained")) > 0
    best = load_checkpoint(out / "best.pt")["model"]
    torch.testing.assert_close(model.stem.conv.conv.weight, best["stem.conv.conv.weight"])
    assert torch.equal(model.head.fc.weight, fresh_head)  # the 5-class head keeps its own initialisation


def test_init_from_authors_checkpoint(official_dir):
    path = official_dir / "small_unmerged.pyth"
    official = arinext.load_official_checkpoint(path)
    info = arinext.models.metadata(official)
    args = {k: v for k, v in info.args.items() if k != "num_classes"}
    model = create_model(info.name, num_classes=3, **args)
    load_init_weights(model, str(path))
    ref = official.state_dict()
    for k, v in model.state_dict().items():
        if not k.startswith("head."):
            torch.testing.assert_close(v, ref[k], msg=k)
    assert model.head.fc.out_features == 3


def test_plan_epochs_sets_the_schedule_after_the_first_epoch(tmp_path):
    """A time budget's plan: called once with the first epoch's seconds; steps and evaluation scale with it."""
    from arinext.train import fit, load_config

    root = make_tones(tmp_path / "tones")
    cfg = load_config({
        "model": "audio_rep_inception_next_tiny",
        "data": {"dataset": "folder", "root": str(root), "frontend": yaml_map(FRONTEND), "batch_size": 12,
                 "num_workers": 0, "spec_augment": False},
        "optim": {"lr": 0.05, "epochs": 12, "lr_steps": [6, 9], "lr_factors": [0.1, 0.01]},
        "eval_every": 4, "precise_bn_batches": 0, "device": "cpu",
    })  # fmt: skip
    seen: list[float] = []
    result = fit(cfg, tmp_path / "run", progress=False, plan_epochs=lambda s: seen.append(s) or 4)
    assert len(seen) == 1 and seen[0] > 0
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    assert all("val_top1" in row for row in result.history)  # eval_every 4 x 4/12 -> 1
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["optim"]["epochs"] == 4 and saved["optim"]["lr_steps"] == [2, 3] and saved["eval_every"] == 1
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 4
    # a plan asking for more than the recipe's epochs gets the recipe's epochs (the budget only shortens)
    cfg.optim.epochs, cfg.optim.lr_steps = 2, [1]
    assert len(fit(cfg, tmp_path / "run2", progress=False, plan_epochs=lambda s: 50).history) == 2


def yaml_map(text: str) -> dict:
    return yaml.safe_load(text)
