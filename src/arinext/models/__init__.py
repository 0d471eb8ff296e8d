from . import audio_rep_inception_next, slowfast  # noqa: F401  (registers the variants and the baselines)
from ._registry import MODELS, create_model, is_model, list_models, register_model
from .audio_rep_inception_next import AudioRepInceptionNeXt
from .info import Labels, ModelInfo, metadata, set_metadata
from .slowfast import AudioSlowFast

__all__ = [
    "AudioRepInceptionNeXt",
    "AudioSlowFast",
    "Labels",
    "MODELS",
    "ModelInfo",
    "create_model",
    "is_model",
    "list_models",
    "metadata",
    "register_model",
    "set_metadata",
]
