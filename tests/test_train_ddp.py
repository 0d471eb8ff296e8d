"""DDP: two CPU processes (gloo on 127.0.0.1) launched by torchrun end with identical weights."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from arinext.checkpoints.training import load_checkpoint

SCRIPT = textwrap.dedent(
    """
    import sys, torch
    torch.set_num_threads(1)
    import torch.distributed as dist
    from arinext.train import fit, load_config
    out, dump = sys.argv[1], sys.argv[2]
    cfg = load_config("vggsound", sys.argv[3:])
    seen = {}
    def hook(epoch, row):
        seen["row"] = row
    result = fit(cfg, out, progress=False, on_epoch_end=hook)
    # every rank saves the weights it trained (the run's checkpoint only shows rank 0's)
    torch.save(result.model.state_dict(), f"{dump}/rank{dist.get_rank()}.pt")
    assert seen["row"]["epoch"] == 1
    """
)

RECIPE = [
    "model=audio_rep_inception_next_tiny",
    "data.dataset=synthetic",
    "data.dataset_args={num_classes: 4, clips_per_class: 8}",
    "data.frontend={num_frames: 32, n_mels: 32}",
    "data.batch_size=8",
    "data.num_workers=0",
    "optim.epochs=1",
    "optim.lr=0.05",
    "precise_bn_batches=2",
    "export_pretrained=false",
    "device=cpu",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}


def test_readme_torchrun_command_trains(tmp_path):
    # README: torchrun --nproc-per-node 4 -m arinext train vggsound --set data.root=/data/vggsound --out runs/vggsound
    # here with 2 processes and generated data instead of VGG-Sound
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [
        str(torchrun), "--nproc-per-node", "2", "--master-addr=127.0.0.1", f"--master-port={free_port()}",
        "-m", "arinext", "train", "vggsound", *[f"--set={o}" for o in RECIPE], "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("epoch 1: ") == 1  # only rank 0 logs
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert len(ckpt["rng"]) == 2 and ckpt["epoch"] == 1


def test_two_process_ddp_keeps_ranks_identical(tmp_path):
    script = tmp_path / "ddp_fit.py"
    script.write_text(SCRIPT)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2",
        "--master-addr=127.0.0.1", f"--master-port={free_port()}",
        str(script), str(tmp_path / "run"), str(tmp_path), *RECIPE,
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    w0, w1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert w0.keys() == w1.keys()
    for k in w0:
        torch.testing.assert_close(w0[k], w1[k], rtol=0, atol=0, msg=k)
    # only rank 0 writes the run's files, and its checkpoint holds the same weights
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert len(ckpt["rng"]) == 2  # every rank's RNG state, for an exact resume
    for k in w0:
        torch.testing.assert_close(ckpt["model"][k], w0[k], rtol=0, atol=0, msg=k)
    assert ckpt["epoch"] == 1
