"""Semi-discrete OT with the targets sharded across ``torch.distributed`` ranks.

Rank r of W holds the contiguous block of targets [⌊rN/W⌋, ⌊(r+1)N/W⌋) and scores
every source sample against it only, s_i(x) = <x, y_i> + h_i for i in its shard. The
winning cell is then decided across ranks with two all-reduces over the batch:

    u(x) = max_r max_{i ∈ shard r} s_i(x)                 (all_reduce MAX)
    σ(x) = min { i : s_i(x) = u(x) }                       (all_reduce MIN over candidates)

so ties go to the lowest global index, as in the single-process row argmax. Every
rank then counts the same cells and runs the same (cheap, O(N)) update of the heights,
so the iterates equal those of :func:`~aeot.ot.montecarlo.solve_semidiscrete` for the
same seed. The Newton Hessian needs the two best cells per sample: each rank's top-2
is all-gathered and merged. Works with the gloo back end on CPU and NCCL on GPUs;
launch one process per rank, e.g. ``torchrun --nproc-per-node 2 script.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.distributed as dist

from aeot._io import tensor_hash
from aeot._validation import resolve_device
from aeot.ot.kernels import ScoreKernel
from aeot.ot.montecarlo import (
    LocalScorer,
    MonteCarloSettings,
    WorkingFrame,
    lift_empty_cells,
    solve_with_scorer,
    source_probe,
)
from aeot.ot.problem import SemiDiscreteProblem
from aeot.ot.result import IterationInfo, SemiDiscreteResult


def shard_bounds(n_targets: int, world_size: int, rank: int) -> tuple[int, int]:
    """The rows [lo, hi) of the targets held by ``rank``: ⌊rN/W⌋ to ⌊(r+1)N/W⌋."""
    return rank * n_targets // world_size, (rank + 1) * n_targets // world_size


class ShardedScorer(LocalScorer):
    """The solver's scorer (see :class:`~aeot.ot.montecarlo.LocalScorer`) over one shard.

    Parameters
    ----------
    shard : (n_r, d) tensor
        This rank's targets (working frame), on the working device and dtype.
    lo : int
        Global index of the shard's first row.
    n_targets : int
        N, the number of targets over all ranks.
    group : ProcessGroup, optional
        The ranks that share the problem (the default group when omitted).
    chunk : int, optional
        Samples per GEMM.
    """

    def __init__(
        self,
        shard: torch.Tensor,
        lo: int,
        n_targets: int,
        group=None,
        chunk: int | None = None,
    ):
        self.targets = shard
        self.lo, self.hi = lo, lo + shard.shape[0]
        self.n_targets = n_targets
        self.group = group
        self.world_size = dist.get_world_size(group)
        self.kernel = ScoreKernel(shard, chunk) if shard.shape[0] > 0 else None
        self._index = torch.empty(0, dtype=torch.long, device=shard.device)
        self._value = torch.empty(0, dtype=shard.dtype, device=shard.device)

    def _local_argmax(self, x: torch.Tensor, h: torch.Tensor):
        m = x.shape[0]
        if self.kernel is None:  # more ranks than targets: this rank never wins
            return (
                torch.zeros(m, dtype=torch.long, device=x.device),
                torch.full((m,), -torch.inf, dtype=x.dtype, device=x.device),
            )
        if self._index.shape[0] < m:
            self._index = torch.empty(m, dtype=torch.long, device=x.device)
            self._value = torch.empty(m, dtype=x.dtype, device=x.device)
        return self.kernel.argmax(x, h[self.lo : self.hi], self._index[:m], self._value[:m])

    def argmax(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Global winner σ(x) (lowest index among ties) and u_h(x): (M, d) -> (M,), (M,)."""
        cells, values = self._local_argmax(x, h)
        best = values.clone()
        dist.all_reduce(best, op=dist.ReduceOp.MAX, group=self.group)
        candidate = torch.where(values == best, cells + self.lo, self.n_targets)
        dist.all_reduce(candidate, op=dist.ReduceOp.MIN, group=self.group)
        return candidate, best

    def top2(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two best scores over all ranks and their global cells: (M, 2), (M, 2)."""
        m = x.shape[0]
        if self.kernel is None:
            values = torch.full((m, 2), -torch.inf, dtype=x.dtype, device=x.device)
            cells = torch.full((m, 2), -1, dtype=torch.long, device=x.device)
        else:
            values, cells = self.kernel.topk(x, h[self.lo : self.hi], 2)
            cells = torch.where(cells >= 0, cells + self.lo, cells)
        all_values = [torch.empty_like(values) for _ in range(self.world_size)]
        all_cells = [torch.empty_like(cells) for _ in range(self.world_size)]
        dist.all_gather(all_values, values, group=self.group)
        dist.all_gather(all_cells, cells, group=self.group)
        # (M, 2W) in rank order, i.e. ascending cell index between ranks: a stable sort
        # keeps ties in that order
        merged_values = torch.cat(all_values, 1)
        order = torch.sort(merged_values, dim=1, descending=True, stable=True).indices[:, :2]
        return merged_values.gather(1, order), torch.cat(all_cells, 1).gather(1, order)

    def lift_empty_cells(
        self, h: torch.Tensor, empty: torch.Tensor, x: torch.Tensor, best: torch.Tensor
    ) -> None:
        """Each rank lifts the empty cells of its shard; one all-reduce shares the heights."""
        lifted = torch.zeros_like(h)
        local = empty[self.lo : self.hi]
        if self.kernel is not None and bool(local.any()):
            shard_h = h[self.lo : self.hi].clone()
            lift_empty_cells(shard_h, local, x, self.targets, best)
            lifted[self.lo : self.hi][local] = shard_h[local]
        dist.all_reduce(lifted, op=dist.ReduceOp.SUM, group=self.group)
        h[empty] = lifted[empty]

    def agree(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on any (stop decisions stay in step)."""
        value = torch.tensor([int(flag)], device=self.targets.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX, group=self.group)
        return bool(value.item())

    def smallest(self, value: int) -> int:
        """The smallest ``value`` over the ranks (a batch size every rank can afford)."""
        tensor = torch.tensor([int(value)], device=self.targets.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN, group=self.group)
        return int(tensor.item())


def _default_device(group) -> torch.device:
    """CUDA device LOCAL_RANK (torchrun) for NCCL, CPU otherwise."""
    if dist.get_backend(group) == "nccl":
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank() % torch.cuda.device_count()))
        return torch.device("cuda", local)
    return torch.device("cpu")


