"""The command line: help lists the subcommands, demo and models run and tell the truth."""

from __future__ import annotations

import subprocess
import sys

import pytest

from arinext.cli import COMMANDS, build_parser, main


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out
    build_parser()  # every registered module imports and registers


def test_models_lists_counts(capsys):
    assert main(["models", "audio_rep_inception_next"]) == 0
    out = capsys.readouterr().out
    assert "11,834,869" in out


def test_models_verify_checks_every_fold(capsys):
    assert main(["models", "audio_rep_inception_next_tiny", "--verify", "--input", "128x64", "--num-classes", "5"]) == 0
    out = capsys.readouterr().out
    assert "fused (full fold)" in out and "relative to the logit scale" in out
    diffs = [float(line.split()[-1]) for line in out.splitlines() if line.strip().startswith(("training", "fused"))]
    assert len(diffs) == 3 and diffs[0] == 0.0 and max(diffs) < 1e-4
    assert main(["models", "audio_rep*", "--input", "big"]) == 2


def test_python_m_arinext_runs():
    proc = subprocess.run([sys.executable, "-m", "arinext", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("arinext ")
