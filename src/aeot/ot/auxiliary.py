"""Discrete OT plans from two semi-discrete solves against one auxiliary measure.

An, Lei & Gu, "Approximate Discrete Optimal Transport Plan with Auxiliary Measure
Method", ECCV 2022. For μ = Σ_i a_i δ_{x_i} and ν = Σ_j b_j δ_{y_j} in R^d and the cost
C_ij = |x_i − y_j|², the optimal plan is sparse (at most n + m − 1 non-zeros) and the
method finds where its mass sits before solving any linear program:

1. Take a continuous auxiliary measure ζ (by default uniform on a box around both point
   sets) and solve the two semi-discrete problems ζ → μ and ζ → ν
   (:func:`aeot.ot.solve`: exact power-diagram Newton in 2D, Monte-Carlo Newton in any
   dimension). They partition the support of ζ twice, into power cells
   W_i = {z : <z, x_i> + h_i ≥ <z, x_k> + h_k ∀k} with ζ(W_i) = a_i, and V_j likewise
   with ζ(V_j) = b_j.
2. π̂_ij = ζ(W_i ∩ V_j) is a coupling of μ and ν (the two maps glued through ζ; the
   paper bounds W₂ between it and the optimal plan). It is estimated from samples
   z ~ ζ, each counted for its pair (i(z), j(z)): the estimated sparsity pattern. Each
   sample also adds the pairs of its ``neighbours`` best cells in each diagram, so that
   thin overlaps that no sample hits are covered.
3. The linear program restricted to these pairs is solved exactly (POT's network simplex
   on a sparse cost, ``ot.emd``), with the pairs of a monotone plan along the principal
   axis added so that it is always feasible. Its cost is an upper bound on the OT cost.

Then the result is certified, and made exact where the estimate missed a pair (column
generation; this step is not in the paper): with the restricted duals (φ, ψ),
ψ^c_j = min_i C_ij − φ_i is one max-of-affine query per point,

    min_i |x_i − y_j|² − φ_i = |y_j|² − max_i (<y_j, 2 x_i> + φ_i − |x_i|²),

the same score kernel as the semi-discrete solver's, so checking every one of the n × m
pairs costs one pass and no n × m memory. (φ, ψ^c) is dual feasible, so
Σ a_i φ_i + Σ b_j ψ^c_j is a lower bound on the OT cost. Pairs with negative reduced
cost C_ij − φ_i − ψ_j (the best few per violating row and column) join the support and
the restricted program is solved again, until the relative gap between the two bounds
is at most ``tol`` or ``max_rounds`` runs out. ``max_rounds=0`` is the paper's method
alone, still with its certified gap.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

import ot
from aeot._validation import as_float_tensor, check_positive_int, check_seed
from aeot.ot.kernels import ScoreKernel
from aeot.ot.montecarlo import MonteCarloSettings
from aeot.ot.problem import SemiDiscreteProblem
from aeot.ot.result import SemiDiscreteResult
from aeot.ot.solvers import ExactNewton2D, MonteCarloNewton, solve
from aeot.ot.sources import BoxUniform, Source

__all__ = ["AuxiliaryPlanResult", "solve_discrete_auxiliary"]

_CHUNK = 1 << 16  # auxiliary samples classified per batch
# the Monte-Carlo solves only locate the cells (the certificate makes the plan exact):
# a loose L1 tolerance and few iterations (on 1,000 points in d = 16 the default
# settings took 150 s for the same final plan as these 1.1 s)
ROUGH_SETTINGS = MonteCarloSettings(tol=0.3, max_iter=5)


@dataclass
class AuxiliaryPlanResult:
    """The plan, its certified bounds and the history of :func:`solve_discrete_auxiliary`.

    Attributes
    ----------
    rows, cols : (k,) long tensors
        The plan's non-zero entries (i, j), on the points' device.
    mass : (k,) float64 tensor
        π_ij of those entries: row sums a, column sums b (up to float rounding).
    cost : float
        Σ π_ij |x_i − y_j|² of this feasible plan: an upper bound on the OT cost.
    dual : float
        Σ a_i φ_i + Σ b_j ψ^c_j for the c-transform of the last restricted duals: a lower
        bound on the OT cost.
    phi, psi : (n,), (m,) float64 tensors
        The dual potentials: φ from the last restricted program, ψ = its c-transform
        (feasible: φ_i + ψ_j ≤ C_ij for every pair).
    converged : bool
        Whether the gap met ``tol``.
    estimate_cost : float
        Cost of the auxiliary-measure estimate π̂ alone (the sample counts of the pairs
        (i(z), j(z)) over the number of samples, step 2 of the module docstring), before
        any linear program; its marginals are the measured cell masses, within
        ``estimate_marginal_error`` (L1, both sides summed) of a and b.
    estimate_marginal_error : float
    rounds : list of dict
        Per restricted program: round, support size, cost, dual, gap, pairs added.
    sources : tuple of SemiDiscreteResult
        The solves ζ → μ and ζ → ν.
    seconds : dict
        Wall time per phase: "semidiscrete", "support", "lp", "certificate", "total".
    """

    rows: torch.Tensor
    cols: torch.Tensor
    mass: torch.Tensor
    cost: float
    dual: float
    phi: torch.Tensor
    psi: torch.Tensor
    converged: bool
    estimate_cost: float
    estimate_marginal_error: float
    rounds: list[dict] = field(default_factory=list)
    sources: tuple[SemiDiscreteResult, SemiDiscreteResult] | None = field(default=None, repr=False)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def gap(self) -> float:
        """(cost − dual) / |cost|: the certified relative error of the plan's cost."""
        return (self.cost - self.dual) / max(abs(self.cost), 1e-300)

    @property
    def support_size(self) -> int:
        """Pairs in the last restricted program."""
        return int(self.rounds[-1]["support"]) if self.rounds else 0

    def plan(self) -> torch.Tensor:
        """The plan as a dense (n, m) float64 tensor (for small problems)."""
        n, m = self.phi.shape[0], self.psi.shape[0]
        dense = torch.zeros(n, m, dtype=torch.float64, device=self.mass.device)
        dense.index_put_((self.rows, self.cols), self.mass, accumulate=True)
        return dense


