"""The semi-discrete optimal transport problem: a source measure and weighted Dirac targets."""

from __future__ import annotations

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
        ``TypeError``.
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

    @property
    def n_targets(self) -> int:
        return self.targets.shape[0]

    @property
    def dim(self) -> int:
        return self.targets.shape[1]


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
