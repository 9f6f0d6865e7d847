"""Precision guards: targets the working precision cannot separate are named up front,
and diagnostics (measure_masses, l1_error) are computed in the problem's own dtype."""

import warnings

import numpy as np
import pytest
import torch

from aeot.ot import NearDuplicateTargetsWarning, SemiDiscreteProblem, SemiDiscreteResult
from aeot.ot.exact2d import solve_exact_2d


def _targets(n=20, d=2, dtype=torch.float64, seed=0):
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize(
    "dtype, gap, which",
    [
        (torch.float64, 1e-12, "dtype=torch.float64 (even there the pair is"),
        (torch.float64, 1e-15, "torch.float64 cannot"),
        (torch.float32, 1e-6, "torch.float32 cannot"),
    ],
)
def test_near_duplicate_targets_are_named(dtype, gap, which):
    y = _targets(dtype=dtype)
    y = torch.cat([y, y[3:4] + gap])
    assert not torch.equal(y[3], y[20])  # distinct in their own dtype
    with pytest.warns(NearDuplicateTargetsWarning, match=r"rows \[3, 20\]") as record:
        problem = SemiDiscreteProblem(y)
    assert which in str(record[0].message) and "Merge them" in str(record[0].message)
    i, j, found = problem.unresolvable_pair(torch.float32)
    assert (i, j) == (3, 20) and found == pytest.approx(float((y[3] - y[20]).abs().max()))


def test_float64_pair_that_merges_in_float32_is_named_not_called_a_duplicate():
    y = np.array([[2**24, 0], [2**24 + 1, 0], [0, 5]], dtype=np.int64)
    with pytest.warns(NearDuplicateTargetsWarning, match=r"rows \[0, 1\].*float32"):
        problem = SemiDiscreteProblem(y)  # exact in float64: no "duplicate targets" error
    assert problem.targets.dtype == torch.float64
    assert problem.unresolvable_pair() is None  # float64 separates them


def test_well_separated_targets_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in (torch.float32, torch.float64):
            problem = SemiDiscreteProblem(_targets(500, 3, dtype))
            assert problem.unresolvable_pair() is None
        SemiDiscreteProblem(_targets(2000, 2, torch.float32) * 1e6 + 3e7)  # any scale


def test_unresolvable_pair_argument_checks():
    problem = SemiDiscreteProblem(_targets())
    with pytest.raises(ValueError, match="dtype must be"):
        problem.unresolvable_pair(torch.float16)


# ------------------------------------------------------------------ diagnostics


def _exact_heights(y):
    result = solve_exact_2d(SemiDiscreteProblem(y), tol=1e-10)
    assert result.converged
    return result.h


@pytest.mark.parametrize("shift, scale", [(1e8, 1.0), (0.0, 1e-300)])
def test_float64_diagnostics_are_not_cast_to_float32(shift, scale):
    """Cells of (s y + c, s h) are those of (y, h): the exact h stays exact, and the
    float64 measurement must say so (float32 reported an L1 error of ~1.9)."""
    y = _targets(12, 2, torch.float64, seed=1) * 0.8 + 0.1
    h = _exact_heights(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NearDuplicateTargetsWarning)  # true for float32
        problem = SemiDiscreteProblem(y * scale + shift)
    result = SemiDiscreteResult(problem=problem, h=h * scale, cell_masses=problem.weights)
    masses = result.measure_masses(2**15, seed=3)
    assert masses.dtype == torch.float64
    assert float(masses.sum()) == pytest.approx(1.0)
    assert result.l1_error(2**15, seed=3) < 0.1  # MC noise ~0.8·sqrt(12 / 2^15) ≈ 0.015


def test_result_heights_and_queries_are_checked():
    problem = SemiDiscreteProblem(_targets(5, 2))
    with pytest.raises(ValueError, match="h has 4 entries but there are 5 targets"):
        SemiDiscreteResult(problem=problem, h=torch.zeros(4), cell_masses=problem.weights)
    with pytest.raises(ValueError, match="h contains 1 NaN"):
        SemiDiscreteResult(
            problem=problem,
            h=torch.tensor([0.0, 1, 2, float("nan"), 0]),
            cell_masses=problem.weights,
        )
    with pytest.raises(ValueError, match="h must have 1 dimensions"):
        SemiDiscreteResult(problem=problem, h=torch.zeros(5, 1), cell_masses=problem.weights)
    with pytest.raises(TypeError, match="problem must be a SemiDiscreteProblem"):
        SemiDiscreteResult(problem=_targets(), h=torch.zeros(20), cell_masses=torch.zeros(20))
    result = SemiDiscreteResult(problem=problem, h=torch.zeros(5), cell_masses=problem.weights)
    for x in (torch.rand(4, 3), torch.rand(3)):
        with pytest.raises(ValueError, match=r"the targets' dimension is 2"):
            result.assign(x)
    cells = result.topk(torch.rand(4, 2, dtype=torch.float64), np.int64(2))[1]
    assert cells.shape == (4, 2)
