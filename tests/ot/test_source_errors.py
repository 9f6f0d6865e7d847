"""Sources and problems built from wrong arguments fail naming the actual problem."""

import numpy as np
import pytest
import torch

from aeot.ot import BoxUniform, CallableSource, Gaussian, SemiDiscreteProblem


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: Gaussian(2, mean=[float("nan"), 0.0]), ValueError, "mean contains 1 NaN"),
        (lambda: Gaussian(2, mean=[0.0, 0.0, 0.0]), ValueError, r"mean must be a number or 2"),
        (lambda: Gaussian(2, mean="a"), TypeError, "mean must hold real numbers"),
        (lambda: Gaussian(2, std="1"), TypeError, "std must be a number"),
        (lambda: BoxUniform(2, low=[0.0, 0.0, 0.0]), ValueError, r"box bounds: low must be"),
        (lambda: BoxUniform(3, high=[[1.0]]), ValueError, r"box bounds: high must be"),
        (lambda: BoxUniform(2, low=[]), ValueError, r"box bounds: low must be .* got shape \(0,\)"),
        (lambda: CallableSource(lambda n, g: torch.rand(n, 2), "a"), TypeError, "dim must be"),
        (lambda: CallableSource(lambda n, g: torch.rand(n, 2), 0), ValueError, "dim must be"),
    ],
)
def test_bad_source_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_numpy_integer_dimensions_are_accepted():
    assert BoxUniform(np.int64(3)).dim == 3
    assert CallableSource(lambda n, g: torch.rand(n, 2), np.int32(2)).dim == 2


@pytest.mark.parametrize(
    "source, dtype, match",
    [
        (BoxUniform(2, -1e300, 1e300), torch.float32, r"box \[low, high\] reaches 2e\+300"),
        (BoxUniform(2, 1.0, 1.0 + 1e-12), torch.float32, "zero width in torch.float32 on axis 0"),
        (Gaussian(2, std=1e-300), torch.float32, "std 1e-300 is below the resolution"),
        (Gaussian(2, mean=0.5, std=1e-12), torch.float32, "rounds to the mean"),
        (Gaussian(2, mean=1e300, std=1e290), torch.float32, "beyond the range of torch.float32"),
    ],
)
def test_sources_the_working_precision_cannot_sample_are_named(source, dtype, match):
    """These used to reach the solver, which then blamed h0 with a FloatingPointError."""
    with pytest.raises(ValueError, match=match):
        source.sample(16, dtype=dtype)
    assert torch.isfinite(source.sample(16, dtype=torch.float64)).all()


def test_targets_and_weights_that_require_grad_are_detached():
    y = torch.rand(3, 2, requires_grad=True)
    w = torch.full((3,), 1 / 3, requires_grad=True)
    problem = SemiDiscreteProblem(y, w)
    assert not problem.targets.requires_grad and not problem.weights.requires_grad
    assert torch.equal(problem.targets, y.detach())
