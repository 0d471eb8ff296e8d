"""DDP: two CPU processes (gloo on 127.0.0.1) launched by torchrun end with identical weights; the README's
multi-machine command (two torchrun "machines" of one process each, c10d rendezvous) trains the same weights,
and resumes exactly."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from arinext.checkpoints.training import load_checkpoint
from arinext.train import distributed, load_config
from arinext.data.synthetic import SyntheticSpectrograms
from arinext.train.data import build_dataset, build_loader, data_fingerprint
from arinext.train.distributed import DistInfo, init_distributed
from arinext.utils.errors import ConfigError, DataError

from .test_readme_commands import ROOT, shell_commands

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


TORCHRUN = str(Path(sys.executable).with_name("torchrun"))


@pytest.fixture(scope="module")
def two_epochs_one_machine(tmp_path_factory) -> Path:
    # README: torchrun --nproc-per-node 4 -m arinext train vggsound --set data.root=/data/vggsound --out runs/vggsound
    # here with 2 processes and generated data instead of VGG-Sound
    out = tmp_path_factory.mktemp("one_machine") / "run"
    cmd = [
        TORCHRUN, "--nproc-per-node", "2", "--master-addr=127.0.0.1", f"--master-port={free_port()}",
        "-m", "arinext", "train", "vggsound", *[f"--set={o}" for o in RECIPE], "--set=optim.epochs=2",
        "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("epoch 1: ") == 1 and proc.stderr.count("epoch 2: ") == 1  # only rank 0 logs
    return out


@pytest.fixture(scope="module")
def one_epoch_by_script(tmp_path_factory) -> Path:
    """A 2-process run of one epoch through ``fit`` (the same recipe); every rank dumps its weights here."""
    folder = tmp_path_factory.mktemp("script")
    script = folder / "ddp_fit.py"
    script.write_text(SCRIPT)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2",
        "--master-addr=127.0.0.1", f"--master-port={free_port()}",
        str(script), str(folder / "run"), str(folder), *RECIPE,
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder


def test_readme_torchrun_command_trains(two_epochs_one_machine):
    ckpt = load_checkpoint(two_epochs_one_machine / "last.pt")
    assert len(ckpt["rng"]) == 2 and ckpt["epoch"] == 2


def test_two_process_ddp_keeps_ranks_identical(one_epoch_by_script):
    folder = one_epoch_by_script
    w0, w1 = torch.load(folder / "rank0.pt"), torch.load(folder / "rank1.pt")
    assert w0.keys() == w1.keys()
    for k in w0:
        torch.testing.assert_close(w0[k], w1[k], rtol=0, atol=0, msg=k)
    # only rank 0 writes the run's files, and its checkpoint holds the same weights
    ckpt = load_checkpoint(folder / "run" / "last.pt")
    assert len(ckpt["rng"]) == 2  # every rank's RNG state, for an exact resume
    for k in w0:
        torch.testing.assert_close(ckpt["model"][k], w0[k], rtol=0, atol=0, msg=k)
    assert ckpt["epoch"] == 1


def readme_multinode_command(out: Path, port: int, extra: list[str]) -> list[str]:
    """The README's several-machines command, for one process per "machine" on this one, with the test's data."""
    (command,) = [c for c in shell_commands((ROOT / "README.md").read_text()) if c.startswith("torchrun --nnodes")]
    words = shlex.split(command)
    split = words.index("-m")
    launcher, app = words[1:split], words[split:]
    for flag, value in (("--nnodes", "2"), ("--rdzv-backend", "c10d")):
        assert launcher[launcher.index(flag) + 1] == value
    assert {"--nproc-per-node", "--rdzv-endpoint", "--rdzv-id"} <= set(launcher)
    launcher[launcher.index("--nproc-per-node") + 1] = "1"
    launcher[launcher.index("--rdzv-endpoint") + 1] = f"127.0.0.1:{port}"
    assert app[:4] == ["-m", "arinext", "train", "vggsound"]
    app[app.index("--out") + 1] = str(out)
    (root,) = [i for i, w in enumerate(app) if w == "--set" and app[i + 1].startswith("data.root=")]
    del app[root : root + 2]  # generated data instead
    return [TORCHRUN, *launcher, *app, *[f"--set={o}" for o in RECIPE], *extra]


def test_readme_multinode_command_resumes_like_one_machine(tmp_path, one_epoch_by_script, two_epochs_one_machine):
    # the run of one_epoch_by_script, interrupted after epoch 1, continued by two "machines" of one process each
    out = tmp_path / "run"
    shutil.copytree(one_epoch_by_script / "run", out)
    cmd = readme_multinode_command(out, free_port(), ["--set=optim.epochs=2", "--resume"])
    procs = [subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    logs = [proc.communicate(timeout=300)[1] for proc in procs]
    for proc, log in zip(procs, logs):
        assert proc.returncode == 0, log[-3000:]
    log = "\n".join(logs)
    # c10d put the two machines in one group of 2; global rank 0 alone logs and writes the run
    assert "rank 0 of 2" in log and log.count("resuming") == 1 and log.count("epoch 2: ") == 1
    resumed, reference = load_checkpoint(out / "last.pt"), load_checkpoint(two_epochs_one_machine / "last.pt")
    assert resumed["epoch"] == 2 and len(resumed["rng"]) == 2
    # the same weights as one machine of two processes trained in one go: the data split by global rank,
    # the gradients reduced the same way, every rank's RNG stream restored
    for k, v in reference["model"].items():
        torch.testing.assert_close(resumed["model"][k], v, rtol=0, atol=0, msg=k)


def test_ranks_share_the_data_out_without_overlap():
    ds = SyntheticSpectrograms(num_classes=4, clips_per_class=5, num_frames=8, n_mels=8)
    seen = []
    for rank in range(2):
        loader, sampler = build_loader(ds, 4, True, 0, DistInfo(rank=rank, world_size=2), seed=3)
        sampler.set_epoch(1)
        seen.append(torch.cat([b["index"] for b in loader]).tolist())
    assert len(seen[0]) == len(seen[1]) == 10
    assert not set(seen[0]) & set(seen[1]) and set(seen[0]) | set(seen[1]) == set(range(20))


def test_init_refuses_a_local_rank_without_its_gpu_and_nccl_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(ConfigError, match="LOCAL_RANK is 1 but this machine has 1 CUDA device"):
        init_distributed("cuda")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="'nccl' needs CUDA devices"):
        init_distributed("cpu", "nccl")
    with pytest.raises(ConfigError, match="dist_backend must be"):
        init_distributed("cpu", "mpi")


def _fake_group(monkeypatch, per_rank: list):
    """Two processes, as far as the helpers can tell: collectives return ``per_rank``'s values."""
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)

    def gather(parts, value):
        parts[:] = per_rank

    monkeypatch.setattr(dist, "all_gather_object", gather)
    monkeypatch.setattr(distributed, "all_reduce_sum", lambda values, device: [float(sum(per_rank))])


