"""Discrete OT, Wasserstein distances, c-transforms and semi-discrete duality."""

import numpy as np
import pytest
import torch

from aeot.ot import (
    SemiDiscreteProblem,
    c_transform,
    discrete_ot,
    dual_objective,
    semidiscrete_dual,
    solve_semidiscrete,
    wasserstein_distance,
)


def test_one_dimensional_w2_is_sorted_matching():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(2, 1, size=50)
    expected = np.sqrt(np.mean((np.sort(x) - np.sort(y)) ** 2))
    assert wasserstein_distance(x, y) == pytest.approx(expected, rel=1e-10)


def test_translation_w2_equals_shift():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3))
    shift = np.array([1.0, -2.0, 0.5])
    assert wasserstein_distance(x, x + shift) == pytest.approx(np.linalg.norm(shift), rel=1e-10)


def test_plan_marginals_and_w1():
    x = np.array([[0.0], [1.0]])
    y = np.array([[0.0], [3.0], [4.0]])
    a, b = np.array([0.5, 0.5]), np.array([0.5, 0.25, 0.25])
    plan, cost = discrete_ot(x, y, a, b, p=1)
    np.testing.assert_allclose(plan.sum(1), a)
    np.testing.assert_allclose(plan.sum(0), b)
    assert cost == pytest.approx(0.25 * 2 + 0.25 * 3)


def test_c_transform_gives_feasible_dual_with_zero_gap_at_optimum():
    """For the optimal potentials the dual objective equals the primal cost."""
    import ot

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(20, 2))
    a, b = np.full(30, 1 / 30), np.full(20, 1 / 20)
    cost = ot.dist(x, y)
    _, log = ot.emd(a, b, cost, log=True)
    phi = log["u"]
    psi = c_transform(phi, x, y)
    assert np.all(phi[:, None] + psi[None, :] <= cost + 1e-9)
    assert dual_objective(phi, psi, a, b) == pytest.approx(discrete_ot(x, y, a, b)[1], rel=1e-8)
    # any potential becomes feasible, and its dual value is a lower bound
    phi_random = rng.normal(size=30)
    psi_random = c_transform(phi_random, x, y)
    assert dual_objective(phi_random, psi_random, a, b) <= discrete_ot(x, y, a, b)[1] + 1e-12


def test_semidiscrete_dual_matches_fine_discrete_ot():
    """W₂²/2 from the Brenier potential equals the cost of the map and of a fine discrete OT."""
    torch.manual_seed(0)
    y = torch.rand(8, 2, dtype=torch.float64)
    problem = SemiDiscreteProblem(y)
    result = solve_semidiscrete(problem, tol=5e-3, seed=0, dtype=torch.float64)
    x = problem.source.sample(2**16, seed=5, qmc=True, dtype=torch.float64)
    values = semidiscrete_dual(result, x)
    assert abs(values["gap"]) < 2e-3
    # discrete OT between 2000 source samples and the weighted targets
    xs = problem.source.sample(2000, seed=9, qmc=True, dtype=torch.float64).numpy()
    _, cost = discrete_ot(xs, y.numpy(), None, problem.weights.numpy())
    assert 0.5 * cost == pytest.approx(values["dual"], rel=0.03)


def test_bad_discrete_input():
    with pytest.raises(ValueError, match="dimension"):
        discrete_ot(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="sum to 1"):
        discrete_ot(np.zeros((2, 1)), np.ones((2, 1)), a=[0.5, 0.6])
    with pytest.raises(ValueError, match="NaN"):
        wasserstein_distance([[np.nan]], [[0.0]])
    with pytest.raises(ValueError, match="phi has 2 entries"):
        c_transform([0.0, 1.0], np.zeros((3, 1)), np.zeros((2, 1)))
