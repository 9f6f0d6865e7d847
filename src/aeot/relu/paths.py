"""Exact 1-D cell decomposition along a segment or polyline in input space.

Along a path ``x(τ)`` the pre-activations of every layer are, on each interval
found so far, affine in ``τ``; each neuron changes sign at most once per interval,
at ``τ* = -c / a`` for ``z = a τ + c``.  Inserting these breakpoints layer by layer
gives the exact intervals of constant activation pattern, i.e. the linear pieces
of the network along the path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aeot.relu.network import ReluNetwork, as_relu_network

__all__ = ["PathDecomposition", "count_path_pieces", "decompose_path", "sampled_path_count"]


@dataclass(frozen=True)
class PathDecomposition:
    """Intervals of constant activation pattern along a polyline.

    The polyline ``p_0, ..., p_{m-1}`` is parametrised by ``τ ∈ [0, m-1]``:
    ``x(τ) = p_k + (τ - k)(p_{k+1} - p_k)`` for ``τ ∈ [k, k+1]``.

    Attributes
    ----------
    network : ReluNetwork
    points : np.ndarray, shape (m, d)
        The polyline's vertices.
    intervals : np.ndarray, shape (K, 2)
        Consecutive ``[τ_lo, τ_hi]`` intervals (also split at polyline vertices).
    patterns : list of np.ndarray of bool, shapes (K, n_l)
        Activation bits on each interval, one array per layer with neurons.
    maps : np.ndarray, shape (K, 2, d_out)
        ``f(x(τ)) = [τ, 1] @ maps[k]`` on interval ``k``.
    """

    network: ReluNetwork
    points: np.ndarray
    intervals: np.ndarray
    patterns: list[np.ndarray]
    maps: np.ndarray

    @property
    def n_intervals(self) -> int:
        return int(self.intervals.shape[0])

    @property
    def pattern_matrix(self) -> np.ndarray:
        """All bits of each interval, bool (K, n_neurons)."""
        if not self.patterns:
            return np.zeros((self.n_intervals, 0), dtype=bool)
        return np.concatenate(self.patterns, axis=1)

    @property
    def piece_starts(self) -> np.ndarray:
        """Indices of the intervals where a new piece starts (pattern differs from the
        previous interval), shape (n_pieces,)."""
        bits = self.pattern_matrix
        change = np.ones(self.n_intervals, dtype=bool)
        change[1:] = (bits[1:] != bits[:-1]).any(axis=1)
        return np.flatnonzero(change)

    @property
    def n_pieces(self) -> int:
        """Number of linear pieces along the path: maximal sub-paths on which the
        activation pattern is constant (consecutive equal patterns merged, also
        across polyline vertices)."""
        return int(self.piece_starts.size)

    @property
    def breakpoints(self) -> np.ndarray:
        """Parameters ``τ`` where the activation pattern changes, shape (n_pieces - 1,)."""
        return self.intervals[self.piece_starts[1:], 0]

    @property
    def breakpoint_points(self) -> np.ndarray:
        """The breakpoints as input points, shape (n_pieces - 1, d)."""
        return self.point_at(self.breakpoints)

    @property
    def n_regions_visited(self) -> int:
        """Number of distinct activation patterns met along the path."""
        bits = self.pattern_matrix
        if bits.shape[1] == 0:
            return 1
        return int(np.unique(np.packbits(bits, axis=1), axis=0).shape[0])

    def point_at(self, tau) -> np.ndarray:
        """Input points ``x(τ)`` for parameters ``tau`` (shape (..., ) → (..., d))."""
        tau = np.asarray(tau, dtype=np.float64)
        m = self.points.shape[0]
        k = np.clip(np.floor(tau).astype(np.int64), 0, m - 2)
        frac = (tau - k)[..., None]
        return self.points[k] + frac * (self.points[k + 1] - self.points[k])


def _polyline(network: ReluNetwork, points) -> np.ndarray:
    pts = np.asarray(points.detach().cpu().numpy() if hasattr(points, "detach") else points)
    if pts.dtype == object:
        raise TypeError("points must be an array of numbers")
    pts = pts.astype(np.float64)
    if pts.ndim != 2 or pts.shape[0] < 2:
        raise ValueError(f"points must have shape (m >= 2, d), got {pts.shape}")
    return network.check_points(pts, "points")


def decompose_path(
    net, points, *, rtol: float = 1e-9, input_shape: Sequence[int] | None = None
) -> PathDecomposition:
    """Exact intervals of constant activation pattern along a polyline.

    Parameters
    ----------
    net : nn.Sequential, list of modules or ReluNetwork
    points : array_like, shape (m, d), m >= 2
        Polyline vertices (two points: a segment).
    rtol : float
        Breakpoints closer than ``rtol`` (relative to the parameter range) are
        merged, and sign tests use a relative tolerance ``rtol``.

    Returns
    -------
    PathDecomposition
    """
    network = as_relu_network(net, input_shape)
    pts = _polyline(network, points)
    m = pts.shape[0]
    dirs = pts[1:] - pts[:-1]
    ks = np.arange(m - 1, dtype=np.float64)
    # homogeneous maps [τ, 1] @ hmap[i] = x(τ) on segment i
    hmap = np.stack([dirs, pts[:-1] - ks[:, None] * dirs], axis=1)  # (m-1, 2, d)
    lo = ks.copy()
    hi = ks + 1.0
    tscale = float(m - 1)
    stages: list[tuple[np.ndarray, np.ndarray]] = []
    for st in network.stages:
        z = (hmap.reshape(-1, hmap.shape[2]) @ st.weight.T).reshape(hmap.shape[0], 2, st.n_out)
        z[:, 1, :] += st.bias
        if not st.n_neurons:
            hmap = z
            continue
        a, c = z[:, 0, :], z[:, 1, :]
        tol = rtol * (np.abs(a) * tscale + np.abs(c))
        vlo = a * lo[:, None] + c
        vhi = a * hi[:, None] + c
        cross = ((vlo > tol) & (vhi < -tol)) | ((vlo < -tol) & (vhi > tol))
        rows, cols = np.nonzero(cross)
        roots = -c[rows, cols] / a[rows, cols]
        inside = (roots > lo[rows] + rtol * tscale) & (roots < hi[rows] - rtol * tscale)
        rows, roots = rows[inside], roots[inside]
        order = np.lexsort((roots, rows))
        rows, roots = rows[order], roots[order]
        keep = np.ones(rows.size, dtype=bool)
        keep[1:] = (rows[1:] != rows[:-1]) | (roots[1:] - roots[:-1] > rtol * tscale)
        rows, roots = rows[keep], roots[keep]
        # new intervals: every old interval split at its sorted roots
        n_old = lo.size
        per = np.bincount(rows, minlength=n_old)
        src = np.repeat(np.arange(n_old), per + 1)
        starts = np.concatenate([[0], np.cumsum(per + 1)[:-1]])
        new_lo = lo[src].copy()
        new_hi = hi[src].copy()
        # position of each root inside its interval's run of sub-intervals
        pos = starts[rows] + (
            np.arange(rows.size) - np.concatenate([[0], np.cumsum(per)[:-1]])[rows]
        )
        new_hi[pos] = roots
        new_lo[pos + 1] = roots
        mid = 0.5 * (new_lo + new_hi)
        zs = z[src]
        # a unit that vanishes on the whole interval (within tolerance) is not firing
        bits = zs[:, 0, :] * mid[:, None] + zs[:, 1, :] > tol[src]
        zs *= np.where(bits, 1.0, st.negative_slope)[:, None, :]
        hmap = zs
        lo, hi = new_lo, new_hi
        stages.append((src, bits))
    n_final = lo.size
    patterns: list[np.ndarray] = [np.zeros((n_final, 0), dtype=bool)] * len(stages)
    idx = np.arange(n_final)
    for k in range(len(stages) - 1, -1, -1):
        src, bits = stages[k]
        patterns[k] = bits[idx]
        idx = src[idx]
    return PathDecomposition(
        network=network,
        points=pts,
        intervals=np.stack([lo, hi], axis=1),
        patterns=patterns,
        maps=hmap,
    )


def count_path_pieces(net, points, **kwargs) -> int:
    """Number of linear pieces of the network along a segment / polyline (exact).

    See :func:`decompose_path`; equals ``decompose_path(net, points).n_pieces``.
    """
    return decompose_path(net, points, **kwargs).n_pieces


def sampled_path_count(
    net, points, n_samples: int = 10_000, *, input_shape: Sequence[int] | None = None
) -> int:
    """Count pieces along a polyline by dense sampling (a lower bound of the exact count).

    ``n_samples`` parameters are spread uniformly over ``τ ∈ [0, m-1]``; the count is
    one plus the number of pattern changes between consecutive samples.
    """
    network = as_relu_network(net, input_shape)
    pts = _polyline(network, points)
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2, got {n_samples}")
    m = pts.shape[0]
    tau = np.linspace(0.0, m - 1.0, n_samples)
    k = np.clip(np.floor(tau).astype(np.int64), 0, m - 2)
    x = pts[k] + (tau - k)[:, None] * (pts[k + 1] - pts[k])
    pats = network.patterns(x)
    if not pats:
        return 1
    bits = np.concatenate(pats, axis=1)
    return int(1 + (bits[1:] != bits[:-1]).any(axis=1).sum())
