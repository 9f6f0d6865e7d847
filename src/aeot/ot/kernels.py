"""The hot loop of semi-discrete OT: for each sample x, argmax_i <x, y_i> + h_i.

Scores for a chunk of samples are one GEMM, ``addmm(h, x_chunk, Yᵀ)``, written
into a preallocated (chunk, N) buffer sized to stay in cache. On CPU the row
reductions (argmax, top-2) run in the vectorised C kernels of
:mod:`aeot.ot._native`; elsewhere (CUDA, or no C compiler) in torch.
"""

from __future__ import annotations

import torch

from aeot.ot import _native

_BUFFER_BYTES = 2**25  # 32 MiB: one score buffer, kept within the last-level cache


def default_chunk(n_targets: int, itemsize: int = 4, device: torch.device | None = None) -> int:
    """Samples per GEMM so that the (chunk, N) score buffer stays cache-sized."""
    if device is not None and device.type == "cuda":
        return int(max(1024, min(65536, 2**30 // (itemsize * max(n_targets, 1)))))
    rows = _BUFFER_BYTES // (itemsize * max(n_targets, 1))
    chunk = 64
    while chunk * 2 <= min(rows, 512):
        chunk *= 2
    return chunk


class ScoreKernel:
    """Chunked evaluation of the scores s_i(x) = <x, y_i> + h_i over fixed targets.

    Parameters
    ----------
    targets : (N, d) tensor
        Target points y_i on the working device and dtype.
    chunk : int, optional
        Samples per GEMM; chosen from the cache size when omitted.
    """

    def __init__(self, targets: torch.Tensor, chunk: int | None = None):
        self.targets_t = targets.t().contiguous()  # (d, N)
        self.n_targets = targets.shape[0]
        self.chunk = chunk or default_chunk(self.n_targets, targets.element_size(), targets.device)
        self.native = targets.device.type == "cpu" and _native.available()
        self._buffer = torch.empty(
            self.chunk, self.n_targets, dtype=targets.dtype, device=targets.device
        )

    def _chunks(self, x: torch.Tensor, h: torch.Tensor):
        """Yield (start, stop, scores) with scores = <x[start:stop], y> + h, shape (rows, N)."""
        for start in range(0, x.shape[0], self.chunk):
            stop = min(start + self.chunk, x.shape[0])
            buf = self._buffer[: stop - start]
            torch.addmm(h, x[start:stop], self.targets_t, out=buf)
            yield start, stop, buf

    def argmax(
        self,
        x: torch.Tensor,
        h: torch.Tensor,
        out_index: torch.Tensor | None = None,
        out_value: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Winning cell and its score for each row of ``x``: (M, d) -> (M,) long, (M,)."""
        m = x.shape[0]
        if out_index is None:
            out_index = torch.empty(m, dtype=torch.long, device=x.device)
        if out_value is None:
            out_value = torch.empty(m, dtype=x.dtype, device=x.device)
        for start, stop, scores in self._chunks(x, h):
            if self.native:
                _native.row_argmax(scores, out_index[start:stop], out_value[start:stop])
            else:
                torch.max(scores, 1, out=(out_value[start:stop], out_index[start:stop]))
        return out_index, out_value

    def topk(self, x: torch.Tensor, h: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` best scores and cells per row, best first: (M, k), (M, k).

        Columns beyond the number of targets hold score -inf and cell -1.
        """
        m = x.shape[0]
        kk = min(k, self.n_targets)
        values = torch.full((m, k), -torch.inf, dtype=x.dtype, device=x.device)
        indices = torch.full((m, k), -1, dtype=torch.long, device=x.device)
        use_native = self.native and kk == 2
        for start, stop, scores in self._chunks(x, h):
            if use_native:
                _native.row_top2(scores, indices[start:stop], values[start:stop])
            else:
                v, i = torch.topk(scores, kk, dim=1)
                values[start:stop, :kk] = v
                indices[start:stop, :kk] = i
        return values, indices