def test_machines_with_other_data_or_no_shared_run_folder_are_refused(monkeypatch, tmp_path):
    _fake_group(monkeypatch, [{"the training subset": "8 clips (aa)"}, {"the training subset": "7 clips (bb)"}])
    with pytest.raises(DataError, match=r"training subset differs between processes \(rank 0: 8 clips"):
        distributed.same_on_every_rank({"the training subset": "8 clips (aa)"}, "same data everywhere")
    (tmp_path / "last.pt").write_bytes(b"x")
    _fake_group(monkeypatch, [1, 0])  # only one of the two machines sees last.pt
    with pytest.raises(ConfigError, match="exists for 1 of 2 processes"):
        distributed.file_on_every_rank(tmp_path / "last.pt", torch.device("cpu"))
    _fake_group(monkeypatch, [1, 1])
    assert distributed.file_on_every_rank(tmp_path / "last.pt", torch.device("cpu"))


def test_data_fingerprint_tells_subsets_apart(tmp_path):
    from .test_feature_path import _tone_folder

    cfg = load_config("folder", [f"data.root={_tone_folder(tmp_path)}"])
    train, val = (build_dataset(cfg.data, s, training=False) for s in ("training", "validation"))
    assert data_fingerprint(train).startswith("8 clips (") and data_fingerprint(val).startswith("4 clips (")
    assert data_fingerprint(train) == data_fingerprint(build_dataset(cfg.data, "training", training=False))


ALL_BAD_SCRIPT = textwrap.dedent(
    """
    import datetime, sys
    import torch, torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from arinext.train.distributed import cleanup_distributed
    from arinext.train.engine import train_one_epoch
    from arinext.train.tasks import make_task

    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=30))
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def batch(bad):
        if bad:  # every clip of this rank's batch was unreadable
            return {"inputs": None, "target": None, "index": torch.zeros(0, dtype=torch.long), "bad": ["x.wav: bad"]}
        return {"inputs": torch.randn(4, 1, 4, 4), "target": torch.randint(0, 3, (4,)), "index": torch.arange(4),
                "bad": []}

    loader = [batch(False), batch(rank == 1), batch(False)]
    out = train_one_epoch(model, loader, opt, make_task(3), torch.device("cpu"), log_every=0)
    weights = torch.cat([p.detach().flatten() for p in model.parameters()])
    gathered = [torch.zeros_like(weights) for _ in range(2)]
    dist.all_gather(gathered, weights)
    assert torch.equal(gathered[0], gathered[1]), "ranks drifted apart"
    print(f"rank {rank}: {out['bad_clips']:.0f} bad, {out['loss']:.3f}", flush=True)
    del model, opt  # as the CLI does after training: drop DDP, then leave the group
    cleanup_distributed()
    """
)


def test_a_batch_of_bad_clips_on_one_rank_skips_the_step_on_every_rank(tmp_path):
    """A process that skipped the step alone would leave the others waiting in DDP's gradient all-reduce."""
    script = tmp_path / "all_bad.py"
    script.write_text(ALL_BAD_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2",
           "--master-addr=127.0.0.1", f"--master-port={free_port()}", str(script)]  # fmt: skip
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count(": 1 bad,") == 2, proc.stdout  # the bad clip is counted over both ranks


def test_the_cli_leaves_the_process_group_when_a_command_ends(tmp_path):
    """A group still alive at interpreter exit can abort a process whose run succeeded (gloo, SIGABRT)."""
    from arinext.cli import main

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert main(["models"]) == 0
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
