"""Exact cell decomposition of a 2-D slice of a ReLU network's input space.

On the slice ``x = origin + s·u + t·v`` every pre-activation is, on each cell of the
decomposition induced by the earlier layers, an affine function of ``(s, t)``.  The
algorithm keeps a list of convex polygons together with the affine map from
``(s, t)`` to the current layer's pre-activations and clips each polygon by the
zero line of every neuron of the layer (a Sutherland–Hodgman half-plane split of a
convex polygon into its positive and negative parts), layer by layer.

Implementation (all numpy float64, vectorised across polygons):

* Per layer, the pre-activation maps ``Z_p`` (3 × n, homogeneous in ``(s, t, 1)``)
  are computed for the polygons at the start of the layer (the *sources*).  Splits
  inside a layer never change these maps, so every descendant polygon inherits its
  source's ``Z_p``.  The children of one polygon differ in a few bits only, so one
  child each gets the matrix product ``(m × n)`` and its siblings a rank-1 term
  per differing bit (:meth:`_Maps.apply`).
* A neuron can only split descendants of a source whose polygon its zero line
  meets, so the candidate (source, neuron) pairs — the line meets the source's
  bounding box — are found at once; every other pair has a definite sign.  The
  splits are then applied in *rounds* (round ``r`` clips all current descendants
  of each source by that source's ``r``-th candidate neuron; a descendant the line
  misses just records its side), and polygons whose source has no candidate left
  are set aside.  Each round clips many polygons at once with flat vertex arrays.
  A source with many candidates (the whole box at the first layer) is split by
  halves of the layer instead, the pieces' candidates tested afresh
  (:func:`_split_layer`).
* Depth first: a batch of polygons (about 2^20 map entries) goes through all later
  layers before the next batch enters, so no ``(P, n)`` array of a whole layer is
  ever held; the patterns are kept packed, and the maps of the last layer are
  recomputed from them only when asked for (``CellDecomposition.st_maps``).
* Tolerances: a vertex with ``|z| <= rtol·(|a|·S + |b|·T + |c|)`` (``z = a s + b t
  + c``, ``S``, ``T`` the box's largest ``|s|``, ``|t|``) lies *on* the line: it
  goes to both children and never creates a new cell on its own; a polygon is
  split only when it has vertices strictly on both sides, and a split that
  would leave a child of area ``<= (rtol·diam)^2`` is not made (no zero-area
  slivers).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from aeot.relu.network import ReluNetwork, as_relu_network
from aeot.relu.slices import PlaneSlice

__all__ = [
    "Cell",
    "CellDecomposition",
    "decompose_slice",
    "grid_pattern_count",
    "unique_rows",
]


# ----------------------------------------------------------------------------- helpers
#: elements per block of the blocked (P, n) computations (~2 MB of float64)
_BLOCK_ELEMS = 1 << 18
#: elements of one batch's (cells, 3, n) pre-activation maps in the depth-first descent
_BATCH_ELEMS = 1 << 20
#: a child differing from its representative in more than ``m / ratio`` bits of an
#: m-neuron layer gets its own matrix product (see :meth:`_Maps.apply`)
_REP_DIFF_RATIO = 16
#: elements per block of the candidate test (:func:`_candidates`), cache-sized
_CAND_BLOCK_ELEMS = 1 << 15
#: a polygon with more candidate lines is split by halves of the layer (:func:`_split_layer`)
_MAX_ROUNDS = 32


def _offsets(counts: np.ndarray) -> np.ndarray:
    off = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=off[1:])
    return off


def _next_index(counts: np.ndarray) -> np.ndarray:
    """Index of the next vertex (cyclically, within its polygon) for flat vertex arrays."""
    off = _offsets(counts)
    nxt = np.arange(1, int(off[-1]) + 1, dtype=np.int64)
    nxt[off[1:] - 1] = off[:-1]
    return nxt


def _signed_areas(verts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Shoelace areas (positive for counter-clockwise) of flat polygons, shape (P,)."""
    if counts.size == 0:
        return np.zeros(0)
    nxt = _next_index(counts)
    cross = verts[:, 0] * verts[nxt, 1] - verts[nxt, 0] * verts[:, 1]
    poly = np.repeat(np.arange(counts.size), counts)
    return 0.5 * np.bincount(poly, weights=cross, minlength=counts.size)


def _check_box(box) -> tuple[float, float, float, float]:
    try:
        s0, s1, t0, t1 = (float(b) for b in box)
    except (TypeError, ValueError):
        raise ValueError(f"box must be (s_min, s_max, t_min, t_max), got {box!r}") from None
    if not all(np.isfinite([s0, s1, t0, t1])):
        raise ValueError(f"box bounds must be finite, got {box!r}")
    if not (s0 < s1 and t0 < t1):
        raise ValueError(f"box must have s_min < s_max and t_min < t_max, got {box!r}")
    return s0, s1, t0, t1


