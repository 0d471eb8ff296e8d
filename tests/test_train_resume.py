"""Crash safety: kill -9 after an epoch and resume == uninterrupted run; kill -9 mid-write keeps ``last.pt``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from arinext.checkpoints.training import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint

RECIPE = [
    "model=audio_rep_inception_next_tiny",
    "data.dataset=synthetic",
    "data.dataset_args={num_classes: 4, clips_per_class: 6}",
    "data.frontend={num_frames: 32, n_mels: 32}",
    "data.batch_size=8",
    "data.num_workers=0",
    "optim.epochs=4",
    "optim.lr=0.05",
    "optim.lr_steps=[3]",
    "optim.lr_factors=[0.1]",
    "precise_bn_batches=2",
    "export_pretrained=false",
]

# Runs fit() in a fresh process; --kill-after N sends SIGKILL to itself once epoch N's checkpoint is
# written, --kill-in-save N dies half-way through writing epoch N's last.pt.
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    from arinext.train import fit, load_config
    out, resume, kill_after, kill_in_save = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4])
    if kill_in_save:
        real_save = torch.save
        def dying_save(obj, f, *a, **k):
            if "optimizer" in obj and obj["epoch"] == kill_in_save:
                f.write(b"half a checkpoint" * 1000)
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return real_save(obj, f, *a, **k)
        torch.save = dying_save
    def hook(epoch, row):
        if epoch == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    fit(load_config("vggsound", sys.argv[5:]), out, resume=resume, progress=False, on_epoch_end=hook)
    """
)


def run(tmp: Path, out: Path, resume: bool = False, kill_after: int = 0, kill_in_save: int = 0) -> int:
    script = tmp / "run_fit.py"
    script.write_text(SCRIPT)
    args = [sys.executable, str(script), str(out), str(int(resume)), str(kill_after), str(kill_in_save), *RECIPE]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    return subprocess.run(args, env=env, capture_output=True, timeout=300, check=False).returncode


def assert_same_run(a: dict, b: dict) -> None:
    assert a["epoch"] == b["epoch"]
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], atol=1e-6, rtol=1e-5, msg=k)
    for ra, rb in zip(a["history"], b["history"]):
        assert ra.keys() == rb.keys()
        for k in ra:
            if not k.endswith(("clips_per_s", "first_batch_s", "data_wait_s")):  # timings
                assert ra[k] == pytest.approx(rb[k], rel=1e-5, abs=1e-7), k


def test_kill_and_resume_equals_uninterrupted(tmp_path):
    assert run(tmp_path, tmp_path / "full") == 0
    assert run(tmp_path, tmp_path / "crash", kill_after=2) == -signal.SIGKILL
    assert load_checkpoint(tmp_path / "crash" / "last.pt")["epoch"] == 2
    assert run(tmp_path, tmp_path / "crash", resume=True) == 0
    full, resumed = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "crash" / "last.pt")
    assert full["epoch"] == 4 and len(resumed["history"]) == 4
    assert_same_run(full, resumed)
    # the optimizer's momentum buffers continued too
    for sa, sb in zip(full["optimizer"]["state"].values(), resumed["optimizer"]["state"].values()):
        torch.testing.assert_close(sa["momentum_buffer"], sb["momentum_buffer"], atol=1e-6, rtol=1e-5)
    log = (tmp_path / "crash" / "log.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in log[1:]] == ["1", "2", "3", "4"]


def test_kill_while_writing_keeps_last_readable(tmp_path):
    out = tmp_path / "run"
    assert run(tmp_path, out, kill_in_save=2) == -signal.SIGKILL
    ckpt = load_checkpoint(out / "last.pt")  # the epoch-1 checkpoint, intact
    assert ckpt["epoch"] == 1
    assert list(out.glob(".last.pt.*.tmp")), "the interrupted write happened in a temp file"
    assert run(tmp_path, out, resume=True) == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 4


def test_rng_state_round_trips_through_weights_only_load(tmp_path):
    import random

    import numpy as np

    save_checkpoint({"model": {}, "config": {}, "rng": capture_rng_state()}, tmp_path / "c.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    restore_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_unreadable_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="last.pt: refused to load: not a weights-only PyTorch file"):
        load_checkpoint(bad)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.pt")
