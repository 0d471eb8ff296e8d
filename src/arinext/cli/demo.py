"""``arinext demo``: the smallest honest end-to-end path.

Synthesises a chirp, computes the paper's log-mel features, runs the training-form model, fuses it
(the paper's fold and the full deploy fold), checks that all three give the same logits and prints
parameters, multiply-accumulates and the largest output difference. Weights are random: the demo
shows the machinery, not accuracy.
"""

from __future__ import annotations

import argparse
import math

import torch

from ..audio.frontend import LogMel, get_preset, PRESETS
from ..layers.reparam import reparameterize_model
from ..models import create_model, list_models
from ..utils.complexity import count_macs, count_params


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="end-to-end check: waveform -> log-mel -> model -> fused model, with sizes")
    p.add_argument("--model", default="audio_rep_inception_next", choices=list_models("audio_rep_inception_next*"))
    p.add_argument("--preset", default="vggsound", choices=sorted(PRESETS))
    p.add_argument("--num-classes", type=int, default=309)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def _chirp(seconds: float, sr: int) -> torch.Tensor:
    t = torch.arange(int(round(seconds * sr)), dtype=torch.float64) / sr
    f0, f1 = 100.0, sr / 2.5
    phase = 2 * math.pi * (f0 * t + (f1 - f0) / (2 * seconds) * t**2)
    return (0.5 * torch.sin(phase)).float()


@torch.no_grad()
def run(args: argparse.Namespace) -> int:
    torch.manual_seed(args.seed)
    cfg = get_preset(args.preset)
    wave = _chirp(cfg.clip_seconds, cfg.sample_rate)
    spec = LogMel(cfg)(wave)
    model = create_model(args.model, num_classes=args.num_classes)
    # Random BN affine parameters (the zero-initialised last BN of each block would otherwise hide the
    # mixers entirely) and statistics settled on a few batches, so that the fusion has real work to do.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0.0, 0.2)
    model.train()
    for _ in range(3):
        model(spec + torch.randn(4, *spec.shape[1:]))
    model.eval()
    paper = reparameterize_model(model)
    full = reparameterize_model(model, fold="full")
    y, y_paper, y_full = model(spec), paper(spec), full(spec)
    scale = y.abs().max().item()
    shape = tuple(spec.shape)
    print(f"arinext demo: {args.model}, {args.num_classes} classes, random weights (no training)")
    print(f"  input   {cfg.clip_seconds} s chirp at {cfg.sample_rate} Hz -> log-mel {shape} ({args.preset} preset)")
    rows = [("training form", model, y), ("fused (paper)", paper, y_paper), ("fused (full fold)", full, y_full)]
    print(f"  {'form':<18} {'params':>12} {'conv GMACs':>11} {'max |logit diff|':>17}")
    for label, m, out in rows:
        macs = count_macs(m, shape)["conv"] / 1e9
        diff = (out - y).abs().max().item()
        print(f"  {label:<18} {count_params(m):>12,} {macs:>11.3f} {diff:>17.2e}")
    worst = max((y_paper - y).abs().max().item(), (y_full - y).abs().max().item())
    ok = worst <= 1e-5 * max(1.0, scale)
    print(f"  logit scale {scale:.3f}; fused outputs {'match' if ok else 'DO NOT match'} (tolerance 1e-5 x scale)")
    return 0 if ok else 1
