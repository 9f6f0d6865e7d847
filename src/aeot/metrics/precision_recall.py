"""Improved precision and recall (Kynkäänniemi, Karras, Laine, Lehtinen & Aila 2019).

Each feature set Φ is turned into a manifold estimate

    manifold(Φ) = ∪_{φ ∈ Φ} B(φ, NN_k(φ, Φ)),

the union of closed balls centred at its points with radius the distance to the k-th
nearest *other* point of Φ. Then

    precision = (1/|Φ_g|) Σ_{φ_g ∈ Φ_g} 1[φ_g ∈ manifold(Φ_r)]
    recall    = (1/|Φ_r|) Σ_{φ_r ∈ Φ_r} 1[φ_r ∈ manifold(Φ_g)]

with Φ_r the real and Φ_g the generated features. Pairwise distances are computed in
blocks of ``chunk_size × chunk_size`` with ``torch.cdist``, so memory stays
O(chunk_size²) whatever the set sizes (10k × 10k is fine).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from aeot._validation import as_float_tensor, check_positive_int, resolve_device

__all__ = ["PrecisionRecall", "knn_radii", "manifold_membership", "precision_recall"]


class PrecisionRecall(NamedTuple):
    precision: float
    recall: float


def _blocks(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(start + size, n)


def knn_radii(feats: torch.Tensor, k: int = 3, *, chunk_size: int = 1024) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour in the same set (itself excluded).

    Implemented as the (k+1)-th smallest distance including the zero self-distance, as in
    the reference implementation; exact duplicates therefore count as neighbours at
    distance 0.

    Parameters
    ----------
    feats : (n, d) array or tensor, n > k
    k : int
    chunk_size : int
        Block size of the distance computation.

    Returns
    -------
    (n,) tensor of radii, same dtype/device as ``feats``.
    """
    feats = as_float_tensor(feats, "feats", ndim=2)
    k = check_positive_int(k, "k")
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    n = feats.shape[0]
    if n <= k:
        raise ValueError(f"need more than k={k} points to find k-th neighbours, got {n}")
    radii = torch.empty(n, dtype=feats.dtype, device=feats.device)
    for r0, r1 in _blocks(n, chunk_size):
        rows = feats[r0:r1]
        best = None  # running (k+1) smallest distances per row
        for c0, c1 in _blocks(n, chunk_size):
            dist = torch.cdist(rows, feats[c0:c1])
            if r0 == c0:  # exact zero self-distance on the diagonal block
                idx = torch.arange(r1 - r0, device=feats.device)
                dist[idx, idx] = 0.0
            cand = dist if best is None else torch.cat([best, dist], dim=1)
            kk = min(k + 1, cand.shape[1])
            best = torch.topk(cand, kk, dim=1, largest=False).values
        radii[r0:r1] = best[:, k]
    return radii


def manifold_membership(
    query: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, *, chunk_size: int = 1024
) -> torch.Tensor:
    """Whether each query point lies in ∪_j B(support_j, radii_j) (closed balls).

    Parameters
    ----------
    query : (m, d) tensor
    support : (n, d) tensor
    radii : (n,) tensor
    chunk_size : int

    Returns
    -------
    (m,) bool tensor
    """
    inside = torch.zeros(query.shape[0], dtype=torch.bool, device=query.device)
    for r0, r1 in _blocks(query.shape[0], chunk_size):
        rows = query[r0:r1]
        hit = torch.zeros(r1 - r0, dtype=torch.bool, device=query.device)
        for c0, c1 in _blocks(support.shape[0], chunk_size):
            dist = torch.cdist(rows, support[c0:c1])
            hit |= (dist <= radii[c0:c1].unsqueeze(0)).any(dim=1)
            if bool(hit.all()):
                break
        inside[r0:r1] = hit
    return inside


def precision_recall(
    real_feats,
    fake_feats,
    *,
    k: int = 3,
    chunk_size: int = 1024,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> PrecisionRecall:
    """k-NN precision and recall of generated features against real ones.

    Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
    Generative Models" (NeurIPS); see the module docstring for the formulas.

    Parameters
    ----------
    real_feats : (n_r, d) array or tensor
    fake_feats : (n_g, d) array or tensor
        Finite feature sets with the same d; each needs more than k rows.
    k : int
        Neighbourhood size (3 in the paper).
    chunk_size : int
        Block size of the pairwise distances (memory ~ chunk_size² numbers).
    device : torch device, optional
        ``None``: CUDA if available, else CPU.
    dtype : torch dtype
        Precision of the distances (float32 default; float64 for tiny feature scales).

    Returns
    -------
    PrecisionRecall
        ``(precision, recall)``, both in [0, 1].
    """
    dev = resolve_device(device)
    k = check_positive_int(k, "k")
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    real = as_float_tensor(real_feats, "real_feats", ndim=2, dtype=dtype, device=dev)
    fake = as_float_tensor(fake_feats, "fake_feats", ndim=2, dtype=dtype, device=dev)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"feature dimension mismatch: real_feats has {real.shape[1]}, "
            f"fake_feats has {fake.shape[1]}"
        )
    for name, t in (("real_feats", real), ("fake_feats", fake)):
        if t.shape[0] <= k:
            raise ValueError(f"{name} needs more than k={k} samples, got {t.shape[0]}")
    real_radii = knn_radii(real, k, chunk_size=chunk_size)
    fake_radii = knn_radii(fake, k, chunk_size=chunk_size)
    precision = manifold_membership(fake, real, real_radii, chunk_size=chunk_size)
    recall = manifold_membership(real, fake, fake_radii, chunk_size=chunk_size)
    return PrecisionRecall(float(precision.double().mean()), float(recall.double().mean()))
