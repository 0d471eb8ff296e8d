"""int8 accuracy (old recipe vs the fixed one, on this CPU and on an emulated CPU without VNNI) and int8 speed.

Two parts (BENCHMARKS.md, "int8: why it collapsed and the fix"):

``accuracy MODEL_DIR [MODEL_DIR ...]``
    With ``--variants``, also old-recipe files that show what does not fix it (calibration methods, the stem
    alone or all but the stem in int8, a conv kept in float by ``nodes_to_exclude``).
    For each trained keyword model (a ``save_pretrained`` directory, e.g. ``RUN/train/pretrained`` of
    ``arinext demo``): the bundled sample's 130 test clips (unseen speakers, labels matched to the model's
    by name), the fp32 ONNX file of the unchanged model, and four int8 files, calibrated as the demo does
    (128 training clips): static and dynamic, each with the old recipe (8-bit weights, no dead-channel
    fix) and the fixed one (:func:`arinext.export.quantize.quantize_model`). Each file is scored with
    onnxruntime on this CPU and, with ``--emulate`` (needs ``qemu-x86_64``, apt package qemu-user), on
    qemu's EPYC-Rome CPU model (AVX2, no AVX-512, no VNNI) through ``benchmarks/ort_score.py``.
    Prints a Markdown table: top-1 / agreement with fp32 ONNX on this CPU, the same emulated, portable.

``speed``
    The paper-size model (309 classes, random weights and BN statistics, full fold), input 1x512x128 and
    8x1x512x128: fp32 ONNX Runtime vs static int8 (old recipe and fixed), timed interleaved in this
    process at 1 and 2 threads (``allow_spinning=0``, see :func:`arinext.export.onnx_session`).

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/int8.py accuracy MODEL_DIR ... --emulate --out int8.json
    OMP_WAIT_POLICY=PASSIVE python benchmarks/int8.py speed --runs 20 --out int8-speed.json
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

import arinext
from arinext.apps.demo import bundled_sample, featurize_subset
from arinext.checkpoints import load, model_frontend
from arinext.export.onnx import export_onnx
from arinext.export.quantize import check_int8, neutralize_dead_bn_channels, quantize_model
from arinext.export.runtime import onnx_logits, onnx_session
from arinext.utils.modules import randomize_batchnorm
from arinext.utils.timing import time_interleaved

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ort_score import emulated_predictions

#: name -> (mode, quantize_model options)
BUILDS: dict[str, tuple[str, dict[str, Any]]] = {
    "static, old recipe": ("static", {"neutralize": False, "reduce_range": False}),
    "static, fixed": ("static", {}),
    "dynamic, old recipe": ("dynamic", {"neutralize": False}),
    "dynamic, fixed": ("dynamic", {}),
}


def _loadavg() -> str:
    path = Path("/proc/loadavg")
    return " ".join(path.read_text().split()[:3]) if path.exists() else "?"


def accuracy(model_dir: Path, work: Path, emulate: bool, variants: bool = False) -> dict[str, Any]:
    model = load(model_dir)
    labels, fe = arinext.models.metadata(model).labels, model_frontend(model)
    root = bundled_sample()
    x, y, _ = featurize_subset(root, labels, fe, "testing")  # targets in the model's label order, by name
    calib = list(featurize_subset(root, labels, fe, "training", limit=128)[0].split(16))  # as the demo
    work.mkdir(parents=True, exist_ok=True)
    files = {"fp32": work / "fp32.onnx"}
    export_onnx(model, files["fp32"], frontend=fe, labels=labels)
    dead: list[str] = []
    for name, (mode, opts) in BUILDS.items():
        path = work / (name.replace(", ", "_").replace(" ", "_") + ".onnx")
        built = quantize_model(model, path, mode, calib if mode == "static" else None, fe, labels, **opts)
        dead = dead or built.dead_channels
        files[name] = path
    if variants:
        files.update(_variants(files["fp32"], work, calib))
    with torch.no_grad():
        torch_pred = torch.cat([model(c) for c in x.split(65)]).argmax(-1).numpy()
    # batches of 65, as ort_score.py scores under emulation: dynamic int8 quantizes activations per batch, so
    # its predictions depend on which clips share a batch (static int8 and fp32 do not)
    native = {k: _predictions(onnx_session(p), x.numpy()) for k, p in files.items()}
    emulated: dict[str, np.ndarray] = {}
    if emulate:
        np.save(work / "x.npy", x.numpy())
        by_path = emulated_predictions(work / "x.npy", list(files.values()))
        emulated = {k: np.array(by_path[str(p)]) for k, p in files.items()}
    test = list(zip(x.split(65), torch.from_numpy(y).split(65)))
    rows = {}
    for k, p in files.items():
        row: dict[str, Any] = {
            "top1": float((native[k] == y).mean()),
            "agreement": float((native[k] == native["fp32"]).mean()),
        }
        if emulate:
            row["emulated_top1"] = float((emulated[k] == y).mean())
            row["emulated_agreement"] = float((emulated[k] == native["fp32"]).mean())
        if k != "fp32":
            chk = check_int8(files["fp32"], p, test, source="test clips")
            row.update(portable=chk.portable, guard_passed=chk.passed)
        rows[k] = row
    return {
        "model": str(model_dir),
        "clips": len(y),
        "folded_kernels": _kernel_ranges(model),
        "stem_input_quantization": _input_quantization(files["static, fixed"]),
        "fp32_onnx_equals_pytorch": int((native["fp32"] == torch_pred).sum()),
        "dead_bn_channels": dead,
        "rows": rows,
    }


class _Reader:
    """onnxruntime calibration reader over a list of batches."""

    def __init__(self, name: str, batches: list[torch.Tensor]) -> None:
        self.name, self.it = name, iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self.it, None)
        return None if x is None else {self.name: x.numpy()}


def _variants(fp32: Path, work: Path, calib: list[torch.Tensor]) -> dict[str, Path]:
    """What does not fix the collapse (old recipe: 8-bit weights, no dead-channel fix), straight from
    onnxruntime.quantization: other calibration methods, the stem alone or everything but the stem in int8,
    and the dead-channel conv left in float with ``nodes_to_exclude`` (dynamic)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = work / "fp32.prep.onnx"
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    g = onnx.load(str(prepared)).graph
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    convs = [n for n in g.node if n.op_type == "Conv"]
    stem = next(n.name for n in convs if n.input[0] == g.input[0].name)
    widest = max(convs, key=lambda n: float(np.abs(weights[n.input[1]]).max())).name  # the dead channel's conv
    static = {"quant_format": QuantFormat.QDQ, "per_channel": True, "activation_type": QuantType.QUInt8,
              "weight_type": QuantType.QInt8}  # fmt: skip
    builds = {
        "static, old recipe, entropy calibration": {"calibrate_method": CalibrationMethod.Entropy},
        "static, old recipe, percentile 99.99 calibration": {
            "calibrate_method": CalibrationMethod.Percentile, "extra_options": {"CalibPercentile": 99.99}},
        "static, old recipe, only the stem in int8": {"nodes_to_quantize": [stem]},
        "static, old recipe, all but the stem in int8": {"nodes_to_exclude": [stem]},
    }  # fmt: skip
    out = {}
    for name, opts in builds.items():
        out[name] = work / (name.replace(", ", "_").replace(" ", "_") + ".onnx")
        quantize_static(prepared, out[name], _Reader(g.input[0].name, calib), **static, **opts)  # type: ignore[arg-type]
    name = f"dynamic, old recipe, {widest} in float (nodes_to_exclude)"
    out[name] = work / "dynamic_exclude.onnx"
    quantize_dynamic(prepared, out[name], weight_type=QuantType.QUInt8, per_channel=True, nodes_to_exclude=[widest])
    return out


