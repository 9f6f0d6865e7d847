"""Benchmark of the exact 2D semi-discrete OT solver (damped Newton on power diagrams).

Targets: N uniform random points in the unit square, uniform weights, uniform source on
the unit square.  For each N the table reports

* Newton: wall time to a relative cell-mass error max_i |μ_i − ν_i| / ν_i <= 1e-10 (best
  and median of ``--repeats`` runs; CPU = best process time, less sensitive to other
  jobs), Newton iterations, power-diagram evaluations (line-search trials included), the
  final relative and L1 errors;
* same-run baselines: one bare Qhull call on the N lifted points (scipy ConvexHull, the
  floor of any diagram evaluation), one full diagram evaluation (areas and edge lengths),
  and the Newton time expressed in Qhull calls;
* plain gradient descent h ← h − η (μ(h) − ν) with the same exact masses, given the same
  wall time as Newton (η = 1/(2 max_i H_ii), the Gershgorin bound on the Hessian): the
  relative error it reaches.

With ``--density wavy`` the source is a piecewise-constant density on a ``--grid`` ×
``--grid`` grid of the unit square (ρ ∝ 1 + 0.9 sin 6x cos(4y + 1), densest to faintest
19:1, :class:`aeot.ot.GridDensity`); the extra column "1 density" is the time to cut one
diagram's cells and edges along the grid (:mod:`aeot.ot.density2d`), paid per diagram on
top of "1 diagram".

Run ``python benchmarks/bench_exact2d.py [--sizes 10000 100000] [--repeats 3]
[--density wavy --grid 256] [--plot PNG] [--json OUT] [--peer sdot.jsonl]``.  Timings are
wall-clock and noisy when other jobs share the machine.  ``--peer`` takes the JSON lines of
``benchmarks/peer_sdot.py`` (sdot runs under its own Python 3.12 interpreter, on the same
targets), prints sdot's time over aeot's for each N both have and draws sdot's line; the
two runs are separate processes, so their loads are reported separately.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
import scipy
import torch
from scipy.spatial import ConvexHull

import aeot.ot.exact2d as exact2d
from aeot.ot.density2d import cell_masses_and_edge_integrals
from aeot.ot.power2d import power_diagram_2d
from aeot.ot.problem import SemiDiscreteProblem
from aeot.ot.sources import BoxUniform, GridDensity


def _count_diagrams():
    """Wrap the solver's diagram routine to count evaluations; returns (counter, undo)."""
    counter = [0]
    original = exact2d._power_diagram

    def counted(*args, **kwargs):
        counter[0] += 1
        return original(*args, **kwargs)

    exact2d._power_diagram = counted

    def undo():
        exact2d._power_diagram = original

    return counter, undo


def _best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _source(density: str, grid: int):
    """The unit-square source: uniform, or the wavy grid density of the module docstring."""
    if density == "uniform":
        return BoxUniform(2)
    g = (np.arange(grid) + 0.5) / grid
    x, y = np.meshgrid(g, g, indexing="ij")
    return GridDensity(1.0 + 0.9 * np.sin(6 * x) * np.cos(4 * y + 1))


def _gradient_descent(problem: SemiDiscreteProblem, budget: float) -> tuple[float, int]:
    """Exact-gradient descent for ``budget`` seconds; returns (max rel error, iterations)."""
    y = problem.targets.numpy()
    n = y.shape[0]
    nu = np.full(n, 1.0 / n)
    source = problem.source
    rho = source.density().numpy() if isinstance(source, GridDensity) else None
    h = -0.5 * (y**2).sum(1)
    masses, hessian = exact2d.masses_and_hessian_2d(problem, h)
    eta = 0.5 / hessian.diagonal().max()
    start = time.perf_counter()
    iters = 0
    while time.perf_counter() - start < budget:
        h = h - eta * (masses - nu)
        masses = exact2d._masses_and_weights(power_diagram_2d(y, h), y, rho)[0]
        iters += 1
    return float(np.max(np.abs(masses - nu) / nu)), iters


