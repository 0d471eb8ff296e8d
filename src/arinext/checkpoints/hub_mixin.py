"""An arinext model behind ``huggingface_hub.PyTorchModelHubMixin``: ``from_pretrained``, ``save_pretrained``
and ``push_to_hub`` as the Hugging Face ecosystem spells them. Needs ``pip install 'arinext[hub]'``.

The directory format is arinext's own (:func:`arinext.checkpoints.save_pretrained`): the class's
``__init__`` takes exactly the keys of ``config.json``, ``_save_pretrained`` writes ``config.json``,
``model.safetensors`` and the model card (the mixin then leaves both alone, since it writes them only
when absent), and ``_from_pretrained`` reads a local directory with :func:`arinext.checkpoints.load`
(no network) or downloads a repo id first. Either side reads what the other wrote::

    >>> m = ARINextModel.from_pretrained("runs/demo/train/pretrained")   # doctest: +SKIP
    >>> m.net                                                           # the arinext model  # doctest: +SKIP
    >>> m.save_pretrained("my-model"); m.push_to_hub("me/my-model")     # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..layers.reparam import reparameterize_model
from ..models import ModelInfo, create_model, metadata, set_metadata
from ..utils.errors import InputError
from ..utils.optional import MissingExtraError
from .hub import download
from .pretrained import save_pretrained

try:
    from huggingface_hub import PyTorchModelHubMixin
except ImportError as exc:
    raise MissingExtraError("the Hub mixin needs huggingface_hub: pip install 'arinext[hub]'") from exc

__all__ = ["ARINextModel"]


class ARINextModel(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="arinext",
    pipeline_tag="audio-classification",
    tags=["arinext", "audio", "audio-classification", "AudioRepInceptionNeXt"],
    paper_url="https://arxiv.org/abs/2404.13551",
):
    """A registered arinext model (``self.net``) with the Hub mixin's methods; ``forward`` is the model's.

    The constructor arguments are the keys of arinext's ``config.json``; :meth:`from_model` wraps a model
    that already exists.
    """

    def __init__(
        self,
        model: str,
        model_args: dict[str, Any],
        fold: str | None = None,
        labels: Any = None,
        frontend: dict[str, Any] | None = None,
        train_config: dict[str, Any] | None = None,
        card: dict[str, Any] | None = None,
        format_version: int = 1,
        arinext_version: str | None = None,
    ) -> None:
        super().__init__()
        net = create_model(model, **model_args)
        if fold is not None:
            reparameterize_model(net, inplace=True, fold=fold)
        config = {"model": model, "model_args": dict(model_args), "labels": labels, "frontend": frontend,
                  "train_config": train_config, "card": card}  # fmt: skip
        self.net = set_metadata(net, ModelInfo.from_config(config)).eval()

    @classmethod
    def from_model(cls, net: nn.Module) -> ARINextModel:
        """Wrap an existing model (the labels, front end and card of its metadata travel with it)."""
        info = metadata(net)
        if info.name is None:
            raise InputError("model has no registered name: build it with arinext.create_model()")
        config = info.to_config()
        obj = cls(**{**config, "model_args": dict(info.args)})
        obj.net = net
        return obj

    def forward(self, x: torch.Tensor) -> Any:
        return self.net(x)

    def _save_pretrained(self, save_directory: Path) -> None:
        save_pretrained(self.net, save_directory)

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str = "cpu",
        **config: Any,
    ) -> ARINextModel:
        from . import load

        folder = Path(model_id) if os.path.isdir(model_id) else download(
            model_id, revision, cache_dir, local_files_only, token
        )
        return cls.from_model(load(folder, map_location=map_location))
