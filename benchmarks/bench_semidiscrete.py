"""Semi-discrete OT: aeot against POT, kernel throughput, and the exact 2D solver.

Prints one table; every ratio compares two runs made in this process.

1. N = 1000 targets ~ U[0,1]^8, uniform source on [0,1]^8. Time for aeot's
   Monte-Carlo Newton solver to reach an L1 cell-mass error ≤ 0.02, measured on
   2^22 fresh i.i.d. samples (noise floor ≈ 0.012), against POT's
   ``ot.semidiscrete.solve_semidiscrete`` (torch backend, batch 256, 10k iterations).
2. N = 10,000 targets in d = 64: samples/s of the assignment loop (GEMM + row
   argmax) as a fraction of a bare ``torch.addmm`` of the same shapes.
3. The empty-cell lift of the Newton solver (2^18 samples, 2048 empty cells, d = 32):
   the fused C kernel against the blocked torch path, same process.
4. The exact 2D damped-Newton solver, N = 10^4 and 10^5 uniform random targets,
   time to a relative cell-mass error of 1e-10.

Usage: python benchmarks/bench_semidiscrete.py [--quick] [--skip-pot]
"""

from __future__ import annotations

import argparse
import time

import torch

from aeot.ot import SemiDiscreteProblem, solve_semidiscrete
from aeot.ot.kernels import ScoreKernel


def fresh_l1(problem: SemiDiscreteProblem, h: torch.Tensor, n: int = 2**22) -> float:
    from aeot.ot import estimate_masses

    masses = estimate_masses(problem, h, n, seed=2024, qmc=False)
    return float((masses - problem.weights).abs().sum())


def bench_solvers(skip_pot: bool, pot_iters: int) -> list[tuple]:
    torch.manual_seed(0)
    y = torch.rand(1000, 8)
    problem = SemiDiscreteProblem(y)
    rows = []
    start = time.perf_counter()
    result = solve_semidiscrete(problem, method="newton", tol=0.015, seed=0)
    t_aeot = time.perf_counter() - start
    err_aeot = fresh_l1(problem, result.h)
    rows.append(
        (
            "N=1000 d=8",
            "aeot newton (tol 0.015 on QMC)",
            f"{t_aeot:.2f} s",
            f"L1 {err_aeot:.4f}",
            f"{result.n_iter} it, {result.n_samples / 1e6:.1f}M samples",
        )
    )
    if skip_pot:
        return rows
    from ot.semidiscrete import solve_semidiscrete as pot_solve

    start = time.perf_counter()
    g = pot_solve(y.double(), "unif", max_iter=pot_iters, batch_size=256)
    t_pot = time.perf_counter() - start
    # POT maximises g_j − |x − y_j|²: the same cells as <x, y_j> + (g_j − |y_j|²)/2
    h_pot = 0.5 * (g.float() - (y * y).sum(1))
    err_pot = fresh_l1(problem, h_pot)
    rows.append(
        (
            "N=1000 d=8",
            f"POT solve_semidiscrete (256 x {pot_iters})",
            f"{t_pot:.2f} s",
            f"L1 {err_pot:.4f}",
            f"aeot is {t_pot / t_aeot:.1f}x faster",
        )
    )
    return rows


def bench_kernel(n_targets: int = 10_000, dim: int = 64, n_samples: int = 2**17) -> list[tuple]:
    torch.manual_seed(0)
    y, h, x = torch.randn(n_targets, dim), torch.randn(n_targets), torch.rand(n_samples, dim)
    kernel = ScoreKernel(y)
    cells = torch.empty(n_samples, dtype=torch.long)
    values = torch.empty(n_samples)
    y_t = y.t().contiguous()

    def bare(chunk: int):
        out = torch.empty(chunk, n_targets)
        for start in range(0, n_samples, chunk):
            torch.addmm(h, x[start : start + chunk], y_t, out=out)

    def timed(fn, repeat=3):
        fn()
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return best

    t_bare = min(timed(lambda c=c: bare(c)) for c in (kernel.chunk, 1024, 4096))
    t_kernel = timed(lambda: kernel.argmax(x, h, cells, values))
    flops = 2 * n_samples * n_targets * dim
    path = "fused" if kernel.fused else f"chunk {kernel.chunk}"
    return [
        (
            f"N={n_targets} d={dim}",
            "bare torch.addmm (best chunk)",
            f"{n_samples / t_bare / 1e6:.2f} M/s",
            f"{flops / t_bare / 1e9:.0f} GF/s",
            "",
        ),
        (
            f"N={n_targets} d={dim}",
            f"aeot assign ({path}, native={kernel.native})",
            f"{n_samples / t_kernel / 1e6:.2f} M/s",
            f"{flops / t_kernel / 1e9:.0f} GF/s",
            f"{t_bare / t_kernel:.2f} of bare addmm",
        ),
    ]


