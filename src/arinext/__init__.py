"""arinext: AudioRepInceptionNeXt for audio recognition, from training to deployment."""

from .audio import PRESETS, FrontendConfig, LogMel, get_preset
from .layers import reparameterize_model
from .models import AudioRepInceptionNeXt, create_model, list_models
from .version import __version__

__all__ = [
    "PRESETS",
    "AudioRepInceptionNeXt",
    "FrontendConfig",
    "LogMel",
    "__version__",
    "create_model",
    "get_preset",
    "list_models",
    "reparameterize_model",
]
