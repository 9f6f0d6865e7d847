"""The :class:`Dataset` container shared by every loader and generator in :mod:`aeot.data`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from aeot._validation import as_float_tensor, resolve_device

KINDS = ("image", "points")
# Images must lie in [0, 1]; allow float round-off from resizing or scaling.
_IMAGE_TOLERANCE = 1e-5


def make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """Return a numpy ``Generator`` from an integer seed (or pass a Generator through)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an integer or a numpy Generator, got {type(seed).__name__}")
    return np.random.default_rng(seed)


@dataclass(eq=False)
class Dataset:
    """A data set held in memory as one float tensor.

    Parameters
    ----------
    x : torch.Tensor
        Samples, shape ``(n, c, h, w)`` with values in [0, 1] for ``kind="image"``,
        shape ``(n, d)`` for ``kind="points"``.
    labels : torch.Tensor, optional
        Integer labels, shape ``(n,)`` or ``(n, k)`` (e.g. the three digits of a
        stacked-MNIST sample). For mixtures, the index of the generating component.
    name : str
        A short human-readable name.
    kind : {"image", "points"}
        Whether ``x`` holds images or point clouds.
    modes : numpy.ndarray, optional
        For mixtures: the known component centres, shape ``(K, d)``.
    mode_std : float, optional
        For Gaussian mixtures: the per-coordinate standard deviation of each component.
    meta : dict
        Free-form extra information (class names, generator parameters, source path).
    """

    x: torch.Tensor
    labels: torch.Tensor | None = None
    name: str = "dataset"
    kind: str = "points"
    modes: np.ndarray | None = None
    mode_std: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        x = as_float_tensor(self.x, f"{self.name}.x")
        if self.kind == "image":
            if x.ndim != 4:
                raise ValueError(f"image data must have shape (n, c, h, w), got {tuple(x.shape)}")
            lo, hi = float(x.min()), float(x.max())
            if lo < -_IMAGE_TOLERANCE or hi > 1 + _IMAGE_TOLERANCE:
                raise ValueError(
                    f"image data must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]"
                )
        elif x.ndim != 2:
            raise ValueError(f"point data must have shape (n, d), got {tuple(x.shape)}")
        self.x = x
        if self.labels is not None:
            labels = torch.as_tensor(self.labels)
            if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
                raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
            labels = labels.to(torch.int64)
            if labels.ndim not in (1, 2) or labels.shape[0] != x.shape[0]:
                raise ValueError(
                    f"labels must have shape ({x.shape[0]},) or ({x.shape[0]}, k), "
                    f"got {tuple(labels.shape)}"
                )
            self.labels = labels.to(x.device)
        if self.modes is not None:
            modes = np.asarray(self.modes, dtype=np.float64)
            if self.kind != "points" or modes.ndim != 2 or modes.shape[1] != x.shape[1]:
                raise ValueError(
                    f"modes must have shape (K, {x.shape[1] if x.ndim == 2 else 'd'}) "
                    f"for point data, got {modes.shape}"
                )
            self.modes = modes
        if self.mode_std is not None:
            self.mode_std = float(self.mode_std)
            if not self.mode_std >= 0:
                raise ValueError(f"mode_std must be >= 0, got {self.mode_std}")

    # ------------------------------------------------------------------ shape
    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``x``: ``(n, c, h, w)`` or ``(n, d)``."""
        return tuple(self.x.shape)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample: ``(c, h, w)`` or ``(d,)``."""
        return tuple(self.x.shape[1:])

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        """``(c, h, w)`` for image data, ``None`` for point data."""
        if self.kind != "image":
            return None
        c, h, w = self.x.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def dim(self) -> int:
        """Number of features of one flattened sample (``c*h*w`` or ``d``)."""
        return int(np.prod(self.x.shape[1:]))

    @property
    def device(self) -> torch.device:
        return self.x.device

    def flat(self) -> torch.Tensor:
        """``x`` reshaped to ``(n, dim)``."""
        return self.x.reshape(len(self), -1)

    # ---------------------------------------------------------------- subsets
    def subset(self, indices, *, name: str | None = None) -> Dataset:
        """A new Dataset holding the samples at ``indices`` (array of ints or a slice)."""
        if isinstance(indices, slice):
            idx = indices
        else:
            idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64, device=self.x.device)
            if idx.ndim != 1:
                raise ValueError(f"indices must be one-dimensional, got shape {tuple(idx.shape)}")
            if idx.numel() and (int(idx.min()) < -len(self) or int(idx.max()) >= len(self)):
                raise IndexError(f"indices out of range for a dataset of {len(self)} samples")
        return dataclasses.replace(
            self,
            x=self.x[idx],
            labels=None if self.labels is None else self.labels[idx],
            name=self.name if name is None else name,
            meta=dict(self.meta),
        )

    def split(
        self, fraction: float = 0.9, seed: int | np.random.Generator | None = 0
    ) -> tuple[Dataset, Dataset]:
        """Randomly split into two parts holding ``fraction`` and ``1 - fraction`` of the samples.

        Parameters
        ----------
        fraction : float
            Share of the first part, strictly between 0 and 1. The first part gets
            ``round(fraction * n)`` samples; both parts are non-empty.
        seed : int or numpy.random.Generator
            Seed of the random permutation (deterministic for a given seed).

        Returns
        -------
        (first, second) : tuple of Dataset
        """
        fraction = float(fraction)
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
        n = len(self)
        if n < 2:
            raise ValueError(f"cannot split a dataset of {n} sample(s)")
        k = min(max(round(fraction * n), 1), n - 1)
        perm = make_rng(seed).permutation(n)
        return (
            self.subset(np.sort(perm[:k]), name=f"{self.name}[split:first]"),
            self.subset(np.sort(perm[k:]), name=f"{self.name}[split:second]"),
        )

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Dataset:
        """A copy of this Dataset with ``x`` (and ``labels``) on ``device`` / in ``dtype``."""
        dev = resolve_device(device) if device is not None else self.x.device
        x = self.x.to(device=dev, dtype=dtype if dtype is not None else self.x.dtype)
        labels = None if self.labels is None else self.labels.to(dev)
        return dataclasses.replace(self, x=x, labels=labels, meta=dict(self.meta))

    def __repr__(self) -> str:
        extra = f", modes={self.modes.shape[0]}" if self.modes is not None else ""
        lab = "" if self.labels is None else f", labels={tuple(self.labels.shape)}"
        return (
            f"Dataset(name={self.name!r}, kind={self.kind!r}, shape={self.shape}"
            f"{lab}{extra}, device={self.x.device})"
        )