def run(
    sizes: list[int],
    repeats: int,
    seed: int,
    tol: float,
    density: str = "uniform",
    grid: int = 256,
    linear_solvers: tuple[str, ...] = ("auto",),
) -> list[dict]:
    """One row per N and linear solver; the solvers' repeats alternate, so that a change
    of the machine's load falls on all of them alike."""
    rows = []
    source = _source(density, grid)
    rho = source.density().numpy() if isinstance(source, GridDensity) else None
    for n in sizes:
        rng = np.random.default_rng(seed)
        y = rng.random((n, 2))
        problem = SemiDiscreteProblem(torch.from_numpy(y), source=source)
        lifted = np.column_stack([y, 0.5 * (y**2).sum(1)])
        t_qhull = _best_of(lambda lifted=lifted: ConvexHull(lifted), 3)
        h_vor = -0.5 * (y**2).sum(1)
        t_diagram = _best_of(lambda y=y, h=h_vor: power_diagram_2d(y, h), 3)
        t_density = 0.0
        if rho is not None:
            voronoi = power_diagram_2d(y, h_vor)
            t_density = _best_of(
                lambda d=voronoi, y=y: cell_masses_and_edge_integrals(d, y, rho), 3
            )

        runs = {
            ls: {"times": [], "cpu": [], "result": None, "diagrams": 0} for ls in linear_solvers
        }
        for _ in range(repeats):
            for ls, r in runs.items():
                counter, undo = _count_diagrams()
                try:
                    t, c = time.perf_counter(), time.process_time()
                    r["result"] = exact2d.solve_exact_2d(problem, tol=tol, linear_solver=ls)
                    r["times"].append(time.perf_counter() - t)
                    r["cpu"].append(time.process_time() - c)
                finally:
                    undo()
                r["diagrams"] = counter[0]
        nu = problem.weights.numpy()
        fastest = min(min(r["times"]) for r in runs.values())
        gd_rel, gd_iters = _gradient_descent(problem, fastest)
        for ls, r in runs.items():
            result, times = r["result"], r["times"]
            rel = float(np.max(np.abs(result.cell_masses.numpy() - nu) / nu))
            rows.append(
                {
                    "N": n,
                    "linear_solver": ls,
                    "newton_best_s": min(times),
                    "newton_median_s": statistics.median(times),
                    "newton_cpu_s": min(r["cpu"]),
                    "iterations": result.n_iter,
                    "diagrams": r["diagrams"],
                    "converged": result.converged,
                    "tol": tol,
                    "max_rel_error": rel,
                    "l1_error": result.errors[-1],
                    "qhull_s": t_qhull,
                    "diagram_s": t_diagram,
                    "density_s": t_density,
                    "newton_over_qhull": min(times) / t_qhull,
                    "gd_rel_error": gd_rel,
                    "gd_iterations": gd_iters,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tol", type=float, default=1e-10)
    parser.add_argument("--density", choices=["uniform", "wavy"], default="uniform")
    parser.add_argument("--grid", type=int, default=256, help="pixels per side (--density wavy)")
    parser.add_argument("--plot", default=None, help="also draw time against N to this PNG")
    parser.add_argument(
        "--peer",
        default=None,
        help="JSON lines of benchmarks/peer_sdot.py (sdot's times on the same targets): "
        "a column sdot/aeot and a line on the plot",
    )
    parser.add_argument(
        "--linear-solvers",
        nargs="+",
        choices=["auto", "superlu", "pardiso"],
        default=None,
        help="the Newton systems' factorisation(s), timed alternately on the same targets "
        "(default: superlu and, when pypardiso is installed, pardiso)",
    )
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument(
        "--rows", default=None, help="a --json file of an earlier run: tabulate and draw it again"
    )
    args = parser.parse_args()
    print(
        f"# python {platform.python_version()}, numpy {np.__version__}, scipy "
        f"{scipy.__version__}, {os.cpu_count()} CPU(s), load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    if args.rows:
        with open(args.rows) as f:
            saved = json.load(f)
        rows = saved["rows"]
        print(f"# rows of {args.rows} (load then {', '.join(f'{x:.1f}' for x in saved['load'])})")
    else:
        solvers = args.linear_solvers or (["superlu", "pardiso"] if _has_pardiso() else ["superlu"])
        rows = run(
            args.sizes, args.repeats, args.seed, args.tol, args.density, args.grid, tuple(solvers)
        )
    peer = _read_peer(args.peer) if args.peer else {}
    if args.density != "uniform":
        print(f"# source: the wavy density on a {args.grid} x {args.grid} grid")
    header = (
        f"{'N':>7} | {'solver':>7} | {'Newton best':>11} | {'vs superlu':>10} | "
        f"{'median':>7} | {'CPU':>6} | {'iters':>5} | "
        f"{'diagrams':>8} | "
        f"{'max rel err':>11} | {'L1 err':>9} | {'1 Qhull':>7} | {'1 diagram':>9} | "
        f"{'1 density':>9} | "
        f"{'Newton/Qhull':>12} | {'GD same time: rel err (iters)':>29}"
    )
    print(header)
    print("-" * len(header))
    superlu = {r["N"]: r["newton_best_s"] for r in rows if r.get("linear_solver") == "superlu"}
    for r in rows:
        ratio = superlu.get(r["N"], float("nan")) / r["newton_best_s"]
        print(
            f"{r['N']:>7} | {r.get('linear_solver', 'superlu'):>7} | "
            f"{r['newton_best_s']:>10.2f}s | {ratio:>9.2f}x | {r['newton_median_s']:>6.2f}s | "
            f"{r['newton_cpu_s']:>5.2f}s | {r['iterations']:>5} | {r['diagrams']:>8} | "
            f"{r['max_rel_error']:>11.2e} | "
            f"{r['l1_error']:>9.1e} | {r['qhull_s']:>6.3f}s | {r['diagram_s']:>8.3f}s | "
            f"{r['density_s']:>8.3f}s | "
            f"{r['newton_over_qhull']:>12.1f} | "
            f"{r['gd_rel_error']:>21.2e} ({r['gd_iterations']:>3})"
        )

    for r in rows:
        if r["N"] in peer:
            p = peer[r["N"]]
            r["sdot_s"], r["sdot_max_rel_error"] = p["seconds"], p["max_rel_err"]
            print(
                f"# N = {r['N']}: sdot {p['version']} {p['seconds']:.2f} s to "
                f"{p['max_rel_err']:.1e} (its run, load {p.get('load', '?')}), "
                f"{p['seconds'] / r['newton_best_s']:.1f}x "
                f"aeot's ({r.get('linear_solver', 'superlu')}) {r['newton_best_s']:.2f} s to "
                f"{r['max_rel_error']:.1e}"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load": os.getloadavg(), "seed": args.seed, "rows": rows}, f, indent=1)
    if args.plot:
        _plot(rows, args.plot, args.density, peer)


def _has_pardiso() -> bool:
    try:
        import pypardiso  # noqa: F401
    except ImportError:
        return False
    return True


def _read_peer(path: str) -> dict[int, dict]:
    """The peer's JSON lines, by N."""
    with open(path) as f:
        return {p["n"]: p for p in map(json.loads, filter(str.strip, f))}


def _plot(rows: list[dict], path: str, density: str, peer: dict[int, dict]) -> None:
    """Newton's best time, one Qhull call and one diagram against N, log-log; the
    peer's times where given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    tols = ", ".join(f"{t:g}" for t in sorted({r.get("tol", 1e-10) for r in rows}))
    solvers = list(dict.fromkeys(r.get("linear_solver", "superlu") for r in rows))
    for ls, marker in zip(solvers, "ov*", strict=False):
        mine = [r for r in rows if r.get("linear_solver", "superlu") == ls]
        label = f"aeot (Newton, {ls}) to {tols}" if len(solvers) > 1 else f"aeot (Newton) to {tols}"
        ax.loglog(
            [r["N"] for r in mine], [r["newton_best_s"] for r in mine], marker + "-", label=label
        )
    once = list({r["N"]: r for r in rows}.values())
    n = [r["N"] for r in once]
    ax.loglog(n, [r["diagram_s"] for r in once], "s--", label="one power diagram")
    ax.loglog(n, [r["qhull_s"] for r in once], "^:", label="one Qhull call")
    if peer:
        pn = sorted(peer)
        tols = sorted({peer[k]["tol"] for k in pn})
        label = f"sdot {peer[pn[0]]['version']} to {', '.join(f'{t:g}' for t in tols)}"
        ax.loglog(pn, [peer[k]["seconds"] for k in pn], "D-", color="0.4", label=label)
    for r in rows:
        if not r["converged"]:
            ax.annotate(
                f"stopped at {r['max_rel_error']:.1e}",
                (r["N"], r["newton_best_s"]),
                textcoords="offset points",
                xytext=(-120, -4),
                fontsize=8,
            )
    ax.set(xlabel="N targets", ylabel="seconds", title=f"exact 2D semi-discrete OT ({density})")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
