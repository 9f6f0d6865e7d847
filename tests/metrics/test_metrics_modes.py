"""Mode coverage metrics: 2D mixtures (PacGAN protocol) and stacked digits."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from aeot.metrics import (
    classify_stacked,
    kl_to_uniform,
    mixture_mode_metrics,
    ring_means,
    stacked_mode_metrics,
)


def test_kl_to_uniform_known_values():
    assert kl_to_uniform([5, 5, 5, 5]) == pytest.approx(0.0, abs=1e-15)
    assert kl_to_uniform([0, 12, 0, 0, 0]) == pytest.approx(math.log(5))
    p = np.array([0.25, 0.25, 0.5])
    assert kl_to_uniform([1, 1, 2]) == pytest.approx(float((p * np.log(3 * p)).sum()))
    # empty bins contribute 0 (0 log 0 = 0) but still count in K
    p = np.array([0.5, 0.5])
    assert kl_to_uniform([3, 0, 3, 0]) == pytest.approx(float((p * np.log(4 * p)).sum()))
    assert kl_to_uniform([3, 0, 3, 0]) == pytest.approx(math.log(2))


def test_kl_to_uniform_errors():
    with pytest.raises(ValueError, match="all zero"):
        kl_to_uniform([0, 0, 0])
    with pytest.raises(ValueError, match="non-negative"):
        kl_to_uniform([1, -1, 2])
    with pytest.raises(ValueError, match="empty"):
        kl_to_uniform([])


def ring_samples(rng, means, std, counts):
    return np.concatenate(
        [m + std * rng.normal(size=(c, 2)) for m, c in zip(means, counts, strict=True)]
    )


def test_mixture_all_modes_uniform():
    rng = np.random.default_rng(0)
    means, std = ring_means(8, 2.0), 0.02
    x = ring_samples(rng, means, 0.5 * std, [100] * 8)  # tight: all within 3 std
    out = mixture_mode_metrics(x, means, std)
    assert out["modes_covered"] == 8
    assert out["n_modes"] == 8
    assert out["high_quality_fraction"] == 1.0
    assert out["kl"] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_array_equal(out["per_mode_counts"], [100] * 8)


def test_mixture_missing_mode_and_collapse():
    rng = np.random.default_rng(1)
    means, std = ring_means(8, 2.0), 0.02
    counts = [50] * 8
    counts[3] = 0
    out = mixture_mode_metrics(ring_samples(rng, means, 0.5 * std, counts), means, std)
    assert out["modes_covered"] == 7
    assert out["per_mode_counts"][3] == 0
    assert out["kl"] == pytest.approx(math.log(8 / 7))
    collapsed = mixture_mode_metrics(
        ring_samples(rng, means, 0.5 * std, [0, 0, 40, 0, 0, 0, 0, 0]), means, std
    )
    assert collapsed["modes_covered"] == 1
    assert collapsed["kl"] == pytest.approx(math.log(8))


def test_far_points_are_not_high_quality():
    means, std = ring_means(8, 2.0), 0.05
    far = np.array([[0.0, 0.0], [10.0, 10.0], [2.0 + 4 * std, 0.0]])  # centre, outside, 4σ
    near = np.array([[2.0 + 2.9 * std, 0.0]])
    out = mixture_mode_metrics(np.concatenate([far, near]), means, std)
    assert out["high_quality_fraction"] == pytest.approx(0.25)
    assert out["modes_covered"] == 1
    assert out["per_mode_counts"][0] == 1
    none = mixture_mode_metrics(far, means, std)
    assert none["modes_covered"] == 0
    assert math.isnan(none["kl"])


def test_min_count():
    means, std = ring_means(4, 1.0), 0.1
    x = np.concatenate([np.repeat(means[:1], 5, axis=0), means[1:2]])  # 5 at mode 0, 1 at mode 1
    assert mixture_mode_metrics(x, means, std)["modes_covered"] == 2
    assert mixture_mode_metrics(x, means, std, min_count=2)["modes_covered"] == 1


def test_mixture_bad_input():
    means = ring_means(8)
    with pytest.raises(ValueError, match="dimension mismatch"):
        mixture_mode_metrics(np.zeros((5, 3)), means, 0.1)
    with pytest.raises(ValueError, match="std"):
        mixture_mode_metrics(np.zeros((5, 2)), means, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        mixture_mode_metrics(np.full((5, 2), np.nan), means, 0.1)
    with pytest.raises(ValueError, match="empty"):
        mixture_mode_metrics(np.zeros((0, 2)), means, 0.1)


def test_stacked_all_triples_uniform():
    triples = np.array(list(itertools.product(range(10), repeat=3)))
    out = stacked_mode_metrics(np.concatenate([triples, triples]))
    assert out["modes"] == 1000
    assert out["kl"] == pytest.approx(0.0, abs=1e-12)
    assert out["histogram"].shape == (1000,)
    assert (out["histogram"] == 2).all()


def test_stacked_partial():
    triples = np.array([(0, b, c) for b in range(10) for c in range(10)])  # first digit fixed
    out = stacked_mode_metrics(torch.from_numpy(triples))
    assert out["modes"] == 100
    assert out["kl"] == pytest.approx(math.log(10))
    assert out["histogram"][:100].sum() == 100
    single = stacked_mode_metrics([[7, 2, 9]] * 5)
    assert single["modes"] == 1
    assert single["histogram"][729] == 5
    assert single["kl"] == pytest.approx(math.log(1000))


def test_stacked_bad_input():
    with pytest.raises(ValueError, match=r"0\.\.9"):
        stacked_mode_metrics([[1, 2, 10]])
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        stacked_mode_metrics([[1, 2]])
    with pytest.raises(ValueError, match="empty"):
        stacked_mode_metrics(np.zeros((0, 3), dtype=int))
    with pytest.raises(TypeError, match="integer"):
        stacked_mode_metrics([[1.5, 2, 3]])


class MeanIntensityClassifier:
    """Predicts round(9 * mean pixel) — enough to check the channel bookkeeping."""

    def predict(self, x):
        assert x.shape[1] == 1
        return torch.round(9 * x.mean(dim=(1, 2, 3))).long()


def test_classify_stacked_channel_order():
    digits = torch.tensor([[1, 5, 9], [0, 0, 3], [8, 2, 4]])
    images = (digits.float() / 9)[:, :, None, None].expand(3, 3, 6, 6)
    pred = classify_stacked(MeanIntensityClassifier(), images)
    torch.testing.assert_close(pred, digits)
    with pytest.raises(ValueError, match="3 channels"):
        classify_stacked(MeanIntensityClassifier(), images[:, :2])
