"""Cell adjacency, facet measures and centroids estimated from source samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aeot.generate import CellGraph, estimate_cell_graph
from aeot.ot import BoxUniform, SemiDiscreteProblem, SemiDiscreteResult


def _result(targets, h, low, high) -> SemiDiscreteResult:
    y = torch.as_tensor(targets, dtype=torch.float64)
    problem = SemiDiscreteProblem(y, source=BoxUniform(y.shape[1], low, high))
    return SemiDiscreteResult(
        problem=problem, h=torch.as_tensor(h, dtype=torch.float64), cell_masses=torch.zeros(len(y))
    )


def test_two_half_boxes_exact_geometry():
    # y = (±1, 0), h = 0: the cells are the halves x1 < 0 and x1 > 0 of [-0.5, 0.5] x [0, 1];
    # the facet {x1 = 0} has length 1 under the uniform density 1
    result = _result([[-1.0, 0.0], [1.0, 0.0]], [0.0, 0.0], [-0.5, 0.0], [0.5, 1.0])
    graph = estimate_cell_graph(result, 2**15, seed=3)
    assert isinstance(graph, CellGraph)
    assert graph.pairs.tolist() == [[0, 1]]
    assert graph.masses.tolist() == pytest.approx([0.5, 0.5], abs=1e-3)
    expected = torch.tensor([[-0.25, 0.5], [0.25, 0.5]], dtype=torch.float64)
    assert torch.allclose(graph.centroids, expected, atol=5e-3)
    assert float(graph.facet_measure[0]) == pytest.approx(1.0, rel=0.05)
    # the facet point lies on the facet {x1 = 0}
    assert abs(float(graph.facet_points[0, 0])) <= graph.eps
    assert graph.n_cells == 2 and graph.n_edges == 1 and graph.dim == 2
    assert graph.empty_cells.numel() == 0


def test_quadrants_have_four_facets_and_no_diagonal():
    y = [[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]]
    result = _result(y, np.zeros(4), -1.0, 1.0)
    graph = estimate_cell_graph(result, 2**15, seed=0)
    assert graph.pairs.tolist() == [[0, 1], [0, 2], [1, 3], [2, 3]]
    # each facet is a half-axis of length 1 under density 1/4
    assert graph.facet_measure.numpy() == pytest.approx(np.full(4, 0.25), rel=0.1)
    assert graph.masses.numpy() == pytest.approx(np.full(4, 0.25), abs=2e-3)
    assert graph.edge_ids([1, 3, 0], [0, 2, 3]).tolist() == [0, 3, -1]
    assert graph.neighbours(0).tolist() == [1, 2]
    adj = graph.adjacency()
    assert adj.shape == (4, 4) and adj.nnz == 8
    assert adj[0, 1] == pytest.approx(float((graph.centroids[0] - graph.centroids[1]).norm()))


def test_graph_is_reproducible_and_masses_sum_to_one():
    rng = np.random.default_rng(0)
    y = rng.random((60, 2))
    result = _result(y, -0.5 * (y**2).sum(1), 0.0, 1.0)  # the Voronoi diagram of y
    a = estimate_cell_graph(result, 2**13, seed=5)
    b = estimate_cell_graph(result, 2**13, seed=5)
    assert torch.equal(a.pairs, b.pairs) and torch.equal(a.centroids, b.centroids)
    assert float(a.masses.sum()) == pytest.approx(1.0)
    # each centroid lies in its own cell (cells are convex)
    inside = result.assign(a.centroids[a.cell_counts > 0])
    assert torch.equal(inside, torch.nonzero(a.cell_counts > 0).flatten())
    # Voronoi neighbours only: every estimated edge is a Delaunay edge of y
    from scipy.spatial import Delaunay

    tri = Delaunay(y)
    edges = {
        tuple(sorted((int(s[i]), int(s[j]))))
        for s in tri.simplices
        for i, j in ((0, 1), (0, 2), (1, 2))
    }
    assert {tuple(p) for p in a.pairs.tolist()} <= edges


def test_empty_cell_gets_a_stand_in_centroid():
    # the third code is dominated (very low height): its cell is empty
    result = _result(
        [[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0]], [0.0, 0.0, -5.0], [-1.0, 0.0], [1.0, 1.0]
    )
    graph = estimate_cell_graph(result, 2**12, seed=0)
    assert graph.empty_cells.tolist() == [2]
    assert bool(torch.isfinite(graph.centroids).all())


def test_graph_bad_input():
    result = _result([[0.0, 0.0], [1.0, 1.0]], [0.0, 0.0], 0.0, 1.0)
    with pytest.raises(ValueError):
        estimate_cell_graph(result, 0)
    with pytest.raises(ValueError):
        estimate_cell_graph(result, 100, slab_fraction=1.5)
    with pytest.raises(TypeError):
        estimate_cell_graph("not a result", 100)
    with pytest.raises(TypeError):
        estimate_cell_graph(result, 100.5)
