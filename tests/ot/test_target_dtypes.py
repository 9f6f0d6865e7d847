"""Targets and queries of every dtype: promoted exactly or refused, never corrupt memory.

Half-precision targets used to reach the float32/float64 C kernels unconverted, which
then wrote 8-byte values into 2-byte buffers ("double free or corruption"). The
crash-prone end-to-end cases run in a subprocess, so that a crash fails the test
instead of killing pytest.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from aeot.ot import SemiDiscreteProblem
from aeot.ot.kernels import ScoreKernel

HALF = [torch.float16, torch.bfloat16]
FLOAT8 = [getattr(torch, n) for n in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, n)]


@pytest.mark.parametrize("dtype", [*HALF, *FLOAT8])
def test_narrow_float_targets_are_promoted_to_float32_exactly(dtype):
    # distinct rows even with 2 significand bits (float8_e5m2): powers of two
    powers = 2.0 ** torch.arange(-6, 6, dtype=torch.float32)
    y = torch.stack([powers, torch.rand(12), torch.rand(12)], 1).to(dtype)
    problem = SemiDiscreteProblem(y)
    assert problem.targets.dtype == torch.float32
    assert torch.equal(problem.targets.double(), y.double())  # the same values


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_working_dtypes_are_kept(dtype):
    y = torch.rand(30, 3, dtype=dtype)
    assert SemiDiscreteProblem(y).targets.dtype == dtype


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.arange(20).reshape(10, 2),
        lambda: torch.arange(20, dtype=torch.int32).reshape(10, 2),
        lambda: torch.arange(20, dtype=torch.uint8).reshape(10, 2),
        lambda: np.arange(20, dtype=np.uint64).reshape(10, 2),
        lambda: np.arange(20, dtype=np.int16).reshape(10, 2) - 10,
        lambda: [[1, 2], [3, 4]],
    ],
)
def test_small_integer_targets_become_float32_exactly(make):
    value = make()
    problem = SemiDiscreteProblem(value)
    assert problem.targets.dtype == torch.float32
    assert problem.targets.double().numpy().tolist() == np.asarray(value).tolist()


def test_large_integer_targets_become_float64_exactly():
    y = torch.tensor([[2**24 + 1, 0], [2**40 + 3, 5], [-(2**53), 1]])
    problem = SemiDiscreteProblem(y)
    assert problem.targets.dtype == torch.float64
    assert problem.targets.long().tolist() == y.tolist()


@pytest.mark.parametrize(
    "value",
    [
        torch.tensor([[2**53 + 1, 0], [1, 1]]),
        torch.tensor([[-(2**63), 0], [1, 1]]),
        np.array([[2**64 - 1, 0], [1, 1]], dtype=np.uint64),
    ],
)
def test_integer_targets_beyond_float64_are_refused(value):
    with pytest.raises(ValueError, match=r"targets has integer values .* beyond 2\^53"):
        SemiDiscreteProblem(value)


@pytest.mark.parametrize("dtype", [*HALF, torch.float64, torch.int64])
def test_narrow_or_integer_weights_become_float64(dtype):
    weights = torch.full((4,), 0.25).to(dtype) if dtype != torch.int64 else torch.tensor([1])
    n = weights.shape[0]
    problem = SemiDiscreteProblem(torch.rand(n, 2), weights)
    assert problem.weights.dtype == torch.float64
    assert problem.weights.tolist() == weights.double().tolist()


def test_half_precision_nan_is_named_after_promotion():
    y = torch.rand(4, 2).half()
    y[1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"targets contains 1 NaN or infinite"):
        SemiDiscreteProblem(y)


@pytest.mark.parametrize("dtype", [*HALF, torch.int64, torch.complex64, torch.bool])
def test_score_kernel_refuses_targets_outside_float32_and_float64(dtype):
    with pytest.raises(
        TypeError, match=rf"targets must be torch.float32 or torch.float64.*{dtype}"
    ):
        ScoreKernel(torch.ones(5, 2).to(dtype))


@pytest.mark.parametrize("target_dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("other", [*HALF, torch.float32, torch.float64, torch.int64])
def test_score_kernel_refuses_queries_and_heights_of_another_dtype(target_dtype, other):
    kernel = ScoreKernel(torch.rand(40, 2, dtype=target_dtype))
    x, h = torch.rand(100, 2, dtype=target_dtype), torch.zeros(40, dtype=target_dtype)
    if other == target_dtype:
        kernel.argmax(x, h)
        kernel.topk(x, h, 3)
        return
    for call in (
        lambda: kernel.argmax(x.to(other), h),
        lambda: kernel.topk(x.to(other), h, 2),
        lambda: kernel.topk(x.to(other), h, 3),
    ):
        with pytest.raises(TypeError, match=rf"x has dtype {other}, the targets {target_dtype}"):
            call()
    with pytest.raises(TypeError, match=rf"h has dtype {other}, the targets {target_dtype}"):
        kernel.argmax(x, h.to(other))


def test_score_kernel_refuses_misshapen_queries_heights_and_outputs():
    kernel = ScoreKernel(torch.rand(40, 2))
    x, h = torch.rand(100, 2), torch.zeros(40)
    with pytest.raises(ValueError, match=r"x must have shape \(M, 2\), got \(100, 3\)"):
        kernel.argmax(torch.rand(100, 3), h)
    with pytest.raises(ValueError, match=r"x must have shape \(M, 2\), got \(2,\)"):
        kernel.argmax(torch.rand(2), h)
    with pytest.raises(ValueError, match=r"h must have shape \(40,\), got \(39,\)"):
        kernel.topk(x, h[:39], 2)
    with pytest.raises(ValueError, match=r"out_index must be a \(100,\) torch.int64"):
        kernel.argmax(x, h, torch.empty(50, dtype=torch.long))
    with pytest.raises(ValueError, match=r"out_value must be a \(100,\) torch.float32"):
        kernel.argmax(x, h, None, torch.empty(100, dtype=torch.float16))
    with pytest.raises(ValueError, match=r"k must be a positive integer"):
        kernel.topk(x, h, 0)


# End to end in a subprocess: solve with targets of one dtype (Monte-Carlo and exact 2D),
# query with every dtype through assign / potential / topk(2) / topk(3) / transport,
# and compare with a float64 reference on the working-dtype inputs.
_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    from aeot.ot import SemiDiscreteProblem, solve_semidiscrete
    from aeot.ot.exact2d import solve_exact_2d

    target_dtype = getattr(torch, sys.argv[1])
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(20, 2, generator=gen)
    integer = not target_dtype.is_floating_point
    y = (base * 1000).round().to(target_dtype) if integer else base.to(target_dtype)
    scale = 1000.0 if integer else 1.0
    problem = SemiDiscreteProblem(y)
    assert problem.targets.dtype in (torch.float32, torch.float64), problem.targets.dtype
    for result in (solve_semidiscrete(problem, max_iter=5, seed=0), solve_exact_2d(problem)):
        work = result.targets.dtype
        for query in ("float16", "bfloat16", "float32", "float64", "int64"):
            x = (torch.rand(50_000, 2, generator=gen) * scale).to(getattr(torch, query))
            exact = x.to(work).double() @ result.targets.double().t() + result.h.to(work).double()
            best = exact.amax(1)
            tol = 1e-5 * (exact.abs().amax(1) + 1)
            cells = result.assign(x)
            assert cells.dtype == torch.long and cells.shape == (50_000,), query
            assert bool(((best - exact.gather(1, cells[:, None])[:, 0]) <= tol).all()), query
            potential = result.potential(x)
            assert potential.dtype == work, query
            assert bool(((potential.double() - best).abs() <= tol).all()), query
            for k in (2, 3):
                values, idx = result.topk(x, k)
                assert values.shape == idx.shape == (50_000, k), query
                assert torch.equal(idx[:, 0], cells), (query, k)
                assert bool((values[:, :-1] >= values[:, 1:]).all()), (query, k)
                ref = exact.topk(k, dim=1).values
                assert bool(((values.double() - ref).abs() <= tol[:, None]).all()), (query, k)
            moved = result.transport(x)
            assert torch.equal(moved, result.targets[cells]), query
    print("OK", work)
    """
)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64", "int64"])
def test_results_answer_queries_of_every_dtype_without_crashing(dtype):
    """Monte-Carlo and exact-2D results alike."""
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT, dtype],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr[-3000:]}"
    expected = "float64" if dtype == "float64" else "float32"
    assert run.stdout.split() == ["OK", f"torch.{expected}"]


@pytest.mark.parametrize("dtype", [*HALF, *FLOAT8, torch.int64])
def test_narrow_and_integer_queries_answer_as_their_float32_values(dtype):
    from aeot.ot import SemiDiscreteResult

    gen = torch.Generator().manual_seed(1)
    problem = SemiDiscreteProblem(torch.rand(40, 2, generator=gen))
    result = SemiDiscreteResult(
        problem=problem, h=0.1 * torch.randn(40, generator=gen), cell_masses=torch.zeros(40)
    )
    x = (torch.rand(5000, 2, generator=gen) * (3 if dtype == torch.int64 else 1)).to(dtype)
    same = x.float()
    assert torch.equal(result.assign(x), result.assign(same))
    assert torch.equal(result.potential(x), result.potential(same))
    for k in (2, 3):
        (values, cells), (values_same, cells_same) = result.topk(x, k), result.topk(same, k)
        assert torch.equal(values, values_same) and torch.equal(cells, cells_same)
