"""Peer timing: the sdot library (Hugo Leclerc) on the problem of ``bench_exact2d.py``.

Targets: N uniform random points in the unit square (``default_rng(seed).random((N, 2))``),
uniform weights 1/N; source: the uniform (Lebesgue) measure on the unit square; quadratic
cost.  sdot solves it with its default 2D solver, ``OtProblem(...).solve(Iterative(...))``
(a damped Newton on power diagrams; its default linear solver in 2D up to 600 000 seeds is
a sparse Cholesky, Eigen LDLT).  sdot's ``tol`` is ABSOLUTE on the normalized masses
(stop when max_i |m_i - nu_i| <= tol), so a relative tolerance ``--tol`` is passed as
``tol / N``.

For each N: the wall time of ``solve`` (best of ``--repeats``, a fresh problem each time so
that no run starts from the previous solution; problem generation excluded), the max
relative cell-mass error max_i |m_i - 1/N| * N from sdot's own power diagram at the
returned weights (recomputed, not the solver's report), and the Newton iterations.  A
warm-up solve at N = 100 comes first, outside the results: it loads sdot's kernels
(compiled by loom on a fresh machine, which prints ninja's lines; they are not JSON), and
its time is reported as ``first_call_seconds``.  loom compiles the kernels with Eigen 3.4.0,
which it downloads on first use; offline it prints "eigen 3.4.0 not available" and sdot
runs without it, slower (7.1 against 6.2 s at N = 10⁵): link Debian's ``libeigen3-dev``
there first, ``ln -s /usr/include/eigen3 ~/.cache/loom/ext/eigen-3.4.0``.

sdot's arrays go through loom; ``--framework numpy`` (the default) keeps them on NumPy,
``auto`` lets loom pick (JAX, which sdot imports), about 0.3 s slower per solve.

This needs an interpreter with sdot installed (and jax, which ``import sdot`` needs), not
the project's.  Run ``/tmp/sdotenv/bin/python benchmarks/peer_sdot.py --sizes 10000 100000
--repeats 1 | grep '^{'``.  Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from importlib.metadata import version

import loom
import numpy as np
import sdot
from loom.drivers import framework_defaults


def _solve(n: int, seed: int, tol: float):
    """One cold solve: (seconds, plan)."""
    y = np.random.default_rng(seed).random((n, 2))
    problem = sdot.OtProblem(sdot.SumOfDiracs(y), sdot.Box())
    settings = sdot.Iterative(tol=tol / n)
    t = time.perf_counter()
    plan = problem.solve(settings)
    return time.perf_counter() - t, plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--tol", type=float, default=1e-6, help="relative cell-mass tolerance")
    parser.add_argument("--framework", choices=["numpy", "auto"], default="numpy")
    args = parser.parse_args()

    if args.framework != "auto":
        loom.default_framework = args.framework
    first_call, _ = _solve(100, args.seed, args.tol)
    for n in args.sizes:
        runs = [_solve(n, args.seed, args.tol) for _ in range(args.repeats)]
        times = [t for t, _ in runs]
        plan = runs[-1][1]
        masses = np.asarray(plan.power_diagram().measures)
        record = {
            "tool": "sdot",
            "version": version("sdot"),
            "n": n,
            "seconds": min(times),
            "all_seconds": times,
            "max_rel_err": float(np.max(np.abs(masses * n - 1.0))),
            "iterations": plan.stats["nb_iter"],
            "tol": args.tol,
            "diagrams": plan.stats["nb_diag"],
            "status": plan.stats["status"],
            "framework": framework_defaults.framework_name(),
            "first_call_seconds": first_call,
            "load": round(os.getloadavg()[0], 2),
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
