"""Every ``arinext`` command shown in README.md and BENCHMARKS.md is a command the CLI accepts.

Each command line of the documents' ``bash`` blocks (``torchrun ... -m arinext ...`` included) is parsed by
the real argument parser, and the ``--set`` overrides of ``train`` commands are applied to their recipe, so a
renamed flag, subcommand or config key breaks this test instead of the reader's first try. The README's
installation check (train on generated data, then evaluate) runs here exactly as printed; the ``torchrun``
command runs in ``test_train_ddp.py``, the demo in ``test_demo.py``; ``python benchmarks/...`` commands must
name scripts that exist.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from arinext.cli import build_parser, main
from arinext.train.config import load_config

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "BENCHMARKS.md")


def shell_commands(text: str) -> list[str]:
    """Commands of the ```bash blocks: continuations joined, prompts and comments removed, ``&&`` split, and
    ``$VAR`` expanded from ``VAR="..."`` lines of the same block."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        variables: dict[str, str] = {}
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = line.strip().removeprefix("$ ")
            words = shlex.split(line, comments=True) if line else []
            if len(words) == 1 and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):  # VAR="value" on its own
                name, value = words[0].split("=", 1)
                variables[name] = value
                continue
            for name, value in variables.items():
                line = line.replace(f"${name}", value)
            commands += [part.strip() for part in line.split("&&") if part.strip() and not part.startswith("#")]
    return commands


def arinext_argv(command: str) -> list[str] | None:
    """The arguments after ``arinext`` (or ``torchrun ... -m arinext``), or None for other programs."""
    words = shlex.split(command, comments=True)
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # leading VAR=value assignments
        words = words[1:]
    if words[:1] == ["arinext"]:
        return words[1:]
    if words[:1] == ["torchrun"] and "-m" in words and words[words.index("-m") + 1] == "arinext":
        return words[words.index("-m") + 2 :]
    return None


def documented() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        for command in shell_commands((ROOT / doc).read_text()):
            if arinext_argv(command) is not None:
                out.append((doc, command))
    return out


def test_the_documents_show_commands():
    docs = {doc for doc, _ in documented()}
    assert docs == set(DOCS) and len(documented()) >= 20


@pytest.mark.parametrize("doc, command", documented(), ids=[f"{d}:{c[:60]}" for d, c in documented()])
def test_documented_command_parses(doc, command):
    argv = arinext_argv(command)
    assert argv is not None
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{doc}: `{command}` is rejected by the parser (exit {exc.code})")
    if args.command == "train":
        load_config(args.recipe, args.overrides)  # unknown keys, wrong types and model names raise here


def test_the_parser_check_catches_a_wrong_command():
    with pytest.raises(SystemExit):
        build_parser().parse_args(arinext_argv("arinext train vggsound --no-such-flag --out x"))
    with pytest.raises(ValueError, match="optim.learning_rate"):
        args = build_parser().parse_args(arinext_argv("arinext train vggsound --set optim.learning_rate=1 --out x"))
        load_config(args.recipe, args.overrides)
    assert arinext_argv("torchrun --nproc-per-node 4 -m arinext.cli train x") is None  # not the documented form


def test_benchmark_scripts_named_in_the_documents_exist():
    scripts = set()
    for doc in DOCS:
        for command in shell_commands((ROOT / doc).read_text()):
            scripts.update(re.findall(r"python (benchmarks/\S+\.py)", command))
    assert scripts and all((ROOT / s).is_file() for s in scripts), scripts


def test_readme_installation_check_runs_as_printed(tmp_path, monkeypatch):
    smoke = [c for d, c in documented() if d == "README.md" and " smoke" in c]
    assert len(smoke) == 2  # train on generated data, then evaluate
    monkeypatch.chdir(tmp_path)
    for command in smoke:
        assert main(arinext_argv(command)) == 0, command
    metrics = (tmp_path / "smoke" / "test" / "metrics.json").read_text()
    assert '"top1"' in metrics
