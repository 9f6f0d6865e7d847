"""Grid densities: GridDensity sampling and the exact 2D solver with a non-uniform source
(aeot.ot.density2d), against polygon clipping, finite differences, the uniform solver
and a Monte-Carlo solve from the density's samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aeot.ot import GridDensity, MonteCarloSettings, SemiDiscreteProblem, solve_semidiscrete
from aeot.ot.density2d import cell_masses_and_edge_integrals
from aeot.ot.exact2d import masses_and_hessian_2d, solve_exact_2d
from aeot.ot.power2d import power_diagram_2d
from aeot.ot.sources import BoxUniform


def _clip(poly: np.ndarray, a: np.ndarray, b: float) -> np.ndarray:
    """Sutherland–Hodgman: the part of the convex polygon ``poly`` where <x, a> <= b."""
    out = []
    for k in range(len(poly)):
        p, q = poly[k], poly[(k + 1) % len(poly)]
        fp, fq = p @ a - b, q @ a - b
        if fp <= 0:
            out.append(p)
        if fp * fq < 0:
            out.append(p + fp / (fp - fq) * (q - p))
    return np.array(out) if out else np.zeros((0, 2))


def _area(poly: np.ndarray) -> float:
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(x @ np.roll(y, -1) - y @ np.roll(x, -1))


def _reference_masses(y, h, rho, low, high) -> np.ndarray:
    """Each cell (half-plane clipping of the box) clipped to each pixel, area × ρ."""
    low, high = np.asarray(low, float), np.asarray(high, float)
    nx, ny = rho.shape
    wx, wy = (high - low) / (nx, ny)
    masses = np.zeros(len(y))
    box = np.array([[low[0], low[1]], [high[0], low[1]], [high[0], high[1]], [low[0], high[1]]])
    for i in range(len(y)):
        cell = box
        for j in range(len(y)):
            if j != i and len(cell):
                cell = _clip(cell, y[j] - y[i], h[i] - h[j])
        for a in range(nx):
            for b in range(ny):
                piece = cell
                x0, y0 = low[0] + a * wx, low[1] + b * wy
                for normal, bound in (
                    ((-1.0, 0.0), -x0),
                    ((1.0, 0.0), x0 + wx),
                    ((0.0, -1.0), -y0),
                    ((0.0, 1.0), y0 + wy),
                ):
                    if len(piece):
                        piece = _clip(piece, np.array(normal), bound)
                masses[i] += rho[a, b] * _area(piece)
    return masses


def _wavy(shape, contrast=0.8):
    gx = (np.arange(shape[0]) + 0.5) / shape[0]
    gy = (np.arange(shape[1]) + 0.5) / shape[1]
    x, y = np.meshgrid(gx, gy, indexing="ij")
    return 1.0 + contrast * np.sin(6 * x) * np.cos(4 * y + 1)


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
    ],
)
def test_grid_density_rejects_bad_values(values, match):
    with pytest.raises((ValueError, TypeError), match=match):
        GridDensity(values)


def test_grid_density_rejects_a_bad_box():
    with pytest.raises(ValueError, match="box"):
        GridDensity(np.ones((2, 2)), low=1.0, high=0.0)


# ------------------------------------------------------------------ integrals


@pytest.mark.parametrize("seed", range(3))
def test_masses_match_polygon_clipping_pixel_by_pixel(seed):
    rng = np.random.default_rng(seed)
    n = 25
    low, high = np.array([-1.0, 0.5]), np.array([2.0, 2.5])
    y = low + rng.random((n, 2)) * (high - low)
    h = -0.5 * (y**2).sum(1) + 0.05 * rng.standard_normal(n)
    rho = rng.random((6, 4)) + 0.1
    diagram = power_diagram_2d(y, h, low, high)
    masses, _ = cell_masses_and_edge_integrals(diagram, y, rho)
    reference = _reference_masses(y, h, rho, low, high)
    np.testing.assert_allclose(masses, reference, rtol=1e-10, atol=1e-14)
    assert masses.sum() == pytest.approx(rho.sum() * 3.0 * 2.0 / 24, rel=1e-13)


def test_constant_density_gives_areas_and_edge_lengths():
    rng = np.random.default_rng(4)
    y = rng.random((300, 2))
    diagram = power_diagram_2d(y, 1e-3 * rng.standard_normal(300))
    for shape in [(1, 1), (7, 5), (64, 64)]:
        masses, lines = cell_masses_and_edge_integrals(diagram, y, np.ones(shape))
        np.testing.assert_allclose(masses, diagram.areas, atol=1e-15)
        np.testing.assert_allclose(lines, diagram.edge_lengths, atol=1e-15)


def test_hessian_with_a_grid_density_matches_finite_differences():
    rng = np.random.default_rng(7)
    n = 30
    y = rng.random((n, 2)) * 1.2 - 0.1
    problem = SemiDiscreteProblem(torch.from_numpy(y), source=GridDensity(_wavy((9, 13))))
    h = -0.5 * (y**2).sum(1) + 2e-3 * rng.standard_normal(n)
    masses, hess = masses_and_hessian_2d(problem, h)
    hess = hess.toarray()
    np.testing.assert_allclose(hess, hess.T, atol=1e-15)
    np.testing.assert_allclose(hess.sum(axis=1), 0.0, atol=1e-12)
    eps = 1e-7
    fd = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = eps
        fd[:, j] = (
            masses_and_hessian_2d(problem, h + e)[0] - masses_and_hessian_2d(problem, h - e)[0]
        ) / (2 * eps)
    np.testing.assert_allclose(hess, fd, atol=1e-6 * np.abs(hess).max())
    assert masses.sum() == pytest.approx(1.0, abs=1e-14)


# ------------------------------------------------------------------ solver


def test_constant_grid_density_solves_like_the_uniform_source():
    y = torch.rand(500, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    flat = solve_exact_2d(SemiDiscreteProblem(y, source=GridDensity(np.ones((16, 16)))))
    uniform = solve_exact_2d(SemiDiscreteProblem(y))
    assert flat.converged and uniform.converged
    torch.testing.assert_close(flat.h, uniform.h, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(8, 8), (64, 48)])
def test_non_uniform_density_converges_to_exact_masses(shape):
    gen = torch.Generator().manual_seed(2)
    y = torch.rand(200, 2, generator=gen, dtype=torch.float64) * 3.0 - 1.0
    nu = torch.rand(200, generator=gen, dtype=torch.float64) + 0.5
    nu = nu / nu.sum()
    source = GridDensity(_wavy(shape, contrast=0.9), low=-1.0, high=2.0)
    result = solve_exact_2d(SemiDiscreteProblem(y, nu, source=source), tol=1e-10)
    assert result.converged
    nu = nu.numpy()
    h = result.h.numpy()
    assert np.max(np.abs(result.cell_masses.numpy() - nu) / nu) <= 1e-10
    if shape == (8, 8):  # an independent check of the masses at the solution
        reference = _reference_masses(y.numpy(), h, source.density().numpy(), [-1, -1], [2, 2])
        np.testing.assert_allclose(reference, nu, rtol=1e-9)
    # the density matters: the uniform solution is a different one
    uniform = solve_exact_2d(SemiDiscreteProblem(y, torch.from_numpy(nu)))
    assert np.abs((uniform.h - uniform.h.mean()).numpy() - (h - h.mean())).max() > 1e-3


def test_exact_solution_agrees_with_a_monte_carlo_solve_from_the_density():
    gen = torch.Generator().manual_seed(3)
    y = torch.rand(20, 2, generator=gen, dtype=torch.float64)
    source = GridDensity(_wavy((32, 32), contrast=0.9))
    problem = SemiDiscreteProblem(y, source=source)
    exact = solve_exact_2d(problem)
    settings = MonteCarloSettings(tol=2e-3, seed=0, max_iter=400, dtype=torch.float64)
    mc = solve_semidiscrete(problem, settings)
    # the Monte-Carlo heights, scored exactly: L1 mass error near its tolerance (measured
    # 1.7e-3), and the heights 7e-5 from the exact ones where the uniform source's
    # solution is 0.037 away (its L1 error under the density: 0.29)
    nu = problem.weights.numpy()
    masses, _ = masses_and_hessian_2d(problem, mc.h)
    assert mc.converged and np.abs(masses - nu).sum() < 5e-3
    dh = (mc.h - exact.h).numpy()
    assert np.abs(dh - dh.mean()).max() < 1e-3
    uniform = solve_exact_2d(SemiDiscreteProblem(y)).h.numpy()
    assert np.abs(masses_and_hessian_2d(problem, uniform)[0] - nu).sum() > 0.1


def test_exact_solver_refuses_a_density_with_a_zero_pixel():
    values = np.ones((4, 4))
    values[1, 2] = 0.0
    problem = SemiDiscreteProblem(torch.rand(10, 2), source=GridDensity(values))
    with pytest.raises(ValueError, match=r"positive on every pixel; pixel \(1, 2\)"):
        solve_exact_2d(problem)
    with pytest.raises(ValueError, match="only a box source in 2D"):
        solve_exact_2d(
            SemiDiscreteProblem(torch.rand(10, 3), source=GridDensity(np.ones((2,) * 3)))
        )


def test_solve_picks_the_exact_solver_for_a_grid_density():
    from aeot.ot import solve

    problem = SemiDiscreteProblem(
        torch.rand(30, 2, dtype=torch.float64), source=GridDensity(_wavy((8, 8)))
    )
    result = solve(problem)
    assert result.method == "newton-exact-2d" and result.converged


def test_targets_outside_the_box_with_a_grid_density():
    # the solver works in the frame z = s y + b of its default start (s != 1 here)
    gen = torch.Generator().manual_seed(5)
    y = torch.rand(30, 2, generator=gen, dtype=torch.float64) * 0.5 + torch.tensor([5.0, -3.0])
    rho = _wavy((6, 6), contrast=0.7)
    result = solve_exact_2d(SemiDiscreteProblem(y, source=GridDensity(rho)))
    assert result.converged
    density = GridDensity(rho).density().numpy()
    reference = _reference_masses(y.numpy(), result.h.numpy(), density, [0, 0], [1, 1])
    np.testing.assert_allclose(reference, 1 / 30, rtol=1e-8)
