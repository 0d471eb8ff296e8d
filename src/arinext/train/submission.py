"""Challenge submissions for the unlabelled test subsets of EPIC-KITCHENS-100 and EPIC-Sounds.

``arinext eval`` on such a subset has no labels to score against: it writes the file the challenge's
server takes instead, a zip holding one ``test.json``. The formats follow the challenges' own
submission scripts:

- EPIC-KITCHENS-100 action recognition (github.com/epic-kitchens/C1-Action-Recognition,
  ``create_submission.py`` and ``utils/challenge.py``)::

      {"version": "0.2", "challenge": "action_recognition", "sls_pt": 2, "sls_tl": 3, "sls_td": 3,
       "results": {"P01_101_0": {"verb": {"0": 0.01, ..., "96": 0.002},
                                 "noun": {"0": 0.03, ..., "299": 0.001}}, ...}}

- EPIC-Sounds audio-based interaction recognition (github.com/epic-kitchens/C9-epic-sounds, the same
  scripts adapted)::

      {"version": "0.1", "challenge": "audio_based_interaction_recognition", "sls_pt": 2, "sls_tl": 3,
       "sls_td": 3, "t_mod": 0, "results": {"P01_101_0": {"interaction": {"0": 0.2, ..., "43": 0.01}}, ...}}

Keys of ``results`` are the rows' ``narration_id``/``annotation_id``; class keys are the dataset's class
ids as strings, every class of every row present; scores are the view-averaged probabilities of the
fused model. ``sls_pt``/``sls_tl``/``sls_td`` are the supervision levels (0-5) the challenges ask each
entry to declare (github.com/epic-kitchens/sls); the default, :func:`supervision_levels`, describes an
arinext run: pre-training level 2 when fine-tuned from a checkpoint (VGG-Sound, a public video dataset)
else 0, temporal full supervision (3: the start/stop times are used), the training split only (3).
``t_mod`` 0 declares an audio-only model.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..data import Manifest
from ..utils.errors import ConfigError, DataError

__all__ = ["CHALLENGES", "Challenge", "make_submission", "parse_sls", "supervision_levels", "write_submission"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Challenge:
    """A challenge's submission format.

    Attributes:
        name: the ``challenge`` field.
        version: the ``version`` field.
        id_column: the annotation column whose values key ``results`` (kept in each record's ``meta``).
        heads: our head name (``""`` for a single head) -> the key of its scores in each result.
        extra: further top-level fields.
    """

    name: str
    version: str
    id_column: str
    heads: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)


#: Dataset name -> the challenge of its unlabelled test subset.
CHALLENGES = {
    "epic_kitchens_100": Challenge("action_recognition", "0.2", "narration_id", {"verb": "verb", "noun": "noun"}),
    "epic_sounds": Challenge(
        "audio_based_interaction_recognition", "0.1", "annotation_id", {"": "interaction"}, {"t_mod": 0}
    ),
}


def supervision_levels(init_from: str | None) -> tuple[int, int, int]:
    """``(sls_pt, sls_tl, sls_td)`` of an arinext run: see the module docstring."""
    return (2 if init_from else 0, 3, 3)


def parse_sls(text: str) -> tuple[int, int, int]:
    """``"PT,TL,TD"`` (three integers 0..5) -> a tuple; ``ConfigError`` otherwise."""
    try:
        levels = tuple(int(t) for t in text.split(","))
    except ValueError:
        levels = ()
    if len(levels) != 3 or not all(0 <= v <= 5 for v in levels):
        raise ConfigError(f"--sls takes three supervision levels 0..5 as PT,TL,TD (e.g. 2,3,3), got {text!r}")
    return levels  # type: ignore[return-value]


def _columns(head: str, data_labels: Sequence[str], model_labels: Sequence[str]) -> list[int]:
    """The model's output column of each dataset class id, matched by name."""
    where = {name: i for i, name in enumerate(model_labels)}
    if set(where) != set(data_labels):
        tag = f" (head {head!r})" if head else ""
        raise DataError(
            f"the model's {len(model_labels)} labels{tag} are not the dataset's {len(data_labels)} classes; "
            f"not in the model: {sorted(set(data_labels) - set(where))[:5]}"
        )
    return [where[n] for n in data_labels]


def make_submission(
    dataset: str,
    manifest: Manifest,
    scores: torch.Tensor | Mapping[str, torch.Tensor],
    indices: torch.Tensor,
    model_labels: Sequence[str] | Mapping[str, Sequence[str]],
    sls: tuple[int, int, int],
) -> dict[str, Any]:
    """The submission of ``scores`` (rows of ``manifest.records[indices]``, columns in the model's label
    order) in the format of ``dataset``'s challenge, columns re-ordered to the dataset's class ids by name.

    Raises:
        DataError: ``dataset`` has no challenge format, a record lacks its id, or the labels differ.
    """
    if dataset not in CHALLENGES:
        raise DataError(
            f"{manifest.source}: the subset is unlabelled and {dataset!r} has no challenge submission format "
            f"(known: {sorted(CHALLENGES)}); nothing to score"
        )
    challenge = CHALLENGES[dataset]
    heads = scores if isinstance(scores, Mapping) else {"": scores}
    data_labels = manifest.labels if isinstance(manifest.labels, dict) else {"": manifest.labels}
    ours = model_labels if isinstance(model_labels, Mapping) else {"": model_labels}
    tables = {}
    for head, key in challenge.heads.items():
        cols = _columns(head, data_labels[head], list(ours[head]))
        tables[key] = heads[head].double()[:, cols].tolist()
    results: dict[str, Any] = {}
    for row, index in enumerate(indices.tolist()):
        rec = manifest.records[index]
        ident = rec.value(challenge.id_column)
        if ident is None:
            raise DataError(f"{manifest.source}: the record of {rec.source} has no {challenge.id_column}")
        # float32 scores carry about 7 significant digits: writing more only makes the file larger
        results[ident] = {key: {str(c): float(f"{v:.7g}") for c, v in enumerate(t[row])} for key, t in tables.items()}
    absent = len(manifest.records) - len(results)
    if absent:
        _log.warning(
            "%s: %d of %d rows have no scores (unreadable clips skipped); the challenge refuses an incomplete "
            "submission", manifest.source, absent, len(manifest.records),
        )  # fmt: skip
    pt, tl, td = sls
    head = {"version": challenge.version, "challenge": challenge.name, "sls_pt": pt, "sls_tl": tl, "sls_td": td}
    return {**head, **challenge.extra, "results": results}


def write_submission(submission: dict[str, Any], path: str | Path) -> Path:
    """``submission`` as ``test.json`` inside the zip file ``path`` (what the challenge server takes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("test.json", json.dumps(submission, allow_nan=False))
    return path
