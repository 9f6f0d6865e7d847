"""Exact 1-D pieces along segments and polylines."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from aeot.relu import (
    as_relu_network,
    count_path_pieces,
    decompose_path,
    random_relu_net,
    sampled_path_count,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_segment_count_matches_dense_sampling(seed):
    net = random_relu_net([3, 10, 10, 10, 2], seed=seed, bias_std=0.2, output_activation=False)
    rng = np.random.default_rng(seed)
    seg = rng.normal(size=(2, 3))
    path = decompose_path(net, seg)
    sampled = sampled_path_count(net, seg, n_samples=200_000)
    assert sampled <= path.n_pieces
    assert sampled == path.n_pieces
    assert path.n_pieces == count_path_pieces(net, seg) > 5


def test_path_pieces_are_exact():
    net = random_relu_net([2, 8, 8, 3], seed=4, negative_slope=0.1, output_activation=False)
    pts = np.array([[-1.0, -1.0], [1.0, 0.5], [0.0, 1.0], [-1.0, 0.2]])
    path = decompose_path(net, pts)
    rn = as_relu_network(net)
    lo, hi = path.intervals.T
    assert lo[0] == 0.0 and hi[-1] == 3.0
    np.testing.assert_allclose(lo[1:], hi[:-1])
    # midpoints reproduce the pattern and the affine map along the path
    mid = 0.5 * (lo + hi)
    x = path.point_at(mid)
    for ours, theirs in zip(path.patterns, rn.patterns(x), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    with torch.no_grad():
        f = copy.deepcopy(net).double()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(
        np.einsum("k,kn->kn", mid, path.maps[:, 0]) + path.maps[:, 1], f, atol=1e-10
    )
    # at every breakpoint some neuron's pre-activation vanishes
    pre = np.concatenate(rn.preactivations(path.breakpoint_points), axis=1)
    assert np.abs(pre).min(axis=1).max() < 1e-8
    assert path.n_regions_visited <= path.n_pieces


def test_polyline_there_and_back_merges_at_the_turn():
    net = random_relu_net([2, 6, 6, 1], seed=5, output_activation=False)
    a, b = np.array([-1.0, -0.7]), np.array([0.9, 0.8])
    k = count_path_pieces(net, np.stack([a, b]))
    back = decompose_path(net, np.stack([a, b, a]))
    assert back.n_pieces == 2 * k - 1
    assert back.n_regions_visited == k
    # a path inside one cell is one piece
    x0 = np.array([0.3, 0.1])
    assert count_path_pieces(net, np.stack([x0, x0 + 1e-9, x0])) == 1


def test_path_errors():
    net = random_relu_net([2, 4, 1], seed=0)
    with pytest.raises(ValueError, match="m >= 2"):
        decompose_path(net, np.zeros((1, 2)))
    with pytest.raises(ValueError):
        decompose_path(net, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        decompose_path(net, np.array([[0.0, 0.0], [np.nan, 1.0]]))