def _weights(value, n: int, name: str) -> torch.Tensor:
    if value is None:
        return torch.full((n,), 1.0 / n, dtype=torch.float64)
    w = as_float_tensor(value, name, ndim=1, dtype=torch.float64).cpu()
    if w.shape[0] != n:
        raise ValueError(f"{name} has {w.shape[0]} entries for {n} points")
    if bool((w <= 0).any()):
        raise ValueError(
            f"{name} must be positive ({int((w <= 0).sum())} entries are <= 0): drop the "
            "points without mass"
        )
    if abs(float(w.sum()) - 1.0) > 1e-6:
        raise ValueError(f"{name} must sum to 1, it sums to {float(w.sum()):.8g}")
    return w / w.sum()


def _default_auxiliary(x: torch.Tensor, y: torch.Tensor) -> BoxUniform:
    """Uniform on the bounding box of both point sets, widened by 1 % of its span."""
    both = torch.cat([x, y])
    low, high = both.min(0).values, both.max(0).values
    span = (high - low).max().clamp_min(1e-12)
    pad = torch.clamp(0.01 * (high - low), min=float(1e-3 * span))
    return BoxUniform(x.shape[1], (low - pad).tolist(), (high + pad).tolist())


def _semidiscrete(points, weights, name, source, method, exact, monte_carlo):
    try:
        problem = SemiDiscreteProblem(points, weights, source=source)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    monte_carlo = monte_carlo or MonteCarloNewton(ROUGH_SETTINGS)
    return solve(problem, method, exact=exact, monte_carlo=monte_carlo)


