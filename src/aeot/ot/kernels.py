"""The hot loop of semi-discrete OT: for each sample x, argmax_i <x, y_i> + h_i.

Scores for a chunk of samples against a block of targets are one GEMM,
``addmm(h_block, x_chunk, Y_blockᵀ)``, written into a preallocated (chunk, block)
buffer sized to stay in cache. With few targets the block is all of them; with many
(N · 64 rows beyond the buffer) the targets are streamed in blocks and the row
maxima merged, so memory stays O(chunk · block) instead of O(chunk · N). Ties go
to the lowest target index in both cases. On CPU the row reductions (argmax, top-2)
run in the vectorised C kernels of :mod:`aeot.ot._native`; elsewhere (CUDA, or aeot
installed without its C extension) in torch.

In few dimensions (d ≤ ``FUSED_MAX_DIM``, float32, CPU with AVX2/FMA) there is no GEMM:
the fused C kernels form each score h_i + Σ_k x_k y_ik in registers and reduce it on
the spot (argmax and top-2; top-k for 2 < k ≤ 16 up to d = ``FUSED_TOPK_MAX_DIM``).
Measured on one core at N = 10⁴ against GEMM + row scan: 4–5× at d = 8, 1.8× at
d = 32, 1.1–1.2× at d = 64; beyond that the GEMM wins. Every score is then the same
chain of fused multiply-adds whichever kernel, row split or target shard computes it,
so argmax, top-k and sharded winners agree bit for bit; they can differ from a GEMM's
rounding in the last bit (top-k where it uses the GEMM).
"""

from __future__ import annotations

import numpy as np
import torch

from aeot.ot import _native

_BUFFER_BYTES = 2**25  # 32 MiB: one CPU score buffer, kept within the last-level cache
_CUDA_BUFFER_BYTES = 2**30  # 1 GiB on a GPU
_STREAM_ROWS = 256  # samples per chunk once the targets are streamed in blocks (CPU)
# up to this dimension the fused kernels (scores formed and reduced in registers) beat
# GEMM + row scan on CPU: the GEMM's (rows, N) output costs more than d multiply-adds
FUSED_MAX_DIM = 64
# ... and the fused top-k for k > 2, which keeps k vectors per lane, up to this one
FUSED_TOPK_MAX_DIM = 32
_PAD = 8  # the fused kernel takes targets eight at a time


