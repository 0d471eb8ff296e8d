"""Training when the CPUs are not all ours: clips/s of the demo's training loop with 0, 1 or 2 busy processes beside it,
and what the wait policy costs a batch-1 forward pass of the tiny model (2 threads).

Each measurement is a fresh process training the demo's tiny model on the bundled sample (keywords recipe:
2 data workers, batch 32, 2 threads) for ``--seconds``, after one warm-up epoch:

- ``spinning``: torch imported before arinext, so OpenMP keeps libgomp's default wait policy (its threads
  spin after every parallel region): what every run did before ``import arinext`` set the policy;
- ``arinext``: ``import arinext`` first, which sets ``OMP_WAIT_POLICY=PASSIVE`` (unless the environment says
  otherwise) before torch loads: what ``arinext train`` does now.

The busy processes are plain Python loops (``--hogs``), like a second job on the machine.

    python benchmarks/shared_cpu.py --seconds 20 --hogs 0 1 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time


def spin() -> None:
    while True:
        pass


def child(mode: str, seconds: float) -> None:
    if mode == "spinning":
        import torch  # noqa: F401  (first: the OpenMP runtime starts with its default wait policy)
    else:
        import arinext  # noqa: F401  (first: sets OMP_WAIT_POLICY=PASSIVE before torch loads)
    import torch
    from _demo_training import keywords_training_set, tiny_sgd_step

    from arinext.data import make_loader

    torch.set_num_threads(2)
    latency = batch1_latency_ms()
    data = keywords_training_set()
    loader = make_loader(data, 32, True, 2, seed=0, drop_last=True, persistent_workers=True)
    step = tiny_sgd_step()
    clips, start, epoch = 0, None, 0
    while start is None or time.perf_counter() - start < seconds:
        data.set_epoch(epoch)
        for batch in loader:
            done = step(batch)
            if start is not None:
                clips += done
                if time.perf_counter() - start >= seconds:
                    break
        if start is None:  # the first epoch warms up workers and kernels
            start = time.perf_counter()
        epoch += 1
    elapsed = time.perf_counter() - start
    policy = os.environ.get("OMP_WAIT_POLICY", "unset")
    print(json.dumps({"clips_per_s": clips / elapsed, "policy": policy, **latency}))


def batch1_latency_ms() -> dict[str, float]:
    """Median ms of one 1 s clip (101 x 64) through the tiny model's training form and its full fold."""
    import torch

    import arinext
    from arinext.utils.timing import time_interleaved

    model = arinext.create_model("audio_rep_inception_next_tiny", num_classes=10).eval()
    nets = {"training_form_ms": model, "fused_ms": arinext.reparameterize_model(model, fold="full")}
    x = torch.randn(1, 1, 101, 64)
    with torch.no_grad():
        stats = time_interleaved({name: (lambda net=net: net(x)) for name, net in nets.items()}, runs=100, warmup=20)
    return {name: st.median_ms for name, st in stats.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=20.0, help="timed training per measurement")
    p.add_argument("--hogs", type=int, nargs="+", default=[0, 1, 2], help="busy processes beside the training")
    p.add_argument("--child", nargs=2, metavar=("MODE", "SECONDS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child[0], float(args.child[1]))
        return
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    print(f"{os.cpu_count()} CPUs, load average before {os.getloadavg()[0]:.2f}\n")
    print("| busy processes | spinning (libgomp default): train clips/s, batch-1 ms (training form / fused) | "
          "arinext (PASSIVE): the same | clips/s ratio |")  # fmt: skip
    print("|---:|---:|---:|---:|")
    for hogs in args.hogs:
        procs = [mp.Process(target=spin, daemon=True) for _ in range(hogs)]
        for h in procs:
            h.start()
        try:
            r = {}
            for mode in ("spinning", "arinext"):
                out = subprocess.run([sys.executable, __file__, "--child", mode, str(args.seconds)], env=env,
                                     capture_output=True, text=True, check=True)  # fmt: skip
                r[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            for h in procs:
                h.terminate()
        cells = [f"{m['clips_per_s']:.1f}, {m['training_form_ms']:.2f} / {m['fused_ms']:.2f} ms"
                 for m in (r["spinning"], r["arinext"])]  # fmt: skip
        ratio = r["arinext"]["clips_per_s"] / r["spinning"]["clips_per_s"]
        print(f"| {hogs} | {cells[0]} | {cells[1]} | {ratio:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
