"""Copy fraction and nearest-neighbour ratio against their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aeot.metrics import memorisation, nearest_distances
from aeot.metrics.memorisation import NearestIndex, leave_one_out_median


def test_nearest_distances_by_brute_force():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 2, 3, 3))
    q = rng.standard_normal((57, 2, 3, 3))
    want = np.sqrt(((q.reshape(57, 1, -1) - x.reshape(1, 300, -1)) ** 2).sum(2)).min(1)
    got = nearest_distances(q, x, block=1000).numpy()  # several blocks
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # the expansion |q|² − 2<q, x> + |x|² cancels badly for far-away data: recomputed exactly
    far = torch.tensor([[1e8, 0.0], [1e8 + 1.0, 0.0]], dtype=torch.float64)
    assert nearest_distances(
        far[:1] + torch.tensor([[0.0, 1e-3]], dtype=torch.float64), far
    ).item() == pytest.approx(1e-3, rel=1e-9)


def test_copies_fresh_samples_and_interpolations():
    rng = np.random.default_rng(1)
    dim = 8
    train = rng.standard_normal((2000, dim))
    heldout = rng.standard_normal((2000, dim))
    fresh = rng.standard_normal((2000, dim))
    copies = train[rng.integers(0, 2000, 2000)]
    m = memorisation(copies, train, heldout)
    assert m.copy_fraction == 1.0 and m.nn_ratio == 0.0
    m = memorisation(fresh, train, heldout)
    assert m.copy_fraction == 0.0
    assert 0.9 < m.nn_ratio < 1.1  # same distribution, same count
    # midpoints of each training item and its nearest neighbour: between 0 and 1
    d = ((train[:, None] - train[None]) ** 2).sum(2)
    np.fill_diagonal(d, np.inf)
    mid = 0.5 * (train + train[d.argmin(1)])
    m = memorisation(mid, train, heldout)
    assert m.copy_fraction == 0.0 and 0.2 < m.nn_ratio < 0.8
    # half copies
    half = np.concatenate([copies[:1000], fresh[:1000]])
    assert memorisation(half, train, heldout).copy_fraction == 0.5
    assert m.n_samples == 2000 and m.n_heldout == 2000 and m.n_train == 2000


def test_errors_name_the_problem():
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="held-out"):
        memorisation(np.ones((4, 3)), x, x)  # held-out items are training items
    with pytest.raises(ValueError, match="sample shape"):
        memorisation(np.ones((4, 2)), x, np.ones((4, 3)))
    with pytest.raises(ValueError, match="tol"):
        memorisation(np.ones((4, 3)), x, np.ones((4, 3)), tol=-1.0)
    with pytest.raises(ValueError, match="finite"):
        memorisation(np.full((4, 3), np.nan), x, np.ones((4, 3)))


def test_leave_one_out_median_against_brute_force():
    """All items (n ≥ N): the median over every item of its distance to the nearest other
    one, from the full distance matrix; a subset of n items takes n of those rows."""
    x = torch.randn(301, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    d = torch.cdist(x, x)
    d.fill_diagonal_(float("inf"))
    loo = d.min(1).values
    assert leave_one_out_median(x, 1000, seed=3) == pytest.approx(float(loo.median()), rel=1e-12)
    g = torch.Generator().manual_seed(3)
    pick = torch.randperm(301, generator=g)[:50]
    subset = float(loo[pick].median())
    assert leave_one_out_median(x, 50, seed=3) == pytest.approx(subset, rel=1e-12)


def _brute(q, x, exclude=None):
    d = np.sqrt(((q.reshape(len(q), 1, -1) - x.reshape(1, len(x), -1)) ** 2).sum(2))
    if exclude is not None:
        d[np.arange(len(q)), exclude] = np.inf
    return d.min(1)


@pytest.mark.parametrize("offset", [0.0, 30.0])
def test_float32_items_screened_yet_exact(offset):
    # float32 items are screened by a float32 product, yet every distance is the float64
    # one: near-ties (items a hair apart) and a large offset (|x|² ≫ the gaps, so the
    # float32 expansion cannot order the items) both leave the true nearest a candidate
    rng = np.random.default_rng(2)
    base = rng.random((400, 64)).astype(np.float32) + np.float32(offset)
    twins = (base[:200] + rng.standard_normal((200, 64)).astype(np.float32) * 1e-4).astype(
        np.float32
    )
    # and a cluster of 30 near-copies of one item: more candidates than the screen keeps
    cluster = (base[:1] + rng.standard_normal((30, 64)) * 1e-4).astype(np.float32)
    x = np.concatenate([base, twins, cluster])
    q = (x[rng.integers(0, 630, 150)] + 0.01 * rng.standard_normal((150, 64))).astype(np.float32)
    q[:5] = cluster[:5] + np.float32(1e-5)
    want = _brute(q.astype(np.float64), x.astype(np.float64))
    got = nearest_distances(torch.from_numpy(q), torch.from_numpy(x), block=5000)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    # leave-one-out: the twins are each other's nearest
    idx = np.arange(0, 630, 7)
    index = NearestIndex(torch.from_numpy(x))
    got = index.distances(torch.from_numpy(x[idx]), exclude=torch.from_numpy(idx))
    want = _brute(x[idx].astype(np.float64), x.astype(np.float64), exclude=idx)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


def test_nearest_index_edge_cases():
    x = torch.tensor([[0.0, 1.0]])
    # the only item left out: no nearest item
    assert NearestIndex(x).distances(x, exclude=torch.tensor([0])).item() == np.inf
    # a reduced float32 matmul precision screens in float64 instead
    old = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        assert NearestIndex(x).items.dtype == torch.float64
    finally:
        torch.set_float32_matmul_precision(old)
    assert NearestIndex(x).items.dtype == torch.float32
    with pytest.raises(ValueError, match="sample shape"):
        NearestIndex(x).distances(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="block"):
        NearestIndex(x, block=0)
