"""FFT-OT on a 256² and a 64³ grid: time to a relative residual of 1e-6, next to the
exact 2D semi-discrete solver on the same problem, and the error against a closed form.

Rows (each timed ``--repeat`` times in this process; the median and the range):

- ``newton``: :func:`aeot.ot.solve_fftot` default, Newton–GMRES preconditioned by the
  constant-coefficient cosine-transform solve;
- ``fixed-point``: the paper's iteration (the constant-coefficient solve alone);
- ``exact 2D semi-discrete``: :func:`aeot.ot.exact2d.solve_exact_2d` from the uniform
  square to the N = 256² Diracs at the grid's cell centres weighted by the target density
  (the same transport, discretised as cells instead of a PDE), to its own tolerance 1e-10
  on the cell masses, the ratio column against it.

Problems: a uniform source and a smooth target of contrast ≈ 9 (products of cosines and a
Gaussian bump), in 2D and 3D; and a separable pair (f₁(x) f₂(y) to g₁(x) g₂(y)) whose map
is the product of 1D quantile maps, at n = 32 … 512, for the error of the map against that
closed form (second order in h = 1/n).

Usage::

    python benchmarks/bench_fftot.py --threads 2 --repeat 3 --figure docs/results/fftot.png
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import numpy as np
import torch

from aeot.ot import BoxUniform, SemiDiscreteProblem, solve_fftot
from aeot.ot.exact2d import solve_exact_2d
from aeot.ot.fftot import cell_centres


def _grid(n: int, d: int) -> list[torch.Tensor]:
    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return list(torch.meshgrid(*([t] * d), indexing="ij"))


def smooth_target(n: int, d: int) -> torch.Tensor:
    """(1 + ½ cos πx₁)(1 + 0.3 cos 2πx₂)(…) + a Gaussian bump: contrast ≈ 9."""
    axes = _grid(n, d)
    out = torch.ones_like(axes[0])
    for i, (a, k) in enumerate(((0.5, 1), (0.3, 2), (0.4, 1))[:d]):
        out = out * (1 + a * torch.cos(k * math.pi * axes[i]))
    bump = sum((x - 0.35) ** 2 for x in axes)
    return out + 2.0 * torch.exp(-bump / 0.02)


def _timed(fn, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, times


def _fmt_times(times: list[float]) -> str:
    return f"{statistics.median(times):8.3f} s [{min(times):.3f}, {max(times):.3f}]"


def timing_table(repeat: int, tol: float) -> list[dict]:
    rows = []
    for n, d in ((256, 2), (64, 3)):
        target = smooth_target(n, d)
        source = torch.ones_like(target)
        baseline = None
        if d == 2:
            targets = cell_centres((n, n), target).reshape(-1, 2)
            problem = SemiDiscreteProblem(
                targets, (target / target.sum()).reshape(-1), source=BoxUniform(2, 0.0, 1.0)
            )
            exact, times = _timed(lambda p=problem: solve_exact_2d(p, tol=1e-10), repeat)
            baseline = statistics.median(times)
            rows.append(
                {
                    "grid": f"{n}^{d}",
                    "solver": "exact 2D semi-discrete",
                    "times": times,
                    "iterations": exact.n_iter,
                    "residual": f"{exact.error:.1e} (cell masses)",
                    "ratio": 1.0,
                }
            )
        for method in ("newton", "fixed-point"):
            result, times = _timed(
                lambda m=method, s=source, t=target: solve_fftot(
                    s, t, tol=tol, method=m, max_iter=5000
                ),
                repeat,
            )
            rows.append(
                {
                    "grid": f"{n}^{d}",
                    "solver": f"FFT-OT {method}",
                    "times": times,
                    "iterations": result.iterations,
                    "residual": f"{result.residual:.1e}"
                    + ("" if result.converged else " (not converged)"),
                    "ratio": baseline / statistics.median(times) if baseline else None,
                }
            )
    return rows


def accuracy_table(sizes=(32, 64, 128, 256, 512)) -> list[dict]:
    """Max error of the map against the product of 1D quantile maps."""
    fine = np.linspace(0.0, 1.0, 400_001)

    def cdf(a, k):
        return lambda s: s + a * np.sin(k * np.pi * s) / (k * np.pi)

    rows = []
    for n in sizes:
        t = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        f1, g1 = 1 + 0.5 * torch.cos(math.pi * t), 1 + 0.4 * torch.cos(2 * math.pi * t)
        f2, g2 = 1 - 0.3 * torch.cos(math.pi * t), 1 + 0.6 * torch.cos(math.pi * t)
        result = solve_fftot(f1[:, None] * f2[None], g1[:, None] * g2[None], tol=1e-10)
        exact_x = np.interp(cdf(0.5, 1)(t.numpy()), cdf(0.4, 2)(fine), fine)
        exact_y = np.interp(cdf(-0.3, 1)(t.numpy()), cdf(0.6, 1)(fine), fine)
        err = max(
            (result.transport_map[..., 0] - torch.from_numpy(exact_x)[:, None]).abs().max(),
            (result.transport_map[..., 1] - torch.from_numpy(exact_y)[None]).abs().max(),
        ).item()
        rows.append(
            {
                "n": n,
                "error": err,
                "mass_factor": result.mass_factor,
                "iterations": result.iterations,
                "seconds": result.seconds,
                "converged": result.converged,
            }
        )
    return rows


def figure(path: str, tol: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = 256
    target = smooth_target(n, 2)
    source = torch.ones_like(target)
    fig, axes = plt.subplots(1, 4, figsize=(18.5, 4.4))
    result = solve_fftot(source, target, tol=tol)
    # the push-forward of the uniform source: 10^6 uniform samples through the map
    samples = torch.rand(
        1_000_000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    mapped = result.transport(samples)
    bins = 64
    pushed = torch.histogramdd(mapped, bins=[bins, bins], range=[0.0, 1.0, 0.0, 1.0]).hist
    pushed = pushed / pushed.mean()
    shown = (target / target.mean()).T.numpy()
    vmax = float(max(shown.max(), pushed.max()))
    for ax, data, title in (
        (axes[0], shown, "target density g (source: uniform)"),
        (axes[1], pushed.T.numpy(), f"push-forward of 10⁶ uniform samples ({bins}² bins)"),
    ):
        image = ax.imshow(
            data, origin="lower", extent=(0, 1, 0, 1), cmap="magma", vmin=0, vmax=vmax
        )
        fig.colorbar(image, ax=ax, fraction=0.046)
        ax.set_title(title, fontsize=10)
        ax.set(xlabel="x₁", ylabel="x₂")
    axes = axes[1:]
    # the image of a 24 x 24 grid of lines under the map: dense where g is large
    lines = torch.linspace(0.0, 1.0, 25, dtype=torch.float64)
    fine = torch.linspace(0.0, 1.0, 200, dtype=torch.float64)
    for c in lines:
        for pts in (torch.stack([fine, c.expand(200)], 1), torch.stack([c.expand(200), fine], 1)):
            mapped = result.transport(pts).numpy()
            axes[1].plot(mapped[:, 0], mapped[:, 1], color="k", lw=0.5)
    axes[1].set_aspect("equal")
    axes[1].set(xlim=(0, 1), ylim=(0, 1), xlabel="x₁", ylabel="x₂")
    axes[1].set_title("T = ∇u of a 24 × 24 grid of lines")
    for method, style in (("newton", "o-"), ("fixed-point", "s-")):
        r = solve_fftot(source, target, tol=tol, method=method, max_iter=5000)
        axes[2].semilogy(range(len(r.residuals)), r.residuals, style, ms=3, label=method)
    axes[2].axhline(tol, color="gray", ls=":", label=f"tol {tol:g}")
    axes[2].set(xlabel="iteration", ylabel="relative residual")
    axes[2].set_title("residual, 256² grid")
    axes[2].legend()
    axes[2].grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--figure", default=None, help="write the figure here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    print(f"\nTime to a relative residual of {args.tol:g} (median of {args.repeat} [range])")
    print(f"{'grid':>6} | {'solver':<24} | {'time':>26} | {'its':>5} | {'residual':<22} | ratio")
    for row in timing_table(args.repeat, args.tol):
        ratio = f"{row['ratio']:.1f}x" if row["ratio"] else "-"
        print(
            f"{row['grid']:>6} | {row['solver']:<24} | {_fmt_times(row['times']):>26} | "
            f"{row['iterations']!s:>5} | {row['residual']:<22} | {ratio}"
        )
    print("\nSeparable closed form (product of 1D quantile maps), Newton to 1e-10")
    print(
        f"{'n':>5} | {'max map error':>13} | {'order':>5} | {'kappa - 1':>10} | its | seconds"
        " | converged"
    )
    previous = None
    for row in accuracy_table():
        order = f"{math.log2(previous / row['error']):.2f}" if previous else "-"
        previous = row["error"]
        print(
            f"{row['n']:>5} | {row['error']:13.3e} | {order:>5} | "
            f"{row['mass_factor'] - 1:10.2e} | {row['iterations']:3d} | {row['seconds']:7.3f} | "
            f"{row['converged']}"
        )
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    if args.figure:
        figure(args.figure, args.tol)


if __name__ == "__main__":
    main()
