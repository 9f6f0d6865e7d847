"""Known answers on every device: the OT catalogue, the kernels, the metrics and the AE-OT
round trip run once on the CPU and once on CUDA (the CUDA instances skip without CUDA;
``pytest -m cuda`` runs them alone, as ``benchmarks/gpu_check.sh`` does).

The OT catalogue (closed forms, each solved by the Monte-Carlo solver on the device):

* 1-D quantiles and the Voronoi grid: in tests/ot/test_ot_montecarlo.py, which takes the
  same ``device`` fixture;
* collinear strips: targets on a horizontal line of the unit square get vertical strips
  whose widths are their weights;
* a convex-gradient target: targets y_i = A x_i + b (A symmetric positive definite) with
  weights of the A-images of a grid's cells are the exact image of that grid's
  partition, so the map is x ↦ A x + b on cell centres;
* discrete OT: the accelerated solver's certified bounds bracket POT's exact cost and
  equal uniform weights on a line match sorted points.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ot
from aeot.metrics import frechet_distance
from aeot.ot import SemiDiscreteProblem, solve_discrete_accelerated, solve_semidiscrete
from aeot.ot.kernels import ScoreKernel


def test_collinear_strips(device):
    """Targets (t_i, 1/2) with weights ν_i: the cells are the strips between the
    cumulative weights, whatever the t_i."""
    t = np.array([0.05, 0.2, 0.5, 0.6, 0.95])
    nu = np.array([0.3, 0.1, 0.25, 0.15, 0.2])
    y = np.stack([t, np.full_like(t, 0.5)], 1)
    result = solve_semidiscrete(
        SemiDiscreteProblem(y, nu), tol=4e-3, seed=2, batch_size=2**15, device=device
    )
    assert result.converged
    x = torch.rand(2**16, 2, generator=torch.Generator().manual_seed(5))
    cells = result.assign(x.to(device)).cpu().numpy()
    expected = np.searchsorted(np.cumsum(nu)[:-1], x[:, 0].numpy())
    assert (cells == expected).mean() > 0.99


def test_convex_gradient_target(device):
    """ν = A-image of a uniform grid partition, y = A c + b: the OT map sends each grid
    cell centre c to A c + b, since x ↦ A x + b is the gradient of a convex function."""
    k = 4
    centres = (np.arange(k) + 0.5) / k
    c = np.stack(np.meshgrid(centres, centres), -1).reshape(-1, 2)
    a = np.array([[1.5, 0.4], [0.4, 0.8]])
    y = c @ a.T + np.array([0.3, -0.2])
    result = solve_semidiscrete(SemiDiscreteProblem(y), tol=4e-3, seed=3, device=device)
    assert result.converged
    cells = result.assign(torch.as_tensor(c, dtype=torch.float32).to(device)).cpu().numpy()
    np.testing.assert_array_equal(cells, np.arange(k * k))


def test_score_kernel_matches_dense_argmax(device):
    g = torch.Generator().manual_seed(0)
    y = torch.randn(700, 16, generator=g)
    h = torch.randn(700, generator=g)
    x = torch.randn(3000, 16, generator=g)
    dense = (x @ y.T + h).topk(3, dim=1)
    kernel = ScoreKernel(y.to(device))
    index, _ = kernel.argmax(x.to(device), h.to(device))
    torch.testing.assert_close(index.cpu(), dense.indices[:, 0])
    top_v, top_i = kernel.topk(x.to(device), h.to(device), 3)
    torch.testing.assert_close(top_i.cpu(), dense.indices)
    torch.testing.assert_close(top_v.cpu(), dense.values, rtol=1e-5, atol=1e-5)


def test_accelerated_discrete_brackets_pot(device):
    g = torch.Generator().manual_seed(4)
    x = torch.rand(60, 3, dtype=torch.float64, generator=g)
    y = torch.rand(70, 3, dtype=torch.float64, generator=g) * 0.8 + 0.3
    cost = torch.cdist(x, y) ** 2
    a = torch.full((60,), 1 / 60, dtype=torch.float64)
    b = torch.full((70,), 1 / 70, dtype=torch.float64)
    exact = ot.emd2(a.numpy(), b.numpy(), cost.numpy())
    result = solve_discrete_accelerated(cost.to(device), a.to(device), b.to(device), tol=1e-4)
    assert result.converged
    assert result.dual <= exact + 1e-12 <= result.cost + 2e-12
    assert (result.cost - exact) / exact <= 1e-4


def test_frechet_distance_of_gaussians(device):
    """FD between N(μ1, Σ1) and N(μ2, Σ2) fitted to samples equals the closed form on
    the samples' own means and covariances."""
    g = torch.Generator().manual_seed(1)
    a = torch.randn(4000, 8, generator=g, dtype=torch.float64)
    b = torch.randn(4000, 8, generator=g, dtype=torch.float64) * 1.5 + 0.7
    on_cpu = frechet_distance(a, b)
    on_device = frechet_distance(a.to(device), b.to(device))
    assert abs(on_device - on_cpu) <= 1e-9 * max(1.0, on_cpu)
    # isotropic closed form: |μ1 − μ2|² + tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½) ≈ 8·0.49 + 8·0.25
    assert abs(on_cpu - (8 * 0.49 + 8 * 0.25)) < 0.5


def test_aeot_round_trip(device, tmp_path, small_digits_config):
    """Fit on the device, save, load on the CPU and on the device: the same samples."""
    from aeot.data import load_digits8
    from aeot.pipeline import AEOT

    data = load_digits8().subset(np.arange(300))
    model = AEOT(small_digits_config, epochs=3, device=device).fit(data)
    assert next(model.autoencoder_.parameters()).device.type == torch.device(device).type
    samples = model.sample(16, seed=4)
    assert samples.shape == (16, 1, 8, 8) and torch.isfinite(samples).all()
    model.save(tmp_path / "m")
    for where in ("cpu", device):
        loaded = type(model).load(tmp_path / "m", device=where)
        torch.testing.assert_close(loaded.sample(16, seed=4), samples, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(
            loaded.reconstruct(data.x[:5]), model.reconstruct(data.x[:5]), rtol=1e-4, atol=1e-4
        )


@pytest.mark.cuda
def test_cuda_and_cpu_solves_agree():
    """Where CUDA is present, the same problem solved on each device: masses within the
    Monte-Carlo noise of each other."""
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    g = torch.Generator().manual_seed(2)
    y = torch.randn(500, 8, generator=g)
    problem = SemiDiscreteProblem(y)
    cpu = solve_semidiscrete(problem, tol=0.03, seed=0, device="cpu")
    gpu = solve_semidiscrete(problem, tol=0.03, seed=0, device="cuda")
    assert cpu.converged and gpu.converged
    assert gpu.l1_error(2**20, seed=9) < 0.04 and cpu.l1_error(2**20, seed=9) < 0.04
