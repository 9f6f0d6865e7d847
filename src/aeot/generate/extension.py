"""The piecewise-linear extension of the semi-discrete OT map (AE-OT, Sec. 3–4).

The semi-discrete OT map T(x) = ∇u_h(x) = y_{σ(x)} is piecewise constant: it can only
reproduce the N training codes. AE-OT (An, Guo, Lei, Luo, Yau, Gu, ICLR 2020) extends
it piecewise linearly: each power cell W_i is represented by its μ-centroid c_i, the
map c_i ↦ y_i is extended linearly over simplices of mutually adjacent centroids,
and simplices that straddle the singular set Σ (a facet with a large dihedral
angle) are removed, so that new codes interpolate only between codes of one mode.

In high dimension the simplices cannot be enumerated, so for each source point x a
local simplex is assembled from nearby centroids:

1. *Selection* (:func:`nearest_centroids`, :func:`select_cells`). Let
   i₀ = argmax_i s_i(x), s_i(x) = <x, y_i> + h_i, be the cell containing x (the OT
   winner) and K(x) its connected component in the graph of non-singular facets (its
   "mode"). Walk through the centroids of K(x) by increasing distance D_j = |x − c_j|:
   a cell that is singular with an already accepted cell
   (:meth:`~aeot.generate.SingularSet.is_singular`: θ > threshold for the angle rules,
   e.g. across the hole of a concave support; a flagged adjacent pair or a density
   valley between the two codes for the valley rule) is passed over, and the walk
   stops at the first cell that would exceed ``n_cells`` accepted cells; its distance
   is the reference D_ref (the distance of the (K + 1)-th candidate if the walk does
   not stop). The accepted cells are pairwise non-singular mode-mates of i₀.
   For the valley rule every candidate is also tested against i₀ itself (the same
   pairwise test), so that every accepted cell is a mode-mate of i₀ by a direct test,
   and K(x) is all cells when i₀'s component is smaller than the candidate list: in
   high dimension the sampled graph holds a small share of the facets, and its small
   components are cells that merely had few facets sampled (20,000 MNIST codes in
   d = 16: 14,939 components, half the cells without a neighbour; restricted to them,
   58 % of the codes were a single training code).
   (Stopping at the first singular candidate instead, as this module once did, left
   the nearest cell alone for 37 % of the codes of the 8×8 digits: in d = 10 the
   second- or third-nearest centroid is often of another digit, and every such code
   was a training code.)
2. *Gates*. Accepted cell j gets g_j = (D_ref − D_j) / (D_ref − D_first) ∈ (0, 1]
   (1 for the nearest accepted centroid). A cell enters or leaves the accepted set only
   when its distance crosses D_ref, i.e. with g_j = 0.
3. *Weights* (:func:`simplex_weights`). Barycentric coordinates of x with respect to
   the accepted centroids, by least squares on the simplex with a gate penalty:

       λ(x) = argmin_{λ ≥ 0, Σλ = 1} | Σ_j λ_j c_j − x |² + Σ_j w_j λ_j²,
       w_j = ρ (1/g_j − 1) + ρ₀,

   with ρ = ``smoothing`` · σ², ρ₀ = 1e-4 · σ², σ² = Σ_j g_j σ_j² / Σ_j g_j the
   gate-weighted mean of the cells' squared centroid spacings σ_j² (mean |c_j − c_l|²
   over j's non-singular neighbours l). When x lies in the simplex of the centroids,
   λ are its barycentric coordinates (the PL extension proper); outside, the nearest
   point of the simplex is used. The new code is z(x) = Σ_j λ_j y_j.
   (:class:`~aeot.generate.AEOTSampler` then mixes in a small share of the
   normalised gates, λ ← (1 − β) λ + β g / Σg, β = ``gate_mix``: where x lies outside
   the hull of its centroids the least-squares λ sticks to a vertex and would repeat
   a training code; the gate term keeps the codes distinct.)

Why centroid distances and not scores: the score gap s_{i₀} − s_j = |y_{i₀} − y_j| ·
dist(x, facet hyperplane) is small for any cell whose *code* is close to y_{i₀}, even
when its cell is far from x in source space, so the best-scoring cells rarely form a
simplex around x. The PL extension lives on the centroids, so they are ranked by
distance to x; the winner only fixes the mode.

Continuity: the objective is strictly convex in λ and its data (centroids, x, gates,
σ²) vary continuously with x; when a cell's gate tends to 0 its penalty ρ/g_j → ∞
forces λ_j → 0, which is the minimiser without that cell. Hence λ(x), and z(x), are
continuous wherever the winner's component does not change (i.e. away from singular
facets between modes) and no two candidates that are singular to each other swap order
(there the one that was passed over replaces the other); with the valley rule the
candidates also depend on i₀ itself, so z can jump where the winner changes. And z never
mixes codes of different components or of a singular pair. Unlike a hard cut-off on
the score gap (which makes z constant deep inside each cell and so repeats codes),
every point keeps several cells with positive weight, so the generated codes are
distinct and any number of them can be drawn.

The QP is solved exactly by enumerating the supports S of the simplex (2^k − 1 of
them, k ≤ 8): on the affine hull of S the minimiser of λᵀQλ (Q = AᵀA + diag(w),
A = [c_j − x]) is λ_S = Q_S⁻¹1 / (1ᵀQ_S⁻¹1) with value 1 / (1ᵀQ_S⁻¹1); the optimum is
the feasible (λ_S ≥ 0) support of least value.

:func:`pairwise_codes` is the scheme of the public AE-OT reference code for
comparison: with (i, j) the two best cells of x, z = (1 − w) y_i + w y_j with a fixed
weight w when θ_ij ≤ threshold, and no new code otherwise.
"""

