"""Known answers on every device: the OT catalogue, the kernels, the metrics and the AE-OT
round trip run once on the CPU and once on CUDA (the CUDA instances skip without CUDA;
``pytest -m cuda`` runs them alone, as ``benchmarks/gpu_check.sh`` does).

The OT known-answer catalogue (1-D quantiles, Voronoi grid, collinear strips, a
convex-gradient target), replayed against every semi-discrete solver on each device, is
tests/ot/test_solvers.py (same ``device`` fixture). Here:

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
