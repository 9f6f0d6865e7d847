"""k-NN precision/recall (Kynkäänniemi et al. 2019)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aeot.metrics import knn_radii, precision_recall


def clusters(rng, centres, n_per, scale=0.1):
    return np.concatenate([c + scale * rng.normal(size=(n_per, centres.shape[1])) for c in centres])


def test_identical_sets():
    x = np.random.default_rng(0).normal(size=(300, 8))
    pr = precision_recall(x, x, device="cpu")
    assert pr.precision == 1.0
    assert pr.recall == 1.0


def test_disjoint_far_apart_sets():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(200, 4))
    fake = rng.normal(size=(150, 4)) + 100.0
    precision, recall = precision_recall(real, fake, device="cpu")
    assert precision == 0.0
    assert recall == 0.0


def test_half_the_modes():
    rng = np.random.default_rng(2)
    angles = 2 * np.pi * np.arange(10) / 10
    centres = 10.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # 10 separated modes
    real = clusters(rng, centres, 200)
    fake = clusters(rng, centres[:5], 400)  # generator covering modes 0..4 only
    pr = precision_recall(real, fake, device="cpu")
    assert pr.precision > 0.95
    assert pr.recall == pytest.approx(0.5, abs=0.03)


def test_chunking_does_not_change_result():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(137, 5)), rng.normal(size=(91, 5)) * 1.3
    a = precision_recall(real, fake, k=3, chunk_size=7, device="cpu")
    b = precision_recall(real, fake, k=3, chunk_size=10_000, device="cpu")
    assert a == b


def test_knn_radii_brute_force():
    x = torch.from_numpy(np.random.default_rng(4).normal(size=(60, 3)))
    for k in (1, 3, 5):
        dist = torch.cdist(x, x)
        expected = dist.sort(dim=1).values[:, k]  # column 0 is the point itself
        torch.testing.assert_close(knn_radii(x, k, chunk_size=8), expected)


def test_bad_input():
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match="dimension mismatch"):
        precision_recall(x, np.zeros((10, 2)), device="cpu")
    with pytest.raises(ValueError, match="more than k"):
        precision_recall(x, np.zeros((3, 3)), k=3, device="cpu")
    with pytest.raises(ValueError, match="NaN"):
        precision_recall(x, np.full((10, 3), np.nan), device="cpu")
    with pytest.raises(ValueError, match="empty"):
        precision_recall(np.zeros((0, 3)), x, device="cpu")
    with pytest.raises(ValueError, match="k must be"):
        precision_recall(x, x, k=0, device="cpu")


@pytest.mark.slow
def test_ten_thousand_by_ten_thousand():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(10_000, 64)).astype(np.float32)
    fake = rng.normal(size=(10_000, 64)).astype(np.float32)
    pr = precision_recall(real, fake, chunk_size=1024, device="cpu")
    assert 0.5 < pr.precision <= 1.0
    assert 0.5 < pr.recall <= 1.0
