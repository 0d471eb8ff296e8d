"""Render a :func:`arinext.bench.run_bench` result: Markdown table, JSON file and a PNG plot."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...utils.jsonout import undefined_as_null, write_json

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
    load = result.get("load")
    if load and load.get("loaded"):
        lines += [f"**{load['message']}**", ""]
    lines.append(
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, {m['threads']} threads, "
        f"OMP_WAIT_POLICY={m.get('omp_wait_policy', 'default')}, {_malloc(m)}."
    )
    if load:
        lines.append(_load_line(load["signals"]))
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
        ref_model = ref.partition(":")[0]
        lines += [
            "",
            f"Input {size} ({sub[0]['frames']}x{sub[0]['mels']}); ratio = speed-up over `{ref}`; "
            f"same form = speed-up over `{ref_model}` in the row's own form.",
            "",
        ]
        head = "| model:form | batch | params | GMACs | peak MiB | median ms | p90 ms | GMAC/s | ratio | same form |"
        sep = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
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
                _ratio(r.get("speedup_vs_reference_same_form")),
            ]
            if roof:
                cells += [f"{r['matmul_gmacs_interleaved']:.1f}", f"{100 * r['fraction_of_matmul']:.0f}%"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _malloc(machine: Mapping[str, Any]) -> str:
    mib = machine.get("malloc_retains_mib")
    return f"malloc keeps freed blocks up to {mib} MiB" if mib else "malloc at the C library's default"


def _load_line(signals: Mapping[str, Any]) -> str:
    def value(key: str, spec: str, scale: float = 1.0) -> str:
        v = signals.get(key)
        return "n/a" if v is None else format(v * scale, spec)

    return (
        f"Load during the runs: 1-min load average {value('load_before', '.1f')} before, "
        f"{value('load_after', '.1f')} after, on {signals.get('cpus')} usable CPUs; our threads waited for a CPU "
        f"{value('wait_fraction', '.1f', 100)}% of their runnable time; CPU pressure {value('cpu_pressure', '.0f')}%."
    )


def plot(result: Mapping[str, Any], path: str | Path, accuracy: Mapping[str, float] | None = None) -> Path:
    """Median latency of every candidate as horizontal bars, one panel per (input size, batch); with
    ``accuracy`` (model name -> top-1) an accuracy-vs-latency scatter per batch size, labelled in a legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    groups = list(dict.fromkeys((r["size"], r["batch"]) for r in rows))
    if accuracy:
        groups = list(dict.fromkeys((None, r["batch"]) for r in rows))
    names = list(dict.fromkeys(r["candidate"] for r in rows))
    height = 0.45 * len(names) + 1.5
    fig, axes = plt.subplots(1, len(groups), figsize=(6.5 * len(groups), height), squeeze=False)
    for ax, (size, batch) in zip(axes[0], groups):
        sub = [r for r in rows if r["batch"] == batch and (size is None or r["size"] == size)]
        if accuracy:
            for r in sub:
                model = r["candidate"].split(":")[0]
                if model in accuracy:
                    ax.scatter([r["median_ms"]], [accuracy[model]], label=f"{r['candidate']} @{r['size']}")
            ax.set(xlabel="median latency (ms)", ylabel="accuracy", title=f"batch {batch}")
            ax.legend(fontsize=7, loc="best")
        else:
            sub.sort(key=lambda r: r["median_ms"])
            labels = [r["candidate"] for r in sub]
            values = [r["median_ms"] for r in sub]
            colors = ["#c63" if r["candidate"] == r["reference"] else "#2a7" for r in sub]
            ax.barh(labels, values, color=colors)
            for i, r in enumerate(sub):
                ax.text(values[i], i, f" {values[i]:.1f} ms ({r['speedup_vs_reference']:.2f}x)", va="center", fontsize=8)
            ax.invert_yaxis()
            ax.set_xlim(0, max(values) * 1.45)
            ax.set(xlabel="median latency (ms), lower is better", title=f"input {size}, batch {batch}")
            ax.tick_params(axis="y", labelsize=8)
        ax.grid(alpha=0.3, axis="x")
    machine = result.get("machine", {})
    fig.suptitle(f"arinext bench: {machine.get('cpu', '')}, {machine.get('threads', '?')} threads "
                 "(orange: the reference the ratios use)", fontsize=10)  # fmt: skip
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def write_reports(
    result: Mapping[str, Any], out_dir: str | Path, accuracy: Mapping[str, float] | None = None
) -> dict[str, Path]:
    """Write ``bench.json``, ``bench.md`` and ``bench.png`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "bench.json", "markdown": out / "bench.md", "png": out / "bench.png"}
    write_json(paths["json"], undefined_as_null(result), indent=2)
    paths["markdown"].write_text(to_markdown(result))
    plot(result, paths["png"], accuracy)
    _logger.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return paths
