"""The OT known-answer catalogue, replayed against every semi-discrete solver (through
``aeot.ot.solve``) and on every device (the ``device`` fixture: CPU, and CUDA where
present; ``pytest -m cuda`` runs the CUDA instances alone).

Each case has a closed-form answer:

* 1-D quantiles: the cell of the i-th smallest target is [Σ_{k<i} ν_k, Σ_{k≤i} ν_k] of
  the unit interval, and the heights step by h_{i+1} − h_i = −t_i (y_{i+1} − y_i);
* Voronoi grid: the centres of a k×k grid of the unit square with equal weights own
  their grid cells, at h_i = −|y_i|²/2 + const;
* collinear strips: targets on a horizontal line get vertical strips whose widths are
  their weights, whatever their positions on the line;
* a convex-gradient target: y_i = A c_i + b (A symmetric positive definite) with the
  weights of the grid cells around c_i: x ↦ A x + b is the gradient of a convex function,
  so the map sends each cell centre c_i to y_i.

A solver that cannot take a case (the exact one is 2D only) is skipped with its own
reason (``why_not``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from aeot.ot import (
    ExactNewton2D,
    MonteCarloNewton,
    MonteCarloSettings,
    SemiDiscreteProblem,
    SemiDiscreteResult,
    solve,
)


@dataclass(frozen=True)
class Case:
    name: str
    problem: Callable[[], SemiDiscreteProblem]
    # check(result, device, slack): slack is the solver's accuracy (relative mass error)
    check: Callable[[SemiDiscreteResult, str, float], None]
    h0: np.ndarray | None = None  # a start away from the answer, where the default is it


def _uniform_points(n: int, dim: int, seed: int) -> torch.Tensor:
    return torch.rand(n, dim, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ 1-D quantiles
_T = np.sort(np.random.default_rng(0).uniform(0, 1, 6))
_NU = np.random.default_rng(1).uniform(0.5, 1.5, 6)
_NU /= _NU.sum()


def _quantile_check(result, device, slack):
    x = torch.linspace(0, 1, 20001, dtype=torch.float64)[:, None]
    cells = result.assign(x.to(device)).cpu().numpy()
    assert (np.diff(cells) >= 0).all() and list(np.unique(cells)) == list(range(6))
    boundaries = x[1:, 0].numpy()[np.diff(cells) > 0]
    np.testing.assert_allclose(boundaries, np.cumsum(_NU)[:-1], atol=slack + 1e-4)
    dh = np.diff(result.h.numpy())
    np.testing.assert_allclose(
        dh, -np.cumsum(_NU)[:-1] * np.diff(_T), atol=slack * np.diff(_T).max() + 1e-4
    )


# ------------------------------------------------------------------- Voronoi grid
_K = 5
_CENTRES = np.stack(np.meshgrid(*[(np.arange(_K) + 0.5) / _K] * 2), -1).reshape(-1, 2)


def _voronoi_check(result, device, slack):
    shifted = result.h.numpy() + 0.5 * (_CENTRES**2).sum(1)
    assert np.ptp(shifted) < slack
    x = _uniform_points(2**16, 2, 5).double()
    cells = result.assign(x.to(device)).cpu().numpy()
    expected = np.floor(x[:, 1].numpy() * _K) * _K + np.floor(x[:, 0].numpy() * _K)
    assert (cells == expected).mean() > 1 - 20 * slack


# --------------------------------------------------------------- collinear strips
_STRIP_T = np.array([0.05, 0.2, 0.5, 0.6, 0.95])
_STRIP_NU = np.array([0.3, 0.1, 0.25, 0.15, 0.2])


def _strips_check(result, device, slack):
    x = _uniform_points(2**16, 2, 5)
    cells = result.assign(x.to(device)).cpu().numpy()
    expected = np.searchsorted(np.cumsum(_STRIP_NU)[:-1], x[:, 0].numpy())
    assert (cells == expected).mean() > 1 - 3 * slack


# ------------------------------------------------------- convex-gradient target
_A = np.array([[1.5, 0.4], [0.4, 0.8]])
_C4 = np.stack(np.meshgrid(*[(np.arange(4) + 0.5) / 4] * 2), -1).reshape(-1, 2)


def _gradient_check(result, device, slack):
    centres = torch.as_tensor(_C4, dtype=torch.float64).to(device)
    np.testing.assert_array_equal(result.assign(centres).cpu().numpy(), np.arange(16))
    # the cells are the grid's squares: their masses are 1/16 each
    np.testing.assert_allclose(result.cell_masses.cpu().numpy(), 1 / 16, atol=slack / 16 * 2)


CASES = [
    Case("quantiles-1d", lambda: SemiDiscreteProblem(_T[:, None], _NU), _quantile_check),
    Case(
        "voronoi-grid",
        lambda: SemiDiscreteProblem(_CENTRES),
        _voronoi_check,
        # the default start −|y|²/2 is the answer here: start away from it
        h0=-0.5 * (_CENTRES**2).sum(1) + np.random.default_rng(1).normal(0, 0.02, _K * _K),
    ),
    Case(
        "collinear-strips",
        lambda: SemiDiscreteProblem(
            np.stack([_STRIP_T, np.full_like(_STRIP_T, 0.5)], 1), _STRIP_NU
        ),
        _strips_check,
    ),
    Case(
        "convex-gradient",
        lambda: SemiDiscreteProblem(_C4 @ _A.T + np.array([0.3, -0.2])),
        _gradient_check,
    ),
]


def _solver(name: str, device: str):
    """The solver and its accuracy (relative cell-mass error) on these small cases."""
    if name == "exact-2d":
        return ExactNewton2D(tol=1e-10), 1e-6
    settings = MonteCarloSettings(tol=4e-3, seed=2, batch_size=2**15, device=device)
    return MonteCarloNewton(settings), 1.2e-2


@pytest.mark.parametrize("solver_name", ["exact-2d", "monte-carlo"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_catalogue(case, solver_name, device):
    if solver_name == "exact-2d" and device != "cpu":
        pytest.skip("the exact 2D solver runs on the CPU (float64 power diagrams)")
    solver, slack = _solver(solver_name, device)
    problem = case.problem()
    reason = solver.why_not(problem)
    if reason is not None:
        pytest.skip(reason)
    result = solve(problem, solver, h0=case.h0)
    assert result.converged, (case.name, solver_name, result.errors[-3:])
    assert result.h.device.type == "cpu" and result.h.dtype == torch.float64
    case.check(result, device, slack)


def test_auto_picks_the_exact_solver_where_it_applies():
    plane = SemiDiscreteProblem(_CENTRES)
    assert solve(plane).method == "newton-exact-2d"
    space = SemiDiscreteProblem(_uniform_points(40, 3, 0))
    mc = MonteCarloNewton(MonteCarloSettings(tol=0.05, seed=0))
    assert solve(space, monte_carlo=mc).method.startswith("monte-carlo")
    assert solve(plane, "monte-carlo", monte_carlo=mc).method.startswith("monte-carlo")


def test_callback_sees_every_iteration_and_can_stop():
    for method in ("exact-2d", "monte-carlo"):
        seen = []
        mc = MonteCarloNewton(MonteCarloSettings(tol=1e-9, seed=0, max_iter=50))
        result = solve(
            SemiDiscreteProblem(_uniform_points(60, 2, 1)),
            method,
            monte_carlo=mc,
            exact=ExactNewton2D(tol=1e-14),
            callback=lambda info, seen=seen: seen.append(info.iteration) or len(seen) == 2,
        )
        assert seen == [1, 2] and result.n_iter == 2 and not result.converged, method


def test_bad_input_names_the_problem():
    plane = SemiDiscreteProblem(_CENTRES)
    with pytest.raises(ValueError, match=r"exact-2d cannot solve .* 3-dimensional"):
        solve(SemiDiscreteProblem(_uniform_points(10, 3, 0)), "exact-2d")
    with pytest.raises(ValueError, match="method must be one of"):
        solve(plane, "simplex")
    with pytest.raises(TypeError, match="method must be a name"):
        solve(plane, 3)
    with pytest.raises(TypeError, match="problem must be a SemiDiscreteProblem"):
        solve(_CENTRES)
    with pytest.raises(TypeError, match="exact must be a ExactNewton2D"):
        solve(plane, exact=MonteCarloNewton())


def test_both_scorers_are_scorers():
    """The solver loop's one seam: the single-process and the sharded scorer both
    implement the public Scorer protocol."""
    from aeot.ot import Scorer
    from aeot.ot.distributed import ShardedScorer
    from aeot.ot.montecarlo import LocalScorer

    assert isinstance(LocalScorer(_uniform_points(10, 3, 0)), Scorer)
    missing = [
        name
        for name in ("argmax", "top2", "topk", "lift_empty_cells", "agree", "smallest")
        if not callable(getattr(ShardedScorer, name, None))
    ]
    assert not missing
