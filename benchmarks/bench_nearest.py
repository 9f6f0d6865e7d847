"""Benchmark: exact nearest-training-item distances, as the spread's data-space
calibration (``AEOT.calibrate_spread``) and the NN ratio (``memorisation``) use them.

Items: real training images, flattened: ``mnist`` 20,000 × 784 (the reduced budget's
MNIST subset) and ``stacked`` 128,000 × 2,352 (Stacked MNIST's protocol size); queries:
1,024 test images (one bisection step of the calibration). Every method must return the
float64 distances of the dense brute force (relative difference ≤ 1e-9, checked).

Methods, in the same run:

* ``NearestIndex``: :class:`aeot.metrics.NearestIndex` on the float32 images (float32
  product as a screen with a rounding-error margin, candidates recomputed in float64);
* ``NearestIndex float64``: the same on a float64 copy (the screen then is the former
  float64 expansion; the copy is made once, outside the timing);
* ``sklearn brute``: ``sklearn.neighbors.NearestNeighbors(n_neighbors=1,
  algorithm="brute")`` on float64 (the baseline of the ratio column);
* ``torch.cdist``: ``torch.cdist`` in float64 blocks, the minimum per row.

Timings: the minimum (and median) of ``--repeats`` runs; the load average before and
after is printed (the machine is shared).

Run: ``python benchmarks/bench_nearest.py [--sets mnist stacked] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from aeot.data import load_dataset, stacked_digits
from aeot.metrics import NearestIndex


def _data(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if name == "mnist":
        train = load_dataset("mnist", split="train+valid")
        idx = np.sort(np.random.default_rng(0).choice(len(train), size=20000, replace=False))
        items = train.x[torch.from_numpy(idx)]
        queries = load_dataset("mnist", split="test").x[:1024]
    else:
        items = stacked_digits(load_dataset("mnist", split="train+valid"), n=128000, seed=0).x
        queries = stacked_digits(load_dataset("mnist", split="test"), n=1024, seed=1).x
    return items.reshape(len(items), -1).float(), queries.reshape(len(queries), -1).float()


def _cdist(q: torch.Tensor, x: torch.Tensor, rows: int = 64) -> torch.Tensor:
    blocks = [torch.cdist(q[i : i + rows], x).min(1).values for i in range(0, len(q), rows)]
    return torch.cat(blocks)


def _sklearn(q: np.ndarray, x: np.ndarray):
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(x)
    return lambda: torch.from_numpy(nn.kneighbors(q)[0][:, 0])


def _table(name: str, repeats: int) -> None:
    x, q = _data(name)
    x64, q64 = x.double(), q.double()
    index = NearestIndex(x)
    index64 = NearestIndex(x64)
    methods = {
        "sklearn brute": _sklearn(q64.numpy(), x64.numpy()),
        "NearestIndex": lambda: index.distances(q),
        "NearestIndex float64": lambda: index64.distances(q64),
        "torch.cdist": lambda: _cdist(q64, x64),
    }
    reference = None
    rows = []
    for label, run in methods.items():
        times, out = [], None
        for _ in range(repeats):
            start = time.perf_counter()
            out = run()
            times.append(time.perf_counter() - start)
        out = out.to(torch.float64)
        if reference is None:
            reference = out
        worst = float(((out - reference).abs() / reference.clamp_min(1e-300)).max())
        assert worst <= 1e-9, f"{label} differs from the brute force by {worst:.1e}"
        rows.append((label, min(times), statistics.median(times), worst))
    base = rows[0][1]
    print(f"\n{name}: {x.shape[0]} items × {x.shape[1]}, {q.shape[0]} queries")
    print("| method | min s | median s | × sklearn brute | max rel. diff |")
    print("|---|---|---|---|---|")
    for label, best, med, worst in rows:
        print(f"| {label} | {best:.3f} | {med:.3f} | {base / best:.2f} | {worst:.1e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["mnist", "stacked"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"threads {torch.get_num_threads()}, load average before {os.getloadavg()}")
    for name in args.sets:
        _table(name, args.repeats)
    print(f"\nload average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