def _monotone_pairs(x, y, a, b) -> tuple[np.ndarray, np.ndarray]:
    """The n + m − 1 (at most) pairs of the monotone plan of the projections on the
    principal axis of both point sets: a feasible support (north-west corner rule)."""
    both = torch.cat([x, y])
    centred = both - both.mean(0)
    axis = torch.linalg.eigh(centred.T @ centred).eigenvectors[:, -1]
    order_x = torch.argsort(x @ axis).cpu().numpy()
    order_y = torch.argsort(y @ axis).cpu().numpy()
    cum_a = np.cumsum(a.numpy()[order_x])
    cum_b = np.cumsum(b.numpy()[order_y])
    cum_a[-1] = cum_b[-1] = 1.0
    breaks = np.union1d(cum_a, cum_b)
    mids = np.concatenate([[0.0], breaks[:-1]]) * 0.5 + breaks * 0.5
    keep = np.diff(np.concatenate([[0.0], breaks])) > 0
    mids = mids[keep]
    i = np.minimum(np.searchsorted(cum_a, mids), len(cum_a) - 1)
    j = np.minimum(np.searchsorted(cum_b, mids), len(cum_b) - 1)
    return order_x[i], order_y[j]


def _sampled_pairs(result_x, result_y, source, n_samples, neighbours, seed, device):
    """Pairs (i(z), j(z)) of the two partitions for samples z ~ ζ, with their counts, and
    the pairs of each sample's ``neighbours`` best cells in both diagrams.

    The cells are found in float32 (the fused score kernels): a sample within float32
    rounding of a facet may be counted in the neighbouring cell, which only moves a
    pair of the estimate by one facet; the certificate checks every pair in float64.
    """
    f32 = torch.float32
    (kx, hx), (ky, hy) = (
        (ScoreKernel(r.problem.targets.to(device=device, dtype=f32)), r.h.to(device, f32))
        for r in (result_x, result_y)
    )
    m = ky.n_targets
    k_x, k_y = min(neighbours, kx.n_targets), min(neighbours, m)
    first, widened = [], []
    for z in source.sample_chunks(n_samples, _CHUNK, seed=seed, dtype=f32, device=device):
        ci, cj = _best_cells(kx, hx, z, k_x), _best_cells(ky, hy, z, k_y)
        first.append(ci[:, 0] * m + cj[:, 0])
        if k_x * k_y > 1:
            widened.append((ci[:, :, None] * m + cj[:, None, :]).reshape(-1).unique())
    keys, counts = torch.cat(first).unique(return_counts=True)
    pairs = torch.cat([keys, *widened]).unique() if widened else keys
    return keys.cpu().numpy(), counts.cpu().numpy(), pairs.cpu().numpy()


