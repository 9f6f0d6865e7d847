"""Optimal transport: semi-discrete (Monte-Carlo and exact 2D), discrete, c-transforms."""

from aeot.ot.problem import SemiDiscreteProblem
from aeot.ot.result import SemiDiscreteResult
from aeot.ot.sources import BoxUniform, CallableSource, Gaussian, Source

__all__ = [
    "BoxUniform",
    "CallableSource",
    "Gaussian",
    "SemiDiscreteProblem",
    "SemiDiscreteResult",
    "Source",
]
