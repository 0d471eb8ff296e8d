"""What ``data_path.py`` and ``shared_cpu.py`` both time: the demo's training data and the tiny model's SGD step.

Import it after anything that must load before torch (``shared_cpu.py`` chooses the OpenMP wait policy that way).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

import arinext
from arinext.apps.demo import bundled_sample
from arinext.data import AudioClipDataset
from arinext.train import load_config
from arinext.train.data import build_dataset


def keywords_training_set() -> AudioClipDataset:
    """The bundled sample's training clips as the ``keywords`` recipe (the demo's) reads them."""
    cfg = load_config("keywords", [f"data.root={bundled_sample()}"])
    return build_dataset(cfg.data, cfg.data.train_subset, training=True, seed=0).dataset


def tiny_sgd_step() -> Callable[[dict[str, Any]], int]:
    """``step(batch) -> clips``: one channels-last SGD step of the demo's tiny model on a loader batch."""
    model = arinext.create_model("audio_rep_inception_next_tiny", num_classes=10).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(batch: dict[str, Any]) -> int:
        x = batch["inputs"].contiguous(memory_format=torch.channels_last)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), batch["target"]).backward()
        opt.step()
        return x.shape[0]

    return step
