"""AE-OT generation: the piecewise-linear extension, the pairwise rule and interpolation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from aeot.generate import AEOTSampler, GeneratedCodes, Interpolation, simplex_weights
from aeot.ot import BoxUniform, SemiDiscreteProblem, SemiDiscreteResult
from aeot.ot.exact2d import solve_exact_2d
from aeot.ot.montecarlo import solve_semidiscrete


def grid_mixture(n: int, seed: int, std: float = 0.05):
    rng = np.random.default_rng(seed)
    means = np.array([(a, b) for a in range(-4, 5, 2) for b in range(-4, 5, 2)], float)
    labels = rng.integers(0, 25, n)
    return means[labels] + std * rng.standard_normal((n, 2)), labels, means


def ring_mixture(n: int, seed: int, std: float = 0.01):
    rng = np.random.default_rng(seed)
    t = 2 * np.pi * np.arange(8) / 8
    means = np.stack([np.cos(t), np.sin(t)], 1)
    labels = rng.integers(0, 8, n)
    return means[labels] + std * rng.standard_normal((n, 2)), labels, means


def annulus(n: int, seed: int, inner: float = 0.5):
    """Uniform on {inner <= |x| <= 1}: one connected, non-convex support."""
    rng = np.random.default_rng(seed)
    t = rng.random(n) * 2 * np.pi
    r = np.sqrt(rng.uniform(inner**2, 1.0, n))
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


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
def grid_fit():
    y, labels, means = grid_mixture(400, seed=1)
    sampler = AEOTSampler().fit(solve(y), n_graph_samples=2**15, seed=0)
    return y, labels, means, 0.05, sampler


@pytest.fixture(scope="module")
def ring_fit():
    y, labels, means = ring_mixture(200, seed=2)
    sampler = AEOTSampler().fit(solve(y), n_graph_samples=2**15, seed=0)
    return y, labels, means, 0.01, sampler


@pytest.fixture(scope="module")
def annulus_fit():
    # the exact 2D solution: the singular set of the small-budget Monte-Carlo solve
    # (stopped unconverged, by its iteration cap or time limit) splits the ring into
    # one or two components depending on last-bit rounding and machine speed
    y = annulus(300, seed=3)
    box = BoxUniform(2, y.min(0).tolist(), y.max(0).tolist())
    result = solve_exact_2d(SemiDiscreteProblem(y, source=box), tol=1e-8)
    return y, AEOTSampler().fit(result, n_graph_samples=2**15, seed=0)


def _used_pairs(out: GeneratedCodes):
    """(row, cell_a, cell_b) for every pair of cells with positive weight in a code."""
    cells, w = out.cells, out.weights
    rows, a, b = [], [], []
    for i, j in itertools.combinations(range(cells.shape[1]), 2):
        both = (w[:, i] > 0) & (w[:, j] > 0)
        idx = torch.nonzero(both).flatten()
        rows.append(idx)
        a.append(cells[idx, i])
        b.append(cells[idx, j])
    return torch.cat(rows), torch.cat(a), torch.cat(b)


@pytest.mark.parametrize("case", ["grid_fit", "ring_fit"])
def test_codes_never_mix_across_singular_facets(case, request):
    y, labels, _, _, sampler = request.getfixturevalue(case)
    out = sampler.sample(4000, seed=1)
    assert isinstance(out, GeneratedCodes) and len(out) == 4000
    _, a, b = _used_pairs(out)
    assert a.numel() > 4000  # codes really are mixtures
    singular = sampler.singular_
    assert not bool(singular.is_singular(a, b).any())
    assert torch.equal(singular.components[a], singular.components[b])
    # ... hence never across modes
    assert (labels[a.numpy()] == labels[b.numpy()]).all()
    # weights: convex combinations reproducing the codes
    w = out.weights
    assert bool((w >= 0).all())
    assert torch.allclose(w.sum(1), torch.ones(4000, dtype=torch.float64))
    y64 = torch.as_tensor(y)
    recon = torch.einsum("mk,mkd->md", w, y64[out.cells.clamp_min(0)])
    assert torch.allclose(recon, out.codes.double(), atol=1e-10)
    # the winner (containing cell) shares the mode of every cell used
    assert torch.equal(out.winners, sampler.result_.assign(out.points))
    assert torch.equal(singular.components[out.winners], singular.components[out.cells[:, 0]])


@pytest.mark.parametrize("case", ["grid_fit", "ring_fit"])
def test_generated_points_stay_near_the_modes(case, request):
    _, _, means, std, sampler = request.getfixturevalue(case)
    z = sampler.sample(4000, seed=2).codes.numpy()
    dist = np.linalg.norm(z[:, None, :] - means[None], axis=2).min(1)
    assert (dist < 3 * std).mean() >= 0.95
    assert (dist < 6 * std).all()


def test_any_number_of_distinct_codes(ring_fit):
    y, _, _, _, sampler = ring_fit
    n = 3 * len(y)
    out = sampler.sample(n, seed=3)
    codes = out.codes.numpy()
    assert codes.shape == (n, 2)
    assert len(np.unique(codes, axis=0)) == n
    # new codes, not copies of training codes
    gap = np.linalg.norm(codes[:, None] - y[None], axis=2).min(1)
    assert (gap > 1e-9).mean() >= 0.99
    assert out.n_mixed.min() >= 1 and float(out.n_mixed.double().mean()) > 2


def test_sampling_is_reproducible(grid_fit):
    sampler = grid_fit[-1]
    a = sampler.sample(500, seed=7)
    b = sampler.sample(500, seed=7)
    c = sampler.sample(500, seed=8)
    assert torch.equal(a.codes, b.codes) and torch.equal(a.cells, b.cells)
    assert not torch.equal(a.codes, c.codes)
    d = sampler.sample(500, seed=7, qmc=False)
    assert torch.equal(d.codes, sampler.sample(500, seed=7, qmc=False).codes)
    # a refit with the same seeds gives the same sampler
    again = AEOTSampler().fit(sampler.result_, n_graph_samples=2**15, seed=0)
    assert torch.equal(again.sample(500, seed=7).codes, a.codes)


def test_codes_vary_continuously_inside_a_mode():
    rng = np.random.default_rng(5)
    y = rng.random((150, 2))
    sampler = AEOTSampler().fit(solve(y), n_graph_samples=2**14, seed=0)
    assert sampler.singular_pairs_.shape[0] == 0
    start = torch.tensor([0.1, 0.2], dtype=torch.float64)
    stop = torch.tensor([0.9, 0.7], dtype=torch.float64)

    def max_jump(a, b, m):
        t = torch.linspace(0, 1, m, dtype=torch.float64).unsqueeze(1)
        z = sampler.generate(a + t * (b - a)).codes
        dz = (z[1:] - z[:-1]).norm(dim=1)
        return dz, a + t * (b - a)

    dz, x = max_jump(start, stop, 4001)
    assert float(dz.max()) < 0.05  # << the code spacing (~0.08)
    # the largest jump shrinks with the step: no discontinuity
    i = int(dz.argmax())
    fine, _ = max_jump(x[i], x[i + 1], 1001)
    assert float(fine.max()) < float(dz.max()) / 20


def test_pairwise_reference_scheme(grid_fit):
    y, _, means, std, sampler = grid_fit
    out = sampler.sample(3000, seed=4, method="pairwise")
    assert out.method == "pairwise" and out.cells.shape == (3000, 2)
    mixed = out.weights[:, 1] > 0
    assert 0.2 < float(mixed.double().mean()) < 1.0
    assert torch.allclose(out.weights[mixed], torch.tensor([0.75, 0.25], dtype=torch.float64))
    a, b = out.cells[mixed, 0], out.cells[mixed, 1]
    assert not bool(sampler.singular_.is_singular(a, b).any())
    # the two best cells of each mixed point, as in the reference code
    _, top2 = sampler.result_.topk(out.points[mixed], 2)
    assert torch.equal(top2, out.cells[mixed])
    # unmixed points return their winner's code (the reference code drops them)
    winners = sampler.result_.assign(out.points[~mixed])
    assert torch.allclose(out.codes[~mixed], torch.as_tensor(y)[winners])
    z = out.codes.numpy()
    assert (np.linalg.norm(z[:, None] - means[None], axis=2).min(1) < 3 * std).mean() >= 0.95
    other = AEOTSampler(method="pairwise", pair_weight=0.5).fit(
        sampler.result_, graph=sampler.graph_
    )
    half = other.sample(100, seed=4)
    assert torch.allclose(
        half.weights[half.weights[:, 1] > 0], torch.tensor(0.5, dtype=torch.float64)
    )


def test_concave_support_codes_avoid_the_hole(annulus_fit):
    _, sampler = annulus_fit
    assert sampler.singular_.n_components - sampler.graph_.empty_cells.numel() == 1
    assert sampler.singular_pairs_.shape[0] > 0  # facets across the hole
    radius = sampler.sample(6000, seed=5).codes.norm(dim=1)
    assert float(radius.min()) > 0.45
    # ignoring the singular set fills the hole: detection is what keeps it empty
    naive = AEOTSampler().fit(sampler.result_, threshold=math.pi, graph=sampler.graph_)
    assert float(naive.sample(6000, seed=5).codes.norm(dim=1).min()) < 0.4


def test_interpolation_within_a_mode_and_across_modes(ring_fit):
    y, labels, means, std, sampler = ring_fit
    # two occupied cells of mode 0 in one non-singular component
    comp = sampler.singular_.components.numpy()
    occupied = sampler.graph_.cell_counts.numpy() > 0
    first = np.nonzero((labels == 0) & occupied)[0]
    first = first[comp[first] == np.bincount(comp[first]).argmax()]
    path = sampler.interpolate(int(first[0]), int(first[1]), steps=20)
    assert isinstance(path, Interpolation)
    assert path.codes.shape == (20, 2) and path.points.shape == (20, 2) and path.crossings == 0
    assert np.allclose(path.codes[0].numpy(), y[first[0]], atol=1e-3 * std)
    assert np.allclose(path.codes[-1].numpy(), y[first[1]], atol=1e-3 * std)
    assert (np.linalg.norm(path.codes.numpy() - means[0], axis=1) < 4 * std).all()
    # a source point as an endpoint
    point = sampler.graph_.centroids[int(first[2])].numpy()
    assert sampler.interpolate(point, int(first[1]), steps=5).codes.shape == (5, 2)
    other = int(np.nonzero(labels == 3)[0][0])
    with pytest.raises(ValueError, match="different non-singular components"):
        sampler.interpolate(int(first[0]), other)


def test_interpolation_routes_around_the_singular_set(annulus_fit):
    y, sampler = annulus_fit
    centroids = sampler.graph_.centroids
    t = torch.linspace(0, 1, 512, dtype=torch.float64).unsqueeze(1)
    found = None
    for i in range(0, len(y), 7):
        for j in range(i + 1, len(y), 11):
            if sampler.crossings(centroids[i] + t * (centroids[j] - centroids[i])) > 0:
                found = (i, j)
                break
        if found:
            break
    assert found is not None
    path = sampler.interpolate(*found, steps=60)
    assert path.routed and path.path[0] == found[0] and path.path[-1] == found[1]
    assert path.crossings == 0
    # consecutive cells of the detour share non-singular facets
    p = torch.tensor(path.path)
    assert bool((sampler.graph_.edge_ids(p[:-1], p[1:]) >= 0).all())
    assert not bool(sampler.singular_.is_singular(p[:-1], p[1:]).any())
    # a fine walk along the returned points crosses no singular facet either
    fine = torch.cat(
        [
            a + t[:64] * (b - a)
            for a, b in zip(path.points[:-1].double(), path.points[1:].double(), strict=True)
        ]
    )
    assert sampler.crossings(fine) == 0
    assert float(path.codes.norm(dim=1).min()) > 0.45


def test_singular_points_method(grid_fit):
    sampler = grid_fit[-1]
    x = sampler.result_.problem.source.sample(4096, seed=1, dtype=torch.float64)
    mask = sampler.singular_points(x)
    assert mask.shape == (4096,) and 0 < int(mask.sum()) < 4096
    wider = sampler.singular_points(x, tol=10 * sampler.graph_.eps)
    assert bool((wider | ~mask).all()) and int(wider.sum()) > int(mask.sum())


def test_simplex_weights_are_barycentric_inside_a_triangle():
    c = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    x = torch.tensor([[0.2, 0.3]], dtype=torch.float64)
    gates = torch.ones(1, 3, dtype=torch.float64)
    w = simplex_weights(x, c, gates, 1.0, smoothing=0.05)
    assert torch.allclose(w, torch.tensor([[0.5, 0.2, 0.3]], dtype=torch.float64), atol=1e-4)
    # outside: the nearest point of the triangle
    w = simplex_weights(torch.tensor([[2.0, -1.0]], dtype=torch.float64), c, gates, 1.0)
    assert torch.allclose(w, torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64), atol=1e-3)
    # a vanishing gate switches its cell off continuously
    for g in (1e-3, 1e-6):
        gates = torch.tensor([[1.0, 1.0, g]], dtype=torch.float64)
        w = simplex_weights(x, c, gates, 1.0, smoothing=0.05)
        assert float(w[0, 2]) < 30 * g**0.5
    gates = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64)
    assert float(simplex_weights(x, c, gates, 1.0)[0, 2]) == 0.0


def test_float32_codes_and_tiny_problems():
    rng = np.random.default_rng(0)
    y = rng.random((40, 3)).astype(np.float32)
    sampler = AEOTSampler().fit(solve(y), n_graph_samples=2**12, seed=0)
    out = sampler.sample(300, seed=0)
    assert out.codes.dtype == torch.float32 and out.codes.shape == (300, 3)
    assert out.cells.shape[1] == 4  # min(d + 1, 4)
    # one code: every sample is that code
    one = SemiDiscreteResult(
        problem=SemiDiscreteProblem(np.array([[0.5, 0.5]])),
        h=torch.zeros(1, dtype=torch.float64),
        cell_masses=torch.ones(1),
    )
    single = AEOTSampler().fit(one, n_graph_samples=64).sample(10, seed=0)
    assert torch.allclose(single.codes, torch.tensor([[0.5, 0.5]], dtype=torch.float64))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_the_device_of_the_targets():
    rng = np.random.default_rng(0)
    y = torch.as_tensor(rng.random((50, 2))).cuda()
    problem = SemiDiscreteProblem(y)
    result = SemiDiscreteResult(
        problem=problem, h=-0.5 * (y * y).sum(1).cpu(), cell_masses=torch.zeros(50)
    )
    out = AEOTSampler().fit(result, n_graph_samples=2**12).sample(100, seed=0)
    assert out.codes.device.type == "cuda" and out.cells.device.type == "cuda"


def test_bad_input(grid_fit):
    sampler = grid_fit[-1]
    with pytest.raises(NotFittedError, match="AEOTSampler is not fitted"):
        AEOTSampler().sample(10)
    for n in (0, -5):
        with pytest.raises(ValueError):
            sampler.sample(n)
    with pytest.raises(TypeError):
        sampler.sample(2.5)
    with pytest.raises(ValueError):
        sampler.sample(10, method="nearest")
    with pytest.raises(ValueError):
        sampler.generate(torch.zeros(4, 3))
    with pytest.raises(ValueError):
        sampler.generate(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError):
        sampler.interpolate(0, 10_000)
    with pytest.raises(ValueError):
        sampler.interpolate(0, 1, steps=1)
    with pytest.raises(ValueError):
        sampler.interpolate(np.zeros(3), 1)
    with pytest.raises(TypeError):
        sampler.fit("result")
    with pytest.raises(ValueError):
        AEOTSampler(n_cells=9)
    with pytest.raises(ValueError):
        AEOTSampler(smoothing=0.0)
    with pytest.raises(ValueError):
        AEOTSampler(gate_mix=1.0)
    with pytest.raises(ValueError):
        AEOTSampler(pair_weight=2.0)
    with pytest.raises(ValueError):
        AEOTSampler().fit(sampler.result_, threshold=float("nan"), graph=sampler.graph_)


# ---------------------------------------------------------------- spread


@pytest.fixture(scope="module")
def cloud_fit():
    """400 codes of 4 Gaussian clusters in d = 6 (the valley rule's regime)."""
    g = torch.Generator().manual_seed(3)
    centres = torch.randn(4, 6, generator=g) * 3
    y = centres[torch.arange(400) % 4] + 0.4 * torch.randn(400, 6, generator=g)
    y = y / y.abs().max() * 0.95
    result = solve_semidiscrete(
        SemiDiscreteProblem(y, source=BoxUniform(6, -1.0, 1.0)), tol=0.1, seed=0, time_limit=10.0
    )
    return result


def _median_nn(z: torch.Tensor, y: torch.Tensor) -> float:
    return float(torch.cdist(z.double(), y.double()).min(1).values.median())


def test_spread_zero_is_the_plain_extension(cloud_fit):
    plain = AEOTSampler().fit(cloud_fit, n_graph_samples=2**14, seed=0).sample(300, seed=2)
    zero = AEOTSampler(spread=0.0).fit(cloud_fit, n_graph_samples=2**14, seed=0)
    torch.testing.assert_close(zero.sample(300, seed=2).codes, plain.codes, rtol=0, atol=0)
    assert zero.spread_scale_ == 0.0


@pytest.mark.parametrize("tau", [0.8, 1.0])
def test_spread_places_codes_at_the_asked_distance(cloud_fit, tau):
    """Median distance to the nearest training code = τ × the codes' leave-one-out median
    (calibrated on one draw, checked on another)."""
    y = cloud_fit.targets.double()
    d = torch.cdist(y, y)
    d.fill_diagonal_(math.inf)
    fresh = float(d.min(1).values.median())
    sampler = AEOTSampler(spread=tau).fit(cloud_fit, n_graph_samples=2**14, seed=0)
    plain = _median_nn(
        AEOTSampler().fit(cloud_fit, n_graph_samples=2**14, seed=0).sample(4000, seed=9).codes, y
    )
    assert plain < 0.8 * fresh  # the PL codes sit closer to the training codes than fresh ones
    assert sampler.spread_scale_ > 0
    reached = _median_nn(sampler.sample(4000, seed=9).codes, y)
    assert reached == pytest.approx(tau * fresh, rel=0.08)


def test_calibrate_spread_takes_any_distance(cloud_fit):
    """calibrate_spread with the latent distance and the fresh median both scaled by 3
    finds fit's scale (the bisection sees the same comparisons) and reaches 3 × 0.9 ×
    the fresh median; a target of 0.9 × τ's (same units) needs a smaller scale."""
    y = cloud_fit.targets.double()
    sampler = AEOTSampler(spread=0.9).fit(cloud_fit, n_graph_samples=2**14, seed=0)
    latent_scale, fresh = sampler.spread_scale_, sampler.spread_report_["fresh_median_distance"]
    sampler.calibrate_spread(lambda z: 3.0 * torch.cdist(z, y).min(1).values, 3.0 * fresh, seed=0)
    assert sampler.spread_scale_ == pytest.approx(latent_scale, rel=1e-6)
    assert sampler.spread_report_["reached_median_distance"] == pytest.approx(2.7 * fresh, rel=1e-3)
    sampler.calibrate_spread(lambda z: torch.cdist(z, y).min(1).values, 0.9 * fresh, seed=0)
    assert 0 < sampler.spread_scale_ < latent_scale
    with pytest.raises(ValueError, match="fresh_median"):
        sampler.calibrate_spread(lambda z: z[:, 0], 0.0)
    pm = AEOTSampler(spread=0.9, method="pairwise").fit(cloud_fit, n_graph_samples=2**14, seed=0)
    with pytest.raises(ValueError, match="'pl' only"):
        pm.calibrate_spread(lambda z: z[:, 0], 1.0)


def test_spread_mixes_only_mutually_non_singular_codes(cloud_fit):
    """z' − z is an affine-zero combination (Σ c_k = 0) of the spread neighbours K(z);
    K(z) holds the accepted cells and no two of its codes are singular to each other
    (nor to the winner), so z' never mixes across the singular set. Four neighbours in
    d = 6 leave the step a 3-dimensional subspace to stay in."""
    sampler = AEOTSampler(spread=1.0, spread_neighbours=4)
    sampler.fit(cloud_fit, n_graph_samples=2**14, seed=0)
    out = sampler.sample(500, seed=4)
    plain = sampler.generate(out.points, spread=False)
    y = cloud_fit.targets.double()
    singular = sampler.singular_
    assert out.neighbours is not None and plain.neighbours is None
    assert out.neighbours.shape == (500, 4)
    sizes = []
    for z, base, cells, near, winner in zip(
        out.codes.double(),
        plain.codes.double(),
        out.cells,
        out.neighbours,
        out.winners,
        strict=True,
    ):
        near = near[near >= 0]
        sizes.append(len(near))
        assert set(cells[cells >= 0].tolist()) <= set(near.tolist())
        a, b = torch.triu_indices(len(near), len(near), 1)
        assert not bool(singular.is_singular(near[a], near[b]).any())
        assert not bool(singular.is_singular(winner, near).any())
        basis = (y[near[1:]] - y[near[0]]).T  # (d, |K| − 1): directions with Σ c_k = 0
        step = (z - base)[:, None]
        coef = torch.linalg.lstsq(basis, step).solution
        assert float((basis @ coef - step).norm()) < 1e-6 * max(1.0, float(step.norm()))
    assert min(sizes) >= 2 and max(sizes) == 4


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_spread_rank_steps_along_the_principal_directions(cloud_fit, rank):
    """With spread_rank r the step is s Σ_{j≤r} ξ_j S_j v_j / sqrt(|K|), deviations of K(z)
    from their mean = U S Vᵀ (recomputed here with numpy): it has no component outside the
    top r right singular vectors (up to the float32 rounding of the codes), and its
    coefficient on v_j divided by s S_j / sqrt(|K|) is a standard normal across codes."""
    sampler = AEOTSampler(spread=1.0, spread_neighbours=8, spread_rank=rank)
    sampler.fit(cloud_fit, n_graph_samples=2**14, seed=0)
    out = sampler.sample(1500, seed=4)
    plain = sampler.generate(out.points, spread=False)
    y = cloud_fit.targets.double().numpy()
    scale = sampler.spread_scale_
    assert scale > 0
    coefs = []
    for z, base, near in zip(
        out.codes.double().numpy(),
        plain.codes.double().numpy(),
        out.neighbours.numpy(),
        strict=True,
    ):
        near = near[near >= 0]
        if len(near) <= rank:
            continue
        dev = y[near] - y[near].mean(0)
        _, sing, vh = np.linalg.svd(dev, full_matrices=False)
        step = z - base
        top = vh[:rank]
        # codes are float32: z and base each carry rounding of about 6e-8 |z|
        assert np.linalg.norm(step - top.T @ (top @ step)) < 1e-6 * (1.0 + np.linalg.norm(z))
        coefs.append((top @ step) / (scale * sing[:rank] / np.sqrt(len(near))))
    coefs = np.array(coefs)
    assert len(coefs) > 1000
    assert np.abs(coefs.mean(0)).max() < 0.1
    assert np.abs(coefs.var(0) - 1.0).max() < 0.12


def test_spread_rank_at_full_dimension_is_the_full_covariance(cloud_fit):
    """r ≥ min(|K|, d) keeps every direction: the plain local-covariance step (rank None)."""
    full = AEOTSampler(spread=1.0, spread_neighbours=4, spread_rank=None)
    top = AEOTSampler(spread=1.0, spread_neighbours=4, spread_rank=4)
    codes = [
        s.fit(cloud_fit, n_graph_samples=2**14, seed=0).sample(300, seed=2).codes
        for s in (full, top)
    ]
    torch.testing.assert_close(codes[0], codes[1], rtol=0, atol=0)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "2"])
