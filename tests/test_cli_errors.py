"""The command line as a new user meets it: every checkpoint form, one-line errors, clean logs, core install.

Commands run as subprocesses (``python -m arinext``), as a user runs them: exit code, stderr and stdout are
checked as they would appear in a terminal or a redirected log file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


SYNTHETIC = [
    "model=audio_rep_inception_next_tiny",
    "data.dataset=synthetic",
    "data.dataset_args={num_classes: 3, clips_per_class: 6}",
    "data.frontend={num_frames: 32, n_mels: 32, sample_rate: 8000, n_fft: 256, clip_seconds: 0.319}",
    "data.batch_size=6",
    "data.num_workers=0",
    "optim.epochs=2",
    "optim.lr=0.05",
    "optim.freeze_bn=false",
    "precise_bn_batches=0",
]


def arinext(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """``python -m arinext ARGS`` with stdout/stderr captured (stderr is a pipe, not a terminal)."""
    run_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "arinext", *args], capture_output=True, env=run_env, input=stdin, timeout=300
    )


def sets(*overrides: str) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def one_line_error(proc: subprocess.CompletedProcess, command: str, code: int = 2) -> str:
    """Assert the process failed with one ``arinext COMMAND: error: ...`` line and no traceback; return it."""
    err = proc.stderr.decode()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == code, err
    assert "Traceback" not in err, err
    assert lines and lines[-1].startswith(f"arinext {command}: error: "), err
    assert len([ln for ln in lines if "error" in ln]) == 1, err
    return lines[-1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A trained run directory (two epochs on generated spectrograms), stderr redirected as in a log file."""
    out = tmp_path_factory.mktemp("cli") / "run"
    proc = arinext("train", "folder", "--out", str(out), *sets(*SYNTHETIC))
    assert proc.returncode == 0, proc.stderr.decode()
    (out.parent / "train.log").write_bytes(proc.stderr)
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    t = np.arange(8000) / 8000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000)
    return path


def test_train_log_redirected_to_a_file_has_no_progress_bars(run_dir):
    log = (run_dir.parent / "train.log").read_text()
    assert "\r" not in log and "\x1b[" not in log
    assert "epoch 2: " in log and "BatchNorm: every layer trained (training from scratch)" in log
    assert all(not line.startswith(("INFO", "DEBUG")) for line in log.splitlines())  # plain lines, no logger names


