"""Discrete OT by accelerated gradient ascent on the smoothed Kantorovich dual.

An, Lei, Xu & Gu, "Efficient Optimal Transport Algorithm by Accelerated Gradient
Descent", AAAI 2022. For a cost matrix C (n × m) and weights a (n), b (m), the
Kantorovich dual in its semi-dual form is a concave function of the potential ψ on the
targets alone,

    E(ψ) = Σ_j b_j ψ_j + Σ_i a_i min_j (C_ij − ψ_j),     max_ψ E(ψ) = OT cost,

non-smooth because of the c-transform min_j. Nesterov's smoothing replaces the min by a
log-sum-exp of width λ,

    E_λ(ψ) = Σ_j b_j ψ_j − λ Σ_i a_i log Σ_j exp((ψ_j − C_ij) / λ),
    ∇E_λ(ψ)_j = b_j − Σ_i a_i π_ij,     π_i = softmax_j((ψ_j − C_ij) / λ),

which is within λ log m of E everywhere and has a (1/λ)-Lipschitz gradient, and
maximises it by FISTA (Beck & Teboulle 2009): a gradient step from the extrapolated point
with a backtracked Lipschitz estimate L (starting from max_j b_j / λ, the Hessian's bound
near the optimum; scaled by 0.7 after every accepted step so it can shrink again), and
the momentum restarted whenever E_λ falls (O'Donoghue & Candès 2015). λ is lowered
geometrically from a coarse start, each stage warm-started from the last (ε-scaling); a
stage ends when the rounding error its plan would carry, ‖∇E_λ‖₁ max|C|, is below its
smoothing bias λ log m. The solve stops when the certified gap below is met.

What is returned is certified: P = diag(a) π has row sums a exactly; it is rounded onto
the transport polytope (Altschuler, Weed & Rigollet 2017, Algorithm 2) into a feasible
plan whose cost is an upper bound on the OT cost, and the unsmoothed dual E(ψ) is a lower
bound, for any ψ. ``gap`` = (cost − dual) / cost bounds the relative error of either.
Every pass over C runs in row blocks, so memory stays O(block × m) beside C itself.

**Active sets.** At small λ each row's softmax lives on a few entries: those within
(T + 2D)·λ of the row's largest logit ψ_j − C_ij at a reference point ψ0 (T = 36:
e^{−36} ≈ 2·10⁻¹⁶ of the row's largest weight; D = 8). While every point evaluated stays
within D·λ of ψ0 in the sup norm, an entry left out is more than T·λ below its row's
largest, so the passes run on these entries alone (a CSR list, rows in order) and the
set is rebuilt, by one pass over C, when a point moves further or λ changes. (Growing D
after each rebuild within a stage was tried: at N = 10⁴ in 2D the larger sets cost more
than the rebuilds they saved, 108 s against 80 s.) A stage whose set would hold more
than a fifth of C runs full passes instead. The truncation moves each row's sums by at
most m·e^{−36} of their value and the certificate not at all: the rounded plan is
feasible whatever P it rounds, and the dual bound takes its c-transform over all of C.

**Coarse stages.** On a problem of n ≥ 4 × 2048 rows, the stages whose active sets hold
more than 5 % of C run on 2048 rows drawn at random (seed 0; their weights a
renormalised): the smoothed dual is a mean over rows, and at large λ each row's softmax
spreads over many columns, so the sample's ψ is a warm start for the full problem, got
at a fraction of the cost. The full problem takes over from it at the first stage whose
active set holds at most 5 % of C. (At N = 10⁴ in 2D the full problem then needs more
steps than after full-problem coarse stages, 388 against 304, and the solve takes less
time.)

**C kernels.** For a float64 cost matrix on the CPU (row-major) the passes run in the
extension's kernels (``aeot.ot._native``: the full log-sum-exp pass, the active set's
two building passes and its CSR pass, the c-transform with the rounding's product C x),
one fused loop per row in eight vector lanes with an inlined exponential accurate to
about one ulp, rows split over the kernel thread pool. They take the same steps as the
torch path (the fallback for float32, CUDA or ``AEOT_NATIVE=0``) and give its values to
about 1e-14 relative; at N = M = 10⁴ in 2D they make the solve 3× faster
(docs/ACCELERATED_OT.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from aeot._validation import as_float_tensor
from aeot.ot import _native

__all__ = ["AcceleratedOTResult", "solve_discrete_accelerated"]

# rows of C per block in every pass (bounds the (block, m) temporaries)
_BLOCK_ELEMENTS = 1 << 22
_TRUNCATE = 36.0  # an entry more than this many λ below its row's largest logit is dropped
_DRIFT = 8.0  # the active set serves points within this many λ of its reference (sup norm)
_MAX_DENSITY = 0.2  # a denser active set: full passes (they cost less per entry)
_COARSE_ROWS = 2048  # rows of the sample the first stages run on, from 4x this many rows
_COARSE_DENSITY = 0.05  # ... until a stage's active set holds at most this share of C


@dataclass
class AcceleratedOTResult:
    """Potentials, certified bounds and history of :func:`solve_discrete_accelerated`.

    Attributes
    ----------
    psi : (m,) tensor
        Potential on the targets: the iterate with the smallest measured gap.
    phi : (n,) tensor
        Its c-transform φ_i = min_j C_ij − ψ_j: (φ, ψ) is dual feasible.
    cost : float
        Σ P_ij C_ij of the rounded plan, feasible: an upper bound on the OT cost.
    dual : float
        E(ψ) = Σ a_i φ_i + Σ b_j ψ_j: a lower bound on the OT cost.
    marginal_error : float
        ‖b − Σ_i a_i π_i‖₁ of that iterate, before rounding.
    history : list of dict
        Per iteration: stage, λ, smoothed dual E_λ, marginal error.
    iterations : int
        Gradient evaluations at extrapolated points, all stages.
    passes : int
        Full passes over C (gradient and backtracking evaluations of dense stages, bound
        evaluations, active-set builds).
    active_passes : int
        Evaluations on an active set only (module docstring, "Active sets").
    coarse_rows, coarse_passes : int
        Rows of the sample the coarse stages ran on, and their passes over it (0 when
        there were none: module docstring, "Coarse stages").
    converged : bool
        Whether the certified gap met ``tol``.
    seconds : float
    reg : float
        λ of the last stage run (the one π and the rounded plan use).
    """

    psi: torch.Tensor
    phi: torch.Tensor
    cost: float
    dual: float
    marginal_error: float
    iterations: int
    passes: int
    converged: bool
    seconds: float
    reg: float
    history: list[dict] = field(default_factory=list)
    active_passes: int = 0
    coarse_rows: int = 0
    coarse_passes: int = 0
    _plan_factors: tuple | None = field(default=None, repr=False)

    @property
    def gap(self) -> float:
        """(cost − dual) / |cost|: the certified relative error of both bounds."""
        return (self.cost - self.dual) / max(abs(self.cost), 1e-300)

    def plan(self, cost: torch.Tensor) -> torch.Tensor:
        """The rounded feasible plan as a dense (n, m) tensor (for small problems):
        diag(a) π diag(y) + e_r e_cᵀ / ‖e_c‖₁, marginals a and b exactly."""
        a, scale, row_err, col_err, reg = self._plan_factors
        logits = (self.psi[None, :] - cost) / reg
        plan = a[:, None] * torch.softmax(logits, dim=1) * scale[None, :]
        if col_err.abs().sum() > 0:
            plan = plan + row_err[:, None] * col_err[None, :] / col_err.abs().sum()
        return plan


def _blocks(n: int, m: int):
    rows = max(1, _BLOCK_ELEMENTS // max(m, 1))
    return [slice(s, min(s + rows, n)) for s in range(0, n, rows)]


def _native_ok(cost: torch.Tensor) -> bool:
    """Whether the passes over ``cost`` run in the C kernels (float64, CPU, row-major,
    the extension present): one fused loop per row instead of torch's passes."""
    return (
        cost.dtype == torch.float64
        and cost.device.type == "cpu"
        and (cost.shape[1] == 1 or cost.stride(1) == 1)
        and _native.available()
    )


