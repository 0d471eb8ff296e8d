"""Errors a user can cause are ArinextErrors (exit 2, one line); anything else is a bug (exit 3, "internal error")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from arinext.cli import main
from arinext.cli import models as models_command
from arinext.utils.errors import ConfigError, PathNotFoundError

SRC = Path(__file__).resolve().parents[1] / "src"

#: The plain ``raise ValueError`` left in arinext: each guards an invariant of arinext's own code (its inputs
#: come from arinext, not from the user), so reaching it is a bug. A user's mistake raises an ArinextError.
INTERNAL_VALUE_ERRORS = {
    ("arinext/data/registry.py", "register_dataset"),  # a dataset registered with neither or both ways to load it
    ("arinext/inference/optimize.py", "AxisCroppedDWConv2d.__init__"),  # built only for eligible convs
    ("arinext/inference/results.py", "top_k_labels"),  # the classifier's own scores and labels
    ("arinext/inference/window_features.py", "window_logmels"),  # called after block_features_supported()
    ("arinext/layers/reparam.py", "pad_kernel_to"),  # the layer's own branch kernels
    ("arinext/train/evaluation.py", "_evaluate_subset"),  # the fused form must compute the training form's function
    ("arinext/train/tasks.py", "SingleLabelTask.__init__"),  # make_task passes labels or class counts
    ("arinext/train/tasks.py", "MultiLabelTask.__init__"),
    ("arinext/train/tasks.py", "MultiHeadTask.__init__"),
    ("arinext/utils/registry.py", "Registry.register"),  # one name registered twice
    ("arinext/utils/timing.py", "LatencyStats.from_seconds"),  # the timer always has timings
}


def bare_raises(src: Path = SRC, names: tuple[str, ...] = ("ValueError", "FileNotFoundError")) -> set[tuple[str, str]]:
    """``(file, qualified function)`` of every ``raise ValueError(...)`` / ``raise FileNotFoundError(...)``."""
    found = set()
    for path in sorted((src / "arinext").rglob("*.py")):

        def visit(node: ast.AST, scope: list[str]) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    visit(child, [*scope, child.name])
                    continue
                if isinstance(child, ast.Raise) and isinstance(child.exc, ast.Call):
                    func = child.exc.func
                    if isinstance(func, ast.Name) and func.id in names:
                        found.add((path.relative_to(src).as_posix(), ".".join(scope) or "<module>"))
                visit(child, scope)

        visit(ast.parse(path.read_text()), [])
    return found


def test_user_errors_raise_arinext_errors_not_bare_value_errors():
    unexpected = sorted(bare_raises() - INTERNAL_VALUE_ERRORS)
    assert not unexpected, (
        "raise an ArinextError subclass (ConfigError, DataError, InputError, PathNotFoundError, ...) for a user's "
        f"mistake, or list the site in INTERNAL_VALUE_ERRORS with the invariant it guards: {unexpected}"
    )
    assert INTERNAL_VALUE_ERRORS <= bare_raises()  # the list names no site that is gone


def test_the_scan_finds_a_bare_value_error(tmp_path):
    (tmp_path / "arinext").mkdir()
    (tmp_path / "arinext" / "m.py").write_text(
        "class A:\n    def f(self, x):\n        if x:\n            raise ValueError('bad x')\n"
        "def g():\n    raise ConfigError('fine')\n"
    )
    assert bare_raises(tmp_path) == {("arinext/m.py", "A.f")}


@pytest.mark.parametrize(
    "exc, code, line",
    [
        (ValueError("an internal invariant broke"), 3, "arinext models: internal error: ValueError: an internal"),
        (FileNotFoundError("plain"), 3, "arinext models: internal error: FileNotFoundError: plain"),
        (ConfigError("optim.lr must be float"), 2, "arinext models: error: optim.lr must be float"),
        (PathNotFoundError("x.wav: no such file"), 2, "arinext models: error: x.wav: no such file"),
    ],
)
def test_the_cli_exits_2_for_arinext_errors_and_3_for_bugs(monkeypatch, capsys, exc, code, line):
    def run(args):
        raise exc

    monkeypatch.setattr(models_command, "run", run)  # register() binds `run` when the parser is built
    assert main(["models"]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(line)
