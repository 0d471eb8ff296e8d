"""The one place that builds ONNX Runtime sessions (export checks, int8 comparison, ``arinext bench``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..utils.optional import MissingExtraError

try:
    import onnxruntime as ort
except ImportError as exc:
    raise MissingExtraError("running ONNX models needs onnxruntime: pip install 'arinext[export]'") from exc

__all__ = ["onnx_logits", "onnx_session"]


def onnx_session(path: str | Path, threads: int | None = None, spin: bool = True) -> Any:
    """A CPU ``onnxruntime.InferenceSession`` with every graph optimisation on.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (default: onnxruntime's choice); inter-op work stays on one thread.
        spin: let idle intra-op threads spin (onnxruntime's default). On a machine shared with other
            jobs, spinning threads get descheduled and multi-threaded timings become erratic: ``False``
            sets ``session.intra_op.allow_spinning=0``.
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def onnx_logits(session: Any, inputs: Any) -> np.ndarray:
    """Run a one-input model on a batch (array or tensor); returns its first output."""
    if isinstance(inputs, torch.Tensor):
        inputs = inputs.detach().cpu().numpy()
    x = np.ascontiguousarray(np.asarray(inputs, dtype=np.float32))
    return session.run(None, {session.get_inputs()[0].name: x})[0]
