"""The solution of a semi-discrete OT problem: the Brenier potential and its cells."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from aeot._validation import as_float_tensor, check_positive_int, check_seed
from aeot.ot.kernels import ScoreKernel
from aeot.ot.measure import estimate_masses
from aeot.ot.problem import SemiDiscreteProblem


@dataclass
class IterationInfo:
    """What a solver's callback sees after each iteration (every semi-discrete solver).

    The exact 2D solver reports its exact L1 error as ``error`` and ``raw_error``, with
    ``noise = 0`` and ``batch_size = 0`` (it draws no samples).
    """

    iteration: int
    error: float  # L1 cell-mass error of the current h on a fresh batch, noise removed
    batch_size: int
    h: torch.Tensor
    masses: torch.Tensor
    elapsed: float
    raw_error: float  # Σ|μ̂(W_i) − ν_i| as measured, sampling noise included
    noise: float  # the sampling noise of that measurement, Σ|μ̂_A − μ̂_B|/2 over two halves


@dataclass(eq=False)
class SemiDiscreteResult:
    """Brenier potential u_h(x) = max_i <x, y_i> + h_i solving a :class:`SemiDiscreteProblem`.

    Attributes
    ----------
    problem : SemiDiscreteProblem
    h : (N,) tensor
        The heights, normalised to mean zero (h is defined up to a constant).
    cell_masses : (N,) tensor
        μ(W_i(h)) as last measured (exactly for the 2D solver, on samples otherwise).
    errors : list of float
        L1 cell-mass error Σ_i |μ(W_i) − ν_i| of each iterate, measured on samples
        not used for the update (exact for the 2D solver).
    converged : bool
        Whether the stopping tolerance was met.
    n_iter : int
    n_samples : int
        Source samples drawn in total (0 for the exact solver).
    method : str
    noise : float
        Monte-Carlo solvers: the sampling noise of the measurement that gave ``error``
        (Σ_i |μ̂_i^A − μ̂_i^B| / 2 over two half-batches); NaN for exact solvers.
    best_iteration : int
        The iteration (1-based) whose iterate ``h`` is, when the solver returns the best
        measured iterate rather than the last; 0 when ``h`` is the last one.
    """

    problem: SemiDiscreteProblem
    h: torch.Tensor
    cell_masses: torch.Tensor
    errors: list[float] = field(default_factory=list)
    converged: bool = False
    n_iter: int = 0
    n_samples: int = 0
    method: str = ""
    noise: float = float("nan")
    best_iteration: int = 0

    def __post_init__(self):
        if not isinstance(self.problem, SemiDiscreteProblem):
            raise TypeError(
                f"problem must be a SemiDiscreteProblem, got {type(self.problem).__name__}"
            )
        n = self.problem.n_targets
        h = as_float_tensor(self.h, "h", ndim=1)
        if h.shape[0] != n:
            raise ValueError(f"h has {h.shape[0]} entries but there are {n} targets")
        self.h = h - h.mean()
        self._kernel: ScoreKernel | None = None

    @property
    def targets(self) -> torch.Tensor:
        return self.problem.targets

    @property
    def weights(self) -> torch.Tensor:
        return self.problem.weights

    @property
    def error(self) -> float:
        """The measured L1 cell-mass error of the returned ``h``."""
        if not self.errors:
            return float("nan")
        if 0 < self.best_iteration <= len(self.errors):
            return self.errors[self.best_iteration - 1]
        return self.errors[-1]

    def _prepare(
        self, x, *, differentiable: bool = False
    ) -> tuple[torch.Tensor, ScoreKernel, torch.Tensor]:
        """``x`` as an (M, d) tensor of the targets' dtype and device, the kernel and h.

        The kernels track no gradients. For the cell indices (``differentiable``
        False) that loses nothing, so a query that requires grad is detached; the
        scores would have a gradient, so for them such a query is a ValueError
        rather than a result silently cut off from the graph.
        """
        y = self.problem.targets
        if isinstance(x, torch.Tensor) and x.requires_grad:
            if differentiable:
                raise ValueError(
                    "x requires grad, but the score kernels do not track gradients: pass "
                    "x.detach() (the gradient of the potential at x is transport(x))"
                )
            x = x.detach()
        x = as_float_tensor(x, "x", dtype=y.dtype, device=y.device)
        if x.ndim == 1:
            x = x.unsqueeze(0)
        if x.ndim != 2 or x.shape[1] != y.shape[1]:
            raise ValueError(
                f"x must have shape (M, {y.shape[1]}) (the targets' dimension is "
                f"{y.shape[1]}), got {tuple(x.shape)}"
            )
        if self._kernel is None:
            self._kernel = ScoreKernel(y)
        return x, self._kernel, self.h.to(dtype=y.dtype, device=y.device)

    def assign(self, x) -> torch.Tensor:
        """Index of the power cell containing each point: (M, d) -> (M,) long."""
        x, kernel, h = self._prepare(x)
        return kernel.argmax(x, h)[0]

    def potential(self, x) -> torch.Tensor:
        """Brenier potential u_h(x) = max_i <x, y_i> + h_i: (M, d) -> (M,)."""
        x, kernel, h = self._prepare(x, differentiable=True)
        return kernel.argmax(x, h)[1]

    def transport(self, x) -> torch.Tensor:
        """The OT map ∇u_h(x) = y_{σ(x)}: (M, d) -> (M, d)."""
        return self.problem.targets[self.assign(x)]

    def topk(self, x, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` largest <x, y_i> + h_i per point, best first: values (M, k), cells (M, k).

        ``k`` is at most the number of targets N (a ValueError otherwise: there are
        no k cells to return).
        """
        try:
            k = check_positive_int(k, "k")
        except TypeError as exc:
            raise ValueError(str(exc)) from None
        if k > self.problem.n_targets:
            raise ValueError(
                f"k = {k} exceeds the number of targets ({self.problem.n_targets}): "
                "there are only that many cells"
            )
        x, kernel, h = self._prepare(x, differentiable=True)
        return kernel.topk(x, h, k)

    def measure_masses(
        self, n_samples: int = 2**20, *, seed: int = 12345, qmc: bool = False
    ) -> torch.Tensor:
        """Cell masses μ(W_i) estimated from ``n_samples`` fresh source samples: (N,) float64.

        The scores <x, y_i> + h_i are computed in the targets' dtype (float32 or
        float64): a float64 problem is measured in float64, never cast down.
        """
        seed = check_seed(seed, maximum=2**49)  # batch seeds are seed * 7919 + part
        return estimate_masses(
            self.problem, self.h, n_samples, seed=seed, qmc=qmc, dtype=self.problem.targets.dtype
        )

    def l1_error(self, n_samples: int = 2**22, *, seed: int = 12345, qmc: bool = False) -> float:
        """Σ_i |μ(W_i) − ν_i| measured on fresh samples (MC noise ≈ 0.8·sqrt(N/n)).

        Measured in the targets' dtype (see :meth:`measure_masses`), summed in float64.
        """
        masses = self.measure_masses(n_samples, seed=seed, qmc=qmc)
        return float((masses.double().cpu() - self.problem.weights.double().cpu()).abs().sum())
