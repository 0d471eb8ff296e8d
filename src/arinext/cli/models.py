"""``arinext models``: list the registered models with their size; ``--verify`` checks every fold.

With ``--verify`` each model is built with random weights and random BatchNorm parameters and
statistics (the zero-initialised last BN of each block would otherwise hide the mixers), then fused
with the paper's fold and the full deploy fold; the command prints parameters and multiply-accumulates
of each form and the largest logit difference to the training form on a random spectrogram.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import CLIError, add_parser


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_parser(sub, common, "models", help="list registered models and their sizes; --verify checks fused = unfused")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'audio_rep*'")
    p.add_argument("--num-classes", type=int, default=309, help="head size used for the counts")
    p.add_argument("--verify", action="store_true", help="fuse each model (paper and full fold) and compare logits")
    p.add_argument("--input", default="512x128", help="T x F of the spectrogram for MACs and --verify")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and input of --verify")
    p.set_defaults(func=run)


def _parse_input(text: str) -> tuple[int, int, int, int]:
    try:
        t, f = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CLIError(f"--input must look like 512x128, got {text!r}") from None
    return (1, 1, t, f)


def _verify(name: str, num_classes: int, shape: tuple[int, ...], seed: int) -> tuple[float, list[tuple[Any, ...]]]:
    import torch

    from ..layers.reparam import reparameterize_model
    from ..models import create_model
    from ..utils.complexity import count_macs, count_params
    from ..utils.modules import randomize_batchnorm

    torch.manual_seed(seed)
    model = randomize_batchnorm(create_model(name, num_classes=num_classes), seed).eval()
    x = torch.randn(*shape)
    rows = []
    with torch.no_grad():
        y = model(x)
        for label, fold in (("training form", None), ("fused (paper)", "paper"), ("fused (full fold)", "full")):
            m = model if fold is None else reparameterize_model(model, fold=fold)
            rows.append((label, count_params(m), count_macs(m, shape)["total"], float((m(x) - y).abs().max())))
    return float(y.abs().max()), rows


def run(args: argparse.Namespace) -> int:
    from ..models import create_model, list_models
    from ..utils.complexity import count_macs, count_params

    names = list_models(args.pattern)
    if not names:
        raise CLIError(f"no registered model matches {args.pattern!r}; registered: {', '.join(list_models())}")
    shape = _parse_input(args.input)
    if not args.verify:
        width = max(len(n) for n in names)
        print(f"{'model':<{width}}  {'params':>12}  GMACs at {args.input} ({args.num_classes} classes)")
        for name in names:
            m = create_model(name, num_classes=args.num_classes)
            print(f"{name:<{width}}  {count_params(m):>12,}  {count_macs(m, shape)['total'] / 1e9:.3f}")
        return 0
    worst = 0.0
    for name in names:
        print(f"{name} ({args.num_classes} classes, input {shape}, random weights and BN statistics)")
        print(f"  {'form':<18} {'params':>12} {'GMACs':>7} {'max |logit diff|':>17}")
        scale, rows = _verify(name, args.num_classes, shape, args.seed)
        for label, params, macs, diff in rows:
            print(f"  {label:<18} {params:>12,} {macs / 1e9:>7.3f} {diff:>17.2e}")
            worst = max(worst, diff / max(1.0, scale))
        print(f"  largest |logit| {scale:.3g}")
    print(f"largest difference relative to the logit scale: {worst:.2e} (tolerance 1e-5)")
    return 0 if worst < 1e-5 else 1
