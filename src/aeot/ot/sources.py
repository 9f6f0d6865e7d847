"""Source measures μ for semi-discrete OT, each able to draw (quasi-)random samples."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from aeot._io import tensor_hash
from aeot._validation import as_float_tensor, check_positive_int


def _per_axis(value, dim: int, name: str) -> tuple[float, ...]:
    """``value`` (a number or ``dim`` numbers) as ``dim`` finite floats, or a clear error."""
    array = as_float_tensor(value, name, dtype=torch.float64, allow_empty=True)
    if array.ndim > 1 or (array.ndim == 1 and array.shape[0] not in (1, dim)):
        raise ValueError(
            f"{name} must be a number or {dim} numbers (one per axis), "
            f"got shape {tuple(array.shape)}"
        )
    if array.numel() == 0:
        raise ValueError(f"{name} is empty; give a number or {dim} numbers")
    return tuple(array.expand(dim).tolist())


def _wider(dtype: torch.dtype) -> str:
    """The advice to work in float64, unless ``dtype`` already is (then: nothing)."""
    return "" if dtype == torch.float64 else " or work in torch.float64"


def _check_range(values, dtype: torch.dtype, what: str) -> None:
    """Refuse sampling in ``dtype`` when ``values`` (bounds, spans) overflow it."""
    largest = max(abs(v) for v in values)
    if largest > torch.finfo(dtype).max:
        raise ValueError(
            f"{what} reaches {largest:.3g}, beyond the range of {dtype}: "
            f"rescale the problem{_wider(dtype)}"
        )


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


def _check_dim(dim) -> int:
    """The dimension d of a source: a positive integer (numpy integers too)."""
    try:
        return check_positive_int(dim, "dim")
    except TypeError:
        raise TypeError(f"dim must be a positive integer, got {dim!r}") from None


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

    def sample_chunks(
        self,
        n: int,
        chunk: int,
        *,
        seed: int = 0,
        qmc: bool = True,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> Iterator[torch.Tensor]:
        """The rows of ``sample(n, ...)`` in consecutive blocks of at most ``chunk``.

        This default draws all ``n`` at once; sources with a sequential generator
        (:class:`BoxUniform` with ``qmc``) draw block by block, so memory stays
        O(``chunk``·d).
        """
        check_positive_int(chunk, "chunk")
        yield from self.sample(n, seed=seed, qmc=qmc, dtype=dtype, device=device).split(chunk)

    def describe(self) -> dict:
        return {"kind": type(self).__name__, "dim": self.dim}


@dataclass(frozen=True)
class BoxUniform(Source):
    """Uniform measure on the box [low, high]^d (per-axis bounds allowed)."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    def __init__(self, dim: int, low=0.0, high=1.0):
        dim = _check_dim(dim)
        try:
            lo, hi = _per_axis(low, dim, "low"), _per_axis(high, dim, "high")
        except ValueError as exc:
            raise ValueError(f"box bounds: {exc}") from None
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
        self._check_dtype(dtype)
        u = _uniform(n, self.dim, seed, qmc, dtype, device)
        low = torch.tensor(self.low, dtype=dtype, device=u.device)
        high = torch.tensor(self.high, dtype=dtype, device=u.device)
        return u.mul_(high - low).add_(low)

    def sample_chunks(self, n, chunk, *, seed=0, qmc=True, dtype=torch.float32, device="cpu"):
        """``sample(n, ...)`` block by block: the same rows, O(``chunk``·d) memory with ``qmc``
        (one scrambled Sobol sequence drawn in consecutive pieces)."""
        n, chunk = check_positive_int(n, "n"), check_positive_int(chunk, "chunk")
        if not qmc:
            yield from super().sample_chunks(
                n, chunk, seed=seed, qmc=qmc, dtype=dtype, device=device
            )
            return
        self._check_dtype(dtype)
        engine = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=seed)
        draw_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        low = torch.tensor(self.low, dtype=dtype, device=device)
        high = torch.tensor(self.high, dtype=dtype, device=device)
        for start in range(0, n, chunk):
            u = engine.draw(min(chunk, n - start), dtype=draw_dtype).to(device=device, dtype=dtype)
            yield u.mul_(high - low).add_(low)

    def _check_dtype(self, dtype: torch.dtype) -> None:
        """The box must be representable in ``dtype`` with a non-zero width on every axis."""
        if not dtype.is_floating_point:
            return  # the sampler itself refuses it
        spans = [b - a for a, b in zip(self.low, self.high, strict=True)]
        _check_range([*self.low, *self.high, *spans], dtype, "the box [low, high]")
        low = torch.tensor(self.low, dtype=torch.float64).to(dtype)
        high = torch.tensor(self.high, dtype=torch.float64).to(dtype)
        flat = torch.nonzero(high <= low).flatten().tolist()
        if flat:
            axis = flat[0]
            raise ValueError(
                f"the box has zero width in {dtype} on axis {axis} "
                f"([{self.low[axis]!r}, {self.high[axis]!r}] rounds to one value): "
                f"a point mass, not a box; widen it{_wider(dtype)}"
            )

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
        dim = _check_dim(dim)
        if isinstance(std, bool) or not isinstance(std, numbers.Real):
            raise TypeError(f"std must be a number, got {type(std).__name__}")
        if not (math.isfinite(std) and std > 0):
            raise ValueError(f"std must be positive and finite, got {std}")
        object.__setattr__(self, "mean", _per_axis(mean, dim, "mean"))
        object.__setattr__(self, "std", float(std))
        object.__setattr__(self, "dim", dim)

    def sample(self, n, *, seed=0, qmc=True, dtype=torch.float32, device="cpu"):
        if dtype.is_floating_point:
            _check_range([*self.mean, 8 * self.std], dtype, "the Gaussian's mean or 8 std")
            info = torch.finfo(dtype)
            # below this spread every sample rounds to the mean (or to zero)
            resolution = max(info.tiny, info.eps * max(abs(m) for m in self.mean))
            if 8 * self.std < resolution:
                raise ValueError(
                    f"std {self.std!r} is below the resolution of {dtype} at the mean "
                    f"({resolution:.3g}): every sample rounds to the mean, a point mass; "
                    f"rescale the problem{_wider(dtype)}"
                )
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


