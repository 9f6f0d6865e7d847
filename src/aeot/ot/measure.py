"""Measuring a potential: the cell masses μ(W_i(h)) of heights h, from fresh source
samples. Used by the solvers and by :class:`~aeot.ot.result.SemiDiscreteResult`; it
depends on neither, so neither imports the other for it."""

from __future__ import annotations

import torch

from aeot._validation import as_float_tensor, check_positive_int, resolve_device
from aeot.ot.kernels import ScoreKernel
from aeot.ot.problem import SemiDiscreteProblem

__all__ = ["estimate_masses"]


def estimate_masses(
    problem: SemiDiscreteProblem,
    h: torch.Tensor,
    n_samples: int,
    *,
    seed: int = 12345,
    qmc: bool = False,
    dtype: torch.dtype = torch.float32,
    device: str | None = None,
    batch: int = 2**20,
) -> torch.Tensor:
    """Cell masses μ(W_i(h)) estimated from ``n_samples`` source samples (float64, CPU).

    ``h`` (N,) are the heights; the result is the (N,) vector of cell frequencies.
    """
    if not isinstance(problem, SemiDiscreteProblem):
        raise TypeError(f"problem must be a SemiDiscreteProblem, got {type(problem).__name__}")
    n_samples = check_positive_int(n_samples, "n_samples")
    batch = check_positive_int(batch, "batch")
    device = resolve_device(device) if device is not None else problem.targets.device
    y = problem.targets.to(device=device, dtype=dtype)
    h = as_float_tensor(h, "h", ndim=1, dtype=dtype, device=device)
    if h.shape[0] != problem.n_targets:
        raise ValueError(f"h has {h.shape[0]} entries but there are {problem.n_targets} targets")
    kernel = ScoreKernel(y)
    counts = torch.zeros(problem.n_targets, dtype=torch.float64, device=device)
    drawn = 0
    part = 0
    while drawn < n_samples:
        size = min(batch, n_samples - drawn)
        x = problem.source.sample(
            size, seed=seed * 7919 + part, qmc=qmc, dtype=dtype, device=device
        )
        counts += torch.bincount(kernel.argmax(x, h)[0], minlength=problem.n_targets).double()
        drawn += size
        part += 1
    return (counts / n_samples).cpu()
