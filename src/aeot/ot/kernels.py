"""The hot loop of semi-discrete OT: for each sample x, argmax_i <x, y_i> + h_i.

Scores are computed as a GEMM per chunk of samples into a preallocated buffer
laid out targets × samples, so that reductions over targets run down columns
(contiguous, vectorised). The argmax is found in two levels: the targets are
split into ``B`` blocks of ``K`` consecutive rows; a vertical ``amax`` over the
blocks (cheap, values only) yields the best residue ``k``, and only the ``B``
candidates ``b·K + k`` are compared with indices. This avoids torch's slow
value-and-index reduction over the whole N × chunk buffer.
"""

from __future__ import annotations

import math

import torch

_CACHE_BYTES = 24 * 2**20  # aim to keep one score buffer in the last-level cache


def default_chunk(n_targets: int, device: torch.device, itemsize: int = 4) -> int:
    """Number of samples per GEMM chunk so that the N × chunk buffer stays cache-sized."""
    if device.type == "cuda":
        return int(max(1024, min(65536, 2**30 // (itemsize * max(n_targets, 1)))))
    rows = _CACHE_BYTES // (itemsize * max(n_targets, 1))
    return int(min(4096, max(64, 2 ** int(math.log2(max(rows, 64))))))


class ScoreKernel:
    """Chunked evaluation of s_i(x) = <x, y_i> + h_i over a fixed target set.

    Parameters
    ----------
    targets : (N, d) tensor
        The target points, already on the working device and dtype.
    chunk : int, optional
        Samples per GEMM; chosen from the cache size when omitted.
    """

    def __init__(self, targets: torch.Tensor, chunk: int | None = None):
        self.targets = targets.contiguous()
        n = targets.shape[0]
        self.chunk = chunk or default_chunk(n, targets.device, targets.element_size())
        self._buffer = torch.empty(n, self.chunk, dtype=targets.dtype, device=targets.device)
        # two-level argmax layout: N = blocks * residues (+ a tail handled separately)
        self._blocks = max(1, int(math.sqrt(n) / 2))
        self._residues = n // self._blocks
        self._split = self._blocks * self._residues
        self._colmax = torch.empty(self._residues, self.chunk, dtype=targets.dtype, device=targets.device)
        self._cols = torch.arange(self.chunk, device=targets.device)

    def scores(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Full score matrix (M, N); for small inputs and tests."""
        return torch.addmm(h, x, self.targets.t())

    def argmax(
        self,
        x: torch.Tensor,
        h: torch.Tensor,
        out_index: torch.Tensor | None = None,
        out_value: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Winning cell index and score for each row of ``x`` (M, d) -> (M,), (M,)."""
        m = x.shape[0]
        if out_index is None:
            out_index = torch.empty(m, dtype=torch.long, device=x.device)
        if out_value is None:
            out_value = torch.empty(m, dtype=x.dtype, device=x.device)
        h_col = h.view(-1, 1)
        for start in range(0, m, self.chunk):
            stop = min(start + self.chunk, m)
            width = stop - start
            buf = self._buffer[:, :width] if width < self.chunk else self._buffer
            torch.addmm(h_col, self.targets, x[start:stop].t(), out=buf)
            self._reduce(buf, width, out_index[start:stop], out_value[start:stop])
        return out_index, out_value

    def _reduce(self, buf, width, out_index, out_value) -> None:
        if self._blocks == 1 or buf.device.type == "cuda":
            torch.max(buf, 0, out=(out_value, out_index))
            return
        blocks, residues, split = self._blocks, self._residues, self._split
        if width < self.chunk:
            buf = buf.contiguous()
        head = buf[:split].view(blocks, residues * width)
        colmax = self._colmax[:, :width]
        torch.amax(head.view(blocks, residues, width), 0, out=colmax)
        best_residue = colmax.argmax(0)  # (width,)
        cols = self._cols[:width]
        candidates = head[:, best_residue * width + cols]  # (blocks, width)
        value, block = candidates.max(0)
        index = block * residues + best_residue
        if split < buf.shape[0]:
            tail_value, tail_index = buf[split:].max(0)
            better = tail_value > value
            value = torch.where(better, tail_value, value)
            index = torch.where(better, tail_index + split, index)
        out_value.copy_(value)
        out_index.copy_(index)

    def top2(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Two best scores and their cells for each row: values (M, 2), indices (M, 2)."""
        return self.topk(x, h, 2)

    def topk(self, x: torch.Tensor, h: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` best scores and cells per row, best first: (M, k), (M, k).

        Where ``k`` exceeds the number of targets the missing columns hold
        score -inf and cell -1.
        """
        m = x.shape[0]
        kk = min(k, self.targets.shape[0])
        values = torch.full((m, k), -torch.inf, dtype=x.dtype, device=x.device)
        indices = torch.full((m, k), -1, dtype=torch.long, device=x.device)
        h_col = h.view(-1, 1)
        for start in range(0, m, self.chunk):
            stop = min(start + self.chunk, m)
            buf = self._buffer[:, : stop - start]
            torch.addmm(h_col, self.targets, x[start:stop].t(), out=buf)
            v, i = torch.topk(buf, kk, dim=0)
            values[start:stop, :kk] = v.t()
            indices[start:stop, :kk] = i.t()
        return values, indices
