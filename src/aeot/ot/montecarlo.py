"""Monte-Carlo solver for semi-discrete OT in any dimension.

Minimises the convex energy of the Brenier potential u_h(x) = max_i <x, y_i> + h_i,

    E(h) = ∫ u_h dμ − Σ_i h_i ν_i,     ∇_i E(h) = μ(W_i(h)) − ν_i,

with cell masses μ(W_i) estimated on fresh (quasi-)random source samples each
iteration. Four update rules:

* ``"auto"`` (default): ``"newton"`` up to d = 12, ``"pool"`` above (see
  ``AUTO_NEWTON_MAX_DIM``).
* ``"pool"``: the ``"jacobi"`` step below, taken many times per batch on every sample
  drawn so far (a sample-average approximation whose sample set grows). Each sample
  keeps its K best cells (K = 16, 64 from d = 24 on) and a bound on all others; an
  inner step re-ranks only those candidates (O(M·K) instead of O(M·N·d)) and re-scores
  in full only the samples whose bound no longer certifies their two best cells, so
  the pool's masses are exact functions of h. Each batch measures h fresh before it
  joins the pool, the batch at least doubles, and the pool's own error is driven to
  half its sampling floor sqrt(2/π) Σ_i sqrt(ν_i/M): the pool's sampling noise, not
  the step rule, sets the accuracy. Each sample is scored against every target about
  once. With a time limit, a non-final batch takes at most 2/3 of what the time left
  could score after keeping back a batch that measures the last iterate, and the
  inner steps stop in time for it. On 20,000 MNIST codes in d = 16 this reaches L1
  0.052 in 2 minutes where "jacobi" stops at 0.27; 128,000 codes in d = 32 reach 0.18
  in 10 minutes.
* ``"jacobi"``: a diagonal Newton step taken in log-mass coordinates,

      h_i ← h_i − ω τ_i log(μ̂_i / ν_i),      τ_i ≈ (∂ log μ_i / ∂h_i)^{-1} = μ_i / H_ii,

  where H_ii = Σ_j ∫_{W_i ∩ W_j} dμ / |y_i − y_j| is estimated from the samples within
  ε of a facet of cell i (as for ``"newton"``) and shrunk, for cells with few such
  samples, toward the mean score gap s_1(x) − s_2(x) of the samples inside the cell
  (a conservative value: it is the exact τ_i of a cone-shaped cell and smaller for
  others). The statistics are pooled over iterations with weights halving per batch.
  The log keeps the step bounded where the linear model μ_i + H_ii δ_i is far off
  (cells holding 10^-3 or 10^2 times their mass), and needs no linear solve, so it
  stays cheap and stable when every cell has hundreds of neighbours (latent codes in
  16–64 dimensions), where a sampled Laplacian is too noisy to invert. The next batch
  is sized so that its sampling noise is ``noise_ratio`` times the current error: the
  error and the sample count fall together, as for stochastic approximation.
* ``"newton"``: the Hessian of E is the graph Laplacian
  L_ij = −∫_{W_i ∩ W_j} dμ / |y_i − y_j| over adjacent cells. It is estimated from
  the samples whose two best scores differ by less than ε: the slab
  {x : s_i − s_j < ε} around facet ij has measure ≈ ε ∫_facet dμ / |y_i − y_j|,
  so L_ij ≈ −#slab_ij / (n ε). The step solves L δ = ν − μ(W(h)) by conjugate
  gradients, damped when the measured error grows (Kitagawa, Mérigot, Thibert 2019).
* ``"adam"``: Adam on ∇E, as in the AE-OT reference (An et al., ICLR 2020).
* ``"nesterov"``: Nesterov-accelerated gradient descent (An et al., AAAI 2022).

The error recorded for iteration k is measured on the fresh batch of iteration k,
which played no part in producing h_k. The solver keeps the best iterate it has
measured: an iterate measured worse than it by more than the sampling noise of the
two measurements is rolled back (with a halved step), and an unconverged solve
returns the best measured iterate with its own masses and error (``result.error``;
``result.errors`` keeps the whole history, ``result.best_iteration`` says which).
The batch is drawn in two halves with independent seeds; the raw error
Σ_i |μ̂_i − ν_i| of the pooled estimate contains sampling noise, estimated as
Σ_i |μ̂_i^A − μ̂_i^B| / 2 (valid for scrambled Sobol points too, whose noise is
below the i.i.d. floor sqrt(2/π) Σ_i sqrt(ν_i(1 − ν_i)/n)).
With ``debias`` the recorded error is sqrt(raw² − noise²), the part due to h; the
solver stops when both it and the noise are ≤ ``tol``, no cell is empty (of those the
batch resolves: ν_i · batch ≥ 10), and (if
``max_cell_error`` is set) every measured |μ̂_i − ν_i| / ν_i is within it. For the
other rules the batch grows (× ``growth``) when the error stalls or the noise
dominates the measurement.

The iteration runs on targets z_i = a y_i + b in a working frame matched to the
source's scale (heights h̃ = a h, the same cells), so targets at 10^±30 keep their
float32 digits. Memory is O(N·d + batch·d) plus a fixed score buffer: the scores are
streamed over sample chunks and, for large N, over target blocks (ScoreKernel). The
solver state can be checkpointed and resumed exactly (``checkpoint_path``), and the
scoring can be sharded over processes (:mod:`aeot.ot.distributed`).
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import cg

from aeot._io import atomic_write, check_fingerprint, load_checkpoint, tensor_hash
from aeot._validation import as_float_tensor, check_positive_int, resolve_device
from aeot.ot import _native
from aeot.ot.kernels import ScoreKernel, pack_panels
from aeot.ot.problem import SemiDiscreteProblem
from aeot.ot.result import IterationInfo, SemiDiscreteResult

METHODS = ("auto", "pool", "jacobi", "newton", "adam", "nesterov")
# "auto": the sampled-Laplacian Newton step up to this dimension (few neighbours per
# cell, a well-estimated Hessian, fast on smooth modes: 1,527 codes in d = 10 reach
# L1 0.03 where "jacobi" creeps at 0.98 per step), the "pool" rule above it (hundreds
# of neighbours per cell: 5,000 codes in d = 32 reach 0.036 where newton stays at 0.70;
# 20,000 MNIST codes in d = 16 reach 0.052 in 2 minutes where "jacobi" stops at 0.27)
AUTO_NEWTON_MAX_DIM = 12
CHECKPOINT_VERSION = 4  # 4: the pool caches 64 candidates from d = 24 on


@dataclass(frozen=True)
class MonteCarloSettings:
    """Settings of :func:`solve_semidiscrete`."""

    method: str = "auto"  # "auto", "jacobi", "newton", "adam" or "nesterov"
    tol: float = 1e-2  # stop when the L1 cell-mass error Σ|μ(W_i) − ν_i| is ≤ tol
    max_iter: int = 300  # iterations (batches) at most
    # samples in the first batch; None: max(2^14, 8 N) for "jacobi", 2^14 otherwise
    batch_size: int | None = None
    max_batch_size: int = 2**24  # the batch never grows beyond this
    growth: float = 2.0  # batch growth factor when progress stalls
    patience: int = 4  # stalled iterations (no new best error) before the batch grows
    lr: float | None = None  # step size of adam/nesterov; scaled to the problem when None
    qmc: bool = True  # scrambled Sobol samples (fresh scramble every batch) instead of i.i.d.
    hessian_samples: int = 2**18  # samples per batch used to estimate the Hessian (newton)
    slab_fraction: float = 0.1  # fraction of those samples in the ε-slabs around facets
    dtype: torch.dtype = torch.float32  # working precision of the score GEMM
    device: str | None = None  # torch device; CUDA when available if None
    seed: int = 0  # seeds every batch (batch k uses seed + k)
    chunk: int | None = None  # samples per GEMM chunk; cache-sized if None
    time_limit: float | None = None  # seconds; stop (unconverged) when exceeded
    debias: bool = True  # remove the measured sampling noise from the error (see solver doc)
    # "jacobi": the next batch is sized for a sampling noise of this fraction of the error
    noise_ratio: float = 0.5
    # also require max_i |μ̂_i − ν_i| / ν_i ≤ this (measured, noise included) to converge
    max_cell_error: float | None = None
    # "pool": the most samples kept (oldest batches are forgotten beyond it)
    pool_size: int = 2**23

    def for_dimension(self, dim: int, sharded: bool = False) -> MonteCarloSettings:
        """These settings with ``method="auto"`` resolved for targets in ``dim`` dimensions.

        ``sharded``: for the distributed solver, whose scorer has no pool ("jacobi" then).
        """
        if self.method == "pool" and sharded:
            raise ValueError(
                'method "pool" runs in one process; the distributed solver takes '
                '"jacobi", "newton", "adam" or "nesterov" (or "auto")'
            )
        if self.method != "auto":
            return self
        if dim <= AUTO_NEWTON_MAX_DIM:
            return replace(self, method="newton")
        return replace(self, method="jacobi" if sharded else "pool")

    def first_batch(self, n_targets: int) -> int:
        """Samples in the first batch (``batch_size``, or its default for ``method``)."""
        if self.batch_size is not None:
            return self.batch_size
        if self.method in ("jacobi", "pool"):
            return min(self.max_batch_size, max(2**14, 8 * n_targets))
        return min(self.max_batch_size, 2**14)

    def validate(self) -> MonteCarloSettings:
        """These settings checked (ValueError naming the field), numpy scalars as Python's."""
        numeric = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.integer):
                numeric[f.name] = int(value)
            elif isinstance(value, np.floating):
                numeric[f.name] = float(value)
        if numeric:
            return replace(self, **numeric).validate()
        for name in ("tol", "growth", "slab_fraction", "noise_ratio"):
            if not _is_real(getattr(self, name)):
                raise ValueError(f"{name} must be a number, got {getattr(self, name)!r}")
        for name in ("lr", "time_limit", "max_cell_error"):
            value = getattr(self, name)
            if value is not None and not _is_real(value):
                raise ValueError(f"{name} must be a number or None, got {value!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not (self.tol > 0 and math.isfinite(self.tol)):
            raise ValueError(f"tol must be positive, got {self.tol}")
        if self.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {self.dtype}")
        for name in (
            "max_iter",
            "batch_size",
            "max_batch_size",
            "patience",
            "hessian_samples",
            "pool_size",
        ):
            value = getattr(self, name)
            if value is None and name == "batch_size":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_batch_size < 2:
            raise ValueError(f"max_batch_size must be >= 2, got {self.max_batch_size}")
        if self.batch_size is not None and self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (two half-batches), got {self.batch_size}")
        if self.batch_size is not None and self.batch_size > self.max_batch_size:
            raise ValueError("batch_size must not exceed max_batch_size")
        if not (_is_real(self.noise_ratio) and 0 < self.noise_ratio <= 1):
            raise ValueError(f"noise_ratio must be in (0, 1], got {self.noise_ratio!r}")
        if self.max_cell_error is not None and not (
            _is_real(self.max_cell_error)
            and self.max_cell_error > 0
            and math.isfinite(self.max_cell_error)
        ):
            raise ValueError(
                f"max_cell_error must be a positive number or None, got {self.max_cell_error!r}"
            )
        if not (self.growth > 1 and math.isfinite(self.growth)):
            raise ValueError(f"growth must be a finite number > 1, got {self.growth}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number or None, got {self.lr}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"time_limit must be positive seconds or None, got {self.time_limit}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.seed >= 2**42:  # batch seeds seed·1000003 + 2k must fit in 63 bits
            raise ValueError(f"seed must be < 2**42, got {self.seed}")
        if self.chunk is not None and (
            isinstance(self.chunk, bool) or not isinstance(self.chunk, int) or self.chunk < 1
        ):
            raise ValueError(f"chunk must be a positive integer or None, got {self.chunk!r}")
        if not 0 < self.slab_fraction < 1:
            raise ValueError(f"slab_fraction must be in (0, 1), got {self.slab_fraction}")
        return self


def _is_real(value) -> bool:
    """A real number (int or float, not bool): what the numeric settings accept."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def noise_floor(weights: torch.Tensor, n: int) -> float:
    """Expected L1 error of i.i.d. mass estimates from n samples at the exact solution."""
    w = weights.double()
    return float(math.sqrt(2 / math.pi) * torch.sqrt(w * (1 - w) / n).sum())


@dataclass(frozen=True)
class WorkingFrame:
    """Working coordinates z_i = a y_i + b of the targets, chosen from the source's scale.

    The scores satisfy <x, z_i> + a h_i = a (<x, y_i> + h_i) + <x, b>, and <x, b> is the
    same for every i, so (z, h̃ = a h) has exactly the power cells of (y, h). Targets
    whose spread or offset is far from the source's (|y| ~ 1e20 or 1e-20 against a unit
    box) would overflow or lose every digit of the float32 scores; in the frame that
    maps their mean and spread onto the source's the scores stay O(1). Well-scaled
    targets keep a = 1, b = 0 (the iterates are then those of the plain coordinates).
    """

    scale: float  # a
    shift: torch.Tensor  # b, (d,) float64

    # target spread / source spread (and offset / source spread) inside which a = 1, b = 0.
    # Not only precision: 12 targets spread over 1/100 of the unit square made the
    # Newton rule oscillate at L1 1.5-1.7 for 60 iterations in the plain coordinates,
    # and converge in 3 in the frame
    WELL_SCALED = 4.0

    @classmethod
    def fit(cls, problem: SemiDiscreteProblem, x: torch.Tensor) -> WorkingFrame:
        """Frame from the targets' mean and spread and those of source samples ``x`` (m, d)."""
        x_mean = x.mean(0)
        x_spread = float((x - x_mean).abs().max())
        parts = problem.targets.split(2**16)
        y_mean = sum(part.double().sum(0) for part in parts) / problem.n_targets
        y_spread = max(float((part.double() - y_mean).abs().max()) for part in parts)
        offset = float((y_mean - x_mean).abs().max())
        if y_spread == 0 or x_spread == 0:  # one target (or a point source): scores are exact
            return cls(1.0, torch.zeros(problem.dim, dtype=torch.float64))
        ratio = y_spread / x_spread
        bound = cls.WELL_SCALED
        if 1 / bound <= ratio <= bound and offset <= bound * x_spread:
            return cls(1.0, torch.zeros(problem.dim, dtype=torch.float64))
        scale = x_spread / y_spread
        return cls(scale, x_mean - scale * y_mean)

    def targets(self, problem: SemiDiscreteProblem):
        """Yield the working targets z = a y + b in float64 chunks of (≤ 65536, d) rows."""
        for part in problem.targets.split(2**16):
            yield part.double() * self.scale + self.shift


def source_probe(problem: SemiDiscreteProblem) -> torch.Tensor:
    """1024 fixed pseudo-random source samples (float64) that measure the source's scale."""
    return problem.source.sample(1024, seed=987654321, qmc=False, dtype=torch.float64)


def _check_h0_spread(
    h: torch.Tensor, targets: torch.Tensor, probe: torch.Tensor, dtype: torch.dtype
) -> None:
    """Refuse heights whose spread drowns the scores' differences in rounding.

    Scores <x, z_i> + h_i differ between cells by about S = max|x| max|z| (working
    frame); with heights spread over R, float rounding is R·eps. Once R·eps > S / 100
    the cell decisions are noise, and no step can recover (h0 = 1e30 once spun for
    minutes at error 1.9).
    """
    spread = float(h.double().max() - h.double().min())
    scale = float(probe.norm(dim=1).max()) * float(targets.double().norm(dim=1).max())
    if spread * torch.finfo(dtype).eps > 1e-2 * max(scale, 1e-300):
        raise ValueError(
            f"h0 spans {spread:.3g} (in the solver's frame) while the scores <x, y_i> vary "
            f"by about {scale:.3g}: in {dtype} the cells would be decided by rounding. "
            "Pass heights of the scale of the scores (or omit h0)"
        )


def _initial_h(frame: WorkingFrame, problem: SemiDiscreteProblem, dtype, device) -> torch.Tensor:
    """h̃_i = −|z_i|²/2: the power diagram starts as the Voronoi diagram of the targets."""
    half_sq = [-0.5 * (z * z).sum(1) for z in frame.targets(problem)]
    return torch.cat(half_sq).to(dtype=dtype, device=device)


def _default_lr(frame: WorkingFrame, problem: SemiDiscreteProblem, x: torch.Tensor) -> float:
    """A step in h̃ of about a tenth of the typical score gap between neighbouring cells."""
    spread_x = float((x - x.mean(0)).norm(dim=1).mean())
    spread_y = 1.0
    if problem.n_targets > 1:
        mean = sum(z.sum(0) for z in frame.targets(problem)) / problem.n_targets
        spread_y = float(sum((z - mean).norm(dim=1).sum() for z in frame.targets(problem)))
        spread_y /= problem.n_targets
    return (
        0.1 * max(spread_x, 1e-12) * max(spread_y, 1e-12) / problem.n_targets ** (1 / problem.dim)
    )


def _working_targets(
    frame: WorkingFrame, problem: SemiDiscreteProblem, dtype, device
) -> torch.Tensor:
    """The targets z = a y + b, (N, d), on the working device and dtype (built chunk-wise)."""
    if frame.scale == 1.0 and not bool(frame.shift.any()):
        return problem.targets.to(device=device, dtype=dtype)
    return torch.cat([z.to(device=device, dtype=dtype) for z in frame.targets(problem)])


# the empty-cell lift takes cells and samples in blocks: (rows, cells) gaps fit L2/L3
_LIFT_ROWS = 2**13
_LIFT_CELLS = 256


def _lifted_heights(
    lowest: torch.Tensor, total: torch.Tensor, total_sq: torch.Tensor, m: int
) -> torch.Tensor:
    """min + 1e-3 std of the gaps, from their minimum, sum and sum of squares over m samples."""
    mean = total / m
    spread = (total_sq / m - mean * mean).clamp_min(0).sqrt().clamp_min(1e-12)
    return lowest + 1e-3 * spread


def lift_empty_cells(
    h: torch.Tensor, empty: torch.Tensor, x: torch.Tensor, y: torch.Tensor, best: torch.Tensor
) -> None:
    """Raise h_i of each empty cell until y_i just wins at its most favourable sample.

    h_i ← min_x (u_h(x) − <x, y_i>) + margin makes cell i non-empty (the c-transform
    of the current potential evaluated on the samples). ``empty`` is a (N,) mask over
    the rows of ``y`` (N, d) and ``h`` (N,); ``best`` (M,) holds u_h at the samples ``x``.
    """
    ids = torch.nonzero(empty).flatten()
    if x.device.type == "cpu" and x.dtype == torch.float32 and _native.fused_available():
        # the fused C kernel forms the gaps in registers: no (rows, k) buffers
        lowest, total, total_sq = _native.fused_lift(
            x.contiguous(), best.contiguous(), pack_panels(y[ids])
        )
        k = ids.shape[0]
        lifted = _lifted_heights(lowest[:k].double(), total[:k], total_sq[:k], x.shape[0])
        h[ids] = lifted.to(h.dtype)
        return
    # the gaps are formed transposed, (k, rows), and each cell's row reduced on its own:
    # its sum is then computed in the same order whatever the other cells are (column
    # sums of a (rows, k) block, or a GEMM with a row of ones, are not), so a rank that
    # lifts only its shard's cells gets the single-process heights bit for bit
    rows = min(x.shape[0], _LIFT_ROWS)
    width = min(_LIFT_CELLS, ids.shape[0])
    # (k, rows) gap and squared-gap buffers, reused: cache-sized on CPU
    buf = torch.empty(2, rows * width, dtype=x.dtype, device=x.device)
    for part in ids.split(_LIFT_CELLS):
        k = part.shape[0]
        yk = y[part]
        lowest = torch.full((k,), torch.inf, dtype=x.dtype, device=x.device)
        total = torch.zeros_like(lowest)
        total_sq = torch.zeros_like(lowest)
        for start in range(0, x.shape[0], rows):
            stop = min(start + rows, x.shape[0])
            gap = buf[0, : (stop - start) * k].view(k, stop - start)
            sq = buf[1, : (stop - start) * k].view(k, stop - start)
            torch.mm(yk, x[start:stop].t(), out=gap)
            torch.sub(best[None, start:stop], gap, out=gap)
            lowest = torch.minimum(lowest, gap.amin(1))
            total += gap.sum(1)
            torch.mul(gap, gap, out=sq)
            total_sq += sq.sum(1)
        h[part] = _lifted_heights(lowest, total, total_sq, x.shape[0])


@runtime_checkable
class Scorer(Protocol):
    """The one seam between the Monte-Carlo solver loop (:func:`solve_with_scorer`) and
    where the targets live: the loop computes everything else identically in every
    process, so two scorers that return the same winners give the same iterates.

    :class:`LocalScorer` scores every target in this process;
    :class:`aeot.ot.distributed.ShardedScorer` splits them across ``torch.distributed``
    ranks. Shapes: x (M, d) samples, h (N,) heights, cells and scores per sample.
    """

    targets: torch.Tensor

    def argmax(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Winning cell σ(x) = argmax_i <x, y_i> + h_i and u_h(x): (M,), (M,)."""
        ...

    def top2(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two best scores and cells per sample, best first: (M, 2), (M, 2)."""
        ...

    def topk(self, x: torch.Tensor, h: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` best scores and cells per sample, best first: (M, k), (M, k)."""
        ...

    def lift_empty_cells(
        self, h: torch.Tensor, empty: torch.Tensor, x: torch.Tensor, best: torch.Tensor
    ) -> None:
        """Raise the heights of the ``empty`` (N,) cells in place; ``best`` (M,) is u_h(x)."""
        ...

    def agree(self, flag: bool) -> bool:
        """A stop decision shared by every process of the solve."""
        ...

    def smallest(self, value: int) -> int:
        """The smallest of ``value`` over every process of the solve."""
        ...


class LocalScorer:
    """Scores every target in this process: the single-process :class:`Scorer`.

    :class:`aeot.ot.distributed.ShardedScorer` implements the same methods with the
    targets split across ``torch.distributed`` ranks.

    Parameters
    ----------
    targets : (N, d) tensor
        Target points on the working device and dtype.
    chunk : int, optional
        Samples per GEMM (see :class:`~aeot.ot.kernels.ScoreKernel`).
    """

    def __init__(self, targets: torch.Tensor, chunk: int | None = None):
        self.targets = targets
        self.kernel = ScoreKernel(targets, chunk)
        # output buffers reused across batches, grown to the largest batch seen
        self._index = torch.empty(0, dtype=torch.long, device=targets.device)
        self._value = torch.empty(0, dtype=targets.dtype, device=targets.device)

    def argmax(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Winning cell σ(x) = argmax_i <x, y_i> + h_i and u_h(x): (M, d) -> (M,), (M,).

        The outputs are views of buffers that the next call overwrites.
        """
        m = x.shape[0]
        if self._index.shape[0] < m:
            self._index = torch.empty(m, dtype=torch.long, device=x.device)
            self._value = torch.empty(m, dtype=x.dtype, device=x.device)
        return self.kernel.argmax(x, h, self._index[:m], self._value[:m])

    def top2(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two best scores and their cells per sample, best first: (M, 2), (M, 2)."""
        return self.kernel.topk(x, h, 2)

    def topk(self, x: torch.Tensor, h: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` best scores and their cells per sample, best first: (M, k), (M, k)."""
        return self.kernel.topk(x, h, k)

    def lift_empty_cells(
        self, h: torch.Tensor, empty: torch.Tensor, x: torch.Tensor, best: torch.Tensor
    ) -> None:
        """Raise the heights of the ``empty`` (N,) cells in place; ``best`` (M,) is u_h(x)."""
        lift_empty_cells(h, empty, x, self.targets, best)

    def agree(self, flag: bool) -> bool:
        """A stop decision shared by all processes of the solve (here just ``flag``)."""
        return flag

    def smallest(self, value: int) -> int:
        """The smallest of ``value`` over all processes of the solve (here just ``value``)."""
        return value


def _hessian_step(
    x: torch.Tensor,
    scorer: Scorer,
    h: torch.Tensor,
    rhs: np.ndarray,
    slab_fraction: float,
) -> np.ndarray:
    """Solve L δ = rhs with the facet Laplacian L estimated on the samples ``x``."""
    n_targets = rhs.shape[0]
    values, cells = scorer.top2(x, h)
    gaps = (values[:, 0] - values[:, 1]).double()
    eps = float(torch.quantile(gaps[: min(gaps.shape[0], 2**20)], slab_fraction))
    eps = max(eps, 1e-12)
    near = gaps < eps
    i = cells[near, 0].cpu().numpy()
    j = cells[near, 1].cpu().numpy()
    # each facet's two-sided slab is sampled from both cells; symmetrising below
    # adds the (i, j) and (j, i) counts, hence the factor 1/2
    weight = 0.5 / (x.shape[0] * eps)
    lap = sp.coo_matrix(
        (np.full(i.shape[0], -weight), (i, j)), shape=(n_targets, n_targets)
    ).tocsr()
    lap = lap + lap.T
    degree = -np.asarray(lap.sum(axis=1)).ravel()
    lap = lap + sp.diags(degree)
    # Levenberg–Marquardt ridge: keeps cells without sampled facets solvable
    ridge = 1e-3 * max(float(degree.mean()), 1e-300)
    lap = lap + sp.diags(np.full(n_targets, ridge))
    precond = sp.diags(1.0 / (degree + ridge))
    delta, _ = cg(lap, rhs, rtol=1e-4, maxiter=200, M=precond)
    # trust region: no height moves further than twice the shift that would
    # double a typical cell's mass (cells with few sampled facets get huge steps)
    sampled = degree > 0
    radius = (
        2.0 * float(np.median(np.abs(rhs[sampled]) / degree[sampled])) if sampled.any() else 0.0
    )
    radius = max(
        radius,
        2.0 * float(np.median(1.0 / np.maximum(degree[sampled], 1e-300)) / n_targets)
        if sampled.any()
        else 0.0,
    )
    delta = np.clip(delta - delta.mean(), -radius, radius) if radius > 0 else delta - delta.mean()
    return delta


# Settings that do not change the iterates, left out of the checkpoint fingerprint
# (a run may be resumed with a larger max_iter or time_limit, or on another device).
_NOT_FINGERPRINTED = ("max_iter", "time_limit", "device", "chunk")


@dataclass
class _SolverState:
    """Everything the iteration carries from one batch to the next (what a checkpoint holds).

    Tensors: ``h``, ``previous_h``, ``nesterov_prev``, ``best_h`` (N,) in the working
    dtype; ``adam_m``, ``adam_v``, ``best_masses`` and the pooled cell statistics of
    the "jacobi" rule ``slab_mass``, ``slab_count``, ``gap_sum``, ``cell_count`` (N,)
    float64. ``iteration`` counts finished iterations.
    """

    h: torch.Tensor
    previous_h: torch.Tensor
    nesterov_prev: torch.Tensor
    best_h: torch.Tensor
    adam_m: torch.Tensor
    adam_v: torch.Tensor
    best_masses: torch.Tensor
    slab_mass: torch.Tensor  # Σ_k 2^-age 2 ε_k #(samples of cell i in batch k's subset)
    slab_count: torch.Tensor  # Σ_k 2^-age #(subset samples within ε_k of a facet of cell i)
    gap_sum: torch.Tensor  # Σ_k 2^-age Σ_{x in cell i} (s_1(x) − s_2(x))
    cell_count: torch.Tensor  # Σ_k 2^-age #(subset samples in cell i)
    lr: float
    iteration: int = 0
    batch: int = 0
    errors: list[float] = field(default_factory=list)
    noises: list[float] = field(default_factory=list)
    stall_reference: float = math.inf  # error the stall counter compares against
    stalled: int = 0
    total_samples: int = 0
    momentum_start: int = 0
    damping: float = 1.0
    step_from: int | None = None  # iteration whose error preceded the last Newton step
    elapsed: float = 0.0  # seconds spent before the current (resumed) process started
    best_error: float = math.inf  # the lowest error measured, of the iterate best_h
    best_noise: float = math.inf  # the sampling noise of that measurement
    best_iteration: int = 0
    pool_errors: list[float] = field(default_factory=list)  # "pool": its own error per step
    progress_error: float = math.inf  # the last error that was 1% below all before it
    progress_iteration: int = 0  # and its iteration (stagnation detection)
    pool_batches: list[list[int]] = field(default_factory=list)  # "pool": [iteration, size]

    _TENSORS = (
        "h",
        "previous_h",
        "nesterov_prev",
        "best_h",
        "adam_m",
        "adam_v",
        "best_masses",
        "slab_mass",
        "slab_count",
        "gap_sum",
        "cell_count",
    )

    def keep_best(self, masses: torch.Tensor, error: float, noise: float) -> None:
        """Keep the current h, measured at this iteration, as the iterate to return."""
        self.best_h, self.best_masses = self.h.clone(), masses.clone()
        self.best_error, self.best_noise, self.best_iteration = error, noise, self.iteration

    def payload(self, fingerprint: str, elapsed: float) -> dict[str, Any]:
        scalars = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in self._TENSORS
        }
        scalars["errors"] = list(self.errors)
        scalars["noises"] = list(self.noises)
        scalars["pool_errors"] = list(self.pool_errors)
        scalars["pool_batches"] = [list(b) for b in self.pool_batches]
        scalars["elapsed"] = elapsed
        tensors = {name: getattr(self, name).detach().cpu() for name in self._TENSORS}
        return {
            "fingerprint": fingerprint,
            "state": json.dumps(scalars),
            "tensors": tensors,
        }

    @classmethod
    def from_payload(cls, payload: dict, dtype: torch.dtype, device: torch.device) -> _SolverState:
        scalars = json.loads(payload["state"])
        tensors = payload["tensors"]
        state = cls(
            **{name: tensors[name].to(device=device) for name in cls._TENSORS},
            **scalars,
        )
        for name in ("h", "previous_h", "nesterov_prev", "best_h"):
            setattr(state, name, getattr(state, name).to(dtype))
        return state


def _fingerprint(
    problem: SemiDiscreteProblem, settings: MonteCarloSettings, h0: torch.Tensor | None
) -> str:
    """JSON identity of a solve: problem content, initial heights and trajectory settings."""
    trajectory = {
        f.name: (str(v) if isinstance(v, torch.dtype) else v)
        for f in fields(settings)
        if f.name not in _NOT_FINGERPRINTED
        for v in [getattr(settings, f.name)]
    }
    return json.dumps(
        {
            "version": CHECKPOINT_VERSION,
            "targets_shape": list(problem.targets.shape),
            "targets_dtype": str(problem.targets.dtype),
            "targets_hash": tensor_hash(problem.targets),
            "weights_hash": tensor_hash(problem.weights),
            "source": problem.source.describe(),
            "h0_hash": None if h0 is None else tensor_hash(h0),
            "settings": trajectory,
        },
        sort_keys=True,
    )


def load_solver_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`solve_semidiscrete` (tensors on CPU).

    Raises FileNotFoundError for a missing file and ValueError for a corrupt one.
    """
    return load_checkpoint(path, {"fingerprint", "state", "tensors"}, what="OT solver")


def solve_semidiscrete(
    problem: SemiDiscreteProblem,
    settings: MonteCarloSettings | None = None,
    *,
    h0=None,
    callback: Callable[[IterationInfo], bool | None] | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    **overrides,
) -> SemiDiscreteResult:
    """Solve a semi-discrete OT problem by Monte-Carlo minimisation of E(h).

    Parameters
    ----------
    problem : SemiDiscreteProblem
        Source μ (any :class:`~aeot.ot.Source`), targets y (N, d), weights ν (N,).
    settings : MonteCarloSettings, optional
        Solver settings; keyword ``overrides`` replace single fields.
    h0 : (N,) array, optional
        Initial heights; −|y_i|²/2 (the Voronoi diagram) when omitted.
    callback : callable, optional
        Called with an :class:`IterationInfo` after each iteration; returning True stops.
    checkpoint_path : path, optional
        File (``torch.save`` format, written atomically) that receives the solver state
        (h, the iteration, batch size, step-size and momentum state, error history)
        every ``checkpoint_every`` iterations. When it already exists the solve resumes
        from it and reaches the same h as an uninterrupted run: batch k is drawn with
        seed ``seed·1000003 + 2k`` (+1 for its second half), so the iteration number
        and the seed are the whole random state. The file stores a fingerprint of the
        problem (targets, weights, source), of ``h0`` and of the settings that change
        the iterates; a checkpoint of a different solve raises ``ValueError``.
        ``max_iter``, ``time_limit``, ``device`` and ``chunk`` may change on resume.
    checkpoint_every : int
        Iterations between checkpoints.

    Returns
    -------
    SemiDiscreteResult
        With h (mean zero), the last measured cell masses, the error history,
        ``converged`` (error ≤ tol) and the number of samples drawn.

    Examples
    --------
    >>> import torch
    >>> from aeot.ot import SemiDiscreteProblem, solve_semidiscrete
    >>> problem = SemiDiscreteProblem(torch.rand(100, 3))
    >>> result = solve_semidiscrete(problem, tol=0.05, seed=0)
    >>> result.converged
    True
    """
    if not isinstance(problem, SemiDiscreteProblem):
        raise TypeError(f"problem must be a SemiDiscreteProblem, got {type(problem).__name__}")
    settings = replace(settings or MonteCarloSettings(), **overrides).validate()
    settings = settings.for_dimension(problem.dim)
    device = resolve_device(settings.device)
    frame = WorkingFrame.fit(problem, source_probe(problem))
    y = _working_targets(frame, problem, settings.dtype, device)
    return solve_with_scorer(
        problem,
        settings,
        LocalScorer(y, settings.chunk),
        device,
        frame,
        h0=h0,
        callback=callback,
        checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every,
        writes_checkpoints=True,
    )


def solve_with_scorer(
    problem: SemiDiscreteProblem,
    settings: MonteCarloSettings,
    scorer: Scorer,
    device: torch.device,
    frame: WorkingFrame,
    *,
    h0,
    callback: Callable[[IterationInfo], bool | None] | None,
    checkpoint_path: str | os.PathLike | None,
    checkpoint_every: int,
    writes_checkpoints: bool,
) -> SemiDiscreteResult:
    """The solver loop of :func:`solve_semidiscrete`, with the scoring left to ``scorer``.

    Every step other than the scoring is computed identically in every process, so a
    sharded scorer that returns the single-process winners gives the same iterates.
    Only a process with ``writes_checkpoints`` writes the checkpoint file. The state
    holds h̃ = a h in the working ``frame`` of the scorer's targets.
    """
    dtype = settings.dtype
    nu = problem.weights.to(device=device, dtype=torch.float64)
    n_targets = problem.n_targets
    checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    h0_tensor = None
    if h0 is not None:
        h0_tensor = as_float_tensor(h0, "h0", ndim=1, dtype=dtype, device=device).clone()
        if h0_tensor.shape[0] != n_targets:
            raise ValueError(
                f"h0 has {h0_tensor.shape[0]} entries but there are {n_targets} targets"
            )
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    resumed_pool = None
    fingerprint = _fingerprint(problem, settings, h0_tensor) if ckpt is not None else ""
    if ckpt is not None and ckpt.exists():
        payload = load_solver_checkpoint(ckpt)
        check_fingerprint(ckpt, payload["fingerprint"], json.loads(fingerprint))
        state = _SolverState.from_payload(payload, dtype, device)
        resumed_pool = payload.get("pool")
    else:
        probe = source_probe(problem)
        if h0_tensor is None:
            h = _initial_h(frame, problem, dtype, device)
        else:
            h = h0_tensor if frame.scale == 1.0 else (h0_tensor.double() * frame.scale).to(dtype)
            _check_h0_spread(h, scorer.targets, probe, dtype)
        zeros = torch.zeros(n_targets, dtype=torch.float64, device=device)
        state = _SolverState(
            h=h,
            previous_h=h.clone(),
            nesterov_prev=h.clone(),
            best_h=h.clone(),
            adam_m=zeros,
            adam_v=zeros.clone(),
            best_masses=zeros.clone(),
            slab_mass=zeros.clone(),
            slab_count=zeros.clone(),
            gap_sum=zeros.clone(),
            cell_count=zeros.clone(),
            lr=frame.scale * settings.lr
            if settings.lr is not None
            else _default_lr(frame, problem, probe),
            batch=settings.first_batch(n_targets),
        )
    s = state  # short alias: the loop below updates the state in place
    pool = None
    if settings.method == "pool" and n_targets > 1:
        n_cached = POOL_CANDIDATES_HIGH_DIM if problem.dim >= POOL_HIGH_DIM else POOL_CANDIDATES
        pool = _SamplePool(scorer, min(n_cached, n_targets), settings.pool_size)
        if s.pool_batches:  # a resumed solve: the samples are redrawn, the cache restored
            x = torch.cat([_draw_batch(problem, settings, k, m, device) for k, m in s.pool_batches])
            if resumed_pool is None:
                raise ValueError(f"checkpoint {ckpt} lacks the sample pool of its solve")
            pool.restore(x, [m for _, m in s.pool_batches], resumed_pool)
    converged = False
    start = time.perf_counter() - s.elapsed
    seconds_per_sample = 0.0  # measured cost of one sample (scoring + update), this process
    seconds_per_scored = 0.0  # ... of drawing and scoring it alone ("pool": the rest is steps)
    for iteration in range(s.iteration + 1, settings.max_iter + 1):
        batch = s.batch
        if settings.time_limit is not None and seconds_per_sample > 0:
            # honour the limit within one batch: draw no more than the time left allows
            left = settings.time_limit - (time.perf_counter() - start)
            if pool is None:
                afford = int(left / seconds_per_sample)
            else:
                # the pool's steps after a batch cost time too, and their result counts
                # only once a later batch has measured it: unless this is the last batch
                # (all the time left), draw at most 2/3 of what the time left minus a
                # last measuring batch could score, so that steps and that batch fit
                afford = int(left / seconds_per_scored)
                reserve = _measuring_batch(nu, min(s.best_error, *s.pool_errors[-1:]), settings)
                if afford > 2 * reserve:
                    afford = 2 * (afford - reserve) // 3
            batch = scorer.smallest(min(batch, max(afford, 0)))
            if batch < min(s.batch, 2**12):
                break
        tick = time.perf_counter()
        half = batch // 2
        x = _draw_batch(problem, settings, iteration, batch, device)
        if pool is not None:
            top_values, top_cells = scorer.topk(x, s.h, pool.k)
            cells, best = top_cells[:, 0], top_values[:, 0]
        else:
            cells, best = scorer.argmax(x, s.h)
        seconds_per_scored = (time.perf_counter() - tick) / batch
        first = torch.bincount(cells[:half], minlength=n_targets).double() / half
        second = torch.bincount(cells[half:], minlength=n_targets).double() / (batch - half)
        masses = (first + second) / 2
        raw = float((masses - nu).abs().sum())
        noise = 0.5 * float((first - second).abs().sum())
        # the measured L1 error is ≈ sqrt(true² + noise²); report the true part
        error = math.sqrt(max(raw * raw - noise * noise, 0.0)) if settings.debias else raw
        s.total_samples += batch
        s.errors.append(error)
        s.noises.append(noise)
        s.iteration = iteration
        if error < s.best_error:
            s.keep_best(masses, error, noise)
        if callback is not None:
            h_now = s.h if frame.scale == 1.0 else s.h / frame.scale
            info = IterationInfo(
                iteration, error, batch, h_now, masses, time.perf_counter() - start, raw, noise
            )
        if scorer.agree(callback is not None and bool(callback(info))):
            break
        if _converged(settings, error, noise, masses, nu, batch):
            converged = True
            s.keep_best(masses, error, noise)  # a converged iterate is returned as measured
            break
        if error < (1 - _PROGRESS) * s.progress_error:
            s.progress_error, s.progress_iteration = error, iteration
        elif iteration - s.progress_iteration >= _STAGNATION_ITERATIONS:
            warnings.warn(
                f"semi-discrete OT stopped without converging: the error has not fallen "
                f"by {_PROGRESS:.0%} in {_STAGNATION_ITERATIONS} iterations (best "
                f"{s.best_error:.4g} at iteration {s.best_iteration}, tol {settings.tol}). "
                "Targets closer than the working precision resolves, or extreme h0, "
                "cause this; check for near-duplicate targets or use dtype=torch.float64",
                RuntimeWarning,
                stacklevel=3,
            )
            break
        if _measured_worse(s, error, noise):
            # a step left h measurably worse than the best iterate: go back, step shorter
            s.h.copy_(s.best_h)
            s.damping = max(s.damping * 0.5, 1 / 64)
            s.lr *= 0.5
            s.step_from = None
        elif pool is not None:
            end = None if settings.time_limit is None else start + settings.time_limit
            if end is None or time.perf_counter() < end:  # else no step could follow
                pool.add(x, top_values, top_cells, s.h)
                s.pool_batches.append([iteration, batch])
                s.pool_batches = s.pool_batches[len(s.pool_batches) - len(pool.sizes) :]
                _pool_step(s, settings, pool, nu, error, end, seconds_per_scored)
        else:
            measured = _Measurement(x, best, masses, nu, error, noise, raw, iteration)
            _update(s, settings, scorer, measured)
        if not bool(torch.isfinite(s.h).all()):
            raise FloatingPointError(
                f"the heights became non-finite at iteration {iteration}: the scores "
                f"<x, y_i> + h_i overflow {dtype} (check the scale of h0, or use float64)"
            )
        seconds_per_sample = (time.perf_counter() - tick) / batch
        if ckpt is not None and writes_checkpoints and iteration % checkpoint_every == 0:
            payload = s.payload(fingerprint, time.perf_counter() - start)
            if pool is not None and pool.size:
                payload["pool"] = pool.state()
            atomic_write(ckpt, lambda tmp, payload=payload: torch.save(payload, tmp))
        if settings.time_limit is not None and scorer.agree(
            time.perf_counter() - start > settings.time_limit
        ):
            break
    # the result is the best measured iterate (after max_iter, h has taken one more step,
    # which a checkpoint keeps so that a resumed run continues as an uninterrupted one)
    measured = s.best_iteration > 0  # false only when no batch was ever drawn
    h_out = s.best_h if measured else s.h
    return SemiDiscreteResult(
        problem=problem,
        h=h_out.detach().to(torch.float64).cpu() / frame.scale,
        cell_masses=s.best_masses.cpu(),
        errors=list(s.errors),
        converged=converged,
        n_iter=s.iteration,
        n_samples=s.total_samples,
        method=f"monte-carlo-{settings.method}",
        noise=s.best_noise if s.best_iteration else math.nan,
        best_iteration=s.best_iteration,
    )


def _measuring_batch(nu: torch.Tensor, error: float, settings: MonteCarloSettings) -> int:
    """Samples whose sampling floor sqrt(2/π) Σ sqrt(ν_i (1 − ν_i) / B) equals
    max(``error``, tol): the smallest batch whose measurement of an L1 error that size
    is not mostly noise (a batch kept back, under a time limit, to measure the last
    iterate). Never more than ``max_batch_size``."""
    spread = noise_floor(nu, 1)  # the floor of B samples is spread / sqrt(B)
    level = max(error, settings.tol) if math.isfinite(error) else settings.tol
    return min(settings.max_batch_size, math.ceil((spread / level) ** 2))


# a cell expected to hold this many samples of a batch is empty by chance with
# probability e^-10 < 1e-4: measured empty, it counts as empty
_RESOLVED_SAMPLES = 10.0


def _draw_batch(
    problem: SemiDiscreteProblem,
    settings: MonteCarloSettings,
    iteration: int,
    batch: int,
    device: torch.device,
) -> torch.Tensor:
    """The source samples (batch, d) of ``iteration``: two halves with independent seeds
    (independent Sobol scrambles), whose disagreement measures the sampling noise."""
    half = batch // 2
    return torch.cat(
        [
            problem.source.sample(
                size, seed=seed, qmc=settings.qmc, dtype=settings.dtype, device=device
            )
            for size, seed in (
                (half, settings.seed * 1_000_003 + 2 * iteration),
                (batch - half, settings.seed * 1_000_003 + 2 * iteration + 1),
            )
        ]
    )


def _converged(
    settings: MonteCarloSettings,
    error: float,
    noise: float,
    masses: torch.Tensor,
    nu: torch.Tensor,
    batch: int,
) -> bool:
    """The stopping rule: error and noise ≤ tol, no empty cell, cell errors within bound.

    A cell whose weight the batch resolves (ν_i · batch ≥ 10 expected samples) must hold
    a sample; a lighter one cannot be told from empty at this batch size.
    """
    if not (error <= settings.tol and noise <= settings.tol):
        return False
    if bool(((masses == 0) & (nu * batch >= _RESOLVED_SAMPLES)).any()):
        return False
    if settings.max_cell_error is None:
        return True
    return float(((masses - nu).abs() / nu).max()) <= settings.max_cell_error


# a solve whose error has not fallen by _PROGRESS in this many iterations has stagnated
_STAGNATION_ITERATIONS = 25
_PROGRESS = 0.01


def _measured_worse(s: _SolverState, error: float, noise: float) -> bool:
    """Whether h measured ``error`` exceeds the best measured error beyond both noises."""
    if not math.isfinite(s.best_error) or s.best_iteration == s.iteration:
        return False
    margin = 2.0 * math.hypot(noise, s.best_noise)
    return error > s.best_error + margin and error > 1.1 * s.best_error


@dataclass
class _Measurement:
    """What one Monte-Carlo batch measured at the current heights: the batch ``x``
    (M, d), its best cells ``best`` (M,), the cell masses ``masses`` (N,) against the
    target weights ``nu`` (N,), the L1 ``error``, its sampling ``noise``, the ``raw``
    (unpooled) error and the 1-based ``iteration``."""

    x: torch.Tensor
    best: torch.Tensor
    masses: torch.Tensor
    nu: torch.Tensor
    error: float
    noise: float
    raw: float
    iteration: int


def _update(s: _SolverState, settings: MonteCarloSettings, scorer: Scorer, m: _Measurement) -> None:
    """One step of ``settings.method`` (:data:`_RULES`) after the measurement ``m``.

    Updates the heights, the batch size and the step-size / momentum state in ``s``:
    the Jacobi rule keeps its own schedule; the others share :func:`_schedule` (stall
    count, step-size halving, batch growth) and then take their step.
    """
    if settings.method != "jacobi":
        _schedule(s, settings, m)
    _RULES[settings.method](s, settings, scorer, m)


def _schedule(s: _SolverState, settings: MonteCarloSettings, m: _Measurement) -> None:
    """Stall count, step-size halving (first-order rules) and batch growth."""
    improved = m.error < s.stall_reference * 0.98
    if improved:
        s.stall_reference, s.stalled = m.error, 0
    else:
        s.stalled += 1
    if s.stalled >= settings.patience and settings.method != "newton":
        s.lr *= 0.5  # a stalled first-order method is oscillating: shorten its steps
    noisy = m.noise > settings.tol or m.raw < 1.5 * m.noise
    if s.batch < settings.max_batch_size and (s.stalled >= settings.patience or noisy):
        s.batch = min(settings.max_batch_size, int(s.batch * settings.growth))
        s.stalled, s.stall_reference = 0, m.error
    elif s.stalled >= settings.patience:
        s.stalled = 0


def _newton_step(
    s: _SolverState, settings: MonteCarloSettings, scorer: Scorer, m: _Measurement
) -> None:
    """Damped Newton: h += damping · H⁻¹(ν − masses), with H the sampled Hessian of the
    energy; a step that raised the error is undone and the damping halved."""
    if s.step_from is not None:
        before = s.errors[s.step_from - 1]
        if m.error > max(1.1 * before, before + 2 * m.noise):
            # the last step overshot: go back and take a shorter one next time
            s.h.copy_(s.previous_h)
            s.damping = max(s.damping * 0.5, 1 / 64)
            s.step_from = None
            return
        if m.error < 0.9 * before:
            s.damping = min(1.0, s.damping * 2)
    s.step_from = m.iteration
    s.previous_h = s.h.clone()
    empty = m.masses == 0
    if bool(empty.any()):
        scorer.lift_empty_cells(s.h, empty, m.x, m.best)
    sub = m.x[: settings.hessian_samples]
    rhs = (m.nu - m.masses).cpu().numpy()
    delta = _hessian_step(sub, scorer, s.h, rhs, settings.slab_fraction)
    s.h += s.damping * torch.from_numpy(delta).to(device=s.h.device, dtype=s.h.dtype)


def _adam_step(
    s: _SolverState, settings: MonteCarloSettings, scorer: Scorer, m: _Measurement
) -> None:
    """Adam on the energy's gradient masses − ν."""
    grad = m.masses - m.nu
    beta1, beta2 = 0.9, 0.999
    s.adam_m.mul_(beta1).add_(grad, alpha=1 - beta1)
    s.adam_v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    m_hat = s.adam_m / (1 - beta1**m.iteration)
    v_hat = s.adam_v / (1 - beta2**m.iteration)
    s.h -= (s.lr * m_hat / (v_hat.sqrt() + 1e-12 / m.nu.shape[0])).to(s.h.dtype)


def _nesterov_step(
    s: _SolverState, settings: MonteCarloSettings, scorer: Scorer, m: _Measurement
) -> None:
    """Nesterov: h_{k+1} = z_k − lr·N·g(z_k); z_{k+1} = h_{k+1} + k/(k+3)(h_{k+1} − h_k),
    with the momentum restarted whenever the error grows (O'Donoghue, Candès 2015)."""
    grad = m.masses - m.nu
    if len(s.errors) > 1 and m.error > s.errors[-2]:
        s.momentum_start = m.iteration
        s.nesterov_prev = s.h.clone()
    empty = m.masses == 0
    if bool(empty.any()):
        scorer.lift_empty_cells(s.h, empty, m.x, m.best)
        s.nesterov_prev = s.h.clone()
    new_h = s.h - (s.lr * m.nu.shape[0] * grad).to(s.h.dtype)
    k = m.iteration - s.momentum_start
    s.h = new_h + (k / (k + 3)) * (new_h - s.nesterov_prev)
    s.nesterov_prev = new_h


# weight of the pooled cell statistics of earlier batches, per batch of age
_STATISTICS_DECAY = 0.5
# samples of pseudo-count that shrink a cell's facet-based τ toward its mean score gap
_SHRINK_SAMPLES = 4.0


def _facet_statistics(
    owner: torch.Tensor,
    second: torch.Tensor,
    gaps: torch.Tensor,
    n_targets: int,
    slab_fraction: float,
) -> tuple[float, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-cell statistics of samples with best cell ``owner`` and runner-up ``second``
    (M,) (−1: none) and score gaps s_1 − s_2 ``gaps`` (M,) float64: ε (the
    ``slab_fraction`` quantile of the gaps), then (N,) float64 the samples in each cell,
    those within ε of one of its facets (counted for both cells), and the gap sums."""
    eps = max(float(torch.quantile(gaps[: 2**20], slab_fraction)), 1e-300)
    near = gaps < eps
    count = torch.bincount(owner, minlength=n_targets).double()
    slab = torch.bincount(owner[near], minlength=n_targets).double()
    runner_up = second[near]
    slab += torch.bincount(runner_up[runner_up >= 0], minlength=n_targets).double()
    gap_sum = torch.bincount(owner, weights=gaps, minlength=n_targets)
    return eps, count, slab, gap_sum


def _jacobi_tau(
    slab_mass: torch.Tensor, slab_count: torch.Tensor, gap_sum: torch.Tensor, count: torch.Tensor
) -> torch.Tensor:
    """τ_i = (2 ε #cell_i + c ḡ_i) / (#slab_i + c), ḡ_i = Σ gaps_i / (#cell_i + 1), c = 4."""
    mean_gap = gap_sum / (count + 1)
    return (slab_mass + _SHRINK_SAMPLES * mean_gap) / (slab_count + _SHRINK_SAMPLES)


def _jacobi_step(
    s: _SolverState, settings: MonteCarloSettings, scorer: Scorer, m: _Measurement
) -> None:
    """The log-domain diagonal Newton step of the "jacobi" rule, then the next batch size.

    ``m.x`` (M, d) is the batch that measured ``m.masses`` (N,) at the current h. On its
    first ``hessian_samples`` rows the two best scores give, per cell, the samples
    inside it, their score gaps s_1 − s_2, and those within ε (the ``slab_fraction``
    quantile of the gaps) of a facet. Pooled over batches (weights halving with age):

        τ_i = (2 ε #cell_i + c ḡ_i) / (#slab_i + c),   ḡ_i = Σ gaps_i / (#cell_i + 1)

    with c = 4 samples: the facet estimate μ_i / H_ii where a cell has many slab
    samples, its mean gap where it has few (0 for a cell never sampled). Then
    h_i −= ω τ_i log(μ̂_i / ν_i), with μ̂_i floored at half a sample; cells left empty
    by the step are lifted until they hold a sample (the c-transform on the samples).
    """
    x, masses, nu, error = m.x, m.masses, m.nu, m.error
    n_targets = nu.shape[0]
    sub = x[: settings.hessian_samples]
    values, cells = scorer.top2(sub, s.h)
    owner = cells[:, 0]
    gaps = (values[:, 0] - values[:, 1]).double()
    gaps = torch.where(cells[:, 1] < 0, torch.zeros_like(gaps), gaps)  # a single target
    eps, count, slab, gap_sum = _facet_statistics(
        owner, cells[:, 1], gaps, n_targets, settings.slab_fraction
    )
    decay = _STATISTICS_DECAY
    s.cell_count.mul_(decay).add_(count)
    s.gap_sum.mul_(decay).add_(gap_sum)
    s.slab_count.mul_(decay).add_(slab)
    s.slab_mass.mul_(decay).add_(2 * eps * count)
    tau = _jacobi_tau(s.slab_mass, s.slab_count, s.gap_sum, s.cell_count)
    batch = x.shape[0]
    log_ratio = torch.log(masses.clamp_min(0.5 / batch) / nu)
    delta = -tau * log_ratio
    delta -= delta.mean()
    s.h += (s.damping * delta).to(s.h.dtype)
    empty = masses == 0
    if bool(empty.any()):
        _, top = scorer.argmax(sub, s.h)  # u_h on the subset after the step
        scorer.lift_empty_cells(s.h, empty, sub, top)
    # the next batch: sampling noise ∝ 1/sqrt(batch), aimed at noise_ratio × the error
    # (never below tol / 2: the stopping rule needs noise ≤ tol); doubled on a stall
    measured_noise = s.noises[-1]
    target = settings.noise_ratio * max(min(error, s.best_error), settings.tol / 2)
    recent = s.errors[-3:]
    stalled = len(s.errors) > 3 and min(recent) > 0.95 * min(s.errors[:-3])
    # a met L1 tolerance with cells outside max_cell_error: resolve the small cells better
    cells_pending = settings.max_cell_error is not None and error <= settings.tol
    factor = max(
        2.0 if stalled or cells_pending else 1.0, (measured_noise / max(target, 1e-300)) ** 2
    )
    grown = math.ceil(batch * min(factor, 4.0))
    s.batch = min(settings.max_batch_size, max(s.batch, grown))


# "pool": candidate cells cached per pool sample, and the most inner steps per batch.
# From d = 24 on each cell has so many neighbours that the 16th score lies only ~4
# median gaps below the second (128,000 codes in d = 32), and a few steps' moves void
# the bound of 15 % of the pool per step; the 64th lies ~8 gaps below, and almost no
# sample needs re-scoring. Below that, scoring costs little per target and a long
# candidate list costs more to keep than it saves.
POOL_CANDIDATES = 16
POOL_CANDIDATES_HIGH_DIM = 64
POOL_HIGH_DIM = 24
_POOL_INNER_STEPS = 30
# the inner steps aim the pool's own error at this fraction of its sampling floor (the
# true error of its solution is then about the floor: smaller aims buy little)
_POOL_TARGET = 0.5


class _SamplePool:
    """Every batch drawn so far, with each sample's best candidate cells (the "pool" rule).

    Holds x (M, d), the K candidate cells ``cells`` (M, K) of each sample, their raw
    scores ``raw`` (M, K) = <x, y_c> (elementwise products summed in torch, so they do
    not depend on when a sample was cached), and a certificate: ``bound`` (M,) is the
    K-th best score when the sample was cached at heights H_e (its ``epoch``), so every
    non-candidate j has <x, y_j> + H_e,j ≤ bound. At heights h,

        <x, y_j> + h_j ≤ bound + D_e,      D_e = max_j (h_j − H_e,j),

    hence the two best candidates are the sample's two best cells whenever the second
    of them scores ≥ bound + D_e (+ a rounding slack). Samples that fail are re-scored
    against every target (and cached anew), so :meth:`top2` is exact: the pool is a
    cache, and what the solver computes from it does not depend on its history. On the
    CPU the raw scores and the re-ranking run in C kernels (``gather_dot``,
    ``cand_top2``: one pass over M·K entries). Memory: M (d + 2K + 2) numbers.
    """

    def __init__(self, scorer: Scorer, k: int, limit: int):
        self.scorer, self.k, self.limit = scorer, k, limit
        y = scorer.targets
        self.targets = y
        self.x = y.new_empty((0, y.shape[1]))
        self.cells = torch.empty((0, k), dtype=torch.int32, device=y.device)
        self.raw = y.new_empty((0, k))
        self.bound = y.new_empty(0)
        self.epoch = torch.empty(0, dtype=torch.long, device=y.device)
        self.sizes: list[int] = []  # samples per batch, oldest first
        self.epochs: list[torch.Tensor] = []
        self.rescored = 0  # samples re-scored against every target (a cost measure)
        # |fma-chain rounding| of a score ≤ d·u·(|x||y| + |h|), for the kernel and for torch
        unit = torch.finfo(y.dtype).eps
        self._slack_scale = 2.0 * y.shape[1] * unit
        self._y_norm = float(y.norm(dim=1).max()) if y.shape[0] else 0.0
        self._x_norm = 0.0
        # the C kernels for the cached cells (the same bits however the rows are split)
        self._native = y.device.type == "cpu" and _native.available() and y.is_contiguous()

    @property
    def size(self) -> int:
        return self.x.shape[0]

    def _raw_scores(self, x: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        if self._native:
            return _native.gather_dot(x.contiguous(), self.targets, cells.to(torch.int32))
        out = x.new_empty(cells.shape)
        step = max(1, 2**22 // (cells.shape[1] * x.shape[1]))
        for start in range(0, x.shape[0], step):
            stop = start + step
            out[start:stop] = (self.targets[cells[start:stop]] * x[start:stop, None, :]).sum(-1)
        return out

    def _epoch(self, h: torch.Tensor) -> int:
        self.epochs.append(h.clone())
        return len(self.epochs) - 1

    def add(self, x: torch.Tensor, values: torch.Tensor, cells: torch.Tensor, h: torch.Tensor):
        """Append a batch ``x`` (B, d) whose top-K ``values``/``cells`` (B, K) were taken at h."""
        # forget the oldest batches first, so that memory never holds both
        while self.sizes and self.size + x.shape[0] > self.limit:
            drop = self.sizes.pop(0)
            for name in ("x", "cells", "raw", "bound", "epoch"):
                setattr(self, name, getattr(self, name)[drop:].clone())
        e = self._epoch(h)
        self._x_norm = max(self._x_norm, float(x.norm(dim=1).max()))
        self.x = torch.cat([self.x, x])
        self.cells = torch.cat([self.cells, cells.to(torch.int32)])
        self.raw = torch.cat([self.raw, self._raw_scores(x, cells)])
        self.bound = torch.cat([self.bound, values[:, -1]])
        self.epoch = torch.cat([self.epoch, torch.full((x.shape[0],), e, device=x.device)])
        self.sizes.append(x.shape[0])
        self._compact()

    def state(self) -> dict[str, torch.Tensor]:
        """The cache (not the samples, which are redrawn from their seeds) for a checkpoint."""
        return {
            "cells": self.cells.cpu(),
            "bound": self.bound.cpu(),
            "epoch": self.epoch.cpu(),
            "snapshots": torch.stack(self.epochs).cpu(),
            "rescored": torch.tensor(self.rescored),
        }

    def restore(self, x: torch.Tensor, sizes: list[int], state: dict[str, torch.Tensor]) -> None:
        """Refill the pool with its redrawn samples ``x`` and a checkpoint's cache."""
        device = self.targets.device
        self.x, self.sizes = x, list(sizes)
        self.cells = state["cells"].to(device=device, dtype=torch.int32)
        n_targets = self.targets.shape[0]
        cells = self.cells
        if cells.shape != (x.shape[0], self.k) or (
            cells.numel() and not 0 <= int(cells.min()) <= int(cells.max()) < n_targets
        ):
            raise ValueError(
                f"the checkpoint's pool cache does not fit its {x.shape[0]} samples and "
                f"{n_targets} targets (cells of shape {tuple(self.cells.shape)})"
            )
        self.bound = state["bound"].to(device=device, dtype=self.targets.dtype)
        self.epoch = state["epoch"].to(device=device, dtype=torch.long)
        self.epochs = list(state["snapshots"].to(device=device, dtype=self.targets.dtype))
        self.rescored = int(state["rescored"])
        self.raw = self._raw_scores(x, self.cells.long())
        if x.shape[0]:
            self._x_norm = float(x.norm(dim=1).max())

    def lift_empty_cells(
        self, h: torch.Tensor, empty: torch.Tensor, best: torch.Tensor, step: float
    ) -> torch.Tensor:
        """Heights (N,) at which each ``empty`` cell just wins its most favourable sample
        among those caching it as a candidate: h_i = min (u_h(x) − <x, y_i>) over them
        (+ 1e-3 ``step``), ``best`` (M,) being u_h at the pool samples; a cell no sample
        caches rises by ``step`` (the solver caps every move at that anyway). The other
        heights are returned unchanged. O(M K), where scanning all samples against the
        empty cells costs O(M n_empty d) and, early on, most of a step."""
        hit = empty[self.cells]
        rows, cols = torch.nonzero(hit, as_tuple=True)
        ids = self.cells[rows, cols].long()
        gap = best[rows] - self.raw[rows, cols]
        lowest = torch.full_like(h, torch.inf).scatter_reduce_(0, ids, gap, "amin")
        lifted = torch.where(torch.isfinite(lowest), lowest + 1e-3 * step, h + step)
        return torch.where(empty, lifted, h)

    def _compact(self) -> None:
        """Drop height snapshots no sample refers to any more."""
        used = torch.nonzero(torch.bincount(self.epoch, minlength=len(self.epochs))).flatten()
        if used.shape[0] == len(self.epochs):
            return
        remap = torch.full((len(self.epochs),), -1, dtype=torch.long, device=used.device)
        remap[used] = torch.arange(used.shape[0], device=used.device)
        self.epochs = [self.epochs[int(i)] for i in used]
        self.epoch = remap[self.epoch]

    def _candidate_top2(
        self, h: torch.Tensor, skip: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The best two cached candidates at h not marked in ``skip`` (N,): (M, 2), (M, 2)."""
        if self._native:
            # the cells are the scorer's own or range-checked in restore()
            return _native.cand_top2(self.raw, self.cells, h.contiguous(), skip, checked=True)
        vals = (self.raw + h[self.cells]).masked_fill_(skip[self.cells], -torch.inf)
        values, column = vals.topk(2, dim=1)
        return values, self.cells.gather(1, column).long()

    def _exact_size(
        self, drift: torch.Tensor, h: torch.Tensor, slack: float, unmasked: torch.Tensor
    ) -> tuple[int, torch.Tensor]:
        """How many of the most-risen cells to score exactly, and the cells by max rise;
        ``unmasked`` (M, 2) are the best two candidate scores with no cell left out.

        Predicts, for each n, the samples whose second candidate would fail the bound
        loosened by the largest rise outside the first n cells (the candidates unmasked,
        which is close enough to choose n), and takes the n of least predicted cost
        4 n + (uncertified samples) · N / M, both in units of M scores: a sample
        re-scored now is certified for several steps again, while the exact cells must
        be scored at every step (4: about as many steps as a re-scored sample lasts).
        """
        n_targets = h.shape[0]
        order = drift.max(0).values.argsort(descending=True, stable=True)
        if n_targets < 4 * _POOL_EXACT_FRACTION or self.size == 0:
            return 0, order
        # the largest rise of each epoch outside the first n cells of `order`, for all n
        outside = drift[:, order].flip(1).cummax(1).values.flip(1)  # (E, N): cells n..N-1
        margin = unmasked[:, 1] - self.bound - slack
        best_n, best_cost = 0, math.inf
        n = 0
        while True:
            uncertified = int((margin < outside[:, n][self.epoch]).sum())
            cost = _POOL_EXACT_HORIZON * n + uncertified * n_targets / self.size
            if cost < best_cost:
                best_n, best_cost = n, cost
            if n >= n_targets // _POOL_EXACT_FRACTION:
                break
            n = max(n * 2, n_targets >> 10, 1)
        return best_n, order

    def top2(
        self, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each pool sample's best two cells at heights h, exactly: owner, second (M,) long,
        best score u_h(x) (M,) and gap s_1 − s_2 (M,) float64.

        The n cells whose heights rose most since some sample was cached are scored
        exactly for every sample (O(M n d)); the bound D_e then runs over the other cells
        only, so a few far-moving cells do not void every certificate. n is chosen
        among 0 and N/2^10 ... N/2^5 to minimise that cost plus the full re-scoring
        (O(N d) per sample) of the samples it would leave uncertified.
        """
        drift = torch.stack([h - snapshot for snapshot in self.epochs])  # (E, N)
        n_targets = h.shape[0]
        slack = self._slack_scale * (
            self._x_norm * self._y_norm + float(h.abs().max()) + float(self.bound.abs().max())
        )
        in_exact = torch.zeros(n_targets, dtype=torch.bool, device=h.device)
        values, cells = self._candidate_top2(h, in_exact)
        n_exact, order = self._exact_size(drift, h, slack, values)
        if n_exact:
            exact = order[:n_exact]
            in_exact[exact] = True
            lift = drift.masked_fill(in_exact, -torch.inf).max(1).values
            values, cells = self._candidate_top2(h, in_exact)
            kernel = ScoreKernel(self.targets[exact])
            exact_values, exact_cells = kernel.topk(self.x, h[exact].contiguous(), 2)
            both = torch.cat([values, exact_values], 1)
            values, column = both.topk(2, dim=1)
            cells = torch.cat([cells, exact[exact_cells]], 1).gather(1, column)
        else:
            lift = drift.max(1).values
        bad = torch.nonzero(values[:, 1] < self.bound + lift[self.epoch] + slack).flatten()
        if bad.numel():
            x = self.x[bad]
            fresh_values, fresh_cells = self.scorer.topk(x, h, self.k)
            e = self._epoch(h)
            self.cells[bad] = fresh_cells.to(torch.int32)
            self.raw[bad] = self._raw_scores(x, fresh_cells)
            self.bound[bad] = fresh_values[:, -1]
            self.epoch[bad] = e
            self.rescored += bad.numel()
            values[bad], cells[bad] = fresh_values[:, :2], fresh_cells[:, :2]
            self._compact()
        gaps = (values[:, 0] - values[:, 1]).double()
        return cells[:, 0], cells[:, 1], values[:, 0], gaps


# the pool scores at most this fraction (1/32) of the cells, those that moved most, exactly,
# counting their cost over this many steps against a one-off re-scoring
_POOL_EXACT_FRACTION = 32
_POOL_EXACT_HORIZON = 4


# the step of each Monte-Carlo rule but "pool" (which steps on its own pooled statistics)
_RULES = {
    "jacobi": _jacobi_step,
    "newton": _newton_step,
    "adam": _adam_step,
    "nesterov": _nesterov_step,
}


def _pool_step(
    s: _SolverState,
    settings: MonteCarloSettings,
    pool: _SamplePool,
    nu: torch.Tensor,
    error: float,
    end: float | None,
    seconds_per_scored: float,
) -> None:
    """The "pool" rule: jacobi steps on every sample drawn so far, then the next batch size.

    The pool's cell masses are exact functions of h (see :class:`_SamplePool`), so up
    to ``_POOL_INNER_STEPS`` log-domain diagonal Newton steps (the "jacobi" formula with
    the pool's own facet statistics) are taken per batch, each costing O(M K) instead of
    a fresh batch's O(M N d), until the pool's error is ``_POOL_TARGET`` times its
    sampling floor sqrt(2/π) Σ sqrt(ν_i/M) or stops falling. Since the pool grows, its
    solution approaches the true one as a sample-average approximation does; every
    batch first measures h fresh before it joins the pool. Empty cells are lifted to
    win their most favourable sample, and no height moves by more than ``_POOL_CAP``
    median score gaps per step (long moves void the cached bounds of every sample).

    With a time limit (``end``, a ``time.perf_counter()`` instant) the steps stop in
    time for a batch that measures their result (:func:`_measuring_batch`, at
    ``seconds_per_scored`` each, at most a quarter of the limit), and, unless the time
    left could not grow the pool by half in another batch, after a third of the time
    left: the rest pays for that batch, whose samples the pool needs more than steps.
    """
    n_targets = nu.shape[0]
    m = pool.size
    floor = noise_floor(nu, m)
    h = s.h.clone()
    history: list[float] = []
    velocity = torch.zeros(n_targets, dtype=torch.float64, device=h.device)
    stop_at = None
    if end is not None:
        now = time.perf_counter()

        def last_moment(level: float) -> float:
            batch = _measuring_batch(nu, level, settings)
            return end - min(batch * seconds_per_scored, 0.25 * settings.time_limit)

        left = last_moment(max(error, floor)) - now
        final = 2 * left / (3 * seconds_per_scored) < m / 2
        stop_at = now + (left if final else left / 3)
    for _ in range(_POOL_INNER_STEPS):
        if end is not None and time.perf_counter() > min(
            stop_at, last_moment(max(history[-1] if history else error, floor))
        ):
            break  # before re-ranking too: a step begun now would end past the limit
        owner, second, best, gaps = pool.top2(h)
        count = torch.bincount(owner, minlength=n_targets).double()
        masses = count / m
        pool_error = float((masses - nu).abs().sum())
        history.append(pool_error)
        if pool_error <= _POOL_TARGET * floor:
            break
        if len(history) > 3 and pool_error > 0.98 * min(history[:-3]):
            break  # no longer falling
        eps, _, slab, gap_sum = _facet_statistics(
            owner, second, gaps, n_targets, settings.slab_fraction
        )
        tau = _jacobi_tau(2 * eps * count, slab, gap_sum, count)
        delta = -tau * torch.log(masses.clamp_min(0.5 / m) / nu)
        empty = count == 0
        delta[empty] = 0.0
        step = _POOL_DAMPING * s.damping * delta
        cap = _POOL_CAP * float(gaps[: 2**20].median())
        if bool(empty.any()):  # to win their most favourable cached sample
            step += (pool.lift_empty_cells(h, empty, best, cap) - h).double()
        if len(history) > 1 and pool_error > history[-2]:
            velocity.zero_()  # heavy ball restarted when a step made things worse
        step += _POOL_MOMENTUM * velocity
        step -= step.median()
        if cap > 0:
            step.clamp_(-cap, cap)
        velocity = step
        h += step.to(h.dtype)
    s.h = h
    s.pool_errors.append(history[-1] if history else math.nan)
    # the next batch: as for "jacobi" (noise_ratio × the error), and at least doubled:
    # the pool's floor, and with it the error of its solution, falls as 1/sqrt(M)
    measured_noise = s.noises[-1]
    target = settings.noise_ratio * max(min(error, s.best_error), settings.tol / 2)
    factor = max(2.0, (measured_noise / max(target, 1e-300)) ** 2)
    largest = min(settings.max_batch_size, settings.pool_size)  # one batch never outgrows it
    s.batch = min(largest, max(s.batch, math.ceil(s.batch * min(factor, 4.0))))


# no height moves by more than this many median score gaps per inner step: the bound
# of a cached sample loosens by the largest move since it was cached, so long moves
# void certificates (and force re-scoring) everywhere
_POOL_CAP = 2.0
# damping of the pool's inner steps (the pool's statistics are exact, not pooled)
_POOL_DAMPING = 0.7
# heavy-ball momentum of the inner steps (restarted when a step raises the pool's
# error): 128,000 codes in d = 32, one 1M-sample pool, error 1.11 -> 0.20 in 10 steps
# where plain steps take 24 (many neighbours per cell: a diagonal step alone is slow)
_POOL_MOMENTUM = 0.5


def energy(problem: SemiDiscreteProblem, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sample estimate of E(h) = ∫ max_i(<x, y_i> + h_i) dμ − Σ_i h_i ν_i on the points ``x``.

    Differentiable in ``h`` (autograd gives the same value as :func:`energy_gradient`).
    """
    y = problem.targets.to(dtype=x.dtype, device=x.device)
    nu = problem.weights.to(dtype=x.dtype, device=x.device)
    return torch.addmm(h, x, y.t()).amax(1).mean() - (h * nu).sum()


def energy_gradient(problem: SemiDiscreteProblem, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Hand-written gradient of :func:`energy`: ∇_i E = μ̂(W_i(h)) − ν_i (cell frequencies − ν)."""
    y = problem.targets.to(dtype=x.dtype, device=x.device)
    cells = ScoreKernel(y).argmax(x, h.to(x.dtype))[0]
    masses = torch.bincount(cells, minlength=problem.n_targets).to(x.dtype) / x.shape[0]
    return masses - problem.weights.to(dtype=x.dtype, device=x.device)