def test_stored_config_paths_are_absolute_and_eval_runs_from_elsewhere(run_dir, tmp_path):
    tones = tmp_path / "tones"
    (tones / "a").mkdir(parents=True)
    sf.write(tones / "a" / "x.wav", np.zeros(800, dtype=np.float32), 8000)
    rel = os.path.relpath(tones, Path.cwd())
    proc = arinext("train", "folder", "--out", str(tmp_path / "r"), *sets(*SYNTHETIC, f"init_from={run_dir}",
                   f"data.root={rel}", "optim.epochs=1"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    stored = (tmp_path / "r" / "config.yaml").read_text()
    assert f"root: {tones.resolve()}" in stored and f"init_from: {run_dir.resolve()}" in stored


@pytest.mark.parametrize("form", ["run", "best.pt", "last.pt", "pretrained"])
def test_every_command_takes_every_checkpoint_form(run_dir, clip, tmp_path, form):
    ckpt = str(run_dir if form == "run" else run_dir / form)
    proc = arinext("predict", "-m", ckpt, str(clip), "-k", "1")
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().split("\t")[1].split("=")[0] in {"band0", "band1", "band2"}
    proc = arinext("reparam", ckpt, str(tmp_path / "fused"))
    assert proc.returncode == 0, proc.stderr.decode()
    proc = arinext("eval", ckpt, "--out", str(tmp_path / "eval"), "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / "eval" / "metrics.json").is_file()


def test_eval_of_a_fused_directory_reports_the_stored_form(run_dir, tmp_path):
    assert arinext("reparam", str(run_dir), str(tmp_path / "fused")).returncode == 0
    proc = arinext("eval", str(tmp_path / "fused"), "--out", str(tmp_path / "eval"), "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    assert '"fused"' in proc.stdout.decode() and '"training_form"' not in proc.stdout.decode()


def test_authors_checkpoint_form(clip, tmp_path, official_dir):
    proc = arinext("reparam", str(official_dir / "small_unmerged.pyth"), str(tmp_path / "fused"))
    assert proc.returncode == 0, proc.stderr.decode()
    # the authors' files store no class names: evaluation cannot match classes and says why
    proc = arinext("eval", str(official_dir / "small_unmerged.pyth"), "--out", str(tmp_path / "e"))
    assert "stores no class names" in one_line_error(proc, "eval")


@pytest.mark.parametrize(
    "args, command, message",
    [
        (["train", "folder", "--out", "{tmp}/x", "--set", "data.root={tmp}/missing"], "train",
         "does not exist"),
        (["train", "folder", "--out", "{tmp}/x", "--set", "data.root={tmp}/missing", "--set", "model=foo"], "train",
         "unknown model 'foo'"),  # checked before the (missing) data is looked at
        (["train", "folder", "--out", "{tmp}/x", "--set", "data.root={tmp}", "--set", "init_from={tmp}/nothing"],
         "train", "nothing: no such file or directory"),
        (["train", "folder", "--out", "{tmp}/x", "--set", "data.root={tmp}/empty"], "train", "no class folders"),
        (["train", "folder", "--out", "{tmp}/x", "--set", "optim.lr=fast"], "train", "'optim.lr' must be float"),
        (["train", "no_such_recipe", "--out", "{tmp}/x"], "train", "unknown recipe"),
        (["eval", "{tmp}/missing", "--out", "{tmp}/e"], "eval", "no such file or directory"),
        (["eval", "{tmp}/empty", "--out", "{tmp}/e"], "eval", "an empty directory; expected a run directory"),
        (["predict", "{tmp}/clip.wav"], "predict", "no checkpoint: pass --model"),
        (["reparam", "{tmp}/clip.wav", "{tmp}/f"], "reparam", "clip.wav: not a readable PyTorch checkpoint"),
        (["export", "{tmp}/missing", "--out", "{tmp}/m.onnx"], "export", "no such file or directory"),
        (["models", "--input", "big"], "models", "--input must look like 512x128"),
        (["bench", "--accuracy", "x"], "bench", "--accuracy expects MODEL=ACC"),
    ],
)
def test_expected_failures_are_one_line(tmp_path, args, command, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "clip.wav").write_bytes(b"RIFF")
    proc = arinext(*[a.format(tmp=tmp_path) for a in args])
    assert message in one_line_error(proc, command)


def test_resume_with_another_model_is_one_line(run_dir, tmp_path):
    import shutil

    shutil.copytree(run_dir, tmp_path / "run")
    proc = arinext("train", "folder", "--out", str(tmp_path / "run"), "--resume",
                   *sets(*SYNTHETIC, "model=audio_rep_inception_next_small"))  # fmt: skip
    line = one_line_error(proc, "train")
    assert "--resume" in line and "audio_rep_inception_next_tiny" in line and len(line) < 400


def test_predict_reports_unreadable_files_and_exits_1(run_dir, clip, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("this is text")
    proc = arinext("predict", "-m", str(run_dir), str(clip), str(bad))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr.decode()
    assert f"skipping {bad}: not a readable audio file" in proc.stderr.decode()
    assert proc.stdout.decode().startswith(str(clip))
    proc = arinext("predict", "-m", str(run_dir), "-", stdin=b"not audio")
    assert proc.returncode == 1 and "skipping <stdin>: " in proc.stderr.decode()


def test_help_shows_defaults():
    for command, default in [
        ("export", "(default: onnx)"),
        ("export", "(default: static)"),
        ("reparam", "(default: full)"),
        ("predict", "(default: 30.0)"),
        ("bench", "(default: 20)"),
        ("demo", "(default: 0)"),
    ]:
        out = arinext(command, "--help").stdout.decode()
        assert default in " ".join(out.split()), (command, default)


BLOCKER = textwrap.dedent(
    """
    import importlib.util
    import sys

    # the optional extras of arinext, as if only `pip install arinext` had run
    BLOCKED = {"onnx", "onnxruntime", "onnxscript", "matplotlib", "h5py", "pandas", "tensorboard", "librosa"}


    class _NoExtras:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None


    _find_spec = importlib.util.find_spec


    def _probe(name, package=None):  # libraries that probe for a module see it missing too
        return None if name.split(".")[0] in BLOCKED else _find_spec(name, package)


    importlib.util.find_spec = _probe
    sys.meta_path.insert(0, _NoExtras())
    """
)


def test_core_commands_work_without_the_extras(run_dir, clip, tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCKER)
    env = {"PYTHONPATH": str(tmp_path / "site")}
    check = subprocess.run([sys.executable, "-c", "import onnx"], env={**os.environ, **env}, capture_output=True)
    assert check.returncode != 0  # the blocker works
    assert arinext("--help", env=env).returncode == 0
    assert arinext("models", "audio_rep_inception_next_tiny", env=env).returncode == 0
    proc = arinext("predict", "-m", str(run_dir), str(clip), env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    proc = arinext("train", "folder", "--out", str(tmp_path / "r"), *sets(*SYNTHETIC, "optim.epochs=1"), env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert not (tmp_path / "r" / "curves.png").exists() and (tmp_path / "r" / "best.pt").is_file()
    proc = arinext("export", str(run_dir), "--out", str(tmp_path / "m.onnx"), env=env)
    assert "pip install 'arinext[export]'" in one_line_error(proc, "export")
    assert arinext("export", str(run_dir), "--format", "torchscript", "--out", str(tmp_path / "m.pt"),
                   env=env).returncode == 0  # fmt: skip
