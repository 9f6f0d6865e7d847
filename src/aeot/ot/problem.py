"""The semi-discrete optimal transport problem: a source measure and weighted Dirac targets."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from aeot._validation import as_float_tensor, as_working_tensor
from aeot.ot.sources import BoxUniform, Source


@dataclass(frozen=True, eq=False)
class SemiDiscreteProblem:
    """Transport a source measure μ on R^d onto ν = Σ_i ν_i δ_{y_i}.

    For the quadratic cost the optimal map is ∇u_h with the Brenier potential
    u_h(x) = max_i <x, y_i> + h_i, where h minimises the convex energy

        E(h) = ∫ u_h dμ − Σ_i h_i ν_i,     ∇_i E(h) = μ(W_i(h)) − ν_i,

    W_i(h) = {x : <x, y_i> + h_i ≥ <x, y_j> + h_j ∀j} the power cell of y_i
    (Gu, Luo, Sun, Yau 2016; Lei et al. 2019).

    Parameters
    ----------
    targets : (N, d) array
        Distinct target points y_i. Kept as float32 or float64: half-precision
        floating targets (float16, bfloat16, float8) are promoted to float32, which
        holds each of their values exactly; integer targets become float32 when it
        holds every value exactly (all |y| ≤ 2^24), else float64, and integers
        beyond 2^53 are refused. Complex, boolean and non-numeric input is a
        ``TypeError``. Targets closer than the working precision can resolve (see
        :meth:`unresolvable_pair`) raise a :class:`NearDuplicateTargetsWarning` naming
        the pair: the solver cannot place the facet between their cells and may stall.
    weights : (N,) array, optional
        Target masses ν_i > 0 summing to one, converted to float64. Uniform when
        omitted.
    source : Source, optional
        The source measure; uniform on [0, 1]^d when omitted.
    """

    targets: torch.Tensor
    weights: torch.Tensor
    source: Source

    def __init__(self, targets, weights=None, source: Source | None = None):
        if isinstance(targets, torch.Tensor):
            targets = targets.detach()  # problem data, not parameters: no autograd graph
        if isinstance(weights, torch.Tensor):
            weights = weights.detach()
        y = as_working_tensor(targets, "targets", ndim=2)
        n, d = y.shape
        if weights is None:
            w = torch.full((n,), 1.0 / n, dtype=torch.float64)
        else:
            w = as_float_tensor(weights, "weights", ndim=1, dtype=torch.float64)
            if w.shape[0] != n:
                raise ValueError(f"weights has {w.shape[0]} entries but there are {n} targets")
            if bool((w <= 0).any()):
                raise ValueError(f"weights must be positive; {int((w <= 0).sum())} are <= 0")
            total = float(w.sum())
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"weights must sum to 1, they sum to {total:.8g}")
        if source is None:
            source = BoxUniform(d)
        if not isinstance(source, Source):
            raise TypeError(f"source must be an aeot.ot Source, got {type(source).__name__}")
        if source.dim != d:
            raise ValueError(f"source has dimension {source.dim} but targets have dimension {d}")
        _check_distinct(y)
        object.__setattr__(self, "targets", y)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "source", source)
        self._warn_near_duplicates()

    def unresolvable_pair(self, dtype: torch.dtype | None = None) -> tuple[int, int, float] | None:
        """Two targets that working precision ``dtype`` cannot separate, or None.

        Scores <x, y_i> + h_i are rounded to about ε·S, with ε the machine epsilon of
        ``dtype`` (default: the targets' dtype) and S = max |y_ij| the targets'
        magnitude. Targets with ‖y_i − y_j‖_∞ ≤ 16 ε S differ by a dozen or so rounding
        units at most: the facet between their cells cannot be placed, so their masses
        cannot be balanced and a solver stalls. Returns ``(i, j, ‖y_i − y_j‖_∞)`` for
        the closest such pair found (i < j), in O(N log N) time (:func:`_near_pair`).
        """
        dtype = self.targets.dtype if dtype is None else dtype
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        scale = float(self.targets.abs().max())
        if self.n_targets < 2 or scale == 0.0:
            return None
        return _near_pair(self.targets, _NEAR_ULPS * torch.finfo(dtype).eps * scale)

    def _warn_near_duplicates(self) -> None:
        """Warn, naming the pair, when float32 (the Monte-Carlo solver's default working
        precision) or the targets' own precision cannot separate two targets."""
        pair = self.unresolvable_pair(torch.float32)  # the wider tolerance of the two
        if pair is None:
            return
        i, j, gap = pair
        scale = float(self.targets.abs().max())
        own = self.targets.dtype
        if own == torch.float32 or gap <= _NEAR_ULPS * torch.finfo(own).eps * scale:
            what, advice = f"{own} cannot", "rescale or recentre the targets"
        else:
            what = "float32 (the Monte-Carlo solver's default dtype) cannot"
            advice = "solve with dtype=torch.float64"
            spread = float((self.targets.amax(0) - self.targets.amin(0)).max())
            if gap < 1e-9 * spread:
                advice += (
                    f" (even there the pair is {gap / spread:.2g} of the targets' spread "
                    "apart: an ill-conditioned facet that may still stall the solver)"
                )
        warnings.warn(
            f"targets at rows [{i}, {j}] differ by only {gap:.3g} (largest coordinate "
            f"difference) at magnitude {scale:.3g}: {what} separate their cells, so the "
            f"solver may stall short of its tolerance. Merge them (add their weights) if "
            f"they are one point, or {advice}",
            NearDuplicateTargetsWarning,
            stacklevel=3,
        )

    @property
    def n_targets(self) -> int:
        return self.targets.shape[0]

    @property
    def dim(self) -> int:
        return self.targets.shape[1]


class NearDuplicateTargetsWarning(RuntimeWarning):
    """Two targets are too close for the working precision to separate their cells."""


_NEAR_ULPS = 16  # targets within this many rounding units of each other are inseparable


def _near_pair(
    y: torch.Tensor, tol: float, *, rows: int = 2**16, max_offset: int = 256
) -> tuple[int, int, float] | None:
    """The closest pair of rows of ``y`` (N, d) with ‖y_i − y_j‖_∞ ≤ ``tol`` found, or None.

    Rows are sorted by a fixed random projection p·y with ‖p‖_1 = 1, so that
    |p·(y_i − y_j)| ≤ ‖y_i − y_j‖_∞: a pair within ``tol`` is within ``tol`` in that
    order too. Rows k places apart in the order are compared for k = 1, 2, ... until
    no projections k apart are within ``tol`` (then no pair further apart can be),
    or ``max_offset`` (a best-effort bound for dense clusters). The projection is
    computed in float64 in chunks of ``rows``: O(N) extra memory.
    """
    n, d = y.shape
    gen = torch.Generator().manual_seed(20240612)
    p = torch.rand(d, generator=gen, dtype=torch.float64) + 0.5
    p = p / p.sum()
    proj = torch.cat([part.detach().cpu().double() @ p for part in y.split(rows)])
    slack = tol + 4 * d * torch.finfo(torch.float64).eps * float(proj.abs().max())
    order = torch.argsort(proj)
    sorted_proj = proj[order]
    best: tuple[int, int, float] | None = None
    for k in range(1, min(n, max_offset + 1)):
        close = torch.nonzero(sorted_proj[k:] - sorted_proj[:-k] <= slack).flatten()
        if close.numel() == 0:
            break
        a, b = order[close], order[close + k]
        gaps = (y[a].double() - y[b].double()).abs().amax(1).cpu()
        hit = torch.nonzero(gaps <= tol).flatten()
        if hit.numel():
            m = int(hit[gaps[hit].argmin()])
            if best is None or float(gaps[m]) < best[2]:
                i, j = sorted((int(a[m]), int(b[m])))
                best = (i, j, float(gaps[m]))
    return best


_INT_OF_SAME_SIZE = {8: torch.int64, 4: torch.int32, 2: torch.int16}


def _row_keys(y: torch.Tensor, rows: int = 2**13) -> torch.Tensor:
    """A 64-bit key per row of ``y`` (N, d), equal for equal rows: Σ_j bits(y_ij) · w_j.

    The weights w are fixed random odd integers and the sum wraps modulo 2^64. Built
    chunk-wise, so it needs O(rows · d) memory besides the (N,) keys.
    """
    int_type = _INT_OF_SAME_SIZE[y.element_size()]
    gen = torch.Generator().manual_seed(20240611)
    weights = torch.randint(-(2**62), 2**62, (y.shape[1],), generator=gen) | 1
    keys = torch.empty(y.shape[0], dtype=torch.int64)
    for start in range(0, y.shape[0], rows):
        part = y[start : start + rows].detach().cpu() + 0.0  # −0.0 → +0.0: equal values, equal bits
        keys[start : start + rows] = (part.view(int_type).long() * weights).sum(1)
    return keys


def _check_distinct(y: torch.Tensor) -> None:
    """Duplicate targets share one power cell, so their masses cannot be separated.

    Rows are hashed (:func:`_row_keys`) and sorted by key; only rows with equal keys
    are compared exactly, so the check takes O(N log N) time and O(N) memory.
    """
    if y.shape[0] < 2:
        return
    keys = _row_keys(y)
    order = torch.argsort(keys)
    candidates = torch.nonzero(keys[order[1:]] == keys[order[:-1]]).flatten()
    if candidates.numel() == 0:
        return
    first, second = order[candidates], order[candidates + 1]
    equal = torch.cat(
        [
            (y[a] == y[b]).all(1).cpu()
            for a, b in zip(first.split(2**15), second.split(2**15), strict=True)
        ]
    )
    if not bool(equal.any()):
        return
    row = int(torch.minimum(first[equal], second[equal]).min())
    same_key = torch.nonzero(keys == keys[row]).flatten()
    rows = same_key[(y[same_key] == y[row]).all(1).cpu()][:5].tolist()
    raise ValueError(f"duplicate targets at rows {rows}: merge them and add their weights")
