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

import math
from dataclasses import dataclass

import torch

from aeot._validation import as_float_tensor

__all__ = [
    "Memorisation",
    "NearestIndex",
    "leave_one_out_median",
    "memorisation",
    "nearest_distances",
]


def nearest_distances(queries, items, *, block: int = 2**24, exclude=None) -> torch.Tensor:
    """d(q, X) = min_x |q − x| for each query, exactly (float64 distances, brute force).

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
    (M,) float64 tensor, on the device of ``items``. :class:`NearestIndex` does the work;
    build one to query the same items many times.
    """
    return NearestIndex(items, block=block).distances(queries, exclude=exclude)


_SCREEN_K = 8  # screened values kept per query before the margin test


class NearestIndex:
    """Exact nearest-item distances d(q, X) = min_x |q − x| to a fixed set X, for many
    batches of queries (brute force; X is neither copied nor converted when it is float32
    or float64 already).

    Each (rows, N) block of squared distances is screened by the expansion
    s̃ = |q|² − 2⟨q, x⟩ + |x|² in X's precision (float32 or float64, unit roundoff u), a
    matrix product; every item whose s̃ is within 2E of the row's least is a candidate,
    where E = γ (|q| + max_x |x|)², γ = (D+4)u / (1 − (D+4)u), bounds the rounding error
    of s̃ for vectors of length D (the dot product's γ_D |q||x|, the norms', the sums' and
    the query's rounding into the screen's precision), so the nearest item is always
    among them; the candidates' distances are then computed
    directly in float64, and the least is returned. Float32 data thus costs a float32
    product (about twice the float64 throughput on a CPU, half the memory traffic) and
    still returns float64-exact distances. Under a reduced float32 matmul precision
    (``torch.set_float32_matmul_precision`` other than "highest", TF32 or bfloat16
    products) the screen runs in float64 instead.

    Parameters
    ----------
    items : (N, ...) array or tensor
        The set X (at least one item; finite).
    block : int
        Bound on the entries of one (rows, N) distance block.
    """

    def __init__(self, items, *, block: int = 2**24):
        x = as_float_tensor(items, "items")
        if x.ndim < 1 or x.shape[0] == 0:
            raise ValueError("items must hold at least one sample")
        if not (isinstance(block, int) and block >= 1):
            raise ValueError(f"block must be a positive integer, got {block!r}")
        reduced = torch.get_float32_matmul_precision() != "highest"
        screen = torch.float64 if x.dtype == torch.float64 or reduced else torch.float32
        self.sample_shape = tuple(x.shape[1:])
        self.items = x.reshape(x.shape[0], -1).to(screen)
        self.block = block
        self._sq = self.items.pow(2).sum(1)
        eps = torch.finfo(screen).eps / 2
        n_terms = self.items.shape[1] + 4
        self._gamma = n_terms * eps / (1.0 - n_terms * eps)
        # max |x| from the screened sum of squares, rounded up by its own error bound
        self._max_norm = math.sqrt(float(self._sq.max()) * (1.0 + 2.0 * self._gamma))

    def __len__(self) -> int:
        return self.items.shape[0]

    def distances(self, queries, *, exclude=None) -> torch.Tensor:
        """(M,) float64 d(q, X) of each query (class docstring), on X's device.

        ``exclude`` : (M,) long tensor, optional: an item left out for each query
        (leave-one-out distances when the queries are items themselves); a query with no
        item left gets +inf.
        """
        x = self.items
        q = as_float_tensor(queries, "queries", device=x.device)
        if tuple(q.shape[1:]) != self.sample_shape:
            raise ValueError(
                f"queries have sample shape {tuple(q.shape[1:])}, items {self.sample_shape}"
            )
        q64 = q.reshape(q.shape[0], -1).to(torch.float64)
        qs_all = q64.to(x.dtype)
        if exclude is not None:
            exclude = torch.as_tensor(exclude, device=x.device).long()
        out = torch.full((q.shape[0],), torch.inf, dtype=torch.float64, device=x.device)
        rows = max(1, self.block // x.shape[0])
        for start in range(0, q.shape[0], rows):
            qs = qs_all[start : start + rows]
            q_sq = qs.pow(2).sum(1, keepdim=True)
            sq = torch.addmm(self._sq, qs, x.t(), alpha=-2.0).add_(q_sq)
            if exclude is not None:
                here = torch.arange(qs.shape[0], device=x.device)
                sq[here, exclude[start : start + rows]] = torch.inf
            norm = q64[start : start + rows].norm(dim=1)
            margin = 2.0 * self._gamma * (norm + self._max_norm).pow(2) * (1.0 + 1e-6)
            # the k least screened values hold every candidate unless the k-th is within
            # the margin too; such rows (near-duplicates) are scanned in full
            values, cells = torch.topk(sq, min(_SCREEN_K, x.shape[0]), dim=1, largest=False)
            # the threshold least + 2E rounded up into the screen's precision
            bound = (values[:, 0].to(torch.float64) + margin).to(x.dtype)
            bound = torch.nextafter(bound, torch.full_like(bound, torch.inf))[:, None]
            keep = (values <= bound) & values.isfinite()
            r, c = keep.nonzero(as_tuple=True)
            c = cells[r, c]
            full = keep[:, -1].nonzero()[:, 0] if values.shape[1] < x.shape[0] else r[:0]
            if len(full):
                wide = (sq[full] <= bound[full]) & sq[full].isfinite()
                fr, fc = wide.nonzero(as_tuple=True)
                r, c = torch.cat([r, full[fr]]), torch.cat([c, fc])
            # the candidates' distances directly, in chunks of at most `block` numbers
            chunk = max(1, self.block // x.shape[1])
            for lo in range(0, len(r), chunk):
                ri, ci = r[lo : lo + chunk], c[lo : lo + chunk]
                d2 = (q64[start + ri] - x[ci].to(torch.float64)).pow(2).sum(1)
                out.scatter_reduce_(0, start + ri, d2, reduce="amin")
        return out.sqrt()

    def leave_one_out_median(self, n: int, *, seed: int) -> float:
        """median_j min_{i ≠ j} |x_j − x_i| over n random items j (all when fewer); the
        n items are a permutation drawn from ``seed`` (:func:`leave_one_out_median`)."""
        g = torch.Generator().manual_seed(seed)
        queries = torch.randperm(len(self), generator=g)[: min(n, len(self))]
        queries = queries.to(self.items.device)
        sample = self.items[queries].reshape(-1, *self.sample_shape)
        return float(self.distances(sample, exclude=queries).median())


def leave_one_out_median(items, n: int, *, seed: int) -> float:
    """median_j min_{i ≠ j} |x_j − x_i| over n random items j (all when fewer): the
    distance of a fresh item to the set, the yardstick of the spread's calibration
    (:meth:`aeot.generate.AEOTSampler.calibrate_spread`).

    ``items`` (N, ...) tensor or a :class:`NearestIndex` of them; the n items are a
    permutation drawn from ``seed``.
    """
    index = items if isinstance(items, NearestIndex) else NearestIndex(items)
    return index.leave_one_out_median(n, seed=seed)


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
