"""Semi-discrete OT solvers behind one call signature, and :func:`solve`, which picks one.

Every solver is a small frozen dataclass of its settings with

    solver.why_not(problem) -> str | None      # why it cannot solve ``problem``, or None
    solver(problem, *, h0=None, callback=None) -> SemiDiscreteResult

``callback`` receives an :class:`~aeot.ot.result.IterationInfo` after every
iteration and stops the solve by returning True; ``h0`` warm-starts the heights. The
result is the same :class:`~aeot.ot.result.SemiDiscreteResult` whichever solver ran
(``result.method`` says which).

* :class:`ExactNewton2D` — damped Newton on exact power diagrams (Kitagawa, Mérigot and
  Thibert 2019): a box source in 2D, uniform or a piecewise-constant density on a grid
  (:class:`~aeot.ot.sources.GridDensity`), to ``tol`` = the largest relative cell-mass
  error max_i |μ(W_i) − ν_i| / ν_i (float64 exact masses).
* :class:`MonteCarloNewton` — Monte-Carlo minimisation of the Brenier energy in any
  dimension and for any :class:`~aeot.ot.sources.Source`, to ``settings.tol`` = the L1
  cell-mass error Σ_i |μ(W_i) − ν_i| of a fresh sample, sampling noise removed.

:func:`solve` with ``method="auto"`` takes the exact solver wherever it applies (2D, a
box source: uniform or a grid density) and the Monte-Carlo one elsewhere.

Example
-------
>>> import torch
>>> from aeot.ot import SemiDiscreteProblem, solve
>>> result = solve(SemiDiscreteProblem(torch.rand(50, 2, dtype=torch.float64)))
>>> result.method, result.converged
('newton-exact-2d', True)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

from aeot.ot.montecarlo import MonteCarloSettings, solve_semidiscrete
from aeot.ot.problem import SemiDiscreteProblem
from aeot.ot.result import IterationInfo, SemiDiscreteResult
from aeot.ot.sources import BoxUniform, GridDensity

__all__ = ["METHODS", "ExactNewton2D", "MonteCarloNewton", "Solver", "solve"]

Callback = Callable[[IterationInfo], "bool | None"]


@runtime_checkable
class Solver(Protocol):
    """What :func:`solve` accepts as ``method`` besides a name."""

    name: ClassVar[str]

    def why_not(self, problem: SemiDiscreteProblem) -> str | None: ...

    def __call__(
        self, problem: SemiDiscreteProblem, *, h0=None, callback: Callback | None = None
    ) -> SemiDiscreteResult: ...


@dataclass(frozen=True)
class ExactNewton2D:
    """Exact power-diagram Newton (:func:`aeot.ot.exact2d.solve_exact_2d`).

    Attributes
    ----------
    tol : float
        Stop when max_i |μ(W_i) − ν_i| / ν_i ≤ ``tol`` (relative; the masses are exact).
    max_iter : int
        Newton iterations at most (``converged=False`` when they run out).
    linear_solver : str
        The Newton systems' factorisation: ``"auto"`` (MKL PARDISO when ``pypardiso``
        is installed, else SuperLU), ``"pardiso"`` or ``"superlu"``.
    """

    tol: float = 1e-10
    max_iter: int = 100
    linear_solver: str = "auto"
    name: ClassVar[str] = "exact-2d"

    def why_not(self, problem: SemiDiscreteProblem) -> str | None:
        source = problem.source
        if problem.dim != 2:
            return f"the exact solver is 2D only; the targets are {problem.dim}-dimensional"
        if not isinstance(source, BoxUniform | GridDensity):
            return (
                "the exact solver needs a box source, uniform (BoxUniform) or with a grid "
                f"density (GridDensity), got {type(source).__name__}"
            )
        return None

    def __call__(
        self, problem: SemiDiscreteProblem, *, h0=None, callback: Callback | None = None
    ) -> SemiDiscreteResult:
        from aeot.ot.exact2d import solve_exact_2d

        return solve_exact_2d(
            problem,
            tol=self.tol,
            max_iter=self.max_iter,
            h0=h0,
            callback=callback,
            linear_solver=self.linear_solver,
        )


@dataclass(frozen=True)
class MonteCarloNewton:
    """Monte-Carlo minimisation of the energy (:func:`aeot.ot.solve_semidiscrete`).

    Attributes
    ----------
    settings : MonteCarloSettings
        Method, ``tol`` (L1 error), budgets, device, seed, ...
    checkpoint_path : path, optional
        Resumable solver state (an interrupted solve continues bit-identically).
    checkpoint_every : int
        Iterations between checkpoints.
    """

    settings: MonteCarloSettings = field(default_factory=MonteCarloSettings)
    checkpoint_path: str | os.PathLike | None = None
    checkpoint_every: int = 1
    name: ClassVar[str] = "monte-carlo"

    def why_not(self, problem: SemiDiscreteProblem) -> str | None:
        return None

    def __call__(
        self, problem: SemiDiscreteProblem, *, h0=None, callback: Callback | None = None
    ) -> SemiDiscreteResult:
        return solve_semidiscrete(
            problem,
            self.settings,
            h0=h0,
            callback=callback,
            checkpoint_path=self.checkpoint_path,
            checkpoint_every=self.checkpoint_every,
        )


METHODS = ("auto", ExactNewton2D.name, MonteCarloNewton.name)


def solve(
    problem: SemiDiscreteProblem,
    method: str | Solver = "auto",
    *,
    h0=None,
    callback: Callback | None = None,
    exact: ExactNewton2D | None = None,
    monte_carlo: MonteCarloNewton | None = None,
) -> SemiDiscreteResult:
    """Solve semi-discrete OT from ``problem.source`` to the weighted targets.

    Parameters
    ----------
    problem : SemiDiscreteProblem
        Source μ, targets y (N, d), weights ν (N,).
    method : {"auto", "exact-2d", "monte-carlo"} or Solver
        ``"auto"``: the exact solver where it applies (2D targets, a uniform box
        source), else Monte-Carlo. A name picks that solver (a ValueError says why
        the exact one cannot take a problem); a solver object is used as given.
    h0 : (N,) array, optional
        Initial heights.
    callback : callable, optional
        ``callback(IterationInfo)`` after each iteration; returning True stops.
    exact, monte_carlo : solver objects, optional
        The settings of each solver when chosen by name or by ``"auto"`` (defaults:
        ``ExactNewton2D()``, ``MonteCarloNewton()``).

    Returns
    -------
    SemiDiscreteResult
        ``method`` names the algorithm that ran.
    """
    if not isinstance(problem, SemiDiscreteProblem):
        raise TypeError(f"problem must be a SemiDiscreteProblem, got {type(problem).__name__}")
    for name, value, kind in (
        ("exact", exact, ExactNewton2D),
        ("monte_carlo", monte_carlo, MonteCarloNewton),
    ):
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
    exact = exact or ExactNewton2D()
    monte_carlo = monte_carlo or MonteCarloNewton()
    if isinstance(method, str):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS} or a solver, got {method!r}")
        if method == "auto":
            solver: Solver = exact if exact.why_not(problem) is None else monte_carlo
        else:
            solver = exact if method == ExactNewton2D.name else monte_carlo
    elif isinstance(method, Solver):
        solver = method
    else:
        raise TypeError(
            f"method must be a name in {METHODS} or a solver object, got {type(method).__name__}"
        )
    reason = solver.why_not(problem)
    if reason is not None:
        raise ValueError(f"{solver.name} cannot solve this problem: {reason}")
    return solver(problem, h0=h0, callback=callback)