def _abs_max_mean(cost: torch.Tensor, blocks) -> tuple[float, float]:
    """max |C| and mean |C| without a temporary of C's size (one pass for C ≥ 0)."""
    low, high = (float(v) for v in torch.aminmax(cost))
    if low >= 0:
        total = float(cost.sum())
    else:
        total = sum(float(cost[rows].abs().sum()) for rows in blocks)
    return max(-low, high), total / cost.numel()


def _smoothed(cost, a, b, psi, reg, blocks) -> tuple[float, torch.Tensor]:
    """E_λ(ψ) and Σ_i a_i π_i (the column sums of diag(a) π), in one full pass."""
    columns = torch.zeros_like(psi)
    if _native_ok(cost):
        value = float(torch.dot(b, psi)) - reg * _native.lse_dense(cost, psi, a, reg, columns)
        return value, columns
    value = torch.dot(b, psi)
    for rows in blocks:
        z = torch.sub(psi[None, :], cost[rows]).div_(reg)  # logits
        top = z.max(dim=1, keepdim=True).values
        z.sub_(top).exp_()
        total = z.sum(dim=1)
        value = value - reg * torch.dot(a[rows], top.squeeze(1) + torch.log(total))
        columns = columns + z.T @ (a[rows] / total)
    return float(value), columns


