"""A layering rule import-linter cannot express: no module imports a private name of another package.

(The layers themselves are checked by ``lint-imports`` in ``make test``, contracts in ``pyproject.toml``.)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _package(dotted: str) -> str:
    """The package a module belongs to: itself if it is a package (a folder), else its parent."""
    return dotted if (SRC / Path(*dotted.split("."))).is_dir() else dotted.rpartition(".")[0]


def _target(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def private_imports() -> list[str]:
    """``file:line: from X import y`` lines where X is a private module, or y a private name, of another package."""
    found = []
    for path in sorted((SRC / "arinext").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        package = ".".join(parts[:-1])  # for __init__.py the package itself, else the module's package
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            target = _target(node, package)
            if not target.startswith("arinext"):
                continue
            pieces = target.split(".")
            private_at = next((i for i, p in enumerate(pieces) if _private(p)), None)
            if private_at is not None:
                owner = ".".join(pieces[:private_at])
            elif any(_private(a.name) for a in node.names):
                owner = _package(target)
            else:
                continue
            if owner != package:
                names = ", ".join(a.name for a in node.names)
                found.append(f"{path.relative_to(SRC)}:{node.lineno}: from {target} import {names}")
    return found


def test_no_module_imports_a_private_name_of_another_package():
    assert private_imports() == []


def test_the_check_reports_private_imports(tmp_path, monkeypatch):
    (tmp_path / "arinext" / "cli").mkdir(parents=True)
    (tmp_path / "arinext" / "data").mkdir(parents=True)
    (tmp_path / "arinext" / "apps" / "builders").mkdir(parents=True)
    (tmp_path / "arinext" / "apps" / "builders" / "_common.py").write_text("x = 1\n")
    (tmp_path / "arinext" / "data" / "clips.py").write_text("_worker_init = 1\n")
    (tmp_path / "arinext" / "data" / "other.py").write_text("from .clips import _worker_init\n")  # same package: fine
    (tmp_path / "arinext" / "cli" / "bad.py").write_text(
        "from ..apps.builders._common import x\nfrom ..data.clips import _worker_init\nfrom ..data import clips\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    found = private_imports()
    assert [line.split(": ")[0] for line in found] == ["arinext/cli/bad.py:1", "arinext/cli/bad.py:2"]
