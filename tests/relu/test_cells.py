"""Exact 2-D cell decomposition: self-checks against the network and sampling."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from aeot.relu import (
    CellDecomposition,
    PlaneSlice,
    activation_pattern,
    as_relu_network,
    chain,
    decompose_slice,
    grid_pattern_count,
    random_relu_net,
)
from aeot.relu import cells as cells_module


def _net(weight, bias, out: int = 1, act: nn.Module | None = None) -> nn.Sequential:
    weight = torch.as_tensor(weight, dtype=torch.float32)
    lin = nn.Linear(weight.shape[1], weight.shape[0])
    head = nn.Linear(weight.shape[0], out)
    with torch.no_grad():
        lin.weight.copy_(weight)
        lin.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return nn.Sequential(lin, act if act is not None else nn.ReLU(), head)


def _check_cells(decomp: CellDecomposition, net: nn.Module, atol: float = 1e-9) -> None:
    """Areas tile the box; interior points reproduce pattern, value and Jacobian."""
    assert decomp.n_cells == len(decomp.areas) == len(decomp.patterns[0])
    assert decomp.areas.min() > 0
    np.testing.assert_allclose(decomp.total_area, decomp.box_area, rtol=1e-9)
    # every pattern occurs once: activation regions are convex
    assert decomp.n_activation_regions == decomp.n_cells
    inner = decomp.interior_points
    x = decomp.plane.to_input(inner)
    rn = decomp.network
    for ours, theirs in zip(decomp.patterns, rn.patterns(x), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    torch_pats = activation_pattern(net, x)
    for ours, theirs in zip(decomp.patterns, torch_pats, strict=True):
        np.testing.assert_array_equal(ours, theirs.numpy())
    net64 = copy.deepcopy(net).double()
    xt = torch.from_numpy(x)
    with torch.no_grad():
        f = net64(xt).numpy()
    a_st, b_st = decomp.st_affine_maps()
    np.testing.assert_allclose(np.einsum("pok,pk->po", a_st, inner) + b_st, f, atol=atol)
    a, b = decomp.input_affine_maps()
    np.testing.assert_allclose(np.einsum("poi,pi->po", a, x) + b, f, atol=atol)
    jac = torch.func.vmap(torch.func.jacrev(net64))(xt).detach().numpy()
    np.testing.assert_allclose(a, jac, atol=atol)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_net_cells_are_consistent(seed):
    net = random_relu_net([2, 12, 10, 8, 2], seed=seed, bias_std=0.3, output_activation=False)
    decomp = decompose_slice(net, box=(-1.5, 1.0, -0.5, 2.0))
    assert decomp.n_cells > 50
    _check_cells(decomp, net)


def test_leaky_relu_cells():
    net = random_relu_net([2, 8, 8, 3], seed=7, negative_slope=0.05, output_activation=False)
    decomp = decompose_slice(net)
    _check_cells(decomp, net)
    # LeakyReLU never zeroes a unit, so no two cells share an affine map
    assert decomp.n_affine_pieces == decomp.n_cells


@pytest.mark.parametrize("n", [1, 2, 5, 12, 40])
def test_one_hidden_layer_generic_count(n):
    # n = 40: every line crosses the box, more than cells._MAX_ROUNDS: split by halves
    rng = np.random.default_rng(n)
    w = rng.normal(size=(n, 2))
    b = rng.normal(size=n)
    net = _net(w, b)
    w64 = net[0].weight.detach().double().numpy()
    b64 = net[0].bias.detach().double().numpy()
    # box containing every pairwise intersection point (with a margin)
    pts = [np.zeros(2)]
    for i, j in itertools.combinations(range(n), 2):
        pts.append(np.linalg.solve(w64[[i, j]], -b64[[i, j]]))
    pts = np.array(pts)
    lo, hi = pts.min(0) - 1.0, pts.max(0) + 1.0
    decomp = decompose_slice(net, box=(lo[0], hi[0], lo[1], hi[1]))
    assert decomp.n_cells == 1 + n + n * (n - 1) // 2
    _check_cells(decomp, net, atol=1e-7)


def test_degenerate_lines_create_no_slivers():
    # x = 0, y = 0 and x + y = 0 meet at the origin and x + y = 0 runs through two
    # box corners: 6 cells; a duplicated neuron, a line on the box edge, a line
    # outside the box and a dead neuron add none
    w = [[1, 0], [0, 1], [1, 1], [1, 1], [1, 0], [1, 0], [0, 0]]
    b = [0, 0, 0, 0, -1, 3, 0]
    net = _net(w, b)
    decomp = decompose_slice(net)
    assert decomp.n_cells == 6
    np.testing.assert_allclose(np.sort(decomp.areas), [0.5, 0.5, 0.5, 0.5, 1.0, 1.0])
    assert decomp.counts.min() >= 3
    # the dead neuron never fires, the far line's neuron always fires
    assert not decomp.patterns[0][:, 6].any()
    assert decomp.patterns[0][:, 5].all()


def test_tiny_offsets_snap_to_the_line():
    # a second line 1e-13 away from the first: no zero-area sliver between them
    net = _net([[1.0, 0.0], [1.0, 0.0]], [0.0, 0.0])
    with torch.no_grad():
        net[0].bias[1] = 1e-13
    decomp = decompose_slice(net)
    assert decomp.n_cells == 2
    assert decomp.areas.min() > 1.0


def test_grid_sampling_never_exceeds_exact_count():
    net = random_relu_net([2, 8, 8, 1], seed=11, bias_std=0.3, output_activation=False)
    decomp = decompose_slice(net)
    exact = {bytes(r) for r in np.packbits(decomp.pattern_matrix, axis=1)}
    for res in (50, 200, 800):
        count, found = grid_pattern_count(net, resolution=res, return_patterns=True)
        assert count <= decomp.n_cells
        assert {bytes(r) for r in found} <= exact
    # on a fine grid only tiny cells are missed
    assert count >= 0.9 * decomp.n_cells
    small = np.sort(decomp.areas)[: decomp.n_cells - count]
    assert small.max() < 1e-2


def test_slice_through_three_points_in_higher_dimension():
    net = random_relu_net([5, 10, 10, 3], seed=2, output_activation=False)
    rng = np.random.default_rng(3)
    p0, p1, p2 = rng.normal(size=(3, 5))
    plane = PlaneSlice.through_points(p0, p1, p2)
    np.testing.assert_allclose(
        plane.coordinates(np.stack([p0, p1, p2])), [[0, 0], [1, 0], [0, 1]], atol=1e-12
    )
    decomp = decompose_slice(net, plane, box=(-0.5, 1.5, -0.5, 1.5))
    _check_cells(decomp, net)
    assert decomp.vertices.shape[1] == 2
    cell = decomp[0]
    assert cell.vertices_input.shape[1] == 5 and cell.A.shape == (3, 5)
    np.testing.assert_allclose(decomp.input_polygons[0], cell.vertices_input)
    np.testing.assert_allclose(cell.A @ plane.u, cell.A_st[:, 0], atol=1e-12)
    ortho = PlaneSlice.through_points(p0, p1, p2, orthonormal=True)
    np.testing.assert_allclose(ortho.area_factor, 1.0)
    c = ortho.coordinates(np.stack([p0, p1, p2]))
    np.testing.assert_allclose(c[1], [np.linalg.norm(p1 - p0), 0.0], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(c[2]), np.linalg.norm(p2 - p0))


def test_conv_net_slice():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)).eval()
    plane = PlaneSlice.through_point(
        np.zeros((1, 3, 3)), *np.random.default_rng(0).normal(size=(2, 9))
    )
    decomp = decompose_slice(net, plane, input_shape=(1, 3, 3), box=(-2, 2, -2, 2))
    assert decomp.n_cells > 4
    x = decomp.plane.to_input(decomp.interior_points).reshape(-1, 1, 3, 3)
    pats = activation_pattern(net, x)
    np.testing.assert_array_equal(decomp.patterns[0], pats[0].numpy())


def test_affine_pieces_merge_dead_cells():
    # second layer: one unit z2 = 0.5 - relu(x) - relu(y), off far from the third quadrant
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[-1.0, -1.0]]))
        net[2].bias.fill_(0.5)
        net[4].weight.fill_(2.0)
        net[4].bias.fill_(1.0)
    decomp = decompose_slice(net)
    # cells: 4 quadrants, three of them cut by the zero line of z2
    assert decomp.n_cells == 7
    # the three cells where z2 is off all carry the same constant map f = 1
    off = ~decomp.patterns[1][:, 0]
    assert off.sum() == 3
    assert decomp.n_affine_pieces == 7 - 3 + 1
    np.testing.assert_allclose(decomp.st_maps[off][:, 2, 0], 1.0)
    np.testing.assert_allclose(decomp.st_maps[off][:, :2, 0], 0.0)
    labels = decomp.affine_piece_labels()
    assert len(set(labels[off])) == 1


def test_image_polygons_match_forward():
    enc = random_relu_net([2, 8, 2], seed=3, output_activation=False)
    dec = random_relu_net([2, 8, 3], seed=4, output_activation=False)
    full = decompose_slice(chain(enc, dec))
    n_enc = len(as_relu_network(enc).stages)
    latent = full.image_polygons(upto=n_enc)
    out = full.image_polygons()
    assert len(latent) == len(out) == full.n_cells
    i = int(np.argmax(full.areas))
    with torch.no_grad():
        pts = torch.from_numpy(full.polygon(i))
        np.testing.assert_allclose(latent[i], copy.deepcopy(enc).double()(pts).numpy(), atol=1e-9)
        ref = copy.deepcopy(chain(enc, dec)).double()(pts).numpy()
    np.testing.assert_allclose(out[i], ref, atol=1e-9)
    proj = full.image_polygons(projection=np.eye(3)[:, :2])
    assert proj[i].shape == (len(full.polygon(i)), 2)


def test_composition_refines_encoder_cells():
    enc = random_relu_net([2, 6, 2], seed=5, output_activation=False)
    dec = random_relu_net([2, 6, 2], seed=6, output_activation=False)
    d_enc = decompose_slice(enc)
    d_full = decompose_slice(chain(enc, dec))
    assert d_full.n_cells >= d_enc.n_cells
    # each composed cell lies in one encoder cell: its encoder bits are a pattern of d_enc
    enc_pats = {bytes(r) for r in np.packbits(d_enc.patterns[0], axis=1)}
    assert {bytes(r) for r in np.packbits(d_full.patterns[0], axis=1)} == enc_pats


def test_linear_net_and_leading_relu():
    lin = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    decomp = decompose_slice(lin)
    assert decomp.n_cells == 1 and decomp.patterns == []
    assert decomp.n_affine_pieces == 1
    a, _ = decomp.input_affine_maps()
    w = (lin[1].weight @ lin[0].weight).detach().double().numpy()
    np.testing.assert_allclose(a[0], w, atol=1e-6)
    # a ReLU acting directly on the input: the four quadrants
    quad = nn.Sequential(nn.ReLU(), nn.Linear(2, 1))
    decomp = decompose_slice(quad)
    assert decomp.n_cells == 4
    np.testing.assert_allclose(np.sort(decomp.areas), [1.0, 1.0, 1.0, 1.0])


def test_bad_arguments():
    net = random_relu_net([3, 4, 1], seed=0)
    with pytest.raises(ValueError, match="PlaneSlice"):
        decompose_slice(net)
    with pytest.raises(ValueError, match="R\\^2"):
        decompose_slice(net, PlaneSlice.standard(2))
    net2 = random_relu_net([2, 4, 1], seed=0)
    with pytest.raises(ValueError, match="box"):
        decompose_slice(net2, box=(1, -1, 0, 1))
    with pytest.raises(ValueError, match="finite"):
        decompose_slice(net2, box=(0, np.nan, 0, 1))
    with pytest.raises(ValueError, match="collinear"):
        PlaneSlice.through_points([0, 0, 0], [1, 1, 1], [2, 2, 2])
    with pytest.raises(ValueError, match="NaN"):
        PlaneSlice.through_point([0, np.nan], [1, 0], [0, 1])
    with pytest.raises(ValueError, match="Tanh"):
        decompose_slice(nn.Sequential(nn.Linear(2, 2), nn.Tanh()))


def _cell_table(decomp: CellDecomposition) -> tuple[np.ndarray, np.ndarray]:
    """Packed patterns of the cells, sorted, and the cells' areas in that order."""
    packed = np.packbits(decomp.pattern_matrix, axis=1)
    order = np.lexsort(packed.T[::-1])
    return packed[order], decomp.areas[order]