from __future__ import annotations

import itertools
import math
from functools import cache

import torch

__all__ = ["nearest_centroids", "pairwise_codes", "select_cells", "simplex_weights"]

MAX_CELLS = 8
_MIN_GATE = 1e-9


def _pair_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 2.0 * torch.atan2((a - b).norm(dim=-1), (a + b).norm(dim=-1))


def nearest_centroids(
    x: torch.Tensor,
    centroids: torch.Tensor,
    k: int,
    chunk: int = 1024,
    *,
    x_groups: torch.Tensor | None = None,
    groups: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` centroids closest to each point, nearest first.

    Parameters
    ----------
    x : (M, d) tensor
    centroids : (N, d) tensor
    k : int
        Columns beyond the number of eligible centroids hold distance +inf and index −1.
    chunk : int
        Points per block (the (block, N) distance matrix is kept to ~2^22 entries).
    x_groups, groups : (M,) and (N,) long tensors, optional
        When given, point m only considers centroids j with groups[j] == x_groups[m]
        (the sampler passes the non-singular component of each point's winner);
        x_groups[m] < 0 leaves point m unrestricted.

    Returns
    -------
    dist : (M, k) float64 tensor
        |x − c_j|.
    index : (M, k) long tensor
    """
    # rank in the working precision of x (float32 GEMMs are twice as fast), then
    # measure the selected distances exactly in float64 and re-sort them
    work = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float64
    x64 = x.to(torch.float64)
    c64 = centroids.to(torch.float64)
    xw, cw = x.to(work), centroids.to(work)
    m, n = x.shape[0], c64.shape[0]
    kk = min(k, n)
    dist = torch.full((m, k), torch.inf, dtype=torch.float64, device=x.device)
    index = torch.full((m, k), -1, dtype=torch.long, device=x.device)
    c_sq = cw.pow(2).sum(1)
    rows = max(16, min(chunk, 2**22 // max(n, 1)))
    for start in range(0, m, rows):
        stop = min(start + rows, m)
        xs = xw[start:stop]
        sq = torch.addmm(c_sq, xs, cw.t(), alpha=-2.0) + xs.pow(2).sum(1, keepdim=True)
        if groups is not None:
            xg = x_groups[start:stop].unsqueeze(1)
            sq.masked_fill_((groups.unsqueeze(0) != xg) & (xg >= 0), torch.inf)
        v, i = torch.topk(sq, kk, dim=1, largest=False)
        exact = (x64[start:stop].unsqueeze(1) - c64[i]).norm(dim=2)
        exact = torch.where(torch.isfinite(v), exact, torch.full_like(exact, torch.inf))
        exact, order = torch.sort(exact, dim=1)
        i = torch.gather(i, 1, order)
        dist[start:stop, :kk] = exact
        index[start:stop, :kk] = torch.where(torch.isfinite(exact), i, torch.full_like(i, -1))
    return dist, index


def select_cells(
    dist: torch.Tensor,
    cells: torch.Tensor,
    winner_component: torch.Tensor,
    components: torch.Tensor,
    normals: torch.Tensor | None,
    threshold: float | None,
    n_cells: int,
    *,
    singular=None,
    anchor: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Accepted cells and their gates for each point (steps 1–2 of the module docstring).

    Parameters
    ----------
    dist, cells : (M, K + 1) tensors
        Distances |x − c_j| to the nearest centroids and their cells, nearest first
        (:func:`nearest_centroids`; cell −1 / distance +inf when there are fewer).
        Ranks 1..K are candidates (those outside the winner's component are skipped);
        rank K + 1 only bounds the reference distance D_ref when the walk does not
        stop earlier.
    winner_component : (M,) long tensor or None
        Component of the cell containing each point (the OT winner); None or a negative
        entry: that point's candidates are not restricted to a component (the valley
        rule, with ``anchor``).
    components : (N,) long tensor or None
        Component of each cell in the non-singular graph.
    normals : (N, d + 1) float64 tensor
        Unit normals of the normalised planes (for θ between any two cells).
    threshold : float
        Singular angle threshold (radians).
    n_cells : int
        At most this many accepted cells (k).
    singular : SingularSet, optional
        When given, two candidates conflict when ``singular.is_singular`` says so
        (:meth:`~aeot.generate.SingularSet.pairwise`: θ > its threshold for the angle
        rules, a flagged adjacent pair or a density valley for the valley rule) and
        ``normals`` / ``threshold`` are not used.
    anchor : (M,) long tensor, optional
        With ``singular``: candidates singular to this cell (the winner) are skipped too,
        so every accepted cell is a mode-mate of the winner by a direct test.

    Returns
    -------
    kept : (M, k) long tensor
        Accepted cells, nearest first, −1 padding.
    gates : (M, k) float64 tensor
        g_j = (D_ref − D_j) / (D_ref − D_first) ∈ (0, 1] for accepted cells, 0 for
        padding. Rows where no candidate is in the winner's component are left
        empty (all −1) for the caller to fill.
    """
    m, width = cells.shape
    k_search = width - 1
    device = cells.device
    v = dist.to(torch.float64)
    valid = cells >= 0
    safe = cells.clamp_min(0)
    if winner_component is None:
        same = valid
    else:
        wc = winner_component.unsqueeze(1)
        same = valid & ((components[safe] == wc) | (wc < 0))
    if anchor is not None:
        if singular is None:
            raise ValueError("anchor needs singular")
        same = same & ~singular.is_singular(anchor.unsqueeze(1), safe)
    accepted = torch.zeros(m, k_search, dtype=torch.bool, device=device)
    count = torch.zeros(m, dtype=torch.long, device=device)
    stopped = torch.zeros(m, dtype=torch.bool, device=device)
    d_ref = torch.full((m,), torch.inf, dtype=torch.float64, device=device)
    d_top = torch.full((m,), torch.inf, dtype=torch.float64, device=device)
    if singular is not None:
        singular = singular.pairwise(safe[:, :k_search])
    else:
        cand = normals[safe[:, :k_search]]  # (M, K, d + 1) unit normals
        # θ_ab > threshold  <=>  <n̂_a, n̂_b> < cos(threshold)
        singular = torch.bmm(cand, cand.transpose(1, 2)) < math.cos(min(threshold, math.pi))
    for r in range(k_search):
        active = ~stopped & same[:, r]
        if r > 0:
            conflict = (singular[:, r, :r] & accepted[:, :r]).any(1)
        else:
            conflict = torch.zeros_like(active)
        reject = active & (count >= n_cells)
        accept = active & ~reject & ~conflict
        d_ref = torch.where(reject, v[:, r], d_ref)
        d_top = torch.where(accept & (count == 0), v[:, r], d_top)
        stopped |= reject
        accepted[:, r] = accept
        count += accept.long()
    d_ref = torch.where(stopped, d_ref, v[:, k_search])
    bounded = torch.isfinite(d_ref)
    span = (d_ref - d_top).clamp_min(1e-300).unsqueeze(1)
    gates = torch.where(
        bounded.unsqueeze(1),
        ((d_ref.unsqueeze(1) - v[:, :k_search]) / span).clamp(0.0, 1.0),
        torch.ones_like(v[:, :k_search]),
    )
    use = accepted & (gates > _MIN_GATE)
    first = use & (torch.cumsum(use.long(), 1) == 1)
    gates = torch.where(first, torch.ones_like(gates), gates)  # the nearest accepted: g = 1
    # compact the used candidates to the first columns, keeping the rank order
    rank = torch.arange(k_search, device=device).expand(m, k_search)
    order = torch.argsort(torch.where(use, rank, rank + k_search), dim=1)[:, :n_cells]
    used = torch.gather(use, 1, order)
    minus = torch.full_like(order, -1)
    kept = torch.where(used, torch.gather(cells[:, :k_search], 1, order), minus)
    kept_gates = torch.where(used, torch.gather(gates, 1, order), torch.zeros_like(gates[:, :1]))
    if kept.shape[1] < n_cells:  # fewer candidates than n_cells (tiny N)
        pad = n_cells - kept.shape[1]
        kept = torch.cat([kept, kept.new_full((m, pad), -1)], 1)
        kept_gates = torch.cat([kept_gates, kept_gates.new_zeros(m, pad)], 1)
    return kept, kept_gates


@cache
def _supports(k: int) -> tuple[tuple[int, tuple[tuple[int, ...], ...]], ...]:
    """All non-empty subsets of range(k), grouped by size."""
    return tuple((s, tuple(itertools.combinations(range(k), s))) for s in range(1, k + 1))


def simplex_weights(
    points: torch.Tensor,
    centroids: torch.Tensor,
    gates: torch.Tensor,
    scale,
    smoothing: float = 0.25,
) -> torch.Tensor:
    """Gate-penalised barycentric coordinates on the simplex (step 3 of the module docstring).

    λ = argmin_{λ ≥ 0, Σλ = 1} |Σ_j λ_j c_j − x|² + Σ_j (ρ (1/g_j − 1) + ρ₀) λ_j²,
    ρ = smoothing · σ², ρ₀ = 1e-4 · σ².

    Parameters
    ----------
    points : (M, d) tensor
        x.
    centroids : (M, k, d) tensor
        c_j of the candidate cells (any value where the gate is 0).
    gates : (M, k) tensor
        g_j ∈ [0, 1]; cells with g_j ≤ 1e-9 get λ_j = 0. At least one gate per row
        must be positive.
    scale : float or (M,) tensor
        σ² per point, a squared length typical of the centroid spacing (the sampler
        uses the gate-weighted mean Σ_j g_j σ_j² / Σ_j g_j of per-cell spacings σ_j²,
        which stays bounded away from 0 as gates vanish, as continuity requires).
    smoothing : float
        ρ / σ²: width of the transition where a cell's weight is switched off.

    Returns
    -------
    (M, k) float64 tensor
        λ, rows summing to one.
    """
    k = centroids.shape[1]
    if k > MAX_CELLS:
        raise ValueError(f"at most {MAX_CELLS} cells per simplex, got {k}")
    x = points.to(torch.float64)
    c = centroids.to(torch.float64)
    g = gates.to(torch.float64)
    on = g > _MIN_GATE
    if not bool(on.any(1).all()):
        raise ValueError("every point needs at least one cell with a positive gate")
    a = c - x.unsqueeze(1)  # (M, k, d)
    a = torch.where(on.unsqueeze(2), a, torch.zeros_like(a))
    scale = torch.as_tensor(scale, dtype=torch.float64, device=x.device).expand(x.shape[0])
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    rho = smoothing * scale
    rho0 = 1e-4 * scale
    safe_g = torch.where(on, g, torch.ones_like(g))
    penalty = rho.unsqueeze(1) * (1.0 / safe_g - 1.0) + rho0.unsqueeze(1)
    q = a @ a.transpose(1, 2) + torch.diag_embed(penalty)  # (M, k, k)
    m = x.shape[0]
    best_val = torch.full((m,), torch.inf, dtype=torch.float64, device=x.device)
    best = torch.zeros(m, k, dtype=torch.float64, device=x.device)
    for size, subsets in _supports(k):
        idx = torch.tensor(subsets, dtype=torch.long, device=x.device)  # (S, size)
        allowed = on[:, idx].all(2)  # (M, S)
        if not bool(allowed.any()):
            continue
        qs = q[:, idx.unsqueeze(2), idx.unsqueeze(1)]  # (M, S, size, size)
        # disallowed supports get an identity system (solvable, discarded below)
        eye = torch.eye(size, dtype=torch.float64, device=x.device)
        qs = torch.where(allowed[:, :, None, None], qs, eye)
        ones = torch.ones(*qs.shape[:-1], 1, dtype=torch.float64, device=x.device)
        u = torch.linalg.solve(qs, ones).squeeze(-1)  # (M, S, size)
        total = u.sum(-1)
        lam = u / total.unsqueeze(-1)
        value = 1.0 / total
        ok = allowed & (total > 0) & (lam >= -1e-12).all(-1) & torch.isfinite(value)
        value = torch.where(ok, value, torch.full_like(value, torch.inf))
        v_min, which = value.min(1)
        better = v_min < best_val
        if bool(better.any()):
            rows = torch.nonzero(better).flatten()
            chosen = lam[rows, which[rows]].clamp_min(0.0)  # (R, size)
            full = torch.zeros(rows.numel(), k, dtype=torch.float64, device=x.device)
            full.scatter_(1, idx[which[rows]], chosen)
            best[rows] = full / full.sum(1, keepdim=True)
            best_val[rows] = v_min[rows]
    return best


def pairwise_codes(
    values: torch.Tensor,
    cells: torch.Tensor,
    targets: torch.Tensor,
    normals: torch.Tensor | None,
    threshold: float | None,
    weight: float,
    *,
    singular=None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reference code's generator: mix the two best cells when their angle is small.

    z = (1 − w) y_i + w y_j for the two best cells (i, j) of x when θ_ij ≤ threshold;
    otherwise z = y_i and the point is flagged (the reference code drops such points).

    Parameters
    ----------
    values, cells : (M, 2) tensors
        ``result.topk(x, 2)``.
    targets : (N, d) tensor
    normals : (N, d + 1) float64 tensor
    threshold : float
    weight : float
        w ∈ [0, 1], the weight of the runner-up cell.
    singular : SingularSet, optional
        When given, the pair is mixed unless ``singular.is_singular(i, j)`` (and
        ``normals`` / ``threshold`` are not used).

    Returns
    -------
    codes : (M, d) tensor
    weights : (M, 2) float64 tensor
        (1 − w, w) for mixed points, (1, 0) otherwise.
    mixed : (M,) bool tensor
    """
    i, j = cells[:, 0], cells[:, 1]
    if bool((j < 0).any()):
        mixed = torch.zeros(cells.shape[0], dtype=torch.bool, device=cells.device)
    elif singular is not None:
        mixed = ~singular.is_singular(i, j).to(cells.device)
    else:
        mixed = _pair_angle(normals[i], normals[j]) <= threshold
    w = mixed.to(torch.float64) * weight
    weights = torch.stack([1.0 - w, w], 1)
    y = targets.to(torch.float64)
    codes = weights[:, :1] * y[i] + weights[:, 1:] * y[j.clamp_min(0)]
    return codes.to(targets.dtype), weights, mixed