def _kernel_ranges(model: torch.nn.Module) -> dict[str, Any]:
    """Largest |weight| of the folded model's convs, and of the conv holding it: its largest and its median
    per-channel max; full fold before and after neutralizing dead BatchNorm channels, and the paper fold."""
    out = {}
    forms = (
        ("full fold", model),
        ("full fold, dead channels neutralized", copy.deepcopy(model)),
        ("paper fold", model),
    )
    for name, m in forms:
        if "neutralized" in name:
            neutralize_dead_bn_channels(m)
        fused = arinext.reparameterize_model(m, fold="paper" if name == "paper fold" else "full")
        convs = [(n, c.weight.detach()) for n, c in fused.named_modules() if isinstance(c, torch.nn.Conv2d)]
        conv, w = max(convs, key=lambda nw: float(nw[1].abs().max()))
        per_channel = w.abs().flatten(1).amax(1)
        out[name] = {"conv": conv, "max_abs": round(float(per_channel.max()), 2),
                     "median_channel_max_abs": round(float(per_channel.median()), 2)}  # fmt: skip
    return out


def _input_quantization(int8_path: Path) -> dict[str, float]:
    """Scale and zero point with which the static int8 file quantizes its input (the log-mel)."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(int8_path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    q = next(n for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] == g.input[0].name)
    return {"scale": round(float(init[q.input[1]]), 4), "zero_point": int(init[q.input[2]])}


def _predictions(session: Any, x: np.ndarray, batch: int = 65) -> np.ndarray:
    return np.concatenate([onnx_logits(session, x[i : i + batch]) for i in range(0, len(x), batch)]).argmax(-1)


def speed(runs: int, out_dir: Path) -> dict[str, Any]:
    fe = arinext.get_preset("vggsound")
    model = randomize_batchnorm(arinext.create_model("audio_rep_inception_next", num_classes=309), 0).eval()
    g = torch.Generator().manual_seed(0)
    calib = [torch.randn(2, 1, fe.num_frames, fe.n_mels, generator=g) * 3 - 4 for _ in range(4)]
    files = {"fp32": out_dir / "paper.onnx"}
    export_onnx(model, files["fp32"], frontend=fe)
    for name in ("static, old recipe", "static, fixed"):
        files[name] = out_dir / (name.replace(", ", "_").replace(" ", "_") + ".onnx")
        quantize_model(model, files[name], "static", calib, fe, **BUILDS[name][1])
    result: dict[str, Any] = {"input": f"Bx1x{fe.num_frames}x{fe.n_mels}", "runs": runs}
    for threads in (1, 2):
        sessions = {k: onnx_session(p, threads=threads, spin=False) for k, p in files.items()}
        for batch in (1, 8):
            xb = (torch.randn(batch, 1, fe.num_frames, fe.n_mels, generator=g) * 3 - 4).numpy()
            load_before = _loadavg()
            stats = time_interleaved({k: (lambda s=s, xb=xb: onnx_logits(s, xb)) for k, s in sessions.items()}, runs, 3)
            base = stats["fp32"].median_ms
            result[f"threads {threads}, batch {batch}"] = {
                "loadavg_before_after": [load_before, _loadavg()],
                **{
                    k: {"median_ms": round(s.median_ms, 2), "speedup": round(base / s.median_ms, 2)}
                    for k, s in stats.items()
                },
            }
            print(
                json.dumps({f"threads {threads}, batch {batch}": result[f"threads {threads}, batch {batch}"]}),
                flush=True,
            )
    return result


def _table(results: list[dict[str, Any]], emulate: bool) -> str:
    head = (
        "| model | form | top-1 / agreement, this CPU |" + (" same, emulated AVX2 |" if emulate else "") + " portable |"
    )
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in results:
        for k, row in r["rows"].items():
            cells = f"{row['top1']:.1%} / {row['agreement']:.1%}"
            if emulate:
                cells += f" | {row['emulated_top1']:.1%} / {row['emulated_agreement']:.1%}"
            portable = "" if k == "fp32" else ("yes" if row["portable"] else "no")
            lines.append(f"| {r['model']} | {k} | {cells} | {portable} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("part", choices=("accuracy", "speed"))
    p.add_argument("models", nargs="*", type=Path, help="save_pretrained directories (accuracy)")
    p.add_argument("--emulate", action="store_true", help="also score under qemu-x86_64 -cpu EPYC-Rome")
    p.add_argument("--variants", action="store_true", help="also the variants that do not fix it (accuracy)")
    p.add_argument("--runs", type=int, default=20, help="timed rounds (speed)")
    p.add_argument("--out", type=Path, help="JSON results")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    with tempfile.TemporaryDirectory() as tmp:
        if args.part == "accuracy":
            if not args.models:
                p.error("accuracy needs at least one model directory")
            results = [accuracy(m, Path(tmp) / f"m{i}", args.emulate, args.variants) for i, m in enumerate(args.models)]
            print(_table(results, args.emulate))
            for r in results:
                k, q = r["folded_kernels"], r["stem_input_quantization"]
                print(f"{r['model']}: BatchNorm(s) with dead channels: {r['dead_bn_channels'] or 'none'}")
                for form, v in k.items():
                    print(
                        f"  {form}: largest |w| {v['max_abs']} in {v['conv']} (its median channel {v['median_channel_max_abs']})"
                    )
                print(f"  static int8 quantizes the input with scale {q['scale']}, zero point {q['zero_point']}")
        else:
            results = speed(args.runs, Path(tmp))  # type: ignore[assignment]
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