def _costs(x: np.ndarray, y: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    out, step = np.empty(len(rows)), 1 << 20
    for s in range(0, len(rows), step):
        d = x[rows[s : s + step]] - y[cols[s : s + step]]
        out[s : s + step] = np.einsum("ij,ij->i", d, d)
    return out


def _c_transform(kernel: ScoreKernel, norms_sites: torch.Tensor, potential, queries):
    """min over sites s of |q − s|² − potential_s for each query q (module docstring):
    |q|² − max_s (<q, 2 s> + potential_s − |s|²)."""
    return queries.pow(2).sum(1) - kernel.argmax(queries, potential - norms_sites)[1]


def _best_cells(kernel: ScoreKernel, h: torch.Tensor, queries, k: int) -> torch.Tensor:
    """The k cells of largest <q, y_i> + h_i per query, best first: (M, k)."""
    k = min(k, kernel.n_targets)
    if k == 1:
        return kernel.argmax(queries, h)[0][:, None]
    return kernel.topk(queries, h, k)[1]


def solve_discrete_auxiliary(
    x,
    y,
    a=None,
    b=None,
    *,
    auxiliary: Source | None = None,
    method="auto",
    exact: ExactNewton2D | None = None,
    monte_carlo: MonteCarloNewton | None = None,
    n_samples: int | None = None,
    neighbours: int = 2,
    tol: float = 1e-9,
    max_rounds: int = 20,
    add_per_point: int = 4,
    seed: int = 0,
    max_iter: int | None = None,
) -> AuxiliaryPlanResult:
    """Discrete OT for the squared Euclidean cost by the auxiliary-measure method (module
    docstring), certified by a dual bound and completed by column generation.

    Parameters
    ----------
    x : (n, d) array
        Source points (distinct), any device; the work runs on that device in float64,
        the linear programs on the CPU.
    y : (m, d) array
        Target points (distinct).
    a, b : (n,), (m,) arrays, optional
        Positive masses summing to 1 (uniform by default).
    auxiliary : Source, optional
        The continuous measure ζ (dimension d). Default: uniform on the points' bounding
        box widened by 1 %.
    method, exact, monte_carlo
        How the two semi-discrete problems are solved (:func:`aeot.ot.solve`): "auto" is
        the exact 2D solver for a box in 2D, the Monte-Carlo one elsewhere, by default
        with rough settings (``ROUGH_SETTINGS``: L1 tolerance 0.3, 5 iterations): the
        cells only guide the support, and the certificate checks every pair.
    n_samples : int, optional
        Samples of ζ for the estimated support: 16 (n + m) by default.
    neighbours : int
        Best cells per diagram whose pairs each sample adds (1: only the pair of the
        two cells containing it, the estimate π̂'s support).
    tol : float
        Stop when (cost − dual) / cost ≤ ``tol``.
    max_rounds : int
        Column-generation rounds after the first restricted program (0: none).
    add_per_point : int
        Pairs of smallest reduced cost added per violating row and column per round.
    seed : int
        Seed of the samples.
    max_iter : int, optional
        Network-simplex iterations per program (default 100 × the support size, at
        least 10^6); a program that runs out raises RuntimeError.

    Returns
    -------
    AuxiliaryPlanResult
    """
    t0 = time.perf_counter()
    xt = as_float_tensor(x, "x", dtype=torch.float64)
    yt = as_float_tensor(y, "y", dtype=torch.float64, device=xt.device)
    if xt.ndim != 2 or yt.ndim != 2 or min(xt.shape[0], yt.shape[0]) < 1:
        raise ValueError(
            f"x and y must have shape (n, d) and (m, d) with n, m >= 1, got "
            f"{tuple(xt.shape)} and {tuple(yt.shape)}"
        )
    if xt.shape[1] != yt.shape[1]:
        raise ValueError(f"x has dimension {xt.shape[1]} but y has dimension {yt.shape[1]}")
    n, m = xt.shape[0], yt.shape[0]
    a_w, b_w = _weights(a, n, "a"), _weights(b, m, "b")
    neighbours = check_positive_int(neighbours, "neighbours")
    add_per_point = check_positive_int(add_per_point, "add_per_point")
    seed = check_seed(seed)
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 0:
        raise ValueError(f"max_rounds must be an integer >= 0, got {max_rounds!r}")
    if not (isinstance(tol, float | int) and tol > 0):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    n_samples = check_positive_int(n_samples or 16 * (n + m), "n_samples")
    if auxiliary is None:
        auxiliary = _default_auxiliary(xt, yt)
    elif not isinstance(auxiliary, Source):
        raise TypeError(f"auxiliary must be an aeot.ot Source, got {type(auxiliary).__name__}")
    elif auxiliary.dim != xt.shape[1]:
        raise ValueError(
            f"auxiliary has dimension {auxiliary.dim} but the points have dimension {xt.shape[1]}"
        )
    seconds: dict[str, float] = {}

    # 1. the two semi-discrete solves against ζ
    t = time.perf_counter()
    solves = [
        _semidiscrete(p, w, name, auxiliary, method, exact, monte_carlo)
        for p, w, name in ((xt, a_w, "x"), (yt, b_w, "y"))
    ]
    seconds["semidiscrete"] = time.perf_counter() - t

    # 2. the estimated support: sampled pairs, their neighbours, a feasible monotone plan
    t = time.perf_counter()
    keys, counts, pairs = _sampled_pairs(*solves, auxiliary, n_samples, neighbours, seed, xt.device)
    xs, ys = xt.cpu().numpy(), yt.cpu().numpy()
    est_rows, est_cols = keys // m, keys % m
    est_mass = counts / counts.sum()
    estimate_cost = float(est_mass @ _costs(xs, ys, est_rows, est_cols))
    estimate_error = float(
        np.abs(np.bincount(est_rows, est_mass, n) - a_w.numpy()).sum()
        + np.abs(np.bincount(est_cols, est_mass, m) - b_w.numpy()).sum()
    )
    mono_i, mono_j = _monotone_pairs(xt, yt, a_w, b_w)
    support = np.union1d(pairs, mono_i.astype(np.int64) * m + mono_j)
    seconds["support"] = time.perf_counter() - t

    # 3. restricted programs, certified and completed by column generation
    kernel_x, kernel_y = ScoreKernel(2 * xt), ScoreKernel(2 * yt)
    norm_x, norm_y = xt.pow(2).sum(1), yt.pow(2).sum(1)
    a_np, b_np = a_w.numpy(), b_w.numpy()
    rounds: list[dict] = []
    seconds["lp"] = seconds["certificate"] = 0.0
    converged = False
    for round_ in range(max_rounds + 1):
        t = time.perf_counter()
        rows, cols = support // m, support % m
        costs = _costs(xs, ys, rows, cols)
        limit = max_iter or max(10**6, 100 * len(support))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plan, log = ot.emd(
                a_np,
                b_np,
                sp.coo_array((costs, (rows, cols)), shape=(n, m)),
                numItermax=limit,
                log=True,
            )
        if log["result_code"] != 1:
            raise RuntimeError(
                f"the restricted program (support {len(support)}) did not reach its optimum "
                f"in {limit} network-simplex iterations ({log['warning']}): raise max_iter"
            )
        plan = sp.coo_array(plan)
        cost = float(log["cost"])
        seconds["lp"] += time.perf_counter() - t

        t = time.perf_counter()
        phi = torch.as_tensor(log["u"], dtype=torch.float64, device=xt.device)
        psi_lp = torch.as_tensor(log["v"], dtype=torch.float64, device=xt.device)
        psi = _c_transform(kernel_x, norm_x, phi, yt)  # per column
        dual = float(a_w.to(phi.device) @ phi + b_w.to(psi.device) @ psi)
        gap = (cost - dual) / max(abs(cost), 1e-300)
        added = 0
        if gap > tol and round_ < max_rounds:
            phi_c = _c_transform(kernel_y, norm_y, psi_lp, xt)  # per row
            margin = 1e-12 * max(abs(cost), 1e-300)
            jj = torch.nonzero(psi < psi_lp - margin).flatten()
            ii = torch.nonzero(phi_c < phi - margin).flatten()
            # the sites of smallest reduced cost: largest <q, 2 s> + potential_s − |s|²
            best_i = _best_cells(kernel_x, phi - norm_x, yt[jj], add_per_point)
            best_j = _best_cells(kernel_y, psi_lp - norm_y, xt[ii], add_per_point)
            cols_new = jj[:, None].expand_as(best_i)
            rows_new = ii[:, None].expand_as(best_j)
            new = (
                torch.cat(
                    [
                        (best_i * m + cols_new)[best_i >= 0],
                        (rows_new * m + best_j)[best_j >= 0],
                    ]
                )
                .cpu()
                .numpy()
            )
            grown = np.union1d(support, new)
            added = len(grown) - len(support)
            support = grown
        seconds["certificate"] += time.perf_counter() - t
        rounds.append(
            {
                "round": round_,
                "support": len(rows),
                "cost": cost,
                "dual": dual,
                "gap": gap,
                "added": added,
            }
        )
        if gap <= tol:
            converged = True
            break
        if added == 0:
            break
    seconds["total"] = time.perf_counter() - t0
    device = xt.device
    return AuxiliaryPlanResult(
        rows=torch.as_tensor(plan.row.astype(np.int64), device=device),
        cols=torch.as_tensor(plan.col.astype(np.int64), device=device),
        mass=torch.as_tensor(plan.data, dtype=torch.float64, device=device),
        cost=cost,
        dual=dual,
        phi=phi,
        psi=psi,
        converged=converged,
        estimate_cost=estimate_cost,
        estimate_marginal_error=estimate_error,
        rounds=rounds,
        sources=(solves[0], solves[1]),
        seconds=seconds,
    )