class GridDensity(Source):
    """A piecewise-constant density on a regular grid of the box [low, high]^d.

    ``values[i_0, ..., i_{d-1}]`` (shape (n_0, ..., n_{d-1}), axis k along coordinate k,
    as ``torch.meshgrid(..., indexing="ij")`` lays it out) is proportional to the density
    on the pixel Π_k [low_k + i_k w_k, low_k + (i_k + 1) w_k], w_k = (high_k − low_k)/n_k;
    the values are normalised so that the density ρ integrates to 1:

        ρ(x) = values[i(x)] / (Σ values · Π_k w_k).

    Sampling is exact: the Knothe–Rosenblatt map of ρ, x_0 from the marginal of axis 0,
    then x_1 from the conditional given x_0's column, and so on, each by the inverse of a
    piecewise-linear CDF. With ``qmc`` it maps a scrambled Sobol point, so a constant
    ``values`` gives the samples of :class:`BoxUniform` on the same box (to rounding).

    Parameters
    ----------
    values : (n_0, ..., n_{d-1}) array_like
        Non-negative, finite, with a positive sum; d = ``values.ndim`` ≥ 1.
    low, high : float or d floats
        The box.

    Examples
    --------
    >>> import torch
    >>> rho = GridDensity(torch.rand(64, 64) + 0.5)      # on [0, 1]^2
    >>> rho.sample(4).shape
    torch.Size([4, 2])
    """

    def __init__(self, values, low=0.0, high=1.0):
        if getattr(values, "ndim", None) == 0 or isinstance(values, int | float):
            # a single number would become a one-pixel 1D density: refuse, not reinterpret
            raise ValueError("density values must be an array with one axis per dimension")
        grid = as_float_tensor(values, "density values", dtype=torch.float64, device="cpu")
        if bool((grid < 0).any()):
            raise ValueError(
                f"density values must be non-negative; the smallest is {float(grid.min()):.3g}"
            )
        total = float(grid.sum())
        if not (total > 0 and math.isfinite(total)):
            raise ValueError(f"density values must have a positive finite sum, got {total:.3g}")
        self.box = BoxUniform(grid.ndim, low, high)
        self.dim = grid.ndim
        self.low, self.high = self.box.low, self.box.high
        self.shape = tuple(grid.shape)
        self.values = (grid / total).contiguous()  # pixel probabilities, sum 1
        # level k: the marginal of axes 0..k, each row (fixed i_0..i_{k-1}, flat index r)
        # normalised into a CDF on [r, r + 1], so that one sorted array serves every row
        self._cdfs = []
        for k in range(self.dim):
            rest = tuple(range(k + 1, self.dim))
            marginal = self.values.sum(dim=rest) if rest else self.values
            rows = marginal.reshape(-1, self.shape[k])
            row_total = rows.sum(1, keepdim=True)
            cdf = torch.cat([torch.zeros_like(row_total), rows.cumsum(1)], 1)
            cdf = cdf / torch.where(row_total > 0, row_total, 1.0)
            cdf[:, -1] = 1.0
            offset = torch.arange(rows.shape[0], dtype=torch.float64)[:, None]
            self._cdfs.append((cdf + offset).flatten())  # non-decreasing

    @property
    def pixel_widths(self) -> tuple[float, ...]:
        """w_k = (high_k − low_k) / n_k."""
        return tuple((b - a) / n for a, b, n in zip(self.low, self.high, self.shape, strict=True))

    def density(self) -> torch.Tensor:
        """ρ on every pixel (float64, shape ``self.shape``): ∫ρ = 1 over the box."""
        return self.values / math.prod(self.pixel_widths)

    def sample(self, n, *, seed=0, qmc=True, dtype=torch.float32, device="cpu"):
        n = check_positive_int(n, "n")
        self.box._check_dtype(dtype)
        u = _uniform(n, self.dim, seed, qmc, torch.float64, "cpu")
        x = torch.empty(n, self.dim, dtype=torch.float64)
        flat = torch.zeros(n, dtype=torch.int64)  # flat index of the pixel prefix so far
        for k, cdf in enumerate(self._cdfs):
            size = self.shape[k]
            q = flat.to(torch.float64) + u[:, k]  # row `flat` of cdf spans [flat, flat + 1]
            pos = torch.searchsorted(cdf, q, right=True).sub_(1)
            j = (pos - flat * (size + 1)).clamp_(0, size - 1)
            left = cdf[flat * (size + 1) + j]
            right = cdf[flat * (size + 1) + j + 1]
            frac = ((q - left) / (right - left).clamp_min(1e-300)).clamp_(0.0, 1.0)
            width = (self.high[k] - self.low[k]) / size
            x[:, k] = self.low[k] + (j.to(torch.float64) + frac) * width
            flat = flat * size + j
        return x.to(device=device, dtype=dtype)

    def describe(self) -> dict:
        return {
            "kind": "GridDensity",
            "dim": self.dim,
            "shape": list(self.shape),
            "low": list(self.low),
            "high": list(self.high),
            "values_hash": tensor_hash(self.values),  # a checkpoint's fingerprint sees ρ
        }


