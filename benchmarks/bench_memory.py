"""Peak memory of the Monte-Carlo solver at N = 10^6 targets in d = 64.

The solver streams over sample chunks and, when N is large, over target blocks
(:class:`aeot.ot.kernels.ScoreKernel`): the score buffer is (chunk, block), 32 MiB,
instead of the (batch, N) score matrix. The table reports the peak resident set size
(``resource.getrusage(...).ru_maxrss``, monotone over the run) after each phase, and
the growth of each phase against the size of the target matrix itself.

Full convergence at N = 10^6 is not feasible on a 2-core CPU (one pass over a batch
of M samples is 2·M·N·d flop, ~0.5 TFLOP for M = 4096): the solve runs a bounded
number of Newton iterations (``--iterations``, default 2) on batches of ``--batch``
samples and says so in the output. With that few samples per target most cells are
empty, which also exercises the empty-cell lift over all N targets.

Measured on the 2-core development machine (2 iterations x 4096 samples, ~170 s):
peak 855 MiB, 469 MiB above the imports = 1.9 x the 244 MiB target matrix; the same
run before target streaming (a contiguous copy of Yᵀ, a (64, N) buffer and
``torch.unique`` for the distinctness check) peaked at 2088 MiB = 7.0 x.

Usage: python benchmarks/bench_memory.py [--quick] [--iterations K] [--batch M]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import torch

from aeot.ot import SemiDiscreteProblem, solve_semidiscrete
from aeot.ot.kernels import default_block, default_chunk


def peak_mib() -> float:
    """Peak RSS of this process so far, MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 10^5 (smoke test)")
    parser.add_argument("--iterations", type=int, default=2, help="Newton iterations to run")
    parser.add_argument("--batch", type=int, default=2**12, help="samples per iteration")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n, d = (10**5, 64) if args.quick else (10**6, 64)
    rows: list[tuple[str, float, str]] = []
    rows.append(("imports (torch, aeot)", peak_mib(), ""))
    targets = torch.rand(n, d, generator=torch.Generator().manual_seed(0))
    target_mib = targets.numel() * targets.element_size() / 2**20
    rows.append((f"targets ({n}, {d}) float32", peak_mib(), f"{target_mib:.0f} MiB of data"))
    start = time.perf_counter()
    problem = SemiDiscreteProblem(targets)
    rows.append(
        ("problem (finite + distinct checks)", peak_mib(), f"{time.perf_counter() - start:.1f} s")
    )
    times: list[float] = []
    last = [time.perf_counter()]

    def tick(info) -> None:
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    start = time.perf_counter()
    result = solve_semidiscrete(
        problem,
        method="newton",
        tol=1e-9,
        max_iter=args.iterations,
        batch_size=args.batch,
        max_batch_size=args.batch,
        hessian_samples=args.batch,
        seed=0,
        device="cpu",
        callback=tick,
    )
    solve_seconds = time.perf_counter() - start
    rows.append(
        (
            f"solve: {result.n_iter} Newton iterations x {args.batch} samples",
            peak_mib(),
            f"{solve_seconds:.0f} s, NOT converged (bounded run), L1 {result.error:.3f}",
        )
    )
    chunk = default_chunk(n)
    block = default_block(n, chunk)
    dense_mib = args.batch * n * 4 / 2**20
    print(
        f"N = {n} targets in d = {d}; score buffer {chunk} x {block} float32 = "
        f"{chunk * block * 4 / 2**20:.0f} MiB (a dense batch x N score matrix: "
        f"{dense_mib:,.0f} MiB)"
    )
    print(f"{'phase':<48} | {'peak RSS MiB':>12} | {'growth / targets':>16} | note")
    print("-" * 110)
    previous = rows[0][1]
    for name, peak, note in rows:
        growth = (peak - previous) / target_mib
        print(f"{name:<48} | {peak:12.0f} | {growth:16.2f} | {note}")
        previous = peak
    base = rows[0][1]
    print(
        f"peak above the imports: {rows[-1][1] - base:.0f} MiB = "
        f"{(rows[-1][1] - base) / target_mib:.2f} x the target matrix; "
        f"seconds per iteration: {', '.join(f'{t:.0f}' for t in times)}"
    )


if __name__ == "__main__":
    main()
