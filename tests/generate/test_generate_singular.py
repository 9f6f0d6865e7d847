"""Singular set detection: dihedral angles of the Brenier potential on normalised codes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aeot.generate import (
    default_threshold,
    detect_singular,
    dihedral_angles,
    estimate_cell_graph,
    normalise_targets,
    singular_points,
    unit_normals,
)
from aeot.ot import BoxUniform, SemiDiscreteProblem, SemiDiscreteResult
from aeot.ot.montecarlo import solve_semidiscrete


def grid_mixture(n: int, seed: int, std: float = 0.05):
    """25 Gaussians with means {-4, -2, 0, 2, 4}^2."""
    rng = np.random.default_rng(seed)
    means = np.array([(a, b) for a in range(-4, 5, 2) for b in range(-4, 5, 2)], float)
    labels = rng.integers(0, 25, n)
    return means[labels] + std * rng.standard_normal((n, 2)), labels, means


def ring_mixture(n: int, seed: int, std: float = 0.01):
    """8 Gaussians on the unit circle."""
    rng = np.random.default_rng(seed)
    t = 2 * np.pi * np.arange(8) / 8
    means = np.stack([np.cos(t), np.sin(t)], 1)
    labels = rng.integers(0, 8, n)
    return means[labels] + std * rng.standard_normal((n, 2)), labels, means


def solve(points: np.ndarray) -> SemiDiscreteResult:
    """Monte-Carlo OT from the uniform measure on the data's bounding box (small budget)."""
    box = BoxUniform(points.shape[1], points.min(0).tolist(), points.max(0).tolist())
    problem = SemiDiscreteProblem(points, source=box)
    return solve_semidiscrete(
        problem,
        tol=0.05,
        seed=0,
        max_iter=40,
        batch_size=2**13,
        max_batch_size=2**15,
    )


@pytest.fixture(scope="module")
def grid_case():
    y, labels, _ = grid_mixture(400, seed=1)
    result = solve(y)
    return y, labels, result, estimate_cell_graph(result, 2**15, seed=0)


@pytest.fixture(scope="module")
def ring_case():
    y, labels, _ = ring_mixture(200, seed=2)
    result = solve(y)
    return y, labels, result, estimate_cell_graph(result, 2**15, seed=0)


def test_normalise_targets_and_angles():
    y = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]], dtype=torch.float64)
    yt, mean, radius = normalise_targets(y)
    assert mean.tolist() == [1.0, 1.0] and radius == pytest.approx(math.sqrt(2))
    assert float(yt.pow(2).sum(1).mean()) == pytest.approx(1.0)
    normals = unit_normals(y)
    assert normals.shape == (4, 3)
    assert torch.allclose(normals.norm(dim=1), torch.ones(4, dtype=torch.float64))
    # θ = arccos(<n_i, n_j> / |n_i||n_j|) with n = (ỹ, -1)
    theta = dihedral_angles(y, [[0, 1], [0, 3], [2, 2]])
    n = torch.cat([yt, -torch.ones(4, 1, dtype=torch.float64)], 1)
    cos = (n[0] @ n[1]) / (n[0].norm() * n[1].norm())
    assert float(theta[0]) == pytest.approx(math.acos(float(cos)), abs=1e-12)
    assert float(theta[2]) == 0.0
    # tiny angles stay accurate (arccos would lose them)
    z = torch.tensor([[0.0, 0.0], [1e-9, 0.0], [1.0, 1.0]], dtype=torch.float64)
    assert float(dihedral_angles(z, [[0, 1]])[0]) > 0
    with pytest.raises(ValueError):
        dihedral_angles(y, [[0, 4]])
    with pytest.raises(ValueError):
        dihedral_angles(y, [0, 1])
    with pytest.raises(ValueError):
        normalise_targets(torch.tensor([[0.0, float("nan")]]))


def test_default_threshold_rules():
    rng = np.random.default_rng(0)
    bulk = np.exp(rng.normal(np.log(0.01), 0.5, 500))
    # a clear gap between intra- and inter-mode angles: geometric midpoint of the gap
    high = rng.uniform(0.3, 0.6, 60)
    value, rule = default_threshold(np.concatenate([bulk, high]))
    assert rule == "gap"
    assert bulk.max() < value < high.min()
    assert value == pytest.approx(math.sqrt(bulk.max() * high.min()))
    # two groups of inter-mode angles: the first gap is used, both groups are singular
    groups = np.concatenate([bulk, rng.uniform(0.3, 0.35, 30), rng.uniform(1.5, 1.6, 30)])
    value, rule = default_threshold(groups)
    assert rule == "gap" and bulk.max() < value < 0.3
    # a continuum (one convex mode): 5 x median
    value, rule = default_threshold(bulk)
    assert rule == "median" and value == pytest.approx(5 * np.median(bulk))
    assert default_threshold([0.1]) == (math.pi, "none")


