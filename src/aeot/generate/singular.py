"""The singular set of the Brenier potential: facets with a large dihedral angle.

The graph of the Brenier potential u_h(x) = max_i <x, y_i> + h_i is a convex
polyhedron whose faces lie on the planes π_i = {z = <x, y_i> + h_i} of R^{d+1}, with
normals n_i = (y_i, −1). Where two adjacent faces meet at a large dihedral angle the
gradient ∇u_h jumps from y_i to a distant y_j: when the target measure has several
modes or a non-convex support, the OT map is discontinuous on a singular set Σ and
the facets W_i ∩ W_j projecting onto Σ are those with large angles (Figalli 2010;
Lei, Su, Cui, Yau, Gu, "A geometric understanding of deep learning", Engineering
2020; An et al., ICLR 2020, Sec. 3.3). Generating new codes by mixing y_i and y_j
across such a facet would produce off-manifold samples (mode mixture), so the
generator must never interpolate across it.

The angle between the faces,

    θ_ij = arccos( <n_i, n_j> / (|n_i| |n_j|) ),

depends on the scale and position of the latent codes (|y| ≫ 1 flattens every
angle). It is therefore computed on normalised codes

    ỹ_i = (y_i − ȳ) / r,   ȳ = mean_i y_i,   r = sqrt( mean_i |y_i − ȳ|² ),

which makes θ, and the singular pairs detected from it, invariant to translating,
rotating and uniformly scaling the codes (a rescaled problem has the same power
diagram with heights scaled by the same factor). For unit normals
n̂_i, n̂_j the angle is evaluated as θ = 2 atan2(|n̂_i − n̂_j|, |n̂_i + n̂_j|),
which stays accurate for tiny angles where arccos does not.

Default threshold
-----------------
Over the adjacent pairs of a :class:`~aeot.generate.CellGraph` the angles form a
bulk set by the spacing of the codes within a mode (edges of the dual, regular
triangulation), plus the inter-mode (or across-a-hole) facets whose angles reflect
the distance between modes. With angles sorted, θ_(1) ≤ … ≤ θ_(E), the default
rule (:func:`default_threshold`) is

1. *gap*: the first consecutive ratio θ_(k+1)/θ_(k) ≥ ``min_ratio`` (2.5) above the
   ``start_quantile`` (10 %) quantile; the threshold is the geometric midpoint
   sqrt(θ_(k) θ_(k+1)) — the widest-margin split in log-angle;
2. *otherwise*: ``factor`` (5) × median θ.

Justification: within one mode the sorted angles form a continuum — on uniform
squares and disks, and Gaussian blobs, of 100–1000 codes the largest consecutive
ratio above the 10 % quantile stayed below 1.5, so a ratio of 2.5 is not produced
by a single mode. Separated modes give a clean gap: on the 25-Gaussian grid (std
0.05, spacing 2) intra-mode angles stay below ≈ 0.025 and inter-mode ones exceed
≈ 0.24 (ratio ≈ 10); on the 8-Gaussian ring (std 0.01) ≈ 0.025 vs ≈ 0.5 (ratio
≈ 20). Taking the *first* large gap rather than the largest keeps all inter-mode
pairs singular even when the inter-mode angles themselves cluster into groups
(neighbouring vs. diagonal modes). When no gap exists — a single convex mode, or
a curved / concave support whose across-the-hole facets blend into the bulk
(two moons, annuli) — 5 × median is used: the largest angle of a single convex
mode stayed below ≈ 4.6 × median for uniform supports (Gaussian blobs reach
≈ 5–8 × median only through a handful of long tail edges), while facets bridging a
gap of more than a few code spacings exceed it.

The density-valley rule (latent spaces)
---------------------------------------
In the latent spaces of autoencoders (d = 10–32) the angle threshold is inert: the
modes are not separated by empty space, so the sorted angles form one continuum with
no gap, and since inter-class facets are about 40 % of all adjacent pairs the
``factor`` × median fallback lies above nearly all of them. On the 8×8 digits of
``aeot demo`` (d = 10) the threshold is 2.11 rad and 0 of 5,830 pairs are flagged;
on 20,000 MNIST and Fashion-MNIST codes (d = 16) none either; on 12 well separated
Gaussians in d = 16, 16 of the 2,145 inter-cluster pairs
(``benchmarks/bench_singular.py``). The angle itself ranks the pairs well (area under
the ROC curve against "two classes" 0.95, 0.91, 0.83): what fails is the threshold.

What makes a facet singular is where the segment between its two codes goes: the
Brenier map onto a measure with convex support is continuous, and it jumps across Σ
where the straight path between the codes of two adjacent cells leaves the support.
The *valley* rule (:func:`valley_ratios`) tests that with k-nearest-neighbour
densities of the codes. With ŝ(z) the mean distance from z to its k nearest codes
(k = ``neighbours``, 10; a code does not count itself), the kNN density is
ρ(z) ∝ ŝ(z)^(−d), and

    v_ij = ŝ(m_ij) / sqrt(ŝ(y_i) ŝ(y_j)),   m_ij = (y_i + y_j) / 2,

compares the spacing at the midpoint with that at the two codes. The pair is
singular when the density at the midpoint is below ``density_ratio`` (1/2) of the
geometric mean of the densities at the ends: v_ij^d > 1 / density_ratio, i.e.
v_ij > 2^(1/d). No labels enter, and v depends only on ratios of distances, so the
flags are invariant to translating, rotating and uniformly scaling the codes.
Measured on the adjacent pairs of the pipeline's cell graph (labels only score it):
on 3,000 codes of one Gaussian in d = 16 no pair is flagged (largest v 1.00, threshold
1.044); on the 12 Gaussians every inter-cluster pair and no other; on the digits,
MNIST and Fashion-MNIST codes 97 %, 95 % and 84 % of the flagged pairs join two
classes (precision) and they are 64 %, 52 % and 49 % of the pairs that do (recall:
the rest join classes whose codes touch without a density valley). k = 5 or 20 and
density ratio 1/4 change F1 by at most 0.1 (docs/RESULTS.md). Weighed against it:
|y_i − y_j| over the kNN spacing of the two codes, and the share of their 30 nearest
neighbours the two codes have in common. Both rank the pairs about as well (best F1
over thresholds chosen with the labels 0.82 / 0.75 / 0.67 and 0.89 / 0.80 / 0.70,
against 0.88 / 0.80 / 0.68 for v), but neither has a threshold that means something
without labels, and those label-chosen thresholds flag up to 10 % and 68 % of the
pairs of the single Gaussian, where v > 2^(1/d) flags none.

In the plane the kNN spacing is noisy (its relative spread shrinks like 1/d), and
the threshold 2^(1/2) = 1.41 does not quite absorb it: 150 uniform points in the unit
square (one convex mode) had one pair at v = 1.43, where the angle rule flags none.
The default ``rule="auto"`` therefore keeps the angle rule where it was validated —
when its *gap* test finds a clean gap (the 2D mixtures above) and in d ≤ 3 — and
uses the valley rule otherwise.

Pairs that are not adjacent: the angle rules call any pair with θ_ij > threshold
singular, and the generator (:mod:`aeot.generate.extension`) never mixes such a
pair. The valley rule likewise tests any pair (:meth:`SingularSet.is_singular`): an
adjacent pair by its exact flag, another pair by v computed with the midpoint's
neighbours searched near the two codes (:class:`ValleyIndex`), which errs towards
"singular".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.csgraph import connected_components

from aeot._validation import as_float_tensor
from aeot.generate.graph import CellGraph, estimate_cell_graph
from aeot.ot.result import SemiDiscreteResult

__all__ = [
    "RULES",
    "SingularSet",
    "ValleyIndex",
    "default_threshold",
    "detect_singular",
    "dihedral_angles",
    "normalise_targets",
    "singular_points",
    "unit_normals",
    "valley_ratios",
]

RULES = ("auto", "angle", "valley")
AUTO_VALLEY_MIN_DIM = 4  # "auto" keeps the angle rule below this dimension


def normalise_targets(targets) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Centre and scale the codes: ỹ = (y − ȳ) / r with r the RMS radius.

    Parameters
    ----------
    targets : (N, d) array

    Returns
    -------
    normalised : (N, d) float64 tensor
        ỹ, with mean 0 and mean_i |ỹ_i|² = 1.
    mean : (d,) float64 tensor
        ȳ.
    radius : float
        r = sqrt(mean_i |y_i − ȳ|²) (1 when all codes coincide).
    """
    y = as_float_tensor(targets, "targets", ndim=2, dtype=torch.float64)
    mean = y.mean(0)
    centred = y - mean
    radius = float(centred.pow(2).sum(1).mean().sqrt())
    if not radius > 0:
        radius = 1.0
    return centred / radius, mean, radius


