"""Leave-one-source-out sweeps: one training run per held-out source (and seed), one table.

For each value ``v`` of a metadata column (``engine``, ``soundfont_family``, a CSV column) and each seed,
:func:`leave_one_source_out` trains the recipe with ``data.holdout = {column, values: [v], closure}``
into ``OUT/<column>=<v>/seed<s>/``, evaluates it (:func:`~arinext.train.evaluation.evaluate_checkpoint`:
in-source unseen test clips and the held-out source side by side) into ``.../eval/``, and writes::

    OUT/loso.json    every fold: clip counts, what the closure removed, both top-1s and their gap
    OUT/loso.md      the same as a markdown table, with the mean over seeds per held-out source

A fold whose ``eval/metrics.json`` already exists is read back, not trained again (``resume=True``),
so an interrupted sweep continues where it stopped. A fold that would leave a subset empty (every
validation speaker belongs to the held-out source, say) is listed as not trained, with the reason.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..data.holdout import HOLDOUT_SUBSETS
from ..data.records import SUBSETS
from ..utils.errors import ConfigError, DataError
from ..utils.jsonout import undefined_as_null, write_json
from .config import TrainConfig
from .data import holdout_split

__all__ = ["leave_one_source_out", "render_loso_table", "source_column_values"]

_log = logging.getLogger(__name__)


def source_column_values(cfg: TrainConfig, column: str) -> list[str]:
    """The values of ``column`` among the clips of the recipe's dataset (all three subsets), sorted."""
    from ..data import get_manifest
    from ..data.holdout import source_values

    d = cfg.data
    if not d.root:
        raise ConfigError(f"data.root is not set: pass --set data.root=/path/to/{d.dataset}")
    counts = source_values(
        (r for s in SUBSETS for r in get_manifest(d.dataset, d.root, s, **d.dataset_args).records),
        column,
    )
    if not counts:
        raise DataError(f"{d.root}: no clip has the metadata column {column!r}")
    return sorted(counts)


def _fold_dir(out: Path, column: str, value: str, seed: int) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in value)
    return out / f"{column}={safe}" / f"seed{seed}"


def leave_one_source_out(
    cfg: TrainConfig,
    column: str,
    out_dir: str | Path,
    values: Sequence[str] | None = None,
    closure: Sequence[str] = ("speaker",),
    seeds: Sequence[int] | None = None,
    resume: bool = True,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Train and evaluate one held-out fold per value of ``column`` and seed; returns ``loso.json``'s content.

    Args:
        cfg: the recipe (its ``data.holdout`` is replaced per fold).
        column: the metadata column that names the sources.
        out_dir: sweep directory.
        values: the sources to hold out, one per fold; default every value found.
        closure: columns the held-out clips must not share with the others (see :mod:`arinext.data.holdout`).
        seeds: training seeds; default the recipe's ``seed``.
        resume: read back folds that already have ``eval/metrics.json`` instead of training them again.
        progress: progress bars (``None``: on a terminal only).
    """
    from .evaluation import evaluate_checkpoint
    from .trainer import fit

    out = Path(out_dir)
    values = list(values) if values else source_column_values(cfg, column)
    seeds = list(seeds) if seeds else [cfg.seed]
    folds = []
    for value in values:
        for seed in seeds:
            fold_cfg = copy.deepcopy(cfg)
            fold_cfg.seed = seed
            fold_cfg.data.holdout = {"column": column, "values": [value], "closure": list(closure)}
            fold_cfg.validate()
            run = _fold_dir(out, column, value, seed)
            metrics_path = run / "eval" / "metrics.json"
            split = holdout_split(fold_cfg.data).summary()  # fails early, before any training, on a bad value
            empty = [s for s in HOLDOUT_SUBSETS if not split["clips"][s]]
            if empty:  # e.g. every validation speaker belongs to the held-out source
                _log.warning("%s=%s: not trained, the %s subset would be empty (%s)", column, value, empty[0], split["clips"])
                folds.append({"value": value, "seed": seed, "clips": split["clips"], "skipped": f"no {empty[0]} clips"})
                continue
            if resume and metrics_path.is_file():
                _log.info("%s=%s seed %d: already evaluated, reading %s", column, value, seed, metrics_path)
                metrics = json.loads(metrics_path.read_text())
            else:
                _log.info("%s=%s seed %d: training into %s (%s)", column, value, seed, run, split["clips"])
                fit(fold_cfg, run, progress=progress)
                metrics = evaluate_checkpoint(run / "best.pt", run / "eval", progress=progress)
            folds.append(_fold_row(value, seed, run, split, metrics))
    content = {"column": column, "closure": list(closure), "values": values, "seeds": seeds, "folds": folds}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "loso.json", undefined_as_null(content), indent=2)
    (out / "loso.md").write_text(render_loso_table(content))
    return content


def _fold_row(value: str, seed: int, run: Path, split: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    form = "training_form" if "training_form" in metrics else "fused"
    held = metrics.get("heldout") or {}
    return {
        "value": value,
        "seed": seed,
        "run": str(run),
        "clips": split["clips"],
        "removed_by_closure": sum(split["removed_by_closure"].values()),
        "closure_leaks": split["closure_leaks"],
        "in_source_top1": metrics[form]["top1"],
        "heldout_top1": held[form]["top1"],
        "gap_top1": metrics[form]["top1"] - held[form]["top1"],
    }


def render_loso_table(content: dict[str, Any]) -> str:
    """``loso.md``: one row per fold, then the mean over seeds per held-out source."""
    column = content["column"]
    lines = [
        f"# Leave one source out: {column} (closure: {', '.join(content['closure']) or 'none'})",
        "",
        f"| held-out {column} | seed | train clips | removed by closure | in-source test clips | in-source top-1 "
        "| held-out clips | held-out top-1 | gap |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in content["folds"]:
        c = f["clips"]
        if "skipped" in f:
            lines.append(f"| {f['value']} | {f['seed']} | {c['training']} | | {c['testing']} | not trained: "
                         f"{f['skipped']} | {c['heldout']} | | |")  # fmt: skip
            continue
        lines.append(
            f"| {f['value']} | {f['seed']} | {c['training']} | {f['removed_by_closure']} | {c['testing']} | "
            f"{f['in_source_top1']:.1%} | {c['heldout']} | {f['heldout_top1']:.1%} | {100 * f['gap_top1']:+.1f} |"
        )
    lines += ["", f"Mean over seeds {content['seeds']}:", "", f"| held-out {column} | in-source top-1 | held-out top-1 | gap |",
              "|---|---:|---:|---:|"]  # fmt: skip
    for value in content["values"]:
        rows = [f for f in content["folds"] if f["value"] == value and "skipped" not in f]
        if rows:
            mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("in_source_top1", "heldout_top1", "gap_top1")}
            lines.append(
                f"| {value} | {mean['in_source_top1']:.1%} | {mean['heldout_top1']:.1%} | {100 * mean['gap_top1']:+.1f} |"
            )
    return "\n".join(lines) + "\n"
