"""Synthetic point clouds with known structure: Gaussian mixtures and uniform supports.

Every generator takes ``n`` and ``seed`` (an int or a ``numpy.random.Generator``) and
is deterministic for a given seed. Points are returned as float32 tensors inside a
:class:`~aeot.data.dataset.Dataset` of kind ``"points"``; mixture components are
recorded in ``labels`` and (for Gaussian mixtures) ``modes`` / ``mode_std``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from aeot._validation import check_positive_int
from aeot.data.dataset import Dataset, make_rng


def _check_nonneg(value: float, name: str) -> float:
    value = float(value)
    if not value >= 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def _check_pos(value: float, name: str) -> float:
    value = float(value)
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def _points(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def gaussian_mixture(
    modes,
    n: int,
    seed: int | np.random.Generator | None = 0,
    std: float = 0.05,
    *,
    name: str = "gaussian_mixture",
) -> Dataset:
    """Equal-weight isotropic Gaussian mixture around the given centres.

    Parameters
    ----------
    modes : (K, d) array
        Component means.
    n : int
        Number of samples.
    seed : int or numpy.random.Generator
        Random seed.
    std : float
        Per-coordinate standard deviation of every component.

    Returns
    -------
    Dataset
        ``x`` (n, d); ``labels`` (n,) the component of each sample; ``modes`` and ``mode_std``.
    """
    n = check_positive_int(n, "n")
    std = _check_nonneg(std, "std")
    centres = np.asarray(modes, dtype=np.float64)
    if centres.ndim != 2 or centres.shape[0] == 0:
        raise ValueError(f"modes must have shape (K, d) with K >= 1, got {centres.shape}")
    rng = make_rng(seed)
    labels = rng.integers(0, centres.shape[0], size=n)
    x = centres[labels] + std * rng.standard_normal((n, centres.shape[1]))
    return Dataset(
        _points(x),
        labels=torch.from_numpy(labels.astype(np.int64)),
        name=name,
        kind="points",
        modes=centres,
        mode_std=std,
    )


def grid_mixture(
    n: int = 10000, seed: int | np.random.Generator | None = 0, std: float = 0.05
) -> Dataset:
    """25 Gaussians centred on the grid {-4, -2, 0, 2, 4}^2 (PacGAN / VEEGAN protocol).

    Parameters
    ----------
    n : int
        Number of samples.
    seed : int or numpy.random.Generator
        Random seed.
    std : float
        Standard deviation of each component (0.05 in the PacGAN protocol).
    """
    ticks = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    modes = np.array([(a, b) for a in ticks for b in ticks])  # (25, 2)
    return gaussian_mixture(modes, n, seed, std, name="grid25")


def ring_mixture(
    n: int = 10000,
    seed: int | np.random.Generator | None = 0,
    std: float = 0.01,
    radius: float = 1.0,
    k: int = 8,
) -> Dataset:
    """``k`` (default 8) Gaussians evenly spaced on a circle of radius ``radius``.

    Parameters
    ----------
    n : int
        Number of samples.
    seed : int or numpy.random.Generator
        Random seed.
    std : float
        Standard deviation of each component (0.01 in the PacGAN protocol).
    radius : float
        Radius of the circle.
    k : int
        Number of components.
    """
    k = check_positive_int(k, "k")
    radius = _check_pos(radius, "radius")
    angles = 2 * np.pi * np.arange(k) / k
    modes = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (k, 2)
    return gaussian_mixture(modes, n, seed, std, name=f"ring{k}")


def swiss_roll(
    n: int = 10000,
    seed: int | np.random.Generator | None = 0,
    noise: float = 0.0,
    dim: int = 2,
) -> Dataset:
    """Swiss roll: a spiral (2D) or rolled sheet (3D), as in ``sklearn.datasets.make_swiss_roll``.

    With ``t = 1.5 π (1 + 2 u)``, ``u ~ U(0, 1)``: the 2D variant is ``(t cos t, t sin t)``,
    the 3D variant ``(t cos t, 21 v, t sin t)`` with ``v ~ U(0, 1)``. Gaussian noise of
    standard deviation ``noise`` is added to every coordinate. The manifold
    parameter ``t`` is stored in ``meta["t"]``.

    Parameters
    ----------
    n : int
        Number of samples.
    seed : int or numpy.random.Generator
        Random seed.
    noise : float
        Standard deviation of the additive Gaussian noise.
    dim : {2, 3}
        Ambient dimension.
    """
    n = check_positive_int(n, "n")
    noise = _check_nonneg(noise, "noise")
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim!r}")
    rng = make_rng(seed)
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    if dim == 2:
        x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    else:
        x = np.stack([t * np.cos(t), 21.0 * rng.random(n), t * np.sin(t)], axis=1)
    x = x + noise * rng.standard_normal(x.shape)
    return Dataset(
        _points(x),
        name=f"swiss_roll{'' if dim == 2 else '3d'}",
        kind="points",
        meta={"t": t.astype(np.float32), "noise": noise},
    )


def _annulus_sector(
    rng: np.random.Generator, n: int, r_in: float, r_out: float, theta0: float, theta1: float
) -> np.ndarray:
    """n points uniform (by area) on {r_in <= |x| <= r_out, theta0 <= arg x <= theta1}."""
    r = np.sqrt(r_in**2 + (r_out**2 - r_in**2) * rng.random(n))
    theta = theta0 + (theta1 - theta0) * rng.random(n)
    return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)


def concave_support(
    n: int = 10000,
    seed: int | np.random.Generator | None = 0,
    r_in: float = 0.5,
    r_out: float = 1.0,
    gap: float = math.pi / 2,
) -> Dataset:
    """Uniform distribution on a C-shaped annulus sector (a non-convex support).

    The support is ``{r_in <= |x| <= r_out, gap/2 <= arg x <= 2π - gap/2}``: an annulus
    with a wedge of angle ``gap`` removed on the positive x-axis side. Optimal
    transport maps from a convex source onto it are discontinuous (singular).

    Parameters
    ----------
    n : int
        Number of samples.
    seed : int or numpy.random.Generator
        Random seed.
    r_in, r_out : float
        Inner and outer radius, ``0 <= r_in < r_out``.
    gap : float
        Angular width of the opening in radians, in ``(0, 2π)``.
    """
    n = check_positive_int(n, "n")
    r_in = _check_nonneg(r_in, "r_in")
    r_out = _check_pos(r_out, "r_out")
    if r_in >= r_out:
        raise ValueError(f"r_in must be smaller than r_out, got r_in={r_in}, r_out={r_out}")
    gap = float(gap)
    if not 0 < gap < 2 * math.pi:
        raise ValueError(f"gap must lie in (0, 2π), got {gap}")
    rng = make_rng(seed)
    x = _annulus_sector(rng, n, r_in, r_out, gap / 2, 2 * math.pi - gap / 2)
    return Dataset(
        _points(x),
        name="concave",
        kind="points",
        meta={"r_in": r_in, "r_out": r_out, "gap": gap},
    )


def two_moons(
    n: int = 10000,
    seed: int | np.random.Generator | None = 0,
    noise: float = 0.0,
    width: float = 0.2,
) -> Dataset:
    """Two interleaving half-annuli, each with uniform density (two non-convex components).

    Component 0 is the upper half-annulus of radii ``1 ± width/2`` centred at (0, 0);
    component 1 is the lower half-annulus centred at (1, 0.5) (the layout of
    ``sklearn.datasets.make_moons``). With ``width=0`` points lie on the two arcs.
    ``labels`` give the component of each sample (``modes`` is not set: a moon
    has no meaningful centre).

    Parameters
    ----------
    n : int
        Number of samples (split evenly at random between the moons).
    seed : int or numpy.random.Generator
        Random seed.
    noise : float
        Standard deviation of additive Gaussian noise.
    width : float
        Radial thickness of each moon, in ``[0, 1)``.
    """
    n = check_positive_int(n, "n")
    noise = _check_nonneg(noise, "noise")
    width = _check_nonneg(width, "width")
    if width >= 1:
        raise ValueError(f"width must be < 1, got {width}")
    rng = make_rng(seed)
    labels = rng.integers(0, 2, size=n)
    r_in, r_out = 1 - width / 2, 1 + width / 2
    upper = _annulus_sector(rng, n, r_in, r_out, 0.0, math.pi)
    lower = _annulus_sector(rng, n, r_in, r_out, math.pi, 2 * math.pi) + np.array([1.0, 0.5])
    x = np.where(labels[:, None] == 0, upper, lower)
    x = x + noise * rng.standard_normal(x.shape)
    return Dataset(
        _points(x),
        labels=torch.from_numpy(labels.astype(np.int64)),
        name="two_moons",
        kind="points",
        meta={"noise": noise, "width": width, "n_components": 2},
    )


def disk_components(
    n: int = 10000,
    seed: int | np.random.Generator | None = 0,
    centres=None,
    radii=None,
) -> Dataset:
    """Uniform distribution on a union of disjoint disks, mass proportional to area.

    Parameters
    ----------
    n : int
        Number of samples.
    seed : int or numpy.random.Generator
        Random seed.
    centres : (K, 2) array, optional
        Disk centres; by default three disks at (-2, 0), (1, 1.5), (1.5, -1.5).
    radii : (K,) array, optional
        Disk radii; by default (1.0, 0.6, 0.8).

    Returns
    -------
    Dataset
        ``labels`` the disk of each sample, ``modes`` the centres, ``meta["radii"]``.
    """
    n = check_positive_int(n, "n")
    if centres is None:
        centres = [(-2.0, 0.0), (1.0, 1.5), (1.5, -1.5)]
    if radii is None:
        radii = [1.0, 0.6, 0.8][: len(centres)] if len(centres) <= 3 else None
    c = np.asarray(centres, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != 2 or c.shape[0] == 0:
        raise ValueError(f"centres must have shape (K, 2), got {c.shape}")
    if radii is None:
        raise ValueError("radii must be given when more than 3 centres are passed")
    r = np.asarray(radii, dtype=np.float64)
    if r.shape != (c.shape[0],) or not bool(np.all(r > 0)):
        raise ValueError(f"radii must be {c.shape[0]} positive numbers, got {radii!r}")
    dist = np.linalg.norm(c[:, None] - c[None], axis=-1)
    overlap = dist < (r[:, None] + r[None]) - 1e-12
    np.fill_diagonal(overlap, False)
    if overlap.any():
        raise ValueError("disks must be disjoint")
    rng = make_rng(seed)
    areas = r**2
    labels = rng.choice(c.shape[0], size=n, p=areas / areas.sum())
    rho = r[labels] * np.sqrt(rng.random(n))
    theta = 2 * np.pi * rng.random(n)
    x = c[labels] + np.stack([rho * np.cos(theta), rho * np.sin(theta)], axis=1)
    return Dataset(
        _points(x),
        labels=torch.from_numpy(labels.astype(np.int64)),
        name="disks",
        kind="points",
        modes=c,
        meta={"radii": r.tolist()},
    )