class _ActiveSet:
    """The entries (i, j) with ψ0_j − C_ij ≥ max_j (ψ0_j − C_ij) − R, as a CSR list with
    rows in order (every row keeps at least its largest entry); ``dense`` when they would
    be more than ``max_entries``."""

    def __init__(self, cost, psi0, radius, blocks, max_entries):
        self.psi0 = psi0.clone()
        self.dense = False
        self.native = _native_ok(cost)
        if self.native:
            found = _native.active_entries(cost, self.psi0, radius, int(max_entries))
            if found is None:
                self.dense = True
                return
            self.ptr, self.cols, self.values = found
            self.lengths = self.ptr[1:] - self.ptr[:-1]
            self._w = torch.empty_like(self.values)
            return
        rows, cols, total = [], [], 0
        for block in blocks:
            z = torch.sub(psi0[None, :], cost[block])
            keep = z >= z.max(dim=1, keepdim=True).values - radius
            r, c = torch.nonzero(keep, as_tuple=True)
            total += r.numel()
            if total > max_entries:
                self.dense = True
                return
            rows.append(r + block.start)
            cols.append(c)
        self._rows, self.cols = torch.cat(rows), torch.cat(cols)
        self.values = cost[self._rows, self.cols]
        self.lengths = torch.bincount(self._rows, minlength=cost.shape[0])
        # two work buffers of the entries' size, reused by every pass
        self._z, self._t = torch.empty_like(self.values), torch.empty_like(self.values)

    @property
    def size(self) -> int:
        """The number of entries."""
        return self.cols.shape[0]

    def weights(self, a, b, psi, reg) -> tuple[float, torch.Tensor, torch.Tensor]:
        """E_λ(ψ), Σ_i a_i π_i and the entries a_i π_ij, on the active entries (the
        entries' tensor is a buffer the next call overwrites)."""
        if self.native:
            columns = torch.zeros_like(psi)
            lse = _native.lse_csr(
                psi, self.cols, self.values, self.ptr, a, reg, self._w, columns, checked=True
            )
            return float(torch.dot(b, psi)) - reg * lse, columns, self._w
        z = torch.index_select(psi, 0, self.cols, out=self._z).sub_(self.values).div_(reg)
        top = torch.segment_reduce(z, "max", lengths=self.lengths)
        z.sub_(torch.index_select(top, 0, self._rows, out=self._t)).exp_()
        total = torch.segment_reduce(z, "sum", lengths=self.lengths)
        value = float(torch.dot(b, psi) - reg * torch.dot(a, top + torch.log(total)))
        w = z.mul_(torch.index_select(a / total, 0, self._rows, out=self._t))
        columns = torch.zeros_like(psi).index_add_(0, self.cols, w)
        return value, columns, w