def _affine(h: np.ndarray, wt: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Pre-activation maps ``h @ W^T + [0, 0, b]`` of maps ``h`` (B, 3, m): (B, 3, n).

    The one matrix product of the maps with the weights, shared by
    :func:`decompose_slice` and the maps recomputed later from the patterns
    (:func:`_pattern_maps`), so that these round alike where both take a product.
    """
    n_out = wt.shape[1]
    out = np.empty((h.shape[0], 3, n_out))
    np.matmul(h.reshape(-1, wt.shape[0]), wt, out=out.reshape(-1, n_out))
    out[:, 2, :] += bias
    return out


@dataclass
class _Maps:
    """Homogeneous maps ``[s, t, 1] @ H_p`` of a batch of polygons, stored lazily as
    ``H = base[src] * where(bits, 1, slope)`` (``src`` None: ``H = base``)."""

    base: np.ndarray  # (P0, 3, m)
    src: np.ndarray | None = None  # (P,), non-decreasing (children grouped by source)
    bits: np.ndarray | None = None  # (P, m) bool
    slope: float = 0.0

    def apply(self, wt: np.ndarray, bias: np.ndarray, sl: slice) -> np.ndarray:
        """Next stage's pre-activation maps of the polygons in ``sl``: (B, 3, n_out).

        Children of one source differ only in the few neurons whose lines split it.
        The first child of each source in ``sl`` (its *representative* ``r``) gets the
        matrix product ``Z_r = H_r W^T + [0, 0, b]``; a sibling ``p`` differing from it
        in the bits ``D_p`` gets one rank-1 term per differing bit,

        ``Z_p = Z_r + sum_{j in D_p} (μ_pj - μ_rj) H0[:, j] ⊗ W^T[j, :]``,

        with ``H0 = base[src]`` (3 × m) and ``μ = where(bits, 1, slope)``, unless
        ``|D_p| > m // _REP_DIFF_RATIO``, where its own product is cheaper.  (The
        siblings' maps differ from their products by rounding only.)
        """
        if self.src is None:
            return _affine(self.base[sl], wt, bias)
        src, bits = self.src[sl], self.bits[sl]
        first = np.ones(src.size, dtype=bool)
        first[1:] = src[1:] != src[:-1]
        rep = np.flatnonzero(first)[np.cumsum(first) - 1]  # (B,) representative's row
        diff = bits != bits[rep]
        n_diff = np.count_nonzero(diff, axis=1)
        direct = first | (n_diff > wt.shape[0] // _REP_DIFF_RATIO)
        rows = np.flatnonzero(direct)
        h = self.base[src[rows]]
        h *= np.where(bits[rows], 1.0, self.slope)[:, None, :]
        z_direct = _affine(h, wt, bias)
        if rows.size == src.size:
            return z_direct
        z = np.empty((src.size, 3, wt.shape[1]))
        z[rows] = z_direct
        rows = np.flatnonzero(~direct)
        terms = self._sibling_terms(wt, src[rows], bits[rows], diff[rows])
        terms += z[rep[rows]]  # the representatives' products, written above
        z[rows] = terms
        return z

    def _sibling_terms(
        self, wt: np.ndarray, src: np.ndarray, bits: np.ndarray, diff: np.ndarray
    ) -> np.ndarray:
        """``sum_{j in D_p} (μ_pj - μ_rj) H0[:, j] ⊗ W^T[j, :]`` of siblings ``p`` with
        sources ``src`` (S,), bits (S, m) and ``diff`` (S, m) bool = ``D_p``: (S, 3, n).

        One sparse product: the (3S, m) matrix of the coefficients ``(μ_pj - μ_rj)
        H0[k, j]`` (``|D_p|`` entries a row) times ``W^T`` (m, n).
        """
        from scipy.sparse import csr_matrix  # deferred: keeps ``import aeot.relu`` light

        child, col = np.nonzero(diff)  # grouped by child, columns ascending
        per_child = np.count_nonzero(diff, axis=1)
        step = np.where(bits[child, col], 1.0 - self.slope, self.slope - 1.0)
        coef = self.base[src[child], :, col] * step[:, None]  # (E, 3)
        # CSR rows 3p, 3p + 1, 3p + 2 hold child p's entries: entry (e, k) goes to
        # 3 off[p] + k |D_p| + (e - off[p])
        off = _offsets(per_child)
        within = np.arange(child.size) - off[child]
        dest = 3 * off[child, None] + np.arange(3) * per_child[child, None] + within[:, None]
        data = np.empty(3 * child.size)
        data[dest] = coef
        indices = np.empty(3 * child.size, dtype=np.int64)
        indices[dest] = col[:, None]
        indptr = _offsets(np.repeat(per_child, 3))
        terms = csr_matrix((data, indices, indptr), shape=(3 * src.size, wt.shape[0])) @ wt
        return terms.reshape(src.size, 3, wt.shape[1])


class _PackedPatterns:
    """Activation bits of P cells, packed: layer ``k`` is ``np.packbits(bits_k, axis=1)``
    in bytes ``byte_offsets[k]:byte_offsets[k + 1]`` of each row of ``packed`` (P, B)."""

    def __init__(self, packed: np.ndarray, widths: Sequence[int]):
        self.packed = packed
        self.widths = tuple(int(w) for w in widths)
        self.byte_offsets = _offsets(np.array([(w + 7) // 8 for w in self.widths], dtype=np.int64))

    def layer_bytes(self, k: int, rows: slice | np.ndarray) -> np.ndarray:
        """Packed bits of layer ``k`` of the given rows: uint8 (R, ceil(n_k / 8))."""
        return self.packed[rows, self.byte_offsets[k] : self.byte_offsets[k + 1]]

    def layer(self, k: int, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """Bits of layer ``k`` of the given rows: bool (R, n_k)."""
        bits = np.unpackbits(self.layer_bytes(k, rows), axis=1, count=self.widths[k])
        return bits.view(bool)


def _pattern_maps(
    network: ReluNetwork, plane: PlaneSlice, patterns: _PackedPatterns, sl: slice
) -> np.ndarray:
    """Homogeneous (s, t) → output maps of the cells in ``sl`` from their patterns:
    (B, 3, d_out).

    The map of a cell after layer ``k`` depends only on its bits up to ``k``, so
    consecutive cells with equal bits so far share one map: each layer multiplies
    one map per such run (cells of :func:`decompose_slice` come depth first, so the
    runs are its polygons at that layer and the products are the ones it made).
    """
    n = sl.stop - sl.start
    h = plane.homogeneous[None]  # (G, 3, m): one map per run of equal bits so far
    run = np.zeros(n, dtype=np.int64)  # each cell's run
    k = 0
    for st in network.stages:
        z = _affine(h, np.ascontiguousarray(st.weight.T), st.bias)
        if not st.n_neurons:
            h = z
            continue
        packed = patterns.layer_bytes(k, sl)
        new = np.ones(n, dtype=bool)
        new[1:] = (run[1:] != run[:-1]) | (packed[1:] != packed[:-1]).any(axis=1)
        first = np.flatnonzero(new)
        bits = patterns.layer(k, first + sl.start)
        h = z[run[first]]
        h *= np.where(bits, 1.0, st.negative_slope)[:, None, :]
        run = np.cumsum(new) - 1
        k += 1
    return h[run]


def _bounding_boxes(verts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres and half-sizes, both (P, 2), of the bounding boxes of flat polygons."""
    if counts.size == 0:
        return np.zeros((0, 2)), np.zeros((0, 2))
    starts = _offsets(counts)[:-1]
    lo = np.minimum.reduceat(verts, starts, axis=0)
    hi = np.maximum.reduceat(verts, starts, axis=0)
    return 0.5 * (lo + hi), 0.5 * (hi - lo)


def _candidates(
    verts: np.ndarray, counts: np.ndarray, z: np.ndarray, rtol: float, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which zero lines may split which polygons: the line meets the bounding box.

    With the box's centre ``(cs, ct)`` and half-sizes ``(hs, ht)``, ``z = a s + b t + c``
    ranges over ``zc ± (|a| hs + |b| ht)`` on it (``zc = a cs + b ct + c``); widened by
    the tolerance ``rtol (|a| S + |b| T + |c|)`` this is ``zc ± reach``,
    ``reach = |a| (hs + rtol S) + |b| (ht + rtol T) + |c| rtol``.  The sign is definite
    (every vertex strictly on one side) when ``|zc| > reach``, otherwise (source,
    neuron) is a candidate, settled exactly by :func:`_clip_rounds`.

    Parameters
    ----------
    verts (V, 2), counts (P0,) : flat polygons; z : (P0, 3, n) their maps
    rtol, scale : tolerances (see the module docstring); scale = (S, T, 1)

    Returns
    -------
    base_bits : (P0, n) bool, ``zc > reach`` (definitely positive on the whole box)
    rows, cols : (E,) int64, the candidate pairs in row-major order (grouped by
        polygon, neurons ascending)
    """
    n_src, _, n = z.shape
    centre, half = _bounding_boxes(verts, counts)
    wa = half[:, 0] + rtol * scale[0]
    wb = half[:, 1] + rtol * scale[1]
    base_bits = np.empty((n_src, n), dtype=bool)
    cross = np.empty((n_src, n), dtype=bool)
    rows, cols = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    # in blocks of sources: the temporaries stay in cache and are reused
    block = max(1, _CAND_BLOCK_ELEMS // max(n, 1))
    for b0 in range(0, n_src, block):
        sl = slice(b0, b0 + block)
        zb = z[sl]
        reach = np.abs(zb[:, 0, :])
        reach *= wa[sl, None]
        tmp = np.abs(zb[:, 1, :])
        tmp *= wb[sl, None]
        reach += tmp
        np.abs(zb[:, 2, :], out=tmp)
        tmp *= rtol
        reach += tmp
        zc = zb[:, 0, :] * centre[sl, 0, None]
        np.multiply(zb[:, 1, :], centre[sl, 1, None], out=tmp)
        zc += tmp
        zc += zb[:, 2, :]
        np.greater(zc, reach, out=base_bits[sl])
        np.abs(zc, out=zc)
        np.less_equal(zc, reach, out=cross[sl])
        r, c = np.nonzero(cross[sl])
        rows.append(r + b0)
        cols.append(c)
    return base_bits, np.concatenate(rows), np.concatenate(cols)


def _clip_rounds(
    verts: np.ndarray,
    counts: np.ndarray,
    coef: np.ndarray,
    tol: np.ndarray,
    n_cross: np.ndarray,
    area_tol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Clip each source's descendants by its candidate lines, one candidate a round.

    Parameters
    ----------
    verts (V, 2), counts (P0,) : flat counter-clockwise polygons (the sources)
    coef : (P0, R, 3) line ``r`` of source ``p`` is ``[s, t, 1] @ coef[p, r] = 0``
        (rows ``r >= n_cross[p]`` unused); tol : (P0, R) its tolerance
    n_cross : (P0,) lines per source
    area_tol : a split leaving a child of area ``<= area_tol`` is not made

    Returns
    -------
    verts (V', 2), counts (P,), src (P,) source index,
    side (P, R) bool: the piece is on the positive side of its source's line ``r``
    """
    n_src = counts.size
    max_rounds = coef.shape[1]
    nbytes = (max_rounds + 7) // 8
    done_v: list[np.ndarray] = []
    done_c: list[np.ndarray] = []
    done_s: list[np.ndarray] = []
    done_b: list[np.ndarray] = []
    src_all = np.arange(n_src)
    finished = n_cross == 0
    fv = np.repeat(finished, counts)
    done_v.append(verts[fv])
    done_c.append(counts[finished])
    done_s.append(src_all[finished])
    done_b.append(np.zeros((int(finished.sum()), nbytes), dtype=np.uint8))
    a_verts = np.concatenate([verts[~fv], np.ones((int((~fv).sum()), 1))], axis=1)
    a_counts = counts[~finished]
    a_src = src_all[~finished]
    a_bits = np.zeros((a_counts.size, nbytes), dtype=np.uint8)
    for r in range(max_rounds):
        if a_counts.size == 0:
            break
        n_act = a_counts.size
        pv = np.repeat(np.arange(n_act), a_counts)
        val = np.einsum("vk,vk->v", a_verts, coef[a_src, r][pv])
        vtol = tol[a_src, r][pv]
        pos = val > vtol
        neg = val < -vtol
        starts = _offsets(a_counts)[:-1]
        side = np.logical_or.reduceat(pos, starts)  # some vertex strictly positive
        cut = side & np.logical_or.reduceat(neg, starts)
        # a polygon with every vertex within tol of the line has z == 0 on it: not firing
        byte, mask = r // 8, np.uint8(1 << (r % 8))

        pos_v = neg_v = np.zeros((0, 3))
        pos_c = neg_c = np.zeros(0, dtype=np.int64)
        cut_idx = np.flatnonzero(cut)
        if cut_idx.size:
            cvm = cut[pv]
            cverts = a_verts[cvm]
            cval = val[cvm]
            csgn = pos[cvm].astype(np.int8) - neg[cvm].astype(np.int8)
            ccounts = a_counts[cut_idx]
            nxt = _next_index(ccounts)
            cross = (csgn * csgn[nxt]) < 0
            denom = np.where(cross, cval - cval[nxt], 1.0)
            frac = np.where(cross, cval / denom, 0.0)
            ipts = cverts + frac[:, None] * (cverts[nxt] - cverts)
            cand = np.stack([cverts, ipts], axis=1).reshape(-1, 3)
            keep_pos = np.stack([csgn >= 0, cross], axis=1).reshape(-1)
            keep_neg = np.stack([csgn <= 0, cross], axis=1).reshape(-1)
            cpoly = np.repeat(np.arange(cut_idx.size), ccounts)
            cpoly2 = np.repeat(cpoly, 2)
            pos_v = cand[keep_pos]
            neg_v = cand[keep_neg]
            pos_c = np.bincount(cpoly2[keep_pos], minlength=cut_idx.size)
            neg_c = np.bincount(cpoly2[keep_neg], minlength=cut_idx.size)
            a_pos = _signed_areas(pos_v[:, :2], pos_c)
            a_neg = _signed_areas(neg_v[:, :2], neg_c)
            bad = (a_pos <= area_tol) | (a_neg <= area_tol)
            if bad.any():
                # refuse zero-area splits: the polygon stays whole, on its larger side
                side[cut_idx[bad]] = a_pos[bad] > a_neg[bad]
                cut[cut_idx[bad]] = False
                good = ~bad
                pos_v = pos_v[np.repeat(good, pos_c)]
                neg_v = neg_v[np.repeat(good, neg_c)]
                pos_c = pos_c[good]
                neg_c = neg_c[good]
                cut_idx = cut_idx[good]
        whole = ~cut
        a_bits[whole & side, byte] |= mask
        new_verts = np.concatenate([a_verts[whole[pv]], pos_v, neg_v])
        new_counts = np.concatenate([a_counts[whole], pos_c, neg_c])
        new_src = np.concatenate([a_src[whole], a_src[cut_idx], a_src[cut_idx]])
        pos_bits = a_bits[cut_idx]
        pos_bits[:, byte] |= mask
        new_bits = np.concatenate([a_bits[whole], pos_bits, a_bits[cut_idx]])
        # polygons whose source has no crossing neuron after this round are finished
        fin = n_cross[new_src] <= r + 1
        fv = np.repeat(fin, new_counts)
        if fin.any():
            done_v.append(new_verts[fv][:, :2])
            done_c.append(new_counts[fin])
            done_s.append(new_src[fin])
            done_b.append(new_bits[fin])
        a_verts = new_verts[~fv]
        a_counts = new_counts[~fin]
        a_src = new_src[~fin]
        a_bits = new_bits[~fin]

    side = np.unpackbits(np.concatenate(done_b), axis=1, bitorder="little", count=max_rounds)
    return (
        np.concatenate(done_v),
        np.concatenate(done_c),
        np.concatenate(done_s),
        side.astype(bool),
    )


def _split_layer(
    verts: np.ndarray,
    counts: np.ndarray,
    z: np.ndarray,
    rtol: float,
    scale: np.ndarray,
    area_tol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split convex polygons by the zero lines of one layer's neurons.

    Each polygon is clipped by its candidate lines (:func:`_candidates`) in the order
    of the neurons, one line a round for all polygons at once (:func:`_clip_rounds`).
    A polygon with more than ``_MAX_ROUNDS`` candidates (a large one, e.g. the whole
    box at the first layer) is instead split by the first half of the neurons and
    its pieces, whose candidates are tested afresh, by the second half
    (:func:`_split_halves`): the same clips in the same order, far fewer of the
    pieces tested against lines that miss them.

    Parameters
    ----------
    verts : (V, 2) flat counter-clockwise vertices; counts : (P0,) vertices per polygon
    z : (P0, 3, n) homogeneous pre-activation maps, ``z_p(s, t) = [s, t, 1] @ z[p]``
    rtol, scale, area_tol : tolerances (see module docstring); scale = (S, T, 1)

    Returns
    -------
    verts (V', 2), counts (P,), src (P,) source index, bits (P, n) bool
    """
    base_bits, rows, cols = _candidates(verts, counts, z, rtol, scale)
    lines = z[rows, :, cols]  # (E, 3)
    crowded = np.bincount(rows, minlength=counts.size) > _MAX_ROUNDS
    if z.shape[2] < 2 or not crowded.any():
        return _clip_candidates(verts, counts, base_bits, rows, cols, lines, rtol, scale, area_tol)
    parts = []
    for sel in (~crowded, crowded):
        idx = np.flatnonzero(sel)
        if idx.size == 0:
            continue
        sel_verts = verts[np.repeat(sel, counts)]
        if sel is crowded:
            v, c, s, b = _split_halves(sel_verts, counts[idx], z[idx], rtol, scale, area_tol)
        else:
            pair = sel[rows]
            renum = np.cumsum(sel) - 1
            v, c, s, b = _clip_candidates(
                sel_verts,
                counts[idx],
                base_bits[idx],
                renum[rows[pair]],
                cols[pair],
                lines[pair],
                rtol,
                scale,
                area_tol,
            )
        parts.append((v, c, idx[s], b))
    v, c, s, b = (np.concatenate(p) for p in zip(*parts, strict=True))
    return v, c, s, b


def _clip_candidates(
    verts: np.ndarray,
    counts: np.ndarray,
    base_bits: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    lines: np.ndarray,
    rtol: float,
    scale: np.ndarray,
    area_tol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Clip polygons by their candidate lines and assemble the pieces' bits.

    Parameters
    ----------
    verts (V, 2), counts (P0,) : flat polygons
    base_bits : (P0, n) bool, the bits of the neurons that are not candidates
    rows, cols : (E,) candidate pairs (polygon, neuron), row-major
    lines : (E, 3) their lines ``[s, t, 1] @ lines[e] = 0``
    rtol, scale, area_tol : tolerances (see the module docstring)

    Returns
    -------
    verts (V', 2), counts (P,), src (P,) source index, bits (P, n) bool
    """
    n_src = counts.size
    n_cross = np.bincount(rows, minlength=n_src)
    max_rounds = int(n_cross.max()) if n_src else 0
    if max_rounds == 0:
        return verts, counts, np.arange(n_src), base_bits
    rank = np.arange(rows.size) - np.repeat(_offsets(n_cross)[:-1], n_cross)
    jtab = np.zeros((n_src, max_rounds), dtype=np.int64)
    jtab[rows, rank] = cols
    coef = np.zeros((n_src, max_rounds, 3))
    coef[rows, rank] = lines
    # the tolerance rtol (|a| S + |b| T + |c|) of each candidate line
    a = np.abs(coef)
    tol = a[:, :, 0] * (rtol * scale[0])
    tol += a[:, :, 1] * (rtol * scale[1])
    tol += a[:, :, 2] * rtol
    out_v, out_c, out_s, side = _clip_rounds(verts, counts, coef, tol, n_cross, area_tol)
    bits = base_bits[out_s]
    for r in range(max_rounds):
        idx = np.flatnonzero(n_cross[out_s] > r)
        bits[idx, jtab[out_s[idx], r]] = side[idx, r]
    return out_v, out_c, out_s, bits


def _split_halves(
    verts: np.ndarray,
    counts: np.ndarray,
    z: np.ndarray,
    rtol: float,
    scale: np.ndarray,
    area_tol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_split_layer` by the neurons ``[0, n/2)``, then each piece by ``[n/2, n)``
    (its candidates tested afresh on the piece); returns the same."""
    h = z.shape[2] // 2
    v1, c1, s1, b1 = _split_layer(verts, counts, z[:, :, :h], rtol, scale, area_tol)
    v2, c2, s2, b2 = _split_layer(v1, c1, z[s1, :, h:], rtol, scale, area_tol)
    return v2, c2, s1[s2], np.concatenate([b1[s2], b2], axis=1)


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Cell:
    """One cell (activation region) of a slice decomposition.

    Attributes
    ----------
    index : int
    vertices : np.ndarray, shape (k, 2)
        Counter-clockwise polygon in slice coordinates (s, t).
    vertices_input : np.ndarray, shape (k, d)
        The same polygon in input space.
    pattern : tuple of np.ndarray of bool, shapes (n_l,)
        Activation pattern, one array per layer with neurons.
    area : float
        Area in (s, t) coordinates.
    interior_point : np.ndarray, shape (2,)
        A point strictly inside the cell (vertex mean), in (s, t).
    A_st, b_st : np.ndarray, shapes (d_out, 2), (d_out,)
        ``f(x(s, t)) = A_st @ (s, t) + b_st`` on the cell.
    A, b : np.ndarray, shapes (d_out, d), (d_out,)
        ``f(x) = A x + b`` on the cell (input space).
    """

    index: int
    vertices: np.ndarray
    vertices_input: np.ndarray
    pattern: tuple[np.ndarray, ...]
    area: float
    interior_point: np.ndarray
    A_st: np.ndarray
    b_st: np.ndarray
    A: np.ndarray
    b: np.ndarray


class CellDecomposition:
    """Exact decomposition of a planar slice into activation regions.

    Produced by :func:`decompose_slice`.  Cells are stored as flat polygon arrays.

    Attributes
    ----------
    network : ReluNetwork
    plane : PlaneSlice
    box : tuple (s_min, s_max, t_min, t_max)
    vertices : np.ndarray, shape (V, 2)
        All cells' vertices in (s, t), concatenated, counter-clockwise per cell.
    offsets : np.ndarray, shape (P + 1,)
        Cell ``i`` has vertices ``vertices[offsets[i]:offsets[i + 1]]``.
    patterns : list of np.ndarray of bool, shapes (P, n_l)
        Activation bits of each cell, one array per layer with neurons (kept packed,
        8 cells' bits a byte, and unpacked on first use).
    st_maps : np.ndarray, shape (P, 3, d_out)
        Homogeneous affine maps: ``f = [s, t, 1] @ st_maps[i]`` on cell ``i``
        (recomputed from the patterns on first use when not given).
    """

    def __init__(
        self,
        network: ReluNetwork,
        plane: PlaneSlice,
        box: tuple[float, float, float, float],
        vertices: np.ndarray,
        offsets: np.ndarray,
        patterns: list[np.ndarray] | _PackedPatterns,
        st_maps: np.ndarray | None,
        rtol: float,
    ):
        self.network = network
        self.plane = plane
        self.box = box
        self.vertices = vertices
        self.offsets = offsets
        self._patterns: list[np.ndarray] | None = None
        if isinstance(patterns, _PackedPatterns):
            self._packed = patterns
        else:
            self._patterns = list(patterns)
            packed = [np.packbits(p, axis=1) for p in self._patterns]
            self._packed = _PackedPatterns(
                np.concatenate(packed, axis=1) if packed else np.zeros((self.n_cells, 0), np.uint8),
                [p.shape[1] for p in self._patterns],
            )
        self._st_maps = st_maps
        self.rtol = rtol
        self._areas: np.ndarray | None = None

    @property
    def patterns(self) -> list[np.ndarray]:
        """Activation bits of each cell, one bool array (P, n_l) per layer with neurons
        (unpacked on first use)."""
        if self._patterns is None:
            self._patterns = [self._packed.layer(k) for k in range(len(self._packed.widths))]
        return self._patterns

    @property
    def st_maps(self) -> np.ndarray:
        """Homogeneous (s, t) → output maps, shape (P, 3, d_out): ``f = [s, t, 1] @ M``
        (computed on first use)."""
        if self._st_maps is None:
            out = np.empty((self.n_cells, 3, self.network.output_dim))
            for sl, maps in self._map_blocks():
                out[sl] = maps
            self._st_maps = out
        return self._st_maps

    def _map_blocks(self) -> Iterator[tuple[slice, np.ndarray]]:
        """``st_maps`` in blocks of cells (recomputed from the patterns when not kept)."""
        block = max(1, _BLOCK_ELEMS // (3 * max(self.network.widths)))
        for b0 in range(0, self.n_cells, block):
            sl = slice(b0, min(b0 + block, self.n_cells))
            if self._st_maps is not None:
                yield sl, self._st_maps[sl]
            else:
                yield sl, _pattern_maps(self.network, self.plane, self._packed, sl)

    # -- sizes --------------------------------------------------------------------
    @property
    def n_cells(self) -> int:
        """Number of cells (activation regions met by the slice box)."""
        return int(self.offsets.size - 1)

    def __len__(self) -> int:
        return self.n_cells

    def __repr__(self) -> str:
        return (
            f"CellDecomposition({self.n_cells} cells, {self.n_affine_pieces} affine pieces, "
            f"box={self.box}, network={self.network!r})"
        )

    @property
    def counts(self) -> np.ndarray:
        """Number of vertices of each cell, shape (P,)."""
        return np.diff(self.offsets)

    @property
    def box_area(self) -> float:
        """Area of the (s, t) box: ``(s_max - s_min) (t_max - t_min)``."""
        s0, s1, t0, t1 = self.box
        return (s1 - s0) * (t1 - t0)

    @property
    def areas(self) -> np.ndarray:
        """(s, t) area of each cell, shape (P,) (multiply by ``plane.area_factor``
        for input-space area)."""
        if self._areas is None:
            self._areas = _signed_areas(self.vertices, self.counts)
        return self._areas

    @property
    def total_area(self) -> float:
        """Sum of the cell areas; equals ``box_area`` up to rounding."""
        return float(self.areas.sum())

    # -- cells ----------------------------------------------------------------------
    def polygon(self, i: int) -> np.ndarray:
        """Vertices (k, 2) of cell ``i`` in (s, t)."""
        return self.vertices[self.offsets[i] : self.offsets[i + 1]]

    @property
    def polygons(self) -> list[np.ndarray]:
        """All cells as a list of (k_i, 2) vertex arrays in (s, t)."""
        return np.split(self.vertices, self.offsets[1:-1])

    @property
    def vertices_input(self) -> np.ndarray:
        """All cell vertices in input space, shape (V, d), aligned with :attr:`vertices`."""
        return self.plane.to_input(self.vertices)

    @property
    def input_polygons(self) -> list[np.ndarray]:
        """All cells as a list of (k_i, d) vertex arrays in input space."""
        return np.split(self.vertices_input, self.offsets[1:-1])

    @property
    def interior_points(self) -> np.ndarray:
        """One point strictly inside each (convex) cell, the vertex mean, shape (P, 2)."""
        poly = np.repeat(np.arange(self.n_cells), self.counts)
        sums = np.stack(
            [
                np.bincount(poly, weights=self.vertices[:, k], minlength=self.n_cells)
                for k in (0, 1)
            ],
            axis=1,
        )
        return sums / self.counts[:, None]

    def to_input(self, st) -> np.ndarray:
        """Slice coordinates (..., 2) to input points (..., d)."""
        return self.plane.to_input(st)

    @property
    def pattern_matrix(self) -> np.ndarray:
        """All activation bits of each cell concatenated, bool (P, n_neurons)."""
        if not self.patterns:
            return np.zeros((self.n_cells, 0), dtype=bool)
        return np.concatenate(self.patterns, axis=1)

    @property
    def n_activation_regions(self) -> int:
        """Number of distinct activation patterns among the cells (== ``n_cells``: each
        pattern's region is convex, so it meets the box in one polygon)."""
        if not self._packed.widths:
            return 1
        return int(unique_rows(self._packed.packed).shape[0])

    def st_affine_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """Affine maps of the cells in slice coordinates.

        Returns
        -------
        A_st : (P, d_out, 2), b_st : (P, d_out) with ``f = A_st @ (s, t) + b_st``.
        """
        return np.ascontiguousarray(self.st_maps[:, :2, :].transpose(0, 2, 1)), self.st_maps[
            :, 2, :
        ].copy()

    def input_affine_maps(
        self, cells: Sequence[int] | np.ndarray | None = None, chunk: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Affine maps of cells in input space, from their activation patterns.

        Parameters
        ----------
        cells : sequence of int, optional
            Which cells (default all).
        chunk : int, optional
            Cells per batch (default: about 32 MB of work arrays per batch).

        Returns
        -------
        A : (P, d_out, d), b : (P, d_out) with ``f(x) = A x + b`` on each cell.
        """
        idx = np.arange(self.n_cells) if cells is None else np.asarray(cells, dtype=np.int64)
        if chunk is None:
            widest = max(self.network.widths)
            chunk = max(1, (1 << 22) // ((self.network.input_dim + 1) * widest))
        a_parts, b_parts = [], []
        for lo in range(0, max(idx.size, 1), chunk):
            sel = idx[lo : lo + chunk]
            if self._packed.widths:
                layers = range(len(self._packed.widths))
                a, b = self.network.affine_maps([self._packed.layer(k, sel) for k in layers])
            else:  # no neurons: one affine map everywhere
                a, b = self.network.affine_maps([])
                a, b = np.repeat(a, sel.size, 0), np.repeat(b, sel.size, 0)
            a_parts.append(a)
            b_parts.append(b)
        return np.concatenate(a_parts), np.concatenate(b_parts)

    def affine_piece_labels(self, rtol: float = 1e-9) -> np.ndarray:
        """Label cells by their affine map on the slice (int64, shape (P,)).

        Cells whose (s, t) → output maps agree up to ``rtol`` relative to the map's
        largest coefficient get the same label.  Activation regions with the same
        affine map (e.g. where every neuron of some layer is off, so the map is
        constant) form one *affine piece* of the function.

        Notes
        -----
        Each map ``M`` (3 × d_out) is quantised as ``(e, rint(M / (rtol 2^e)))`` with
        ``2^e >= max |M|`` the next power of two, and the integer keys are grouped
        by a 128-bit random linear hash (collisions have probability ~ P² 2^-128).
        """
        if self.n_cells == 0:
            return np.zeros(0, dtype=np.int64)
        m = 3 * self.network.output_dim
        rng = np.random.default_rng(0x5EED)
        mult = rng.integers(1, 2**62, size=(m, 2)) | 1
        mult_e = rng.integers(1, 2**62, size=2) | 1
        hashed = np.empty((self.n_cells, 2), dtype=np.int64)
        for sl, maps in self._map_blocks():
            rows = maps.reshape(-1, m)
            big = np.abs(rows).max(axis=1)
            _, expo = np.frexp(big)  # big < 2**expo, expo = 0 for a zero map
            quantum = np.ldexp(rtol, expo)
            quantum[big == 0] = 1.0
            keys = np.rint(rows / quantum[:, None]).astype(np.int64)  # |keys| <= 1 / rtol
            hashed[sl] = keys @ mult + expo[:, None].astype(np.int64) * mult_e
        _, labels = unique_rows(hashed.view(np.uint8), return_inverse=True)
        return labels

    @property
    def n_affine_pieces(self) -> int:
        """Number of distinct affine maps over the cells (``<= n_cells``)."""
        return int(self.affine_piece_labels().max()) + 1 if self.n_cells else 0

    def cell(self, i: int) -> Cell:
        """The :class:`Cell` ``i`` with its polygon, pattern and affine maps."""
        if not -self.n_cells <= i < self.n_cells:
            raise IndexError(f"cell index {i} out of range for {self.n_cells} cells")
        i = i % self.n_cells
        poly = self.polygon(i)
        m_i = self.st_maps[i]  # (3, d_out)
        a, b = self.input_affine_maps([i])
        return Cell(
            index=i,
            vertices=poly.copy(),
            vertices_input=self.plane.to_input(poly),
            pattern=tuple(p[i].copy() for p in self.patterns),
            area=float(self.areas[i]),
            interior_point=poly.mean(axis=0),
            A_st=m_i[:2].T.copy(),
            b_st=m_i[2].copy(),
            A=a[0],
            b=b[0],
        )

    def __getitem__(self, i: int) -> Cell:
        return self.cell(i)

    def __iter__(self) -> Iterator[Cell]:
        for i in range(self.n_cells):
            yield self.cell(i)

    # -- images ---------------------------------------------------------------------
    def image_vertices(self, upto: int | None = None) -> np.ndarray:
        """Images of all cell vertices under the network (or its first ``upto`` stages).

        The network is continuous and affine on each closed cell, so the image of a
        cell under its affine map is the polygon of its vertex images.

        Returns
        -------
        np.ndarray, shape (V, d_k), aligned with :attr:`vertices` / :attr:`offsets`.
        """
        if upto is None:
            out = np.empty((self.vertices.shape[0], self.network.output_dim))
            for sl, maps in self._map_blocks():
                v0, v1 = self.offsets[sl.start], self.offsets[sl.stop]
                poly = np.repeat(np.arange(sl.stop - sl.start), self.counts[sl])
                s = np.concatenate([self.vertices[v0:v1], np.ones((v1 - v0, 1))], axis=1)
                out[v0:v1] = np.einsum("vk,vkn->vn", s, maps[poly])
            return out
        return self.network.forward(self.plane.to_input(self.vertices), upto=upto)

    def image_polygons(self, upto: int | None = None, projection=None) -> list[np.ndarray]:
        """Image polygon of each cell under its affine map (the pictures of cells
        mapped to latent / output space).

        Parameters
        ----------
        upto : int, optional
            Map by the first ``upto`` stages only (e.g. the encoder of
            ``chain(encoder, decoder)``); default the whole network.
        projection : array_like, shape (k, 2), optional
            Linear projection applied to the images (``y @ projection``), e.g. for
            outputs of dimension > 2; default: no projection.

        Returns
        -------
        list of np.ndarray, shapes (k_i, d_k) (or (k_i, 2) when projected)
        """
        y = self.image_vertices(upto)
        if projection is not None:
            proj = np.asarray(projection, dtype=np.float64)
            if proj.ndim != 2 or proj.shape[0] != y.shape[1]:
                raise ValueError(f"projection must have shape ({y.shape[1]}, k), got {proj.shape}")
            y = y @ proj
        return np.split(y, self.offsets[1:-1])

    def summary(self) -> dict:
        """Counts and areas as a plain dict."""
        return {
            "n_cells": self.n_cells,
            "n_activation_regions": self.n_activation_regions,
            "n_affine_pieces": self.n_affine_pieces,
            "total_area": self.total_area,
            "box_area": self.box_area,
            "widths": self.network.widths,
        }


# ----------------------------------------------------------------------------- API
def _resolve_plane(network: ReluNetwork, plane: PlaneSlice | None) -> PlaneSlice:
    if plane is None:
        if network.input_dim != 2:
            raise ValueError(
                f"the network has input dimension {network.input_dim}; pass a PlaneSlice "
                "(e.g. PlaneSlice.through_points(x0, x1, x2)) to choose a 2-D slice"
            )
        return PlaneSlice.standard(2)
    if not isinstance(plane, PlaneSlice):
        raise TypeError(f"plane must be a PlaneSlice, got {type(plane).__name__}")
    if plane.dim != network.input_dim:
        raise ValueError(
            f"the slice lives in R^{plane.dim} but the network has input dimension "
            f"{network.input_dim}"
        )
    return plane


def _group_by_source(
    verts: np.ndarray, counts: np.ndarray, src: np.ndarray, bits: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reorder split polygons so that the children of each source are consecutive
    (then every polygon's final cells are consecutive, the runs of
    :func:`_pattern_maps`)."""
    order = np.argsort(src, kind="stable")
    counts_new = counts[order]
    start = _offsets(counts)[:-1][order]
    shift = start - _offsets(counts_new)[:-1]
    vidx = np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(shift, counts_new)
    return verts[vidx], counts_new, src[order], bits[order]


def _descend(
    network: ReluNetwork,
    plane: PlaneSlice,
    verts: np.ndarray,
    counts: np.ndarray,
    rtol: float,
    scale: np.ndarray,
    area_tol: float,
) -> tuple[np.ndarray, np.ndarray, _PackedPatterns]:
    """Split the polygons ``verts``/``counts`` by every layer, depth first.

    A batch of polygons entering stage ``k`` gets its pre-activation maps (one
    matrix product), is split by the stage's neurons, and its children go through
    the following stages before the next batch enters stage ``k``.  The cells of
    different batches never interact, so the result is the layer-by-layer one;
    only one batch per stage is alive at a time, so memory stays ``O(batch · depth)``
    besides the output, and the temporaries are reused rather than page-faulted in.

    Returns
    -------
    vertices (V, 2), counts (P,) and the packed patterns of the final cells.
    """
    stages = network.stages
    wts = [np.ascontiguousarray(st.weight.T) for st in stages]
    last = max((k for k, st in enumerate(stages) if st.n_neurons), default=-1)
    leaves: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def visit(k: int, verts: np.ndarray, counts: np.ndarray, maps: _Maps, packed: np.ndarray):
        if k > last:  # no neurons left: these are cells
            leaves.append((verts, counts, packed))
            return
        st = stages[k]
        batch = max(1, _BATCH_ELEMS // (3 * st.n_out))
        off = _offsets(counts)
        for c0 in range(0, counts.size, batch):
            sl = slice(c0, min(c0 + batch, counts.size))
            z = maps.apply(wts[k], st.bias, sl)
            v, c, p = verts[off[sl.start] : off[sl.stop]], counts[sl], packed[sl]
            if not st.n_neurons:
                visit(k + 1, v, c, _Maps(z), p)
                continue
            v, c, src, bits = _split_layer(v, c, z, rtol, scale, area_tol)
            v, c, src, bits = _group_by_source(v, c, src, bits)
            p = np.concatenate([p[src], np.packbits(bits, axis=1)], axis=1)
            visit(k + 1, v, c, _Maps(z, src, bits, st.negative_slope), p)

    visit(0, verts, counts, _Maps(plane.homogeneous[None]), np.zeros((1, 0), dtype=np.uint8))
    widths = [st.n_out for st in stages if st.n_neurons]
    return (
        np.concatenate([leaf[0] for leaf in leaves]),
        np.concatenate([leaf[1] for leaf in leaves]),
        _PackedPatterns(np.concatenate([leaf[2] for leaf in leaves]), widths),
    )


def decompose_slice(
    net,
    plane: PlaneSlice | None = None,
    box: Sequence[float] = (-1.0, 1.0, -1.0, 1.0),
    *,
    rtol: float = 1e-9,
    input_shape: Sequence[int] | None = None,
) -> CellDecomposition:
    """Exact decomposition of a planar slice of input space into activation regions.

    Parameters
    ----------
    net : nn.Sequential, list of modules, autoencoder or ReluNetwork
    plane : PlaneSlice, optional
        The slice ``x = origin + s·u + t·v``; default the identity plane of a
        network with 2-D input.
    box : (s_min, s_max, t_min, t_max)
        Bounds of the slice coordinates.
    rtol : float
        Relative tolerance of the sign tests (see the module docstring).
    input_shape : sequence of int, optional
        Sample shape for nets that start with a convolution.

    Returns
    -------
    CellDecomposition
        Cells (convex polygons) on which the activation pattern, hence the affine
        map, is constant.  Their areas sum to the box area.

    Notes
    -----
    Cost: per layer one matrix product ``(3P, n_{l-1}) @ (n_{l-1}, n_l)`` plus
    vectorised clipping rounds, depth first in batches; memory: the cells' vertices
    and packed patterns (``P · sum n_l / 8`` bytes) plus ``O(batch · depth)``.  The
    maps are recomputed from the patterns when asked for (``st_maps``,
    ``n_affine_pieces``).
    """
    network = as_relu_network(net, input_shape)
    plane = _resolve_plane(network, plane)
    s0, s1, t0, t1 = _check_box(box)
    if not (0 < rtol < 1e-2):
        raise ValueError(f"rtol must be in (0, 0.01), got {rtol}")
    verts = np.array([[s0, t0], [s1, t0], [s1, t1], [s0, t1]], dtype=np.float64)
    counts = np.array([4], dtype=np.int64)
    scale = np.array([max(abs(s0), abs(s1)), max(abs(t0), abs(t1)), 1.0])
    diam = float(np.hypot(s1 - s0, t1 - t0))
    area_tol = (rtol * diam) ** 2
    verts, counts, patterns = _descend(network, plane, verts, counts, rtol, scale, area_tol)
    return CellDecomposition(
        network=network,
        plane=plane,
        box=(s0, s1, t0, t1),
        vertices=verts,
        offsets=_offsets(counts),
        patterns=patterns,
        st_maps=None,
        rtol=rtol,
    )


def grid_pattern_count(
    net,
    plane: PlaneSlice | None = None,
    box: Sequence[float] = (-1.0, 1.0, -1.0, 1.0),
    resolution: int = 512,
    *,
    input_shape: Sequence[int] | None = None,
    return_patterns: bool = False,
    chunk: int = 16384,
) -> int | tuple[int, np.ndarray]:
    """Count activation regions on a slice by sampling a dense grid (a lower bound).

    Parameters
    ----------
    resolution : int
        Grid of ``resolution × resolution`` cell-centred points in the box.
    return_patterns : bool
        Also return the distinct patterns found, packed with ``np.packbits`` (K, B).

    Returns
    -------
    int, or (int, np.ndarray)
        Number of distinct activation patterns among the grid points; never more
        than the exact count of :func:`decompose_slice`.
    """
    network = as_relu_network(net, input_shape)
    plane = _resolve_plane(network, plane)
    s0, s1, t0, t1 = _check_box(box)
    if resolution < 1:
        raise ValueError(f"resolution must be >= 1, got {resolution}")
    ss = s0 + (np.arange(resolution) + 0.5) * (s1 - s0) / resolution
    ts = t0 + (np.arange(resolution) + 0.5) * (t1 - t0) / resolution
    grid = np.stack(np.meshgrid(ss, ts, indexing="xy"), axis=-1).reshape(-1, 2)
    found: list[np.ndarray] = []
    for lo in range(0, grid.shape[0], chunk):
        x = plane.to_input(grid[lo : lo + chunk])
        pats = network.patterns(x)
        bits = np.concatenate(pats, axis=1) if pats else np.zeros((x.shape[0], 1), dtype=bool)
        found.append(unique_rows(np.packbits(bits, axis=1)))
    uniq = unique_rows(np.concatenate(found))
    return (uniq.shape[0], uniq) if return_patterns else int(uniq.shape[0])


def unique_rows(packed: np.ndarray, return_inverse: bool = False):
    """Distinct rows of a 2-D uint8 array (e.g. ``np.packbits`` patterns).

    Faster than ``np.unique(..., axis=0)``: rows are read as uint64 words and
    sorted with ``np.lexsort``.

    Returns
    -------
    rows : np.ndarray, shape (K, B)
    inverse : np.ndarray of int64, shape (N,), only with ``return_inverse``
        ``rows[inverse] == packed``.
    """
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    n, width = packed.shape
    if n == 0:
        return (packed, np.zeros(0, dtype=np.int64)) if return_inverse else packed
    words = -(-width // 8)
    padded = np.zeros((n, words * 8), dtype=np.uint8)
    padded[:, :width] = packed
    keys = padded.view(np.uint64)  # (n, words)
    order = np.lexsort(keys.T[::-1])
    keys = keys[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (keys[1:] != keys[:-1]).any(axis=1)
    rows = packed[order[new]]
    if not return_inverse:
        return rows
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return rows, inverse
