"""Score one set of generated samples against real data (:func:`evaluate_samples`).

* **Gaussian mixtures** (``dataset.modes`` set; PacGAN / VEEGAN protocol): modes covered
  out of K, percentage of high-quality samples (within 3σ of their nearest centre) and
  KL(p_gen ‖ Uniform(K)) of the mode histogram (:func:`aeot.metrics.mixture_mode_metrics`),
  plus k-NN precision/recall (Kynkäänniemi et al. 2019) and the Fréchet distance of
  fitted Gaussians, both in data space (``"FD-data"``).
* **Labelled images**: Fréchet distance, KID and precision/recall in the feature space of
  a digit classifier (:class:`aeot.metrics.ConvClassifier`), reported under the name of
  that space (``"FD-digits-cnn"``, ``"KID-digits-cnn"``; ``"FID"`` only for Inception
  features); the classifier's predicted classes give ``modes`` (classes present) and
  ``kl`` = KL(p_gen ‖ p_data) of the class histograms.
* **Stacked digits** (3-channel images, labels ``(n, 3)``; Metz et al. 2017): each channel
  is classified by the 1-channel digit classifier, giving modes out of 1000 and
  KL(p_gen ‖ Uniform(1000)) (:func:`aeot.metrics.classify_stacked`); features are the
  classifier's features of the three channels, concatenated (``"FD-digits-cnn-per-channel"``).
"""

from __future__ import annotations

import hashlib
import math
import os
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from aeot._validation import as_float_tensor, check_positive_int
from aeot.data.dataset import Dataset, make_rng
from aeot.evaluation.features import (
    ChannelwiseFeatures,
    _is_stacked,
    _reference_features,
    _space_names,
    default_feature_extractor,
)
from aeot.metrics.frechet import frechet_distance
from aeot.metrics.kid import kernel_inception_distance
from aeot.metrics.modes import (
    classify_stacked,
    kl_to_uniform,
    mixture_mode_metrics,
    stacked_mode_metrics,
)
from aeot.metrics.precision_recall import precision_recall

__all__ = ["GenerativeModel", "evaluate_samples"]


@runtime_checkable
class GenerativeModel(Protocol):
    """What :func:`compare` needs: ``fit(dataset) -> self`` and ``sample(n, seed=)``."""

    def fit(self, dataset: Dataset) -> Any: ...

    def sample(self, n: int, *, seed: int = 0) -> torch.Tensor: ...


def _subsample(x: torch.Tensor, m: int, rng: np.random.Generator) -> torch.Tensor:
    if x.shape[0] <= m:
        return x
    idx = np.sort(rng.choice(x.shape[0], size=m, replace=False))
    return x[torch.from_numpy(idx)]


