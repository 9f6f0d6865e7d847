"""Accelerated discrete OT against POT's exact network simplex and Sinkhorn.

For N = M uniform points (uniform in [0, 1]^d, the target cloud shifted by 0.2), the
squared Euclidean cost, in d = 2 and d = 64: the time each solver needs to return a
transport cost within ``--rel`` (default 1e-3) relative of the exact one.

- ``ot.emd``: POT's network simplex, exact (the reference cost; its time is the
  baseline of the ratio column).
- ``accelerated``: :func:`aeot.ot.solve_discrete_accelerated` with ``tol=--rel``: it
  stops on its own certified gap, and its cost is that of a feasible plan.
- ``accelerated, full passes`` (``--full-passes``): the same with its active sets off
  (every evaluation a pass over all of C), the solver as it was before them.
- ``ot.sinkhorn``: POT's log-domain Sinkhorn (``method="sinkhorn_log"``, stopThr
  ``--sinkhorn-stop``, default 1e-9; 1e-5 stops far earlier and is enough for 1e-3):
  the first ε of the ladder 1e-2, 3e-3, 1e-3, 3e-4, 1e-4 (× mean cost) whose plan cost is
  within ``--rel`` of the exact one; the ladder's earlier rungs are not counted in its
  time, which favours Sinkhorn. Its plan's marginals are not exact, so its cost is not a
  certified bound. Each rung runs in a child process stopped after
  ``--sinkhorn-timeout`` seconds; a rung stopped there ends the row ("not finished").

Usage::

    python benchmarks/bench_discrete_ot.py --sizes 1000 2000 --dims 2 64 --threads 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue as queue_module
import time

import numpy as np
import torch

import ot
from aeot.ot import accelerated, solve_discrete_accelerated

EPS_LADDER = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4)


def problem(n: int, d: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, dtype=torch.float64, generator=g)
    y = torch.rand(n, d, dtype=torch.float64, generator=g) + 0.2
    return (torch.cdist(x, y) ** 2).contiguous()


def _accelerated_row(cost, rel: float, full: bool) -> dict:
    saved = accelerated._MAX_DENSITY
    accelerated._MAX_DENSITY = 0.0 if full else saved
    try:
        t0 = time.perf_counter()
        result = solve_discrete_accelerated(cost, tol=rel)
        seconds = time.perf_counter() - t0
    finally:
        accelerated._MAX_DENSITY = saved
    return {
        "solver": "accelerated, full passes" if full else "accelerated",
        "seconds": seconds,
        "cost": result.cost,
        "note": f"certified gap {result.gap:.1e}, {result.iterations} steps, "
        f"{result.passes} full passes, {result.active_passes} active-set passes"
        + (
            f", {result.coarse_passes} passes over {result.coarse_rows} sampled rows"
            if result.coarse_rows
            else ""
        )
        + ("" if result.converged else ", NOT converged"),
    }


def _sinkhorn_child(w, c, reg, stop, queue) -> None:
    t0 = time.perf_counter()
    plan = ot.sinkhorn(w, w, c, reg, method="sinkhorn_log", numItermax=100_000, stopThr=stop)
    queue.put((float(np.sum(plan * c)), time.perf_counter() - t0))


def _sinkhorn_cost(w, c, reg, timeout: float, stop: float) -> tuple[float | None, float]:
    """POT's log-domain Sinkhorn in a forked child, stopped after ``timeout`` seconds:
    (plan cost, seconds), or (None, timeout) when it did not finish."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_sinkhorn_child, args=(w, c, reg, stop, queue))
    child.start()
    try:
        return queue.get(timeout=timeout)
    except queue_module.Empty:
        return None, timeout
    finally:
        child.kill()
        child.join()


def run(
    n: int,
    d: int,
    rel: float,
    sinkhorn: bool,
    full_passes: bool = False,
    timeout: float = 600.0,
    stop: float = 1e-9,
) -> list[dict]:
    cost = problem(n, d)
    c = cost.numpy()
    w = np.full(n, 1.0 / n)
    rows = []
    t0 = time.perf_counter()
    plan = ot.emd(w, w, c, numItermax=100_000_000)
    emd_seconds = time.perf_counter() - t0
    exact = float(np.sum(plan * c))
    rows.append({"solver": "ot.emd (exact)", "seconds": emd_seconds, "cost": exact, "note": ""})

    rows.append(_accelerated_row(cost, rel, full=False))
    if full_passes:
        rows.append(_accelerated_row(cost, rel, full=True))
    if sinkhorn:
        for eps in EPS_LADDER:
            reg = eps * float(c.mean())
            value, seconds = _sinkhorn_cost(w, c, reg, timeout, stop)
            if value is None:  # the rung did not finish: Sinkhorn is slower than this
                rows.append(
                    {
                        "solver": "ot.sinkhorn (log)",
                        "seconds": seconds,
                        "cost": float("nan"),
                        "note": f"eps {eps:g} x mean cost: not finished after {timeout:.0f} s",
                    }
                )
                break
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
    parser.add_argument(
        "--sinkhorn-timeout",
        type=float,
        default=600.0,
        help="seconds each Sinkhorn rung may run (a rung stopped there ends its row)",
    )
    parser.add_argument(
        "--sinkhorn-stop",
        type=float,
        default=1e-9,
        help="Sinkhorn's stopThr (POT: the marginal violation at which it stops)",
    )
    parser.add_argument(
        "--full-passes", action="store_true", help="also run the solver without active sets"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, POT {ot.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"cost within {args.rel:g} relative of ot.emd's; speed-up = emd time / time; "
        f"Sinkhorn's stopThr {args.sinkhorn_stop:g}"
    )
    print(
        f"{'N':>6} | {'d':>3} | {'solver':<24} | {'seconds':>8} | {'rel. error':>10} | "
        f"{'speed-up':>8} | note"
    )
    for n in args.sizes:
        for d in args.dims:
            for row in run(
                n,
                d,
                args.rel,
                not args.no_sinkhorn,
                args.full_passes,
                args.sinkhorn_timeout,
                args.sinkhorn_stop,
            ):
                print(
                    f"{n:>6} | {d:>3} | {row['solver']:<24} | {row['seconds']:8.2f} | "
                    f"{row['rel_error']:10.1e} | {row['speedup']:7.2f}x | {row['note']}"
                )
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