def _rounded_cost(cost, a, b, psi, columns, reg, blocks, active=None):
    """Cost of the Altschuler–Weed–Rigollet rounding of diag(a) π(ψ), given its column
    sums ``columns`` = Σ_i a_i π_i, and the c-transform of ψ, in one pass over C (the
    plan's entries from ``active`` when given)."""
    # the rounding's column scaling min(1, b_j / Σ_i a_i π_ij)
    scale = torch.clamp(b / torch.clamp(columns, min=torch.finfo(b.dtype).tiny), max=1.0)
    total = torch.zeros((), dtype=cost.dtype, device=cost.device)
    if active is not None:
        _, _, w = active.weights(a, b, psi, reg)
        plan = w * scale[active.cols]
        total = total + torch.dot(plan, active.values)
        rows_sum = torch.segment_reduce(plan, "sum", lengths=active.lengths)
    else:
        sums = []
        for rows in blocks:
            logits = (psi[None, :] - cost[rows]) / reg
            plan = a[rows, None] * torch.softmax(logits, dim=1) * scale[None, :]
            total = total + (plan * cost[rows]).sum()
            sums.append(plan.sum(1))
        rows_sum = torch.cat(sums)
    # both are ≥ 0 in exact arithmetic (the scaling only removes mass): clip rounding
    row_err = torch.clamp(a - rows_sum, min=0)
    col_err = torch.clamp(b - columns * scale, min=0)
    mass = col_err.abs().sum()
    if _native_ok(cost):
        phi, correction = _native.ctransform_dot(cost, psi, col_err)
    else:
        phis, corrections = [], []
        for rows in blocks:
            block = cost[rows]
            phis.append((block - psi[None, :]).min(dim=1).values)
            corrections.append(block @ col_err)
        phi, correction = torch.cat(phis), torch.cat(corrections)
    if mass > 0:
        total = total + torch.dot(row_err, correction) / mass
    return float(total), phi, (a, scale, row_err, col_err, reg)


@dataclass
class _Run:
    """What :func:`_run` leaves: the best measured bounds and the counters."""

    psi: torch.Tensor
    reg: float
    best: tuple | None
    iterations: int
    passes: int
    active_passes: int
    converged: bool