def test_spread_rank_bad_values(bad):
    with pytest.raises((ValueError, TypeError), match="spread_rank"):
        AEOTSampler(spread=0.8, spread_rank=bad)


def test_spread_chunks_equal_one_draw(cloud_fit):
    sampler = AEOTSampler(spread=1.0).fit(cloud_fit, n_graph_samples=2**14, seed=0)
    whole = sampler.sample(5000, seed=6).codes
    parts = torch.cat([c.codes for c in sampler.sample_chunks(5000, seed=6, chunk=1234)])
    torch.testing.assert_close(parts, whole, rtol=0, atol=0)
    assert not torch.equal(sampler.sample(5000, seed=7).codes, whole)


@pytest.mark.parametrize("bad", [-0.1, 4.5, math.nan, math.inf, True, "1", None])
def test_spread_bad_values(bad):
    with pytest.raises(ValueError, match="spread"):
        AEOTSampler(spread=bad)


@pytest.mark.parametrize("bad", [0, 1, -3, 2.5, True])
def test_spread_neighbours_bad_values(bad):
    with pytest.raises((ValueError, TypeError), match="spread_neighbours"):
        AEOTSampler(spread=0.8, spread_neighbours=bad)


def test_samples_are_not_the_fit_s_own_source_points(cloud_fit):
    """sample(n, seed) draws a stream apart from the graph's samples of the same seed.

    The graph's samples set the cells' centroids, so drawing them back (as sample(n,
    seed=0) did for a sampler fitted with seed 0) puts codes nearer the training codes
    than fresh points do (in-sample); sample's points are as far as any independent draw.
    """
    y = cloud_fit.targets.double()
    box = cloud_fit.problem.source
    sampler = AEOTSampler(spread=0.0).fit(cloud_fit, n_graph_samples=2048, seed=0)
    graph_points = box.sample(2048, seed=0, dtype=torch.float64)
    out = sampler.sample(2048, seed=0)
    assert not torch.isclose(out.points[:, None].double(), graph_points[None]).all(2).any()

    def median_gap(codes):
        return float(torch.cdist(codes.double(), y).min(1).values.median())

    fresh = [median_gap(sampler.generate(box.sample(2048, seed=s)).codes) for s in (101, 102)]
    replayed = median_gap(sampler.generate(graph_points).codes)
    assert replayed < 0.92 * min(fresh)  # the in-sample case the generation seed avoids
    assert 0.95 * min(fresh) < median_gap(out.codes) < 1.05 * max(fresh)
