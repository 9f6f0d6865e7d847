"""The density-valley rule for latent codes, and the PL extension never mixing across it."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import torch

from aeot.generate import (
    AEOTSampler,
    ValleyIndex,
    detect_singular,
    estimate_cell_graph,
    singular_points,
    valley_ratios,
)
from aeot.ot import BoxUniform, SemiDiscreteProblem, SemiDiscreteResult
from aeot.ot.montecarlo import solve_semidiscrete

DIM = 10


def clusters(n: int, seed: int, k: int = 8, dim: int = DIM):
    """k Gaussians in ``dim`` dimensions with spreads 0.5-1 and centres N(0, 16 I)."""
    rng = np.random.default_rng(seed)
    centres = 4.0 * rng.standard_normal((k, dim))
    spread = rng.uniform(0.5, 1.0, k)
    labels = rng.integers(0, k, n)
    return centres[labels] + spread[labels, None] * rng.standard_normal((n, dim)), labels


def solve(points: np.ndarray) -> SemiDiscreteResult:
    """OT from the uniform cube to the codes rescaled into it, as AE-OT does (small budget)."""
    low, high = points.min(0), points.max(0)
    codes = (points - (low + high) / 2) / ((high - low) / 2 * 1.02)
    problem = SemiDiscreteProblem(codes, source=BoxUniform(points.shape[1], -1.0, 1.0))
    with warnings.catch_warnings():  # stopping before tol is fine here
        warnings.simplefilter("ignore", RuntimeWarning)
        return solve_semidiscrete(problem, tol=0.05, seed=0, max_iter=30)


@pytest.fixture(scope="module")
def cluster_fit():
    y, labels = clusters(600, seed=3)
    result = solve(y)
    sampler = AEOTSampler().fit(result, n_graph_samples=2**15, seed=0)
    return labels, sampler


def _inter(labels, pairs):
    p = pairs.cpu().numpy()
    return labels[p[:, 0]] != labels[p[:, 1]]


def test_valley_rule_flags_the_facets_between_clusters(cluster_fit):
    labels, sampler = cluster_fit
    found, graph = sampler.singular_, sampler.graph_
    assert found.rule == "valley"
    assert found.threshold == pytest.approx(2 ** (1 / DIM))
    inter = _inter(labels, graph.pairs)
    flagged = found.singular.cpu().numpy()
    assert inter.sum() > 50 and (~inter).sum() > 200
    precision = (flagged & inter).sum() / flagged.sum()
    recall = (flagged & inter).sum() / inter.sum()
    assert precision == 1.0 and recall >= 0.98, (precision, recall)
    # the angle rule's threshold (no gap here: 5 x median) misses most of them
    angle = detect_singular(graph, sampler.result_.targets, rule="angle")
    assert angle.rule == "median"
    assert angle.singular.cpu().numpy()[inter].mean() < recall
    # adjacent pairs answer as flagged; the stored ratios are the exact ones
    p = graph.pairs
    assert torch.equal(found.is_singular(p[:, 0], p[:, 1]), found.singular)
    assert torch.allclose(found.valley, valley_ratios(sampler.result_.targets, p))


def test_pl_extension_never_mixes_across_a_flagged_facet(cluster_fit):
    labels, sampler = cluster_fit
    found, graph = sampler.singular_, sampler.graph_
    n = 4000
    out = sampler.sample(n, seed=1)
    cells, w = out.cells, out.weights
    used = w > 0
    assert bool(used.any(1).all())
    a_all, b_all = [], []
    for i, j in itertools.combinations(range(cells.shape[1]), 2):
        both = used[:, i] & used[:, j]
        a_all.append(cells[both, i])
        b_all.append(cells[both, j])
    a, b = torch.cat(a_all), torch.cat(b_all)
    assert a.numel() > n // 2  # many codes really are mixtures
    # no two cells of a code form a flagged adjacent pair ...
    edge = graph.edge_ids(a, b)
    adjacent = edge >= 0
    assert adjacent.sum() > 100
    assert not bool(found.singular[edge[adjacent]].any())
    # ... nor any other singular pair, and none is singular to the winner (the valley
    # rule tests mode-mates pairwise: the sampled graph's components are not used)
    assert not bool(found.is_singular(a, b).any())
    on = cells >= 0
    winners = out.winners.unsqueeze(1).expand_as(cells)
    assert not bool(found.is_singular(winners[on], cells[on]).any())
    assert (labels[winners[on].numpy()] == labels[cells[on].numpy()]).all()
    # a component large enough to supply the 16 candidates restricts them
    comp = found.components
    big = (torch.bincount(comp)[comp[out.winners]] > 16).unsqueeze(1) & on
    assert big.sum() > n
    assert torch.equal(comp[cells[big]], comp[winners[big]])
    # hence a code mixes codes of one cluster only
    assert (labels[a.numpy()] == labels[b.numpy()]).all()
    # convex combinations reproducing the codes
    assert bool((w >= 0).all())
    assert torch.allclose(w.sum(1), torch.ones(n, dtype=torch.float64))
    y64 = sampler.result_.targets.double()
    recon = torch.einsum("mk,mkd->md", w, y64[cells.clamp_min(0)])
    assert torch.allclose(recon, out.codes.double(), atol=1e-6)
    # the reference code's pairwise rule never mixes a singular pair either
    pair = sampler.sample(2000, seed=2, method="pairwise")
    mixed = pair.weights[:, 1] > 0
    assert 0 < int(mixed.sum()) < 2000
    assert not bool(found.is_singular(pair.cells[mixed, 0], pair.cells[mixed, 1]).any())
    assert (labels[pair.cells[mixed, 0].numpy()] == labels[pair.cells[mixed, 1].numpy()]).all()


def test_walk_passes_over_a_singular_candidate():
    """Candidates A, B, C by distance with (A, B) singular: A and C are mixed, B skipped,
    and the walk stops only at the candidate beyond n_cells (its distance is D_ref)."""
    from aeot.generate import select_cells

    class Pairs:  # A = 0, B = 1 singular; every other pair not
        def pairwise(self, cells):
            a, b = cells.unsqueeze(2), cells.unsqueeze(1)
            return ((a == 0) & (b == 1)) | ((a == 1) & (b == 0))

    dist = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]], dtype=torch.float64)
    cells = torch.tensor([[0, 1, 2, 3, 4]])
    comp = torch.zeros(5, dtype=torch.long)
    kept, gates = select_cells(dist, cells, comp[:1], comp, None, None, 2, singular=Pairs())
    assert kept.tolist() == [[0, 2]]
    # D_ref = 4 (cell 3, the first beyond n_cells = 2): g = (4 - 3) / (4 - 1)
    assert torch.allclose(gates, torch.tensor([[1.0, 1.0 / 3.0]], dtype=torch.float64))


def test_few_codes_repeat_a_training_code(cluster_fit):
    """A singular candidate is passed over, not the end of the walk: nearly every code
    mixes several cells (stopping at it left many codes a single training code)."""
    _, sampler = cluster_fit
    out = sampler.sample(4000, seed=5)
    single = float(((out.weights > 0).sum(1) == 1).double().mean())
    assert single < 0.05, single


def test_one_gaussian_has_no_valley():
    rng = np.random.default_rng(7)
    result = solve(rng.standard_normal((500, DIM)))
    graph = estimate_cell_graph(result, 2**15, seed=0)
    found = detect_singular(graph, result.targets)
    assert found.rule == "valley"
    assert int(found.singular.sum()) == 0
    assert float(found.valley.max()) < found.threshold


def test_valley_ratios_by_brute_force_and_invariance():
    rng = np.random.default_rng(1)
    y = rng.standard_normal((60, 5))
    pairs = np.array([[0, 1], [2, 40], [5, 5], [59, 3]])
    k = 4
    d = np.linalg.norm(y[:, None] - y[None], axis=2)
    np.fill_diagonal(d, np.inf)
    spacing = np.sort(d, 1)[:, :k].mean(1)
    expect = []
    for i, j in pairs:
        mid = (y[i] + y[j]) / 2
        at_mid = np.sort(np.linalg.norm(y - mid, axis=1))[:k].mean()
        expect.append(0.0 if i == j else at_mid / math.sqrt(spacing[i] * spacing[j]))
    got = valley_ratios(y, pairs, neighbours=k)
    assert np.allclose(got.numpy(), expect, rtol=1e-9)
    # translating, rotating and uniformly scaling the codes changes nothing
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    moved = 37.0 * y @ q + rng.standard_normal(5) * 100
    assert np.allclose(valley_ratios(moved, pairs, neighbours=k).numpy(), expect, rtol=1e-7)
    with pytest.raises(ValueError):
        valley_ratios(y, [[0, 60]])
    with pytest.raises(ValueError):
        valley_ratios(y, [0, 1])
    with pytest.raises(ValueError):
        valley_ratios(y, pairs, neighbours=0)


def test_valley_index_errs_towards_singular():
    y, _ = clusters(300, seed=5, dim=8)
    index = ValleyIndex.build(y, 10, 1.1, lists=16)
    rng = np.random.default_rng(2)
    pairs = rng.integers(0, 300, (2000, 2))
    exact = index.exact(pairs)
    approx = index.ratios(pairs[:, 0], pairs[:, 1])
    assert bool((approx >= exact - 1e-12).all())
    assert float((approx > exact + 1e-9).double().mean()) > 0  # the lists do cut
    full = ValleyIndex.build(y, 10, 1.1, lists=299)
    assert torch.allclose(full.ratios(pairs[:, 0], pairs[:, 1]), exact, rtol=1e-9)
    same = pairs[:, 0] == pairs[:, 1]
    assert same.any() and float(approx[torch.as_tensor(same)].abs().max()) == 0.0


def test_flags_are_invariant_to_similarity_transforms(cluster_fit):
    _, sampler = cluster_fit
    result, graph = sampler.result_, sampler.graph_
    reference = sampler.singular_
    y = result.targets.double().numpy()
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    for scale, shift in ((5.0, 3.0), (0.01, -0.2)):
        moved = detect_singular(graph, scale * y @ q + shift)
        assert moved.rule == "valley"
        assert torch.equal(moved.singular, reference.singular)


def test_rule_option_and_errors(cluster_fit):
    _, sampler = cluster_fit
    result, graph = sampler.result_, sampler.graph_
    y = result.targets
    given = detect_singular(graph, y, threshold=0.5, rule="valley")
    assert given.rule == "given" and given.valley is None and given.by_angle
    assert detect_singular(graph, y, rule="angle").by_angle
    strict = detect_singular(graph, y, rule="valley", density_ratio=0.01)
    assert strict.threshold == pytest.approx(100 ** (1 / DIM))
    assert int(strict.singular.sum()) <= int(sampler.singular_.singular.sum())
    for bad in ({"rule": "gap"}, {"density_ratio": 1.0}, {"density_ratio": 0}):
        with pytest.raises(ValueError):
            detect_singular(graph, y, **bad)
    with pytest.raises(ValueError):
        AEOTSampler().fit(result, graph=graph, rule="nope")
    # "valley" can be asked for in the plane too
    rng = np.random.default_rng(0)
    plane = solve(rng.random((80, 2)))
    plane_graph = estimate_cell_graph(plane, 2**13, seed=0)
    assert detect_singular(plane_graph, plane.targets).rule in ("gap", "median")
    assert detect_singular(plane_graph, plane.targets, rule="valley").rule == "valley"


def test_singular_points_between_clusters(cluster_fit):
    labels, sampler = cluster_fit
    result = sampler.result_
    x = result.problem.source.sample(2**13, seed=9, dtype=result.targets.dtype)
    mask = singular_points(result, x, graph=sampler.graph_, singular=sampler.singular_)
    assert int(mask.sum()) > 10
    _, cells = result.topk(x[mask], 2)
    assert (labels[cells[:, 0].numpy()] != labels[cells[:, 1].numpy()]).mean() >= 0.99
    assert torch.equal(sampler.singular_points(x), mask)
