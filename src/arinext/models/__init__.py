from . import audio_rep_inception_next  # noqa: F401  (registers the variants)
from . import audio_inception_next, slowfast  # noqa: F401  (register the baselines)
from ._registry import create_model, is_model, list_models, register_model
from .audio_rep_inception_next import AudioRepInceptionNeXt

__all__ = ["AudioRepInceptionNeXt", "create_model", "is_model", "list_models", "register_model"]