def _run(
    c,
    a_w,
    b_w,
    psi,
    lam,
    *,
    floor,
    reg_decay,
    tol,
    check_every,
    max_iter,
    history,
    callback,
    accelerate=True,
    until_density=None,
    cmax=None,
) -> _Run:
    """FISTA stages from (ψ, λ) (module docstring). With ``until_density`` it returns at
    the start of the first stage whose active set holds at most that share of C (the
    coarse stages), without the final measurement of bounds; its stages still measure
    theirs where a stage ends, as every stage does."""
    n, m = c.shape
    log_m = math.log(max(m, 2))
    blocks = _blocks(n, m)
    if cmax is None:  # max |C| (the caller has it for the full problem)
        cmax = _abs_max_mean(c, blocks)[0] or 1.0
    # the ascent test allows the rounding of a sum of n log-sum-exps in this dtype
    slack = 64 * torch.finfo(c.dtype).eps
    max_entries = _MAX_DENSITY * n * m
    active = None  # the active set of the stage (module docstring), or None: full passes

    def rebuild(point: torch.Tensor, lam: float) -> None:
        nonlocal active, passes
        active = _ActiveSet(c, point, (_TRUNCATE + 2 * _DRIFT) * lam, blocks, max_entries)
        passes += 1
        if active.dense:
            active = None

    def stale(point: torch.Tensor, lam: float) -> bool:
        """Whether ``point`` is further than D·λ from the active set's reference."""
        return active is not None and float((point - active.psi0).abs().max()) > _DRIFT * lam

    def smoothed(point: torch.Tensor, lam: float) -> tuple[float, torch.Tensor]:
        nonlocal passes, active_passes
        if stale(point, lam):
            rebuild(point, lam)
        if active is None:
            passes += 1
            return _smoothed(c, a_w, b_w, point, lam, blocks)
        active_passes += 1
        value, columns, _ = active.weights(a_w, b_w, point, lam)
        return value, columns

    def bounds(psi: torch.Tensor, columns: torch.Tensor, lam: float):
        nonlocal passes
        if stale(psi, lam):
            rebuild(psi, lam)
        upper, phi, factors = _rounded_cost(c, a_w, b_w, psi, columns, lam, blocks, active)
        passes += 1 if active is not None else 2
        dual = float(torch.dot(a_w, phi) + torch.dot(b_w, psi))
        return upper, dual, phi, factors

    iterations = passes = active_passes = stage = 0
    converged = False
    best = None  # (gap, cost, dual, φ, factors, ψ, λ, error) of the best measured bounds
    while True:
        lipschitz = float(b_w.max()) / lam
        y, momentum = psi.clone(), 1.0
        rebuild(psi, lam)
        if until_density is not None and active is not None:
            if active.size <= until_density * n * m:
                return _Run(psi, lam, None, iterations, passes, active_passes, False)
        value, columns = smoothed(psi, lam)
        error = float((b_w - columns).abs().sum())
        steps, done_measured = 0, False
        while iterations < max_iter:
            # the stage is done when the rounding error is below the smoothing bias; at
            # the smallest λ it goes on, measured every check_every steps
            stage_done = error * cmax <= lam * log_m
            if (stage_done and not done_measured) or (steps and steps % check_every == 0):
                done_measured = done_measured or stage_done
                upper, dual, phi, factors = bounds(psi, columns, lam)
                gap = (upper - dual) / max(abs(upper), 1e-300)
                if best is None or gap < best[0]:
                    best = (gap, upper, dual, phi, factors, psi, lam, error)
                if gap <= tol:
                    converged = True
                    break
                if stage_done and lam > floor:
                    break
            value_y, columns_y = smoothed(y, lam)
            grad = b_w - columns_y
            grad_sq = float(torch.dot(grad, grad))
            while True:  # backtracking: the ascent lemma at y with constant L
                candidate = y + grad / lipschitz
                value_new, columns_new = smoothed(candidate, lam)
                if value_new >= value_y + grad_sq / (2 * lipschitz) - slack * abs(value_y):
                    break
                lipschitz *= 2
            iterations += 1
            steps += 1
            next_momentum = (1 + math.sqrt(1 + 4 * momentum * momentum)) / 2
            if not accelerate or value_new < value:  # it fell: restart the momentum
                y, momentum = candidate, 1.0
            else:
                y = candidate + (momentum - 1) / next_momentum * (candidate - psi)
                momentum = next_momentum
            psi, value, columns = candidate, value_new, columns_new
            error = float((b_w - columns).abs().sum())
            lipschitz *= 0.7
            entry = {
                "stage": stage,
                "reg": lam,
                "rows": n,
                "smoothed_dual": value,
                "marginal_error": error,
            }
            history.append(entry)
            if callback is not None:
                callback(entry)
        if converged or iterations >= max_iter or (until_density is not None and lam <= floor):
            break
        lam, stage = max(lam * reg_decay, floor), stage + 1
    if until_density is not None:
        return _Run(psi, lam, None, iterations, passes, active_passes, False)
    if not converged:  # measure where it stopped; report the better of that and the best
        upper, dual, phi, factors = bounds(psi, columns, lam)
        gap = (upper - dual) / max(abs(upper), 1e-300)
        if best is None or gap < best[0]:
            best = (gap, upper, dual, phi, factors, psi, lam, error)
    return _Run(psi, lam, best, iterations, passes, active_passes, converged)


def _weights(value, n: int, name: str, like: torch.Tensor) -> torch.Tensor:
    if value is None:
        return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)
    w = as_float_tensor(value, name, dtype=like.dtype, device=like.device)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {tuple(w.shape)}")
    if (w < 0).any():
        raise ValueError(f"{name} must be finite and non-negative")
    if abs(float(w.sum()) - 1.0) > 1e-6:
        raise ValueError(f"{name} must sum to 1, it sums to {float(w.sum()):.8g}")
    return w


