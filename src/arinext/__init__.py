"""arinext: AudioRepInceptionNeXt for audio recognition, from training to deployment."""

from .audio import PRESETS, FrontendConfig, LogMel, get_preset
from .bench.optimize import optimize_for_inference
from .hub import load_pretrained, save_pretrained
from .inference import AudioClassifier
from .layers import reparameterize_model
from .models import AudioRepInceptionNeXt, create_model, list_models
from .models.convert import load_official_checkpoint
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
    "load_official_checkpoint",
    "load_pretrained",
    "optimize_for_inference",
    "save_pretrained",
    "reparameterize_model",
]
