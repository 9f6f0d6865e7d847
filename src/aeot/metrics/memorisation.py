"""Does a generative model copy its training set? Copies and nearest-neighbour distances.

A model that returns its training items scores well on Fréchet distance, precision and
mode counts against those items; these two numbers say whether it does:

* the *copy fraction*: the share of samples s with d(s, X) ≤ τ · m_H, i.e. identical to a
  training item up to a tolerance τ (default 1e-6) relative to m_H below;
* the *nearest-neighbour ratio* r = median_s d(s, X) / m_H, m_H = median_h d(h, X), with
  d(z, X) = min_{x ∈ X} |z − x| (Euclidean, on flattened samples) and H held-out items
  of the same distribution that the model never saw. Fresh samples of the data
  distribution have r ≈ 1 (exactly 1 in expectation when |S| = |H|); copies r = 0;
  samples between neighbouring training items (interpolation) 0 < r < 1.

For AE-OT the copy fraction is measured on latent codes (a generated code equal to a
training code decodes to that item's reconstruction) and r on the decoded images
against the training images, with held-out images as H.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aeot._validation import as_float_tensor

__all__ = ["Memorisation", "leave_one_out_median", "memorisation", "nearest_distances"]


def nearest_distances(queries, items, *, block: int = 2**24, exclude=None) -> torch.Tensor:
    """d(q, X) = min_x |q − x| for each query, exactly (float64, brute force).

    Parameters
    ----------
    queries : (M, ...) array or tensor
    items : (N, ...) array or tensor, same sample shape
    block : int
        Bound on the entries of one (rows, N) distance block.
    exclude : (M,) long tensor, optional
        Item left out for each query (leave-one-out distances when the queries are
        items themselves).

    Returns
    -------
    (M,) float64 tensor, on the device of ``items``.
    """
    x = as_float_tensor(items, "items", dtype=torch.float64)
    q = as_float_tensor(queries, "queries", dtype=torch.float64, device=x.device)
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError("items must hold at least one sample")
    if q.shape[1:] != x.shape[1:]:
        raise ValueError(
            f"queries have sample shape {tuple(q.shape[1:])}, items {tuple(x.shape[1:])}"
        )
    x = x.reshape(x.shape[0], -1)
    q = q.reshape(q.shape[0], -1)
    x_sq = x.pow(2).sum(1)
    out = torch.empty(q.shape[0], dtype=torch.float64, device=x.device)
    rows = max(1, block // x.shape[0])
    for start in range(0, q.shape[0], rows):
        qs = q[start : start + rows]
        # |q − x|² by the expansion, then the minimiser's distance recomputed exactly
        sq = torch.addmm(x_sq, qs, x.t(), alpha=-2.0) + qs.pow(2).sum(1, keepdim=True)
        if exclude is not None:
            rows_here = torch.arange(qs.shape[0], device=x.device)
            sq[rows_here, exclude[start : start + rows].to(x.device)] = torch.inf
        best = sq.argmin(1)
        out[start : start + rows] = (qs - x[best]).norm(dim=1)
    return out


def leave_one_out_median(items: torch.Tensor, n: int, *, seed: int) -> float:
    """median_j min_{i ≠ j} |x_j − x_i| over n random items j (all when fewer): the
    distance of a fresh item to the set, the yardstick of the spread's calibration
    (:meth:`aeot.generate.AEOTSampler.calibrate_spread`).

    ``items`` (N, ...) tensor; the n items are a permutation drawn from ``seed``.
    """
    g = torch.Generator().manual_seed(seed)
    queries = torch.randperm(len(items), generator=g)[: min(n, len(items))].to(items.device)
    return float(nearest_distances(items[queries], items, exclude=queries).median())


@dataclass(frozen=True)
class Memorisation:
    """Copies and nearest-neighbour distances of generated samples (module docstring).

    Attributes
    ----------
    copy_fraction : float
        Share of samples within ``tol`` · m_H of a training item.
    nn_ratio : float
        median_s d(s, X) / m_H.
    median_sample_distance : float
        median_s d(s, X).
    median_heldout_distance : float
        m_H = median_h d(h, X).
    n_samples, n_heldout, n_train : int
    """

    copy_fraction: float
    nn_ratio: float
    median_sample_distance: float
    median_heldout_distance: float
    n_samples: int
    n_heldout: int
    n_train: int


def memorisation(samples, train, heldout, *, tol: float = 1e-6) -> Memorisation:
    """Copy fraction and nearest-neighbour ratio of ``samples`` against ``train``.

    Parameters
    ----------
    samples : (M, ...) array or tensor
        Generated samples.
    train : (N, ...) array or tensor
        The items the model was fitted on.
    heldout : (H, ...) array or tensor
        Items of the same distribution not used in fitting (the reference distance).
    tol : float
        A sample within ``tol`` · m_H of a training item counts as a copy.

    Returns
    -------
    Memorisation
    """
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    d_s = nearest_distances(samples, train)
    d_h = nearest_distances(heldout, train)
    if d_s.numel() == 0 or d_h.numel() == 0:
        raise ValueError("samples and heldout must each hold at least one sample")
    m_h = float(d_h.median())
    if not m_h > 0:
        raise ValueError(
            "the held-out items' median distance to the training items is 0: they are "
            "(mostly) training items, so they cannot serve as the reference"
        )
    m_s = float(d_s.median())
    return Memorisation(
        copy_fraction=float((d_s <= tol * m_h).double().mean()),
        nn_ratio=m_s / m_h,
        median_sample_distance=m_s,
        median_heldout_distance=m_h,
        n_samples=int(d_s.numel()),
        n_heldout=int(d_h.numel()),
        n_train=int(torch.as_tensor(train).shape[0]),
    )
