"""Discrete (Kantorovich) OT and potentials: plans, Wasserstein distances, c-transforms.

These let a user check any potential: for a cost c, the Kantorovich dual

    max_{φ, ψ : φ(x) + ψ(y) ≤ c(x, y)}  Σ_i φ(x_i) a_i + Σ_j ψ(y_j) b_j

equals the optimal transport cost, and the c-transform φ^c(y) = min_x c(x, y) − φ(x)
makes any φ feasible. Exact linear programs are solved by POT's network simplex
(Bonneel et al. 2011).
"""

from __future__ import annotations

import numpy as np
import torch

import ot
from aeot._validation import as_float_tensor
from aeot.ot.result import SemiDiscreteResult


def _points(value, name: str) -> np.ndarray:
    array = as_float_tensor(value, name, dtype=torch.float64).cpu().numpy()
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d), got {array.shape}")
    return array


def _masses(value, n: int, name: str) -> np.ndarray:
    if value is None:
        return np.full(n, 1.0 / n)
    array = as_float_tensor(value, name, ndim=1, dtype=torch.float64).cpu().numpy()
    if array.shape[0] != n:
        raise ValueError(f"{name} has {array.shape[0]} entries for {n} points")
    if (array < 0).any():
        raise ValueError(f"{name} must be non-negative")
    if abs(array.sum() - 1.0) > 1e-6:
        raise ValueError(f"{name} must sum to 1, it sums to {array.sum():.8g}")
    return array


def cost_matrix(x, y, p: float = 2.0) -> np.ndarray:
    """C_ij = |x_i − y_j|^p: (n, d), (m, d) -> (n, m), float64."""
    xs, ys = _points(x, "x"), _points(y, "y")
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x has dimension {xs.shape[1]} but y has dimension {ys.shape[1]}")
    if p == 2:
        return ot.dist(xs, ys, metric="sqeuclidean")
    return ot.dist(xs, ys, metric="euclidean") ** p


def discrete_ot(x, y, a=None, b=None, *, p: float = 2.0, max_iter: int = 1_000_000):
    """Exact optimal plan between Σ a_i δ_{x_i} and Σ b_j δ_{y_j} for c = |x − y|^p.

    Returns
    -------
    plan : (n, m) ndarray
        The optimal coupling (marginals a and b).
    cost : float
        Σ_ij plan_ij c_ij, i.e. W_p^p.
    """
    cost = cost_matrix(x, y, p)
    a = _masses(a, cost.shape[0], "a")
    b = _masses(b, cost.shape[1], "b")
    plan, log = ot.emd(a, b, cost, numItermax=max_iter, log=True)
    if log.get("warning"):
        raise RuntimeError(f"network simplex did not converge: {log['warning']}")
    return plan, float((plan * cost).sum())


def wasserstein_distance(x, y, a=None, b=None, *, p: float = 2.0) -> float:
    """W_p between two discrete measures (exact, via the network simplex)."""
    if p < 1:
        raise ValueError(f"p must be >= 1, got {p}")
    return discrete_ot(x, y, a, b, p=p)[1] ** (1.0 / p)


def c_transform(phi, x, y, *, p: float = 2.0) -> np.ndarray:
    """φ^c(y_j) = min_i c(x_i, y_j) − φ_i for c = |x − y|^p: (n,) -> (m,)."""
    cost = cost_matrix(x, y, p)
    phi = as_float_tensor(phi, "phi", ndim=1, dtype=torch.float64).cpu().numpy()
    if phi.shape[0] != cost.shape[0]:
        raise ValueError(f"phi has {phi.shape[0]} entries for {cost.shape[0]} points x")
    return (cost - phi[:, None]).min(axis=0)


def dual_objective(phi, psi, a=None, b=None) -> float:
    """Σ_i φ_i a_i + Σ_j ψ_j b_j (a lower bound on the OT cost when φ ⊕ ψ ≤ c)."""
    phi = as_float_tensor(phi, "phi", ndim=1, dtype=torch.float64).cpu().numpy()
    psi = as_float_tensor(psi, "psi", ndim=1, dtype=torch.float64).cpu().numpy()
    a = _masses(a, phi.shape[0], "a")
    b = _masses(b, psi.shape[0], "b")
    return float(phi @ a + psi @ b)


def semidiscrete_dual(result: SemiDiscreteResult, x) -> dict[str, float]:
    """Primal and dual values of a semi-discrete solution for c(x, y) = ½|x − y|², on samples x.

    With u_h(x) = max_i <x, y_i> + h_i, the Kantorovich potentials are
    φ(x) = ½|x|² − u_h(x) and ψ_i = ½|y_i|² + h_i, which satisfy φ(x) + ψ_i ≤ c(x, y_i)
    with equality on W_i. So dual = ½∫|x|² dμ + ½Σ|y_i|² ν_i − E(h), and the primal
    ∫ ½|x − T(x)|² dμ for T = ∇u_h equals it when h is optimal.

    Returns a dict with ``primal``, ``dual`` and ``gap`` = primal − dual =
    Σ_i (μ̂(W_i) − ν_i) ψ_i, estimated on the points ``x`` (M, d); the gap vanishes
    exactly when the cell masses match ν.
    """
    y = result.targets.double()
    xs = as_float_tensor(x, "x", ndim=2, dtype=torch.float64, device=y.device)
    h = result.h.to(y.device)
    cells = result.assign(xs.to(result.targets.dtype))
    u = (xs * y[cells]).sum(1) + h[cells]
    phi = 0.5 * (xs * xs).sum(1) - u
    psi = 0.5 * (y * y).sum(1) + h
    dual = float(phi.mean() + (psi * result.weights.to(y.device)).sum())
    primal = float(0.5 * ((xs - y[cells]) ** 2).sum(1).mean())
    return {"primal": primal, "dual": dual, "gap": primal - dual}
