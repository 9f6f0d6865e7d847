"""Adjacency and geometry of the power cells of a semi-discrete OT solution, from samples.

The Brenier potential u_h(x) = max_i <x, y_i> + h_i of a
:class:`~aeot.ot.SemiDiscreteResult` decomposes the source space into power cells
W_i = {x : s_i(x) ≥ s_j(x) ∀j}, s_i(x) = <x, y_i> + h_i. Two cells are adjacent when
they share a facet W_i ∩ W_j of dimension d − 1. In high dimension the power diagram
cannot be built explicitly, so adjacency is read off source samples x ~ μ: for each
sample take its two best cells i, j (``result.topk(x, 2)``) and the distance from x
to the hyperplane {s_i = s_j} that carries their common facet,

    δ(x) = (s_i(x) − s_j(x)) / |y_i − y_j|.

Samples with δ(x) ≤ ε lie in a slab of half-width ε around a facet, so the pairs
(i, j) seen there are the adjacent pairs, and since the slab {x ∈ W_i ∪ W_j : δ ≤ ε}
has μ-measure ≈ 2ε ∫_{W_i ∩ W_j} dμ, the μ-weighted facet area is estimated by

    |F_ij|_μ ≈ #{samples in the slab of F_ij} / (2 n ε).

Normalising the score gap by |y_i − y_j| (a Euclidean distance rather than a raw
score gap) gives every facet the same slab width, so facets between distant codes
(the inter-mode facets that matter for the singular set) are sampled as well as
facets between close codes.

The same samples give each cell's μ-mass and centroid c_i = E_μ[x | x ∈ W_i], the
nodes of the piecewise-linear extension of the OT map c_i ↦ y_i (An et al., "AE-OT:
A new generative model based on extended semi-discrete optimal transport", ICLR 2020,
Sec. 3–4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from aeot._validation import check_positive_int
from aeot.ot.result import SemiDiscreteResult

__all__ = ["CellGraph", "estimate_cell_graph"]


@dataclass(eq=False)
class CellGraph:
    """Adjacent power cells, facet measures and cell centroids estimated from samples.

    Build it with :func:`estimate_cell_graph` (or :meth:`CellGraph.estimate`).

    Attributes
    ----------
    pairs : (E, 2) long tensor
        Adjacent cells (i, j), i < j, sorted lexicographically.
    counts : (E,) long tensor
        Samples found in the ε-slab of each facet (both sides together).
    facet_measure : (E,) float64 tensor
        Estimated μ-weighted facet area ∫_{W_i ∩ W_j} dμ ≈ counts / (2 n ε).
    facet_points : (E, d) float64 tensor
        Mean of the slab samples of each facet: a point on (within ε of) the facet.
    centroids : (N, d) float64 tensor
        c_i, the mean of the samples in W_i. For a cell no sample fell in, the sample
        closest to entering it (largest s_i(x) − max_j s_j(x)) stands in.
    masses : (N,) float64 tensor
        μ(W_i) estimated as the fraction of samples in W_i.
    cell_counts : (N,) long tensor
        Samples in each cell.
    eps : float
        Slab half-width ε in source units (the ``slab_fraction`` quantile of δ).
    n_samples : int
        Source samples used.
    """

    pairs: torch.Tensor
    counts: torch.Tensor
    facet_measure: torch.Tensor
    facet_points: torch.Tensor
    centroids: torch.Tensor
    masses: torch.Tensor
    cell_counts: torch.Tensor
    eps: float
    n_samples: int

    @classmethod
    def estimate(cls, result: SemiDiscreteResult, n_samples: int = 2**16, **kwargs) -> CellGraph:
        """Same as :func:`estimate_cell_graph`."""
        return estimate_cell_graph(result, n_samples, **kwargs)

    @property
    def n_cells(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.pairs.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    @property
    def empty_cells(self) -> torch.Tensor:
        """Indices of cells that received no sample (their centroid is a stand-in)."""
        return torch.nonzero(self.cell_counts == 0).flatten()

    def edge_ids(self, i, j) -> torch.Tensor:
        """Edge index of each pair (i[k], j[k]) in :attr:`pairs`, −1 where not adjacent.

        Parameters
        ----------
        i, j : (K,) integer arrays
            Cell indices, in either order.
        """
        i = torch.as_tensor(i, dtype=torch.long, device=self.pairs.device).reshape(-1)
        j = torch.as_tensor(j, dtype=torch.long, device=self.pairs.device).reshape(-1)
        if i.shape != j.shape:
            raise ValueError("i and j must have the same length")
        n = self.n_cells
        keys = self.pairs[:, 0] * n + self.pairs[:, 1]
        query = torch.minimum(i, j) * n + torch.maximum(i, j)
        if keys.numel() == 0:
            return torch.full_like(query, -1)
        pos = torch.searchsorted(keys, query).clamp_max(keys.numel() - 1)
        return torch.where(keys[pos] == query, pos, torch.full_like(pos, -1))

    def neighbours(self, i: int) -> torch.Tensor:
        """The cells adjacent to cell ``i`` (sorted)."""
        left = self.pairs[self.pairs[:, 0] == i, 1]
        right = self.pairs[self.pairs[:, 1] == i, 0]
        return torch.sort(torch.cat([left, right])).values

    def adjacency(self, edge_mask=None) -> sp.csr_matrix:
        """Symmetric (N, N) sparse matrix of centroid distances |c_i − c_j| over the edges.

        Parameters
        ----------
        edge_mask : (E,) bool array, optional
            Keep only these edges (e.g. the non-singular ones).
        """
        pairs = self.pairs.cpu().numpy()
        if edge_mask is not None:
            pairs = pairs[np.asarray(torch.as_tensor(edge_mask).cpu(), dtype=bool)]
        c = self.centroids.cpu().numpy()
        # a zero distance would read as "no edge" in a sparse matrix
        w = np.maximum(np.linalg.norm(c[pairs[:, 0]] - c[pairs[:, 1]], axis=1), 1e-300)
        n = self.n_cells
        mat = sp.coo_matrix((w, (pairs[:, 0], pairs[:, 1])), shape=(n, n)).tocsr()
        return (mat + mat.T).tocsr()


def estimate_cell_graph(
    result: SemiDiscreteResult,
    n_samples: int = 2**16,
    *,
    seed: int = 0,
    qmc: bool = True,
    slab_fraction: float = 0.05,
    min_count: int = 1,
    chunk: int = 2**14,
) -> CellGraph:
    """Estimate the cell adjacency graph, facet measures and centroids from source samples.

    Draws x_1..x_n ~ μ (``result.problem.source``), finds the two best cells of each
    and the distance δ(x) = (s_i − s_j) / |y_i − y_j| to their separating hyperplane;
    pairs seen with δ ≤ ε, ε the ``slab_fraction`` quantile of δ, are the adjacent pairs.
    See the module docstring for the estimators.

    Parameters
    ----------
    result : SemiDiscreteResult
        A solved problem (targets y (N, d), heights h (N,)).
    n_samples : int
        Source samples n. Facets of μ-measure below ~1 / (n ε) may be missed.
    seed : int
        Seed of the source sampler (reproducible graph).
    qmc : bool
        Scrambled Sobol samples (lower variance) instead of i.i.d.
    slab_fraction : float in (0, 1)
        Fraction of the samples whose δ counts as "on a facet".
    min_count : int
        Pairs seen fewer times are dropped (1 keeps every observed pair).
    chunk : int
        Samples per ``result.topk`` call (bounds the memory of the (chunk, N) scores).

    Returns
    -------
    CellGraph
        On the device of the targets; float64 geometry.
    """
    if not isinstance(result, SemiDiscreteResult):
        raise TypeError(f"result must be a SemiDiscreteResult, got {type(result).__name__}")
    n = check_positive_int(n_samples, "n_samples", minimum=2)
    min_count = check_positive_int(min_count, "min_count")
    chunk = check_positive_int(chunk, "chunk")
    if not 0 < slab_fraction < 1:
        raise ValueError(f"slab_fraction must be in (0, 1), got {slab_fraction}")
    y = result.targets
    device = y.device
    n_cells, d = y.shape
    y64 = y.to(torch.float64)
    x = result.problem.source.sample(n, seed=seed, qmc=qmc, dtype=y.dtype, device=device)
    x64 = x.to(torch.float64)

    first = torch.empty(n, dtype=torch.long, device=device)
    second = torch.empty(n, dtype=torch.long, device=device)
    dist = torch.empty(n, dtype=torch.float64, device=device)
    best = torch.empty(n, dtype=torch.float64, device=device)
    k = 2 if n_cells > 1 else 1
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        values, cells = result.topk(x[start:stop], k)
        values = values.to(torch.float64)
        first[start:stop] = cells[:, 0]
        best[start:stop] = values[:, 0]
        if k == 2:
            second[start:stop] = cells[:, 1]
            sep = (y64[cells[:, 0]] - y64[cells[:, 1]]).norm(dim=1)
            dist[start:stop] = (values[:, 0] - values[:, 1]) / sep
        else:
            second[start:stop] = -1
            dist[start:stop] = torch.inf

    cell_counts = torch.bincount(first, minlength=n_cells)
    sums = torch.zeros(n_cells, d, dtype=torch.float64, device=device)
    sums.index_add_(0, first, x64)
    centroids = sums / cell_counts.clamp_min(1).unsqueeze(1).to(torch.float64)
    empty = torch.nonzero(cell_counts == 0).flatten()
    if empty.numel() > 0:
        h = result.h.to(y64)
        few = min(n, 8192)  # a rough location is enough for a cell without samples
        centroids[empty] = _stand_in_centroids(x64[:few], best[:few], y64[empty], h[empty], 256)
    masses = cell_counts.to(torch.float64) / n

    if k == 2:
        finite = torch.isfinite(dist)
        # torch.quantile accepts at most 2^24 values
        eps = float(torch.quantile(dist[finite][: 2**24], slab_fraction)) if finite.any() else 0.0
        eps = max(eps, 1e-300)
        near = finite & (dist <= eps)
        i, j = first[near], second[near]
        keys = torch.minimum(i, j) * n_cells + torch.maximum(i, j)
        uniq, inverse, counts = torch.unique(keys, return_inverse=True, return_counts=True)
        point_sums = torch.zeros(uniq.numel(), d, dtype=torch.float64, device=device)
        point_sums.index_add_(0, inverse, x64[near])
        keep = counts >= min_count
        uniq, counts, point_sums = uniq[keep], counts[keep], point_sums[keep]
        pairs = torch.stack([uniq // n_cells, uniq % n_cells], dim=1)
        facet_points = point_sums / counts.unsqueeze(1).to(torch.float64)
        facet_measure = counts.to(torch.float64) / (2.0 * n * eps)
    else:
        eps = 0.0
        pairs = torch.zeros(0, 2, dtype=torch.long, device=device)
        counts = torch.zeros(0, dtype=torch.long, device=device)
        facet_points = torch.zeros(0, d, dtype=torch.float64, device=device)
        facet_measure = torch.zeros(0, dtype=torch.float64, device=device)
    return CellGraph(
        pairs=pairs,
        counts=counts,
        facet_measure=facet_measure,
        facet_points=facet_points,
        centroids=centroids,
        masses=masses,
        cell_counts=cell_counts,
        eps=eps,
        n_samples=n,
    )


def _stand_in_centroids(
    x: torch.Tensor, best: torch.Tensor, y: torch.Tensor, h: torch.Tensor, chunk: int
) -> torch.Tensor:
    """For cells without samples: the sample x maximising s_i(x) − u_h(x) (closest to W_i)."""
    where = torch.empty(y.shape[0], dtype=torch.long, device=x.device)
    for start in range(0, y.shape[0], chunk):
        stop = min(start + chunk, y.shape[0])
        margin = torch.addmm(h[start:stop], x, y[start:stop].t()) - best[:, None]  # (n, c) ≤ 0
        where[start:stop] = margin.argmax(0)
    return x[where]
