from .frontend import PRESETS, FrontendConfig, LogMel, get_preset, htk_mel_filterbank

__all__ = ["PRESETS", "FrontendConfig", "LogMel", "get_preset", "htk_mel_filterbank"]
