"""arinext: train and run efficient audio classifiers (AudioRepInceptionNeXt), from recipes to int8 deployment.

Layers, each importing only those below it (``import-linter`` contracts in ``pyproject.toml``)::

    cli                 the ``arinext`` command (thin)
    apps                demo, dataset builders, benchmark runner, HEAR API, event detection
    train | inference | export
                        recipes and training loop | classifier, streaming, frame scores, events |
                        ONNX, TorchScript, int8 files and their checks
    checkpoints         one loader for every checkpoint form
    data                manifests of clips, the clip dataset, loaders
    audio | models      front end, decoding, augmentation | registered models
    layers              re-parameterizable layers, the classifier interface
    utils               timing, progress, optional extras, complexity counts, CPUs and load

Importing arinext before torch sets ``OMP_WAIT_POLICY=PASSIVE`` unless ``OMP_WAIT_POLICY`` or
``GOMP_SPINCOUNT`` is already set: idle OpenMP threads then sleep instead of spinning, which keeps training
from collapsing when other processes share the CPUs (see :mod:`arinext.utils.cpu`). On an idle machine it
costs batch-1 inference of small models with several threads 2-3x in latency (each operator wakes the
sleeping threads); ``GOMP_SPINCOUNT=10000`` (a short spin) or ``OMP_WAIT_POLICY=ACTIVE`` in the environment
trade that back (BENCHMARKS.md, "Training speed"). The OpenMP runtime reads these variables only when torch
is imported, so they cannot be changed afterwards.
"""

import os as _os
import sys as _sys

if "torch" not in _sys.modules and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .audio import PRESETS, FrontendConfig, LogMel, get_preset
from .checkpoints import load, load_official_checkpoint, load_pretrained, save_pretrained
from .inference import AudioClassifier, optimize_for_inference
from .layers import reparameterize_model
from .models import AudioRepInceptionNeXt, create_model, list_models
from .utils.errors import ArinextError
from .version import __version__

__all__ = [
    "PRESETS",
    "AudioClassifier",
    "ArinextError",
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
