"""The auxiliary-measure plan against POT's exact network simplex, N = 10^3..10^5.

Problem: N = M points, x uniform in [0, 1]^d, y uniform in [0, 1]^d shifted by 0.2, equal
weights, squared Euclidean cost (the same as bench_discrete_ot.py).

- ``ot.emd``: POT's network simplex on the dense N × N cost (exact; its time is the
  baseline of the ratio column). Skipped above ``--emd-max`` (10^5 points need an 80 GB
  cost matrix).
- ``auxiliary``: :func:`aeot.ot.solve_discrete_auxiliary`, estimated support plus column
  generation to a certified gap of 1e-9: its cost is the exact one.
- ``auxiliary, paper``: the same with ``max_rounds=0`` (the restricted program on the
  estimated support alone, the ECCV'22 method): its cost is a feasible plan's, with the
  certified gap beside it.

"rel. error" is (cost − exact) / exact where ot.emd ran; "gap" is the solver's own
certified (cost − dual) / cost, which needs no reference.

Usage::

    python benchmarks/bench_auxiliary.py --sizes 1000 10000 100000 --dims 2 --threads 2
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

import ot
from aeot.ot import solve_discrete_auxiliary


def points(n: int, d: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, dtype=torch.float64, generator=g)
    y = torch.rand(n, d, dtype=torch.float64, generator=g) + 0.2
    return x, y


def run(n: int, d: int, emd_max: int, paper: bool) -> list[dict]:
    x, y = points(n, d)
    rows = []
    exact = emd_seconds = None
    if n <= emd_max:
        c = ot.dist(x.numpy(), y.numpy())
        w = np.full(n, 1.0 / n)
        t0 = time.perf_counter()
        exact = float(ot.emd2(w, w, c, numItermax=10**9))
        emd_seconds = time.perf_counter() - t0
        del c
        rows.append({"solver": "ot.emd (exact)", "seconds": emd_seconds, "cost": exact})
        rows[-1].update(gap=0.0, note="dense N x N cost")
    for name, kwargs in (("auxiliary", {}), ("auxiliary, paper", {"max_rounds": 0})):
        if name.endswith("paper") and not paper:
            continue
        t0 = time.perf_counter()
        result = solve_discrete_auxiliary(x, y, **kwargs)
        seconds = time.perf_counter() - t0
        phases = ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items() if k != "total")
        rows.append(
            {
                "solver": name,
                "seconds": seconds,
                "cost": result.cost,
                "gap": result.gap,
                "note": f"{len(result.rounds)} LP, support {result.support_size} "
                f"({result.support_size / n:.1f}/point); {phases} s; "
                f"estimate alone {result.estimate_cost:.6g}"
                + ("" if result.converged or kwargs else ", NOT converged"),
            }
        )
    for row in rows:
        row["rel_error"] = (row["cost"] - exact) / exact if exact else float("nan")
        row["speedup"] = emd_seconds / row["seconds"] if emd_seconds else float("nan")
    return rows


def figure(path: str, n: int = 60) -> None:
    """The method on n = ``n`` points of the benchmark's problem in 2D: the auxiliary
    measure's box cut by the two power diagrams (ζ → μ's cells in blue, ζ → ν's in
    orange), each pair of overlapping cells an estimated support pair; and the plan
    (lines x_i → y_j, width by mass) beside POT's exact one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = points(n, 2, seed=3)
    result = solve_discrete_auxiliary(x, y)
    w = np.full(n, 1.0 / n)
    exact = ot.emd(w, w, (torch.cdist(x, y) ** 2).numpy())
    exact_cost = float(np.sum(exact * (torch.cdist(x, y) ** 2).numpy()))
    low = torch.minimum(x.min(0).values, y.min(0).values)
    high = torch.maximum(x.max(0).values, y.max(0).values)
    pad = 0.01 * (high - low)
    low, high = low - pad, high + pad
    grid = 500
    u = torch.linspace(0, 1, grid, dtype=torch.float64)
    gx, gy = torch.meshgrid(
        low[0] + u * (high[0] - low[0]), low[1] + u * (high[1] - low[1]), indexing="xy"
    )
    queries = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.2))
    extent = (float(low[0]), float(high[0]), float(low[1]), float(high[1]))
    pairs = set()
    cells = []
    for solve, colour in zip(result.sources, ("C0", "C1"), strict=True):
        cell = solve.assign(queries).reshape(grid, grid).numpy()
        cells.append(cell)
        edge = np.zeros_like(cell, dtype=bool)
        edge[:, 1:] |= cell[:, 1:] != cell[:, :-1]
        edge[1:, :] |= cell[1:, :] != cell[:-1, :]
        left.contour(edge.astype(float), levels=[0.5], colors=colour, linewidths=0.6, extent=extent)
    pairs = {
        (int(i), int(j)) for i, j in zip(cells[0].reshape(-1), cells[1].reshape(-1), strict=True)
    }
    left.scatter(*x.T, s=8, c="C0", label="x (μ)")
    left.scatter(*y.T, s=8, c="C1", label="y (ν)")
    left.set(
        title=f"auxiliary measure ζ on the box: ζ→μ cells (blue), ζ→ν cells (orange)\n"
        f"{len(pairs)} overlapping pairs ({len(pairs) / n:.1f} per point) on this grid",
        aspect="equal",
    )
    left.title.set_fontsize(9)
    left.legend(fontsize=8, loc="lower right")
    for i, j, m in zip(
        result.rows.tolist(), result.cols.tolist(), result.mass.tolist(), strict=True
    ):
        right.plot([x[i, 0], y[j, 0]], [x[i, 1], y[j, 1]], "k-", lw=60 * m, alpha=0.7)
    ei, ej = np.nonzero(exact > 1e-12)
    for i, j in zip(ei, ej, strict=True):
        right.plot([x[i, 0], y[j, 0]], [x[i, 1], y[j, 1]], "r:", lw=1.0)
    right.scatter(*x.T, s=8, c="C0")
    right.scatter(*y.T, s=8, c="C1")
    right.set(
        title=f"the plan (black) and ot.emd's (red dotted)\ncost {result.cost:.9f}, "
        f"ot.emd's {exact_cost:.9f}\ncertified gap {result.gap:.1e}, "
        f"{len(result.rounds)} linear program(s)",
        aspect="equal",
    )
    right.title.set_fontsize(9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(
        f"figure written to {path}: n = {n}, {len(pairs)} overlapping cell pairs on the grid, "
        f"cost {result.cost:.12f} against ot.emd's {exact_cost:.12f}, gap {result.gap:.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--dims", type=int, nargs="+", default=[2])
    parser.add_argument("--emd-max", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--no-paper", action="store_true")
    parser.add_argument("--figure", help="also draw the method's picture to this PNG")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.figure:
        figure(args.figure)
    print(
        f"torch {torch.__version__}, POT {ot.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'N':>6} | {'d':>3} | {'solver':<17} | {'seconds':>8} | {'cost':>12} | "
        f"{'rel. error':>10} | {'gap':>8} | {'speed-up':>8} | note"
    )
    for n in args.sizes:
        for d in args.dims:
            for row in run(n, d, args.emd_max, not args.no_paper):
                print(
                    f"{n:>6} | {d:>3} | {row['solver']:<17} | {row['seconds']:8.2f} | "
                    f"{row['cost']:12.8g} | {row['rel_error']:10.1e} | {row['gap']:8.1e} | "
                    f"{row['speedup']:7.2f}x | {row['note']}",
                    flush=True,
                )
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
