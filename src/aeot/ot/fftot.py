"""FFT-OT: optimal transport between two densities on a regular 2D or 3D grid.

Problem. Densities f (source) and g (target) on the box Ω = [0, 1]^d, d = 2 or 3, given at
the centres x = ((i + ½) / n_1, …) of an n_1 × … × n_d grid. The optimal map for the
quadratic cost is T = ∇u with u = |x|² / 2 + v convex (Brenier), and u solves the
Monge–Ampère equation with the second boundary condition

    det D²u(x) = f(x) / g(∇u(x))   in Ω,        ∇u(Ω) = Ω.

On a box, ∇u(Ω) = Ω sends each face to itself (obliqueness), so the normal derivative of
v vanishes: a Neumann condition ∂v/∂n = 0, which the cosine transform (DCT-II, cell-centred
samples mirrored at the faces) builds in.

Iteration (Lei & Gu 2021; Lei, An, Zhang, Xu & Gu 2023). Linearising det(D²u + D²δ) ≈
det D²u + tr(A D²δ), with A = cof(D²u) the cofactor matrix, gives a linear elliptic
equation with variable coefficients; FFT-OT replaces A by its mean over the grid, Ā, so
that the equation has constant coefficients and is solved by fast transforms:

    ρ_k = f / g(∇u_k),        κ_k = mean(det D²u_k) / mean(ρ_k),
    r_k = κ_k ρ_k − det D²u_k,                                   (residual)
    Σ_i Ā_ii ∂_ii δ = r_k    (Neumann; mean-free δ),
    v_{k+1} = v_k + τ_k δ.

Far from the identity (a target with strong contrast) a full step may not lower the
residual at any damping; the solve then follows the targets g_t = (1 − t) f + t g from
t = 0 (where v = 0 solves it), each solved to 1e-2 from the previous one, doubling the
stride in t after a success and halving it after a stall (the continuity method).

Derivatives are second-order central differences with mirrored ghost cells (the same
boundary the DCT-II assumes), so the discrete Laplacian is diagonal in the cosine basis
with eigenvalues −(4 / h_i²) sin²(π k_i / (2 n_i)) per axis, and one step costs 2d FFTs of
the grid plus O(N) work: O(N log N). g(∇u) is read by multilinear interpolation.

On a grid the two sides of the equation need not have equal sums (the discrete equation
fixes v only up to a constant), so the right side is scaled by κ_k to the left's sum:
κ → 1 + O(h²) is reported as ``mass_factor``. The iteration stops when the relative
residual max |r_k| / mean(det D²u_k) is at most ``tol``. A step that would raise the
root-mean-square residual or make D²u lose positive definiteness is halved (τ), so v
stays the potential of a monotone map.

References
----------
N. Lei, X. Gu, "FFT-OT: A Fast Algorithm for Optimal Transportation", ICCV 2021.
N. Lei, D. An, M. Zhang, X. Xu, D. Gu, "Volumetric Optimal Transportation by Fast Fourier
Transform", ICLR 2023.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from aeot._validation import as_float_tensor

__all__ = ["FFTOTResult", "cosine_transform", "dct2", "idct2", "solve_fftot"]

# a step halved below this is a stall: back off along the continuation
_MIN_STEP = 1.0 / 16
# intermediate continuation targets are solved to this relative residual
_STAGE_TOL = 1e-2
# the continuation gives up when its stride in t falls below this
_MIN_STRIDE = 1.0 / 1024


@dataclass
class FFTOTResult:
    """The FFT-OT solution on the grid.

    Attributes
    ----------
    potential : (n_1, …, n_d) tensor
        Brenier potential u = |x|² / 2 + v at the cell centres (defined up to a constant;
        v has mean 0).
    v : (n_1, …, n_d) tensor
        u − |x|² / 2, the part the iteration solves for (Neumann on the faces).
    transport_map : (n_1, …, n_d, d) tensor
        ∇u at the cell centres, points of Ω = [0, 1]^d.
    residuals : list of float
        Relative residual max |κ f / g(∇u) − det D²u| / mean(det D²u) against the target
        g, one per iterate of the last stage (its start first); a single entry when the
        solve stopped short of that stage.
    mass_factor : float
        κ at the last iterate (1 + O(h²): how far the grid's two sums disagree).
    converged : bool
        Whether the last residual is at most ``tol``.
    iterations : int
        Accepted steps, all stages together.
    seconds : float
        Wall-clock time of the solve.
    step_sizes : list of float
        τ of every accepted step.
    stages : list of float
        The continuation parameters t solved, ending in 1.0 when the target was reached
        (targets g_t = (1 − t) f + t g; [1.0] when the target was solved directly).
    method : str
        The iteration that produced this result: "newton", "fixed-point", or
        "newton, then fixed-point" (the fallback, :func:`solve_fftot`).
    """

    potential: torch.Tensor
    v: torch.Tensor
    transport_map: torch.Tensor
    residuals: list[float]
    mass_factor: float
    converged: bool
    iterations: int
    seconds: float
    step_sizes: list[float] = field(default_factory=list)
    stages: list[float] = field(default_factory=list)
    method: str = "newton"

    @property
    def residual(self) -> float:
        """The last relative residual."""
        return self.residuals[-1]

    def _points(self, points) -> torch.Tensor:
        d = self.v.ndim
        points = torch.as_tensor(points, dtype=self.v.dtype, device=self.v.device)
        if points.ndim != 2 or points.shape[1] != d:
            raise ValueError(f"points must have shape (M, {d}), got {tuple(points.shape)}")
        if not torch.isfinite(points).all():
            raise ValueError("points has NaN or infinite values")
        return points

    def transport(self, points) -> torch.Tensor:
        """The map at points of Ω: x + ∇v(x), ∇v read by multilinear interpolation of its
        cell-centre values (constant beyond the outermost centres): (M, d) -> (M, d)."""
        points = self._points(points)
        displacement = self.transport_map - cell_centres(tuple(self.v.shape), self.v)
        return points + _interpolate(displacement.movedim(-1, 0), points).T

    def potential_at(self, points) -> torch.Tensor:
        """u(x) = |x|² / 2 + v(x) at points of Ω, v interpolated: (M, d) -> (M,)."""
        points = self._points(points)
        return 0.5 * (points**2).sum(-1) + _interpolate(self.v[None], points)[0]


def cell_centres(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """Coordinates of the cell centres of a grid on [0, 1]^d: shape + (d,)."""
    axes = [(torch.arange(n, dtype=like.dtype, device=like.device) + 0.5) / n for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def dct2(x: torch.Tensor, dim: int) -> torch.Tensor:
    """DCT-II along ``dim``: X_k = Σ_n x_n cos(π k (2n + 1) / (2N)) (scipy's type 2 / 2).

    One complex FFT of length N on the even-odd reordered input (Makhoul 1980)."""
    x = x.movedim(dim, -1)
    n = x.shape[-1]
    v = torch.cat([x[..., ::2], x[..., 1::2].flip(-1)], dim=-1)
    k = torch.arange(n, dtype=x.dtype, device=x.device)
    twiddle = torch.polar(torch.ones_like(k), -math.pi * k / (2 * n))
    return (torch.fft.fft(v, dim=-1) * twiddle).real.movedim(-1, dim)


def idct2(y: torch.Tensor, dim: int) -> torch.Tensor:
    """Inverse of :func:`dct2` along ``dim`` (a scaled DCT-III): idct2(dct2(x)) = x."""
    y = y.movedim(dim, -1)
    n = y.shape[-1]
    k = torch.arange(n, dtype=y.dtype, device=y.device)
    twiddle = torch.polar(torch.ones_like(k), math.pi * k / (2 * n))
    # V_k = e^{iπk/2N} (Y_k − i Y_{N−k}) with Y_N = 0; x is read back from Re ifft(V)
    flipped = torch.cat([torch.zeros_like(y[..., :1]), y[..., 1:].flip(-1)], dim=-1)
    spectrum = twiddle * torch.complex(y, -flipped)
    v = torch.fft.ifft(spectrum, dim=-1).real
    x = torch.empty_like(v)
    half = (n + 1) // 2
    x[..., ::2] = v[..., :half]
    x[..., 1::2] = v[..., half:].flip(-1)
    return x.movedim(-1, dim)


def cosine_transform(x: torch.Tensor, *, inverse: bool = False) -> torch.Tensor:
    """DCT-II over every axis (``inverse``: its inverse), up to a constant factor per
    axis that the pair cancels. On the CPU scipy.fft's real-to-real transforms (one
    pass, ``torch.get_num_threads()`` workers); elsewhere :func:`dct2` / :func:`idct2`,
    torch FFTs on the tensor's device."""
    if x.device.type == "cpu":
        import scipy.fft

        run = scipy.fft.idctn if inverse else scipy.fft.dctn
        out = run(x.numpy(), type=2, workers=torch.get_num_threads())
        return torch.from_numpy(out).to(x.dtype)
    for axis in range(x.ndim):
        x = idct2(x, axis) if inverse else dct2(x, axis)
    return x


def _neumann_eigenvalues(shape: tuple[int, ...], like: torch.Tensor) -> list[torch.Tensor]:
    """Per axis, the eigenvalues of the 3-point second difference with mirrored ghost
    cells in the DCT-II basis: −(4 / h²) sin²(π k / (2n)), broadcastable to the grid."""
    d = len(shape)
    out = []
    for axis, n in enumerate(shape):
        k = torch.arange(n, dtype=like.dtype, device=like.device)
        lam = -4.0 * n * n * torch.sin(math.pi * k / (2 * n)) ** 2
        view = [1] * d
        view[axis] = n
        out.append(lam.view(view))
    return out


def _pad(v: torch.Tensor) -> torch.Tensor:
    """Mirror one ghost cell on every face (v_{−1} = v_0, v_n = v_{n−1})."""
    d = v.ndim
    return F.pad(v[None, None], (1, 1) * d, mode="replicate")[0, 0]


def _derivatives(v: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    """Central differences of v on a [0, 1]^d grid: gradient (d arrays) and Hessian
    (d × d arrays), second order inside, with mirrored ghost cells at the faces."""
    d = v.ndim
    p = _pad(v)
    inner = tuple(slice(1, -1) for _ in range(d))

    def shifted(offsets: dict[int, int]) -> torch.Tensor:
        index = list(inner)
        for axis, o in offsets.items():
            index[axis] = slice(1 + o, p.shape[axis] - 1 + o)
        return p[tuple(index)]

    n = v.shape
    grad, hess = [], [[None] * d for _ in range(d)]
    for i in range(d):
        plus, minus = shifted({i: 1}), shifted({i: -1})
        grad.append((plus - minus) * (n[i] / 2))
        hess[i][i] = (plus - 2 * v + minus) * (n[i] * n[i])
        for j in range(i):
            mixed = (
                shifted({i: 1, j: 1})
                - shifted({i: 1, j: -1})
                - shifted({i: -1, j: 1})
                + shifted({i: -1, j: -1})
            ) * (n[i] * n[j] / 4)
            hess[i][j] = hess[j][i] = mixed
    return grad, hess


def _det_and_cofactor(
    hess: list[list[torch.Tensor]],
) -> tuple[torch.Tensor, list[list[torch.Tensor]], torch.Tensor]:
    """det D²u, cof(D²u) (d × d arrays) and the smallest leading principal minor (D²u is
    positive definite where it is > 0), for D²u = I + D²v."""
    d = len(hess)
    a = [[hess[i][j] + (1.0 if i == j else 0.0) for j in range(d)] for i in range(d)]
    if d == 2:
        det = a[0][0] * a[1][1] - a[0][1] ** 2
        cof = [[a[1][1], -a[0][1]], [-a[0][1], a[0][0]]]
        return det, cof, torch.minimum(a[0][0], det)
    cof = [[None] * 3 for _ in range(3)]
    for i in range(3):
        for j in range(i, 3):
            r0, r1 = [k for k in range(3) if k != i]
            c0, c1 = [k for k in range(3) if k != j]
            minor = a[r0][c0] * a[r1][c1] - a[r0][c1] * a[r1][c0]
            cof[i][j] = cof[j][i] = minor if (i + j) % 2 == 0 else -minor
    det = a[0][0] * cof[0][0] + a[0][1] * cof[0][1] + a[0][2] * cof[0][2]
    return det, cof, torch.minimum(torch.minimum(a[0][0], cof[2][2]), det)


def _interpolate(values: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Multilinear interpolation of C fields on the cell-centred grid at points of
    [0, 1]^d: values (C, n_1, …, n_d), points (M, d) -> (C, M). Clamped at the faces."""
    d = points.shape[1]
    # grid_sample's last coordinate indexes the last axis; align_corners=False puts
    # −1 and 1 on the outer faces, so cell centres sit at their own samples
    grid = (2 * points.flip(-1) - 1).view((1,) * d + (-1, d))
    sampled = F.grid_sample(
        values[None], grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return sampled.reshape(values.shape[0], -1)


def _check_densities(source, target) -> tuple[torch.Tensor, torch.Tensor]:
    f = torch.as_tensor(source)
    g = torch.as_tensor(target, device=f.device)
    for name, t in (("source", f), ("target", g)):
        if t.ndim not in (2, 3):
            raise ValueError(
                f"{name} must be a 2D or 3D grid of densities, got shape {tuple(t.shape)}"
            )
        if not (t.is_floating_point() and t.dtype in (torch.float32, torch.float64)):
            raise ValueError(f"{name} must be float32 or float64, got {t.dtype}")
        if min(t.shape) < 4:
            raise ValueError(f"{name} needs at least 4 cells per axis, got shape {tuple(t.shape)}")
        as_float_tensor(t, name)  # finite, dense
        if (t <= 0).any():
            raise ValueError(
                f"{name} must be positive everywhere (min {t.min().item():.3g}); "
                "add a small floor to a density with empty regions"
            )
    if f.shape != g.shape:
        raise ValueError(f"source and target grids differ: {tuple(f.shape)} vs {tuple(g.shape)}")
    dtype = torch.promote_types(f.dtype, g.dtype)
    f, g = f.to(dtype), g.to(dtype)
    return f / f.mean(), g / g.mean()


def _gmres(
    apply: Callable[[torch.Tensor], torch.Tensor],
    precondition: Callable[[torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    rtol: float,
    max_iter: int,
) -> tuple[torch.Tensor, int]:
    """Right-preconditioned GMRES without restart: x = M⁻¹ y with ‖L M⁻¹ y − rhs‖ ≤
    rtol ‖rhs‖ or ``max_iter`` Arnoldi steps (modified Gram–Schmidt). Returns x and the
    steps taken."""
    beta = torch.linalg.vector_norm(rhs).item()
    if beta == 0.0:
        return torch.zeros_like(rhs), 0
    basis, directions = [rhs / beta], []
    hessenberg = torch.zeros(max_iter + 1, max_iter, dtype=torch.float64)
    coeffs = torch.zeros(1, dtype=torch.float64)
    for j in range(max_iter):
        z = precondition(basis[j])
        directions.append(z)
        w = apply(z)
        for i, q in enumerate(basis):
            hessenberg[i, j] = torch.sum(w * q).item()
            w = w - hessenberg[i, j].item() * q
        hessenberg[j + 1, j] = torch.linalg.vector_norm(w).item()
        e1 = torch.zeros(j + 2, dtype=torch.float64)
        e1[0] = beta
        h = hessenberg[: j + 2, : j + 1]
        coeffs = torch.linalg.lstsq(h, e1[:, None]).solution[:, 0]
        residual = torch.linalg.vector_norm(h @ coeffs - e1).item()
        if residual <= rtol * beta or hessenberg[j + 1, j].item() <= 1e-14 * beta:
            break
        basis.append(w / hessenberg[j + 1, j].item())
    x = torch.zeros_like(rhs)
    for c, z in zip(coeffs.tolist(), directions, strict=False):
        x = x + c * z
    return x, len(directions)


METHODS = ("newton", "fixed-point")


def solve_fftot(
    source,
    target,
    *,
    method: str = "newton",
    tol: float = 1e-6,
    max_iter: int = 1000,
    step: float = 1.0,
    inner_tol: float = 0.05,
    inner_max_iter: int = 50,
    callback: Callable[[int, float, float], None] | None = None,
) -> FFTOTResult:
    """Solve OT between two grid densities on [0, 1]^d by FFT-OT.

    Parameters
    ----------
    source, target : (n_1, …, n_d) tensors, d = 2 or 3
        Positive densities at the cell centres of the same grid (any device; float32 or
        float64), each up to a constant factor (divided by its mean).
    method : {"newton", "fixed-point"}
        "fixed-point" is the paper's iteration: each step solves the constant-coefficient
        equation Σ Ā_ii ∂_ii δ = r by FFT (module docstring); it converges linearly, at a
        rate set by how far cof(D²u) and g vary. "newton" solves the full linearisation
        of the discrete residual,

            Σ_ij A_ij ∂_ij δ + κ f ∇g(∇u) · ∇δ / g(∇u)² = r,

        by GMRES to ``inner_tol`` relative, with that same FFT solve as preconditioner
        (inexact Newton: a few FFT pairs per GMRES step, few outer steps). When it
        stops short of ``tol`` with budget left (a density with jumps, whose large ∇g
        misleads it), the fixed point is run from the start with the remaining budget
        and the better of the two is returned (``result.method`` says which).
    tol : float
        Stop when the relative residual max |κ f / g(∇u) − det D²u| / mean(det D²u) is at
        most ``tol``.
    max_iter : int
        Accepted steps at most, all continuation stages together; the result says
        ``converged=False`` if they run out.
    step : float
        Initial damping τ in (0, 1]; halved on a step that does not lower the
        root-mean-square residual or loses convexity, doubled back (up to ``step``)
        after each accepted step. Below 1/16 the stage counts as stalled and the
        continuation backs off (module docstring).
    inner_tol, inner_max_iter : float, int
        GMRES's relative tolerance and step limit (``method="newton"``).
    callback : callable(iteration, residual, step), optional
        Called after every accepted step.

    Returns
    -------
    FFTOTResult
        Potential, map and residual history on the grid.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not 0 < step <= 1:
        raise ValueError(f"step must be in (0, 1], got {step}")
    if not tol > 0 or max_iter < 0:
        raise ValueError(f"tol must be > 0 and max_iter >= 0, got {tol}, {max_iter}")
    if not 0 < inner_tol < 1 or inner_max_iter < 1:
        raise ValueError(
            f"inner_tol must be in (0, 1) and inner_max_iter >= 1, got {inner_tol}, "
            f"{inner_max_iter}"
        )
    f, g = _check_densities(source, target)
    start = time.perf_counter()
    settings = dict(tol=tol, step=step, inner_tol=inner_tol, inner_max_iter=inner_max_iter)
    result = _solve(f, g, method=method, max_iter=max_iter, callback=callback, **settings)
    if method == "newton" and not result.converged and result.iterations < max_iter:
        # Newton reads ∇g, which a density with jumps makes large; there the Newton
        # continuation can stall where the fixed point, which does not, converges
        done = result.iterations
        fallback = _solve(
            f,
            g,
            method="fixed-point",
            max_iter=max_iter - done,
            callback=None if callback is None else lambda i, r, t: callback(done + i, r, t),
            **settings,
        )
        fallback.iterations += done
        fallback.step_sizes = result.step_sizes + fallback.step_sizes
        fallback.method = "newton, then fixed-point"
        if fallback.residual < result.residual:
            result = fallback
    result.seconds = time.perf_counter() - start
    return result


def _solve(
    f: torch.Tensor,
    g: torch.Tensor,
    *,
    method: str,
    tol: float,
    max_iter: int,
    step: float,
    inner_tol: float,
    inner_max_iter: int,
    callback,
) -> FFTOTResult:
    """One FFT-OT solve by ``method`` on checked densities (see :func:`solve_fftot`)."""
    start = time.perf_counter()
    shape = tuple(f.shape)
    d = len(shape)
    centres = cell_centres(shape, f)
    eigen = _neumann_eigenvalues(shape, f)

    def state(v: torch.Tensor, g: torch.Tensor, grad_g: torch.Tensor | None) -> dict:
        grad, hess = _derivatives(v)
        det, cof, minor = _det_and_cofactor(hess)
        mapped = centres + torch.stack(grad, dim=-1)
        points = mapped.reshape(-1, d)
        g_at = _interpolate(g[None], points).view(shape)
        rho = f / g_at
        kappa = det.mean() / rho.mean()
        r = kappa * rho - det
        out = {
            "kappa_rho": kappa * rho,
            "residual": (r.abs().max() / det.mean()).item(),
            "merit": (r.square().mean().sqrt() / det.mean()).item(),
            "r": r,
            "cof": cof,
            "convex": minor.min().item() > 0,
            "kappa": kappa,
            "mapped": mapped,
        }
        if grad_g is not None:  # b = κ f ∇g(∇u) / g(∇u)², the advection of the Jacobian
            dg = _interpolate(grad_g, points).view((d, *shape))
            out["b"] = kappa * rho / g_at * dg
        return out

    def poisson(cof: list[list[torch.Tensor]]) -> Callable[[torch.Tensor], torch.Tensor]:
        """Σ Ā_ii ∂_ii δ = r solved by the cosine transform (mean-free δ)."""
        denom = sum(cof[i][i].mean() * eigen[i] for i in range(d)).clone()
        denom.view(-1)[0] = 1.0

        def solve(r: torch.Tensor) -> torch.Tensor:
            spectrum = cosine_transform(r) / denom
            spectrum.view(-1)[0] = 0.0
            return cosine_transform(spectrum, inverse=True)

        return solve

    def linearised(current: dict) -> tuple[Callable, Callable]:
        """The Jacobian system and its preconditioner. L kills constants and its range
        misses one direction, so the constant part c = mean(δ), which does not move the
        map, stands for a change of κ: L̃ δ = L δ − c w with w = κρ / mean(κρ), a square
        system that GMRES can solve to any tolerance."""
        cof, b, weight = current["cof"], current["b"], current["kappa_rho"]
        weight = weight / weight.mean()
        poisson_solve = poisson(cof)

        def apply(delta: torch.Tensor) -> torch.Tensor:
            grad, hess = _derivatives(delta)
            out = sum(cof[i][j] * hess[i][j] for i in range(d) for j in range(d))
            out = out + sum(b[i] * grad[i] for i in range(d))
            return out - delta.mean() * weight

        def precondition(r: torch.Tensor) -> torch.Tensor:
            c = -r.mean()  # L̃ (c·1) = −c weight, whose mean is −c
            return poisson_solve(r + c * weight) + c

        return apply, precondition

    def descend(v: torch.Tensor, g: torch.Tensor, target_tol: float, budget: int):
        """Damped steps towards the target g from v until the residual is at most
        ``target_tol`` (True), or the budget is spent or the step falls under
        ``_MIN_STEP`` (False: a stall, the caller backs off along the continuation).
        Returns v, the residual history and the step sizes."""
        grad_g = torch.stack(_derivatives(g)[0]) if method == "newton" else None
        current = state(v, g, grad_g)
        history, taus, tau = [current["residual"]], [], step
        while current["residual"] > target_tol:
            if len(taus) >= budget:
                return v, history, taus, False
            if method == "newton":
                apply, precondition = linearised(current)
                delta, _ = _gmres(apply, precondition, current["r"], inner_tol, inner_max_iter)
                delta = delta - delta.mean()
            else:
                delta = poisson(current["cof"])(current["r"])
            while tau >= _MIN_STEP:
                trial = state(v + tau * delta, g, grad_g)
                if trial["convex"] and trial["merit"] < current["merit"]:
                    break
                tau *= 0.5
            else:
                return v, history, taus, False
            v, current = v + tau * delta, trial
            history.append(current["residual"])
            taus.append(tau)
            if callback is not None:
                callback(len(steps) + len(taus), current["residual"], tau)
            tau = min(step, 2 * tau)
        return v, history, taus, True

    # continuation: targets g_t = (1 − t) f + t g from t = 0 (the identity map) to t = 1,
    # in one stage when that converges; a stage that stalls is retried from the last
    # solved t with half the stride, and a solved one doubles it
    v = torch.zeros_like(f)
    steps: list[float] = []
    stages: list[float] = []
    history: list[float] = []
    t_done, stride = 0.0, 1.0
    while len(steps) < max_iter and stride >= _MIN_STRIDE:
        t = min(1.0, t_done + stride)
        final = t == 1.0
        g_t = g if final else (1 - t) * f + t * g
        budget = max_iter - len(steps)
        v_new, attempt, taus, ok = descend(v, g_t, tol if final else _STAGE_TOL, budget)
        steps.extend(taus)
        if ok or (final and len(steps) >= max_iter):  # solved, or out of budget at t = 1
            v = v_new
            history = attempt if final else []
            if ok:
                stages.append(t)
                t_done = t
            if final:
                break
            stride *= 2
        else:
            stride *= 0.5
    current = state(v, g, None)  # what is reported is measured against the target itself
    if not history or history[-1] != current["residual"]:
        history = [current["residual"]]
    converged = t_done == 1.0 and current["residual"] <= tol
    v = v - v.mean()
    potential = 0.5 * (centres**2).sum(-1) + v
    return FFTOTResult(
        potential=potential,
        v=v,
        transport_map=current["mapped"],
        residuals=history,
        mass_factor=float(current["kappa"]),
        converged=converged,
        iterations=len(steps),
        seconds=time.perf_counter() - start,
        step_sizes=steps,
        stages=stages,
        method=method,
    )