def bench_lift(n_cells: int = 2048, dim: int = 32, n_samples: int = 2**18) -> list[tuple]:
    """The empty-cell lift of the Newton solver: fused C kernel against its torch path."""
    from aeot.ot import _native
    from aeot.ot.montecarlo import lift_empty_cells

    torch.manual_seed(0)
    x = torch.rand(n_samples, dim) * 2 - 1
    y = torch.randn(n_cells, dim)
    best = (x @ y.t()).amax(1) + 1.0
    empty = torch.ones(n_cells, dtype=torch.bool)
    flops = 2 * n_samples * n_cells * dim
    fused = _native.fused_available()

    def timed(use_fused: bool) -> tuple[float, torch.Tensor]:
        h = torch.zeros(n_cells)
        original = _native.fused_available
        _native.fused_available = lambda: use_fused and original()
        try:
            t0 = time.perf_counter()
            lift_empty_cells(h, empty, x, y, best)
            return time.perf_counter() - t0, h
        finally:
            _native.fused_available = original

    t_torch, h_torch = timed(False)
    t_fused, h_fused = timed(True)
    gap = float((h_fused - h_torch).abs().max())
    problem = f"lift M={n_samples} k={n_cells}"
    return [
        (problem, "torch (GEMM + amin, blocked)", f"{t_torch:.2f} s", "", ""),
        (
            problem,
            f"aeot fused lift (fused={fused})",
            f"{t_fused:.2f} s",
            f"max |Δh| {gap:.0e}",
            f"{t_torch / t_fused:.1f}x torch, {flops / t_fused / 1e9:.0f} GF/s",
        ),
    ]


def bench_exact2d(sizes: list[int]) -> list[tuple]:
    try:
        from aeot.ot.exact2d import solve_exact_2d
    except ImportError:
        return [("2D exact", "not available", "", "", "")]
    rows = []
    for n in sizes:
        torch.manual_seed(0)
        problem = SemiDiscreteProblem(torch.rand(n, 2, dtype=torch.float64))
        start = time.perf_counter()
        result = solve_exact_2d(problem, tol=1e-10)
        elapsed = time.perf_counter() - start
        rel = float(((result.cell_masses - problem.weights).abs() / problem.weights).max())
        rows.append(
            (
                f"2D N={n}",
                "aeot exact Newton",
                f"{elapsed:.2f} s",
                f"rel {rel:.1e}",
                f"{result.n_iter} Newton steps",
            )
        )
    return rows


_WIDTHS = (14, 44, 14, 13, 30)


def _print_row(row: tuple) -> None:
    print("  ".join(str(c).ljust(w) for c, w in zip(row, _WIDTHS, strict=True)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (for a smoke test)")
    parser.add_argument("--skip-pot", action="store_true", help="do not run the POT baseline")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    _print_row(("problem", "solver", "time / speed", "accuracy", "notes"))
    _print_row(tuple("-" * w for w in _WIDTHS))
    for row in bench_kernel(n_samples=2**14 if args.quick else 2**17):
        _print_row(row)
    for row in bench_lift(n_samples=2**14 if args.quick else 2**18):
        _print_row(row)
    for row in bench_exact2d([1000] if args.quick else [10_000, 100_000]):
        _print_row(row)
    for row in bench_solvers(args.skip_pot, 1000 if args.quick else 10_000):
        _print_row(row)


if __name__ == "__main__":
    main()
