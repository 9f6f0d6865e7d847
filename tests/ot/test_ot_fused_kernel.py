"""The fused score-and-reduce CPU kernels against float64 references and each other."""

from __future__ import annotations

import pytest
import torch

from aeot.ot import _native
from aeot.ot.kernels import FUSED_MAX_DIM, FUSED_TOPK_MAX_DIM, ScoreKernel

pytestmark = pytest.mark.skipif(
    not _native.fused_available(), reason="fused kernels need AVX2/FMA and a C compiler"
)


def _reference(x, y, h):
    """float64 scores (M, N): the exact ranking up to float32 rounding of the inputs."""
    return x.double() @ y.double().t() + h.double()


@pytest.mark.parametrize(
    ("n_targets", "dim", "n_samples"),
    [
        (1, 1, 5),
        (7, 2, 13),
        (8, 3, 64),
        (1000, 8, 4097),
        (9001, 16, 301),
        (1000, 40, 37),  # 16 targets at a time, then a last group of 8; rows 4k + 1
        (300, FUSED_MAX_DIM, 99),
    ],
)
def test_fused_argmax_is_the_float64_winner(n_targets, dim, n_samples):
    """Winner and value match float64 scoring; a different winner only within rounding."""
    torch.manual_seed(n_targets + dim)
    y, h, x = torch.randn(n_targets, dim), torch.randn(n_targets), torch.randn(n_samples, dim)
    kernel = ScoreKernel(y)
    assert kernel.fused
    cells, best = kernel.argmax(x, h)
    exact = _reference(x, y, h)
    top = exact.amax(1)
    picked = exact.gather(1, cells[:, None])[:, 0]
    scale = exact.abs().amax(1) + 1
    assert bool(((top - picked) <= 1e-5 * scale).all())  # winners tie to float32 rounding
    assert float((cells != exact.argmax(1)).float().mean()) < 1e-3
    torch.testing.assert_close(best.double(), top, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dim", [12, 40])  # 8 targets at a time; 16 at a time
def test_fused_scores_agree_across_calls_and_splits(dim):
    """argmax, top-2 and top-k give the same score bits, whatever the rows passed."""
    torch.manual_seed(3)
    y, h, x = torch.randn(5004, dim), torch.randn(5004), torch.randn(777, dim)
    kernel = ScoreKernel(y)  # 5004 targets: more than one L2 block of targets
    cells, best = kernel.argmax(x, h)
    v2, i2 = kernel.topk(x, h, 2)
    assert torch.equal(i2[:, 0], cells) and torch.equal(v2[:, 0], best)
    exact = _reference(x, y, h)
    second = exact.scatter(1, i2[:, :1], -torch.inf).amax(1)
    torch.testing.assert_close(v2[:, 1].double(), second, rtol=1e-5, atol=1e-5)
    if dim <= FUSED_TOPK_MAX_DIM:
        v5, i5 = kernel.topk(x, h, 5)
        assert torch.equal(i5[:, :2], i2) and torch.equal(v5[:, :2], v2)
        assert bool((v5[:, :-1] >= v5[:, 1:]).all())
    for rows in (slice(0, 1), slice(1, 4), slice(5, 388), slice(400, 777)):
        part_values, part_top = kernel.topk(x[rows].clone(), h, 2)
        assert torch.equal(part_top, i2[rows]) and torch.equal(part_values, v2[rows])
        part_cells, part_best = kernel.argmax(x[rows].clone(), h)
        assert torch.equal(part_cells, cells[rows]) and torch.equal(part_best, best[rows])
    # a sub-block of the targets scores each target the same: shard winners are exact
    shard = ScoreKernel(y[2500:])
    shard_cells, shard_best = shard.argmax(x, h[2500:])
    mine = cells >= 2500
    assert torch.equal(shard_cells[mine] + 2500, cells[mine])
    assert torch.equal(shard_best[mine], best[mine])


@pytest.mark.parametrize("dim", [3, 20])  # 8 targets at a time; 16 at a time
def test_fused_ties_go_to_the_lowest_index(dim):
    torch.manual_seed(4)
    y, h = torch.randn(40, dim), torch.randn(40)
    for twin in (3, 11, 39):  # another lane, another vector, the last padded vector
        y[twin], h[twin] = y[2], h[2]
    x = torch.randn(2000, dim)
    kernel = ScoreKernel(y)
    cells, _ = kernel.argmax(x, h)
    assert not bool(torch.isin(cells, torch.tensor([3, 11, 39])).any())
    values, top = kernel.topk(x, h, 3)
    won = top[:, 0] == 2
    assert bool((top[won, 1] == 3).all()) and bool((top[won, 2] == 11).all())
    assert torch.equal(values[won, 0], values[won, 1])


def test_fused_topk_with_fewer_targets_than_k():
    y, h, x = torch.randn(3, 2), torch.randn(3), torch.randn(10, 2)
    values, top = ScoreKernel(y).topk(x, h, 5)
    assert bool((top[:, 3:] == -1).all()) and bool(torch.isneginf(values[:, 3:]).all())
    assert torch.equal(top[:, :3].sort(1).values, torch.arange(3).expand(10, 3))


def test_fused_kernel_used_only_where_it_applies(monkeypatch):
    assert ScoreKernel(torch.randn(10, FUSED_MAX_DIM)).fused
    assert not ScoreKernel(torch.randn(10, FUSED_MAX_DIM + 1)).fused
    assert not ScoreKernel(torch.randn(10, 4, dtype=torch.float64)).fused
    # top-k for k > 2 takes the GEMM beyond FUSED_TOPK_MAX_DIM
    y, h, x = torch.randn(50, 40), torch.randn(50), torch.randn(20, 40)
    kernel = ScoreKernel(y)
    calls = []
    fused = kernel._fused
    monkeypatch.setattr(kernel, "_fused", lambda name, *a: calls.append(name) or fused(name, *a))
    kernel.topk(x, h, 2)
    kernel.topk(x, h, 3)
    assert calls == ["fused_top2"]


@pytest.mark.parametrize("k", [16, 40, _native.FUSED_MAX_K])
def test_fused_topk_up_to_kmax_matches_the_float64_ranking(k):
    g = torch.Generator().manual_seed(k)
    y = torch.randn(3000, 32, generator=g)
    x = torch.randn(203, 32, generator=g)
    h = 0.1 * torch.randn(3000, generator=g)
    values, top = ScoreKernel(y).topk(x, h, k)
    ref = _reference(x, y, h)
    ref_values = ref.topk(k, dim=1).values
    assert torch.allclose(values.double(), ref_values, atol=1e-4)
    # each returned cell scores what its value says, and the list is sorted
    assert torch.allclose(ref.gather(1, top), values.double(), atol=1e-4)
    assert bool((values[:, :-1] >= values[:, 1:]).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pool_kernels_against_torch(dtype):
    """gather_dot = <x_r, y_c> per cached cell; cand_top2 = the best two unmasked."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(517, 37, generator=g, dtype=dtype)
    y = torch.randn(401, 37, generator=g, dtype=dtype)
    cells = torch.randint(0, 401, (517, 24), generator=g, dtype=torch.int32)
    raw = _native.gather_dot(x, y, cells)
    ref = (y[cells.long()].double() * x[:, None].double()).sum(-1)
    tol = 1e-4 if dtype == torch.float32 else 1e-12
    assert torch.allclose(raw.double(), ref, atol=tol)
    # the same bits however the rows are split
    assert torch.equal(_native.gather_dot(x[100:].clone(), y, cells[100:].clone()), raw[100:])
    h = torch.randn(401, generator=g, dtype=dtype)
    skip = torch.rand(401, generator=g) < 0.3
    skip[cells[0]] = True  # a row with every cell masked
    values, top = _native.cand_top2(raw, cells, h, skip)
    vals = (raw + h[cells.long()]).masked_fill(skip[cells.long()], -torch.inf)
    ref_values, column = vals.topk(2, dim=1)
    live = torch.isfinite(ref_values)
    assert torch.equal(values[live], ref_values[live])
    assert torch.equal(top[live], cells.long().gather(1, column)[live])
    assert bool((top[~live] == -1).all())
    with pytest.raises(ValueError, match="cells must lie in"):
        _native.gather_dot(x, y, cells.masked_fill(cells == 5, 401))
