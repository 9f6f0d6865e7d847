"""Fréchet distance between Gaussians fitted to two sets of features.

For Gaussians N(m1, C1) and N(m2, C2) the squared 2-Wasserstein (Fréchet) distance is

    FD = |m1 − m2|² + Tr(C1 + C2 − 2 (C1 C2)^{1/2})

(Dowson & Landau 1982). With Inception-v3 pool features this is the FID of Heusel et
al. 2017 ("GANs trained by a two time-scale update rule converge to a local Nash
equilibrium"); with any other feature extractor it is *not* FID and must be reported
under the name of its feature space (see :mod:`aeot.metrics.features`).

Everything is computed in float64 on the CPU with numpy/scipy.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import scipy.linalg

from aeot._validation import as_float_tensor

__all__ = ["feature_statistics", "frechet_distance", "gaussian_frechet"]

_Method = Literal["eigh", "sqrtm"]


def _features64(feats, name: str) -> np.ndarray:
    """Validate an ``(n, d)`` feature array and return it as float64 numpy."""
    x = as_float_tensor(feats, name, ndim=2, dtype=None)
    if x.shape[0] < 2:
        raise ValueError(
            f"{name} needs at least 2 samples to estimate a covariance, got {x.shape[0]}"
        )
    if x.shape[1] < 1:
        raise ValueError(f"{name} has no feature dimensions (shape {tuple(x.shape)})")
    return x.detach().cpu().double().numpy()


def feature_statistics(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of a feature set.

    Parameters
    ----------
    feats : (n, d) array or tensor
        n >= 2 feature vectors, finite.

    Returns
    -------
    mu : (d,) float64 ndarray
        Sample mean (1/n) Σ_i x_i.
    cov : (d, d) float64 ndarray
        Sample covariance (1/(n−1)) Σ_i (x_i − mu)(x_i − mu)ᵀ (as ``np.cov`` and the
        reference FID implementations).
    """
    x = _features64(feats, "feats")
    mu = x.mean(axis=0)
    centred = x - mu
    cov = centred.T @ centred / (x.shape[0] - 1)
    return mu, 0.5 * (cov + cov.T)


def _check_gaussian(mu, cov, name: str) -> tuple[np.ndarray, np.ndarray]:
    m = as_float_tensor(mu, f"mu{name}", ndim=1).detach().cpu().double().numpy()
    c = as_float_tensor(cov, f"cov{name}", ndim=2).detach().cpu().double().numpy()
    d = m.shape[0]
    if c.shape != (d, d):
        raise ValueError(f"cov{name} must have shape ({d}, {d}) to match mu{name}, got {c.shape}")
    scale = max(float(np.abs(c).max()), 1e-300)
    if float(np.abs(c - c.T).max()) > 1e-6 * scale:
        raise ValueError(f"cov{name} is not symmetric")
    return m, 0.5 * (c + c.T)


