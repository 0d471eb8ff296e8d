"""Data layer: manifests of clips, the clip dataset, crop sampling and the loader.

Example:
    >>> from arinext.audio import get_preset
    >>> from arinext.data import AudioClipDataset, dataset_preset, get_manifest, make_loader
    >>> manifest = get_manifest("speech_commands_v2", "data/speech_commands_v0.02", "training")  # doctest: +SKIP
    >>> ds = AudioClipDataset(manifest, get_preset(dataset_preset("speech_commands_v2")), training=True)  # doctest: +SKIP
    >>> loader = make_loader(ds, batch_size=32, shuffle=True, num_workers=2)  # doctest: +SKIP
"""

from .batch_features import BatchFeatures, FeatureLoader
from .cache import FeatureCache
from .clips import AudioClipDataset, BadClipReport, ClipLoader, clip_features, collate_clips, make_loader
from .readers import clip_duration, read_clip
from .records import SUBSETS, ClipRecord, DatasetNotFoundError, Manifest, build_manifest
from .registry import dataset_info, dataset_preset, get_manifest, list_datasets, register_dataset
from .sampling import fit_frames, frame_crop, pad_waveform_edge, plan_crops
from .vocab import NSYNTH_FAMILIES, SPEECH_COMMANDS_CORE_WORDS, SPEECH_COMMANDS_V2_WORDS

__all__ = [
    "NSYNTH_FAMILIES",
    "SPEECH_COMMANDS_CORE_WORDS",
    "SPEECH_COMMANDS_V2_WORDS",
    "SUBSETS",
    "AudioClipDataset",
    "BadClipReport",
    "BatchFeatures",
    "ClipLoader",
    "ClipRecord",
    "DatasetNotFoundError",
    "FeatureCache",
    "FeatureLoader",
    "Manifest",
    "build_manifest",
    "clip_duration",
    "clip_features",
    "collate_clips",
    "dataset_info",
    "dataset_preset",
    "fit_frames",
    "frame_crop",
    "get_manifest",
    "list_datasets",
    "make_loader",
    "pad_waveform_edge",
    "plan_crops",
    "read_clip",
    "register_dataset",
]
