"""Accelerated discrete OT against POT's exact network simplex and Sinkhorn.

For N = M uniform points (uniform in [0, 1]^d, the target cloud shifted by 0.2), the
squared Euclidean cost, in d = 2 and d = 64: the time each solver needs to return a
transport cost within ``--rel`` (default 1e-3) relative of the exact one.

- ``ot.emd``: POT's network simplex, exact (the reference cost; its time is the
  baseline of the ratio column).
- ``accelerated``: :func:`aeot.ot.solve_discrete_accelerated` with ``tol=--rel``: it
  stops on its own certified gap, and its cost is that of a feasible plan.
- ``ot.sinkhorn``: POT's log-domain Sinkhorn (``method="sinkhorn_log"``, stopThr 1e-9):
  the first ε of the ladder 1e-2, 3e-3, 1e-3, 3e-4, 1e-4 (× mean cost) whose plan cost is
  within ``--rel`` of the exact one; the ladder's earlier rungs are not counted in its
  time, which favours Sinkhorn. Its plan's marginals are not exact, so its cost is not a
  certified bound.

Usage::

    python benchmarks/bench_discrete_ot.py --sizes 1000 2000 --dims 2 64 --threads 2
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

import ot
from aeot.ot import solve_discrete_accelerated

EPS_LADDER = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4)


def problem(n: int, d: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, dtype=torch.float64, generator=g)
    y = torch.rand(n, d, dtype=torch.float64, generator=g) + 0.2
    return (torch.cdist(x, y) ** 2).contiguous()


def run(n: int, d: int, rel: float, sinkhorn: bool) -> list[dict]:
    cost = problem(n, d)
    c = cost.numpy()
    w = np.full(n, 1.0 / n)
    rows = []
    t0 = time.perf_counter()
    plan = ot.emd(w, w, c, numItermax=100_000_000)
    emd_seconds = time.perf_counter() - t0
    exact = float(np.sum(plan * c))
    rows.append({"solver": "ot.emd (exact)", "seconds": emd_seconds, "cost": exact, "note": ""})

    t0 = time.perf_counter()
    result = solve_discrete_accelerated(cost, tol=rel)
    seconds = time.perf_counter() - t0
    rows.append(
        {
            "solver": "accelerated",
            "seconds": seconds,
            "cost": result.cost,
            "note": f"certified gap {result.gap:.1e}, {result.iterations} steps, "
            f"{result.passes} passes" + ("" if result.converged else ", NOT converged"),
        }
    )
    if sinkhorn:
        for eps in EPS_LADDER:
            reg = eps * float(c.mean())
            t0 = time.perf_counter()
            plan = ot.sinkhorn(
                w, w, c, reg, method="sinkhorn_log", numItermax=100_000, stopThr=1e-9
            )
            seconds = time.perf_counter() - t0
            value = float(np.sum(plan * c))
            if abs(value - exact) / exact <= rel or eps == EPS_LADDER[-1]:
                met = abs(value - exact) / exact <= rel
                rows.append(
                    {
                        "solver": "ot.sinkhorn (log)",
                        "seconds": seconds,
                        "cost": value,
                        "note": f"eps {eps:g} x mean cost" + ("" if met else ", NOT within rel"),
                    }
                )
                break
    for row in rows:
        row["rel_error"] = (row["cost"] - exact) / exact
        row["speedup"] = emd_seconds / row["seconds"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 64])
    parser.add_argument("--rel", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--no-sinkhorn", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, POT {ot.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"cost within {args.rel:g} relative of ot.emd's; speed-up = emd time / time")
    print(
        f"{'N':>6} | {'d':>3} | {'solver':<18} | {'seconds':>8} | {'rel. error':>10} | "
        f"{'speed-up':>8} | note"
    )
    for n in args.sizes:
        for d in args.dims:
            for row in run(n, d, args.rel, not args.no_sinkhorn):
                print(
                    f"{n:>6} | {d:>3} | {row['solver']:<18} | {row['seconds']:8.2f} | "
                    f"{row['rel_error']:10.1e} | {row['speedup']:7.2f}x | {row['note']}"
                )
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
