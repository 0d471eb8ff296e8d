"""Run reports: per-epoch CSV log, optional TensorBoard events, training curves, evaluation files.

matplotlib (the ``plot`` extra) draws the PNGs and TensorBoard (``pip install tensorboard``) receives
scalars when installed; without them the corresponding files are skipped with one log message.
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import math
from pathlib import Path
from typing import Any

import torch

from ..utils.jsonout import undefined_as_null, write_json
from .tasks import EvalResult

__all__ = ["EpochLogger", "plot_confusion", "plot_curves", "write_eval_report"]

_log = logging.getLogger(__name__)


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _pyplot() -> Any:
    if not _have("matplotlib"):
        _log.info("matplotlib is not installed: skipping plots (pip install 'arinext[plot]')")
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class EpochLogger:
    """Appends one row per epoch to ``log.csv`` and, if TensorBoard is installed, to event files in ``tb/``.

    Rows are re-read from an existing ``log.csv`` (a resumed run), keeping epochs before ``start_epoch``.
    """

    def __init__(self, out_dir: str | Path, start_epoch: int = 0, tensorboard: bool = True) -> None:
        self.path = Path(out_dir) / "log.csv"
        self.rows: list[dict[str, Any]] = []
        if self.path.is_file():
            with open(self.path, newline="") as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= start_epoch]
        self.writer = None
        if tensorboard and _have("tensorboard"):
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(out_dir) / "tb"), purge_step=start_epoch + 1)
        elif tensorboard:
            _log.info("tensorboard is not installed: writing log.csv only")

    def log(self, row: dict[str, Any]) -> None:
        self.rows.append(dict(row))
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.rows)
        tmp.replace(self.path)
        if self.writer is not None:
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)) and not math.isnan(v):
                    self.writer.add_scalar(k.replace("val_", "val/").replace("train_", "train/"), v, row["epoch"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def plot_curves(rows: list[dict[str, Any]], path: str | Path) -> Path | None:
    """Loss and accuracy per epoch (train and validation) as a two-panel PNG."""
    plt = _pyplot()
    if plt is None or not rows:
        return None

    def series(key: str) -> tuple[list[int], list[float]]:
        pts = [(int(r["epoch"]), float(r[key])) for r in rows if r.get(key) not in (None, "")]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    from matplotlib.ticker import MaxNLocator

    names = {"train_loss": "training loss", "train_acc": "training accuracy", "val_top1": "validation top-1"}
    for key, ax in (("train_loss", ax_loss), ("train_acc", ax_acc), ("val_top1", ax_acc)):
        x, y = series(key)
        if x:
            ax.plot(x, y, marker="o" if len(x) <= 30 else None, label=names[key])
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="Training loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_confusion(confusion: torch.Tensor, labels: list[str], path: str | Path, title: str = "") -> Path | None:
    """Confusion matrix (true class x predicted class) as a PNG: clip counts beside the row-normalised view.

    Classes without test clips are marked "(no clips)" instead of showing an empty row as a perfect score.
    """
    plt = _pyplot()
    if plt is None:
        return None
    conf = confusion.double()
    support = conf.sum(dim=1)
    norm = conf / support.clamp(min=1)[:, None]
    n, total = len(labels), int(support.sum())
    rows = [f"{name} ({int(k)})" if k > 0 else f"{name} (no clips)" for name, k in zip(labels, support.tolist())]
    size = min(3.5 + 0.3 * n, 30)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1.5, size + 0.8))
    for ax, values, cmap, label in ((axes[0], conf, "Blues", "clips"), (axes[1], norm, "Greens", "fraction of row")):
        im = ax.imshow(values.numpy(), cmap=cmap, vmin=0, vmax=None if label == "clips" else 1)
        if n <= 60:
            ax.set_xticks(range(n), labels, rotation=90, fontsize=8)
            ax.set_yticks(range(n), rows, fontsize=8)
        if n <= 25:  # numbers in the cells while they stay legible
            top = float(values.max()) or 1.0
            for i in range(n):
                for j in range(n):
                    v = float(values[i, j])
                    if v > 0:
                        text = f"{int(v)}" if label == "clips" else f"{v:.2f}"
                        ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if v > 0.6 * top else "black")
        ax.set(xlabel="predicted class", ylabel="true class (test clips)")
        fig.colorbar(im, ax=ax, fraction=0.046, label=label)
    accuracy = float(conf.diagonal().sum()) / max(total, 1)
    axes[0].set_title("Counts")
    axes[1].set_title("Row-normalised (recall per class on the diagonal)")
    head = f"{title}: " if title and title != "class" else ""
    fig.suptitle(f"Confusion matrix, {head}{total} clips, top-1 {accuracy:.1%}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def write_eval_report(
    results: dict[str, EvalResult], out_dir: str | Path, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write ``metrics.json`` (every form's summary + ``extra``), and for the first form the
    per-class table(s) ``per_class[_HEAD].csv`` and confusion matrix PNG(s). Returns the JSON content."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    content = {name: undefined_as_null(r.summary) for name, r in results.items()}
    content.update(undefined_as_null(extra or {}))
    write_json(out / "metrics.json", content, indent=2, sort_keys=True)
    first = next(iter(results.values()))
    for head, rows in first.per_class.items():
        suffix = "" if head == "class" else f"_{head}"
        with open(out / f"per_class{suffix}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["class"])
            w.writeheader()
            w.writerows(rows)
        if head in first.confusion:
            plot_confusion(first.confusion[head], first.labels[head], out / f"confusion{suffix}.png", head)
    return content
