"""What a model is and what it was trained on: one frozen record per model, read with :func:`metadata`.

Every model built by :func:`~arinext.models.create_model` carries a :class:`ModelInfo` with its registered
name and constructor arguments; :func:`arinext.checkpoints.load` adds the labels, the front end, the
training recipe and where the weights came from. The record is immutable: code that changes it builds a
new one (``dataclasses.replace``) and stores it with :func:`set_metadata`.

    >>> import arinext
    >>> from arinext.models import metadata
    >>> m = arinext.create_model("audio_rep_inception_next_tiny", num_classes=3)
    >>> metadata(m).name, metadata(m).args["num_classes"], metadata(m).fold
    ('audio_rep_inception_next_tiny', 3, None)

The saved forms keep their keys: :meth:`ModelInfo.to_config` gives the fields of a save_pretrained
``config.json`` (``model``, ``model_args``, ``fold``, ``labels``, ``frontend``, ``train_config``, ``card``)
and :meth:`ModelInfo.from_config` reads them back. ``model.pretrained_cfg``, the dict of arinext 0.1, is a
read-only view of the record under those keys (plus ``epoch``, ``source``, ``path``, ``dataset``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, Union

from torch import nn

from ..layers.reparam import Fold, fold_state
from ..utils.modules import unwrap_model

__all__ = ["Labels", "ModelInfo", "Source", "metadata", "set_metadata"]

#: Class names of one head, or of several heads by name.
Labels = Union[list[str], dict[str, list[str]]]
#: Which checkpoint form the weights were read from.
Source = Literal["training", "pretrained", "official"]

_ATTRIBUTE = "_arinext_metadata"
#: record field -> key in config.json and in ``pretrained_cfg`` (where the names differ)
_KEYS = {"name": "model", "args": "model_args", "recipe": "train_config"}
#: the fields that config.json stores (the rest say where this copy of the weights came from)
_CONFIG_FIELDS = ("name", "args", "fold", "labels", "frontend", "recipe", "card")


@dataclass(frozen=True)
class ModelInfo:
    """A model's metadata.

    Attributes:
        name: the registered model name (:func:`~arinext.models.list_models`), ``None`` for a model that
            :func:`~arinext.models.create_model` did not build.
        args: the constructor arguments (``num_classes`` and the overrides; ``inference_mode`` left out).
        fold: ``None`` (training form), ``"paper"`` or ``"full"``; :func:`metadata` reads it from the layers.
        labels: class names, a dict of them per head for a multi-head model, or ``None``.
        frontend: the front end the model expects, as :meth:`arinext.FrontendConfig.to_dict` writes it.
        recipe: the training recipe (``TrainConfig.to_dict()``) it was trained with, if known.
        card: the model card's inputs (metrics, command, license, dataset, name).
        epoch: the epoch a training checkpoint was written after.
        source: the checkpoint form it was loaded from: ``"training"``, ``"pretrained"`` or ``"official"``.
        path: the file or directory it was loaded from.
        dataset: the dataset an authors' checkpoint names in its config.
    """

    name: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    fold: Fold | None = None
    labels: Labels | None = None
    frontend: Mapping[str, Any] | None = None
    recipe: Mapping[str, Any] | None = None
    card: Mapping[str, Any] = field(default_factory=dict)
    epoch: int | None = None
    source: Source | None = None
    path: str | None = None
    dataset: str | None = None

    @property
    def num_classes(self) -> int | dict[str, int] | None:
        """Classes per head from ``labels`` (else the ``num_classes`` argument), or ``None``."""
        if isinstance(self.labels, Mapping):
            return {k: len(v) for k, v in self.labels.items()}
        if self.labels is not None:
            return len(self.labels)
        return self.args.get("num_classes")

    def to_config(self) -> dict[str, Any]:
        """The fields a save_pretrained ``config.json`` stores, under its keys."""
        return {_KEYS.get(f, f): getattr(self, f) for f in _CONFIG_FIELDS}

    def as_dict(self) -> dict[str, Any]:
        """Every field, under the keys of ``config.json`` (the ``pretrained_cfg`` dict of arinext 0.1)."""
        return {_KEYS.get(f.name, f.name): getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **extra: Any) -> ModelInfo:
        """The record of a ``config.json`` (or ``pretrained_cfg``) mapping; ``extra`` sets other fields.

        Keys that are not fields (``format_version``, ``arinext_version``) are ignored.
        """
        keys = {_KEYS.get(f.name, f.name): f.name for f in fields(cls)}
        values = {keys[k]: v for k, v in config.items() if k in keys and v is not None}
        return cls(**{**values, **extra})


class _ReadOnlyView(Mapping):
    """``model.pretrained_cfg``: :func:`metadata` of the model under the old dict keys, read-only."""

    def __init__(self, model: nn.Module) -> None:
        self._model = model

    def _data(self) -> dict[str, Any]:
        return metadata(self._model).as_dict()

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    def __repr__(self) -> str:
        return f"pretrained_cfg({self._data()!r})"


def metadata(model: nn.Module) -> ModelInfo:
    """The :class:`ModelInfo` of ``model`` (wrappers such as DDP or ``torch.compile`` looked through).

    ``fold`` is read from the model's layers, so it is right after :func:`arinext.reparameterize_model`.
    A model that carries no record gets an empty one (every field ``None`` or empty).
    """
    model = unwrap_model(model)
    info = getattr(model, _ATTRIBUTE, None) or ModelInfo()
    fold = fold_state(model)
    return info if info.fold == fold else replace(info, fold=fold)


def set_metadata(model: nn.Module, info: ModelInfo) -> nn.Module:
    """Store ``info`` as the metadata of ``model`` (and its read-only ``pretrained_cfg`` view); returns ``model``."""
    if not isinstance(info, ModelInfo):
        raise TypeError(f"expected a ModelInfo, got {type(info).__name__}")
    model = unwrap_model(model)
    object.__setattr__(model, _ATTRIBUTE, info)
    object.__setattr__(model, "pretrained_cfg", _ReadOnlyView(model))
    return model
