"""Model cards: the ``README.md`` of a checkpoint directory, as the Hugging Face Hub reads it.

A card is a YAML header (the Hub's model-card metadata) and a Markdown body::

    ---
    library_name: arinext
    pipeline_tag: audio-classification
    license: ...                        # what the caller says; "unknown" otherwise
    tags: [arinext, audio, audio-classification, AudioRepInceptionNeXt, <model name>]
    datasets: [...]                     # when known
    metrics: [...]                      # when known, with a model-index entry per metric
    ---
    # <model name>  ... labels, front end, training recipe, metrics, frame-level head, usage, the command

Everything comes from the directory itself: ``config.json`` (which also keeps the card's inputs under
``"card"``: metrics, command, license, dataset, so a card can be written again) and, when present,
``frame_head.json``. A ``README.md`` that arinext did not write is never replaced.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..utils.errors import InputError
from ..utils.provenance import current_command

__all__ = [
    "CARD_MARKER",
    "CARD_NAME",
    "FRAME_HEAD_CONFIG",
    "is_generated_card",
    "render_model_card",
    "write_model_card",
]

CARD_NAME = "README.md"
#: First line of the body of every card arinext writes; a README without it is the user's own.
CARD_MARKER = "<!-- model card written by arinext; edits are lost when arinext writes it again -->"
PAPER = "https://arxiv.org/abs/2404.13551"
#: The frame-level head's description, next to ``config.json`` when one was fitted (:mod:`arinext.inference.framehead`).
FRAME_HEAD_CONFIG = "frame_head.json"


def _metric_rows(metrics: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """``{"name": value}`` or ``{"name": {"value", "type", "dataset", "split"}}`` -> rows with a ``type``."""
    rows = []
    for name, v in (metrics or {}).items():
        row = dict(v) if isinstance(v, Mapping) else {"value": v}
        if "value" not in row:
            raise InputError(f"metric {name!r} has no value")
        low = name.lower()
        default = "accuracy" if ("acc" in low or "top-1" in low or "top1" in low) else "f1" if "f1" in low else name
        row.setdefault("type", default)
        rows.append({"name": str(name), **row})
    return rows


def _recipe_lines(train: Mapping[str, Any] | None) -> list[str]:
    if not train:
        return []
    data = train.get("data") or {}
    optim = train.get("optim") or {}
    facts = [
        ("dataset", data.get("dataset")),
        ("data folder", Path(str(data["root"])).name if data.get("root") else None),  # no local paths in a card
        ("epochs", optim.get("epochs")),
        ("learning rate", optim.get("lr")),
        ("batch size", data.get("batch_size")),
        ("SpecAugment", data.get("spec_augment")),
        ("background noise SNR (dB)", data.get("noise_snr_db") if data.get("background_noise") else None),
        ("init from", train.get("init_from")),
        ("seed", train.get("seed")),
    ]
    rows = [f"| {k} | `{v}` |" for k, v in facts if v not in (None, "", [])]
    return ["## Training", "", "| setting | value |", "|---|---|", *rows, ""] if rows else []


def _frame_head_lines(head: Mapping[str, Any] | None) -> list[str]:
    if not head:
        return []
    info = head.get("info") or {}
    val = info.get("validation") or {}
    lines = [
        "## Frame-level head (sound event detection)",
        "",
        f"`frame_head.safetensors`: a {'linear' if not head.get('hidden') else 'one-hidden-layer'} classifier on the "
        f"timestamp embeddings of stages {head.get('stages')} every {head.get('hop_ms')} ms "
        f"({head.get('in_features')}-d, {head.get('context')} neighbours each side), classes + `{head.get('background')}`, "
        "fitted with the backbone frozen (`arinext events fit`). Decoding chosen on validation mixtures: "
        f"`{json.dumps(head.get('decode'))}`.",
        "",
    ]
    if val:
        def num(key: str) -> str:
            v = val.get(key)
            return "n/a" if v is None else f"{v:.3f}"

        lines += [
            f"Validation (sed_eval, event-based, {1000 * val.get('collar_s', 0.2):.0f} ms collar): F1 {num('f1')}, "
            f"precision {num('precision')}, recall {num('recall')} on {val.get('reference_events')} events.",
            "",
        ]
    if info.get("command"):
        lines += ["```bash", str(info["command"]), "```", ""]
    return lines


def render_model_card(
    config: Mapping[str, Any], frame_head: Mapping[str, Any] | None = None, files: str | None = None
) -> str:
    """The text of the card of a directory whose ``config.json`` is ``config`` (see the module docstring);
    ``files``: a Markdown section describing other files (exported models), placed before "Usage"."""
    card = dict(config.get("card") or {})
    arch = config["model"]
    labels = config.get("labels")
    fe = config.get("frontend") or {}
    train = config.get("train_config") or {}
    rows = _metric_rows(card.get("metrics"))
    dataset = card.get("dataset") or (train.get("data") or {}).get("dataset")
    title = card.get("name") or arch
    tags = ["arinext", "audio", "audio-classification", "AudioRepInceptionNeXt", arch]
    if frame_head:
        tags.append("sound-event-detection")
    meta: dict[str, Any] = {
        "library_name": "arinext",
        "pipeline_tag": "audio-classification",
        "license": card.get("license") or "unknown",
        "tags": tags,
    }
    datasets = list(dict.fromkeys(str(d) for d in [dataset, *(r.get("dataset") for r in rows)] if d))
    if datasets:
        meta["datasets"] = datasets
    if rows:
        meta["metrics"] = sorted({str(r["type"]) for r in rows})
        indexed = [r for r in rows if r.get("dataset", dataset)]  # the Hub's model-index needs a dataset
        if indexed:
            meta["model-index"] = [
                {
                    "name": title,
                    "results": [
                        {
                            "task": {"type": "audio-classification", "name": "Audio Classification"},
                            "dataset": {
                                "name": str(r.get("dataset", dataset)),
                                "type": str(r.get("dataset", dataset)),
                                **({"split": str(r["split"])} if "split" in r else {}),
                            },
                            "metrics": [{"type": str(r["type"]), "value": r["value"], "name": r["name"]}],
                        }
                        for r in indexed
                    ],
                }
            ]
    fold = config.get("fold")
    form = f"fused ({fold} fold)" if fold else "training form"
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip(),
        "---",
        CARD_MARKER,
        "",
        f"# {title}",
        "",
        f"An [AudioRepInceptionNeXt]({PAPER}) audio classifier: `{arch}` "
        f"({', '.join(f'{k}={v}' for k, v in (config.get('model_args') or {}).items())}), {form}, "
        f"saved by arinext {config.get('arinext_version', '')}: `config.json` (architecture, labels, front end) and "
        "`model.safetensors` (weights, no pickle).",
        "",
    ]
    if card.get("license") is None:
        lines += ["The licence of these weights was not given when they were saved: it depends on the training data.", ""]
    if isinstance(labels, list):
        lines += ["## Labels", "", f"{len(labels)} classes, in output order: " + ", ".join(f"`{x}`" for x in labels), ""]
    elif isinstance(labels, Mapping):
        lines += ["## Labels", ""] + [f"- {h} ({len(v)}): " + ", ".join(f"`{x}`" for x in v) for h, v in labels.items()]
        lines += [""]
    if fe:
        lines += [
            "## Front end",
            "",
            "Log-mel spectrogram computed by `arinext.LogMel` from these parameters (`config.json`, `frontend`):",
            "",
            "| parameter | value |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v} |" for k, v in fe.items()] + [""]
    lines += _recipe_lines(train)
    if rows:
        lines += ["## Metrics", "", "| metric | value | dataset | split |", "|---|---|---|---|"]
        lines += [f"| {r['name']} | {r['value']} | {r.get('dataset', dataset or '')} | {r.get('split', '')} |" for r in rows]
        lines += [""]
    lines += _frame_head_lines(frame_head)
    if files:
        lines += [files.strip(), ""]
    lines += [
        "## Usage",
        "",
        "```python",
        "import arinext",
        "",
        'clf = arinext.AudioClassifier.from_pretrained("path/to/this/folder")',
        'clf("clip.wav", top_k=3)           # [{"label": ..., "score": ...}, ...]',
        'clf.embed("clip.wav")              # the vector the head reads',
        "```",
        "",
        "```bash",
        "arinext predict -m path/to/this/folder clip.wav" + (" --events" if frame_head else ""),
        "```",
        "",
    ]
    if card.get("command"):
        lines += ["## How it was made", "", "```bash", str(card["command"]), "```", ""]
    lines += [
        "## Citation",
        "",
        "Lau, Rehman, Po: AudioRepInceptionNeXt: a lightweight single-stream architecture for efficient audio "
        f"recognition. Neurocomputing, 2024. {PAPER}",
        "",
    ]
    return "\n".join(lines)


def is_generated_card(path: Path) -> bool:
    """Whether ``path`` is a card arinext wrote (so it may be replaced)."""
    try:
        return CARD_MARKER in path.read_text(errors="replace")
    except OSError:
        return False


def write_model_card(
    directory: str | Path, name: str = CARD_NAME, config: Mapping[str, Any] | None = None, files: str | None = None
) -> Path | None:
    """(Re)write the card of a checkpoint directory from its ``config.json`` (or ``config``) and
    ``frame_head.json``; ``files`` as in :func:`render_model_card`.

    Returns the path written, or ``None`` when ``directory/name`` exists and arinext did not write it.
    """
    directory = Path(directory)
    path = directory / name
    if path.exists() and not is_generated_card(path):
        return None
    if config is None:
        config = json.loads((directory / "config.json").read_text())
    head = None
    if (directory / FRAME_HEAD_CONFIG).is_file():
        head = json.loads((directory / FRAME_HEAD_CONFIG).read_text())
    path.write_text(render_model_card(config, head, files))
    return path
