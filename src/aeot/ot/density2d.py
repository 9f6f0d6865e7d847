"""Exact integrals of a piecewise-constant 2D density over clipped power cells.

For a density ρ constant on each pixel of a regular grid of the box B (a
:class:`~aeot.ot.sources.GridDensity`), Green's theorem turns the mass of a cell W into
a line integral over its boundary, traversed counter-clockwise:

    μ(W) = ∫∫_W ρ dA = ∮_{∂W} F dy,       F(x, y) = ∫_{low_0}^{x} ρ(s, y) ds.

In pixel column a of row b (x_a ≤ x < x_{a+1}), F = C_{a,b} + ρ_{a,b} (x − x_a) with
C_{a,b} = w_0 Σ_{a' < a} ρ_{a',b}: affine in x and constant in y, so along a straight
piece of boundary inside one pixel F is affine in the curve parameter and the midpoint
rule ∫ F dy = F(midpoint) Δy is exact. Each boundary segment is therefore cut where it
crosses a grid line, and its pieces summed. The same pieces give the edge integrals
∫_{e} ρ ds = Σ ρ_pixel |piece| that make the Hessian of the semi-discrete energy,

    ∂μ(W_i)/∂h_j = −∫_{W_i ∩ W_j} ρ ds / |y_i − y_j|   (j ≠ i).

A constant c_i subtracted from F on the whole boundary of cell i changes nothing
(∮ c dy = 0); c_i = F at a point of the cell keeps the sum free of cancellation, so the
masses of small cells keep their relative digits.
"""

from __future__ import annotations

import numpy as np

from aeot.ot.power2d import PowerDiagram2D

__all__ = ["cell_masses_and_edge_integrals"]


