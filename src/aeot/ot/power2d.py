"""Exact power diagrams of weighted points in the plane, clipped to an axis-aligned box.

For targets y_i ∈ R² and heights h_i the (maximisation) power cells are

    W_i(h) = {x ∈ B : <x, y_i> + h_i ≥ <x, y_j> + h_j  ∀j},     B = [l_0, u_0] × [l_1, u_1],

i.e. the power diagram of the y_i with power weights w_i = 2ψ_i, ψ_i = h_i + |y_i|²/2:
W_i = {x ∈ B : |x − y_i|² − 2ψ_i ≤ |x − y_j|² − 2ψ_j ∀j}.  Its dual is the *regular
triangulation*, the lower convex hull of the lifted points (y_i, |y_i|²/2 − ψ_i) ∈ R³.  A
lower facet with vertices a, b, c is a plane z = <v, y> + const whose slope v is the
diagram vertex where the scores of a, b, c tie; two lower facets sharing the edge (a, b)
give the diagram edge [v_f, v_g] between W_a and W_b, and a lower facet on the hull
boundary gives a ray.  Sites that are not vertices of a lower facet are *hidden*: their
cells are empty.

The regular triangulation comes from Qhull (Barber, Dobkin, Huhdanpaa 1996, through
scipy), or, from 1000 sites with the C kernels, from a radial sweep with Lawson flips
(:func:`aeot.ot._native.sweep_triangulate`, ~6x faster), or from repairing the previous
diagram's triangulation by Lawson flips (a warm start).  Everything after it is
vectorised NumPy, O(N) (for a triangulation from C the edge loop runs in C with the same
formulas, :func:`aeot.ot._native.warm_edges`):

* the edge between W_i and W_j lies on the line {p0 + τ t} with unit normal
  n = (y_j − y_i)/|y_j − y_i|, t = rot90(n) and p0 = (y_i + y_j)/2 + n (ψ_i − ψ_j)/|y_j − y_i|;
  it is stored as a signed parameter interval [τ_lo, τ_hi] (a segment, a ray or, for
  collinear sites, a whole line) and clipped to the box by Liang–Barsky;
* the box boundary is cut at the points where clipped edges meet it and at its corners;
  each piece goes to the cell owning its midpoint (exact power-nearest site, found with
  a k-d tree on the sites lifted to (y_i, sqrt(max_j 2ψ_j − 2ψ_i)));
* areas follow from the divergence theorem, |W_i ∩ B| = ½ ∮ <x − r_i, n_out> ds, where
  <x − r_i, n_out> is constant on every straight piece of the boundary and r_i is the
  site clipped to the box; on an edge it equals |y_j − y_i|/2 ± (ψ_i − ψ_j)/|y_j − y_i|,
  which is computed without cancellation.

Working with ψ (not h) matters: near a solution neighbouring ψ differ by about the cell
area, so the vertices come out accurate to a few ulps of the coordinates and the masses
to ~1e-16 absolute, where h = ψ − |y|²/2 would lose digits to the |y|² term.  Two more
guards matter for close sites (δ apart), whose edge moves by Δψ/δ: the weights may be
given as double-doubles ψ + ψ_lo (``psi_lo``; an edge then sits to ~1e-16 |ψ_i − ψ_j|/δ
instead of ~1e-16 |ψ_i|/δ), and a diagram vertex is computed from the corner of its
triangle opposite the longest side (from a far corner of two close sites the two terms
of Cramer's rule cancel, and the vertex moved by ~1e-16 |d|³ / det: 5·10⁻¹³ for a pair
1e-8 apart among 10⁴ sites).

References
----------
F. Aurenhammer, "Power diagrams: properties, algorithms and applications",
SIAM J. Comput. 16 (1987), 78–96.
C. B. Barber, D. P. Dobkin, H. Huhdanpaa, "The Quickhull algorithm for convex hulls",
ACM Trans. Math. Softw. 22 (1996), 469–483.
J. Kitagawa, Q. Mérigot, B. Thibert, "Convergence of a Newton algorithm for
semi-discrete optimal transport", J. Eur. Math. Soc. 21 (2019), 2603–2651.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, cKDTree

from aeot.ot import _native

__all__ = ["PowerDiagram2D", "power_cell_polygons_2d", "power_diagram_2d", "spatial_order"]

# Lower hull facets whose outward unit normal has z-component above this (in the
# rescaled lift) are treated as vertical: their diagram vertex would lie ~1e10 box
# diameters away, so the adjacent diagram edges are rays for every practical purpose.
_VERTICAL_TOL = 1e-10
# Projected triangles with |sin(angle)| below this take their vertex from Qhull's
# (merged) facet hyperplane rather than from Cramer's rule.
_SKINNY_TOL = 1e-8
# A warm start (:func:`_lawson_flips`) gives up, for Qhull, beyond this many flips per site
_MAX_FLIPS = 0.05
# ... and beyond this many with the C loop of :mod:`aeot.ot._native`
_MAX_FLIPS_NATIVE = 4.0
# from this many sites a diagram without a previous triangulation starts from the C
# radial sweep (:func:`aeot.ot._native.sweep_triangulate`) instead of Qhull: 0.17 s
# against 1.2 s at 10⁵ sites, 2.0 s against 10.6 s at 10⁶
_SWEEP_FROM = 1000
# skip Qhull's final outer-plane pass and near-inside points (~15 % faster)
_QHULL_OPTIONS = "Q5 Q8"
# what :func:`_lawson_flips` returns when it proves a site hidden
HIDDEN = object()
# outward normals of the box sides: bottom, right, top, left (counter-clockwise order)
_NORMALS = np.array([[0.0, -1.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])


@dataclass(frozen=True, eq=False)
class RegularTriangulation:
    """The lower facets of the lifted sites, i.e. the regular triangulation of the sites.

    Attributes
    ----------
    simplices : (F, 3) int64 ndarray
        Site indices of every triangle; every site is a vertex of one.
    neighbors : (F, 3) int64 ndarray
        The triangle across the edge opposite vertex m of triangle f, or −1 where that
        edge lies on the convex hull of the sites.
    """

    simplices: np.ndarray
    neighbors: np.ndarray


@dataclass(frozen=True, eq=False)
class PowerDiagram2D:
    """A power diagram clipped to a box, as produced by :func:`power_diagram_2d`.

    Attributes
    ----------
    areas : (N,) float64 ndarray
        Lebesgue measure |W_i ∩ B| of every cell (0 for empty or hidden cells).
    edges : (E, 2) int64 ndarray
        Pairs (i, j), i < j, of cells sharing an edge of positive length inside the box.
    edge_lengths : (E,) float64 ndarray
        Length of the shared edge W_i ∩ W_j ∩ B.
    edge_segments : (E, 2, 2) float64 ndarray
        End points of the clipped edges.
    boundary_owner : (M,) int64 ndarray
        Owner cell of each piece of the box boundary.
    boundary_segments : (M, 2, 2) float64 ndarray
        End points of the box-boundary pieces (counter-clockwise).
    low, high : tuple of float
        The box B = [low_0, high_0] × [low_1, high_1].
    triangulation : RegularTriangulation or None
        The dual regular triangulation, for warm starts; None for collinear sites and
        where it cannot serve as one (hidden sites, degenerate triangles).
    """

    areas: np.ndarray
    edges: np.ndarray
    edge_lengths: np.ndarray
    edge_segments: np.ndarray
    boundary_owner: np.ndarray
    boundary_segments: np.ndarray
    low: tuple[float, float]
    high: tuple[float, float]
    triangulation: RegularTriangulation | None = None

    @property
    def volume(self) -> float:
        """Area of the box."""
        return (self.high[0] - self.low[0]) * (self.high[1] - self.low[1])

    @property
    def masses(self) -> np.ndarray:
        """μ(W_i) for the uniform probability on the box: ``areas / volume``, shape (N,)."""
        return self.areas / self.volume

    @property
    def n_cells(self) -> int:
        return self.areas.shape[0]


def power_diagram_2d(points, heights, low=0.0, high=1.0) -> PowerDiagram2D:
    """Exact power diagram of ``points`` with ``heights`` clipped to a box.

    Parameters
    ----------
    points : (N, 2) array_like
        Distinct sites y_i.
    heights : (N,) array_like
        Heights h_i; cell i is where <x, y_i> + h_i is maximal, equivalently where the
        power distance |x − y_i|² − 2ψ_i is minimal, ψ_i = h_i + |y_i|²/2.
    low, high : float or (2,) array_like
        Box corners; the box is [low_0, high_0] × [low_1, high_1].

    Returns
    -------
    PowerDiagram2D
        Exact cell areas and the lengths of the edges shared by adjacent cells.

    Notes
    -----
    Cost: one Qhull convex hull of N points in R³ plus O(N) vectorised NumPy work.
    Internally the diagram is computed from ψ, whose neighbour differences are small, so
    the diagram vertices are accurate to a few ulps of the coordinates; callers that
    already hold ψ (the Newton solver) avoid the rounding of h = ψ − |y|²/2 altogether.
    Collinear sites (including N = 2) are handled by a 1-D upper envelope of lines
    (cells are parallel strips).  Exact ties that put a whole diagram edge on a side of
    the box give that side to the cell inside the box.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([[0.25, 0.5], [0.75, 0.5]])
    >>> d = power_diagram_2d(y, -0.5 * (y**2).sum(1))  # Voronoi: two halves
    >>> d.areas, d.edges, d.edge_lengths
    (array([0.5, 0.5]), array([[0, 1]]), array([1.]))
    """
    y, h, lo, hi = _check_inputs(points, heights, low, high)
    return _power_diagram(y, h + 0.5 * np.einsum("ij,ij->i", y, y), lo, hi)


def power_cell_polygons_2d(points, heights, low=0.0, high=1.0) -> list[np.ndarray]:
    """Cells of the clipped power diagram as convex polygons, for plotting.

    Parameters
    ----------
    points, heights, low, high
        As for :func:`power_diagram_2d`.

    Returns
    -------
    list of (k_i, 2) float64 ndarrays
        Counter-clockwise vertices of W_i ∩ B; a (0, 2) array for empty cells.
    """
    diagram = power_diagram_2d(points, heights, low, high)
    n = diagram.n_cells
    owners = [
        diagram.edges[:, 0],
        diagram.edges[:, 1],
        diagram.boundary_owner,
    ]
    pts = [diagram.edge_segments, diagram.edge_segments, diagram.boundary_segments]
    cell = np.concatenate([np.repeat(o, 2) for o in owners])
    xy = np.concatenate([p.reshape(-1, 2) for p in pts])
    order = np.argsort(cell, kind="stable")
    cell, xy = cell[order], xy[order]
    bounds = np.searchsorted(cell, np.arange(n + 1))
    scale = max(diagram.high[0] - diagram.low[0], diagram.high[1] - diagram.low[1])
    polygons: list[np.ndarray] = []
    for i in range(n):
        p = xy[bounds[i] : bounds[i + 1]]
        if diagram.areas[i] <= 0 or p.shape[0] < 3:
            polygons.append(np.zeros((0, 2)))
            continue
        centre = p.mean(axis=0)
        angle = np.arctan2(p[:, 1] - centre[1], p[:, 0] - centre[0])
        p = p[np.argsort(angle)]
        # drop repeated vertices (each vertex is the end point of two boundary pieces)
        keep = np.linalg.norm(p - np.roll(p, 1, axis=0), axis=1) > 1e-12 * scale
        keep[0] = True
        polygons.append(p[keep])
    return polygons


# ----------------------------------------------------------------------------- inputs


def _check_inputs(points, heights, low, high):
    y = np.asarray(points, dtype=np.float64)
    h = np.asarray(heights, dtype=np.float64)
    if y.ndim != 2 or y.shape[1] != 2 or y.shape[0] < 1:
        raise ValueError(f"points must have shape (N, 2) with N >= 1, got {y.shape}")
    if h.shape != (y.shape[0],):
        raise ValueError(f"heights must have shape ({y.shape[0]},), got {h.shape}")
    if not (np.isfinite(y).all() and np.isfinite(h).all()):
        raise ValueError("points and heights must be finite")
    lo = np.broadcast_to(np.asarray(low, dtype=np.float64), (2,))
    hi = np.broadcast_to(np.asarray(high, dtype=np.float64), (2,))
    if not (np.isfinite(lo).all() and np.isfinite(hi).all() and (lo < hi).all()):
        raise ValueError(f"box must be finite with low < high, got {low} and {high}")
    return y, h, (float(lo[0]), float(lo[1])), (float(hi[0]), float(hi[1]))


def spatial_order(points) -> np.ndarray:
    """Morton (Z-order) permutation of 2D points: Qhull runs ~30 % faster on sorted input.

    Parameters
    ----------
    points : (N, 2) array_like

    Returns
    -------
    (N,) int64 ndarray
    """
    y = np.asarray(points, dtype=np.float64)
    span = np.ptp(y, axis=0)
    q = ((y - y.min(axis=0)) / np.where(span > 0, span, 1.0) * 65535).astype(np.uint64)
    code = np.zeros(y.shape[0], np.uint64)
    for axis in range(2):
        v = q[:, axis]
        v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF)
        v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F)
        v = (v | (v << np.uint64(2))) & np.uint64(0x33333333)
        v = (v | (v << np.uint64(1))) & np.uint64(0x55555555)
        code |= v << np.uint64(axis)
    return np.argsort(code, kind="stable")


def _power_diagram(
    y, psi, lo, hi, order=None, previous=None, reject_hidden=False, psi_lo=None
) -> PowerDiagram2D | None:
    """Core of :func:`power_diagram_2d` for ψ_i = h_i + |y_i|²/2 (half the power weight).

    ``order`` is an optional :func:`spatial_order` of ``y`` (computed when omitted).
    ``previous`` is an optional :class:`RegularTriangulation` of the same sites (for other
    ψ): when it is still regular for ``psi`` it replaces the Qhull call.  With
    ``reject_hidden`` the result is None when repairing ``previous`` proves some cell
    empty (a line search that rejects empty cells needs no more); a None result always
    means an empty cell, but an empty cell does not always give None.

    ``psi_lo`` (N,) float64 or None: low parts of double-double weights ψ + ψ_lo.  Every
    difference ψ_i − ψ_j that places an edge or a vertex is then formed as
    (ψ_i − ψ_j) + (ψ_lo,i − ψ_lo,j) (:func:`_psi_diff`), so an edge between sites δ apart
    sits to ~1e-16 |ψ_i − ψ_j| / δ rather than ~1e-16 |ψ_i| / δ; Qhull's lifting and the
    box boundary's owners use ψ alone (combinatorics only).
    """
    n = y.shape[0]
    if n == 1:
        edges = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
        return _assemble(y, psi, lo, hi, *edges, _edge_lines(y, psi, *edges[:2], psi_lo))
    yc = y - y.mean(axis=0)
    if n == 2 or _nearly_collinear(yc):
        ei, ej = _collinear_envelope(yc, psi)
        lines = _edge_lines(y, psi, ei, ej, psi_lo)
        inf = np.full(ei.size, np.inf)
        return _assemble(y, psi, lo, hi, ei, ej, -inf, inf, lines)
    edges = None
    if previous is None and n >= _SWEEP_FROM and _native.available():
        # no triangulation to start from: the C sweep builds one, ~6x faster than Qhull
        swept = _native.sweep_triangulate(y[:, 0], y[:, 1], psi, psi_lo)
        if swept is not None:
            previous = RegularTriangulation(*swept)
    if previous is not None:
        max_flips = max(64, int(_MAX_FLIPS * n))
        tri = _lawson_flips(y, psi, previous, max_flips, reject_hidden, psi_lo)
        if tri is HIDDEN:
            return None
        if tri is not None and _native.available():
            warm = _warm_native(y, psi, lo, hi, tri, psi_lo)
            if not isinstance(warm, int):
                return warm
            if warm == -1:  # not the regular triangulation: NumPy would only say so too
                tri = None
        if tri is not None:
            edges = _dual_edges(y, psi, yc, tri.simplices, tri.neighbors, None, psi_lo)
    if edges is None:
        edges = _regular_triangulation_edges(y, psi, yc, order, psi_lo)
    return _assemble(y, psi, lo, hi, *edges)


# ----------------------------------------------------------------- combinatorial step


def _nearly_collinear(yc: np.ndarray) -> bool:
    """Whether the centred sites span a line: σ_2 <= 1e-12 σ_1 (singular values)."""
    lam = np.linalg.eigvalsh(yc.T @ yc)  # cheap screen, accurate down to ~1e-8 σ_1
    if lam[0] > 1e-12 * lam[1]:
        return False
    sv = np.linalg.svd(yc, compute_uv=False)
    return bool(sv[1] <= 1e-12 * sv[0])


def _regular_triangulation_edges(y, psi, yc, order, psi_lo=None):
    """Diagram edges from the lower hull of the lifted points (y_i − ȳ, |y_i − ȳ|²/2 − ψ_i).

    Returns ``(I, J, tau_lo, tau_hi, lines, triangulation)`` as :func:`_dual_edges`.
    """
    n = y.shape[0]
    if order is None:
        order = spatial_order(y)
    z = 0.5 * np.einsum("ij,ij->i", yc, yc) - psi
    z = z - z.mean()
    xy_range = float(np.ptp(yc, axis=0).max())
    z_range = float(np.ptp(z))
    sigma = z_range / xy_range if z_range > 0 else 1.0
    z = z / sigma
    # A guard point high above the centroid makes the hull 3-dimensional even when all
    # lifted points are coplanar (N = 3, affine ψ); it is never on a lower facet.
    lifted = np.empty((n + 1, 3))
    lifted[:n, :2] = yc[order]
    lifted[:n, 2] = z[order]
    lifted[n] = (0.0, 0.0, z.max() + (z.max() - z.min()) + xy_range)
    simplices, neighbors, eq = _lower_hull_arrays(lifted)
    perm = np.append(order, -1)
    simp = perm[simplices]  # back to the caller's indices; the guard becomes −1
    lower = (eq[:, 2] < -_VERTICAL_TOL) & (simp >= 0).all(axis=1)
    f_idx = np.nonzero(lower)[0]
    # (take and compress along axis 0 are several times faster than fancy indexing)
    pos = np.full(simp.shape[0], -1, np.int64)
    pos[f_idx] = np.arange(f_idx.size)
    # Qhull's hyperplanes (shared by the triangles of a merged coplanar facet) give the
    # vertices of skinny triangles
    e_f = eq.take(f_idx, axis=0)
    plane_vertex = (y - yc)[0] - sigma * e_f[:, :2] / e_f[:, 2:3]
    nb = pos[neighbors.take(f_idx, axis=0)]
    return _dual_edges(y, psi, yc, simp.take(f_idx, axis=0), nb, plane_vertex, psi_lo)


def _psi_diff(psi, psi_lo, i, j):
    """ψ_i − ψ_j for weights ψ + ψ_lo (``psi_lo`` None: ψ alone), elementwise on index
    arrays or for integer indices into lists; the high parts of neighbouring sites'
    weights are close, so their difference is exact or nearly so."""
    d = psi[i] - psi[j]
    return d if psi_lo is None else d + (psi_lo[i] - psi_lo[j])


def _lift_below(px, py, psi, a, b, c, d, psi_lo=None):
    """D · det[y_b − y_a, y_c − y_a] for D = det[p_k − p_a]_{k=b,c,d} and the lifted sites
    p_k = (y_k, |y_k − y_a|²/2 − ψ_k): negative exactly when p_d lies below the plane
    through p_a, p_b, p_c, i.e. when the edge (a, b) between the triangles (a, b, c) and
    (a, b, d) is not regular.  The coordinates of y are ``px``, ``py``; works elementwise
    on index arrays and on Python lists with integer indices (``psi_lo`` as
    :func:`_psi_diff`)."""
    bx, by = px[b] - px[a], py[b] - py[a]
    cx, cy = px[c] - px[a], py[c] - py[a]
    dx, dy = px[d] - px[a], py[d] - py[a]
    wb = 0.5 * (bx * bx + by * by) - _psi_diff(psi, psi_lo, b, a)
    wc = 0.5 * (cx * cx + cy * cy) - _psi_diff(psi, psi_lo, c, a)
    wd = 0.5 * (dx * dx + dy * dy) - _psi_diff(psi, psi_lo, d, a)
    det3 = bx * (cy * wd - wc * dy) - by * (cx * wd - wc * dx) + wb * (cx * dy - cy * dx)
    return det3 * (bx * cy - by * cx)


def _warm_native(y, psi, lo, hi, tri: RegularTriangulation, psi_lo=None) -> PowerDiagram2D | int:
    """:func:`_dual_edges` (warm start) and :func:`_assemble` with their edge loops in C
    (:func:`aeot.ot._native.warm_edges`); else the kernel's code: −1 when the
    triangulation is not the regular one (Qhull must run), −2 when an edge is parallel
    to a side of the box (the NumPy path handles it)."""
    low, high = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    ref = np.clip(y, low, high)
    shift = y - ref if (ref != y).any() else None
    px, py = np.ascontiguousarray(y[:, 0]), np.ascontiguousarray(y[:, 1])
    s, nb = tri.simplices.ravel(), tri.neighbors.ravel()
    box = (low[0], low[1], high[0], high[1])
    s, nb = np.ascontiguousarray(s, dtype=np.int64), np.ascontiguousarray(nb, dtype=np.int64)
    out = _native.warm_edges(px, py, psi, s, nb, box, shift, psi_lo)
    if isinstance(out, int):
        return out
    ei, ej, length, seg, cut, area = out
    ends = np.concatenate([seg[(cut & 1) > 0, 0], seg[(cut & 2) > 0, 1]])
    reusable = np.bincount(s, minlength=y.shape[0]).all()
    triangulation = tri if reusable else None
    return _close(y, psi, lo, hi, ei, ej, length, seg, ends, area, ref, triangulation)


def _lawson_flips(
    y, psi, tri: RegularTriangulation, max_flips: int, stop_at_hidden=False, psi_lo=None
):
    """Repair a triangulation of the sites into the regular one for ``psi`` by edge flips.

    Lawson's algorithm: an interior edge (a, b) between the triangles (a, b, c) and
    (a, b, d) whose lifted quadrilateral is concave is replaced by (c, d), and the four
    outer edges are checked again.  Returns the triangulation (``tri`` itself when no
    edge needs a flip) or None after more than ``max_flips`` flips (Qhull is then
    cheaper).  A non-convex quadrilateral cannot be flipped; such an edge is left for
    :func:`_dual_edges` to reject.

    With ``stop_at_hidden`` (C loop only) the result is :data:`HIDDEN` as soon as such
    a non-flippable edge proves a site hidden: one end of it lies strictly inside the
    triangle of the other three points of its quadrilateral, and the edge being
    irregular puts its lifted point above their plane, so its power cell is empty.

    Reference: C. L. Lawson, "Software for C¹ surface interpolation", in Mathematical
    Software III (1977), 161–194.
    """
    s, nb = tri.simplices, tri.neighbors
    px, py = np.ascontiguousarray(y[:, 0]), np.ascontiguousarray(y[:, 1])
    if _native.available():
        # the C loop, where a few flips per site cost less than one Qhull call; it also
        # runs the first test of every interior edge (the vectorised one below)
        max_flips = max(max_flips, int(_MAX_FLIPS_NATIVE * y.shape[0]))
        S, NB = s.ravel().astype(np.int64), nb.ravel().astype(np.int64)
        flips = _native.lawson_flips(px, py, psi, S, NB, None, max_flips, stop_at_hidden, psi_lo)
        if flips == -2:
            return HIDDEN
        if flips < 0:
            return None
        if flips == 0:
            return tri
        return RegularTriangulation(S.reshape(s.shape), NB.reshape(s.shape))
    flat_s = s.ravel()
    e = np.nonzero(nb.ravel() > np.arange(flat_s.size) // 3)[0]  # interior edges, once
    f, m = np.divmod(e, 3)
    g = nb.ravel().take(e)
    d = flat_s.take(3 * g + (nb.take(g, axis=0) == f[:, None]).argmax(axis=1))
    abc = [flat_s.take(3 * f + (m + k) % 3) for k in (1, 2, 0)]
    bad = _lift_below(px, py, psi, *abc, d, psi_lo) < 0
    if not bad.any():
        return tri
    if bad.sum() > max_flips:
        return None
    px, py, ps = px.tolist(), py.tolist(), psi.tolist()
    ps_lo = None if psi_lo is None else psi_lo.tolist()
    # flat copies (entry 3f + k); a flip reads and writes a few entries, so the arrays
    # are not converted to lists
    S, NB = s.ravel().copy(), nb.ravel().copy()
    stack = (3 * f[bad] + m[bad]).tolist()
    flips = 0
    while stack:
        e1 = stack.pop()
        f2 = int(NB[e1])
        if f2 < 0:
            continue
        f1, m1 = divmod(e1, 3)
        o1, o2 = 3 * f1, 3 * f2
        s1, s2 = S[o1 : o1 + 3].tolist(), S[o2 : o2 + 3].tolist()
        a, b, c = s1[(m1 + 1) % 3], s1[(m1 + 2) % 3], s1[m1]
        nb2 = NB[o2 : o2 + 3].tolist()
        d = s2[nb2.index(f1)]
        if _lift_below(px, py, ps, a, b, c, d, ps_lo) >= 0:
            continue
        # the quadrilateral must be convex: a and b on either side of the line cd
        ux, uy = px[d] - px[c], py[d] - py[c]
        side_a = ux * (py[a] - py[c]) - uy * (px[a] - px[c])
        side_b = ux * (py[b] - py[c]) - uy * (px[b] - px[c])
        if not side_a * side_b < 0:
            continue
        flips += 1
        if flips > max_flips:
            return None
        nb1 = NB[o1 : o1 + 3].tolist()
        n_ac, n_bc = nb1[s1.index(b)], nb1[s1.index(a)]
        n_ad, n_bd = nb2[s2.index(b)], nb2[s2.index(a)]
        S[o1 : o1 + 3], NB[o1 : o1 + 3] = (a, c, d), (f2, n_ad, n_ac)
        S[o2 : o2 + 3], NB[o2 : o2 + 3] = (b, c, d), (f1, n_bd, n_bc)
        for h, old, new in ((n_ad, f2, f1), (n_bc, f1, f2)):
            if h >= 0:
                NB[3 * h + NB[3 * h : 3 * h + 3].tolist().index(old)] = new
        stack += [o1 + 1, o1 + 2, o2 + 1, o2 + 2]
    return RegularTriangulation(S.reshape(s.shape), NB.reshape(s.shape))


def _dual_edges(y, psi, yc, s, nb, plane_vertex, psi_lo=None):
    """Diagram edges dual to the triangulation with triangles ``s`` (F, 3) and neighbours
    ``nb`` (F, 3) (the triangle opposite vertex m, −1 on the hull boundary).

    Returns ``(I, J, tau_lo, tau_hi, lines, triangulation)``: the edge between cells I[e]
    and J[e] is {p0 + τ t : τ ∈ [tau_lo[e], tau_hi[e]]} with (p0, n, t, ...) = ``lines``
    (:func:`_edge_lines`); ±inf for rays.  ``triangulation`` is the
    :class:`RegularTriangulation` (s, nb) when it can warm-start a later call, else None.

    ``plane_vertex`` (F, 2) holds the diagram vertices from Qhull's hyperplanes, used for
    skinny triangles.  Without it (a warm start) the triangulation is checked instead:
    the result is None unless no triangle is skinny or flat and every interior edge has a
    non-negative length, i.e. the lifted surface is locally, hence globally, convex and
    the triangulation is the regular one for ``psi``.
    """
    n = y.shape[0]
    corners = np.stack([y.take(s[:, m], axis=0) for m in range(3)])  # (3, F, 2)
    nab, nac, nbc = (
        np.einsum("ij,ij->i", d, d)
        for d in (corners[1] - corners[0], corners[2] - corners[0], corners[2] - corners[1])
    )
    scale = np.sqrt(nab * nac)  # |det| / scale: |sin| of the angle at the listed first corner
    # The vertex from the corner opposite the longest side (the triangle rotated, which
    # keeps det): from a far corner of two close sites, r1 d2 and r2 d1 nearly cancel and
    # the vertex moves by ~1e-16 |d|³ / det along their short edge
    first = np.where((nab > nbc) | (nac > nbc), np.where(nab >= nac, 2, 1), 0)
    row = np.arange(s.shape[0])
    a, b, c = (s[row, (first + m) % 3] for m in range(3))
    # vertex v = y_a + u of each lower facet: <u, y_b − y_a> = |y_b − y_a|²/2 + ψ_a − ψ_b
    ya = corners[first, row]
    d1 = corners[(first + 1) % 3, row] - ya
    d2 = corners[(first + 2) % 3, row] - ya
    r1 = 0.5 * np.einsum("ij,ij->i", d1, d1) + _psi_diff(psi, psi_lo, a, b)
    r2 = 0.5 * np.einsum("ij,ij->i", d2, d2) + _psi_diff(psi, psi_lo, a, c)
    det = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    skinny = np.abs(det) <= _SKINNY_TOL * scale
    if plane_vertex is None and skinny.any():
        return None
    safe = np.where(skinny, 1.0, det)
    v = np.empty((s.shape[0], 2))
    v[:, 0] = ya[:, 0] + (r1 * d2[:, 1] - r2 * d1[:, 1]) / safe
    v[:, 1] = ya[:, 1] + (d1[:, 0] * r2 - d2[:, 0] * r1) / safe
    if skinny.any():
        v[skinny] = plane_vertex[skinny]
    g = nb.ravel()  # lower facet opposite vertex m, or −1
    fl = np.repeat(np.arange(s.shape[0]), 3)
    m = np.tile(np.arange(3), s.shape[0])
    use = (g < 0) | (g > fl)  # each interior edge once, every boundary edge
    fl, m, g = fl[use], m[use], g[use]
    flat_s = s.ravel()
    ei = flat_s.take(3 * fl + (m + 1) % 3)
    ej = flat_s.take(3 * fl + (m + 2) % 3)
    ek = flat_s.take(3 * fl + m)
    lines = _edge_lines(y, psi, ei, ej, psi_lo)
    p0, _, t = lines[:3]
    tau_f = np.einsum("ij,ij->i", v.take(fl, axis=0) - p0, t)
    tau_g = np.einsum("ij,ij->i", v.take(g, axis=0) - p0, t)
    # The dual edge leaves v_f away from the third vertex k of facet f: a ray for a
    # boundary edge of the lower hull, else the segment to v_g.  Its signed length is
    # negative where Qhull, within its merging tolerance, chose the non-regular diagonal
    # of an almost co-circular quadrilateral; keeping the sign keeps the areas exact to
    # second order there.  Flat facets (k on the line) orient rays away from the centroid
    # of the sites and leave segments unsigned.
    dk = y.take(ek, axis=0) - y.take(ei, axis=0)
    away = np.einsum("ij,ij->i", dk, t)
    ray = g < 0
    flat = np.abs(away) <= 1e-9 * np.sqrt(np.einsum("ij,ij->i", dk, dk))
    fwd = away < 0
    if plane_vertex is None:
        if flat.any() or (np.where(fwd, tau_g - tau_f, tau_f - tau_g) < 0)[~ray].any():
            return None
    elif flat.any():
        fr = flat & ray
        away[fr] = np.einsum("ij,ij->i", -yc[ei[fr]], t[fr])
        fwd = away < 0
    tlo = np.where(ray, np.where(fwd, tau_f, -np.inf), np.where(fwd, tau_f, tau_g))
    thi = np.where(ray, np.where(fwd, np.inf, tau_f), np.where(fwd, tau_g, tau_f))
    if flat.any():
        fs = flat & ~ray
        tlo[fs] = np.minimum(tau_f[fs], tau_g[fs])
        thi[fs] = np.maximum(tau_f[fs], tau_g[fs])
    reusable = not (skinny.any() or flat.any()) and np.bincount(s.ravel(), minlength=n).all()
    triangulation = RegularTriangulation(s, nb) if reusable else None
    return ei, ej, tlo, thi, lines, triangulation


def _lower_hull_arrays(lifted: np.ndarray):
    """Triangulated convex hull of ``lifted`` (M, 3): simplices, neighbours, equations.

    Calls scipy's Qhull wrapper directly when available, which skips the volume and area
    computations of :class:`scipy.spatial.ConvexHull` (~15 % of its time here).
    """
    try:
        from scipy.spatial import _qhull

        qhull = _qhull._Qhull(b"i", lifted, _QHULL_OPTIONS.encode(), required_options=b"Qt")
        try:
            simplices, neighbors, equations, _, _ = qhull.get_simplex_facet_array()
        finally:
            qhull.close()
        return simplices, neighbors, equations
    except (ImportError, AttributeError, TypeError, ValueError):  # private API changed
        hull = ConvexHull(lifted, qhull_options=_QHULL_OPTIONS)
        return hull.simplices, hull.neighbors, hull.equations


def _collinear_envelope(yc, psi):
    """Collinear sites y_i = ȳ + s_i u: the cells are strips between consecutive members
    of the lower hull of the points (s_i, s_i²/2 − ψ_i) (Andrew's monotone chain)."""
    _, _, vt = np.linalg.svd(yc, full_matrices=False)
    s = yc @ vt[0]
    w = 0.5 * s * s - psi
    hull: list[int] = []
    for k in np.argsort(s, kind="stable").tolist():
        while len(hull) >= 2:
            o, a = hull[-2], hull[-1]
            if (s[a] - s[o]) * (w[k] - w[o]) - (w[a] - w[o]) * (s[k] - s[o]) <= 0:
                hull.pop()
            else:
                break
        hull.append(k)
    idx = np.asarray(hull, dtype=np.int64)
    return idx[:-1], idx[1:]


def _edge_lines(y, psi, i, j, psi_lo=None):
    """The line {x : |x − y_i|² − 2ψ_i = |x − y_j|² − 2ψ_j} between cells i and j.

    Returns ``(p0, n, t, length, offset)``: unit normal n = (y_j − y_i)/|y_j − y_i|
    (outward for cell i), direction t = rot90(n), offset = (ψ_i − ψ_j)/|y_j − y_i| and the
    base point p0 = (y_i + y_j)/2 + offset·n, so the line is {p0 + τ t}.
    """
    yi, yj = y.take(i, axis=0), y.take(j, axis=0)
    d = yj - yi
    length = np.sqrt(np.einsum("ij,ij->i", d, d))
    n = d / length[:, None]
    offset = _psi_diff(psi, psi_lo, i, j) / length
    p0 = 0.5 * (yi + yj) + offset[:, None] * n
    t = np.stack([-n[:, 1], n[:, 0]], axis=1)
    return p0, n, t, length, offset


# ---------------------------------------------------------------------- clipping step


def _assemble(y, psi, lo, hi, ei, ej, tlo, thi, lines, triangulation=None) -> PowerDiagram2D:
    n = y.shape[0]
    low = np.asarray(lo)
    high = np.asarray(hi)
    width, height = high - low
    diam = float(np.hypot(width, height))
    ref = np.clip(y, low, high)
    p0, nrm, t, dist_ij, offset = lines

    # -- Liang–Barsky clipping of the lines {p0 + τ t} to the box
    with np.errstate(divide="ignore", invalid="ignore"):
        b1 = (low - p0) / t
        b2 = (high - p0) / t
    b_lo = np.minimum(b1, b2)
    b_hi = np.maximum(b1, b2)
    para = t == 0
    if para.any():  # lines parallel to a side: all of τ or nothing
        inside = (p0 >= low) & (p0 <= high)
        b_lo[para] = np.where(inside, -np.inf, np.inf)[para]
        b_hi[para] = np.where(inside, np.inf, -np.inf)[para]
    box_lo = np.maximum(b_lo[:, 0], b_lo[:, 1])
    box_hi = np.minimum(b_hi[:, 0], b_hi[:, 1])
    cl = np.maximum(tlo, box_lo)
    ch = np.minimum(thi, box_hi)
    keep = ch > cl
    # inverted (negative-length) segments inside the box only correct the areas
    inverted = (thi < tlo) & (thi >= box_lo) & (tlo <= box_hi)
    if inverted.any():
        inv_len = thi[inverted] - tlo[inverted]
        inv_i, inv_j = ei[inverted], ej[inverted]
        inv_nrm, inv_d, inv_off = nrm[inverted], dist_ij[inverted], offset[inverted]
    if para.any():
        # an edge lying on a side of the box separates a cell from one outside: drop it
        tol = 1e-13 * diam
        on_side = para & ((np.abs(p0 - low) <= tol) | (np.abs(p0 - high) <= tol))
        keep &= ~on_side.any(axis=1)
    # end points on the box boundary: clipped, or a diagram vertex (within rounding) at
    # the point where the line leaves the box
    tol = 1e-10 * diam
    lo_cut = box_lo >= tlo - tol
    hi_cut = box_hi <= thi + tol
    if not keep.all():
        ei, ej, cl, ch, lo_cut, hi_cut = (a[keep] for a in (ei, ej, cl, ch, lo_cut, hi_cut))
        p0, nrm, t, dist_ij, offset = (a.compress(keep, axis=0) for a in lines)
    length = ch - cl
    seg = np.concatenate([p0 + cl[:, None] * t, p0 + ch[:, None] * t], axis=1)
    seg = seg.reshape(-1, 2, 2)  # (E, 2, 2)
    np.minimum(np.maximum(seg, low, out=seg), high, out=seg)  # rounding only

    # -- diagram edges: ½ <x − r, n_out> |e|, constant along the edge
    area = np.zeros(n)
    shift = y - ref if (ref != y).any() else None
    _add_edge_areas(area, ei, ej, nrm, dist_ij, offset, length, shift)
    if inverted.any():
        _add_edge_areas(area, inv_i, inv_j, inv_nrm, inv_d, inv_off, inv_len, shift)

    ends = np.concatenate([seg[lo_cut, 0], seg[hi_cut, 1]])
    return _close(y, psi, lo, hi, ei, ej, length, seg, ends, area, ref, triangulation)


def _close(y, psi, lo, hi, ei, ej, length, seg, ends, area, ref, triangulation):
    """The box boundary's part of :func:`_assemble`: the boundary cut at the edge end
    points ``ends`` (M, 2) on it and at the corners, each piece given to the cell owning
    its midpoint and its ½ <x − r, n_out> ℓ added to ``area`` (the edges' part, updated
    in place); then the diagram."""
    n = y.shape[0]
    low = np.asarray(lo)
    high = np.asarray(hi)
    width, height = high - low
    gap = np.stack(
        [ends[:, 1] - low[1], high[0] - ends[:, 0], high[1] - ends[:, 1], ends[:, 0] - low[0]],
        axis=1,
    )
    perimeter = 2.0 * (width + height)
    corner_s = np.array([0.0, width, width + height, 2.0 * width + height])
    cross_s = _perimeter_coordinate(ends, np.abs(gap).argmin(axis=1), low, high) % perimeter
    starts = np.sort(np.concatenate([cross_s, corner_s]))
    stops = np.append(starts[1:], starts[0] + perimeter)
    piece = stops > starts
    starts, stops = starts[piece], stops[piece]
    mid = 0.5 * (starts + stops) % perimeter
    side = np.clip(np.searchsorted(corner_s, mid, side="right") - 1, 0, 3)
    mid_pts = _perimeter_point(mid, side, low, high)
    piece_len = stops - starts
    # every piece lies in one cell: the owner of its midpoint
    owner = _owners(y, psi, mid_pts, side)
    area += _boundary_area(owner, side, piece_len, ref, low, high, n)

    swap = ei > ej
    edges = np.stack([np.where(swap, ej, ei), np.where(swap, ei, ej)], axis=1)
    start_pts = _perimeter_point(starts % perimeter, side, low, high)
    stop_pts = _perimeter_point(stops % perimeter, side, low, high, at_end=True)
    return PowerDiagram2D(
        areas=np.maximum(area, 0.0),
        edges=edges.astype(np.int64),
        edge_lengths=length,
        edge_segments=seg,
        boundary_owner=owner.astype(np.int64),
        boundary_segments=np.stack([start_pts, stop_pts], axis=1),
        low=lo,
        high=hi,
        triangulation=triangulation,
    )


def _add_edge_areas(area, ei, ej, nrm, dist_ij, offset, length, shift) -> None:
    """Add ½ <x − r, n_out> |e| of every edge to both of its cells (in place), using
    <p0 − y_i, n> = |y_j − y_i|/2 + offset and <y_j − p0, n> = |y_j − y_i|/2 − offset and
    ``shift = y − r`` (None when every reference point r is the site itself)."""
    n = area.shape[0]
    dist_i = 0.5 * dist_ij + offset
    dist_j = 0.5 * dist_ij - offset
    if shift is not None:
        dist_i += np.einsum("ij,ij->i", shift.take(ei, axis=0), nrm)
        dist_j -= np.einsum("ij,ij->i", shift.take(ej, axis=0), nrm)
    area += np.bincount(ei, 0.5 * dist_i * length, minlength=n)
    area += np.bincount(ej, 0.5 * dist_j * length, minlength=n)


def _boundary_area(owner, side, piece_len, ref, low, high, n):
    """½ <x − r_o, n_side> ℓ of each boundary piece, summed per owner o."""
    r = ref[owner]
    support = np.choose(
        side, [r[:, 1] - low[1], high[0] - r[:, 0], high[1] - r[:, 1], r[:, 0] - low[0]]
    )
    area = np.zeros(n)
    area += np.bincount(owner, 0.5 * support * piece_len, minlength=n)
    return area


def _perimeter_coordinate(pts, side, low, high):
    """Counter-clockwise arc length from the corner (low_0, low_1) of boundary points."""
    w, hgt = high - low
    return np.choose(
        side,
        [
            pts[:, 0] - low[0],
            w + pts[:, 1] - low[1],
            w + hgt + high[0] - pts[:, 0],
            2 * w + hgt + high[1] - pts[:, 1],
        ],
    )


def _perimeter_point(s, side, low, high, at_end=False):
    """Inverse of :func:`_perimeter_coordinate` on the given side."""
    w, hgt = high - low
    if at_end:
        # a piece ends on the side it starts on; its end may wrap to s = 0
        s = np.where((side == 3) & (s < w), 2 * (w + hgt), s)
    zero = np.zeros_like(s)
    x = np.choose(side, [low[0] + s, high[0] + zero, high[0] - (s - w - hgt), low[0] + zero])
    yy = np.choose(
        side, [low[1] + zero, low[1] + (s - w), high[1] + zero, high[1] - (s - 2 * w - hgt)]
    )
    return np.stack([x, yy], axis=1)


def _best_cell(y, psi, cand, pts, side):
    """Owner of boundary points among candidate cells (M, K): the smallest power distance
    |x − y_c|² − 2ψ_c; exact ties (a diagram edge along the side) go to the cell that
    extends into the box."""
    diff = y[cand] - pts[:, None, :]
    sq = np.einsum("mkd,mkd->mk", diff, diff)
    power = sq - 2.0 * psi[cand]
    best = power.min(axis=1, keepdims=True)
    slack = 1e-12 * (np.abs(best) + sq.max(axis=1, keepdims=True))
    inward = -np.einsum("mkd,md->mk", y[cand], _NORMALS[side])
    pick = np.where(power <= best + slack, inward, -np.inf).argmax(axis=1)
    return cand[np.arange(cand.shape[0]), pick]


def _owners(y, psi, pts, side):
    """Exact owners of the boundary points ``pts`` (M, 2) among all cells.

    The power distance is a Euclidean distance after lifting: with C = max_i 2ψ_i,
    |x − y_i|² − 2ψ_i + C = |(x, 0) − (y_i, sqrt(C − 2ψ_i))|², so a k-d tree on the lifted
    sites returns candidates (the 8 nearest, which also covers rounding ties) that
    :func:`_best_cell` then ranks exactly.
    """
    n = y.shape[0]
    if n <= 8 or n * pts.shape[0] <= 2**18:
        return _best_all(y, psi, pts, side)
    lift = np.sqrt(np.maximum(2.0 * (psi.max() - psi), 0.0))
    tree = cKDTree(np.column_stack([y, lift]), balanced_tree=False, compact_nodes=False)
    _, cand = tree.query(np.column_stack([pts, np.zeros(pts.shape[0])]), k=8)
    return _best_cell(y, psi, cand, pts, side)


def _best_all(y, psi, pts, side, chunk=2**22):
    """:func:`_best_cell` over all cells, ``chunk`` distances at a time."""
    out = np.empty(pts.shape[0], np.int64)
    step = max(1, chunk // y.shape[0])
    cells = np.arange(y.shape[0])
    for a in range(0, pts.shape[0], step):
        p = pts[a : a + step]
        cand = np.broadcast_to(cells, (p.shape[0], y.shape[0]))
        out[a : a + step] = _best_cell(y, psi, cand, p, side[a : a + step])
    return out
