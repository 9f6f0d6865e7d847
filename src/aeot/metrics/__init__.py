"""Sample-quality and mode-coverage metrics for generative models.

* :func:`frechet_distance`, :func:`gaussian_frechet` — Fréchet distance of fitted Gaussians
  (FID when the features are Inception's).
* :func:`kernel_inception_distance` — unbiased polynomial-kernel MMD² (KID).
* :func:`precision_recall` — k-NN precision/recall (Kynkäänniemi et al. 2019).
* :class:`ConvClassifier`, :func:`load_or_train_classifier`, :class:`InceptionFeatures`,
  :func:`frechet_in_features` — feature spaces, reported by name (``"FD-digits-cnn"``).
* :func:`memorisation`, :func:`nearest_distances`, :class:`NearestIndex` — copies of
  training items and the nearest-neighbour distance ratio against held-out items.
* :func:`mixture_mode_metrics`, :func:`stacked_mode_metrics`, :func:`classify_stacked`,
  :func:`kl_to_uniform` — mode coverage (PacGAN / VEEGAN protocols).
"""

from aeot.metrics.features import (
    ClassifierConfig,
    ConvClassifier,
    FeatureFrechet,
    FeatureSpace,
    InceptionFeatures,
    dataset_fingerprint,
    find_inception_weights,
    frechet_in_features,
    load_or_train_classifier,
)
from aeot.metrics.frechet import feature_statistics, frechet_distance, gaussian_frechet
from aeot.metrics.kid import KIDResult, kernel_inception_distance, mmd2_unbiased, polynomial_kernel
from aeot.metrics.memorisation import (
    Memorisation,
    NearestIndex,
    memorisation,
    nearest_distances,
)
from aeot.metrics.modes import (
    classify_stacked,
    kl_to_uniform,
    mixture_mode_metrics,
    ring_means,
    stacked_mode_metrics,
)
from aeot.metrics.precision_recall import (
    PrecisionRecall,
    knn_radii,
    manifold_membership,
    precision_recall,
)

__all__ = [
    "ClassifierConfig",
    "ConvClassifier",
    "FeatureFrechet",
    "FeatureSpace",
    "InceptionFeatures",
    "KIDResult",
    "Memorisation",
    "NearestIndex",
    "PrecisionRecall",
    "classify_stacked",
    "dataset_fingerprint",
    "feature_statistics",
    "find_inception_weights",
    "frechet_distance",
    "frechet_in_features",
    "gaussian_frechet",
    "kernel_inception_distance",
    "kl_to_uniform",
    "knn_radii",
    "load_or_train_classifier",
    "manifold_membership",
    "memorisation",
    "mixture_mode_metrics",
    "mmd2_unbiased",
    "nearest_distances",
    "polynomial_kernel",
    "precision_recall",
    "ring_means",
    "stacked_mode_metrics",
]
