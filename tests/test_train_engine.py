"""Engine pieces: weight-decay groups, BatchNorm freezing, Precise-BN, multi-view prediction."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from arinext import create_model
from arinext.checkpoints.training import load_checkpoint
from arinext.train.config import load_config
from arinext.data.synthetic import SyntheticSpectrograms
from arinext.train.engine import freeze_batchnorm, param_groups, precise_bn, predict, set_train_mode, train_one_epoch
from arinext.train.report import EpochLogger, plot_curves
from arinext.train.tasks import SingleLabelTask, make_task
from arinext.train.trainer import fit_folds

DEV = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(num_classes: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return create_model("audio_rep_inception_next_tiny", num_classes=num_classes)


def loader(views: int = 1, batch: int = 8, clips: int = 4):
    ds = SyntheticSpectrograms(4, clips, num_frames=32, n_mels=32, views=views)
    return torch.utils.data.DataLoader(ds, batch_size=batch)


def test_no_weight_decay_on_batchnorm_and_bias():
    model = tiny()
    decay, no_decay = param_groups(model, 1e-4)
    bn_params = {id(p) for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()}
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    assert not any(id(p) in bn_params or p.dim() == 1 for p in decay["params"])
    assert bn_params <= {id(p) for p in no_decay["params"]}
    assert id(model.head.fc.bias) in {id(p) for p in no_decay["params"]}
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_frozen_batchnorm_keeps_stats_and_affine_but_stem_trains():
    model = tiny()
    n = freeze_batchnorm(model)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert n == len(bns) - 1
    stem = model.stem.conv.bn
    before = {id(m): (m.running_mean.clone(), m.weight.clone()) for m in bns}
    opt = torch.optim.SGD(param_groups(model, 1e-4)[0]["params"] + param_groups(model, 1e-4)[1]["params"], lr=0.1)
    train_one_epoch(model, loader(), opt, SingleLabelTask(num_classes=4), DEV, freeze_bn=True, progress=False)
    for m in bns:
        mean, weight = before[id(m)]
        if m is stem:
            assert m.training and not torch.equal(m.running_mean, mean) and not torch.equal(m.weight, weight)
        else:
            assert not m.training and torch.equal(m.running_mean, mean) and torch.equal(m.weight, weight)
            assert not m.weight.requires_grad


def test_precise_bn_is_the_plain_mean_over_batches():
    model = tiny()
    batches = list(loader(batch=4, clips=4))[:3]
    precise_bn(model, batches, num_batches=3, device=DEV)
    # reference: the stem BN sees the stem conv output; its precise mean is the mean of per-batch means
    with torch.no_grad():
        means = [model.stem.conv.conv(b["inputs"]).mean(dim=(0, 2, 3)) for b in batches]
    torch.testing.assert_close(model.stem.conv.bn.running_mean, torch.stack(means).mean(0))
    assert model.stem.conv.bn.momentum == 0.1  # restored


def test_precise_bn_leaves_frozen_layers_alone():
    model = tiny()
    freeze_batchnorm(model)
    frozen = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m is not model.stem.conv.bn]
    saved = [m.running_var.clone() for m in frozen]
    precise_bn(model, loader(), 2, DEV, freeze_bn=True)
    assert all(torch.equal(m.running_var, s) for m, s in zip(frozen, saved))
    assert not torch.equal(model.stem.conv.bn.running_var, torch.ones_like(model.stem.conv.bn.running_var))


def test_predict_averages_softmax_over_views():
    model = tiny().eval()
    task = SingleLabelTask(num_classes=4)
    prediction = predict(model, loader(views=3), task, DEV, progress=False)
    scores, targets, index = prediction.scores, prediction.targets, prediction.indices
    ds = loader(views=3).dataset
    item = ds[5]
    expected = model(item["inputs"]).softmax(-1).mean(0)
    torch.testing.assert_close(scores[5], expected, atol=1e-6, rtol=1e-5)
    assert index.tolist() == list(range(len(ds))) and targets[5] == item["target"] and prediction.skipped == []


def test_set_train_mode_only_freezes_when_asked():
    model = tiny()
    set_train_mode(model, freeze_bn=False)
    assert all(m.training for m in model.modules())
    set_train_mode(model, freeze_bn=True)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.training == (m is model.stem.conv.bn)
    assert model.head.drop.training


def test_loss_nan_raises():
    model = tiny()
    with torch.no_grad():
        model.head.fc.weight.fill_(float("nan"))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError):
        train_one_epoch(model, loader(), opt, SingleLabelTask(num_classes=4), DEV, progress=False)


class _HeadsData(torch.utils.data.Dataset):
    """Synthetic clips with EPIC-style targets ``{"verb": v, "noun": n}``."""

    def __init__(self, views: int = 1) -> None:
        self.base = SyntheticSpectrograms(4, 4, num_frames=32, n_mels=32, views=views)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        item = self.base[i]
        return {**item, "target": {"verb": item["target"] % 2, "noun": item["target"]}}


def test_multi_head_training_and_multi_view_prediction():
    torch.manual_seed(0)
    model = create_model("audio_rep_inception_next_tiny", num_classes={"verb": 2, "noun": 4})
    task = make_task({"verb": 2, "noun": 4})
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    stats = train_one_epoch(model, torch.utils.data.DataLoader(_HeadsData(), 8), opt, task, DEV, progress=False)
    assert stats["loss"] > 0 and 0 <= stats["acc"] <= 1
    prediction = predict(model, torch.utils.data.DataLoader(_HeadsData(views=2), 8), task, DEV, progress=False)
    scores, targets = prediction.scores, prediction.targets
    assert scores["verb"].shape == (16, 2) and scores["noun"].shape == (16, 4)
    torch.testing.assert_close(scores["noun"].sum(1), torch.ones(16))
    res = task.evaluate(scores, targets)
    assert {"verb_top1", "noun_top1", "action_top1", "action_top5"} <= set(res.summary)


def test_bf16_autocast_step_on_cpu():
    model = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    stats = train_one_epoch(model, loader(), opt, SingleLabelTask(num_classes=4), DEV, amp=True, progress=False)
    assert math.isfinite(stats["loss"])
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast keeps float32 master weights


def test_fit_folds_trains_each_fold_and_writes_summary(tmp_path):
    cfg = load_config(
        "urbansound8k",
        [
            "model=audio_rep_inception_next_tiny",
            "data.dataset=synthetic",
            "data.dataset_args={num_classes: 2, clips_per_class: 4}",
            "data.frontend={num_frames: 16, n_mels: 16}",
            "data.batch_size=4",
            "data.num_workers=0",
            "data.folds=[1, 2]",
            "optim.epochs=1",
            "precise_bn_batches=1",
            "export_pretrained=false",
        ],
    )
    result = fit_folds(cfg, tmp_path, progress=False)
    assert set(result.folds) == {1, 2} and result.best == pytest.approx((result.folds[1].best + result.folds[2].best) / 2)
    assert (tmp_path / "fold1" / "best.pt").is_file() and (tmp_path / "fold2" / "last.pt").is_file()
    stored = load_checkpoint(tmp_path / "fold2" / "best.pt")["config"]["data"]
    assert stored["dataset_args"]["fold"] == 2 and stored["folds"] == []
    saved = json.loads((tmp_path / "folds.json").read_text())
    assert saved["mean"] == pytest.approx(sum(saved["folds"].values()) / 2)


def test_epoch_logger_csv_resume_truncation_and_tensorboard(tmp_path):
    logger = EpochLogger(tmp_path, tensorboard=False)
    for e in (1, 2, 3):
        logger.log({"epoch": e, "train_loss": 1.0 / e})
    logger.close()
    resumed = EpochLogger(tmp_path, start_epoch=2, tensorboard=False)  # epoch 3 is redone after a crash
    resumed.log({"epoch": 3, "train_loss": 0.5, "val_top1": 0.9})
    lines = (tmp_path / "log.csv").read_text().splitlines()
    assert lines[0] == "epoch,train_loss,val_top1" and [ln.split(",")[0] for ln in lines[1:]] == ["1", "2", "3"]
    assert lines[-1] == "3,0.5,0.9"
    assert plot_curves(resumed.rows, tmp_path / "curves.png").stat().st_size > 0
    pytest.importorskip("tensorboard")
    tb = EpochLogger(tmp_path / "tb_run")
    tb.log({"epoch": 1, "train_loss": 0.7})
    tb.close()
    assert list((tmp_path / "tb_run" / "tb").glob("events.out.tfevents.*"))


def test_the_trainer_runs_channels_last_on_the_cpu_only_by_default():
    from arinext.train.trainer import channels_last

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert channels_last(None, cpu) and not channels_last(None, cuda)  # NCHW on a GPU (BENCHMARKS.md)
    assert channels_last(True, cuda) and not channels_last(False, cpu)  # an explicit setting wins


def test_the_trainer_keeps_freed_memory_on_the_cpu_only():
    """Process-wide, so each device is checked in a fresh process."""
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc malloc only")
    code = (
        "import sys, torch\n"
        "from arinext.train.trainer import _setup_cpu\n"
        "from arinext.utils.malloc import freed_memory_retained\n"
        "_setup_cpu(torch.device(sys.argv[1]), 0, True)\n"
        "print(freed_memory_retained())\n"
    )
    for device, expected in (("cpu", "1024"), ("meta", "None")):
        out = subprocess.run([sys.executable, "-c", code, device], capture_output=True, text=True, check=True)
        assert out.stdout.split()[-1] == expected, (device, out.stdout, out.stderr)
