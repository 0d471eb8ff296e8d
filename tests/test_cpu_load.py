"""CPU use when the cores are not all ours: the OpenMP wait policy, thread caps, and the loaded-machine
detector behind ``arinext bench``'s warning (fed measurements, and real busy-loop processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from arinext.apps.bench import BenchConfig, run_bench, to_markdown
from arinext.cli import main
from arinext.utils import cpu

PROBE = """
import sys, time
if sys.argv[1] == "arinext":
    import arinext  # noqa: F401
import torch
torch.set_num_threads(2)
a, b = torch.randn(1_000_000), torch.randn(1_000_000)
start = time.process_time()
for _ in range(200):
    torch.add(a, b)
    time.sleep(0.002)
print(time.process_time() - start)
"""


def _probe_cpu_seconds(first_import: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", PROBE, first_import], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


@pytest.mark.skipif(cpu.usable_cpus() < 2, reason="spinning needs a second OpenMP thread")
def test_importing_arinext_first_stops_openmp_spinning():
    # 200 small 2-thread ops separated by 2 ms sleeps: spinning threads burn CPU in every sleep
    spinning = _probe_cpu_seconds("torch")
    passive = _probe_cpu_seconds("arinext")
    assert passive * 3 < spinning, (passive, spinning)


def test_wait_policy_is_a_default_not_an_override():
    code = "import os, arinext; print(os.environ['OMP_WAIT_POLICY'])"
    env = {**os.environ, "OMP_WAIT_POLICY": "ACTIVE"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip() == "ACTIVE"
    env.pop("OMP_WAIT_POLICY")
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip() == "PASSIVE"
    env_spin = {**env, "GOMP_SPINCOUNT": "10000"}  # a user's spin count is a choice too: left alone
    assert subprocess.run([sys.executable, "-c", code.replace("['OMP_WAIT_POLICY']", ".get('OMP_WAIT_POLICY')")],
                          env=env_spin, capture_output=True, text=True).stdout.strip() == "None"  # fmt: skip
    code = "import os, torch, arinext; print(os.environ.get('OMP_WAIT_POLICY'))"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip() == "None"


def test_wait_policy_hint(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert "OMP_WAIT_POLICY=PASSIVE" in cpu.wait_policy_hint()
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert cpu.wait_policy_hint() is None


def test_threads_capped_at_the_cgroup_quota(monkeypatch, tmp_path):
    quota = tmp_path / "cpu.max"
    quota.write_text("150000 100000\n")  # 1.5 CPUs
    files = {"/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/cpu.max": quota.read_text()}
    monkeypatch.setattr(cpu, "_read", lambda path: files.get(path))
    assert cpu.cgroup_cpu_limit() == 1.5
    assert cpu.usable_cpus() == min(2, len(os.sched_getaffinity(0)))
    files["/sys/fs/cgroup/cpu.max"] = "max 100000\n"
    assert cpu.cgroup_cpu_limit() is None
    files.update({"/proc/self/cgroup": "4:cpu,cpuacct:/job\n", "/sys/fs/cgroup/cpu/job/cpu.cfs_quota_us": "100000",
                  "/sys/fs/cgroup/cpu/job/cpu.cfs_period_us": "100000"})  # fmt: skip
    assert cpu.cgroup_cpu_limit() == 1.0 and cpu.usable_cpus() == 1
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        torch.set_num_threads(4)
        assert cpu.configure_threads() == 1
        assert cpu.configure_threads(3) == 3  # an explicit number wins
        with pytest.raises(ValueError):
            cpu.configure_threads(0)
    finally:
        torch.set_num_threads(before)


def test_assess_load_on_fed_measurements():
    idle = cpu.assess_load({"a": (10.0, 10.5, 9.8)}, 0.01, 0.3, 1.2, threads=1, pressure=0.5, cpus=2)
    assert not idle.loaded and idle.reasons == [] and "free" in idle.message()
    checks = {
        "waited for a CPU 40%": dict(wait_fraction=0.4),
        "load average 3.5 before": dict(load_before=3.5),
        "CPU pressure": dict(pressure=60.0),
        "runs spread": dict(spreads={"slow": (10.0, 14.0, 9.9)}),
    }
    for text, kwargs in checks.items():
        verdict = cpu.assess_load(**{"threads": 1, "cpus": 2, **kwargs})
        assert verdict.loaded and any(text in r for r in verdict.reasons), (text, verdict.reasons)
        assert verdict.message().startswith("WARNING")
    # the spread check also catches a fast outlier (median far above the minimum)
    assert cpu.assess_load({"x": (10.0, 10.1, 5.0)}, cpus=2).loaded


def _busy(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_run_queue_wait_sees_busy_processes():
    hogs = _busy(2 * cpu.usable_cpus())
    try:
        time.sleep(0.3)
        with cpu.RunQueueWait() as watch:
            end = time.perf_counter() + 1.0
            while time.perf_counter() < end:
                pass
    finally:
        _stop(hogs)
    assert watch.wait_fraction is not None and watch.wait_fraction > 0.2, watch.wait_fraction
    assert cpu.assess_load(wait_fraction=watch.wait_fraction, cpus=cpu.usable_cpus()).loaded


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_bench_flags_a_loaded_machine(tmp_path, capsys):
    cfg = BenchConfig(
        candidates=["audio_rep_inception_next_tiny:train", "audio_rep_inception_next_tiny:full"],
        reference="audio_rep_inception_next_tiny:train", sizes=["64x32"], batch_sizes=[1], runs=5, warmup=1,
        num_classes=5, threads=1, measure_memory=False,
    )  # fmt: skip
    hogs = _busy(2 * cpu.usable_cpus())
    try:
        time.sleep(0.3)
        result = run_bench(cfg)
    finally:
        _stop(hogs)
    load = result["load"]
    assert load["loaded"] and load["signals"]["wait_fraction"] > 0.05
    assert to_markdown(result).startswith("**WARNING: the CPUs were shared")
    json.dumps(result)  # the flag goes into bench.json as it is


def test_cli_bench_warns_on_stderr(tmp_path, capsys, monkeypatch):
    import arinext.apps.bench.runner as runner

    def loaded(*args, **kwargs):
        return cpu.LoadVerdict(True, ["our threads waited for a CPU 90% of their runnable time"], {"cpus": 2})

    monkeypatch.setattr(runner, "assess_load", loaded)
    out = tmp_path / "b"
    args = ["bench", "--candidates", "audio_rep_inception_next_tiny:full", "--reference", "audio_rep_inception_next_tiny:full",
            "--sizes", "32x16", "--batch-sizes", "1", "--runs", "2", "--warmup", "0", "--no-memory", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "WARNING: the CPUs were shared" in err and "90%" in err
    assert json.loads((out / "bench.json").read_text())["load"]["loaded"] is True
    assert "WARNING" in (out / "bench.md").read_text()