@pytest.mark.parametrize(
    ("widths", "seed", "bias_std", "slope"),
    [
        ([2, 40, 30, 20], 0, 0.3, 0.0),
        ([2, 64, 16, 48], 1, 0.05, 0.0),
        ([2, 24, 24, 8], 2, 0.3, 0.1),
    ],
)
def test_fast_paths_match_the_plain_descent(monkeypatch, widths, seed, bias_std, slope):
    """Sibling maps by rank-1 terms and splits by halves of a layer give the cells of
    the plain descent (every map a matrix product, every polygon clipped by all its
    candidate lines in one pass of rounds)."""
    net = random_relu_net(widths, seed=seed, bias_std=bias_std, negative_slope=slope)
    monkeypatch.setattr(cells_module, "_REP_DIFF_RATIO", 10**9)  # threshold 0: all products
    monkeypatch.setattr(cells_module, "_MAX_ROUNDS", 10**9)  # never split by halves
    plain = decompose_slice(net)
    monkeypatch.setattr(cells_module, "_REP_DIFF_RATIO", 1)  # every sibling by rank-1 terms
    monkeypatch.setattr(cells_module, "_MAX_ROUNDS", 1)  # halves wherever two lines meet a box
    fast = decompose_slice(net)
    assert fast.n_cells == plain.n_cells > 100
    (p_fast, a_fast), (p_plain, a_plain) = _cell_table(fast), _cell_table(plain)
    np.testing.assert_array_equal(p_fast, p_plain)
    np.testing.assert_allclose(a_fast, a_plain, rtol=1e-9, atol=1e-15)
    assert fast.n_affine_pieces == plain.n_affine_pieces
    _check_cells(fast, net)


@pytest.mark.slow
def test_bigger_net_cells_are_consistent():
    net = random_relu_net([2, 64, 64, 64], seed=0)
    decomp = decompose_slice(net)
    assert decomp.n_cells > 10_000
    _check_cells(decomp, net, atol=1e-8)
