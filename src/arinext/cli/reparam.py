"""``arinext reparam``: fuse any checkpoint (run directory, best.pt, save_pretrained directory or authors' .pyth)."""

from __future__ import annotations

import argparse

from . import add_frontend_option, add_parser


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_parser(sub, common, "reparam", help="fuse a checkpoint's branches (and BNs) for deployment")
    p.add_argument("checkpoint", help="run directory, RUN/best.pt, save_pretrained directory or authors' .pyth")
    p.add_argument("output", help="directory to write the fused checkpoint to (save_pretrained format)")
    p.add_argument("--fold", choices=("full", "paper"), default="full", help="full deploy fold or the paper's fusion")
    p.add_argument("--frames", type=int, default=None, help="time frames of the random check input (default: the crop)")
    add_frontend_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoints import load, model_frontend, save_pretrained
    from ..layers.reparam import fold_state, reparameterize_model
    from ..utils.complexity import count_params

    model = load(args.checkpoint)
    fused = reparameterize_model(model, fold=args.fold)
    fe = model_frontend(model, args.frontend)
    x = torch.randn(2, 1, args.frames or fe.num_frames, fe.n_mels, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = float((fused(x) - model(x)).abs().max())
    save_pretrained(fused, args.output, frontend=fe)  # labels and card travel in the copy's metadata
    print(f"{args.checkpoint} ({fold_state(model) or 'training form'}) -> {args.output} ({fold_state(fused)})")
    print(f"params: {count_params(model):,} -> {count_params(fused):,}")
    print(f"max |logit difference| on a random {tuple(x.shape)} input: {diff:.3e}")
    return 0
