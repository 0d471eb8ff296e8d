"""arinext: train and run efficient audio classifiers (AudioRepInceptionNeXt), from recipes to int8 deployment.

Layers, each importing only those below it (``import-linter`` contracts in ``pyproject.toml``)::

    cli                 the ``arinext`` command (thin)
    apps                demo, dataset builders, benchmark runner, HEAR API, event detection
    train | deploy      recipes and training loop | classifier, streaming, export, int8
    checkpoints         one loader for every checkpoint form
    data                manifests of clips, the clip dataset, loaders
    audio | models      front end, decoding, augmentation | registered models
    layers              re-parameterizable layers, the classifier interface
    utils               timing, progress, optional extras, complexity counts, CPUs and load

Importing arinext before torch sets ``OMP_WAIT_POLICY=PASSIVE`` unless the variable is already set: idle
OpenMP threads then sleep instead of spinning, which keeps training and inference from collapsing when
other processes share the CPUs (see :mod:`arinext.utils.cpu`). The OpenMP runtime reads the variable only
when torch is imported, so it cannot be changed afterwards.
"""

import os as _os
import sys as _sys

if "torch" not in _sys.modules:
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .audio import PRESETS, FrontendConfig, LogMel, get_preset
from .checkpoints import load, load_official_checkpoint, load_pretrained, save_pretrained
from .deploy import AudioClassifier, optimize_for_inference
from .layers import reparameterize_model
from .models import AudioRepInceptionNeXt, create_model, list_models
from .version import __version__

__all__ = [
    "PRESETS",
    "AudioClassifier",
    "AudioRepInceptionNeXt",
    "FrontendConfig",
    "LogMel",
    "__version__",
    "create_model",
    "get_preset",
    "list_models",
    "load",
    "load_official_checkpoint",
    "load_pretrained",
    "optimize_for_inference",
    "reparameterize_model",
    "save_pretrained",
]