class CallableSource(Source):
    """A user sampler ``fn(n, generator) -> (n, d)`` array. Quasi-Monte-Carlo is not available."""

    def __init__(self, fn: Callable[[int, torch.Generator], torch.Tensor], dim: int):
        if not callable(fn):
            raise TypeError("fn must be callable as fn(n, generator)")
        self.fn = fn
        self.dim = _check_dim(dim)

    def sample(self, n, *, seed=0, qmc=True, dtype=torch.float32, device="cpu"):
        gen = torch.Generator(device="cpu").manual_seed(seed)
        out = as_float_tensor(self.fn(n, gen), "source sample", ndim=2, dtype=dtype, device=device)
        if out.shape != (n, self.dim):
            raise ValueError(
                f"source sampler returned shape {tuple(out.shape)}, expected {(n, self.dim)}"
            )
        _check_no_atoms(out)
        return out


def _check_no_atoms(x: torch.Tensor, rows: int = 1024) -> None:
    """Refuse samples of a measure with atoms (a point mass, a discrete measure): its
    mass cannot be split among targets, and the solver's heights would diverge.

    Continuous samples collide with vanishing probability: among the first ``rows``
    at most a handful repeat even in float32, so half of them repeating proves atoms.
    """
    head = x[:rows]
    m = head.shape[0]
    if m < 2:
        return
    distinct = m if m < 16 and not bool((head == head[:1]).all()) else None
    if distinct is None:
        distinct = torch.unique(head, dim=0).shape[0]
    if distinct == 1 or distinct <= m // 2:
        raise ValueError(
            f"source sampler returned only {distinct} distinct point(s) among its first {m} "
            "samples: a source with atoms (a point mass or a discrete measure) cannot be "
            "split among the targets; semi-discrete OT needs a source with a density"
        )