def cell_masses_and_edge_integrals(
    diagram: PowerDiagram2D, sites: np.ndarray, density: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """μ(W_i) for every cell and ∫_{e_ij} ρ ds for every edge of ``diagram``.

    Parameters
    ----------
    diagram : PowerDiagram2D
        Cells clipped to the box [low, high], which the density's grid covers.
    sites : (N, 2) float64 ndarray
        The sites y_i of the diagram (they orient the edges: cell j lies on the side of
        y_j − y_i).
    density : (n_0, n_1) float64 ndarray
        ρ per pixel, axis 0 along x (``GridDensity.density()``); ∫ρ over the box need not
        be 1.

    Returns
    -------
    masses : (N,) float64 ndarray
        ∫_{W_i} ρ dA (0 for empty cells).
    edge_integrals : (E,) float64 ndarray
        ∫_{W_i ∩ W_j} ρ ds for the edges (i, j) of ``diagram.edges``.
    """
    low = np.asarray(diagram.low, np.float64)
    high = np.asarray(diagram.high, np.float64)
    rho = np.asarray(density, np.float64)
    n_cells = diagram.areas.shape[0]
    widths = (high - low) / np.asarray(rho.shape, np.float64)
    # C[a, b] = w_0 Σ_{a' < a} ρ[a', b]: F at the left side of each pixel
    left = np.zeros_like(rho)
    np.cumsum(rho[:-1] * widths[0], axis=0, out=left[1:])

    ei, ej = diagram.edges[:, 0], diagram.edges[:, 1]
    seg = diagram.edge_segments
    owner = diagram.boundary_owner
    # the internal edges, oriented counter-clockwise around cell i: the outward normal
    # (t_y, −t_x) of i points towards y_j
    tangent = seg[:, 1] - seg[:, 0]
    toward = sites[ej] - sites[ei]
    ccw = tangent[:, 1] * toward[:, 0] - tangent[:, 0] * toward[:, 1] > 0
    first = np.where(ccw[:, None], seg[:, 0], seg[:, 1])
    second = np.where(ccw[:, None], seg[:, 1], seg[:, 0])
    starts = np.concatenate([first, diagram.boundary_segments[:, 0]])
    stops = np.concatenate([second, diagram.boundary_segments[:, 1]])
    n_edges = seg.shape[0]

    # c_i: F at the mean midpoint of cell i's boundary segments
    mids = 0.5 * (starts + stops)
    holder = np.concatenate([ei, owner])
    count = np.bincount(holder, minlength=n_cells) + np.bincount(ej, minlength=n_cells)
    centre = (
        np.stack(
            [
                np.bincount(holder, mids[:, k], minlength=n_cells)
                + np.bincount(ej, mids[:n_edges, k], minlength=n_cells)
                for k in range(2)
            ],
            axis=1,
        )
        / np.maximum(count, 1)[:, None]
    )
    ref = _primitive(centre, *_pixel(centre, low, widths, rho.shape), low, widths, rho, left)

    piece_seg, piece_mid, piece_dt = _pieces(starts, stops, low, widths, rho.shape)
    a, b = _pixel(piece_mid, low, widths, rho.shape)
    f = _primitive(piece_mid, a, b, low, widths, rho, left)
    delta = stops - starts
    dy = piece_dt * delta[piece_seg, 1]
    total = starts.shape[0]
    flux = np.bincount(piece_seg, f * dy, minlength=total)  # ∮ F dy per segment
    rise = delta[:, 1]
    seg_len = np.hypot(delta[:, 0], delta[:, 1])
    line = np.bincount(piece_seg, rho[a, b] * piece_dt, minlength=total) * seg_len

    # cell i gets (F − c_i) dy of its counter-clockwise segments; cell j the reverse
    inner_i = flux[:n_edges] - ref[ei] * rise[:n_edges]
    inner_j = flux[:n_edges] - ref[ej] * rise[:n_edges]
    outer = flux[n_edges:] - ref[owner] * rise[n_edges:]
    masses = (
        np.bincount(ei, inner_i, minlength=n_cells)
        - np.bincount(ej, inner_j, minlength=n_cells)
        + np.bincount(owner, outer, minlength=n_cells)
    )
    return np.maximum(masses, 0.0), line[:n_edges]


def _pixel(points: np.ndarray, low, widths, shape) -> tuple[np.ndarray, np.ndarray]:
    """Column a and row b of the pixel holding each point (points on the far sides of the
    box belong to the last pixel)."""
    grid = (points - low) / widths
    a = np.clip(np.floor(grid[:, 0]).astype(np.int64), 0, shape[0] - 1)
    b = np.clip(np.floor(grid[:, 1]).astype(np.int64), 0, shape[1] - 1)
    return a, b


def _primitive(points: np.ndarray, a, b, low, widths, rho, left) -> np.ndarray:
    """F(x, y) = ∫_{low_0}^{x} ρ(s, y) ds at each point, (a, b) its pixel (:func:`_pixel`)."""
    return left[a, b] + rho[a, b] * (points[:, 0] - (low[0] + a * widths[0]))


def _pieces(starts, stops, low, widths, shape):
    """Cut the segments starts → stops at the grid lines they cross.

    Returns, per piece, the segment it belongs to, its midpoint and its share Δt of the
    segment's parameter (pieces of one segment sum to Δt = 1).
    """
    m = starts.shape[0]
    g0 = (starts - low) / widths
    g1 = (stops - low) / widths
    ts = [np.zeros(m), np.ones(m)]
    ids = [np.arange(m), np.arange(m)]
    for k in range(2):
        lo = np.minimum(g0[:, k], g1[:, k])
        hi = np.maximum(g0[:, k], g1[:, k])
        first = np.floor(lo).astype(np.int64) + 1  # grid lines strictly inside (lo, hi)
        last = np.ceil(hi).astype(np.int64) - 1
        first = np.maximum(first, 1)
        last = np.minimum(last, shape[k] - 1)
        count = np.maximum(last - first + 1, 0)
        if count.sum() == 0:
            continue
        seg = np.repeat(np.arange(m), count)
        step = np.arange(seg.size) - np.repeat(np.cumsum(count) - count, count)
        line = (first[seg] + step).astype(np.float64)
        span = g1[seg, k] - g0[seg, k]
        ts.append(np.clip((line - g0[seg, k]) / span, 0.0, 1.0))
        ids.append(seg)
    t = np.concatenate(ts)
    owner = np.concatenate(ids)
    order = np.lexsort((t, owner))
    t, owner = t[order], owner[order]
    same = owner[1:] == owner[:-1]
    t_a, t_b, piece_seg = t[:-1][same], t[1:][same], owner[:-1][same]
    dt = t_b - t_a
    tm = 0.5 * (t_a + t_b)
    mid = starts[piece_seg] + tm[:, None] * (stops[piece_seg] - starts[piece_seg])
    return piece_seg, mid, dt
