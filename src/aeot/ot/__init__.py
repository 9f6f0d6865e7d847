"""Optimal transport: semi-discrete (Monte-Carlo and exact 2D), discrete, c-transforms.

Semi-discrete OT from a source measure μ to Σ ν_i δ_{y_i} is solved through the
Brenier potential u_h(x) = max_i <x, y_i> + h_i, whose heights h minimise the convex
energy E(h) = ∫ u_h dμ − Σ h_i ν_i (Gu, Luo, Sun, Yau 2016; Lei et al. 2019);
:func:`solve` picks the exact 2D power-diagram Newton solver where it applies (a box
source, uniform or a :class:`GridDensity`) and the Monte-Carlo one elsewhere
(:mod:`aeot.ot.solvers`: one call signature for both).
Between two densities on a 2D or 3D grid, :func:`solve_fftot` solves the Monge–Ampère
equation by FFT-OT (Lei & Gu 2021); :func:`solve_discrete_accelerated` solves discrete OT
by FISTA on the smoothed Kantorovich dual (An, Lei, Xu & Gu 2022), and
:func:`solve_discrete_auxiliary` finds the discrete plan's support from two semi-discrete
solves against one auxiliary measure (An, Lei & Gu 2022), then solves it exactly.
"""

from aeot.ot.accelerated import AcceleratedOTResult, solve_discrete_accelerated
from aeot.ot.auxiliary import AuxiliaryPlanResult, solve_discrete_auxiliary
from aeot.ot.discrete import (
    c_transform,
    cost_matrix,
    discrete_ot,
    dual_objective,
    semidiscrete_dual,
    wasserstein_distance,
)
from aeot.ot.fftot import FFTOTResult, solve_fftot
from aeot.ot.measure import estimate_masses
from aeot.ot.montecarlo import (
    MonteCarloSettings,
    Scorer,
    energy,
    energy_gradient,
    noise_floor,
    solve_semidiscrete,
)
from aeot.ot.problem import NearDuplicateTargetsWarning, SemiDiscreteProblem
from aeot.ot.result import IterationInfo, SemiDiscreteResult
from aeot.ot.solvers import ExactNewton2D, MonteCarloNewton, Solver, solve
from aeot.ot.sources import BoxUniform, CallableSource, Gaussian, GridDensity, Source

__all__ = [
    "AcceleratedOTResult",
    "AuxiliaryPlanResult",
    "BoxUniform",
    "CallableSource",
    "ExactNewton2D",
    "FFTOTResult",
    "Gaussian",
    "GridDensity",
    "IterationInfo",
    "MonteCarloNewton",
    "MonteCarloSettings",
    "NearDuplicateTargetsWarning",
    "Scorer",
    "SemiDiscreteProblem",
    "SemiDiscreteResult",
    "Solver",
    "Source",
    "c_transform",
    "cost_matrix",
    "discrete_ot",
    "dual_objective",
    "energy",
    "energy_gradient",
    "estimate_masses",
    "noise_floor",
    "semidiscrete_dual",
    "solve",
    "solve_discrete_accelerated",
    "solve_discrete_auxiliary",
    "solve_fftot",
    "solve_semidiscrete",
    "wasserstein_distance",
]
