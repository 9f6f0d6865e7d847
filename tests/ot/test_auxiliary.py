"""The auxiliary-measure plan (aeot.ot.auxiliary) against POT's exact network simplex,
a closed form on the line, and the definitions of its bounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ot
from aeot.ot import (
    BoxUniform,
    MonteCarloNewton,
    MonteCarloSettings,
    solve_discrete_auxiliary,
)

FAST_MC = MonteCarloNewton(MonteCarloSettings(tol=0.05, max_iter=20))


def _points(n, m, d, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, dtype=torch.float64, generator=g)
    y = torch.rand(m, d, dtype=torch.float64, generator=g) ** 2 * 0.8 + 0.3
    a = torch.rand(n, dtype=torch.float64, generator=g) + 0.2
    b = torch.rand(m, dtype=torch.float64, generator=g) + 0.2
    return x, y, a / a.sum(), b / b.sum()


def _emd(x, y, a, b) -> float:
    cost = ot.dist(x.numpy(), y.numpy())
    return float(ot.emd2(a.numpy(), b.numpy(), cost, numItermax=10**8))


def _check_plan(result, x, y, a, b):
    """Marginals a and b, and the reported cost is Σ π_ij |x_i − y_j|² of the entries."""
    plan = result.plan().cpu()
    torch.testing.assert_close(plan.sum(1), a, rtol=0, atol=1e-12)
    torch.testing.assert_close(plan.sum(0), b, rtol=0, atol=1e-12)
    assert float(result.mass.min()) >= 0
    rows, cols = result.rows.cpu(), result.cols.cpu()
    recomputed = float((result.mass.cpu() * (x[rows] - y[cols]).pow(2).sum(1)).sum())
    assert recomputed == pytest.approx(result.cost, rel=1e-12)


def test_exact_2d_matches_pot_with_unequal_weights(device):
    x, y, a, b = _points(400, 300, 2, seed=0)
    result = solve_discrete_auxiliary(x.to(device), y.to(device), a, b, seed=1)
    exact = _emd(x, y, a, b)
    assert result.sources[0].method == "newton-exact-2d"
    assert result.converged and result.gap <= 1e-9
    assert result.cost == pytest.approx(exact, rel=1e-12)
    assert result.dual <= exact * (1 + 1e-12)
    assert result.rows.device.type == torch.device(device).type
    _check_plan(result, x, y, a, b)


def test_monte_carlo_in_3d_matches_pot():
    x, y, a, b = _points(150, 200, 3, seed=2)
    result = solve_discrete_auxiliary(x, y, a, b, monte_carlo=FAST_MC)
    assert result.sources[1].method == "monte-carlo-newton"
    assert result.converged
    assert result.cost == pytest.approx(_emd(x, y, a, b), rel=1e-12)
    _check_plan(result, x, y, a, b)


def test_line_pairs_sorted_points():
    """In 1-D with equal uniform weights the optimal plan pairs the k-th smallest x with
    the k-th smallest y."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(60, 1, dtype=torch.float64, generator=g)
    y = torch.randn(60, 1, dtype=torch.float64, generator=g) * 2 + 1
    result = solve_discrete_auxiliary(x, y, monte_carlo=FAST_MC)
    pairs = dict(zip(result.rows.tolist(), result.cols.tolist(), strict=True))
    rank_x, rank_y = x[:, 0].argsort(), y[:, 0].argsort()
    assert all(pairs[int(i)] == int(j) for i, j in zip(rank_x, rank_y, strict=True))
    expected = float((x[rank_x] - y[rank_y]).pow(2).mean())
    assert result.cost == pytest.approx(expected, rel=1e-12)


def test_paper_method_alone_is_bracketed_and_its_duals_feasible():
    """max_rounds=0: the restricted program on the estimated support only. Its cost is an
    upper bound, its certified dual a lower bound, and (φ, ψ) satisfies φ_i + ψ_j ≤ C_ij
    for every pair."""
    x, y, a, b = _points(300, 300, 2, seed=5)
    result = solve_discrete_auxiliary(x, y, a, b, neighbours=1, max_rounds=0, n_samples=2000)
    exact = _emd(x, y, a, b)
    assert result.dual <= exact * (1 + 1e-12) and result.cost >= exact * (1 - 1e-12)
    assert len(result.rounds) == 1
    cost = torch.cdist(x, y).pow(2)
    slack = cost - result.phi[:, None] - result.psi[None, :]
    assert float(slack.min()) >= -1e-12
    # the gap is exactly what the bounds say
    assert result.gap == pytest.approx((result.cost - result.dual) / result.cost)
    # the estimate from the auxiliary measure alone is a rough coupling of μ and ν
    assert result.estimate_cost == pytest.approx(exact, rel=0.1)


def test_column_generation_completes_a_poor_estimate():
    """Few samples and one cell per diagram miss pairs of the optimal plan: the rounds
    add them until the certificate closes."""
    x, y, a, b = _points(300, 300, 2, seed=6)
    result = solve_discrete_auxiliary(x, y, a, b, neighbours=1, n_samples=300)
    assert len(result.rounds) > 1 and result.rounds[0]["gap"] > 1e-9
    assert result.converged
    assert result.cost == pytest.approx(_emd(x, y, a, b), rel=1e-12)


def test_given_auxiliary_measure():
    x, y, a, b = _points(200, 200, 2, seed=7)
    box = BoxUniform(2, -1.0, 2.0)
    result = solve_discrete_auxiliary(x, y, a, b, auxiliary=box)
    assert result.sources[0].problem.source is box
    assert result.cost == pytest.approx(_emd(x, y, a, b), rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"y": np.zeros((5, 3))}, "dimension"),
        ({"a": np.full(10, 0.2)}, "a must sum to 1"),
        ({"b": np.r_[-0.1, np.full(9, 1.1 / 9)]}, "b must be positive"),
        ({"x": np.zeros((10, 2))}, "^x: "),
        ({"auxiliary": BoxUniform(3)}, "auxiliary has dimension 3"),
        ({"auxiliary": "box"}, "auxiliary must be an aeot.ot Source"),
        ({"neighbours": 0}, "neighbours"),
        ({"max_rounds": -1}, "max_rounds"),
        ({"tol": 0.0}, "tol"),
        ({"x": np.full((10, 2), np.nan)}, "x"),
    ],
)
def test_bad_input_is_named(kwargs, message):
    g = np.random.default_rng(0)
    args = {"x": g.random((10, 2)), "y": g.random((10, 2))}
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=message):
        solve_discrete_auxiliary(**args)