def _inter(labels, pairs):
    p = pairs.cpu().numpy()
    return labels[p[:, 0]] != labels[p[:, 1]]


@pytest.mark.parametrize("case", ["grid_case", "ring_case"])
def test_singular_pairs_are_exactly_the_inter_mode_facets(case, request):
    _, labels, result, graph = request.getfixturevalue(case)
    found = detect_singular(graph, result.targets)
    inter = _inter(labels, graph.pairs)
    assert inter.sum() > 10 and (~inter).sum() > 50
    singular = found.singular.cpu().numpy()
    # every singular pair joins two modes, and every inter-mode facet is singular
    assert not (singular & ~inter).any()
    assert singular[inter].all()
    assert found.rule == "gap"
    # components never span two modes
    comp = found.components.cpu().numpy()
    for c in np.unique(comp):
        assert len(np.unique(labels[comp == c])) == 1
    assert found.n_components >= len(np.unique(labels))
    assert torch.equal(found.is_singular(graph.pairs[:, 0], graph.pairs[:, 1]), found.singular)


def test_detection_is_scale_and_translation_invariant(grid_case):
    y, _, result, graph = grid_case
    reference = detect_singular(graph, result.targets)
    for scale, shift in ((7.5, (3.0, -40.0)), (0.01, (0.2, 0.1)), (1.0, (100.0, 100.0))):
        y2 = scale * y + np.asarray(shift)
        # the rescaled problem has the same power diagram with heights scale * h
        problem = SemiDiscreteProblem(y2, source=result.problem.source)
        moved = SemiDiscreteResult(
            problem=problem, h=scale * result.h, cell_masses=result.cell_masses
        )
        graph2 = estimate_cell_graph(moved, 2**15, seed=0)
        found = detect_singular(graph2, moved.targets)
        assert torch.equal(graph2.pairs, graph.pairs)
        assert torch.equal(graph2.pairs[found.singular], graph.pairs[reference.singular])
        assert found.threshold == pytest.approx(reference.threshold, rel=1e-9)
        # same graph, transformed codes: same angles
        assert torch.allclose(detect_singular(graph, y2).angles, reference.angles, atol=1e-12)


def test_single_convex_mode_has_no_singular_facets():
    rng = np.random.default_rng(4)
    y = rng.random((200, 2))
    result = solve(y)
    graph = estimate_cell_graph(result, 2**15, seed=0)
    found = detect_singular(graph, result.targets)
    assert found.rule == "median"
    assert int(found.singular.sum()) <= max(1, graph.n_edges // 200)
    assert found.n_components - graph.empty_cells.numel() == 1


def test_given_threshold_and_errors(grid_case):
    _, _, result, graph = grid_case
    everything = detect_singular(graph, result.targets, threshold=0.0)
    assert bool(everything.singular.all()) and everything.rule == "given"
    nothing = detect_singular(graph, result.targets, threshold=math.pi)
    assert not bool(nothing.singular.any())
    with pytest.raises(ValueError):
        detect_singular(graph, result.targets, threshold=-1.0)
    with pytest.raises(ValueError):
        detect_singular(graph, result.targets[:10])
    with pytest.raises(TypeError):
        detect_singular("graph", result.targets)


def test_singular_points_lie_between_modes(grid_case):
    _, _, result, graph = grid_case
    found = detect_singular(graph, result.targets)
    x = result.problem.source.sample(2**14, seed=9, dtype=torch.float64)
    mask = singular_points(result, x, graph=graph, singular=found)
    assert mask.dtype == torch.bool and mask.shape == (2**14,)
    assert int(mask.sum()) > 20
    # the two best cells of a marked point belong to different modes
    _, cells = result.topk(x[mask], 2)
    labels = grid_mixture(400, seed=1)[1]
    assert (labels[cells[:, 0].numpy()] != labels[cells[:, 1].numpy()]).all()
    # same answer through the threshold/tol arguments
    again = singular_points(result, x, threshold=found.threshold, tol=graph.eps)
    assert torch.equal(again, mask)
    with pytest.raises(ValueError):
        singular_points(result, torch.zeros(5, 3))
    with pytest.raises(ValueError):
        singular_points(result, torch.full((5, 2), float("nan")))
