"""Mode-collapse metrics: 2D Gaussian mixtures and stacked digits.

Protocols of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin, Khetan, Fanti & Oh 2018):

* 2D mixtures of K Gaussians (ring / grid) with common standard deviation σ: a sample is
  *high quality* if it lies within 3σ of its nearest mode centre; a mode is *covered*
  when at least ``min_count`` high-quality samples are assigned to it; the reverse KL
  KL(p_gen ‖ Uniform(K)) is computed from the mode histogram of the high-quality samples.
* Stacked MNIST (1000 modes): each of the 3 channels is classified by a digit classifier,
  giving a triple (a, b, c) ↦ mode 100a + 10b + c; report the number of distinct triples
  and KL(p_gen ‖ Uniform(1000)).

All KL divergences use the natural logarithm.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import torch

from aeot._validation import as_float_tensor, check_positive_int

__all__ = [
    "classify_stacked",
    "kl_to_uniform",
    "mixture_mode_metrics",
    "ring_means",
    "stacked_mode_metrics",
]


def kl_to_uniform(counts) -> float:
    """KL divergence of an empirical histogram from the uniform distribution on its bins.

    KL(p ‖ U_K) = Σ_i p_i log(p_i K) = log K − H(p),   p_i = c_i / Σ_j c_j,

    in nats. Empty bins contribute 0 (the convention 0·log 0 = 0), so the value is
    finite, lies in [0, log K], is 0 for a uniform histogram and log K when all mass is
    in one bin.

    Parameters
    ----------
    counts : (K,) array of non-negative numbers
        Bin counts (or unnormalised masses); K is the number of modes, including empty
        ones.

    Raises
    ------
    ValueError
        For an empty, negative, non-finite or all-zero histogram.
    """
    c = as_float_tensor(counts, "counts", ndim=1, dtype=torch.float64).cpu().numpy()
    if (c < 0).any():
        raise ValueError("counts must be non-negative")
    total = c.sum()
    if total <= 0:
        raise ValueError("counts are all zero: the distribution is undefined")
    p = c / total
    nz = p > 0
    return float(max((p[nz] * np.log(p[nz] * c.size)).sum(), 0.0))


def ring_means(n_modes: int = 8, radius: float = 2.0) -> np.ndarray:
    """(K, 2) centres of the usual ring mixture: K points equally spaced on a circle."""
    n_modes = check_positive_int(n_modes, "n_modes")
    angles = 2.0 * np.pi * np.arange(n_modes) / n_modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def mixture_mode_metrics(
    samples, means, std: float, *, n_std: float = 3.0, min_count: int = 1
) -> dict[str, Any]:
    """Mode coverage and quality of samples from a Gaussian-mixture generator (PacGAN protocol).

    Each sample x is assigned to its nearest centre μ_j(x) (Euclidean). It is high
    quality when |x − μ_j(x)| ≤ n_std · std. With c_j the number of high-quality samples
    assigned to mode j:

    * ``modes_covered`` = #{j : c_j ≥ min_count},
    * ``high_quality_fraction`` = Σ_j c_j / n,
    * ``kl`` = KL(c/Σc ‖ Uniform(K)) = Σ_j p_j log(K p_j) in nats, 0·log 0 = 0
      (``nan`` when there is no high-quality sample at all).

    Parameters
    ----------
    samples : (n, d) array
        Generated points (d = 2 for the standard benchmarks; any d works).
    means : (K, d) array
        Mode centres.
    std : float
        Standard deviation of each mixture component (> 0).
    n_std : float
        Quality radius in units of ``std`` (3 in PacGAN/VEEGAN).
    min_count : int
        High-quality samples a mode needs to count as covered (default 1).

    Returns
    -------
    dict
        ``modes_covered`` (int), ``n_modes`` (int), ``high_quality_fraction`` (float),
        ``kl`` (float), ``per_mode_counts`` ((K,) int64 ndarray of c_j).
    """
    x = as_float_tensor(samples, "samples", ndim=2, dtype=torch.float64)
    mu = as_float_tensor(means, "means", ndim=2, dtype=torch.float64)
    if x.shape[1] != mu.shape[1]:
        raise ValueError(
            f"dimension mismatch: samples have {x.shape[1]} columns, means have {mu.shape[1]}"
        )
    std = float(std)
    if not math.isfinite(std) or std <= 0:
        raise ValueError(f"std must be positive and finite, got {std}")
    n_std = float(n_std)
    if not math.isfinite(n_std) or n_std <= 0:
        raise ValueError(f"n_std must be positive and finite, got {n_std}")
    min_count = check_positive_int(min_count, "min_count")
    k = mu.shape[0]
    dist = torch.cdist(x, mu, compute_mode="donot_use_mm_for_euclid_dist")
    nearest_dist, nearest = dist.min(dim=1)
    good = nearest_dist <= n_std * std
    counts = torch.bincount(nearest[good], minlength=k).cpu().numpy().astype(np.int64)
    n_good = int(counts.sum())
    return {
        "modes_covered": int((counts >= min_count).sum()),
        "n_modes": k,
        "high_quality_fraction": n_good / x.shape[0],
        "kl": kl_to_uniform(counts) if n_good > 0 else float("nan"),
        "per_mode_counts": counts,
    }


def stacked_mode_metrics(channel_predictions) -> dict[str, Any]:
    """Mode statistics of stacked-digit samples (Stacked MNIST, 1000 modes).

    A row (a, b, c) of predicted digits is mode 100a + 10b + c.

    Parameters
    ----------
    channel_predictions : (n, 3) integer array with values in 0..9

    Returns
    -------
    dict
        ``modes``: number of distinct triples present (out of 1000);
        ``kl``: KL(p_gen ‖ Uniform(1000)) = Σ_m p_m log(1000 p_m) in nats, 0·log 0 = 0;
        ``histogram``: (1000,) int64 ndarray of counts per mode.
    """
    if isinstance(channel_predictions, torch.Tensor):
        pred = channel_predictions.detach().cpu().numpy()
    else:
        pred = np.asarray(channel_predictions)
    if pred.ndim != 2 or pred.shape[1] != 3:
        raise ValueError(f"channel_predictions must have shape (n, 3), got {pred.shape}")
    if pred.shape[0] == 0:
        raise ValueError("channel_predictions is empty")
    if not np.issubdtype(pred.dtype, np.integer):
        if not np.issubdtype(pred.dtype, np.floating) or not np.all(pred == np.round(pred)):
            raise TypeError(f"channel_predictions must hold integer digits, got dtype {pred.dtype}")
    pred = pred.astype(np.int64)
    if pred.min() < 0 or pred.max() > 9:
        raise ValueError("channel_predictions must be digits in 0..9")
    codes = pred[:, 0] * 100 + pred[:, 1] * 10 + pred[:, 2]
    hist = np.bincount(codes, minlength=1000).astype(np.int64)
    return {"modes": int((hist > 0).sum()), "kl": kl_to_uniform(hist), "histogram": hist}


def classify_stacked(classifier, images, *, batch_size: int = 1024) -> torch.Tensor:
    """Apply a 1-channel digit classifier to each channel of stacked-digit images.

    Parameters
    ----------
    classifier
        Object with ``predict(x) -> (m,) labels`` for ``x`` of shape (m, 1, H, W), e.g.
        :class:`aeot.metrics.features.ConvClassifier`.
    images : (n, 3, H, W) array or tensor
        Stacked images, one digit per channel.
    batch_size : int
        Forwarded to ``classifier.predict`` when it accepts it.

    Returns
    -------
    (n, 3) int64 tensor
        Predicted digit of channel 0, 1, 2 per image; feed to :func:`stacked_mode_metrics`.
    """
    x = as_float_tensor(images, "images", ndim=4)
    if x.shape[1] != 3:
        raise ValueError(f"stacked images must have 3 channels, got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    flat = x.reshape(n * 3, 1, h, w)
    try:
        accepts_batch = "batch_size" in inspect.signature(classifier.predict).parameters
    except (TypeError, ValueError):  # builtins without a signature
        accepts_batch = False
    if accepts_batch:
        pred = classifier.predict(flat, batch_size=batch_size)
    else:
        pred = classifier.predict(flat)
    pred = torch.as_tensor(pred).to(torch.int64).cpu()
    if pred.shape != (n * 3,):
        raise ValueError(
            f"classifier.predict returned shape {tuple(pred.shape)}, expected ({n * 3},)"
        )
    return pred.reshape(n, 3)
