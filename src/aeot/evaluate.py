"""The evaluation API under its earlier name: ``aeot.evaluate`` re-exports
:mod:`aeot.evaluation` (feature spaces, :func:`evaluate_samples`, :func:`compare`,
tables), where the code now lives, one job per module."""

from aeot.evaluation import *  # noqa: F403
from aeot.evaluation import __all__  # noqa: F401
