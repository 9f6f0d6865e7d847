"""Planar slices ``x = origin + s·u + t·v`` of an input space."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PlaneSlice"]


def _vector(value, name: str, dim: int | None = None) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if dim is not None and arr.size != dim:
        raise ValueError(f"{name} has {arr.size} entries, expected {dim}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


@dataclass(frozen=True)
class PlaneSlice:
    """The affine plane ``x(s, t) = origin + s·u + t·v`` in ``R^d``.

    Attributes
    ----------
    origin, u, v : np.ndarray, shape (d,), float64
        ``u`` and ``v`` must be linearly independent.  Inputs of any shape are
        flattened (C order), so conv-net inputs of shape (C, H, W) work too.
    """

    origin: np.ndarray
    u: np.ndarray
    v: np.ndarray

    def __post_init__(self) -> None:
        origin = _vector(self.origin, "origin")
        u = _vector(self.u, "u", origin.size)
        v = _vector(self.v, "v", origin.size)
        gram = np.array([[u @ u, u @ v], [u @ v, v @ v]])
        if np.linalg.det(gram) <= 1e-24 * max(gram[0, 0] * gram[1, 1], 1e-300):
            raise ValueError("the slice directions u and v must be linearly independent")
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "u", u)
        object.__setattr__(self, "v", v)

    @property
    def dim(self) -> int:
        """Dimension ``d`` of the ambient input space."""
        return int(self.origin.size)

    @property
    def area_factor(self) -> float:
        """Input-space area of a unit (s, t) square: ``sqrt(det [[u·u, u·v], [u·v, v·v]])``."""
        u, v = self.u, self.v
        return float(np.sqrt(max((u @ u) * (v @ v) - (u @ v) ** 2, 0.0)))

    @property
    def homogeneous(self) -> np.ndarray:
        """Matrix ``H`` of shape (3, d) with ``x = [s, t, 1] @ H``."""
        return np.stack([self.u, self.v, self.origin])

    def to_input(self, st) -> np.ndarray:
        """Map slice coordinates (..., 2) to input points (..., d)."""
        st = np.asarray(st, dtype=np.float64)
        if st.shape[-1] != 2:
            raise ValueError(f"slice coordinates must have last dimension 2, got {st.shape}")
        return self.origin + st[..., :1] * self.u + st[..., 1:] * self.v

    def coordinates(self, x) -> np.ndarray:
        """Least-squares slice coordinates (..., 2) of input points (..., d)."""
        x = np.asarray(x, dtype=np.float64)
        basis = np.stack([self.u, self.v], axis=1)  # (d, 2)
        sol, *_ = np.linalg.lstsq(basis, (x - self.origin).reshape(-1, self.dim).T, rcond=None)
        return sol.T.reshape(*x.shape[:-1], 2)

    @classmethod
    def standard(cls, dim: int = 2, axes: tuple[int, int] = (0, 1), origin=None) -> PlaneSlice:
        """The coordinate plane spanned by ``e_axes[0]`` and ``e_axes[1]`` through ``origin``.

        For ``dim == 2`` this is the identity parametrisation ``x = (s, t)``.
        """
        if dim < 2:
            raise ValueError(f"a plane slice needs input dimension >= 2, got {dim}")
        i, j = axes
        if not (0 <= i < dim and 0 <= j < dim) or i == j:
            raise ValueError(f"axes {axes} are not two distinct coordinates of R^{dim}")
        u = np.zeros(dim)
        v = np.zeros(dim)
        u[i] = 1.0
        v[j] = 1.0
        o = np.zeros(dim) if origin is None else _vector(origin, "origin", dim)
        return cls(o, u, v)

    @classmethod
    def through_point(cls, point, u, v, *, orthonormal: bool = False) -> PlaneSlice:
        """The plane through ``point`` spanned by directions ``u`` and ``v``.

        With ``orthonormal=True`` the directions are replaced by the Gram–Schmidt
        orthonormal basis of their span (``u`` normalised first), so (s, t) areas
        equal input-space areas.
        """
        p = _vector(point, "point")
        u = _vector(u, "u", p.size)
        v = _vector(v, "v", p.size)
        if orthonormal:
            u, v = _gram_schmidt(u, v)
        return cls(p, u, v)

    @classmethod
    def through_points(cls, p0, p1, p2, *, orthonormal: bool = False) -> PlaneSlice:
        """The plane containing three data points.

        With ``orthonormal=False`` (default) ``origin = p0``, ``u = p1 - p0`` and
        ``v = p2 - p0``: the points land at (s, t) = (0, 0), (1, 0) and (0, 1).
        With ``orthonormal=True`` the directions are orthonormalised: ``p0`` lands at
        (0, 0), ``p1`` at (‖p1−p0‖, 0) and ``p2`` at (⟨p2−p0, e1⟩, ⟨p2−p0, e2⟩), an
        isometric picture of the triangle.  ``coordinates`` returns these positions.
        """
        a = _vector(p0, "p0")
        b = _vector(p1, "p1", a.size)
        c = _vector(p2, "p2", a.size)
        try:
            return cls.through_point(a, b - a, c - a, orthonormal=orthonormal)
        except ValueError:
            raise ValueError("the three points are collinear: they span no plane") from None


def _gram_schmidt(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nu = np.linalg.norm(u)
    if nu == 0:
        raise ValueError("the slice directions u and v must be linearly independent")
    e1 = u / nu
    w = v - (v @ e1) * e1
    nw = np.linalg.norm(w)
    if nw <= 1e-12 * np.linalg.norm(v):
        raise ValueError("the slice directions u and v must be linearly independent")
    return e1, w / nw
