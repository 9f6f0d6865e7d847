"""Sharded semi-discrete OT on two gloo processes equals the single-process solver."""

import itertools

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from aeot.ot import SemiDiscreteProblem, solve_semidiscrete
from aeot.ot.distributed import shard_bounds, solve_semidiscrete_distributed

# unconverged within max_iter (tol far below the noise), so every iteration moves h;
# the unequal weights leave cells empty at the start, which exercises the lift
SETTINGS = dict(tol=1e-5, max_iter=8, batch_size=2**12, max_batch_size=2**13, seed=2)


def _problem(n=101, d=3):
    rng = np.random.default_rng(4)
    return SemiDiscreteProblem(rng.uniform(0, 1, (n, d)), rng.dirichlet(np.ones(n)))


CASES = {
    "jacobi": ("jacobi", 101),
    "newton": ("newton", 101),
    "nesterov": ("nesterov", 101),
    "one-target": ("newton", 1),
}


def _worker(rank, world_size, store, folder):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size)
    try:
        for name, (method, n) in CASES.items():
            result = solve_semidiscrete_distributed(
                _problem(n), method=method, device="cpu", **SETTINGS
            )
            saved = {"h": result.h, "errors": result.errors, "masses": result.cell_masses}
            torch.save(saved, f"{folder}/{name}-{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Every case solved once by two spawned gloo ranks (one start-up for all tests)."""
    folder = tmp_path_factory.mktemp("ranks")
    mp.start_processes(
        _worker, args=(2, str(folder / "store"), str(folder)), nprocs=2, start_method="spawn"
    )
    return {name: [torch.load(folder / f"{name}-{r}.pt") for r in range(2)] for name in CASES}


@pytest.mark.parametrize("case", ["jacobi", "newton", "nesterov"])
def test_two_ranks_match_one_process(two_ranks, case):
    method, n = CASES[case]
    single = solve_semidiscrete(_problem(n), method=method, device="cpu", **SETTINGS)
    ranks = two_ranks[case]
    for rank in ranks:
        assert torch.equal(rank["h"], ranks[0]["h"])  # every rank holds the same answer
        assert rank["errors"] == ranks[0]["errors"]
    # the cross-rank argmax picks the same winners, so the iterates agree to the last bit
    assert torch.equal(ranks[0]["h"], single.h)
    assert ranks[0]["errors"] == single.errors
    assert torch.equal(ranks[0]["masses"], single.cell_masses)


def test_more_ranks_than_targets(two_ranks):
    """A rank with an empty shard never wins a sample; the answer is unchanged."""
    for rank in two_ranks["one-target"]:
        assert rank["h"].tolist() == [0.0]
        assert rank["masses"].tolist() == [1.0]


def test_shard_bounds_partition_the_targets():
    for n in (0, 1, 5, 101):
        for w in (1, 2, 3, 7):
            bounds = [shard_bounds(n, w, r) for r in range(w)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
            assert max(hi - lo for lo, hi in bounds) - min(hi - lo for lo, hi in bounds) <= 1


def test_needs_an_initialised_process_group():
    with pytest.raises(RuntimeError, match="init_process_group"):
        solve_semidiscrete_distributed(_problem())