def _psd_sqrt(c: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix; tiny negative eigenvalues → 0."""
    w, v = np.linalg.eigh(c)
    w = np.clip(w, 0.0, None)
    return (v * np.sqrt(w)) @ v.T


def _trace_sqrt_product_eigh(c1: np.ndarray, c2: np.ndarray) -> float:
    """Tr((C1 C2)^{1/2}) via the symmetric PSD matrix M = C1^{1/2} C2 C1^{1/2}.

    C1 C2 = C1^{1/2} (C1^{1/2} C2 C1^{1/2}) C1^{-1/2} is similar to M when C1 is
    invertible, and has the same non-zero spectrum in general, so
    Tr((C1 C2)^{1/2}) = Σ_i sqrt(λ_i(M)). M is symmetric PSD, hence ``eigvalsh`` is
    stable and exact for singular covariances too (no jitter needed); round-off
    negatives are clipped to zero.
    """
    s1 = _psd_sqrt(c1)
    m = s1 @ c2 @ s1
    lam = np.linalg.eigvalsh(0.5 * (m + m.T))
    return float(np.sqrt(np.clip(lam, 0.0, None)).sum())


def _trace_sqrt_product_sqrtm(c1: np.ndarray, c2: np.ndarray, eps: float) -> float:
    """Tr((C1 C2)^{1/2}) with ``scipy.linalg.sqrtm``, as in the reference FID code.

    If the product is singular (non-finite square root), eps·I is added to both
    covariances and the root recomputed; a warning says so. Imaginary parts caused by
    round-off are discarded when their diagonal is below 1e-3 relative to the trace
    scale, otherwise a ``ValueError`` is raised.
    """
    covmean = scipy.linalg.sqrtm(c1 @ c2)
    if not np.isfinite(covmean).all():
        warnings.warn(
            f"product of covariances is singular; adding {eps:g}·I to both (sqrtm method)",
            RuntimeWarning,
            stacklevel=3,
        )
        offset = eps * np.eye(c1.shape[0])
        covmean = scipy.linalg.sqrtm((c1 + offset) @ (c2 + offset))
    if np.iscomplexobj(covmean):
        imag = float(np.abs(np.diagonal(covmean).imag).max())
        scale = max(1.0, float(np.abs(np.diagonal(covmean).real).max()))
        if imag > 1e-3 * scale:
            raise ValueError(f"matrix square root has a large imaginary component {imag:.3g}")
        covmean = covmean.real
    return float(np.trace(covmean))


def gaussian_frechet(mu1, cov1, mu2, cov2, *, method: _Method = "eigh", eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2).

    FD = |mu1 − mu2|² + Tr(cov1) + Tr(cov2) − 2 Tr((cov1 cov2)^{1/2}).

    Parameters
    ----------
    mu1, mu2 : (d,) arrays
        Means.
    cov1, cov2 : (d, d) arrays
        Symmetric positive semi-definite covariances.
    method : {"eigh", "sqrtm"}
        ``"eigh"`` (default) computes Tr((C1 C2)^{1/2}) from the eigenvalues of the
        symmetric matrix C1^{1/2} C2 C1^{1/2}; it is exact for singular covariances and
        never produces imaginary parts. ``"sqrtm"`` uses ``scipy.linalg.sqrtm(C1 C2)``
        like the reference FID implementation (Heusel et al. 2017; pytorch-fid): only
        when the product is singular is the jitter eps·I added to both covariances,
        and small imaginary parts from round-off are dropped.
    eps : float
        Jitter for the ``"sqrtm"`` fallback; unused by ``"eigh"``.

    Returns
    -------
    float
        The distance (≥ 0; round-off negatives are clamped to 0). It is the squared
        2-Wasserstein distance between the two Gaussians.
    """
    m1, c1 = _check_gaussian(mu1, cov1, "1")
    m2, c2 = _check_gaussian(mu2, cov2, "2")
    if m1.shape != m2.shape:
        raise ValueError(f"dimension mismatch: mu1 has shape {m1.shape}, mu2 {m2.shape}")
    if method == "eigh":
        tr_sqrt = _trace_sqrt_product_eigh(c1, c2)
    elif method == "sqrtm":
        tr_sqrt = _trace_sqrt_product_sqrtm(c1, c2, eps)
    else:
        raise ValueError(f"method must be 'eigh' or 'sqrtm', got {method!r}")
    diff = m1 - m2
    fd = float(diff @ diff + np.trace(c1) + np.trace(c2) - 2.0 * tr_sqrt)
    return max(fd, 0.0)


def frechet_distance(feats_a, feats_b, *, method: _Method = "eigh", eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets.

    FD = |m_a − m_b|² + Tr(C_a + C_b − 2 (C_a C_b)^{1/2}), with the sample means and
    unbiased sample covariances of ``feats_a`` and ``feats_b`` (float64). On Inception
    pool3 features this is FID (Heusel et al. 2017); on other features report it under
    the feature space's name. The estimate is biased upwards for small n.

    Parameters
    ----------
    feats_a : (n_a, d) array or tensor
    feats_b : (n_b, d) array or tensor
        Feature sets with the same d and at least 2 rows each; no NaN/inf.
    method, eps
        See :func:`gaussian_frechet`.

    Returns
    -------
    float
        The Fréchet distance, symmetric in its arguments.
    """
    a = _features64(feats_a, "feats_a")
    b = _features64(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"feature dimension mismatch: feats_a has {a.shape[1]}, feats_b has {b.shape[1]}"
        )
    mu_a, cov_a = feature_statistics(a)
    mu_b, cov_b = feature_statistics(b)
    return gaussian_frechet(mu_a, cov_a, mu_b, cov_b, method=method, eps=eps)