def pack_panels(targets: torch.Tensor) -> torch.Tensor:
    """(N, d) targets as float32 panels (npad / 8, d, 8) for the fused kernels.

    Zero-padded to npad, the next multiple of eight, so that the d values of one
    group of eight targets are contiguous.
    """
    n, dim = targets.shape
    npad = -(-n // _PAD) * _PAD
    padded = torch.zeros(npad, dim, dtype=torch.float32)
    padded[:n] = targets
    return padded.view(npad // _PAD, _PAD, dim).transpose(1, 2).contiguous()


def default_chunk(n_targets: int, itemsize: int = 4, device: torch.device | None = None) -> int:
    """Samples per GEMM so that the (chunk, N) score buffer stays cache-sized.

    When even the smallest chunk (64 rows on CPU, 1024 on CUDA) would overflow the
    buffer, the targets are streamed (see :func:`default_block`) with 256 (CPU) or
    1024 (CUDA) rows per chunk.
    """
    if device is not None and device.type == "cuda":
        return int(max(1024, min(65536, _CUDA_BUFFER_BYTES // (itemsize * max(n_targets, 1)))))
    rows = _BUFFER_BYTES // (itemsize * max(n_targets, 1))
    if rows < 64:
        return _STREAM_ROWS
    chunk = 64
    while chunk * 2 <= min(rows, 512):
        chunk *= 2
    return chunk


def default_block(
    n_targets: int, chunk: int, itemsize: int = 4, device: torch.device | None = None
) -> int:
    """Targets per GEMM: all N when a (chunk, N) buffer fits the budget, else a block that does."""
    budget = _CUDA_BUFFER_BYTES if device is not None and device.type == "cuda" else _BUFFER_BYTES
    if chunk * n_targets * itemsize <= budget:
        return max(n_targets, 1)
    return max(1024, budget // (chunk * itemsize))


class ScoreKernel:
    """Chunked evaluation of the scores s_i(x) = <x, y_i> + h_i over fixed targets.

    Parameters
    ----------
    targets : (N, d) tensor
        Target points y_i on the working device and dtype, float32 or float64 (kept by
        reference; the fused kernels also keep a packed float32 copy). Other dtypes are
        refused with a ``TypeError``: half-precision scores rank cells wrongly, and the
        C kernels take float32 / float64 only.

    The samples ``x`` and heights ``h`` passed to :meth:`argmax` and :meth:`topk` must
    have the targets' dtype and device (``TypeError`` / ``ValueError`` otherwise): the
    kernel never converts them behind the caller's back.
    chunk : int, optional
        Samples per GEMM; chosen from the cache size when omitted.
    block : int, optional
        Targets per GEMM; all of them unless the (chunk, N) buffer would exceed the
        budget (32 MiB on CPU, 1 GiB on CUDA), when omitted.
    """

    def __init__(self, targets: torch.Tensor, chunk: int | None = None, block: int | None = None):
        if not isinstance(targets, torch.Tensor):
            raise TypeError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
        if targets.dtype not in (torch.float32, torch.float64):
            raise TypeError(
                f"targets must be torch.float32 or torch.float64, got {targets.dtype}: the "
                "scores are computed in the targets' dtype, so the working dtype must be "
                "float32 or float64 (SemiDiscreteProblem promotes half-precision targets to "
                "float32)"
            )
        if targets.dim() != 2:
            raise ValueError(f"targets must have shape (N, d), got {tuple(targets.shape)}")
        self.targets = targets
        self.n_targets = targets.shape[0]
        itemsize = targets.element_size()
        self.chunk = chunk or default_chunk(self.n_targets, itemsize, targets.device)
        self.block = min(
            block or default_block(self.n_targets, self.chunk, itemsize, targets.device),
            max(self.n_targets, 1),
        )
        self.native = targets.device.type == "cpu" and _native.available()
        self.fused = (
            self.native
            and targets.dtype == torch.float32
            and targets.shape[1] <= FUSED_MAX_DIM
            and self.n_targets < 2**31  # int32 lane indices
            and _native.fused_available()
        )
        if self.fused:
            # targets zero-padded to npad rows and packed as (npad / 8, d, 8) panels
            # (a copy: O(N·d) more memory); the padded heights never win
            self._yt = pack_panels(targets)
            self._h = torch.full((self._yt.shape[0] * _PAD,), torch.finfo(torch.float32).min)
        # flat storage: each (rows, width) score view of it is contiguous
        self._buffer = torch.empty(
            self.chunk * self.block, dtype=targets.dtype, device=targets.device
        )

    def _check(self, x: torch.Tensor, h: torch.Tensor) -> None:
        """Raise unless ``x`` (M, d) and ``h`` (N,) match the targets' dtype and device."""
        y = self.targets
        for name, value in (("x", x), ("h", h)):
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
            if value.dtype != y.dtype:
                raise TypeError(f"{name} has dtype {value.dtype}, the targets {y.dtype}")
            if value.device != y.device:
                raise ValueError(f"{name} is on {value.device}, the targets on {y.device}")
        if x.dim() != 2 or x.shape[1] != y.shape[1]:
            raise ValueError(f"x must have shape (M, {y.shape[1]}), got {tuple(x.shape)}")
        if h.shape != (self.n_targets,):
            raise ValueError(f"h must have shape ({self.n_targets},), got {tuple(h.shape)}")

    def _fused(self, name: str, x: torch.Tensor, h: torch.Tensor, index, value) -> None:
        """The fused C kernel ``name`` over the rows of ``x`` (M, d) with heights ``h`` (N,)."""
        self._h[: self.n_targets] = h
        _native.fused_reduce(name, x.contiguous(), self._yt, self._h, index, value)

    def _blocks(self, x: torch.Tensor, h: torch.Tensor):
        """Yield (start, stop, lo, scores): scores = <x[start:stop], y[lo:lo+w]> + h[lo:lo+w].

        ``scores`` is a contiguous (rows, w) view of the shared buffer, valid until the
        next step; the target blocks of one sample chunk come in ascending order.
        """
        for start in range(0, x.shape[0], self.chunk):
            stop = min(start + self.chunk, x.shape[0])
            for lo in range(0, self.n_targets, self.block):
                hi = min(lo + self.block, self.n_targets)
                buf = self._buffer[: (stop - start) * (hi - lo)].view(stop - start, hi - lo)
                torch.addmm(h[lo:hi], x[start:stop], self.targets[lo:hi].t(), out=buf)
                yield start, stop, lo, buf

    def argmax(
        self,
        x: torch.Tensor,
        h: torch.Tensor,
        out_index: torch.Tensor | None = None,
        out_value: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Winning cell and its score for each row of ``x``: (M, d) -> (M,) long, (M,).

        ``out_index`` (M,) long and ``out_value`` (M,) of the targets' dtype, when given,
        receive the answer.
        """
        self._check(x, h)
        m = x.shape[0]
        if out_index is None:
            out_index = torch.empty(m, dtype=torch.long, device=x.device)
        if out_value is None:
            out_value = torch.empty(m, dtype=x.dtype, device=x.device)
        for name, out, dtype in (
            ("out_index", out_index, torch.long),
            ("out_value", out_value, x.dtype),
        ):
            if out.dtype != dtype or out.shape != (m,) or out.device != x.device:
                raise ValueError(
                    f"{name} must be a ({m},) {dtype} tensor on {x.device}, got "
                    f"{tuple(out.shape)} {out.dtype} on {out.device}"
                )
        if self.fused:
            self._fused("fused_argmax", x, h, out_index, out_value)
            return out_index, out_value
        streamed = self.block < self.n_targets
        if streamed:
            part_index = torch.empty(self.chunk, dtype=torch.long, device=x.device)
            part_value = torch.empty(self.chunk, dtype=x.dtype, device=x.device)
        for start, stop, lo, scores in self._blocks(x, h):
            rows = stop - start
            if lo == 0:
                index, value = out_index[start:stop], out_value[start:stop]
            else:
                index, value = part_index[:rows], part_value[:rows]
            if self.native:
                _native.row_argmax(scores, index, value)
            else:
                torch.max(scores, 1, out=(value, index))
            if lo > 0:  # merge: a later block wins only when strictly better
                better = value > out_value[start:stop]
                out_value[start:stop] = torch.where(better, value, out_value[start:stop])
                out_index[start:stop] = torch.where(better, index + lo, out_index[start:stop])
        return out_index, out_value

    def topk(self, x: torch.Tensor, h: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` best scores and cells per row, best first: (M, k), (M, k).

        Columns beyond the number of targets hold score -inf and cell -1.
        """
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = int(k)
        self._check(x, h)
        m = x.shape[0]
        if self.fused and (
            k == 2 or (k <= _native.FUSED_MAX_K and x.shape[1] <= FUSED_TOPK_MAX_DIM)
        ):
            # the same score bits as argmax: its best is always column 0 here
            indices = torch.empty(m, k, dtype=torch.long)
            values = torch.empty(m, k, dtype=torch.float32)
            self._fused("fused_top2" if k == 2 else "fused_topk", x, h, indices, values)
            values[indices < 0] = -torch.inf  # fewer than k targets
            return values, indices
        values = torch.full((m, k), -torch.inf, dtype=x.dtype, device=x.device)
        indices = torch.full((m, k), -1, dtype=torch.long, device=x.device)
        for start, stop, lo, scores in self._blocks(x, h):
            kk = min(k, scores.shape[1])
            if self.native and kk == 2 == k and lo == 0:
                _native.row_top2(scores, indices[start:stop], values[start:stop])
                continue
            v, i = torch.topk(scores, kk, dim=1)
            if lo == 0:
                values[start:stop, :kk] = v
                indices[start:stop, :kk] = i
                continue
            # merge the running best k (lower indices first) with this block's best kk
            both_v = torch.cat([values[start:stop], v], 1)
            both_i = torch.cat([indices[start:stop], i + lo], 1)
            order = torch.sort(both_v, dim=1, descending=True, stable=True).indices[:, :k]
            values[start:stop] = both_v.gather(1, order)
            indices[start:stop] = both_i.gather(1, order)
        return values, indices
