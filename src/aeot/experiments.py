"""The mode-collapse experiments under their earlier name: ``aeot.experiments`` is
:mod:`aeot.evaluation.experiments` itself (the same module object, so settings patched on
either are seen by both)."""

import sys

from aeot.evaluation import experiments as _experiments

sys.modules[__name__] = _experiments
