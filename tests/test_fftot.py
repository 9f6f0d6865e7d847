"""FFT-OT against closed forms: separable densities (the map is the product of 1D
quantile maps), the identity, mass conservation of the pushed-forward samples, and the
exact 2D semi-discrete solver on a fine grid of Diracs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import torch

from aeot.ot import BoxUniform, SemiDiscreteProblem, fftot, solve_fftot
from aeot.ot.exact2d import solve_exact_2d
from aeot.ot.fftot import cell_centres, cosine_transform, dct2, idct2


def _axis(n: int) -> torch.Tensor:
    return (torch.arange(n, dtype=torch.float64) + 0.5) / n


def _cosine_density(a: float, k: int, t):
    """1 + a cos(kπt) on [0, 1] (mean 1) and its CDF t + a sin(kπt) / (kπ)."""
    return 1 + a * torch.cos(k * math.pi * t), lambda s: s + a * np.sin(k * np.pi * s) / (k * np.pi)


def _quantile_map(cdf_source, cdf_target, t: np.ndarray) -> np.ndarray:
    """G⁻¹ ∘ F, the 1D optimal map, by inverting the target CDF on a fine grid."""
    fine = np.linspace(0.0, 1.0, 400_001)
    return np.interp(cdf_source(t), cdf_target(fine), fine)


@pytest.mark.parametrize("n", [7, 8, 33])
def test_dct_pair_matches_scipy_and_inverts(n):
    x = torch.randn(3, n, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    reference = torch.from_numpy(scipy.fft.dct(x.numpy(), type=2, axis=1)) / 2
    assert torch.allclose(dct2(x, 1), reference, atol=1e-12)
    assert torch.allclose(idct2(dct2(x, 1), 1), x, atol=1e-12)
    # the device-independent path and the CPU (scipy) path agree up to their scale 2^d
    grid = torch.randn(n, n + 3, dtype=torch.float64)
    torch_path = dct2(dct2(grid, 0), 1)
    assert torch.allclose(cosine_transform(grid), 4 * torch_path, atol=1e-10)
    assert torch.allclose(cosine_transform(cosine_transform(grid), inverse=True), grid)


def test_neumann_laplacian_is_diagonal_in_the_cosine_basis():
    """The mirrored-ghost 3-point Laplacian has eigenvalues −4n² sin²(πk/2n) in DCT-II."""
    n = 16
    k = 3
    mode = torch.cos(math.pi * k * (2 * torch.arange(n, dtype=torch.float64) + 1) / (2 * n))
    padded = torch.cat([mode[:1], mode, mode[-1:]])
    laplacian = (padded[2:] - 2 * mode + padded[:-2]) * n * n
    expected = -4 * n * n * math.sin(math.pi * k / (2 * n)) ** 2
    assert torch.allclose(laplacian, expected * mode, atol=1e-9)


@pytest.mark.parametrize("method", ["newton", "fixed-point"])
def test_separable_densities_give_the_product_of_quantile_maps(method):
    """f = f₁(x) f₂(y), g = g₁(x) g₂(y): T = (G₁⁻¹∘F₁, G₂⁻¹∘F₂), second order in h."""
    errors = []
    for n in (32, 64):
        t = _axis(n)
        f1, cf1 = _cosine_density(0.5, 1, t)
        f2, cf2 = _cosine_density(-0.3, 1, t)
        g1, cg1 = _cosine_density(0.4, 2, t)
        g2, cg2 = _cosine_density(0.6, 1, t)
        result = solve_fftot(
            f1[:, None] * f2[None], g1[:, None] * g2[None], tol=1e-10, method=method
        )
        assert result.converged and result.residual <= 1e-10
        exact_x = torch.from_numpy(_quantile_map(cf1, cg1, t.numpy()))
        exact_y = torch.from_numpy(_quantile_map(cf2, cg2, t.numpy()))
        err = max(
            (result.transport_map[..., 0] - exact_x[:, None]).abs().max().item(),
            (result.transport_map[..., 1] - exact_y[None, :]).abs().max().item(),
        )
        errors.append(err)
        assert abs(result.mass_factor - 1) < 2.0 / n**2
    assert errors[0] < 1.5e-3
    assert errors[0] / errors[1] > 3.5  # second order: 4× per halving of h


def test_separable_3d():
    n = 20
    t = _axis(n)
    f1, cf1 = _cosine_density(0.5, 1, t)
    g2, cg2 = _cosine_density(0.4, 2, t)
    g3, cg3 = _cosine_density(-0.5, 1, t)
    ones = torch.ones(n, dtype=torch.float64)
    source = f1[:, None, None] * ones[None, :, None] * ones[None, None, :]
    target = ones[:, None, None] * g2[None, :, None] * g3[None, None, :]
    result = solve_fftot(source, target, tol=1e-9)
    assert result.converged
    tm = result.transport_map
    identity = lambda s: s  # noqa: E731
    exact = [
        _quantile_map(cf1, identity, t.numpy()),
        _quantile_map(identity, cg2, t.numpy()),
        _quantile_map(identity, cg3, t.numpy()),
    ]
    views = [(n, 1, 1), (1, n, 1), (1, 1, n)]
    for axis in range(3):
        expected = torch.from_numpy(exact[axis]).view(views[axis])
        assert (tm[..., axis] - expected).abs().max() < 5e-3


def test_equal_densities_give_the_identity():
    t = _axis(24)
    f = (1 + 0.5 * torch.cos(math.pi * t))[:, None] * (2 + torch.sin(3 * t))[None]
    result = solve_fftot(f, 3.0 * f)  # densities count up to a constant factor
    assert result.iterations == 0 and result.residual < 1e-13
    assert torch.allclose(result.transport_map, cell_centres((24, 24), f), atol=1e-14)
    assert result.v.abs().max() < 1e-14


def test_pushed_forward_samples_follow_the_target():
    """Samples of f pushed through the map fill the coarse cells of [0, 1]² in the
    proportions of g (to the Monte-Carlo noise and O(h²))."""
    n = 96
    t = _axis(n)
    x, y = torch.meshgrid(t, t, indexing="ij")
    blob = torch.exp(-((x - 0.3) ** 2 + (y - 0.65) ** 2) / 0.02)
    target = 0.3 + blob + 0.5 * torch.exp(-((x - 0.75) ** 2 + (y - 0.3) ** 2) / 0.01)
    source = torch.ones(n, n, dtype=torch.float64)
    result = solve_fftot(source, target, tol=1e-8)
    assert result.converged
    m = 400_000
    points = torch.rand(m, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    mapped = result.transport(points)
    assert mapped.min() >= 0 and mapped.max() <= 1
    bins = 8
    hist = torch.histogramdd(mapped, bins=[bins, bins], range=[0.0, 1.0, 0.0, 1.0]).hist / m
    # the target's mass in each coarse cell, from its (fine) cell-centre samples
    expected = (target / target.sum()).view(bins, n // bins, bins, n // bins).sum((1, 3))
    noise = (expected * (1 - expected) / m).sqrt()
    assert ((hist - expected).abs() / (noise * 4 + 2e-4)).max() < 1
    # the transport map is the gradient of a convex function: monotone
    a, b = points[: m // 2], points[m // 2 :]
    assert ((result.transport(a) - result.transport(b)) * (a - b)).sum(1).min() > -1e-9


def test_agrees_with_the_exact_semidiscrete_solver_on_a_grid_of_diracs():
    """Uniform source, target ν = Σ g(y_i) h² δ_{y_i} on the same grid: the semi-discrete
    map is within a cell of the FFT-OT map, and the potentials agree to O(h²)."""
    gaps = []
    for n in (32, 64):
        t = _axis(n)
        x, y = torch.meshgrid(t, t, indexing="ij")
        g = (1 + 0.4 * torch.cos(2 * math.pi * x)) * (1 + 0.6 * torch.cos(math.pi * y))
        g = g * (1 + 0.3 * torch.sin(math.pi * x * y))
        dense = solve_fftot(torch.ones_like(g), g, tol=1e-10)
        targets = cell_centres((n, n), g).reshape(-1, 2)
        problem = SemiDiscreteProblem(
            targets, (g / g.sum()).reshape(-1), source=BoxUniform(2, 0.0, 1.0)
        )
        exact = solve_exact_2d(problem, tol=1e-10)
        points = torch.rand(
            20_000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
        )
        distance = (dense.transport(points) - exact.transport(points)).norm(dim=1)
        assert distance.max() < 1.0 / n and distance.mean() < 0.5 / n
        u_dense, u_exact = dense.potential_at(points), exact.potential(points)
        gaps.append(((u_dense - u_dense.mean()) - (u_exact - u_exact.mean())).abs().max().item())
    assert gaps[0] < 5e-4 and gaps[0] / gaps[1] > 3


def test_strong_contrast_goes_through_the_continuation_and_a_cap_is_reported():
    """A 50:1 mixture target: a direct Newton solve stalls, the continuation g_t gets
    there; stopped by max_iter, the result says converged False and gives the residual
    measured against the target itself."""
    n = 64
    t = _axis(n)
    x, y = torch.meshgrid(t, t, indexing="ij")

    def bump(cx, cy, s):
        return torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))

    target = 0.02 + bump(0.3, 0.3, 0.08) + 0.7 * bump(0.7, 0.6, 0.1)
    source = 0.2 + bump(0.5, 0.5, 0.2)
    result = solve_fftot(source, target, tol=1e-8)
    assert result.converged and result.residual <= 1e-8
    assert len(result.stages) > 1 and result.stages[-1] == 1.0
    assert result.stages == sorted(result.stages)
    capped = solve_fftot(source, target, tol=1e-8, max_iter=3)
    assert not capped.converged and capped.residual > 1e-8
    start = solve_fftot(source, target, max_iter=0)
    assert capped.residual < start.residual and start.iterations == 0


def test_float32_and_callback():
    t = _axis(32).float()
    f = (1 + 0.5 * torch.cos(math.pi * t))[:, None].expand(32, 32).contiguous()
    g = torch.ones(32, 32)
    seen = []
    result = solve_fftot(f, g, tol=1e-5, callback=lambda i, r, s: seen.append((i, r, s)))
    assert result.converged and result.v.dtype == torch.float32
    assert [i for i, _, _ in seen] == list(range(1, result.iterations + 1))
    assert seen[-1][1] == result.residual


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        (torch.ones(8, 8), -torch.ones(8, 8), "positive"),
        (torch.ones(8, 8), torch.ones(8, 9), "grids differ"),
        (torch.ones(8), torch.ones(8), "2D or 3D"),
        (torch.ones(8, 8), torch.full((8, 8), float("nan")), "NaN"),
        (torch.ones(3, 8), torch.ones(3, 8), "at least 4"),
        (torch.ones(8, 8, dtype=torch.int64), torch.ones(8, 8), "float32 or float64"),
    ],
)
def test_bad_input_is_named(source, target, message):
    with pytest.raises(ValueError, match=message):
        solve_fftot(source, target)


def test_bad_settings_are_named():
    f = torch.ones(8, 8)
    with pytest.raises(ValueError, match="method"):
        solve_fftot(f, f, method="sinkhorn")
    with pytest.raises(ValueError, match="step"):
        solve_fftot(f, f, step=0)
    with pytest.raises(ValueError, match="points must have shape"):
        solve_fftot(f, f).transport(torch.zeros(3, 3))


def test_torch_fft_path_gives_the_scipy_answer(device, monkeypatch):
    """The device-independent transforms (dct2 / idct2 over torch FFTs, what CUDA runs)
    give the CPU path's answer; on the CPU they are forced in for the test."""
    n = 32
    t = _axis(n)
    f1, _ = _cosine_density(0.5, 1, t)
    g2, _ = _cosine_density(0.4, 2, t)
    source = f1[:, None] * torch.ones(n, dtype=torch.float64)[None]
    target = torch.ones(n, dtype=torch.float64)[:, None] * g2[None]
    reference = solve_fftot(source, target, tol=1e-10)

    def torch_path(x, *, inverse=False):
        for axis in range(x.ndim):
            x = idct2(x, axis) if inverse else dct2(x, axis)
        return x

    monkeypatch.setattr(fftot, "cosine_transform", torch_path)
    result = solve_fftot(source.to(device), target.to(device), tol=1e-10)
    assert result.v.device.type == device and result.converged
    assert torch.allclose(result.transport_map.cpu(), reference.transport_map, atol=1e-9)


def test_a_density_with_jumps_falls_back_to_the_fixed_point():
    """A 4:1 square block: ∇g is huge at its edges and the Newton continuation stalls
    (t ≈ 0.77 on a 128² grid); the fixed point, run with the remaining budget, converges
    and the result says so."""
    n = 128
    block = torch.ones(n, n, dtype=torch.float64)
    block[n // 4 : n // 2, n // 4 : n // 2] = 4.0
    result = solve_fftot(torch.ones_like(block), block, tol=1e-6)
    assert result.converged and result.residual <= 1e-6
    assert result.method == "newton, then fixed-point"
    assert len(result.step_sizes) == result.iterations
    direct = solve_fftot(torch.ones_like(block), block, tol=1e-6, method="fixed-point")
    assert direct.method == "fixed-point"
    assert torch.allclose(result.transport_map, direct.transport_map, atol=1e-12)
