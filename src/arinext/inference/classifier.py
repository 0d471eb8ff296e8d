"""``AudioClassifier``: audio in, ranked labels out, in the Hugging Face ``audio-classification`` format.

A classifier holds a fused model (``reparameterize_model(model, fold="full")`` by default), the
front end it was trained with and its label names. Calling it on a clip returns
``[{"label": str, "score": float}, ...]`` sorted by score, like ``transformers.pipeline("audio-classification")``.

Accepted inputs (one clip each): a file path, the raw bytes of an audio file, a 1-D numpy array or
torch tensor together with ``sampling_rate=``, or a dict ``{"array": ..., "sampling_rate": ...}``
(``"raw"`` is accepted for ``"array"``, as in the pipeline). A list of clips, or a 2-D array
``(B, N)``, is a batch and returns a list of result lists. Audio at another rate is resampled (soxr).

Every input follows the rule of :mod:`arinext.audio.io`: float samples in [-1, 1] (integer arrays are
scaled by their full scale), refused with :class:`~arinext.audio.io.AudioDecodeError` naming the input when
they are NaN, infinite or beyond +-64, or when the rate is outside 1 kHz to 1 MHz. No score or embedding
that comes back holds a NaN or an infinity: should the model produce one anyway (a damaged checkpoint), a
:class:`~arinext.inference.results.NonFiniteOutputError` names the input instead.

Clips shorter than the front end's training crop are padded by repeating the last spectrogram frame
up to ``num_frames`` (the original loaders' edge padding); longer clips run whole (the pooling is
global). For long recordings use :meth:`AudioClassifier.scan`, which reads the file in blocks.

Beyond labels: :meth:`~AudioClassifier.embed` (one vector per clip, the head's input),
:meth:`~AudioClassifier.timestamp_embeddings` (one vector every 50 ms), :meth:`~AudioClassifier.framewise`
(class scores on a time grid in seconds) and :meth:`~AudioClassifier.events` (``[Event(label, onset,
offset, score)]``); these read files of any length block by block (:mod:`arinext.inference.frames`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np
import torch
from torch import nn

from ..audio.frontend import FrontendConfig, LogMel
from ..audio.io import check_sample_rate, check_waveform, describe_source, load_audio, resample
from ..checkpoints import load, model_frontend
from ..data.sampling import fit_frames
from ..layers.classifier import output_classes
from ..layers.reparam import reparameterize_model
from ..models.info import metadata
from ..utils.errors import ConfigError, InputError
from ..utils.modules import unwrap_model
from .embeddings import FeatureTaps, timestamp_grid_ms
from .event_decoding import DecodeParams, Event, FrameScores, decode_events
from .framehead import FrameHead, find_frame_head, weights_fingerprint
from .frames import (
    HeadChoice,
    audio_chunks,
    clip_frame_scores,
    frame_head_scores,
    relabel_events,
    stream_columns,
    window_reader,
)
from .optimize import optimize_for_inference
from .results import Prediction, ScanResult, check_finite_output, top_k_labels
from .stream import AudioStream, samples_as_numpy, scan

__all__ = ["AudioClassifier", "AudioInput"]

log = logging.getLogger(__name__)

AudioInput = Union[str, os.PathLike, bytes, np.ndarray, torch.Tensor, Mapping[str, Any]]
Activation = Literal["softmax", "sigmoid"]


class AudioClassifier:
    """A ready-to-use audio classifier: decoding, resampling, log-mel, fused model, top-k labels.

    Args:
        model: a model mapping ``(B, 1, T, F)`` log-mel to logits ``(B, C)``.
        frontend: its front end (a :class:`FrontendConfig`, a preset name or a dict); default:
            the one in the model's metadata (:func:`arinext.models.metadata`).
        labels: class names; default those in the model's metadata, else ``LABEL_0``, ``LABEL_1``, ...
        fuse: apply the full deploy fold (``reparameterize_model(model, fold="full")``); outputs are
            unchanged up to float rounding, latency is lower. Batches of more than one clip (and of scan
            windows) on the CPU then run through :func:`~arinext.inference.optimize_for_inference` of it
            (channels-last, cropped kernels: the same function, about 2x faster on batches), built on first use.
        activation: ``"softmax"`` (single-label) or ``"sigmoid"`` (multi-label) scores.
        device: where the model and the front end run.
        frame_head: a :class:`~arinext.inference.framehead.FrameHead` (or the directory holding one) for
            :meth:`framewise` and :meth:`events`; it must have been fitted on this model's weights.

    Example:
        >>> clf = AudioClassifier.from_pretrained("checkpoints/my_model")  # doctest: +SKIP
        >>> clf("dog.wav", top_k=2)  # doctest: +SKIP
        [{'label': 'dog', 'score': 0.93}, {'label': 'cat', 'score': 0.04}]
    """

    def __init__(
        self,
        model: nn.Module,
        frontend: FrontendConfig | str | Mapping[str, Any] | None = None,
        labels: Sequence[str] | None = None,
        fuse: bool = True,
        activation: Activation = "softmax",
        device: str | torch.device = "cpu",
        frame_head: FrameHead | str | os.PathLike | None = None,
    ) -> None:
        if activation not in ("softmax", "sigmoid"):
            raise ConfigError(f"activation must be 'softmax' or 'sigmoid', got {activation!r}")
        model = unwrap_model(model)
        num_classes = output_classes(model)
        self.frontend_config = model_frontend(model, frontend)
        if labels is None:
            labels = metadata(model).labels  # type: ignore[assignment]
        self.labels: list[str] = [str(x) for x in labels] if labels else [f"LABEL_{i}" for i in range(num_classes)]
        if len(self.labels) != num_classes:
            raise InputError(f"model has {num_classes} classes but {len(self.labels)} labels were given")
        self.device = torch.device(device)
        #: SHA-256 of the weights as given (before fusing): what a frame head is checked against
        self.fingerprint = weights_fingerprint(model)
        self.model = (reparameterize_model(model, fold="full") if fuse else model.eval()).to(self.device)
        self._fused = fuse
        self._batch_model: nn.Module | None = None
        self.frontend = LogMel(self.frontend_config).to(self.device)
        self.activation = activation
        self.frame_head: FrameHead | None = None
        self._taps: dict[tuple[int, ...], FeatureTaps] = {}
        if frame_head is not None:
            self.attach_frame_head(frame_head)

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        frontend: FrontendConfig | str | Mapping[str, Any] | None = None,
        labels: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> AudioClassifier:
        """Load any checkpoint :func:`arinext.checkpoints.load` accepts: a run directory, ``best.pt``/``last.pt``,
        a :func:`arinext.save_pretrained` directory or an authors' ``.pyth``.

        ``frontend``/``labels`` override what the checkpoint stores; other keyword arguments go to
        the constructor (``fuse``, ``activation``, ``device``, ``frame_head``). A frame head stored in
        ``path`` (or ``path/pretrained``) is attached unless ``frame_head`` is given (``False``: none);
        one fitted on other weights is skipped with a warning.
        """
        found = None
        if "frame_head" not in kwargs:
            found = find_frame_head(path)
        elif kwargs["frame_head"] is False:
            kwargs["frame_head"] = None
        clf = cls(load(Path(path)), frontend=frontend, labels=labels, **kwargs)
        if found is not None:
            try:
                clf.attach_frame_head(found)
            except ValueError as exc:  # e.g. weights saved again over an older head: classify without it
                log.warning("not using the frame head in %s: %s", found, exc)
        return clf

    @property
    def sample_rate(self) -> int:
        return self.frontend_config.sample_rate

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    # -- inputs ---------------------------------------------------------------------------------

    def load(self, item: AudioInput, sampling_rate: int | None = None) -> np.ndarray:
        """Decode/convert one clip to a float32 mono waveform at :attr:`sample_rate`.

        Raises:
            AudioDecodeError: the clip breaks the input rule of :mod:`arinext.audio.io` (names the clip).
        """
        if isinstance(item, Mapping):
            if "sampling_rate" not in item or not ({"array", "raw"} & set(item)):
                raise InputError(f"a dict input needs 'array' and 'sampling_rate' keys, got {sorted(item)}")
            return self.load(item["array"] if "array" in item else item["raw"], item["sampling_rate"])
        if isinstance(item, (str, os.PathLike, bytes, bytearray)):
            return load_audio(item, sample_rate=self.sample_rate)[0]
        item = samples_as_numpy(item)
        if isinstance(item, np.ndarray):
            if sampling_rate is None:
                raise InputError("an array input needs its rate: pass sampling_rate=<Hz>")
            if item.ndim != 1:
                raise InputError(f"expected a 1-D waveform, got an array of shape {item.shape}")
            return resample(check_waveform(item), check_sample_rate(sampling_rate), self.sample_rate)
        raise TypeError(f"unsupported audio input of type {type(item).__name__}")

    @staticmethod
    def source_names(items: Sequence[Any]) -> list[str]:
        """How errors name each clip of a batch: a path as given, ``<N bytes>``, or ``<array i>``."""
        return [
            describe_source(x) if isinstance(x, (str, os.PathLike, bytes, bytearray)) else f"<array {i}>"
            for i, x in enumerate(items)
        ]

    @staticmethod
    def _as_batch(inputs: Any) -> tuple[list[Any], bool]:
        if isinstance(inputs, (list, tuple)):
            if not inputs:
                raise InputError("empty batch")
            return list(inputs), True
        if isinstance(inputs, (np.ndarray, torch.Tensor)) and inputs.ndim == 2:
            return list(inputs), True
        return [inputs], False

    # -- model ----------------------------------------------------------------------------------

    @torch.no_grad()
    def features(self, waveform: np.ndarray | torch.Tensor, min_frames: int | None = None) -> torch.Tensor:
        """Log-mel ``(1, 1, T, F)`` of one waveform, edge-padded to ``min_frames`` (default ``num_frames``)."""
        x = torch.as_tensor(np.asarray(waveform, dtype=np.float32)).to(self.device)
        spec = self.frontend(x)
        need = self.frontend_config.num_frames if min_frames is None else min_frames
        return fit_frames(spec, max(need, spec.shape[2]))

    @torch.no_grad()
    def probs_from_features(self, spec: torch.Tensor, sources: Sequence[str] | None = None) -> np.ndarray:
        """Scores ``(B, C)`` for a log-mel batch ``(B, 1, T, F)``.

        Raises:
            NonFiniteOutputError: a row of logits holds NaN or infinity (names ``sources[i]``).
        """
        logits = self._model_for(spec.shape[0])(spec.to(self.device))
        check_finite_output(logits, "scores", sources, self.model)
        probs = torch.softmax(logits, dim=-1) if self.activation == "softmax" else torch.sigmoid(logits)
        return probs.float().cpu().numpy()

    def _model_for(self, batch: int) -> nn.Module:
        if batch == 1 or not self._fused or self.device.type != "cpu":
            return self.model
        if self._batch_model is None:
            self._batch_model = optimize_for_inference(self.model, fold=None)  # type: ignore[assignment]
        return self._batch_model  # type: ignore[return-value]

    def probs_from_waveforms(
        self,
        waveforms: Sequence[np.ndarray],
        min_frames: int | None = None,
        batch_size: int = 1,
        sources: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Scores ``(len(waveforms), C)``; clips with the same frame count run ``batch_size`` at a time.
        ``sources`` name the clips in errors."""
        specs = [self.features(w, min_frames) for w in waveforms]
        out = np.empty((len(specs), self.num_classes), dtype=np.float32)
        by_len: dict[int, list[int]] = {}
        for i, s in enumerate(specs):
            by_len.setdefault(s.shape[2], []).append(i)
        for idx in by_len.values():
            for j in range(0, len(idx), max(1, batch_size)):
                part = idx[j : j + max(1, batch_size)]
                names = [sources[i] for i in part] if sources is not None else None
                out[part] = self.probs_from_features(torch.cat([specs[i] for i in part]), names)
        return out

    def predict_proba(self, inputs: Any, sampling_rate: int | None = None, batch_size: int = 8) -> np.ndarray:
        """Scores ``(B, C)`` for one clip (``B = 1``) or a batch, in label order: finite, and rows summing
        to 1 with the softmax activation.

        Raises:
            AudioDecodeError: a clip breaks the input rule (:mod:`arinext.audio.io`), or the model's scores
                for it are not finite (:class:`~arinext.inference.results.NonFiniteOutputError`); names the clip.
        """
        items, _ = self._as_batch(inputs)
        waves = [self.load(x, sampling_rate) for x in items]
        return self.probs_from_waveforms(waves, batch_size=batch_size, sources=self.source_names(items))

    def __call__(
        self, inputs: Any, sampling_rate: int | None = None, top_k: int | None = 5, batch_size: int = 8
    ) -> list[Prediction] | list[list[Prediction]]:
        """Classify one clip (returns ``[{"label", "score"}]``) or a batch (returns a list of those).

        Args:
            inputs: a clip (path, bytes, 1-D array/tensor, ``{"array", "sampling_rate"}`` dict) or a
                list of clips / a 2-D array of equal-length waveforms.
            sampling_rate: rate of array inputs in Hz.
            top_k: number of labels per clip (``None``: all), best first.
            batch_size: clips run together through the model.
        """
        items, batched = self._as_batch(inputs)
        probs = self.predict_proba(items, sampling_rate, batch_size)
        results = [top_k_labels(p, self.labels, top_k) for p in probs]
        return results if batched else results[0]

    # -- long audio -----------------------------------------------------------------------------

    def stream(self, window: float | None = None, hop: float | None = None, **kwargs: Any) -> AudioStream:
        """An :class:`~arinext.inference.AudioStream` over this classifier (see there for arguments)."""
        return AudioStream(self, window=window, hop=hop, **kwargs)

    def scan(
        self, source: AudioInput, window: float | None = None, hop: float | None = None, **kwargs: Any
    ) -> ScanResult:
        """Slide the model over audio of any length; see :func:`arinext.inference.scan`."""
        return scan(self, source, window=window, hop=hop, **kwargs)

    # -- embeddings and frame-level scores --------------------------------------------------------

    def attach_frame_head(self, head: FrameHead | str | os.PathLike) -> FrameHead:
        """Use ``head`` (or the head stored in a directory) for :meth:`framewise`; checks it fits this model."""
        where = "frame head"
        if not isinstance(head, FrameHead):
            where = f"frame head in {head}"
            head = FrameHead.load(head)
        head.check_model(self.fingerprint, self.labels, where)
        self.frame_head = head.to(self.device).eval()
        return head

    def feature_taps(self, stages: Sequence[int] = (-2, -1), block_seconds: float = 60.0) -> FeatureTaps:
        """The :class:`~arinext.inference.embeddings.FeatureTaps` of this classifier's model (cached)."""
        key = (*stages, int(block_seconds * 1000))
        if key not in self._taps:
            self._taps[key] = FeatureTaps(self.model, self.frontend_config, stages, block_seconds=block_seconds)
        return self._taps[key]

    def embed(self, inputs: Any, sampling_rate: int | None = None, batch_size: int = 8) -> np.ndarray:
        """Scene embeddings: ``(D,)`` for one clip, ``(B, D)`` for a batch; the vector the head reads.

        Clips are padded like :meth:`__call__` pads them, so ``embed`` followed by the linear head gives
        the logits of :meth:`predict_proba`.
        """
        items, batched = self._as_batch(inputs)
        taps = self.feature_taps()
        waves = [self.load(x, sampling_rate) for x in items]
        names = self.source_names(items)
        out = np.empty((len(waves), taps.scene_width), dtype=np.float32)
        by_len: dict[int, list[int]] = {}
        for i, w in enumerate(waves):
            by_len.setdefault(w.size, []).append(i)
        for idx in by_len.values():
            for j in range(0, len(idx), max(1, batch_size)):
                part = idx[j : j + max(1, batch_size)]
                x = torch.from_numpy(np.stack([waves[i] for i in part]))
                scene = check_finite_output(taps.scene(x), "embeddings", [names[i] for i in part], self.model)
                out[part] = scene.float().cpu().numpy()
        return out if batched else out[0]

    def timestamp_embeddings(
        self,
        item: AudioInput,
        sampling_rate: int | None = None,
        hop: float = 0.05,
        stages: Sequence[int] = (-2, -1),
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(times, embeddings)`` of one clip: times ``(M,)`` in seconds (``0, hop, ...`` up to the
        duration) and embeddings ``(M, D)`` from the given stages (:mod:`arinext.inference.embeddings`)."""
        taps = self.feature_taps(stages)
        cols, n = stream_columns(taps, audio_chunks(self, item, sampling_rate), taps.stage_ids)
        times = timestamp_grid_ms(n, self.sample_rate, hop * 1000.0)
        emb = taps.timestamps_from_columns(cols, times)
        check_finite_output(emb, "embeddings", self.source_names([item]), self.model)
        return (times / 1000.0).numpy(), emb[0].float().cpu().numpy()

    def framewise(
        self, item: AudioInput, sampling_rate: int | None = None, head: HeadChoice = "auto", hop: float | None = None
    ) -> FrameScores:
        """Class scores of one clip (any length) on a time grid in seconds.

        Args:
            item: a clip as :meth:`__call__` takes it; files are read block by block.
            head: ``"frame"`` (the attached frame head), ``"clip"`` (the classifier's head on every
                column of the last feature map) or ``"auto"`` (the frame head if one is attached).
            hop: grid spacing in seconds; default the frame head's (fixed) spacing, or the front end's
                frame hop for the clip head.
        """
        if head not in ("auto", "frame", "clip"):
            raise ConfigError(f"head must be 'auto', 'frame' or 'clip', got {head!r}")
        use_frame = head == "frame" or (head == "auto" and self.frame_head is not None)
        chunks = audio_chunks(self, item, sampling_rate)
        if use_frame:
            fh = self.frame_head
            if fh is not None and hop is not None and abs(hop * 1000.0 - fh.hop_ms) > 1e-6:
                raise ConfigError(f"the frame head was fitted every {fh.hop_ms:g} ms; hop={hop} s differs")
            frames = frame_head_scores(self, self.feature_taps(fh.stages if fh else (-2, -1)), chunks)
        else:
            step = self.frontend_config.hop_ms / 1000.0 if hop is None else float(hop)
            frames = clip_frame_scores(self, self.feature_taps(), chunks, step)
        name = self.source_names([item])[0]
        check_finite_output(torch.from_numpy(frames.scores), "frame scores", name, self.model)
        return frames

    def events(
        self,
        item: AudioInput | FrameScores,
        sampling_rate: int | None = None,
        head: HeadChoice = "auto",
        params: DecodeParams | None = None,
        frames: FrameScores | None = None,
        **overrides: Any,
    ) -> list[Event]:
        """Sound events ``[Event(label, onset, offset, score)]`` of one clip (any length), or of given frame scores.

        Decoding parameters: ``params`` and keyword ``overrides`` (``threshold``, ``low``, ``median``,
        ``min_duration``, ``min_gap``, ``mode``, ``relabel``); default :meth:`decode_params_for` (the frame
        head's, chosen on validation mixtures when it was fitted). ``frames``: the clip's frame scores if
        already computed. ``relabel`` needs the audio, so ``item`` must then be the clip.
        """
        if isinstance(item, FrameScores):
            frames, item = item, None
        if frames is None:
            frames = self.framewise(item, sampling_rate, head)
        p = DecodeParams.from_dict({**(params or self.decode_params_for(frames)).to_dict(), **overrides})
        events = decode_events(frames, p)
        if p.relabel and events:
            if item is None:
                raise InputError("relabel needs the audio: pass the clip (and frames=) instead of its frame scores")
            events = relabel_events(self, events, frames, window_reader(self, item, sampling_rate))
        return events

    def decode_params_for(self, frames: FrameScores) -> DecodeParams:
        """Default decoding of ``frames``: the frame head's stored parameters for its scores, else a 0.5
        threshold, ``"exclusive"`` for softmax and ``"independent"`` for sigmoid scores."""
        if frames.source == "frame head" and self.frame_head is not None:
            return self.frame_head.decode
        return DecodeParams(mode="exclusive" if self.activation == "softmax" else "independent")

    def __repr__(self) -> str:
        name = metadata(self.model).name or "?"
        return (
            f"AudioClassifier(model={name!r}, classes={self.num_classes}, sample_rate={self.sample_rate}, "
            f"activation={self.activation!r})"
        )

