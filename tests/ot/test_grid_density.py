"""GridDensity (aeot.ot.sources): exact sampling, bad input, its fingerprint. The exact 2D
solver with a grid density is tested in test_exact2d.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aeot.ot import GridDensity
from aeot.ot.sources import BoxUniform

# ------------------------------------------------------------------ GridDensity


def test_grid_density_samples_follow_the_pixel_probabilities():
    values = np.array([[1.0, 3.0, 0.0], [2.0, 0.5, 5.0]])  # axis 0 along x
    source = GridDensity(values, low=(-1.0, 0.0), high=(1.0, 3.0))
    x = source.sample(200_000, seed=3, dtype=torch.float64).numpy()
    assert ((x >= [-1.0, 0.0]) & (x <= [1.0, 3.0])).all()
    a = np.clip(np.floor((x[:, 0] + 1.0) / 1.0).astype(int), 0, 1)
    b = np.clip(np.floor(x[:, 1] / 1.0).astype(int), 0, 2)
    counts = np.zeros((2, 3))
    np.add.at(counts, (a, b), 1)
    p = values / values.sum()
    # scrambled Sobol: far below the binomial error of i.i.d. draws
    np.testing.assert_allclose(counts / len(x), p, atol=2e-3)
    assert counts[0, 2] == 0  # a zero pixel gets no sample
    iid = source.sample(200_000, seed=3, qmc=False, dtype=torch.float64).numpy()
    a = np.clip(np.floor(iid[:, 0] + 1.0).astype(int), 0, 1)
    b = np.clip(np.floor(iid[:, 1]).astype(int), 0, 2)
    counts = np.zeros((2, 3))
    np.add.at(counts, (a, b), 1)
    np.testing.assert_allclose(counts / len(iid), p, atol=5 * np.sqrt(p.max() / len(iid)))
    # uniform inside a pixel: the mean of the samples in pixel (1, 2) is its centre
    inside = iid[(iid[:, 0] > 0.0) & (iid[:, 1] > 2.0)]
    np.testing.assert_allclose(inside.mean(0), [0.5, 2.5], atol=0.01)


def test_constant_grid_density_samples_like_the_uniform_box():
    box = BoxUniform(2, (0.0, -2.0), (4.0, 1.0))
    flat = GridDensity(np.full((5, 7), 2.5), low=(0.0, -2.0), high=(4.0, 1.0))
    a = box.sample(1000, seed=5, dtype=torch.float64)
    b = flat.sample(1000, seed=5, dtype=torch.float64)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    density = flat.density()
    assert float(density.sum()) * 4.0 * 3.0 / 35 == pytest.approx(1.0)
    assert flat.sample(3, dtype=torch.float32).dtype == torch.float32
    assert GridDensity(np.ones((2, 3, 4))).sample(10).shape == (10, 3)
    # a solver checkpoint's fingerprint tells two densities of one shape apart
    other = GridDensity(np.arange(1.0, 36.0).reshape(5, 7), low=(0.0, -2.0), high=(4.0, 1.0))
    assert other.describe() != flat.describe()
    assert GridDensity(np.full((5, 7), 7.0), (0.0, -2.0), (4.0, 1.0)).describe() == flat.describe()


@pytest.mark.parametrize(
    ("values", "match"),
    [
        (np.array([[1.0, -0.1]]), "non-negative"),
        (np.zeros((3, 3)), "positive finite sum"),
        (np.array([[1.0, np.nan]]), "finite|NaN|nan"),
        ([["a"]], "real numbers"),
        (np.array(5.0), "one axis per dimension"),
        (torch.tensor(5.0), "one axis per dimension"),
        (5.0, "one axis per dimension"),
        (np.zeros((0, 3)), "empty"),
    ],
)
def test_grid_density_rejects_bad_values(values, match):
    with pytest.raises((ValueError, TypeError), match=match):
        GridDensity(values)


def test_grid_density_rejects_a_bad_box():
    with pytest.raises(ValueError, match="box"):
        GridDensity(np.ones((2, 2)), low=1.0, high=0.0)
