"""``benchmarks/embeddings.py``: the probe recovers a separable task and fails on shuffled labels; the cost
part runs and reports timestamps at 50 ms for both model sizes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "embeddings.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("embeddings_bench", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def blobs(n: int, seed: int, shuffle: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.normal(size=(n, 16)).astype(np.float32)
    x[np.arange(n), y] += 3.0
    return x, (rng.permutation(y) if shuffle else y)


def test_linear_probe_on_known_answers(bench) -> None:
    good = bench.linear_probe(blobs(400, 0), blobs(100, 1), blobs(200, 2))
    assert good["test_accuracy"] > 0.85 and good["l2"] in (1e-4, 1e-3, 1e-2, 1e-1)
    bad = bench.linear_probe(blobs(400, 0, shuffle=True), blobs(100, 1), blobs(200, 2))
    assert bad["test_accuracy"] < 0.45  # labels unrelated to the features: near chance (0.25)


def test_cost_part_runs(bench) -> None:
    out = bench.cost(runs=1, seconds=1.0)
    rows = [v for k, v in out.items() if k.startswith("audio_rep")]
    assert len(rows) == 2 and all(r["timestamps"] == 21 for r in rows)
    assert [r["timestamp_dim"] for r in rows] == [192, 768] and [r["scene_dim"] for r in rows] == [128, 512]