def _kl_histograms(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """KL(p ‖ q) = Σ p log(p/q) in nats for two histograms on the same bins (inf if q = 0 < p)."""
    p = p_counts / p_counts.sum()
    q = q_counts / q_counts.sum()
    nz = p > 0
    if np.any(q[nz] == 0):
        return math.inf
    return float(max((p[nz] * np.log(p[nz] / q[nz])).sum(), 0.0))


def evaluate_samples(
    dataset: Dataset,
    samples,
    *,
    feature_extractor=None,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    max_real: int = 10000,
    max_pr: int = 5000,
    k: int = 3,
    kid_subsets: int = 20,
    cache: dict | None = None,
) -> dict[str, float]:
    """Score generated ``samples`` against the real data in ``dataset``.

    Parameters
    ----------
    dataset : Dataset
        Real data (the training set or a held-out split). Mixture datasets need
        ``modes`` and ``mode_std``; stacked digits need ``(n, 3)`` labels.
    samples : (n, d) or (n, c, h, w) array or tensor
        Generated samples, same sample shape as ``dataset``; must be finite.
    feature_extractor : optional
        Image feature space: an object with ``feature_space_name`` and
        ``features(images)``; with ``predict(images)`` it also gives mode counts. For
        stacked digits a 1-channel digit classifier. Default
        :func:`default_feature_extractor` (a cached digit classifier for 8×8 digits).
        :class:`aeot.metrics.InceptionFeatures` gives ``FID`` and ``KID``, its reference
        features cached on disk (``reference_features``).
    seed : int
        Seed of the real-data subsampling and of the KID subsets.
    cache_dir : path-like, optional
        Classifier cache for the default extractor.
    max_real : int
        At most this many real samples are used (random subset).
    max_pr : int
        Precision/recall use ``m = min(max_pr, n_real, n_gen)`` samples of each set
        (equal sizes, as the k-NN radii depend on the set size).
    k : int
        Neighbourhood size of precision/recall (3 in the paper).
    kid_subsets : int
        Number of KID subsets (of size ≤ 1000; 20 keeps it at a few seconds on a CPU).
    cache : dict, optional
        Pass the same (initially empty) dict to calls that score several models against
        the same ``dataset`` and extractor: the real images' features are then computed
        once. Entries are keyed by the extractor, the real subset and its pixel sums.

    Returns
    -------
    dict of str -> float
        Mixtures: ``modes`` (covered), ``n_modes`` (K), ``high_quality_pct`` (%),
        ``kl``, ``precision``, ``recall``, ``FD-data``. Images: ``FD-<space>``,
        ``KID-<space>``, ``precision``, ``recall`` and, when the extractor classifies,
        ``modes``, ``n_modes``, ``kl``. ``n_samples`` is the number of samples scored.
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be an aeot.data.Dataset, got {type(dataset).__name__}")
    fake = as_float_tensor(samples, "samples", dtype=torch.float32).detach().cpu()
    if tuple(fake.shape[1:]) != tuple(dataset.sample_shape) or fake.ndim != dataset.x.ndim:
        raise ValueError(
            f"samples must have shape (n, {', '.join(map(str, dataset.sample_shape))}) to match "
            f"{dataset.name!r}, got {tuple(fake.shape)}"
        )
    max_real = check_positive_int(max_real, "max_real")
    if cache is not None and not isinstance(cache, dict):
        raise TypeError(f"cache must be a dict or None, got {type(cache).__name__}")
    max_pr = check_positive_int(max_pr, "max_pr", minimum=k + 1)
    rng = make_rng(seed)
    real_idx = np.arange(len(dataset))
    if len(dataset) > max_real:
        real_idx = np.sort(rng.choice(len(dataset), size=max_real, replace=False))
    real_idx_t = torch.from_numpy(real_idx)
    real = dataset.x.detach().cpu()[real_idx_t].float()
    out: dict[str, float] = {"n_samples": float(fake.shape[0])}
    m_pr = min(max_pr, real.shape[0], fake.shape[0])

    if dataset.kind == "points":
        if dataset.modes is not None:
            if dataset.mode_std is None or dataset.mode_std <= 0:
                raise ValueError("mixture datasets need a positive mode_std")
            mm = mixture_mode_metrics(fake, dataset.modes, dataset.mode_std)
            out["modes"] = float(mm["modes_covered"])
            out["n_modes"] = float(mm["n_modes"])
            out["high_quality_pct"] = 100.0 * mm["high_quality_fraction"]
            out["kl"] = float(mm["kl"])
        if m_pr > k:
            pr = precision_recall(
                _subsample(real, m_pr, rng), _subsample(fake, m_pr, rng), k=k, device="cpu"
            )
            out["precision"], out["recall"] = pr.precision, pr.recall
        if fake.shape[0] >= 2:
            out["FD-data"] = frechet_distance(real, fake)
        return out

    # ---- images
    stacked = _is_stacked(dataset)
    extractor = feature_extractor
    if extractor is None:
        extractor = default_feature_extractor(dataset, cache_dir)
    if not (hasattr(extractor, "feature_space_name") and hasattr(extractor, "features")):
        raise TypeError(
            "feature_extractor must have a feature_space_name and a features(images) method, "
            f"got {type(extractor).__name__}"
        )
    space = ChannelwiseFeatures(extractor) if stacked else extractor
    fd_name, kid_name = _space_names(space)
    if cache is None:
        real_f = _reference_features(space, real)
    else:
        key = (
            id(extractor),
            fd_name,
            real.shape,
            hashlib.sha256(real_idx.tobytes()).hexdigest(),
            float(real.double().sum()),
            float(real.double().square().sum()),
        )
        if key not in cache:
            cache[key] = _reference_features(space, real)
        real_f = cache[key]
    fake_f = space.features(fake)
    if fake_f.shape[0] >= 2:
        out[fd_name] = frechet_distance(real_f, fake_f)
        kid = kernel_inception_distance(
            real_f,
            fake_f,
            n_subsets=check_positive_int(kid_subsets, "kid_subsets"),
            subset_size=1000,
            seed=seed,
            device="cpu",
        )
        out[kid_name] = kid.mean
    if m_pr > k:
        pr = precision_recall(
            _subsample(real_f, m_pr, rng), _subsample(fake_f, m_pr, rng), k=k, device="cpu"
        )
        out["precision"], out["recall"] = pr.precision, pr.recall
    # labels from the features already computed where the classifier allows it
    from_features = getattr(extractor, "predict_from_features", None)
    if callable(getattr(extractor, "predict", None)):
        if stacked:
            if callable(from_features):
                digits = from_features(fake_f.reshape(fake_f.shape[0] * 3, -1)).reshape(-1, 3)
            else:
                digits = classify_stacked(extractor, fake)
            sm = stacked_mode_metrics(digits)
            out["modes"], out["n_modes"], out["kl"] = float(sm["modes"]), 1000.0, sm["kl"]
        elif dataset.labels is not None and dataset.labels.ndim == 1:
            n_classes = int(dataset.labels.max()) + 1
            labels = from_features(fake_f) if callable(from_features) else extractor.predict(fake)
            pred = torch.as_tensor(labels).to(torch.int64).cpu().numpy()
            n_classes = max(n_classes, int(pred.max()) + 1)
            gen_hist = np.bincount(pred, minlength=n_classes).astype(np.float64)
            data_labels = dataset.labels.detach().cpu()[real_idx_t].numpy()
            data_hist = np.bincount(data_labels, minlength=n_classes).astype(np.float64)
            out["modes"] = float((gen_hist > 0).sum())
            out["n_modes"] = float((data_hist > 0).sum())
            out["kl"] = _kl_histograms(gen_hist, data_hist)
            if np.allclose(data_hist, data_hist.mean(), rtol=0.25):
                out["kl_uniform"] = kl_to_uniform(gen_hist)
    return out
