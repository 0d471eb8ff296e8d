from . import audio_rep_inception_next, slowfast  # noqa: F401  (registers the variants and the baselines)
from ._registry import create_model, is_model, list_models, register_model
from .audio_rep_inception_next import AudioRepInceptionNeXt
from .slowfast import AudioSlowFast

__all__ = ["AudioRepInceptionNeXt", "AudioSlowFast", "create_model", "is_model", "list_models", "register_model"]