def unit_normals(targets) -> torch.Tensor:
    """Unit normals n̂_i = (ỹ_i, −1) / |(ỹ_i, −1)| of the supporting planes, (N, d + 1)."""
    yt, _, _ = normalise_targets(targets)
    normals = torch.cat([yt, -torch.ones(yt.shape[0], 1, dtype=yt.dtype, device=yt.device)], 1)
    return normals / normals.norm(dim=1, keepdim=True)


def _angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle between unit vectors along the last axis, accurate for small angles."""
    return 2.0 * torch.atan2((a - b).norm(dim=-1), (a + b).norm(dim=-1))


def dihedral_angles(targets, pairs) -> torch.Tensor:
    """Dihedral angles θ_ij (radians) between the planes of cells i and j, on normalised codes.

    θ_ij = arccos(<n_i, n_j> / (|n_i||n_j|)),  n_i = (ỹ_i, −1),  ỹ = (y − ȳ)/r.

    Parameters
    ----------
    targets : (N, d) array
        The codes y.
    pairs : (E, 2) integer array
        Cell pairs (i, j).

    Returns
    -------
    (E,) float64 tensor in [0, π].
    """
    normals = unit_normals(targets)
    p = torch.as_tensor(pairs, dtype=torch.long, device=normals.device)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"pairs must have shape (E, 2), got {tuple(p.shape)}")
    if p.numel() and (int(p.min()) < 0 or int(p.max()) >= normals.shape[0]):
        raise ValueError("pairs contains a cell index out of range")
    return _angle(normals[p[:, 0]], normals[p[:, 1]])


def default_threshold(
    angles,
    *,
    min_ratio: float = 2.5,
    factor: float = 5.0,
    start_quantile: float = 0.1,
) -> tuple[float, str]:
    """The data-driven angle threshold over the adjacent pairs (see the module docstring).

    Parameters
    ----------
    angles : (E,) array
        Dihedral angles θ of the adjacent pairs (normalised codes).
    min_ratio : float
        Smallest consecutive ratio θ_(k+1)/θ_(k) that counts as a gap.
    factor : float
        Fallback threshold = ``factor`` × median θ when no gap is found.
    start_quantile : float
        Gaps are only looked for above this quantile (the lower tail of log θ is sparse).

    Returns
    -------
    threshold : float
        In radians; π (nothing singular) when there are fewer than two angles.
    rule : str
        ``"gap"``, ``"median"`` or ``"none"``.
    """
    a = as_float_tensor(angles, "angles", ndim=1, dtype=torch.float64, allow_empty=True)
    a = np.sort(a.cpu().numpy())
    if a.size < 2:
        return math.pi, "none"
    if not (min_ratio > 1 and factor > 0 and 0 <= start_quantile < 1):
        raise ValueError("need min_ratio > 1, factor > 0 and 0 <= start_quantile < 1")
    a = np.maximum(a, 1e-300)
    start = int(np.searchsorted(a, np.quantile(a, start_quantile)))
    ratios = a[start + 1 :] / a[start:-1]
    big = np.nonzero(ratios >= min_ratio)[0]
    if big.size:
        k = start + int(big[0])
        return float(math.sqrt(a[k] * a[k + 1])), "gap"
    return float(min(factor * np.median(a), math.pi)), "median"


def _nearest_codes(
    queries: torch.Tensor, codes: torch.Tensor, k: int, *, exclude_self: bool, lists: int = 0
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """ŝ(q), the mean distance from each query to its k nearest codes, (Q,) float64, and
    (with ``lists`` > 0) the indices of its ``lists`` nearest codes, (Q, lists).

    With ``exclude_self`` the queries are the codes themselves and each skips its own row.
    """
    n = codes.shape[0]
    width = max(k, lists)
    spacing = torch.empty(queries.shape[0], dtype=torch.float64, device=codes.device)
    index = (
        torch.empty(queries.shape[0], lists, dtype=torch.long, device=codes.device)
        if lists
        else None
    )
    c_sq = codes.pow(2).sum(1)
    rows = max(16, 2**22 // max(n, 1))
    for start in range(0, queries.shape[0], rows):
        q = queries[start : start + rows]
        sq = torch.addmm(c_sq, q, codes.t(), alpha=-2.0) + q.pow(2).sum(1, keepdim=True)
        if exclude_self:
            idx = torch.arange(start, start + q.shape[0], device=codes.device)
            sq[torch.arange(q.shape[0], device=codes.device), idx] = torch.inf
        v, i = torch.topk(sq, width, dim=1, largest=False)
        spacing[start : start + q.shape[0]] = v[:, :k].clamp_min(0.0).sqrt().mean(1)
        if index is not None:
            index[start : start + q.shape[0]] = i[:, :lists]
    return spacing, index


def valley_ratios(targets, pairs, neighbours: int = 10) -> torch.Tensor:
    """v_ij = ŝ(m_ij) / sqrt(ŝ(y_i) ŝ(y_j)) of the density-valley rule (module docstring).

    ŝ(z) is the mean distance from z to its ``neighbours`` nearest codes (a code does
    not count itself; the midpoint m_ij = (y_i + y_j)/2 counts y_i and y_j). v > 1: the
    codes are sparser half-way between y_i and y_j than at them; the kNN density
    ρ ∝ ŝ^(−d) at the midpoint is v^(−d) times that at the ends. Exact (every code is
    searched).

    Parameters
    ----------
    targets : (N, d) array
        The codes y (distinct).
    pairs : (E, 2) integer array
        Cell pairs (i, j).
    neighbours : int
        k; at most N − 1 are used.

    Returns
    -------
    (E,) float64 tensor, on the device of the targets.
    """
    return ValleyIndex.build(targets, neighbours, math.inf, lists=1).exact(pairs)


def _check_neighbours(neighbours, n: int) -> int:
    if isinstance(neighbours, bool) or not isinstance(neighbours, int) or neighbours < 1:
        raise ValueError(f"neighbours must be a positive integer, got {neighbours!r}")
    return max(1, min(neighbours, n - 1))


def _tiny(x: torch.Tensor) -> torch.Tensor:
    return x.clamp_min(torch.finfo(torch.float64).tiny)


@dataclass(eq=False)
class ValleyIndex:
    """What the valley rule needs to test any pair of codes, not only adjacent ones.

    The midpoint's k nearest codes are searched among y_i, y_j and the ``lists``
    nearest codes of each (not among all N): the spacing found there is at least the
    exact one, so the approximate v is at least the exact v and the test errs towards
    "singular". On the adjacent pairs of the digits, MNIST and Fashion-MNIST codes
    (lists = 64) it agreed with the exact test on ≥ 99 % of the pairs.

    Attributes
    ----------
    codes : (N, d) float64 tensor
        Normalised codes ỹ.
    spacing : (N,) float64 tensor
        ŝ(ỹ_i), exact.
    lists : (N, L) long tensor
        The L nearest other codes of each code.
    neighbours : int
        k.
    threshold : float
        Pairs with v > threshold are singular.
    """

    codes: torch.Tensor
    spacing: torch.Tensor
    lists: torch.Tensor
    neighbours: int
    threshold: float

    @classmethod
    def build(cls, targets, neighbours: int, threshold: float, lists: int = 64) -> ValleyIndex:
        """Normalise the codes (rounding-level scale invariance) and find their neighbours."""
        yt, _, _ = normalise_targets(targets)
        n = yt.shape[0]
        k = _check_neighbours(neighbours, n)
        if n < 2:
            empty = torch.zeros(n, 0, dtype=torch.long, device=yt.device)
            return cls(
                yt, torch.ones(n, dtype=torch.float64, device=yt.device), empty, k, threshold
            )
        width = max(1, min(lists, n - 1))
        spacing, index = _nearest_codes(yt, yt, k, exclude_self=True, lists=width)
        return cls(yt, spacing, index, k, float(threshold))

    def exact(self, pairs) -> torch.Tensor:
        """The exact v of pairs (E, 2): the midpoints' neighbours searched among all codes."""
        p = torch.as_tensor(pairs, dtype=torch.long, device=self.codes.device)
        if p.ndim != 2 or p.shape[1] != 2:
            raise ValueError(f"pairs must have shape (E, 2), got {tuple(p.shape)}")
        n = self.codes.shape[0]
        if p.numel() and (int(p.min()) < 0 or int(p.max()) >= n):
            raise ValueError("pairs contains a cell index out of range")
        if p.shape[0] == 0 or n < 2:
            return torch.zeros(p.shape[0], dtype=torch.float64, device=self.codes.device)
        mid = 0.5 * (self.codes[p[:, 0]] + self.codes[p[:, 1]])
        at_mid, _ = _nearest_codes(mid, self.codes, self.neighbours, exclude_self=False)
        ends = _tiny((self.spacing[p[:, 0]] * self.spacing[p[:, 1]]).sqrt())
        return torch.where(p[:, 0] == p[:, 1], 0.0, at_mid / ends)

    def ratios(self, i, j, block: int = 2**20) -> torch.Tensor:
        """Approximate v for pairs (i, j) (broadcasting index tensors)."""
        device = self.codes.device
        i = torch.as_tensor(i, dtype=torch.long, device=device)
        j = torch.as_tensor(j, dtype=torch.long, device=device)
        i, j = torch.broadcast_tensors(i, j)
        shape = i.shape
        # v is symmetric and the generator asks for the same pairs many times (nearby
        # points test the same candidates): compute each unordered pair once
        n = self.codes.shape[0]
        lo, hi = torch.minimum(i, j).reshape(-1), torch.maximum(i, j).reshape(-1)
        keys, inverse = torch.unique(lo * n + hi, return_inverse=True)
        i, j = keys // n, keys % n
        out = torch.empty(i.shape[0], dtype=torch.float64, device=device)
        width = 2 + 2 * self.lists.shape[1]
        k = min(self.neighbours, width)
        step = max(1, block // (width * self.codes.shape[1]))
        for start in range(0, i.shape[0], step):
            a, b = i[start : start + step], j[start : start + step]
            cand = torch.cat([a[:, None], b[:, None], self.lists[a], self.lists[b]], 1)
            mid = 0.5 * (self.codes[a] + self.codes[b])
            dist = (self.codes[cand] - mid[:, None]).norm(dim=2)
            # a code on both lists counts once: a code occurs at most twice among the
            # candidates, so the 2k nearest entries hold k distinct codes; drop each
            # entry whose code occurs earlier among them and keep the first k
            near, pos = torch.topk(dist, min(2 * k, width), dim=1, largest=False)
            ids = torch.gather(cand, 1, pos)
            earlier = torch.ones(ids.shape[1], ids.shape[1], dtype=torch.bool, device=device)
            earlier = torch.tril(earlier, diagonal=-1)
            repeat = ((ids[:, :, None] == ids[:, None, :]) & earlier).any(2)
            near = near.masked_fill(repeat, torch.inf)
            at_mid = torch.topk(near, k, dim=1, largest=False).values.mean(1)
            ends = _tiny((self.spacing[a] * self.spacing[b]).sqrt())
            out[start : start + step] = torch.where(a == b, 0.0, at_mid / ends)
        return out[inverse].reshape(shape)


@dataclass(eq=False)
class SingularSet:
    """Which adjacent cells are separated by a singular facet.

    Attributes
    ----------
    threshold : float
        Angle rules: the angle threshold (radians, normalised codes); pair (i, j) is
        singular when θ_ij > threshold. Valley rule: the threshold 2^(1/d) (for
        ``density_ratio`` 1/2) on the valley ratio v_ij of each adjacent pair.
    rule : str
        How the pairs were chosen: ``"given"`` (angle threshold given), ``"gap"``,
        ``"median"`` or ``"none"`` (the angle rule of :func:`default_threshold`), or
        ``"valley"`` (the density-valley rule, :func:`valley_ratios`).
    angles : (E,) float64 tensor
        θ of every edge of the graph.
    singular : (E,) bool tensor
        Whether each edge is singular.
    components : (N,) long tensor
        Label of each cell's connected component in the graph of non-singular edges
        (the "modes"; the singular facets separate components or cut through one).
    normals : (N, d + 1) float64 tensor
        Unit normals n̂_i of the normalised planes (to evaluate θ for any pair).
    pairs : (E, 2) long tensor, optional
        The graph's adjacent pairs (i < j, sorted), to look flagged pairs up.
    valley : (E,) float64 tensor, optional
        The valley ratio v of every edge (valley rule only).
    index : ValleyIndex, optional
        To test pairs that are not adjacent (valley rule only).
    """

    threshold: float
    rule: str
    angles: torch.Tensor
    singular: torch.Tensor
    components: torch.Tensor
    normals: torch.Tensor
    pairs: torch.Tensor | None = None
    valley: torch.Tensor | None = None
    index: ValleyIndex | None = None

    @property
    def n_components(self) -> int:
        return int(self.components.max()) + 1 if self.components.numel() else 0

    @property
    def by_angle(self) -> bool:
        """True when singular means θ_ij > threshold for any pair (the angle rules)."""
        return self.rule != "valley"

    def pair_angles(self, i, j) -> torch.Tensor:
        """θ for arbitrary pairs of cells (broadcasting index arrays)."""
        i = torch.as_tensor(i, dtype=torch.long, device=self.normals.device)
        j = torch.as_tensor(j, dtype=torch.long, device=self.normals.device)
        return _angle(self.normals[i], self.normals[j])

    def is_singular(self, i, j) -> torch.Tensor:
        """Whether pairs (i, j) are singular (broadcasting index arrays).

        Angle rules: θ_ij > threshold, for any pair. Valley rule: an adjacent pair is
        singular when it was flagged (:attr:`singular`); any other pair when its
        valley ratio, with the midpoint's neighbours searched near the two codes
        (:class:`ValleyIndex`), exceeds the threshold. i == j is never singular.
        """
        if self.by_angle:
            return self.pair_angles(i, j) > self.threshold
        device = self.normals.device
        i = torch.as_tensor(i, dtype=torch.long, device=device)
        j = torch.as_tensor(j, dtype=torch.long, device=device)
        i, j = torch.broadcast_tensors(i, j)
        if self.index is not None:
            out = self.index.ratios(i, j) > self.threshold
        else:
            out = torch.zeros(i.shape, dtype=torch.bool, device=device)
        if self.pairs is not None and self.pairs.numel():
            n = self.normals.shape[0]
            keys = self.pairs[:, 0] * n + self.pairs[:, 1]  # sorted (CellGraph.pairs)
            query = (torch.minimum(i, j) * n + torch.maximum(i, j)).reshape(-1)
            pos = torch.searchsorted(keys, query).clamp_max(keys.numel() - 1)
            adjacent = (keys[pos] == query).reshape(i.shape)
            out = torch.where(adjacent, self.singular[pos].reshape(i.shape), out)
        return out

    def pairwise(self, cells: torch.Tensor) -> torch.Tensor:
        """(M, K, K) bool: whether cells[m, a] and cells[m, b] are singular (cells ≥ 0)."""
        if self.by_angle:
            cand = self.normals[cells]  # (M, K, d + 1) unit normals
            # θ_ab > threshold  <=>  <n̂_a, n̂_b> < cos(threshold)
            cos = math.cos(min(self.threshold, math.pi))
            return torch.bmm(cand, cand.transpose(1, 2)) < cos
        m, k = cells.shape
        a, b = torch.triu_indices(k, k, 1, device=cells.device)
        upper = self.is_singular(cells[:, a], cells[:, b])  # (M, K(K − 1)/2)
        out = torch.zeros(m, k, k, dtype=torch.bool, device=cells.device)
        out[:, a, b] = upper
        out[:, b, a] = upper
        return out


def detect_singular(
    graph: CellGraph,
    targets,
    threshold: float | None = None,
    *,
    rule: str = "auto",
    neighbours: int = 10,
    density_ratio: float = 0.5,
    **angle_options,
) -> SingularSet:
    """Mark the singular facets of the graph (see the module docstring for the rules).

    Parameters
    ----------
    graph : CellGraph
    targets : (N, d) array
        The codes y (``result.targets``).
    threshold : float, optional
        Absolute angle in radians on the normalised scale: pairs with θ_ij > threshold
        are singular (``rule`` is then ignored; the set's rule reads ``"given"``).
    rule : {"auto", "angle", "valley"}
        ``"angle"``: θ_ij above :func:`default_threshold` over the graph's edges
        (keyword ``angle_options`` are passed on to it). ``"valley"``: the density-valley
        test v_ij > density_ratio^(−1/d) (:func:`valley_ratios`). ``"auto"`` (default):
        the angle threshold when :func:`default_threshold` finds a gap or d ≤ 3, else
        the valley rule.
    neighbours : int
        k of the valley rule's kNN spacing.
    density_ratio : float in (0, 1)
        The valley rule flags a pair when the kNN density half-way between its codes is
        below this fraction of the (geometric mean) density at the codes.

    Returns
    -------
    SingularSet
    """
    if not isinstance(graph, CellGraph):
        raise TypeError(f"graph must be a CellGraph, got {type(graph).__name__}")
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if not (isinstance(density_ratio, (int, float)) and 0 < density_ratio < 1):
        raise ValueError(f"density_ratio must be in (0, 1), got {density_ratio!r}")
    normals = unit_normals(targets).to(graph.centroids.device)
    if normals.shape[0] != graph.n_cells:
        raise ValueError(
            f"targets has {normals.shape[0]} rows but the graph has {graph.n_cells} cells"
        )
    pairs = graph.pairs
    angles = _angle(normals[pairs[:, 0]], normals[pairs[:, 1]])
    valley = index = None
    if threshold is not None:
        value, how = float(threshold), "given"
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"threshold must be a non-negative angle in radians, got {threshold}")
    else:
        value, how = default_threshold(angles, **angle_options)
        dim = normals.shape[1] - 1
        if rule == "valley" or (rule == "auto" and how != "gap" and dim >= AUTO_VALLEY_MIN_DIM):
            value, how = float(density_ratio ** (-1.0 / dim)), "valley"
            index = ValleyIndex.build(targets, neighbours, value)
            valley = index.exact(pairs).to(normals.device)
    singular = (valley if valley is not None else angles) > value
    keep = (~singular).cpu().numpy()
    _, labels = connected_components(graph.adjacency(keep), directed=False)
    components = torch.as_tensor(labels, dtype=torch.long, device=normals.device)
    return SingularSet(value, how, angles, singular, components, normals, pairs, valley, index)


