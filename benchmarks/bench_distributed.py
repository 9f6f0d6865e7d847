"""Sharded semi-discrete OT: wall time on 1 and 2 gloo processes, measured in one run.

A fixed amount of work, so both runs do the same iterations: N targets ~ U[0,1]^d,
uniform source, ``max_iter`` Newton iterations on batches of ``batch`` samples (the
batch is not allowed to grow; the tolerance is out of reach). Each process uses one
torch thread. The single-process run is :func:`aeot.ot.solve_semidiscrete`; the
2-process run is :func:`aeot.ot.distributed.solve_semidiscrete_distributed`, started
here with ``torch.multiprocessing`` (``torchrun`` launches it the same way). The table
gives the wall time of the solve (after start-up), the speed-up against one process
and the largest difference between the two answers' h.

Usage: python benchmarks/bench_distributed.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from aeot.ot import SemiDiscreteProblem, solve_semidiscrete
from aeot.ot.distributed import solve_semidiscrete_distributed


def make_problem(n: int, d: int) -> SemiDiscreteProblem:
    return SemiDiscreteProblem(torch.rand(n, d, generator=torch.Generator().manual_seed(0)))


def solver_settings(batch: int, iterations: int) -> dict:
    return dict(
        method="newton",
        tol=1e-9,
        max_iter=iterations,
        batch_size=batch,
        max_batch_size=batch,
        hessian_samples=batch,
        seed=0,
        device="cpu",
    )


def _rank(rank: int, world: int, store: str, out: str, n: int, d: int, kw: dict) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    problem = make_problem(n, d)
    dist.barrier()
    start = time.perf_counter()
    result = solve_semidiscrete_distributed(problem, **kw)
    dist.barrier()
    seconds = time.perf_counter() - start
    if rank == 0:
        torch.save({"seconds": seconds, "h": result.h}, out)
    dist.destroy_process_group()


def run_sharded(world: int, n: int, d: int, kw: dict) -> tuple[float, torch.Tensor]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rank0.pt")
        mp.start_processes(
            _rank,
            args=(world, os.path.join(tmp, "store"), out, n, d, kw),
            nprocs=world,
            start_method="spawn",
        )
        saved = torch.load(out)
    return saved["seconds"], saved["h"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller problem (smoke test)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n, d, batch, iterations = (20_000, 32, 2**13, 3) if args.quick else (100_000, 64, 2**13, 3)
    kw = solver_settings(batch, iterations)
    print(f"N={n} targets, d={d}, {iterations} Newton iterations of {batch} samples, 1 thread/rank")
    print(f"{'processes':>9} | {'solve s':>8} | {'speed-up':>8} | {'max |h - h_1|':>13}")
    print("-" * 48)
    problem = make_problem(n, d)
    start = time.perf_counter()
    single = solve_semidiscrete(problem, **kw)
    t_single = time.perf_counter() - start
    print(f"{1:>9} | {t_single:8.2f} | {1.0:8.2f} | {0.0:13.2e}", flush=True)
    for world in (2,):
        seconds, h = run_sharded(world, n, d, kw)
        diff = float((h - single.h).abs().max())
        print(f"{world:>9} | {seconds:8.2f} | {t_single / seconds:8.2f} | {diff:13.2e}", flush=True)
    print(f"(os.cpu_count() = {os.cpu_count()}; load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
