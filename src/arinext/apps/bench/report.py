"""Render a :func:`arinext.bench.run_bench` result: Markdown table, JSON file and a PNG plot."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["plot", "to_markdown", "write_reports"]

_logger = logging.getLogger(__name__)


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def to_markdown(result: Mapping[str, Any]) -> str:
    """One table per input size: params, GMACs, memory, latency median/p90, GMAC/s and ratio to the reference."""
    rows = result["rows"]
    roof = result.get("roofline")
    lines: list[str] = []
    m = result["machine"]
    lines.append(
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, {m['threads']} threads, "
        f"OMP_WAIT_POLICY={m.get('omp_wait_policy', 'default')}."
    )
    if roof:
        lines.append(
            f"Roofline: fp32 matmul {roof['matmul_size']}^3 {roof['matmul_gmacs']:.1f} GMAC/s best, "
            f"{roof['matmul_gmacs_median']:.1f} median; copy {roof['copy_mib']} MiB "
            f"{roof['copy_gbs']:.1f} GB/s best, {roof['copy_gbs_median']:.1f} median (before the runs). "
            "The table's matmul rate is timed interleaved with the models; 'of matmul' divides by it."
        )
    for size in dict.fromkeys(r["size"] for r in rows):
        sub = [r for r in rows if r["size"] == size]
        ref = sub[0]["reference"]
        lines += ["", f"Input {size} ({sub[0]['frames']}x{sub[0]['mels']}); ratio = speed-up over `{ref}`.", ""]
        head = "| model:form | batch | params | GMACs | peak MiB | median ms | p90 ms | GMAC/s | ratio |"
        sep = "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        if roof:
            head, sep = head + " matmul GMAC/s | of matmul |", sep + "---:|---:|"
        lines += [head, sep]
        for r in sub:
            cells = [
                f"`{r['candidate']}`",
                str(r["batch"]),
                f"{r['params'] / 1e6:.3f}M",
                f"{r['macs'] / 1e9:.3f}",
                _fmt(r["peak_memory_mib"], ".1f"),
                f"{r['median_ms']:.1f}",
                f"{r['p90_ms']:.1f}",
                f"{r['gmacs_per_s']:.1f}",
                f"{r['speedup_vs_reference']:.2f}x",
            ]
            if roof:
                cells += [f"{r['matmul_gmacs_interleaved']:.1f}", f"{100 * r['fraction_of_matmul']:.0f}%"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(result: Mapping[str, Any], path: str | Path, accuracy: Mapping[str, float] | None = None) -> Path:
    """Latency vs MACs (or accuracy vs latency when ``accuracy`` maps model names to top-1) per batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    batches = sorted({r["batch"] for r in rows})
    fig, axes = plt.subplots(1, len(batches), figsize=(6 * len(batches), 4.5), squeeze=False)
    for ax, batch in zip(axes[0], batches):
        for r in (r for r in rows if r["batch"] == batch):
            label = f"{r['candidate']} @{r['size']}"
            if accuracy:
                model = r["candidate"].split(":")[0]
                if model not in accuracy:
                    continue
                x, y = r["median_ms"], accuracy[model]
            else:
                x, y = r["macs"] / 1e9, r["median_ms"]
            ax.scatter([x], [y])
            ax.annotate(label, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_title(f"batch {batch}")
        if accuracy:
            ax.set_xlabel("median latency (ms)")
            ax.set_ylabel("accuracy")
        else:
            ax.set_xlabel("GMACs per clip")
            ax.set_ylabel("median latency (ms)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_reports(
    result: Mapping[str, Any], out_dir: str | Path, accuracy: Mapping[str, float] | None = None
) -> dict[str, Path]:
    """Write ``bench.json``, ``bench.md`` and ``bench.png`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "bench.json", "markdown": out / "bench.md", "png": out / "bench.png"}
    paths["json"].write_text(json.dumps(result, indent=2))
    paths["markdown"].write_text(to_markdown(result))
    plot(result, paths["png"], accuracy)
    _logger.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return paths
