import math

import numpy as np
import pytest
import torch

from aeot.data import (
    Dataset,
    concave_support,
    disk_components,
    gaussian_mixture,
    grid_mixture,
    ring_mixture,
    swiss_roll,
    two_moons,
)

GENERATORS = [grid_mixture, ring_mixture, swiss_roll, concave_support, two_moons, disk_components]


@pytest.mark.parametrize("gen", GENERATORS)
def test_deterministic_by_seed(gen):
    a, b, c = gen(500, seed=3), gen(500, seed=3), gen(500, seed=4)
    assert isinstance(a, Dataset) and a.kind == "points" and a.shape[0] == 500
    assert a.x.dtype == torch.float32
    assert torch.equal(a.x, b.x)
    assert not torch.equal(a.x, c.x)
    if a.labels is not None:
        assert torch.equal(a.labels, b.labels)


def test_seed_accepts_generator():
    rng = np.random.default_rng(7)
    a = ring_mixture(100, seed=rng)
    b = ring_mixture(100, seed=np.random.default_rng(7))
    assert torch.equal(a.x, b.x)
    with pytest.raises(TypeError, match="seed"):
        ring_mixture(100, seed=1.5)


def test_grid_mixture_modes_and_std():
    d = grid_mixture(50_000, seed=0)
    assert d.modes.shape == (25, 2) and d.mode_std == 0.05
    assert set(np.unique(d.modes)) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    x, lab = d.x.double().numpy(), d.labels.numpy()
    assert set(np.unique(lab)) == set(range(25))
    resid = x - d.modes[lab]
    assert abs(resid.mean()) < 2e-3
    assert resid.std() == pytest.approx(0.05, rel=0.02)
    # every sample is nearest to its own mode
    nearest = np.argmin(((x[:, None] - d.modes[None]) ** 2).sum(-1), axis=1)
    assert (nearest == lab).all()
    counts = np.bincount(lab, minlength=25)
    assert counts.min() > 1700 and counts.max() < 2300


def test_ring_mixture_modes_and_std():
    d = ring_mixture(40_000, seed=1, std=0.01, radius=1.0)
    assert d.modes.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(d.modes, axis=1), 1.0)
    angles = np.sort(np.mod(np.arctan2(d.modes[:, 1], d.modes[:, 0]), 2 * np.pi))
    np.testing.assert_allclose(np.diff(angles), 2 * np.pi / 8, atol=1e-12)
    resid = d.x.double().numpy() - d.modes[d.labels.numpy()]
    assert resid.std(axis=0) == pytest.approx([0.01, 0.01], rel=0.03)
    big = ring_mixture(100, seed=0, radius=2.0)
    np.testing.assert_allclose(np.linalg.norm(big.modes, axis=1), 2.0)


def test_gaussian_mixture_validation():
    with pytest.raises(ValueError, match="modes"):
        gaussian_mixture(np.zeros(3), 10)
    with pytest.raises(ValueError, match="std"):
        grid_mixture(10, std=-1)
    with pytest.raises(ValueError, match="n must be"):
        grid_mixture(0)
    with pytest.raises(TypeError, match="n must be an integer"):
        ring_mixture(10.5)


def test_swiss_roll_2d_3d():
    d2 = swiss_roll(1000, seed=0)
    d3 = swiss_roll(1000, seed=0, dim=3, noise=0.1)
    assert d2.shape == (1000, 2) and d3.shape == (1000, 3)
    t = d2.meta["t"]
    assert t.min() >= 1.5 * np.pi and t.max() <= 4.5 * np.pi
    # noiseless 2D roll lies exactly on the spiral (t cos t, t sin t)
    np.testing.assert_allclose(np.linalg.norm(d2.x.numpy(), axis=1), t, rtol=1e-5)
    assert -0.6 <= float(d3.x[:, 1].min()) and float(d3.x[:, 1].max()) <= 21.6
    with pytest.raises(ValueError, match="dim"):
        swiss_roll(10, dim=4)


def test_concave_support_is_c_shaped_and_uniform():
    d = concave_support(20_000, seed=0, r_in=0.5, r_out=1.0, gap=math.pi / 2)
    x = d.x.double().numpy()
    r = np.linalg.norm(x, axis=1)
    theta = np.mod(np.arctan2(x[:, 1], x[:, 0]), 2 * np.pi)
    assert r.min() >= 0.5 - 1e-6 and r.max() <= 1.0 + 1e-6
    assert theta.min() >= math.pi / 4 - 1e-6 and theta.max() <= 2 * math.pi - math.pi / 4 + 1e-6
    # non-convex: points on opposite sides have their midpoint (near 0) outside the support
    top, bottom = x[np.argmax(x[:, 1])], x[np.argmin(x[:, 1])]
    assert np.linalg.norm((top + bottom) / 2) < 0.5
    # uniform by area: P(r <= rho) = (rho^2 - r_in^2) / (r_out^2 - r_in^2)
    rho = 0.75
    assert (r <= rho).mean() == pytest.approx((rho**2 - 0.25) / 0.75, abs=0.015)
    with pytest.raises(ValueError, match="r_in"):
        concave_support(10, r_in=1.0, r_out=0.5)
    with pytest.raises(ValueError, match="gap"):
        concave_support(10, gap=7.0)


def test_two_moons_components():
    d = two_moons(4000, seed=0, width=0.2)
    x, lab = d.x.double().numpy(), d.labels.numpy()
    assert set(np.unique(lab)) == {0, 1}
    r0 = np.linalg.norm(x[lab == 0], axis=1)
    r1 = np.linalg.norm(x[lab == 1] - [1.0, 0.5], axis=1)
    assert r0.min() >= 0.9 - 1e-6 and r0.max() <= 1.1 + 1e-6
    assert r1.min() >= 0.9 - 1e-6 and r1.max() <= 1.1 + 1e-6
    assert (x[lab == 0, 1] >= -1e-6).all() and (x[lab == 1, 1] <= 0.5 + 1e-6).all()
    with pytest.raises(ValueError, match="width"):
        two_moons(10, width=1.5)


def test_disk_components():
    d = disk_components(6000, seed=0)
    x, lab = d.x.double().numpy(), d.labels.numpy()
    radii = np.asarray(d.meta["radii"])
    dist = np.linalg.norm(x - d.modes[lab], axis=1)
    assert (dist <= radii[lab] + 1e-6).all()
    # mass proportional to area
    frac = np.bincount(lab) / len(lab)
    np.testing.assert_allclose(frac, radii**2 / (radii**2).sum(), atol=0.02)
    with pytest.raises(ValueError, match="disjoint"):
        disk_components(10, centres=[(0, 0), (0.5, 0)], radii=[1, 1])
