"""Exact 2D power diagrams (aeot.ot.power2d) and the damped Newton solver (aeot.ot.exact2d)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aeot.ot import GridDensity, MonteCarloSettings, _native, solve_semidiscrete
from aeot.ot.density2d import cell_masses_and_edge_integrals
from aeot.ot.exact2d import default_heights_2d, masses_and_hessian_2d, solve_exact_2d
from aeot.ot.power2d import power_cell_polygons_2d, power_diagram_2d
from aeot.ot.problem import SemiDiscreteProblem
from aeot.ot.sources import BoxUniform, Gaussian

# ------------------------------------------------------------------ reference geometry


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


def _shoelace(poly: np.ndarray) -> float:
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(x @ np.roll(y, -1) - y @ np.roll(x, -1))


def _reference_cells(y, h, low, high) -> list[np.ndarray]:
    """O(N²) half-plane clipping of the box: W_i = ∩_j {<x, y_j − y_i> <= h_i − h_j}."""
    lo = np.broadcast_to(np.asarray(low, float), (2,))
    hi = np.broadcast_to(np.asarray(high, float), (2,))
    box = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    cells = []
    for i in range(len(y)):
        poly = box
        for j in range(len(y)):
            if j != i and len(poly):
                poly = _clip(poly, y[j] - y[i], h[i] - h[j])
        cells.append(poly)
    return cells


def _reference_areas(y, h, low, high) -> np.ndarray:
    return np.array([_shoelace(cell) for cell in _reference_cells(y, h, low, high)])


def _grid(k: int, low=0.0, high=1.0) -> np.ndarray:
    lo = np.broadcast_to(np.asarray(low, float), (2,))
    hi = np.broadcast_to(np.asarray(high, float), (2,))
    gx = lo[0] + (np.arange(k) + 0.5) / k * (hi[0] - lo[0])
    gy = lo[1] + (np.arange(k) + 0.5) / k * (hi[1] - lo[1])
    return np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)


def _rel_error(result) -> float:
    nu = result.weights.numpy()
    return float(np.max(np.abs(result.cell_masses.numpy() - nu) / nu))


# ------------------------------------------------------------------------ power2d


@pytest.mark.parametrize("seed", range(6))
def test_areas_match_reference_clipping(seed):
    rng = np.random.default_rng(seed)
    n = 40
    y = rng.random((n, 2)) * 1.4 - 0.2  # some targets outside the box
    noise = [0.0, 1e-3, 1e-2, 0.1, 1.0, 1e-4][seed]
    h = -0.5 * (y**2).sum(1) + noise * rng.standard_normal(n)
    d = power_diagram_2d(y, h)
    ref = _reference_areas(y, h, 0.0, 1.0)
    np.testing.assert_allclose(d.areas, ref, atol=1e-14)
    assert d.areas.sum() == pytest.approx(1.0, abs=1e-14)
    assert (d.edges[:, 0] < d.edges[:, 1]).all()
    assert (d.edge_lengths > 0).all()


def test_areas_sum_to_box_area_on_a_non_unit_box():
    rng = np.random.default_rng(1)
    low, high = (-2.0, 1.0), (3.0, 2.0)
    y = rng.random((300, 2)) * [6.0, 2.0] + [-2.5, 0.5]
    h = -0.5 * (y**2).sum(1) + 0.01 * rng.standard_normal(300)
    d = power_diagram_2d(y, h, low, high)
    assert d.volume == 5.0
    assert d.areas.sum() == pytest.approx(5.0, rel=1e-14)
    np.testing.assert_allclose(d.masses.sum(), 1.0, rtol=1e-14)
    np.testing.assert_allclose(d.areas, _reference_areas(y, h, low, high), atol=1e-13)


@pytest.mark.parametrize(
    ("low", "high"),
    [(0.0, 1.0), (0.25, 0.75), (0.125, 0.875), ((0.25, 0.0), (1.0, 0.75))],
)
@pytest.mark.parametrize("kind", ["voronoi", "zero", "affine"])
def test_degenerate_grids(low, high, kind):
    """Co-circular sites, coplanar lifts, diagram vertices and edges on the box boundary."""
    y = _grid(4)
    h = {
        "voronoi": -0.5 * (y**2).sum(1),
        "zero": np.zeros(len(y)),
        "affine": -0.5 * (y**2).sum(1) + y @ [0.1, 0.2],
    }[kind]
    d = power_diagram_2d(y, h, low, high)
    np.testing.assert_allclose(d.areas, _reference_areas(y, h, low, high), atol=1e-14)


def test_small_and_collinear_configurations():
    for y, h in [
        (np.array([[0.3, 0.4]]), np.array([0.7])),
        (np.array([[0.2, 0.2], [0.9, 0.5]]), np.array([0.0, -0.3])),
        (np.array([[0.1, 0.1], [0.8, 0.3], [0.4, 0.9]]), np.array([0.0, 0.1, -0.2])),
        (np.stack([np.linspace(-1, 2, 7), 0.3 * np.linspace(-1, 2, 7) + 0.2], 1), np.zeros(7)),
        (np.stack([np.linspace(0, 1, 9), np.full(9, 0.5)], 1), np.linspace(0, 0.1, 9) ** 2),
    ]:
        d = power_diagram_2d(y, h)
        np.testing.assert_allclose(d.areas, _reference_areas(y, h, 0.0, 1.0), atol=1e-14)


def test_polygons_match_areas():
    rng = np.random.default_rng(3)
    y = rng.random((60, 2))
    h = -0.5 * (y**2).sum(1) + 1e-3 * rng.standard_normal(60)
    d = power_diagram_2d(y, h)
    polys = power_cell_polygons_2d(y, h)
    assert len(polys) == 60
    np.testing.assert_allclose([_shoelace(p) for p in polys], d.areas, atol=1e-14)
    for p, area in zip(polys, d.areas, strict=True):
        assert p.shape[1] == 2
        assert (p.shape[0] == 0) == (area == 0)


def test_boundary_owners_from_the_kd_tree_match_brute_force():
    from aeot.ot.power2d import _best_all, _owners

    rng = np.random.default_rng(11)
    y = rng.random((5000, 2)) * 1.2 - 0.1
    psi = 1e-3 * rng.standard_normal(5000)
    side = rng.integers(0, 4, 400)
    s = rng.random(400)
    pts = np.choose(
        side,
        [
            np.stack([s, 0 * s], 1).T,
            np.stack([1 + 0 * s, s], 1).T,
            np.stack([s, 1 + 0 * s], 1).T,
            np.stack([0 * s, s], 1).T,
        ],
    ).T
    np.testing.assert_array_equal(_owners(y, psi, pts, side), _best_all(y, psi, pts, side))


def test_power_diagram_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        power_diagram_2d(np.zeros((3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="heights"):
        power_diagram_2d(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="box"):
        power_diagram_2d(np.ones((3, 2)), np.zeros(3), 1.0, 0.0)


# ------------------------------------------------------------------------ Hessian


@pytest.mark.parametrize("source", ["uniform", "grid density"])
def test_hessian_matches_finite_differences(source):
    rng = np.random.default_rng(7)
    n = 30
    y = rng.random((n, 2)) * 1.2 - 0.1
    density = GridDensity(_wavy((9, 13))) if source == "grid density" else None
    problem = SemiDiscreteProblem(torch.from_numpy(y), source=density)
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


# ------------------------------------------------------------------------ solver


def test_grid_targets_give_voronoi_cells():
    k = 8
    y = _grid(k)
    result = solve_exact_2d(SemiDiscreteProblem(torch.from_numpy(y)), h0=np.zeros(k * k))
    assert result.converged
    assert result.method == "newton-exact-2d"
    assert result.n_samples == 0
    psi = result.h.numpy() + 0.5 * (y**2).sum(1)
    assert np.ptp(psi) < 1e-12
    np.testing.assert_allclose(result.cell_masses.numpy(), 1 / k**2, rtol=1e-10)


def test_targets_on_a_line_give_vertical_strips():
    rng = np.random.default_rng(0)
    n = 12
    weights = rng.dirichlet(np.ones(n))
    y = np.stack([np.sort(rng.random(n)), np.full(n, 0.5)], axis=1)
    result = solve_exact_2d(SemiDiscreteProblem(y, weights))
    assert result.converged
    assert _rel_error(result) <= 1e-10
    d = power_diagram_2d(y, result.h.numpy())
    order = np.argsort(d.edge_segments[:, 0, 0])
    segs = d.edge_segments[order]
    np.testing.assert_allclose(segs[:, 0, 0], segs[:, 1, 0], atol=1e-12)  # vertical
    np.testing.assert_allclose(segs[:, 0, 0], np.cumsum(weights)[:-1], atol=1e-10)
    np.testing.assert_allclose(d.edge_lengths, 1.0, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_converges_to_tolerance_with_non_uniform_weights(seed):
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.random((n, 2))
    weights = rng.random(n) ** 3 + 0.01  # masses spread over two orders of magnitude
    weights /= weights.sum()
    problem = SemiDiscreteProblem(torch.from_numpy(y), torch.from_numpy(weights))
    result = solve_exact_2d(problem)
    assert result.converged
    assert _rel_error(result) <= 1e-10
    assert len(result.errors) == result.n_iter + 1
    assert result.errors[-1] < result.errors[0]
    assert result.h.dtype == torch.float64
    assert abs(float(result.h.mean())) < 1e-12
    # independent re-evaluation from the returned h
    masses = power_diagram_2d(y, result.h.numpy()).masses
    np.testing.assert_allclose(masses, weights / weights.sum(), rtol=1e-8)


def test_non_unit_box_with_targets_outside():
    rng = np.random.default_rng(4)
    n = 200
    source = BoxUniform(2, low=[-2.0, 1.0], high=[3.0, 2.0])
    y = rng.random((n, 2)) * [7.0, 3.0] + [-3.0, 0.0]
    weights = rng.random(n) + 0.2
    problem = SemiDiscreteProblem(y, weights / weights.sum(), source=source)
    result = solve_exact_2d(problem)
    assert result.converged
    assert _rel_error(result) <= 1e-10
    assert float(result.cell_masses.sum()) == pytest.approx(1.0, abs=1e-13)
    masses = power_diagram_2d(y, result.h.numpy(), source.low, source.high).masses
    np.testing.assert_allclose(masses, problem.weights.numpy(), rtol=1e-8)


def test_degenerate_lattice_outside_the_box():
    """Nearly co-circular quadruples everywhere: Qhull may pick the non-regular diagonal."""
    y = _grid(20) * 3.0 - 1.0
    result = solve_exact_2d(SemiDiscreteProblem(y))
    assert result.converged
    assert _rel_error(result) <= 1e-10


def _has_pardiso() -> bool:
    try:
        import pypardiso  # noqa: F401
    except ImportError:
        return False
    return True


_LINEAR_SOLVERS = [
    "superlu",
    pytest.param("pardiso", marks=pytest.mark.skipif(not _has_pardiso(), reason="needs pypardiso")),
]


@pytest.mark.parametrize("linear_solver", _LINEAR_SOLVERS)
def test_laplacian_solver_direct_and_pcg(linear_solver):
    from aeot.ot.exact2d import _factoriser, _laplacian, _LaplacianSolver
    from aeot.ot.power2d import _power_diagram, spatial_order

    rng = np.random.default_rng(12)
    n = 3000
    y = rng.random((n, 2))
    solver = _LaplacianSolver(y, spatial_order(y), _factoriser(linear_solver), leaf=16)
    rhs = rng.standard_normal(n)
    rhs -= rhs.mean()
    for noise, rtol in [(0.0, None), (1e-7, 1e-9)]:
        d = _power_diagram(y, noise * rng.standard_normal(n), (0.0, 0.0), (1.0, 1.0))
        assert (d.areas > 0).all()
        x = solver.solve(d, d.edge_lengths, 1.0, rhs, None if rtol is None else np.full(n, rtol))
        lap = _laplacian(
            y, d.edges[:, 0], d.edges[:, 1], d.edge_lengths, 1.0, n, np.arange(n), None
        ).tocsr()
        assert abs(x.mean()) < 1e-12
        assert np.abs(lap @ x - rhs).max() <= (1e-9 if rtol else 1e-10)
    assert solver.n_factor == 1 and solver.n_pcg == 1


@pytest.mark.parametrize("source", ["uniform", "grid density"])
@pytest.mark.skipif(not _has_pardiso(), reason="needs pypardiso")
def test_pardiso_and_superlu_newton_steps_reach_the_same_answer(source):
    """The two factorisations give the same Newton iterates up to rounding."""
    rng = np.random.default_rng(21)
    n = 2000
    y = torch.from_numpy(rng.random((n, 2)))
    if source == "uniform":
        problem = SemiDiscreteProblem(y)
    else:
        rho = 1.0 + 0.8 * np.sin(np.linspace(0, 6, 32))[:, None] * np.ones((1, 32))
        problem = SemiDiscreteProblem(y, source=GridDensity(torch.from_numpy(rho)))
    results = {
        name: solve_exact_2d(problem, tol=1e-12, linear_solver=name)
        for name in ("superlu", "pardiso")
    }
    a, b = results["superlu"], results["pardiso"]
    assert a.converged and b.converged
    assert a.n_iter == b.n_iter
    assert _rel_error(b) <= 1e-12
    np.testing.assert_allclose(b.h.numpy(), a.h.numpy(), rtol=0, atol=1e-11)
    np.testing.assert_allclose(b.errors[:3], a.errors[:3], rtol=1e-8)


def test_linear_solver_choice(monkeypatch):
    import sys

    from aeot.ot.exact2d import _factoriser, _SuperLUFactor

    problem = SemiDiscreteProblem(torch.rand(50, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="linear_solver must be"):
        solve_exact_2d(problem, linear_solver="cholmod")
    monkeypatch.setitem(sys.modules, "pypardiso", None)  # as if not installed
    with pytest.raises(ImportError, match="pip install 'aeot\\[pardiso\\]'"):
        solve_exact_2d(problem, linear_solver="pardiso")
    assert _factoriser("auto") is _SuperLUFactor
    assert solve_exact_2d(problem, linear_solver="auto").converged


@pytest.mark.skipif(not _has_pardiso(), reason="needs pypardiso")
def test_pardiso_factor_solves_spd_systems_and_falls_back_otherwise():
    import scipy.sparse as sp

    from aeot.ot.exact2d import _PardisoFactor

    rng = np.random.default_rng(3)
    n = 300
    w = sp.random(n, n, density=0.03, random_state=4)
    w = w + w.T
    lap = sp.diags(np.asarray(w.sum(1)).ravel() + 0.1) - w  # diagonally dominant: SPD
    b = rng.standard_normal(n)
    for a, falls_back in [(lap, False), (-lap, True)]:
        factor = _PardisoFactor(sp.coo_matrix(a))
        assert (factor._fallback is not None) == falls_back
        x = factor.solve(b)
        assert np.linalg.norm(a @ x - b) <= 1e-12 * np.linalg.norm(b)
        np.testing.assert_allclose(x, np.linalg.solve(a.toarray(), b), rtol=1e-10, atol=1e-12)


def test_multigrid_direction_meets_its_residual_and_falls_back(monkeypatch):
    """solve_multigrid: |rhs − H d| <= rtol |rhs| on the full Laplacian, d of mean zero,
    close to the direct solution; None without pyamg (the solver then factorises)."""
    import sys

    from aeot.ot.exact2d import _laplacian, _LaplacianSolver
    from aeot.ot.power2d import _power_diagram, spatial_order

    pytest.importorskip("pyamg")
    rng = np.random.default_rng(15)
    n = 5000
    y = rng.random((n, 2))
    solver = _LaplacianSolver(y, spatial_order(y))
    d = _power_diagram(y, 1e-8 * rng.standard_normal(n), (0.0, 0.0), (1.0, 1.0))
    assert (d.areas > 0).all()  # as on every iterate of the solve: H's kernel is the constants
    rhs = rng.standard_normal(n)
    rhs -= rhs.mean()
    lap = _laplacian(y, d.edges[:, 0], d.edges[:, 1], d.edge_lengths, 1.0, n, np.arange(n), None)
    for rtol in (1e-2, 1e-8):
        x = solver.solve_multigrid(d, d.edge_lengths, 1.0, rhs, rtol)
        assert abs(x.mean()) < 1e-12
        assert np.linalg.norm(lap @ x - rhs) <= rtol * np.linalg.norm(rhs) * (1 + 1e-6)
    exact = solver.solve(d, d.edge_lengths, 1.0, rhs)
    np.testing.assert_allclose(x, exact, rtol=0, atol=1e-6 * np.abs(exact).max())
    assert solver.n_multigrid == 2 and solver.n_factor == 1
    monkeypatch.setitem(sys.modules, "pyamg", None)  # import fails
    assert solver.solve_multigrid(d, d.edge_lengths, 1.0, rhs, 1e-2) is None


def test_multigrid_newton_steps_reach_the_same_answer(monkeypatch):
    """Far from the solution the large-N solver with SuperLU takes inexact (multigrid)
    directions: forced on at N = 5000, the solve converges to tol in as many steps, to the
    same h.  With PARDISO it factorises instead (faster there)."""
    pytest.importorskip("pyamg")
    import aeot.ot.exact2d as exact2d

    y = np.random.default_rng(16).random((5000, 2))
    problem = SemiDiscreteProblem(y)
    direct = solve_exact_2d(problem, tol=1e-11, linear_solver="superlu")
    counts = []
    original = exact2d._LaplacianSolver.solve_multigrid

    def counted(self, *args):
        counts.append(1)
        return original(self, *args)

    monkeypatch.setattr(exact2d._LaplacianSolver, "solve_multigrid", counted)
    monkeypatch.setattr(exact2d, "_AMG_ABOVE", 1)
    if _has_pardiso():
        assert solve_exact_2d(problem, tol=1e-11, linear_solver="pardiso").converged
        assert not counts
    inexact = solve_exact_2d(problem, tol=1e-11, linear_solver="superlu")
    assert len(counts) >= 2  # the steps with relative error >= 0.5
    assert direct.converged and inexact.converged
    assert abs(inexact.n_iter - direct.n_iter) <= 1
    np.testing.assert_allclose(inexact.h.numpy(), direct.h.numpy(), rtol=0, atol=1e-12)


def _reference_dissection(y, edges, leaf):
    """Nested dissection straight from its definition, for the solver's O(N)-per-level
    tree and O(E) ordering: groups of more than ``leaf`` points split recursively at the
    median of their longer side (ties by index, heap numbers 2g + 1, 2g + 2), then, level
    by level, every edge split there with both ends still free makes its left end a
    separator, keyed by its path above the level and digit 2."""
    n = y.shape[0]
    sides, groups = [], []

    def split(idx, gid, level):
        if idx.size <= leaf:
            return
        while len(sides) <= level:
            sides.append(np.zeros(n, bool))
            groups.append(np.full(n, -1, np.int64))
        span = y[idx].max(axis=0) - y[idx].min(axis=0)
        axis = int(span[1] > span[0])
        ranked = idx[np.lexsort((idx, y[idx, axis]))]
        left, right = ranked[: idx.size // 2], ranked[idx.size // 2 :]
        groups[level][idx] = gid
        sides[level][right] = True
        split(np.sort(left), 2 * gid + 1, level + 1)
        split(np.sort(right), 2 * gid + 2, level + 1)

    split(np.arange(n), 0, 0)
    depth = len(sides)
    w3 = 3 ** np.arange(depth, -1, -1, dtype=np.int64)
    path = sum(np.where(groups[k] >= 0, sides[k], 2) * w3[k] for k in range(depth))
    key = path + 2 * w3[depth]
    free, prefix = np.ones(n, bool), np.zeros(n, np.int64)
    ei, ej = edges[:, 0], edges[:, 1]
    for level in range(depth):
        grp, side = groups[level], sides[level]
        same = (grp[ei] >= 0) & (grp[ei] == grp[ej])
        cut = same & (side[ei] != side[ej]) & free[ei] & free[ej]
        sep = np.where(side[ei[cut]], ej[cut], ei[cut])
        key[sep] = prefix[sep] + 2 * w3[level]
        free[sep] = False
        prefix += np.where(grp >= 0, side, 0) * w3[level]
    return sides, groups, key


@pytest.mark.parametrize("layout", ["random", "ties"])
def test_nested_dissection_matches_its_definition(layout):
    from aeot.ot.exact2d import _LaplacianSolver
    from aeot.ot.power2d import _power_diagram, spatial_order

    rng = np.random.default_rng(31)
    n = 5000
    y = rng.random((n, 2))
    if layout == "ties":  # many equal coordinates: the split's tie-break decides
        y = np.floor(y * 40) / 40 + 1e-9 * rng.random((n, 2))
    d = _power_diagram(y, np.zeros(n), (0.0, 0.0), (1.0, 1.0))
    order = spatial_order(y)
    solver = _LaplacianSolver(y, order, leaf=16)
    sides, groups, key = _reference_dissection(y, d.edges, 16)
    assert len(solver.sides) == len(sides) == 9
    for mine, ref in zip(solver.sides + solver.groups, sides + groups, strict=True):
        np.testing.assert_array_equal(mine, ref)
    tiebreak = np.empty(n, np.int64)
    tiebreak[order] = np.arange(n)
    perm = solver._ordering(d.edges[:, 0], d.edges[:, 1])
    np.testing.assert_array_equal(perm, np.argsort(key * n + tiebreak))


def test_targets_far_from_the_box():
    rng = np.random.default_rng(5)
    y = rng.random((100, 2)) * 0.01 + [50.0, -20.0]
    h = default_heights_2d(y)
    assert (power_diagram_2d(y, h).areas > 0).all()
    result = solve_exact_2d(SemiDiscreteProblem(y))
    assert result.converged
    assert _rel_error(result) <= 1e-10


def test_constant_shift_of_h0_changes_nothing():
    rng = np.random.default_rng(6)
    y = rng.random((150, 2))
    problem = SemiDiscreteProblem(y, rng.dirichlet(np.ones(150)))
    h0 = -0.5 * (y**2).sum(1) + 1e-4 * rng.standard_normal(150)
    a = solve_exact_2d(problem, h0=h0)
    b = solve_exact_2d(problem, h0=h0 + 3.7)
    assert a.converged and b.converged
    np.testing.assert_allclose(a.h.numpy(), b.h.numpy(), atol=1e-12)
    assert a.errors == pytest.approx(b.errors, rel=1e-6, abs=1e-15)


def test_h0_keeps_the_default_start_s_precision():
    """Heights given for the default start itself (plus a constant) solve as precisely
    as the default: the solver centres ψ = h + |y|²/2, whose size sets its rounding (it
    centred h, which left ψ near mean |y|²/2 ≈ 1/3 and the masses' floor 16× higher)."""
    y = np.random.default_rng(0).random((20000, 2))
    problem = SemiDiscreteProblem(y)
    default = solve_exact_2d(problem, tol=2e-11)
    given = solve_exact_2d(problem, tol=2e-11, h0=-0.5 * (y**2).sum(1) + 0.7)
    assert default.converged and given.converged
    assert given.n_iter == default.n_iter
    assert _rel_error(given) <= 2e-11


def test_h0_with_empty_cells_is_repaired():
    rng = np.random.default_rng(8)
    y = rng.random((100, 2))
    h0 = -0.5 * (y**2).sum(1)
    h0[:5] -= 1.0  # hides five targets
    assert (power_diagram_2d(y, h0).areas[:5] == 0).all()
    result = solve_exact_2d(SemiDiscreteProblem(y), h0=torch.from_numpy(h0))
    assert result.converged
    assert _rel_error(result) <= 1e-10


def test_solution_is_unique_up_to_a_constant():
    rng = np.random.default_rng(9)
    y = rng.random((80, 2))
    problem = SemiDiscreteProblem(y)
    a = solve_exact_2d(problem)
    b = solve_exact_2d(problem, h0=-0.5 * (y**2).sum(1) + 1e-3 * rng.standard_normal(80))
    np.testing.assert_allclose(a.h.numpy(), b.h.numpy(), atol=1e-11)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_problems(n):
    y = np.array([[0.2, 0.3], [0.7, 0.6], [0.4, 0.9]])[:n]
    weights = np.array([0.5, 0.3, 0.2])[:n]
    result = solve_exact_2d(SemiDiscreteProblem(y, weights / weights.sum()))
    assert result.converged
    assert _rel_error(result) <= 1e-10


def test_max_iter_zero_and_result_fields():
    y = np.random.default_rng(0).random((50, 2))
    result = solve_exact_2d(SemiDiscreteProblem(y), max_iter=0)
    assert not result.converged
    assert result.n_iter == 0
    assert len(result.errors) == 1
    assert result.cell_masses.shape == (50,)


def test_float64_floor_stops_after_one_trial(monkeypatch):
    """A tolerance below float64's resolution of the masses: the solve reaches the floor,
    says it did not converge, and, that close, spends one diagram finding out (a shorter
    step cannot beat rounding)."""
    import aeot.ot.exact2d as exact2d

    calls, seen = [0], []
    original = exact2d._power_diagram

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(exact2d, "_power_diagram", counted)
    y = np.random.default_rng(3).random((400, 2))
    result = solve_exact_2d(
        SemiDiscreteProblem(y), tol=1e-18, callback=lambda info: seen.append(calls[0])
    )
    assert not result.converged
    assert _rel_error(result) <= 1e-12
    assert calls[0] - seen[-1] == 1


def test_target_masses_off_the_box_area_by_rounding_spread_over_all_cells():
    """N copies of fl(1/N) do not sum to 1 exactly; the grounded cell of the Newton
    system took all of it, N times the rest's relative error (the floor of a solve at
    N = 10⁶ was 4.7e-10).  Spread over every cell it is ~1e-16 relative."""
    from fractions import Fraction

    n = 7573
    nu = np.full(n, 1.0 / n)
    nu /= nu.sum()
    assert np.unique(nu).size == 1
    off = float((n * Fraction(float(nu[0])) - 1) * n)  # the grounded cell's share
    assert abs(off) > 3.5e-12
    y = np.random.default_rng(11).random((n, 2))
    result = solve_exact_2d(SemiDiscreteProblem(y), tol=1e-12)
    assert result.converged
    assert _rel_error(result) <= 1e-12


def test_close_pair_is_solved_with_double_double_weights(monkeypatch):
    """Two targets 1e-8 apart among 10⁴: their edge moves by Δψ / 1e-8, so float64
    weights of size ~1e-3 (rounded at ~1e-19) would hold their masses to ~1e-9 relative;
    held as double-doubles they reach 1e-12 (and the weights' low parts are used)."""
    import aeot.ot.exact2d as exact2d

    rng = np.random.default_rng(12)
    y = rng.random((10000, 2))
    y[1] = y[0] + 1e-8 * np.array([0.6, 0.8])
    lows = []
    original = exact2d._power_diagram

    def spy(*args, psi_lo=None, **kwargs):
        lows.append(0.0 if psi_lo is None else float(np.abs(psi_lo).max()))
        return original(*args, psi_lo=psi_lo, **kwargs)

    monkeypatch.setattr(exact2d, "_power_diagram", spy)
    result = solve_exact_2d(SemiDiscreteProblem(y), tol=1e-12)
    assert result.converged
    assert _rel_error(result) <= 1e-12
    assert max(lows) > 0.0


def test_double_double_additions_keep_106_bits():
    """(hi + lo) + δ = hi' + lo' to ~2⁻¹⁰⁴ of the terms (only the low parts' sum is
    rounded), |lo'| <= ulp(hi')/2; plain float64 addition is ~2⁻⁵³ off."""
    from fractions import Fraction

    from aeot.ot.exact2d import _add_double_double

    rng = np.random.default_rng(13)
    hi = rng.standard_normal(200) * 10.0 ** rng.integers(-6, 3, 200)
    lo = hi * 2.0**-60 * rng.standard_normal(200)
    delta = rng.standard_normal(200) * 10.0 ** rng.integers(-20, 2, 200)
    hi2, lo2 = _add_double_double(hi, lo, delta)
    for k in range(200):
        exact = Fraction(hi[k]) + Fraction(lo[k]) + Fraction(delta[k])
        size = abs(hi[k]) + abs(delta[k])
        assert abs(Fraction(hi2[k]) + Fraction(lo2[k]) - exact) <= 2.0**-104 * size
        assert abs(lo2[k]) <= 0.5 * np.spacing(abs(hi2[k]))
    plain = [
        abs(Fraction(h + d) - Fraction(h) - Fraction(d)) for h, d in zip(hi, delta, strict=True)
    ]
    assert max(plain) > 0  # the sums above are not all exact in float64 anyway


def test_rejects_unsupported_problems():
    with pytest.raises(ValueError, match="only a box source in 2D"):
        solve_exact_2d(SemiDiscreteProblem(torch.rand(10, 3)))
    with pytest.raises(ValueError, match="only a box source in 2D"):
        solve_exact_2d(SemiDiscreteProblem(torch.rand(10, 2), source=Gaussian(2)))
    problem = SemiDiscreteProblem(torch.rand(10, 2))
    with pytest.raises(ValueError, match="h0"):
        solve_exact_2d(problem, h0=np.zeros(9))
    with pytest.raises(ValueError, match="tol"):
        solve_exact_2d(problem, tol=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        solve_exact_2d(problem, max_iter=-1)
    with pytest.raises(TypeError):
        solve_exact_2d("not a problem")


def test_float32_targets_are_solved_in_float64():
    gen = torch.Generator().manual_seed(0)
    problem = SemiDiscreteProblem(torch.rand(200, 2, generator=gen))  # float32
    result = solve_exact_2d(problem)
    assert result.converged
    assert result.h.dtype == torch.float64
    assert result.cell_masses.dtype == torch.float64
    assert _rel_error(result) <= 1e-10


def test_warm_started_diagram_matches_qhull(monkeypatch):
    import aeot.ot.power2d as power2d

    rng = np.random.default_rng(13)
    n = 2000
    y = rng.random((n, 2))
    box = ((0.0, 0.0), (1.0, 1.0))
    psi0 = 1e-7 * rng.standard_normal(n)
    base = power2d._power_diagram(y, psi0, *box)
    assert base.triangulation is not None
    calls = []
    hull = power2d._lower_hull_arrays
    monkeypatch.setattr(power2d, "_lower_hull_arrays", lambda p: calls.append(1) or hull(p))
    # a tiny change of ψ keeps the triangulation regular, a small one needs a few edge
    # flips (no Qhull call either way); a larger one hides sites, which flips cannot do,
    # and a large one needs too many flips (Qhull again): all give the diagram computed
    # from scratch
    for noise, n_calls, flips in [
        (1e-13, 0, False),
        (1e-7, 0, True),
        (1e-6, 1, None),
        (1e-4, 1, None),
    ]:
        psi = psi0 + noise * rng.standard_normal(n)
        warm = power2d._power_diagram(y, psi, *box, previous=base.triangulation)
        assert len(calls) == n_calls
        if not n_calls:
            tri, tri0 = warm.triangulation, base.triangulation
            assert (tri.simplices != tri0.simplices).any() == flips
        cold = power2d._power_diagram(y, psi, *box)
        np.testing.assert_allclose(warm.areas, cold.areas, rtol=0, atol=1e-15)
        assert {*map(tuple, warm.edges.tolist())} == {*map(tuple, cold.edges.tolist())}
        calls.clear()


def _perturbed_sites(seed: int, n: int = 2000):
    import aeot.ot.power2d as power2d

    rng = np.random.default_rng(seed)
    y = rng.random((n, 2))
    psi0 = 1e-7 * rng.standard_normal(n)
    return rng, y, psi0, power2d._power_diagram(y, psi0, (0.0, 0.0), (1.0, 1.0))


@pytest.mark.skipif(not _native.available(), reason="needs the C kernels")
def test_native_flips_match_the_python_loop(monkeypatch):
    import aeot.ot.power2d as power2d

    rng, y, psi0, base = _perturbed_sites(21)
    psi = psi0 + 1e-7 * rng.standard_normal(y.shape[0])
    before = base.triangulation.simplices.copy()
    native = power2d._lawson_flips(y, psi, base.triangulation, 100)
    monkeypatch.setattr(_native, "available", lambda: False)
    python = power2d._lawson_flips(y, psi, base.triangulation, 100)
    assert python is not None and python is not base.triangulation
    np.testing.assert_array_equal(native.simplices, python.simplices)
    np.testing.assert_array_equal(native.neighbors, python.neighbors)
    # the input triangulation is left as it was
    np.testing.assert_array_equal(base.triangulation.simplices, before)


@pytest.mark.skipif(not _native.available(), reason="needs the C kernels")
def test_native_flips_repair_large_changes_without_qhull(monkeypatch):
    import aeot.ot.power2d as power2d

    _, y, psi0, base = _perturbed_sites(22)
    box = ((0.0, 0.0), (1.0, 1.0))
    # a wavy change of ψ moves many edges (beyond the Python loop's 5 % budget) but
    # hides no site
    psi = psi0 + 3e-4 * np.sin(40 * y[:, 0]) * np.cos(28 * y[:, 1])
    calls = []
    hull = power2d._lower_hull_arrays
    monkeypatch.setattr(power2d, "_lower_hull_arrays", lambda p: calls.append(1) or hull(p))
    monkeypatch.setattr(power2d, "_SWEEP_FROM", 10**9)  # the cold diagram from Qhull
    warm = power2d._power_diagram(y, psi, *box, previous=base.triangulation)
    assert calls == []
    flipped = (warm.triangulation.simplices != base.triangulation.simplices).any(axis=1)
    assert flipped.sum() > 0.2 * y.shape[0]
    cold = power2d._power_diagram(y, psi, *box)
    assert len(calls) == 1
    np.testing.assert_allclose(warm.areas, cold.areas, rtol=0, atol=1e-15)
    assert {*map(tuple, warm.edges.tolist())} == {*map(tuple, cold.edges.tolist())}
    # the pure-Python loop gives up here, for Qhull
    monkeypatch.setattr(_native, "available", lambda: False)
    assert power2d._lawson_flips(y, psi, base.triangulation, int(0.05 * y.shape[0])) is None


def _triangle_set(simplices) -> set:
    return {tuple(sorted(t)) for t in np.asarray(simplices).tolist()}


@pytest.mark.skipif(not _native.available(), reason="needs the C kernels")
@pytest.mark.parametrize("weights", ["zero", "random"])
def test_sweep_triangulation_is_the_regular_one(weights, monkeypatch):
    """The C radial sweep gives Qhull's regular triangulation (the Delaunay one for
    ψ = 0): the same triangles, counter-clockwise, each neighbour across the edge
    opposite its corner; the diagram built on it matches the Qhull one."""
    from scipy.spatial import Delaunay

    import aeot.ot.power2d as power2d

    rng = np.random.default_rng(17)
    n = 3000
    y = rng.random((n, 2))
    psi = np.zeros(n) if weights == "zero" else 1e-6 * rng.standard_normal(n)  # no cell empty
    swept = _native.sweep_triangulate(y[:, 0], y[:, 1], psi)
    assert swept is not None
    s, nb = swept
    assert s.shape == nb.shape and len(s) <= 2 * n - 5
    d1, d2 = y[s[:, 1]] - y[s[:, 0]], y[s[:, 2]] - y[s[:, 0]]
    assert (d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0] > 0).all()
    for f, m in zip(*np.nonzero(nb >= 0), strict=True):
        g = nb[f, m]
        edge = {s[f, (m + 1) % 3], s[f, (m + 2) % 3]}
        assert edge <= set(s[g].tolist()) and f in nb[g].tolist()
    assert (nb < 0).sum() == len(power2d.ConvexHull(y).vertices)  # hull edges
    monkeypatch.setattr(power2d, "_SWEEP_FROM", 10**9)
    qhull = power2d._power_diagram(y, psi, (0.0, 0.0), (1.0, 1.0))
    assert qhull.triangulation is not None
    assert _triangle_set(s) == _triangle_set(qhull.triangulation.simplices)
    delaunay = _triangle_set(Delaunay(y).simplices)
    assert (_triangle_set(s) == delaunay) == (weights == "zero")
    monkeypatch.setattr(power2d, "_SWEEP_FROM", 1000)
    swept_diagram = power2d._power_diagram(y, psi, (0.0, 0.0), (1.0, 1.0))
    np.testing.assert_allclose(swept_diagram.areas, qhull.areas, rtol=0, atol=1e-16)


@pytest.mark.skipif(not _native.available(), reason="needs the C kernels")
def test_sweep_triangulates_small_sets_as_delaunay():
    """3 to 8 random sites (hulls of three to eight edges, where a new site sees all but
    one of them): the sweep gives scipy's Delaunay triangles every time."""
    from scipy.spatial import Delaunay

    for n in range(3, 9):
        for seed in range(60):
            y = np.random.default_rng(seed).random((n, 2))
            swept = _native.sweep_triangulate(y[:, 0], y[:, 1], np.zeros(n))
            assert swept is not None
            assert _triangle_set(swept[0]) == _triangle_set(Delaunay(y).simplices), (n, seed)


@pytest.mark.skipif(not _native.available(), reason="needs the C kernels")
def test_sweep_gives_up_or_falls_back_on_degenerate_sites(monkeypatch):
    """Collinear or coincident sites: None (Qhull runs); a co-circular lattice and a
    hidden site: the diagram is still Qhull's."""
    import aeot.ot.power2d as power2d

    line = np.stack([np.linspace(0, 1, 50), 0.5 * np.ones(50)], axis=1)
    assert _native.sweep_triangulate(line[:, 0], line[:, 1], np.zeros(50)) is None
    rng = np.random.default_rng(18)
    y = rng.random((1500, 2))
    y[7] = y[3]
    assert _native.sweep_triangulate(y[:, 0], y[:, 1], np.zeros(1500)) is None
    box = ((0.0, 0.0), (1.0, 1.0))
    lattice = _grid(40)  # every square's four corners on one circle
    psi = np.zeros(len(lattice))
    psi_hidden = 1e-6 * rng.standard_normal(1500)
    psi_hidden[100] -= 0.05  # site 100's cell is empty
    for sites, weights in ((lattice, psi), (rng.random((1500, 2)), psi_hidden)):
        swept = power2d._power_diagram(sites, weights, *box)
        monkeypatch.setattr(power2d, "_SWEEP_FROM", 10**9)
        qhull = power2d._power_diagram(sites, weights, *box)
        monkeypatch.setattr(power2d, "_SWEEP_FROM", 1000)
        np.testing.assert_allclose(swept.areas, qhull.areas, rtol=0, atol=1e-15)
    assert swept.areas[100] == 0.0


def _numpy_warm_diagram(y, psi, lo, hi, tri, psi_lo=None):
    import aeot.ot.power2d as power2d

    yc = y - y.mean(axis=0)
    edges = power2d._dual_edges(y, psi, yc, tri.simplices, tri.neighbors, None, psi_lo)
    return None if edges is None else power2d._assemble(y, psi, lo, hi, *edges)


@pytest.mark.skipif(not _native.available(), reason="needs the C kernels")
@pytest.mark.parametrize("box", [((0.0, 0.0), (1.0, 1.0)), ((-0.5, 0.0), (1.0, 2.5))])
def test_native_warm_diagram_matches_the_numpy_path(box):
    """The C edge loop (dual edges, clipping, the edges' areas) against the NumPy code it
    replaces, on the same repaired triangulation: same edges and boundary pieces, areas
    and lengths to rounding (the C code may contract into fma); the second box leaves
    sites outside it (areas measured from their clipped reference points)."""
    import aeot.ot.power2d as power2d

    rng, y, psi0, base = _perturbed_sites(23)
    if box[0][0] < 0:
        y = y * 3.0 - 1.0
        base = power2d._power_diagram(y, psi0, *box)
    psi = psi0 + 3e-6 * rng.standard_normal(y.shape[0])
    tri = power2d._lawson_flips(y, psi, base.triangulation, 10**6)
    assert tri is not base.triangulation  # flips were made
    fast = power2d._warm_native(y, psi, *box, tri)
    slow = _numpy_warm_diagram(y, psi, *box, tri)
    assert isinstance(fast, power2d.PowerDiagram2D) and slow is not None
    np.testing.assert_array_equal(fast.edges, slow.edges)
    np.testing.assert_array_equal(fast.boundary_owner, slow.boundary_owner)
    np.testing.assert_allclose(fast.areas, slow.areas, rtol=0, atol=1e-15)
    np.testing.assert_allclose(fast.edge_lengths, slow.edge_lengths, rtol=0, atol=1e-15)
    np.testing.assert_allclose(fast.edge_segments, slow.edge_segments, rtol=0, atol=1e-15)
    assert fast.triangulation is not None and slow.triangulation is not None
    assert fast.areas.sum() == pytest.approx(np.prod(np.subtract(box[1], box[0])), abs=1e-13)


def _exact_cell_area(y, psi, psi_lo, i, candidates) -> float:
    """Area of the power cell of site i in the unit square, in rational arithmetic, with
    the weights ψ + ψ_lo taken exactly: :func:`_clip` of the square by the half-planes
    2 <x, y_j − y_i> <= |y_j|² − |y_i|² − 2 (ψ_j − ψ_i) of the candidate sites j, on
    arrays of Fractions (rounded once, at the end)."""
    from fractions import Fraction as Q

    def site(k):
        return np.array([Q(v) for v in y[k]], dtype=object)

    def weight(k):
        return Q(psi[k]) + Q(psi_lo[k])

    poly = np.array([[Q(0), Q(0)], [Q(1), Q(0)], [Q(1), Q(1)], [Q(0), Q(1)]], dtype=object)
    yi = site(i)
    for j in candidates:
        if j != i and len(poly):
            yj = site(j)
            poly = _clip(poly, 2 * (yj - yi), yj @ yj - yi @ yi - 2 * (weight(j) - weight(i)))
    return _shoelace(poly)


def test_close_sites_and_large_weights_keep_their_cells_exact(monkeypatch):
    """Two sites 1e-8 apart and weights ψ + 0.3 held as double-doubles (hi, lo): every
    path (Qhull then NumPy, the C warm start, the NumPy warm start, the pure-Python
    flips) gives the two cells' areas and their neighbours' (~3e-3) to 1e-17 of the
    rational answer for the weights hi + lo.  Without the low parts the pair's edge moves by
    ~ulp(0.3) / 1e-8; and the vertices computed from the far corner of the pair's
    triangles (r1 d2 − r2 d1 cancelling) were off by ~1e-13."""
    import aeot.ot.power2d as power2d
    from aeot.ot.exact2d import _add_double_double

    rng = np.random.default_rng(14)
    y = rng.random((300, 2))
    y[1] = y[0] + 1e-8 * np.array([0.6, 0.8])
    psi = 1e-5 * rng.standard_normal(300)
    psi[1] = psi[0] + 2e-11  # the pair's edge 2e-3 from their midpoint: both cells kept
    hi, lo = _add_double_double(psi, np.zeros(300), np.full(300, 0.3))
    assert (lo != 0).any()
    box = ((0.0, 0.0), (1.0, 1.0))
    near = np.argsort(np.linalg.norm(y - y[0], axis=1))[:12]
    nearest = [np.argsort(np.linalg.norm(y - y[i], axis=1))[:40] for i in near]
    exact = np.array(
        [_exact_cell_area(y, hi, lo, i, c) for i, c in zip(near, nearest, strict=True)]
    )

    cold = power2d._power_diagram(y, hi, *box, psi_lo=lo)
    tri = cold.triangulation
    assert tri is not None
    # each triangle listed from the corner opposite its shortest side (the worst start
    # for its vertex; rows of simplices and neighbours rotated alike)
    side = np.stack(
        [
            np.linalg.norm(
                y[tri.simplices[:, (m + 1) % 3]] - y[tri.simplices[:, (m + 2) % 3]], axis=1
            )
            for m in range(3)
        ],
        axis=1,
    )
    first = side.argmin(axis=1)[:, None]
    cols = (first + np.arange(3)) % 3
    far = power2d.RegularTriangulation(
        np.take_along_axis(tri.simplices, cols, axis=1),
        np.take_along_axis(tri.neighbors, cols, axis=1),
    )
    diagrams = {"qhull": cold, "numpy warm": _numpy_warm_diagram(y, hi, *box, far, lo)}
    if _native.available():
        diagrams["c warm"] = power2d._warm_native(y, hi, *box, far, lo)
    moved = hi + 3e-6 * rng.standard_normal(300)  # flips needed, in C and in Python
    moved[1] = moved[0] + (hi[1] - hi[0])
    for name in ("c flips", "python flips"):
        if name == "python flips":
            monkeypatch.setattr(_native, "available", lambda: False)
        warm = power2d._power_diagram(y, moved, *box, previous=tri, psi_lo=lo)
        ref = power2d._power_diagram(y, moved, *box, psi_lo=lo)
        assert (warm.triangulation.simplices != tri.simplices).any()  # it flipped
        np.testing.assert_allclose(warm.areas, ref.areas, rtol=0, atol=1e-17, err_msg=name)
    for name, d in diagrams.items():
        np.testing.assert_allclose(d.areas[near], exact, rtol=0, atol=1e-17, err_msg=name)
    plain = power2d._power_diagram(y, hi, *box)
    assert np.abs(plain.areas[near] - exact).max() > 1e-12


@pytest.mark.skipif(not _native.available(), reason="needs the C kernels")
def test_native_warm_diagram_defers_to_numpy_and_qhull():
    """An edge parallel to a side of the box goes to the NumPy path (code −2 here, then
    the same diagram as Qhull's); a triangulation that is not regular gives −1 here (the
    caller runs Qhull) and None from the NumPy path."""
    import aeot.ot.power2d as power2d

    g = (np.arange(12) + 0.5) / 12
    y = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    y += 1e-3 * np.random.default_rng(4).standard_normal(y.shape)
    y[1, 1] = y[0, 1]  # a horizontal pair of neighbours: their edge is vertical
    psi = np.zeros(y.shape[0])
    base = power2d._power_diagram(y, psi, (0.0, 0.0), (1.0, 1.0))
    assert power2d._warm_native(y, psi, (0.0, 0.0), (1.0, 1.0), base.triangulation) == -2
    warm = power2d._power_diagram(y, psi, (0.0, 0.0), (1.0, 1.0), previous=base.triangulation)
    np.testing.assert_allclose(warm.areas, base.areas, rtol=0, atol=1e-15)
    rng, y, psi0, base = _perturbed_sites(24)
    psi = psi0 + 3e-3 * rng.standard_normal(y.shape[0]) / y.shape[0] * 100
    tri = power2d._lawson_flips(y, psi, base.triangulation, 10**6)
    assert power2d._warm_native(y, psi, (0.0, 0.0), (1.0, 1.0), tri) == -1
    assert _numpy_warm_diagram(y, psi, (0.0, 0.0), (1.0, 1.0), tri) is None


@pytest.mark.skipif(not _native.available(), reason="needs the C kernels")
def test_hidden_site_certificate_is_only_given_for_empty_cells():
    import aeot.ot.power2d as power2d

    box = ((0.0, 0.0), (1.0, 1.0))
    rng, y, psi0, base = _perturbed_sites(23)
    # lowering ψ_k lifts site k: far enough, its cell vanishes
    interior = np.nonzero((np.abs(y - 0.5) < 0.4).all(axis=1))[0]
    proved = 0
    for trial in range(40):
        psi = psi0 + 10.0 ** rng.uniform(-7, -5) * rng.standard_normal(y.shape[0])
        hide = rng.choice(interior, size=trial % 4)
        psi[hide] -= 10.0 ** rng.uniform(-5, -3)
        warm = power2d._power_diagram(y, psi, *box, previous=base.triangulation, reject_hidden=True)
        cold = power2d._power_diagram(y, psi, *box)
        if warm is None:
            proved += 1
            assert (cold.areas == 0).any()
        else:
            np.testing.assert_allclose(warm.areas, cold.areas, rtol=0, atol=1e-15)
    assert proved >= 10


def test_exact_solver_gives_the_same_answer_without_the_c_flips(monkeypatch):
    gen = torch.Generator().manual_seed(5)
    problem = SemiDiscreteProblem(torch.rand(3000, 2, dtype=torch.float64, generator=gen))
    first = solve_exact_2d(problem)
    monkeypatch.setattr(_native, "available", lambda: False)
    second = solve_exact_2d(problem)
    assert first.converged and second.converged
    torch.testing.assert_close(first.h, second.h, rtol=0, atol=1e-9)
    assert _rel_error(second) <= 1e-10


# ------------------------------------------------------------------ grid densities
# (aeot.ot.density2d: cells cut along the pixels of a GridDensity)


def _reference_masses(y, h, rho, low, high) -> np.ndarray:
    """Each cell (half-plane clipping of the box) clipped to each pixel, area × ρ."""
    low, high = np.asarray(low, float), np.asarray(high, float)
    nx, ny = rho.shape
    wx, wy = (high - low) / (nx, ny)
    masses = np.zeros(len(y))
    for i, cell in enumerate(_reference_cells(y, h, low, high)):
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
                masses[i] += rho[a, b] * _shoelace(piece)
    return masses


def _wavy(shape, contrast=0.8):
    gx = (np.arange(shape[0]) + 0.5) / shape[0]
    gy = (np.arange(shape[1]) + 0.5) / shape[1]
    x, y = np.meshgrid(gx, gy, indexing="ij")
    return 1.0 + contrast * np.sin(6 * x) * np.cos(4 * y + 1)


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
