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
    "SingularSet",
    "default_threshold",
    "detect_singular",
    "dihedral_angles",
    "normalise_targets",
    "singular_points",
    "unit_normals",
]


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


@dataclass(eq=False)
class SingularSet:
    """Which adjacent cells are separated by a singular facet.

    Attributes
    ----------
    threshold : float
        Angle threshold (radians, normalised codes); pair (i, j) is singular when
        θ_ij > threshold.
    rule : str
        ``"given"``, ``"gap"``, ``"median"`` or ``"none"`` (how the threshold was chosen).
    angles : (E,) float64 tensor
        θ of every edge of the graph.
    singular : (E,) bool tensor
        θ > threshold per edge.
    components : (N,) long tensor
        Label of each cell's connected component in the graph of non-singular edges
        (the "modes"; the singular facets separate components or cut through one).
    normals : (N, d + 1) float64 tensor
        Unit normals n̂_i of the normalised planes (to evaluate θ for any pair).
    """

    threshold: float
    rule: str
    angles: torch.Tensor
    singular: torch.Tensor
    components: torch.Tensor
    normals: torch.Tensor

    @property
    def n_components(self) -> int:
        return int(self.components.max()) + 1 if self.components.numel() else 0

    def pair_angles(self, i, j) -> torch.Tensor:
        """θ for arbitrary pairs of cells (broadcasting index arrays)."""
        i = torch.as_tensor(i, dtype=torch.long, device=self.normals.device)
        j = torch.as_tensor(j, dtype=torch.long, device=self.normals.device)
        return _angle(self.normals[i], self.normals[j])

    def is_singular(self, i, j) -> torch.Tensor:
        """Whether pairs (i, j) are singular (θ_ij > threshold); i == j is never singular."""
        return self.pair_angles(i, j) > self.threshold


def detect_singular(
    graph: CellGraph, targets, threshold: float | None = None, **rule
) -> SingularSet:
    """Mark the singular facets of the graph: θ_ij > threshold.

    Parameters
    ----------
    graph : CellGraph
    targets : (N, d) array
        The codes y (``result.targets``).
    threshold : float, optional
        Absolute angle in radians on the normalised scale. When omitted,
        :func:`default_threshold` over the graph's edges (keyword ``rule`` arguments
        are passed on to it).

    Returns
    -------
    SingularSet
    """
    if not isinstance(graph, CellGraph):
        raise TypeError(f"graph must be a CellGraph, got {type(graph).__name__}")
    normals = unit_normals(targets).to(graph.centroids.device)
    if normals.shape[0] != graph.n_cells:
        raise ValueError(
            f"targets has {normals.shape[0]} rows but the graph has {graph.n_cells} cells"
        )
    pairs = graph.pairs
    angles = _angle(normals[pairs[:, 0]], normals[pairs[:, 1]])
    if threshold is None:
        value, how = default_threshold(angles, **rule)
    else:
        value, how = float(threshold), "given"
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"threshold must be a non-negative angle in radians, got {threshold}")
    singular = angles > value
    keep = (~singular).cpu().numpy()
    _, labels = connected_components(graph.adjacency(keep), directed=False)
    components = torch.as_tensor(labels, dtype=torch.long, device=normals.device)
    return SingularSet(value, how, angles, singular, components, normals)


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
    pair and its distance to their separating hyperplane,
    δ(x) = (s_i(x) − s_j(x)) / |y_i − y_j|, is at most ``tol``.

    Parameters
    ----------
    result : SemiDiscreteResult
    x : (M, d) array
        Source points.
    threshold : float, optional
        Angle threshold (radians, normalised codes); the default rule when omitted.
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
    if singular is None:
        if threshold is None:
            singular = detect_singular(graph, y)
            threshold = singular.threshold
        normals = unit_normals(y).to(y.device)
    else:
        threshold, normals = singular.threshold, singular.normals
    if tol is None:
        tol = graph.eps
    values, cells = result.topk(x, 2)
    y64 = y.to(torch.float64)
    sep = (y64[cells[:, 0]] - y64[cells[:, 1]]).norm(dim=1)
    dist = (values[:, 0] - values[:, 1]).to(torch.float64) / sep
    theta = _angle(normals[cells[:, 0]], normals[cells[:, 1]])
    return (theta > threshold) & (dist <= tol)
