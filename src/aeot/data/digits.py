"""Embedded 8×8 digits (scikit-learn) and stacked digits (three digits in three channels)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from aeot._validation import check_positive_int
from aeot.data.dataset import Dataset, make_rng


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32)[:, None] / 16.0  # (1797, 1, 8, 8)
    return images, np.asarray(bunch.target, dtype=np.int64)


def load_digits8() -> Dataset:
    """scikit-learn's 8×8 handwritten digits, shipped with scikit-learn (no download).

    Returns
    -------
    Dataset
        1797 images, ``x`` of shape (1797, 1, 8, 8), float32 in [0, 1] (pixel values
        0..16 divided by 16), ``labels`` (1797,) the digit 0..9.
    """
    images, target = _digits_arrays()
    return Dataset(
        torch.from_numpy(images.copy()),
        labels=torch.from_numpy(target.copy()),
        name="digits",
        kind="image",
        meta={"classes": [str(i) for i in range(10)]},
    )


def stacked_mode_ids(labels: torch.Tensor) -> torch.Tensor:
    """Mode id ``100 a + 10 b + c`` of stacked-digit labels ``(n, 3)`` (1000 modes in all)."""
    labels = torch.as_tensor(labels)
    if labels.ndim != 2 or labels.shape[1] != 3:
        raise ValueError(f"stacked labels must have shape (n, 3), got {tuple(labels.shape)}")
    return labels[:, 0] * 100 + labels[:, 1] * 10 + labels[:, 2]


def stacked_digits(
    base: Dataset, n: int = 10000, seed: int | np.random.Generator | None = 0
) -> Dataset:
    """Stacked digits (Stacked MNIST, Metz et al. 2017): three random digits as RGB channels.

    Parameters
    ----------
    base : Dataset
        Single-channel labelled digit images, e.g. :func:`load_digits8` (8×8) or MNIST (28×28).
    n : int
        Number of stacked images to draw.
    seed : int or numpy.random.Generator
        Random seed of the draw.

    Returns
    -------
    Dataset
        ``x`` (n, 3, H, W); ``labels`` (n, 3), the digit in each channel, so that the
        mode id is ``100 a + 10 b + c`` (see :func:`stacked_mode_ids`).
    """
    if not isinstance(base, Dataset):
        raise TypeError(f"base must be an aeot.data.Dataset, got {type(base).__name__}")
    if base.kind != "image" or base.x.shape[1] != 1:
        raise ValueError(
            f"base must hold single-channel images (n, 1, H, W), got shape {base.shape}"
        )
    if base.labels is None or base.labels.ndim != 1:
        raise ValueError("base must have one integer label per image")
    n = check_positive_int(n, "n")
    rng = make_rng(seed)
    idx = torch.from_numpy(rng.integers(0, len(base), size=(n, 3)))  # (n, 3)
    idx = idx.to(base.x.device)
    x = base.x[idx, 0]  # (n, 3, H, W)
    labels = base.labels[idx]  # (n, 3)
    return Dataset(
        x,
        labels=labels,
        name=f"stacked-{base.name}",
        kind="image",
        meta={"base": base.name, "n_modes": 1000},
    )
