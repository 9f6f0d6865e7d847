"""KID: unbiased MMD² against a naive implementation, subset averaging, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from aeot.metrics import kernel_inception_distance, mmd2_unbiased


def naive_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]

    def k(a, b):
        return (float(a @ b) / d + 1.0) ** 3

    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def test_mmd2_matches_naive_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(25, 5))
    y = rng.normal(size=(18, 5)) + 0.5
    got = mmd2_unbiased(torch.from_numpy(x), torch.from_numpy(y))
    assert got == pytest.approx(naive_mmd2(x, y), rel=1e-10)


def test_kid_full_subsets_equal_naive():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 4))
    y = rng.normal(size=(30, 4)) * 1.3
    res = kernel_inception_distance(x, y, n_subsets=3, subset_size=30, device="cpu")
    # every subset is a permutation of the whole set: the estimate is permutation invariant
    assert res.mean == pytest.approx(naive_mmd2(x, y), rel=1e-10)
    assert res.std == pytest.approx(0.0, abs=1e-12)
    mean, std, values = res  # unpacks like a tuple
    assert (mean, std) == (res.mean, res.std)
    assert values.shape == (3,)


def test_kid_same_distribution_near_zero_and_shift_positive():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(1000, 16)), rng.normal(size=(1000, 16))
    kw = {"n_subsets": 15, "subset_size": 250, "device": "cpu"}
    indep = kernel_inception_distance(x, y, **kw)
    same = kernel_inception_distance(x, x, **kw)
    shifted = kernel_inception_distance(x, y + 0.5, **kw)
    # two samples of one distribution: unbiased, zero within the per-subset noise
    assert abs(indep.mean) < 2 * indep.std
    # the very same points: subsets share points, a small negative O(1/m) offset,
    # still at the noise level and negligible against a real difference
    assert abs(same.mean) < 5 * same.std
    assert shifted.mean > 0
    assert shifted.mean > 20 * (abs(same.mean) + same.std)
    assert shifted.mean > 20 * (abs(indep.mean) + indep.std)


def test_kid_seeded_and_subset_clipped():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(50, 3))
    r1 = kernel_inception_distance(x, y, n_subsets=5, subset_size=1000, seed=7, device="cpu")
    r2 = kernel_inception_distance(x, y, n_subsets=5, subset_size=1000, seed=7, device="cpu")
    np.testing.assert_array_equal(r1.values, r2.values)
    r3 = kernel_inception_distance(x, y, n_subsets=5, subset_size=10, seed=8, device="cpu")
    assert not np.array_equal(r1.values, r3.values)


def test_kid_bad_input():
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match="dimension mismatch"):
        kernel_inception_distance(x, np.zeros((10, 4)), device="cpu")
    with pytest.raises(ValueError, match="at least 2"):
        kernel_inception_distance(x, np.zeros((1, 3)), device="cpu")
    with pytest.raises(ValueError, match="NaN"):
        kernel_inception_distance(x, np.full((10, 3), np.nan), device="cpu")
    with pytest.raises(ValueError, match="empty"):
        kernel_inception_distance(x, np.zeros((0, 3)), device="cpu")
    with pytest.raises(ValueError, match="subset_size"):
        kernel_inception_distance(x, x, subset_size=1, device="cpu")
    with pytest.raises(ValueError, match="n_subsets"):
        kernel_inception_distance(x, x, n_subsets=0, device="cpu")