def solve_discrete_accelerated(
    cost,
    a=None,
    b=None,
    *,
    tol: float = 1e-4,
    reg: float | None = None,
    reg_start: float | None = None,
    reg_decay: float = 0.25,
    check_every: int = 25,
    max_iter: int = 20_000,
    callback: Callable[[dict], None] | None = None,
    momentum: bool = True,
) -> AcceleratedOTResult:
    """Discrete OT between Σ a_i δ_i and Σ b_j δ_j for the cost matrix C by FISTA on the
    log-sum-exp-smoothed semi-dual (module docstring).

    Parameters
    ----------
    cost : (n, m) tensor
        Finite costs, float32 or float64 (float64 advised when the gap asked for is
        below about 1e-4). Any device.
    a, b : (n,), (m,) tensors, optional
        Non-negative weights summing to 1 (uniform by default).
    tol : float
        Stop when the certified relative gap (cost − dual) / cost of the rounded plan
        and the dual bound is at most ``tol``.
    reg : float, optional
        The smallest smoothing width λ (cost units). By default λ keeps shrinking until
        the gap is met (the smoothing moves the dual by at most λ log m).
    reg_start, reg_decay : float
        First λ (default mean|C| / log m, coarse) and the factor between stages. A
        stage ends when the rounding error it would cause, ‖b − Σ_i a_i π_i‖₁ max|C|,
        falls below its smoothing bias λ log m; the bounds are then measured.
    check_every : int
        Steps between measurements of the bounds within a stage (each costs two
        passes over C).
    max_iter : int
        Gradient steps at most, all stages together; ``converged`` says whether the gap
        was met.
    callback : callable(dict), optional
        Called with each history entry.
    momentum : bool
        ``False`` drops the extrapolation: plain gradient ascent with the same
        backtracked step, for comparison (O(1/k) per stage against FISTA's O(1/k²)).
    """
    c = torch.as_tensor(cost)
    if c.ndim != 2 or min(c.shape) < 1:
        raise ValueError(f"cost must be an (n, m) matrix, got shape {tuple(c.shape)}")
    if c.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"cost must be float32 or float64, got {c.dtype}")
    c = as_float_tensor(c, "cost")  # finite, dense
    n, m = c.shape
    a_w, b_w = _weights(a, n, "a", c), _weights(b, m, "b", c)
    cmax, scale = _abs_max_mean(c, _blocks(n, m))
    cmax, scale = cmax or 1.0, scale or 1.0
    log_m = math.log(max(m, 2))
    lam = reg_start if reg_start is not None else scale / log_m
    floor = reg if reg is not None else 1e-9 * scale
    if not lam > 0 or not floor > 0 or not 0 < reg_decay < 1:
        raise ValueError(
            f"reg and reg_start must be > 0 and reg_decay in (0, 1), got {reg}, "
            f"{reg_start}, {reg_decay}"
        )
    if not tol > 0 or max_iter < 1 or check_every < 1:
        raise ValueError(
            f"tol must be > 0, max_iter and check_every >= 1, got {tol}, {max_iter}, {check_every}"
        )
    lam = max(lam, floor)
    t0 = time.perf_counter()
    history: list[dict] = []
    settings = dict(
        floor=floor,
        reg_decay=reg_decay,
        tol=tol,
        check_every=check_every,
        history=history,
        callback=callback,
        accelerate=momentum,
    )
    psi = torch.zeros(m, dtype=c.dtype, device=c.device)
    coarse = None
    if n >= 4 * _COARSE_ROWS:  # the first stages on a row sample (module docstring)
        g = torch.Generator().manual_seed(0)
        pick = torch.randperm(n, generator=g)[:_COARSE_ROWS].to(c.device)
        a_pick = a_w[pick] / a_w[pick].sum()
        coarse = _run(
            c[pick],
            a_pick,
            b_w,
            psi,
            lam,
            max_iter=max_iter,
            until_density=_COARSE_DENSITY,
            **settings,
        )
        psi, lam = coarse.psi, coarse.reg
    done = coarse.iterations if coarse is not None else 0
    run = _run(c, a_w, b_w, psi, lam, max_iter=max(max_iter - done, 1), cmax=cmax, **settings)
    _, upper, dual, phi, factors, psi, lam, error = run.best
    return AcceleratedOTResult(
        psi=psi,
        phi=phi,
        cost=upper,
        dual=dual,
        marginal_error=error,
        iterations=run.iterations + done,
        passes=run.passes,
        converged=run.converged,
        seconds=time.perf_counter() - t0,
        reg=lam,
        history=history,
        active_passes=run.active_passes,
        coarse_rows=len(pick) if coarse is not None else 0,
        coarse_passes=coarse.passes + coarse.active_passes if coarse is not None else 0,
        _plan_factors=factors,
    )