def singular_points(
    result: SemiDiscreteResult,
    x,
    *,
    threshold: float | None = None,
    tol: float | None = None,
    graph: CellGraph | None = None,
    singular: SingularSet | None = None,
) -> torch.Tensor:
    """Whether source points lie near the singular set Σ (to draw it: scatter x[mask]).

    A point x is on Σ (within ``tol``) when its two best cells i, j form a singular
    pair (:meth:`SingularSet.is_singular`) and its distance to their separating hyperplane,
    δ(x) = (s_i(x) − s_j(x)) / |y_i − y_j|, is at most ``tol``.

    Parameters
    ----------
    result : SemiDiscreteResult
    x : (M, d) array
        Source points.
    threshold : float, optional
        Angle threshold (radians, normalised codes); :func:`detect_singular`'s default
        rule when omitted.
    tol : float, optional
        Distance tolerance in source units; the graph's slab half-width ε when omitted.
    graph : CellGraph, optional
        Reused if given; otherwise estimated with default settings (when needed).
    singular : SingularSet, optional
        Reused if given (its threshold wins over ``threshold``).

    Returns
    -------
    (M,) bool tensor
    """
    if not isinstance(result, SemiDiscreteResult):
        raise TypeError(f"result must be a SemiDiscreteResult, got {type(result).__name__}")
    y = result.targets
    x = as_float_tensor(x, "x", ndim=2, dtype=y.dtype, device=y.device)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x must have shape (M, {y.shape[1]}), got {tuple(x.shape)}")
    if y.shape[0] < 2:
        return torch.zeros(x.shape[0], dtype=torch.bool, device=y.device)
    if graph is None and (tol is None or (singular is None and threshold is None)):
        graph = estimate_cell_graph(result)
    if tol is None:
        tol = graph.eps
    values, cells = result.topk(x, 2)
    y64 = y.to(torch.float64)
    sep = (y64[cells[:, 0]] - y64[cells[:, 1]]).norm(dim=1)
    dist = (values[:, 0] - values[:, 1]).to(torch.float64) / sep
    if singular is None and threshold is not None:
        normals = unit_normals(y).to(y.device)
        pair = _angle(normals[cells[:, 0]], normals[cells[:, 1]]) > threshold
    else:
        if singular is None:
            singular = detect_singular(graph, y)
        pair = singular.is_singular(cells[:, 0], cells[:, 1]).to(y.device)
    return pair & (dist <= tol)
