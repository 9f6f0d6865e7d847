"""Fréchet distance: closed forms, symmetry, large-sample behaviour, input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from aeot.metrics import feature_statistics, frechet_distance, gaussian_frechet


def test_identical_sets_give_zero():
    x = np.random.default_rng(0).normal(size=(500, 16))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(x, x, method="sqrtm") == pytest.approx(0.0, abs=1e-6)


def test_shifted_unit_gaussians_large_sample():
    rng = np.random.default_rng(1)
    d, n = 4, 40_000
    m1 = np.array([0.5, -1.0, 2.0, 0.0])
    m2 = np.array([1.5, 1.0, 2.0, -1.0])
    a = rng.normal(size=(n, d)) + m1
    b = rng.normal(size=(n, d)) + m2
    expected = float(((m1 - m2) ** 2).sum())  # = 6, covariance term → 0
    assert frechet_distance(a, b) == pytest.approx(expected, abs=0.1)


def test_diagonal_closed_form():
    rng = np.random.default_rng(2)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = rng.uniform(0.1, 3.0, size=d), rng.uniform(0.1, 3.0, size=d)
    expected = ((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum()
    for method in ("eigh", "sqrtm"):
        got = gaussian_frechet(mu1, np.diag(s1**2), mu2, np.diag(s2**2), method=method)
        assert got == pytest.approx(expected, rel=1e-10, abs=1e-10)


def test_commuting_matrices_closed_form():
    d = 5
    q = ortho_group.rvs(d, random_state=3)
    a = np.array([0.2, 1.0, 2.5, 4.0, 9.0])
    b = np.array([1.0, 0.3, 2.5, 0.5, 16.0])
    c1, c2 = (q * a) @ q.T, (q * b) @ q.T
    mu = np.zeros(d)
    expected = ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert gaussian_frechet(mu, c1, mu, c2) == pytest.approx(expected, rel=1e-9)
    assert gaussian_frechet(mu, c1, mu, c2, method="sqrtm") == pytest.approx(expected, rel=1e-8)


def test_singular_covariances_are_exact_with_eigh():
    # rank-deficient (features living in a subspace): no jitter needed
    c1 = np.diag([1.0, 0.0, 0.0])
    c2 = np.diag([4.0, 0.0, 9.0])
    mu = np.zeros(3)
    assert gaussian_frechet(mu, c1, mu, c2) == pytest.approx(1.0 + 9.0, abs=1e-12)


def test_general_matrices_methods_agree_and_symmetric():
    rng = np.random.default_rng(4)
    d = 8
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    c1, c2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    f_eigh = gaussian_frechet(mu1, c1, mu2, c2)
    f_sqrtm = gaussian_frechet(mu1, c1, mu2, c2, method="sqrtm")
    assert f_eigh == pytest.approx(f_sqrtm, rel=1e-8)
    assert f_eigh == pytest.approx(gaussian_frechet(mu2, c2, mu1, c1), rel=1e-10)


def test_frechet_distance_symmetric_and_accepts_torch():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(300, 10))
    b = rng.normal(size=(200, 10)) * 1.5 + 0.3
    fab, fba = frechet_distance(a, b), frechet_distance(b, a)
    assert fab == pytest.approx(fba, rel=1e-10)
    assert frechet_distance(torch.from_numpy(a).float(), torch.from_numpy(b).float()) == (
        pytest.approx(fab, rel=1e-5)
    )
    assert fab > 0


def test_feature_statistics_matches_numpy():
    x = np.random.default_rng(6).normal(size=(50, 3))
    mu, cov = feature_statistics(x)
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False))


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (np.zeros((10, 3)), np.zeros((10, 4)), "dimension mismatch"),
        (np.zeros((1, 3)), np.zeros((10, 3)), "at least 2"),
        (np.zeros((10, 3)), np.zeros((0, 3)), "empty"),
        (np.zeros(10), np.zeros((10, 1)), "2 dimensions"),
        (np.full((10, 3), np.nan), np.zeros((10, 3)), "NaN"),
    ],
)
def test_frechet_bad_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        frechet_distance(a, b)


def test_gaussian_frechet_bad_input():
    mu, cov = np.zeros(2), np.eye(2)
    with pytest.raises(ValueError, match="shape"):
        gaussian_frechet(mu, np.eye(3), mu, cov)
    with pytest.raises(ValueError, match="dimension mismatch"):
        gaussian_frechet(np.zeros(3), np.eye(3), mu, cov)
    with pytest.raises(ValueError, match="symmetric"):
        gaussian_frechet(mu, np.array([[1.0, 0.5], [0.0, 1.0]]), mu, cov)
    with pytest.raises(ValueError, match="method"):
        gaussian_frechet(mu, cov, mu, cov, method="svd")
    with pytest.raises(ValueError, match="NaN"):
        gaussian_frechet(np.array([0.0, np.nan]), cov, mu, cov)
