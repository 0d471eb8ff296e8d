"""Top-1 predictions of ONNX classifiers with onnxruntime only (numpy + onnxruntime, no torch), one thread.

Small enough to run under CPU emulation, e.g. an x64 CPU without VNNI (AVX2 only) with qemu-user::

    qemu-x86_64 -cpu EPYC-Rome "$(readlink -f .venv/bin/python)" benchmarks/ort_score.py INPUTS.npy a.onnx b.onnx

(set ``PYTHONPATH`` to the virtual environment's site-packages when the interpreter is given by its real
path). ``INPUTS.npy`` holds log-mel inputs ``(N, 1, T, F)``. Prints one JSON line per model:
``{"model": path, "predictions": [class index per input]}``. Used by ``benchmarks/int8.py`` and
``tests/test_int8.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import onnxruntime as ort

#: qemu-user's model of an AMD Zen 2 CPU: AVX2, no AVX-512, no VNNI.
NO_VNNI_CPU = "EPYC-Rome"


def predictions(path: str, inputs: np.ndarray, batch: int = 65) -> list[int]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out = [
        session.run(None, {name: np.ascontiguousarray(inputs[i : i + batch])})[0] for i in range(0, len(inputs), batch)
    ]
    return np.concatenate(out).argmax(-1).tolist()


def emulated_predictions(inputs: str | Path, models: list[str | Path], cpu: str = NO_VNNI_CPU) -> dict[str, list[int]]:
    """Run this script under ``qemu-x86_64 -cpu CPU`` (apt package qemu-user); ``{model path: predictions}``.

    Raises:
        FileNotFoundError: qemu-x86_64 is not installed.
    """
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        raise FileNotFoundError("qemu-x86_64 is not installed (Debian/Ubuntu: apt-get install qemu-user)")
    python = os.path.realpath(sys.executable)  # qemu runs the real binary; the venv's packages come by PYTHONPATH
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}),
    }
    cmd = [qemu, "-cpu", cpu, python, str(Path(__file__).resolve()), str(inputs), *map(str, models)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {row["model"]: row["predictions"] for row in rows}


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    inputs = np.load(argv[0]).astype(np.float32)
    for path in argv[1:]:
        print(json.dumps({"model": path, "predictions": predictions(path, inputs)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
