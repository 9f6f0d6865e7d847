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


def figure(path: str) -> None:
    """Two panels: one smoothing level started cold (N = 200, d = 2, λ = 1e-4), the
    smoothed dual's distance to its maximum against the step for FISTA and for the same
    backtracked gradient ascent without momentum, log-log beside 1/k and 1/k²; and the
    marginal error ‖b − Σ_i a_i π_i‖₁ of whole ε-scaled solves (N = 1000, d = 2 and 64,
    tol 1e-3) against the step, with λ on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    cost = problem(200, 2, seed=1)
    stage = dict(reg=1e-4, reg_start=1e-4, tol=1e-14)
    long = solve_discrete_accelerated(cost, max_iter=20_000, **stage)
    top = max(h["smoothed_dual"] for h in long.history)
    steps = np.arange(1, 1001)
    for momentum, label in ((True, "FISTA (restarts)"), (False, "gradient ascent")):
        run = solve_discrete_accelerated(cost, max_iter=1000, momentum=momentum, **stage)
        gap = np.maximum(top - np.array([h["smoothed_dual"] for h in run.history]), 1e-16)
        left.loglog(steps[: len(gap)], gap, label=label)
        print(f"{label}: E*_λ − E_λ after 100 steps {gap[99]:.1e}, after 1000 {gap[-1]:.1e}")
    first = top - long.history[0]["smoothed_dual"]
    left.loglog(steps, first / steps, "k:", lw=0.8, label="1/k")
    left.loglog(steps, first / steps**2, "k--", lw=0.8, label="1/k²")
    left.set_ylim(1e-11, 1)
    left.set(
        xlabel="step k",
        ylabel=r"$E^*_\lambda - E_\lambda(\psi_k)$",
        title="one stage, N = 200, λ = 1e-4",
    )
    left.legend(fontsize=8)
    twin = right.twinx()
    for d, colour in ((2, "C0"), (64, "C1")):
        run = solve_discrete_accelerated(problem(1000, d), tol=1e-3)
        error = [h["marginal_error"] for h in run.history]
        right.semilogy(error, color=colour, lw=0.8, label=f"d = {d} (certified gap {run.gap:.1e})")
        twin.semilogy([h["reg"] for h in run.history], color=colour, ls="--", lw=0.8)
    right.set(xlabel="step", ylabel="marginal error (solid)", title="ε-scaled solves, N = 1000")
    twin.set_ylabel("λ (dashed)")
    right.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"figure written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 2000])
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
    parser.add_argument("--figure", help="also draw the convergence figure to this PNG")
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
