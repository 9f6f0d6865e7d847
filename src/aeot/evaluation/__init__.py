"""Evaluation: feature spaces, scoring, model comparison, tables and the benchmark
experiments (no command-line code here: :mod:`aeot.cli` is the only package importing
typer).

* :mod:`aeot.evaluation.features` — the digit and MNIST classifiers (trained once and
  cached), per-channel features of stacked digits, :func:`default_feature_extractor`;
* :mod:`aeot.evaluation.scoring` — :func:`evaluate_samples`, one set of samples against
  real data (mixture modes, classifier-space FD / KID / precision / recall, stacked modes);
* :mod:`aeot.evaluation.compare` — :func:`compare`, models over seeds, with AE-OT's
  reconstruction row;
* :mod:`aeot.evaluation.tables` — :func:`format_table`, :func:`render_table`,
  :func:`write_results`;
* :mod:`aeot.evaluation.experiments` — the mode-collapse experiments (grid25, ring8,
  stacked digits) behind ``aeot compare`` and ``benchmarks/bench_mode_collapse.py``.
"""

from aeot.evaluation.compare import compare
from aeot.evaluation.features import (
    DIGITS_CLASSIFIER_CONFIG,
    MNIST_CLASSIFIER_CONFIG,
    ChannelwiseFeatures,
    default_cache_dir,
    default_feature_extractor,
    digit_classifier,
    mnist_classifier,
)
from aeot.evaluation.scoring import GenerativeModel, evaluate_samples
from aeot.evaluation.tables import format_table, render_table, write_results

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
    "render_table",
    "write_results",
]
