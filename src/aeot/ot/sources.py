"""Source measures μ for semi-discrete OT, each able to draw (quasi-)random samples."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from aeot._validation import as_float_tensor


def _sobol_uniform(n: int, dim: int, seed: int, dtype: torch.dtype, device) -> torch.Tensor:
    """Scrambled Sobol points in [0,1)^dim (a fresh scramble for every ``seed``)."""
    engine = torch.quasirandom.SobolEngine(dim, scramble=True, seed=seed)
    return engine.draw(n, dtype=torch.float64 if dtype == torch.float64 else torch.float32).to(
        device=device, dtype=dtype
    )


def _uniform(n: int, dim: int, seed: int, qmc: bool, dtype, device) -> torch.Tensor:
    if qmc:
        return _sobol_uniform(n, dim, seed, dtype, device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return torch.rand(n, dim, generator=gen, dtype=dtype).to(device)


class Source:
    """A probability measure on R^d that can be sampled.

    Subclasses implement :meth:`sample`; ``dim`` is the dimension d.
    """

    dim: int

    def sample(
        self,
        n: int,
        *,
        seed: int = 0,
        qmc: bool = True,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        """Return ``n`` samples, shape (n, d). ``qmc`` uses a scrambled Sobol sequence."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {"kind": type(self).__name__, "dim": self.dim}


@dataclass(frozen=True)
class BoxUniform(Source):
    """Uniform measure on the box [low, high]^d (per-axis bounds allowed)."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    def __init__(self, dim: int, low=0.0, high=1.0):
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        lo = torch.as_tensor(low, dtype=torch.float64).expand(dim).tolist()
        hi = torch.as_tensor(high, dtype=torch.float64).expand(dim).tolist()
        if not all(
            math.isfinite(a) and math.isfinite(b) and a < b for a, b in zip(lo, hi, strict=True)
        ):
            raise ValueError(f"box bounds must be finite with low < high, got {low} and {high}")
        object.__setattr__(self, "low", tuple(lo))
        object.__setattr__(self, "high", tuple(hi))
        object.__setattr__(self, "dim", dim)

    @property
    def volume(self) -> float:
        return math.prod(b - a for a, b in zip(self.low, self.high, strict=True))

    def sample(self, n, *, seed=0, qmc=True, dtype=torch.float32, device="cpu"):
        u = _uniform(n, self.dim, seed, qmc, dtype, device)
        low = torch.tensor(self.low, dtype=dtype, device=u.device)
        high = torch.tensor(self.high, dtype=dtype, device=u.device)
        return u.mul_(high - low).add_(low)

    def describe(self) -> dict:
        return {
            "kind": "BoxUniform",
            "dim": self.dim,
            "low": list(self.low),
            "high": list(self.high),
        }


@dataclass(frozen=True)
class Gaussian(Source):
    """Isotropic Gaussian N(mean, std² I) on R^d."""

    mean: tuple[float, ...]
    std: float

    def __init__(self, dim: int, mean=0.0, std: float = 1.0):
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        if not (math.isfinite(std) and std > 0):
            raise ValueError(f"std must be positive and finite, got {std}")
        object.__setattr__(
            self, "mean", tuple(torch.as_tensor(mean, dtype=torch.float64).expand(dim).tolist())
        )
        object.__setattr__(self, "std", float(std))
        object.__setattr__(self, "dim", dim)

    def sample(self, n, *, seed=0, qmc=True, dtype=torch.float32, device="cpu"):
        if qmc:
            u = _sobol_uniform(n, self.dim, seed, torch.float64, "cpu")
            eps = 1e-12
            z = torch.special.ndtri(u.clamp_(eps, 1 - eps)).to(dtype=dtype, device=device)
        else:
            gen = torch.Generator(device="cpu").manual_seed(seed)
            z = torch.randn(n, self.dim, generator=gen, dtype=dtype).to(device)
        mean = torch.tensor(self.mean, dtype=dtype, device=z.device)
        return z.mul_(self.std).add_(mean)

    def describe(self) -> dict:
        return {"kind": "Gaussian", "dim": self.dim, "mean": list(self.mean), "std": self.std}


class CallableSource(Source):
    """A user sampler ``fn(n, generator) -> (n, d)`` array. Quasi-Monte-Carlo is not available."""

    def __init__(self, fn: Callable[[int, torch.Generator], torch.Tensor], dim: int):
        if not callable(fn):
            raise TypeError("fn must be callable as fn(n, generator)")
        self.fn = fn
        self.dim = int(dim)

    def sample(self, n, *, seed=0, qmc=True, dtype=torch.float32, device="cpu"):
        gen = torch.Generator(device="cpu").manual_seed(seed)
        out = as_float_tensor(self.fn(n, gen), "source sample", ndim=2, dtype=dtype, device=device)
        if out.shape != (n, self.dim):
            raise ValueError(
                f"source sampler returned shape {tuple(out.shape)}, expected {(n, self.dim)}"
            )
        return out
