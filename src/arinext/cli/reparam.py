"""``arinext reparam``: fuse a checkpoint (ours or the authors' ``.pyth``) into an arinext checkpoint."""

from __future__ import annotations

import argparse

import torch

from ..hub import load_pretrained, model_fold, save_pretrained
from ..inference.classifier import resolve_frontend
from ..layers.reparam import reparameterize_model
from ..utils.complexity import count_params


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reparam", help="fuse a checkpoint's branches (and BNs) for deployment")
    p.add_argument("input", help="checkpoint directory (arinext format) or authors' .pyth")
    p.add_argument("output", help="directory to write the fused checkpoint to")
    p.add_argument("--fold", choices=("full", "paper"), default="full", help="full deploy fold or the paper's fusion")
    p.add_argument("--frames", type=int, default=None, help="time frames of the random check input (default: preset)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model = load_pretrained(args.input)
    fused = reparameterize_model(model, fold=args.fold)
    fe = resolve_frontend(None, model)
    x = torch.randn(2, 1, args.frames or fe.num_frames, fe.n_mels, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = float((fused(x) - model(x)).abs().max())
    save_pretrained(fused, args.output, labels=model.pretrained_cfg.get("labels"), frontend=fe)
    print(f"{args.input} ({model_fold(model) or 'training form'}) -> {args.output} ({model_fold(fused)})")
    print(f"params: {count_params(model):,} -> {count_params(fused):,}")
    print(f"max |logit difference| on a random {tuple(x.shape)} input: {diff:.3e}")
    return 0
