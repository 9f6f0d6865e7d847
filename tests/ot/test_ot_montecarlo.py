"""The Monte-Carlo semi-discrete solver against closed-form answers."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from aeot.ot import (
    BoxUniform,
    CallableSource,
    Gaussian,
    MonteCarloSettings,
    SemiDiscreteProblem,
    energy,
    energy_gradient,
    noise_floor,
    solve_semidiscrete,
)
from aeot.ot.kernels import ScoreKernel


def _one_d_boundaries(result, lo, hi, n=200_001):
    """Points where the assigned cell changes along [lo, hi] (1-D problems)."""
    t = torch.linspace(lo, hi, n, dtype=torch.float64)[:, None]
    cells = result.assign(t.float()).cpu().numpy()
    change = np.nonzero(np.diff(cells))[0]
    return t[change, 0].numpy(), cells


def test_gaussian_source_quantiles():
    """A Gaussian source in 1-D: boundaries at Φ⁻¹ of the cumulative weights."""
    y = np.array([[-2.0], [0.0], [1.0], [3.0]])
    nu = np.array([0.1, 0.4, 0.3, 0.2])
    problem = SemiDiscreteProblem(y, nu, source=Gaussian(1))
    result = solve_semidiscrete(problem, tol=4e-3, seed=0, batch_size=2**14)
    assert result.converged
    boundaries, _ = _one_d_boundaries(result, -5.0, 5.0)
    np.testing.assert_allclose(boundaries, norm.ppf(np.cumsum(nu)[:-1]), atol=0.03)


@pytest.mark.parametrize("method", ["pool", "jacobi", "newton", "adam", "nesterov"])
def test_methods_reach_tolerance(method):
    torch.manual_seed(0)
    y = torch.rand(50, 3)
    problem = SemiDiscreteProblem(y)
    result = solve_semidiscrete(problem, method=method, tol=0.03, seed=0, max_iter=3000)
    assert result.converged, (method, result.errors[-5:])
    assert result.method == f"monte-carlo-{method}"
    # the error is confirmed on fresh i.i.d. samples (noise ≈ 0.8·sqrt(N/n) ≈ 0.006)
    assert result.l1_error(2**18, seed=11) < 0.04


def test_error_history_measured_on_fresh_samples():
    problem = SemiDiscreteProblem(torch.rand(30, 2))
    seen = []
    result = solve_semidiscrete(
        problem, tol=0.02, seed=0, callback=lambda info: seen.append(info.error)
    )
    assert seen == result.errors
    assert result.errors[-1] <= 0.02 < result.errors[0]
    assert result.n_samples >= 2**14 * len(result.errors)


def test_callback_can_stop():
    problem = SemiDiscreteProblem(torch.rand(30, 2))
    result = solve_semidiscrete(
        problem, tol=1e-6, seed=0, callback=lambda info: info.iteration >= 3
    )
    assert result.n_iter == 3 and not result.converged


def test_energy_gradient_matches_autograd():
    """The hand-written gradient (cell frequencies − ν) equals autograd of the sampled energy."""
    torch.manual_seed(0)
    y = torch.randn(40, 4, dtype=torch.float64)
    nu = torch.rand(40, dtype=torch.float64)
    problem = SemiDiscreteProblem(y, nu / nu.sum(), source=Gaussian(4))
    x = problem.source.sample(5000, seed=1, dtype=torch.float64)
    h = torch.randn(40, dtype=torch.float64, requires_grad=True)
    energy(problem, h, x).backward()
    torch.testing.assert_close(h.grad, energy_gradient(problem, h.detach(), x), atol=1e-12, rtol=0)


def test_energy_is_convex_along_lines():
    torch.manual_seed(1)
    problem = SemiDiscreteProblem(torch.randn(20, 3, dtype=torch.float64), source=Gaussian(3))
    x = problem.source.sample(4000, seed=2, dtype=torch.float64)
    a, b = torch.randn(20, dtype=torch.float64), torch.randn(20, dtype=torch.float64)
    values = [float(energy(problem, (1 - t) * a + t * b, x)) for t in np.linspace(0, 1, 11)]
    assert all(values[i - 1] + values[i + 1] >= 2 * values[i] - 1e-12 for i in range(1, 10))


def test_adding_a_constant_to_h0_changes_nothing():
    y = torch.rand(40, 3, dtype=torch.float64)
    problem = SemiDiscreteProblem(y)
    h0 = -0.5 * (y**2).sum(1)
    settings = MonteCarloSettings(tol=0.02, seed=3, dtype=torch.float64)
    first = solve_semidiscrete(problem, settings, h0=h0)
    second = solve_semidiscrete(problem, settings, h0=h0 + 7.25)
    torch.testing.assert_close(first.h, second.h, atol=1e-9, rtol=0)
    assert first.errors == second.errors


def test_result_queries():
    y = torch.tensor([[0.25, 0.5], [0.75, 0.5]])
    result = solve_semidiscrete(SemiDiscreteProblem(y), tol=0.01, seed=0)
    x = torch.tensor([[0.1, 0.5], [0.9, 0.2]])
    assert result.assign(x).tolist() == [0, 1]
    torch.testing.assert_close(result.transport(x), y[[0, 1]])
    values, cells = result.topk(x, 2)
    assert cells.tolist() == [[0, 1], [1, 0]]
    torch.testing.assert_close(result.potential(x), values[:, 0])
    # the bisector x₀ = ½ splits the square in half: h₀ − h₁ = (|y₁|² − |y₀|²)/2 = 0.25
    assert abs(float(result.h[0] - result.h[1]) - 0.25) < 0.02
    with pytest.raises(ValueError, match="shape"):
        result.assign(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="NaN"):
        result.assign(torch.tensor([[float("nan"), 0.0]]))


def test_float64_and_pseudo_random():
    problem = SemiDiscreteProblem(torch.rand(20, 2))
    result = solve_semidiscrete(problem, tol=0.03, seed=0, qmc=False, dtype=torch.float64)
    assert result.converged


def test_callable_source():
    def sampler(n, generator):
        return torch.rand(n, 2, generator=generator) * 2 - 1

    problem = SemiDiscreteProblem(torch.randn(10, 2), source=CallableSource(sampler, 2))
    result = solve_semidiscrete(problem, tol=0.03, seed=0)
    assert result.converged


def test_targets_outside_the_box_get_cells():
    """Far targets start with empty cells; the solver must still give each its mass."""
    torch.manual_seed(0)
    y = torch.cat([torch.rand(20, 2), torch.tensor([[5.0, 5.0], [-3.0, 0.5]])])
    result = solve_semidiscrete(SemiDiscreteProblem(y), tol=0.03, seed=0)
    assert result.converged
    assert float(result.cell_masses.min()) > 0


def test_noise_floor_formula():
    nu = torch.full((100,), 0.01, dtype=torch.float64)
    expected = math.sqrt(2 / math.pi) * 100 * math.sqrt(0.01 * 0.99 / 10_000)
    assert noise_floor(nu, 10_000) == pytest.approx(expected)


def test_kernel_matches_dense_argmax():
    torch.manual_seed(0)
    for n_targets, dim in [(1, 3), (63, 2), (65, 5), (1000, 8)]:
        y, h, x = torch.randn(n_targets, dim), torch.randn(n_targets), torch.randn(3000, dim)
        kernel = ScoreKernel(y, chunk=256)
        scores = x @ y.t() + h
        cells, best = kernel.argmax(x, h)
        assert torch.equal(cells, scores.argmax(1))
        torch.testing.assert_close(best, scores.amax(1))
        _, top = kernel.topk(x, h, 2)
        k = min(2, n_targets)
        assert torch.equal(top[:, :k], scores.topk(k, 1).indices)


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize(("n_targets", "block"), [(1000, 7), (1000, 256), (65, 64), (3, 1)])
def test_streamed_target_blocks_match_dense(monkeypatch, native, n_targets, block):
    """Targets streamed in blocks give the one-block answer, ties to the lowest index."""
    torch.manual_seed(1)
    y = torch.randn(n_targets, 4)
    y[n_targets // 2] = y[1]  # the same scores in two blocks: the lower index must win
    h = torch.randn(n_targets)
    h[n_targets // 2] = h[1]
    x = torch.randn(999, 4)
    kernel = ScoreKernel(y, chunk=128, block=block)
    if not native:
        monkeypatch.setattr(kernel, "native", False)
    assert kernel.block == block and kernel._buffer.numel() == 128 * block
    scores = x @ y.t() + h
    cells, best = kernel.argmax(x, h)
    assert torch.equal(cells, scores.argmax(1))  # torch's argmax returns the first maximum
    assert not bool((cells == n_targets // 2).any()) or n_targets // 2 == 1
    torch.testing.assert_close(best, scores.amax(1))
    for k in (1, 2, 5):
        values, top = kernel.topk(x, h, k)
        kk = min(k, n_targets)
        torch.testing.assert_close(values[:, :kk], scores.topk(kk, 1).values)
        assert torch.equal(values[:, :kk].gather(1, torch.zeros_like(top[:, :1])), best[:, None])
        assert (top[:, kk:] == -1).all() and torch.isinf(values[:, kk:]).all()
        picked = scores.gather(1, top[:, :kk])
        torch.testing.assert_close(picked, values[:, :kk])


def test_default_block_bounds_the_buffer():
    from aeot.ot.kernels import default_block, default_chunk

    for n in (10, 100_000, 10**6, 10**7):
        chunk = default_chunk(n)
        block = default_block(n, chunk)
        assert chunk * min(block, n) * 4 <= 2**25 or block == 1024
        assert (block >= n) == (64 * n * 4 <= 2**25)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"targets": [[0.0, float("nan")]]}, ValueError, "NaN"),
        ({"targets": [0.1, 0.2]}, ValueError, "2 dimensions"),
        ({"targets": np.zeros((0, 2))}, ValueError, "empty"),
        (
            {"targets": [[0.1, 0.2], [0.3, 0.4], [0.1, 0.2]]},
            ValueError,
            "duplicate targets at rows \\[0, 2\\]",
        ),
        ({"targets": [[0.1, 0.2], [0.3, 0.4]], "weights": [0.5, 0.6]}, ValueError, "sum to 1"),
        ({"targets": [[0.1, 0.2], [0.3, 0.4]], "weights": [1.0, 0.0]}, ValueError, "positive"),
        ({"targets": [[0.1, 0.2], [0.3, 0.4]], "weights": [1.0]}, ValueError, "1 entries"),
        ({"targets": [[0.1, 0.2]], "source": BoxUniform(3)}, ValueError, "dimension 3"),
        ({"targets": [["a", "b"]]}, TypeError, "real numbers"),
        ({"targets": [[0.1, 0.2]], "source": "box"}, TypeError, "Source"),
    ],
)
def test_bad_problems(kwargs, error, match):
    with pytest.raises(error, match=match):
        SemiDiscreteProblem(**kwargs)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"method": "sgd"}, "method"),
        ({"tol": 0.0}, "tol"),
        ({"batch_size": 0}, "batch_size"),
        ({"dtype": torch.float16}, "dtype"),
        ({"growth": 1.0}, "growth"),
        ({"device": "cuda:7" if not torch.cuda.is_available() else "nope"}, "device"),
    ],
)
def test_bad_settings(override, match):
    with pytest.raises(ValueError, match=match):
        solve_semidiscrete(SemiDiscreteProblem(torch.rand(5, 2)), **override)


def test_bad_h0():
    problem = SemiDiscreteProblem(torch.rand(5, 2))
    with pytest.raises(ValueError, match="h0 has 3 entries"):
        solve_semidiscrete(problem, h0=torch.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        solve_semidiscrete(problem, h0=torch.full((5,), float("nan")))


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "torch"])
def test_lift_empty_cells_matches_its_definition(fused, monkeypatch):
    """h_i = min_x (u_h(x) − <x, y_i>) + 1e-3 std_x(...): each lifted cell then wins its
    most favourable sample; lifting a subset of the cells gives those heights bit for bit."""
    from aeot.ot import _native
    from aeot.ot.montecarlo import _LIFT_ROWS, lift_empty_cells

    if fused and not _native.fused_available():
        pytest.skip("fused kernels need AVX2/FMA and a C compiler")
    if not fused:
        monkeypatch.setattr(_native, "fused_available", lambda: False)
    gen = torch.Generator().manual_seed(8)
    n, d, m = 700, 5, _LIFT_ROWS + 1234  # two row blocks, three blocks of 256 cells
    y = torch.randn(n, d, generator=gen)
    x = torch.rand(m, d, generator=gen)
    h = torch.randn(n, generator=gen)
    best = (x @ y.t() + h).amax(1)
    empty = torch.rand(n, generator=gen) < 0.9
    lifted = h.clone()
    lift_empty_cells(lifted, empty, x, y, best)
    gap = best.double()[:, None] - x.double() @ y.double()[empty].t()
    expected = gap.amin(0) + 1e-3 * gap.std(0, unbiased=False)
    torch.testing.assert_close(lifted[empty].double(), expected, rtol=0, atol=1e-5)
    assert torch.equal(lifted[~empty], h[~empty])
    # each lifted cell now beats u_h at its argmin sample
    at = gap.argmin(0)
    score = (x[at].double() * y[empty].double()).sum(1) + lifted[empty].double()
    assert bool((score > best.double()[at]).all())
    # a subset (e.g. one rank's shard) gets the same bits
    part = empty.clone()
    part[: n // 2] = False
    sub = h.clone()
    lift_empty_cells(sub, part, x, y, best)
    assert torch.equal(sub[part], lifted[part])
    # so do the cells in another order (other neighbours in each block of targets)
    perm = torch.randperm(n, generator=gen)
    shuffled = h[perm].clone()
    lift_empty_cells(shuffled, empty[perm], x, y[perm], best)
    assert torch.equal(shuffled, lifted[perm])
