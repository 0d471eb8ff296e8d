"""Long epochs (issue 22, item 9): a checkpoint inside an epoch that ``--resume`` continues exactly, a plain
progress line during an epoch when there is no progress bar, and BatchNorm never frozen from scratch."""

from __future__ import annotations

import logging

import pytest
import torch

import arinext.train.trainer as trainer
from arinext.checkpoints import load_checkpoint
from arinext.train import load_config
from arinext.train.trainer import fit

from .test_train_resume import assert_same_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RECIPE = [
    "model=audio_rep_inception_next_tiny",
    "data.dataset=synthetic",
    "data.dataset_args={num_classes: 4, clips_per_class: 8}",
    "data.frontend={num_frames: 32, n_mels: 32}",
    "data.batch_size=4",
    "data.num_workers=0",
    "optim.epochs=2",
    "optim.lr=0.05",
    "optim.lr_steps=[1]",
    "optim.lr_factors=[0.1]",
    "precise_bn_batches=2",
    "export_pretrained=false",
    "device=cpu",
]


class Interrupted(Exception):
    pass


def test_checkpoint_inside_an_epoch_resumes_exactly(tmp_path, monkeypatch, caplog):
    cfg = load_config("vggsound", [*RECIPE, "checkpoint_steps=3", "log_every_seconds=0.000001"])
    with caplog.at_level(logging.INFO, logger="arinext"):
        fit(cfg, tmp_path / "full", progress=False)
    # no progress bar: a plain line per step here (every log_every_seconds), with the step and the epoch's size
    assert "epoch 1: step 3/8, " in caplog.text and "clips/s, loss " in caplog.text

    real_save = trainer.save_checkpoint

    def save_then_die(state, path):  # the process dies right after the first checkpoint inside epoch 2
        real_save(state, path)
        if state.get("partial") and state["epoch"] == 1:
            raise Interrupted

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_die)
    with pytest.raises(Interrupted):
        fit(cfg, tmp_path / "crash", progress=False)
    monkeypatch.setattr(trainer, "save_checkpoint", real_save)
    mid = load_checkpoint(tmp_path / "crash" / "last.pt")
    assert mid["epoch"] == 1 and mid["partial"][0]["step"] == 3 and len(mid["history"]) == 1
    fit(cfg, tmp_path / "crash", resume=True, progress=False)
    full, resumed = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "crash" / "last.pt")
    assert resumed["epoch"] == 2 and "partial" not in resumed
    assert_same_run(full, resumed)  # the same weights and epoch rows (loss and accuracy of the resumed epoch too)


def test_recipes_do_not_freeze_batchnorm_from_scratch(caplog):
    for name in ("epic_sounds", "epic_kitchens_100"):
        assert not load_config(name).freezes_bn()
        assert load_config(name, ["init_from=runs/vggsound/best.pt"]).freezes_bn()
    cfg = load_config("epic_sounds", ["model=audio_rep_inception_next_tiny", "optim.freeze_bn=true"])
    assert not cfg.freezes_bn()
    with caplog.at_level(logging.INFO, logger="arinext"):
        model = trainer._build_model(cfg, 44, None, init=True)
    assert all(p.requires_grad for p in model.parameters())
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.weight.requires_grad for m in bns)
    assert "optim.freeze_bn=true is for fine-tuning" in caplog.text and "no init_from" in caplog.text
