"""The generative models of aeot, one estimator contract (:mod:`aeot.models.base`).

* :class:`AEOT` — autoencoder + semi-discrete OT + the piecewise-linear extension that
  never crosses the singular set (Lei, Gu et al. 2020; :mod:`aeot.pipeline`).
* :class:`AEOTGAN` — AE-OT's decoder refined adversarially from AE-OT codes
  (:mod:`aeot.aeotgan`).
* :class:`GANBaseline`, :class:`WGANGPBaseline`, :class:`VAEBaseline` — the baselines
  (:mod:`aeot.baselines`).

All take ``Model(config=None, **params)``, have ``get_params`` / ``set_params`` /
``clone`` (:func:`sklearn.base.clone` works), raise :class:`NotFittedError` before
``fit``, and are imported on first use. Every one saves to a folder with ``save(path)``
and reads it back with ``Model.load(path)``; :func:`load` opens any of them by the
format its folder names (:mod:`aeot.core.persist`, one persistence for all).
"""

from __future__ import annotations

import importlib

from aeot.models.base import ConfigEstimator, NotFittedError


def load(path, *, device: str | None = None):
    """Open a saved AE-OT, AE-OT-GAN or baseline model folder (its class is read from
    the folder's config.json) onto ``device`` (default: the saved one)."""
    from aeot.core.persist import load_model

    return load_model(path, device=device)


_LAZY = {
    "AEOT": "aeot.pipeline",
    "AEOTConfig": "aeot.pipeline",
    "AEOTGAN": "aeot.aeotgan",
    "AEOTGANConfig": "aeot.aeotgan",
    "GANBaseline": "aeot.baselines",
    "WGANGPBaseline": "aeot.baselines",
    "VAEBaseline": "aeot.baselines",
}

__all__ = ["ConfigEstimator", "NotFittedError", "load", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