def solve_semidiscrete_distributed(
    problem: SemiDiscreteProblem,
    settings: MonteCarloSettings | None = None,
    *,
    group=None,
    h0=None,
    callback: Callable[[IterationInfo], bool | None] | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    **overrides,
) -> SemiDiscreteResult:
    """:func:`~aeot.ot.montecarlo.solve_semidiscrete` with the targets sharded over ranks.

    Call it on every rank of an initialised process group with the same problem,
    settings and ``h0``; each rank keeps only its block of ≈ N/W targets on the working
    device and scores the whole batch against it (see the module doc for the cross-rank
    argmax). The result, identical on every rank, has the same h as the single-process
    solver for the same seed.

    Parameters
    ----------
    problem : SemiDiscreteProblem
        The same problem on every rank (checked by a hash of targets and weights).
    settings : MonteCarloSettings, optional
        Solver settings; keyword ``overrides`` replace single fields. ``device`` defaults
        to ``cuda:LOCAL_RANK`` under NCCL (made the current CUDA device) and to the CPU
        under gloo.
    group : ProcessGroup, optional
        The ranks that share the solve; the default group when omitted.
    h0, callback, checkpoint_path, checkpoint_every
        As for :func:`~aeot.ot.montecarlo.solve_semidiscrete`. Rank 0 writes the
        checkpoint; every rank resumes from it. A callback that returns True on any
        rank stops all of them.

    Returns
    -------
    SemiDiscreteResult
    """
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "torch.distributed is not initialised: call torch.distributed.init_process_group "
            "(or launch with torchrun) before solve_semidiscrete_distributed"
        )
    if not isinstance(problem, SemiDiscreteProblem):
        raise TypeError(f"problem must be a SemiDiscreteProblem, got {type(problem).__name__}")
    settings = replace(settings or MonteCarloSettings(), **overrides).validate()
    settings = settings.for_dimension(problem.dim, sharded=True)
    if settings.device is None:
        device = _default_device(group)
        settings = replace(settings, device=str(device))
    else:
        device = resolve_device(settings.device)
    if dist.get_backend(group) == "nccl":
        if device.type != "cuda":
            raise ValueError(f"the NCCL back end needs a CUDA device, got {device}")
        torch.cuda.set_device(device)  # NCCL collectives run on the current device
    rank, world_size = dist.get_rank(group), dist.get_world_size(group)
    same = replace(settings, device=None)  # ranks may use different devices (cuda:r)
    identity = (tensor_hash(problem.targets), tensor_hash(problem.weights), repr(same))
    identities: list = [None] * world_size
    dist.all_gather_object(identities, identity, group=group)
    differing = [r for r, other in enumerate(identities) if other != identities[0]]
    if differing:
        raise ValueError(
            f"ranks {differing} were given a different problem or settings than rank 0"
        )
    frame = WorkingFrame.fit(problem, source_probe(problem))
    lo, hi = shard_bounds(problem.n_targets, world_size, rank)
    sub = problem.targets[lo:hi].double() * frame.scale + frame.shift
    scorer = ShardedScorer(
        sub.to(device=device, dtype=settings.dtype), lo, problem.n_targets, group, settings.chunk
    )
    return solve_with_scorer(
        problem,
        settings,
        scorer,
        device,
        frame,
        h0=h0,
        callback=callback,
        checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every,
        writes_checkpoints=rank == 0,
    )
