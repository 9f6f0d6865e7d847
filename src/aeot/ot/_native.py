"""Build-on-first-use loader for the C kernels in ``_native.c`` (row reductions, fused
score reductions, Lawson flips).

The shared library is compiled with the system C compiler into a per-user cache
folder (``$AEOT_CACHE_DIR`` or ``~/.cache/aeot``), keyed by a hash of the source
and flags, and loaded with ctypes. Where no compiler is available, or
``AEOT_NATIVE=0`` is set, :func:`load` returns ``None`` and callers use the
pure-torch path, which gives identical answers more slowly.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import numpy as np
import torch

_SOURCE = Path(__file__).with_name("_native.c")
_FLAGS = [
    "-O3",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-fno-signed-zeros",
    "-ffinite-math-only",
    "-shared",
    "-fPIC",
]


def _cache_dir() -> Path:
    root = os.environ.get("AEOT_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "aeot"
    )
    return Path(root) / "native"


def _compile(source: bytes, target: Path, flags: list[str]) -> bool:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / "kernels.c"
        src.write_bytes(source)
        out = Path(tmp) / target.name
        try:
            result = subprocess.run(
                [compiler, *flags, str(src), "-o", str(out)], capture_output=True, timeout=120
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        if result.returncode != 0:
            return False
        os.replace(out, target)  # atomic: concurrent builders never see a partial file
    return True


@cache
def load() -> ctypes.CDLL | None:
    """The compiled kernel library, or ``None`` when it cannot be built here."""
    if os.environ.get("AEOT_NATIVE", "1") == "0":
        return None
    source = _SOURCE.read_bytes()
    for flags in (["-march=native", *_FLAGS], _FLAGS):
        key = hashlib.sha256(source + " ".join(flags).encode() + platform.machine().encode())
        target = _cache_dir() / f"aeot_kernels_{key.hexdigest()[:16]}.so"
        if not target.exists() and not _compile(source, target, flags):
            continue
        try:
            lib = ctypes.CDLL(str(target))
        except OSError:
            continue
        signature = [
            ctypes.c_void_p,
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        for name in ("argmax_rows_f32", "argmax_rows_f64", "top2_rows_f32", "top2_rows_f64"):
            fn = getattr(lib, name)
            fn.argtypes = signature
            fn.restype = None
        lib.lawson_flips.argtypes = [*[ctypes.c_void_p] * 6, *[ctypes.c_int64] * 3]
        lib.lawson_flips.restype = ctypes.c_int64
        lib.fused_available.argtypes = []
        lib.fused_available.restype = ctypes.c_int
        if lib.fused_available():
            # (x, rows, d, ldx, yt, h, npad[, k], idx, val)
            head = [ctypes.c_void_p, *[ctypes.c_int64] * 3, ctypes.c_void_p, ctypes.c_void_p]
            tail = [ctypes.c_void_p, ctypes.c_void_p]
            for name, n_ints in (
                ("fused_argmax_f32", 1),
                ("fused_top2_f32", 1),
                ("fused_topk_f32", 2),
            ):
                fn = getattr(lib, name)
                fn.argtypes = [*head, *[ctypes.c_int64] * n_ints, *tail]
                fn.restype = None
            # (x, rows, d, ldx, best, yt, npad, lowest, total, total_sq)
            lib.fused_lift_f32.argtypes = [
                ctypes.c_void_p,
                *[ctypes.c_int64] * 3,
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_int64,
                *[ctypes.c_void_p] * 3,
            ]
            lib.fused_lift_f32.restype = None
        return lib
    return None


def available() -> bool:
    """Whether the native CPU kernels are in use."""
    return load() is not None


def fused_available() -> bool:
    """Whether the fused score-and-reduce kernels (AVX2 + FMA, float32) were built."""
    lib = load()
    return lib is not None and bool(lib.fused_available())


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        max_workers=max(1, torch.get_num_threads()), thread_name_prefix="aeot"
    )


def _split_rows(rows: int) -> list[tuple[int, int]]:
    """Row ranges, one per worker thread (a single range for few rows)."""
    workers = _pool()._max_workers
    if workers == 1 or rows < 64:
        return [(0, rows)]
    step = -(-rows // workers)
    return [(start, min(start + step, rows)) for start in range(0, rows, step)]


def _run_split(fn, calls: list[tuple]) -> None:
    """``fn(*args)`` for each argument tuple, on the pool when there are several.

    Threads rather than OpenMP (ctypes releases the GIL during each call): a second
    OpenMP runtime beside torch's spins against it and can slow both by orders of
    magnitude on a loaded machine.
    """
    if len(calls) == 1:
        fn(*calls[0])
        return
    for future in [_pool().submit(fn, *args) for args in calls]:
        future.result()


def _run_rows(
    name: str, scores: torch.Tensor, out_index: torch.Tensor, out_value: torch.Tensor
) -> None:
    """Run a row reduction over ``scores`` with its rows split over the thread pool."""
    fn = getattr(load(), f"{name}_{'f32' if scores.dtype == torch.float32 else 'f64'}")
    cols = scores.shape[1]
    ld = scores.stride(0)
    width = out_index.stride(0)  # 1 for argmax, 2 for top-2 (contiguous rows)
    s_item, i_item, v_item = (
        scores.element_size(),
        out_index.element_size(),
        out_value.element_size(),
    )
    calls = [
        (
            scores.data_ptr() + start * ld * s_item,
            stop - start,
            cols,
            ld,
            out_index.data_ptr() + start * width * i_item,
            out_value.data_ptr() + start * width * v_item,
        )
        for start, stop in _split_rows(scores.shape[0])
    ]
    _run_split(fn, calls)


def row_argmax(scores: torch.Tensor, out_index: torch.Tensor, out_value: torch.Tensor) -> None:
    """``out_index[r], out_value[r]`` = argmax and max of ``scores[r]`` (CPU, float32/64)."""
    _run_rows("argmax_rows", scores, out_index, out_value)


def row_top2(scores: torch.Tensor, out_index: torch.Tensor, out_value: torch.Tensor) -> None:
    """Best two columns per row into contiguous (rows, 2) outputs, best first."""
    _run_rows("top2_rows", scores, out_index, out_value)


FUSED_MAX_K = 16  # KMAX of fused_topk_f32


def fused_reduce(
    name: str,
    x: torch.Tensor,
    yt: torch.Tensor,
    h: torch.Tensor,
    out_index: torch.Tensor,
    out_value: torch.Tensor,
) -> None:
    """Run ``fused_argmax``, ``fused_top2`` or ``fused_topk`` over the rows of ``x`` (M, d).

    The rows are split over the thread pool. ``yt`` (npad / 8, d, 8) are the targets
    padded to a multiple of 8 and packed in panels of eight, ``h`` (npad,) their heights
    (padding -FLT_MAX); all float32, contiguous. The outputs are (M,) for argmax, else
    contiguous (M, k) with k = 2 for top-2 and k ≤ ``FUSED_MAX_K`` for top-k.
    """
    fn = getattr(load(), f"{name}_f32")
    rows, dim = x.shape
    ldx = x.stride(0)
    width = 1 if out_index.dim() == 1 else out_index.shape[1]
    k = (width,) if name == "fused_topk" else ()
    calls = [
        (
            x.data_ptr() + start * ldx * 4,
            stop - start,
            dim,
            ldx,
            yt.data_ptr(),
            h.data_ptr(),
            h.shape[0],
            *k,
            out_index.data_ptr() + start * width * 8,
            out_value.data_ptr() + start * width * 4,
        )
        for start, stop in _split_rows(rows)
    ]
    _run_split(fn, calls)


def fused_lift(
    x: torch.Tensor, best: torch.Tensor, yt: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Column minimum, sum and sum of squares of the gaps ``best[:, None] − x @ y.T``.

    ``x`` (M, d) and ``best`` (M,) float32; ``yt`` (npad / 8, d, 8) the targets packed in
    panels of eight as for :func:`fused_reduce`. Returns float32 minima and float64
    sums, each (npad,). The targets are split over the thread pool; each target's
    numbers are the same bits whatever the split (and whatever the other targets).
    """
    fn = load().fused_lift_f32
    rows, dim = x.shape
    npad = yt.shape[0] * 8
    lowest = torch.empty(npad, dtype=torch.float32)
    total = torch.empty(npad, dtype=torch.float64)
    total_sq = torch.empty(npad, dtype=torch.float64)
    # whole pairs of panels per worker, so that each runs the wide tile
    workers = _pool()._max_workers
    step = max(16, -(-npad // workers // 16) * 16)
    calls = [
        (
            x.data_ptr(),
            rows,
            dim,
            x.stride(0),
            best.data_ptr(),
            yt.data_ptr() + lo * dim * 4,
            min(lo + step, npad) - lo,
            lowest.data_ptr() + lo * 4,
            total.data_ptr() + lo * 8,
            total_sq.data_ptr() + lo * 8,
        )
        for lo in range(0, npad, step)
    ]
    _run_split(fn, calls)
    return lowest, total, total_sq


def lawson_flips(
    px: np.ndarray,
    py: np.ndarray,
    psi: np.ndarray,
    simplices: np.ndarray,
    neighbors: np.ndarray,
    edges: np.ndarray,
    max_flips: int,
    stop_at_hidden: bool = False,
) -> int:
    """Run the C Lawson flip loop of :func:`aeot.ot.power2d._lawson_flips` in place.

    ``px``, ``py``, ``psi`` (N,) float64; ``simplices`` and ``neighbors`` flat (3F,)
    int64, modified in place; ``edges`` the entries 3f + m to check first. Returns the
    number of flips, −1 after more than ``max_flips``, or, with ``stop_at_hidden``, −2 once
    a non-flippable edge proves a site hidden (its power cell empty).
    """
    edges = np.ascontiguousarray(edges, dtype=np.int64)
    args = [np.ascontiguousarray(a, dtype=np.float64) for a in (px, py, psi)]
    for a in (simplices, neighbors):
        if a.dtype != np.int64 or not a.flags.c_contiguous:
            raise ValueError("simplices and neighbors must be contiguous int64 arrays")
    return int(
        load().lawson_flips(
            *(a.ctypes.data for a in (*args, simplices, neighbors, edges)),
            edges.size,
            max_flips,
            int(stop_at_hidden),
        )
    )
