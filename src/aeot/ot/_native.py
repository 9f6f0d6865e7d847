"""The C kernels of the extension ``aeot.ot._native_ext`` (row reductions, fused score
reductions, Lawson flips), behind argument checks.

``pip install`` compiles the extension (setup.py): the kernels for the compiler's
default target and, on x86, again for AVX2 + FMA and for AVX-512. At import it picks
the best variant the CPU runs (:func:`variant`), so one build serves every CPU of its
platform: nothing is compiled at run time, and no code meets an instruction its CPU
lacks. Only the AVX2 and AVX-512 variants have the fused kernels. The variants give the
same answers, but that the sums of :func:`gather_dot` and the flip test of
:func:`lawson_flips` use fma where the variant has it (as a ``-march=native`` build did),
so their last bits, or a flip at an exact near-degeneracy, can differ between variants.

``AEOT_NATIVE`` chooses: unset or ``1`` the best variant; a variant's name (``avx512``,
``avx2``, ``baseline``) that one, where the CPU runs it; ``0`` the pure-torch path, which
gives the same answers more slowly. Where the extension is missing (aeot installed
without a C compiler) the pure-torch path is used after a one-time ``RuntimeWarning``.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from types import ModuleType

import numpy as np
import torch


def _warn(message: str) -> None:
    warnings.warn(f"aeot: {message}", RuntimeWarning, stacklevel=3)


@cache
def load() -> ModuleType | None:
    """The kernel extension with its variant chosen, or ``None`` for the pure-torch path.

    ``None`` without a word under ``AEOT_NATIVE=0``; where the extension cannot be
    imported, ``None`` after a one-time ``RuntimeWarning``. ``AEOT_NATIVE`` naming a
    variant this CPU does not run warns once and keeps the best one.
    """
    choice = os.environ.get("AEOT_NATIVE", "1")
    if choice == "0":
        return None
    try:
        from aeot.ot import _native_ext
    except ImportError as exc:
        _warn(
            f"the native kernels are not installed ({exc}): aeot uses its pure-torch path, "
            "which gives the same answers more slowly. Reinstall aeot with a C compiler "
            "present (pip install .), or set AEOT_NATIVE=0 to silence this"
        )
        return None
    if choice not in ("", "1"):
        try:
            _native_ext.select(choice)
        except ValueError as exc:
            _warn(f"AEOT_NATIVE={choice!r} ignored: {exc}; using {_native_ext.variant()!r}")
    return _native_ext


def available() -> bool:
    """Whether the native CPU kernels are in use."""
    return load() is not None


def variant() -> str:
    """The kernel variant in use: ``"avx512"`` or ``"avx2"`` (AVX2 + FMA, with the fused
    kernels; the first with AVX-512 too), ``"baseline"`` (the compiler's default target),
    or ``"torch"`` (no native kernels)."""
    lib = load()
    return "torch" if lib is None else lib.variant()


def fused_available() -> bool:
    """Whether the fused score-and-reduce kernels (float32; the avx2 and avx512 variants)
    are in use."""
    lib = load()
    return lib is not None and lib.fused_available()


# --------------------------------------------------------------- argument checks
#
# The C kernels trust their pointers, lengths and strides. Every entry point below
# checks dtype, device, layout and sizes first, so that a wrong argument is a
# TypeError / ValueError naming it instead of memory corruption.

_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


def _lib() -> ModuleType:
    """The kernel extension, or a RuntimeError saying why it is not there."""
    lib = load()
    if lib is None:
        raise RuntimeError(
            "the native kernels are not available (the extension is not installed, or "
            "AEOT_NATIVE=0); use the torch path"
        )
    return lib


def _check_tensor(
    tensor: torch.Tensor,
    name: str,
    dtype: torch.dtype,
    shape: tuple[int, ...],
    *,
    contiguous: bool = True,
) -> None:
    """Raise unless ``tensor`` is a CPU tensor of ``dtype`` and ``shape``.

    With ``contiguous`` it must be C-contiguous (outputs, packed inputs); otherwise
    a 2-D input only needs unit column stride and a leading stride of at least its
    width, the layout the kernels read through their leading-dimension argument.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype != dtype:
        raise TypeError(
            f"{name} must have dtype {dtype} for the native kernels, got {tensor.dtype}"
        )
    if tensor.device.type != "cpu":
        raise ValueError(f"{name} must be on the CPU for the native kernels, got {tensor.device}")
    if tensor.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(tensor.shape)}")
    if contiguous:
        if not tensor.is_contiguous():
            raise ValueError(f"{name} must be contiguous, got strides {tensor.stride()}")
    elif tensor.dim() == 2 and tensor.numel() > 0:
        rows, cols = tensor.shape
        if (cols > 1 and tensor.stride(1) != 1) or (rows > 1 and tensor.stride(0) < cols):
            raise ValueError(
                f"{name} must be row-major (unit column stride, rows at least {cols} "
                f"apart), got strides {tensor.stride()}"
            )


def _check_matrix(tensor: torch.Tensor, name: str, dtype: torch.dtype) -> tuple[int, int]:
    """The (rows, cols) of a row-major 2-D CPU input of ``dtype`` with cols ≥ 1."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() != 2:
        raise ValueError(f"{name} must have 2 dimensions, got shape {tuple(tensor.shape)}")
    if tensor.shape[1] < 1:
        raise ValueError(f"{name} must have at least one column, got shape {tuple(tensor.shape)}")
    _check_tensor(tensor, name, dtype, tensor.shape, contiguous=False)
    return tensor.shape[0], tensor.shape[1]


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


def _run_split(fn, calls: list[tuple]) -> list:
    """``fn(*args)`` for each argument tuple, on the pool when there are several; their
    results in the calls' order.

    Threads rather than OpenMP (the extension releases the GIL during each call): a second
    OpenMP runtime beside torch's spins against it and can slow both by orders of
    magnitude on a loaded machine.
    """
    if len(calls) == 1:
        return [fn(*calls[0])]
    return [future.result() for future in [_pool().submit(fn, *args) for args in calls]]


def _run_rows(
    name: str, scores: torch.Tensor, out_index: torch.Tensor, out_value: torch.Tensor, width: int
) -> None:
    """Run a row reduction over ``scores`` with its rows split over the thread pool.

    ``scores`` (rows, cols) float32 or float64 on the CPU, row-major with cols ≥ 1;
    ``out_index`` int64 and ``out_value`` of the scores' dtype, contiguous, (rows,) for
    ``width`` 1 and (rows, width) otherwise.
    """
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"scores must be a torch.Tensor, got {type(scores).__name__}")
    if scores.dtype not in _SUFFIX:
        raise TypeError(
            f"scores must be torch.float32 or torch.float64 for the native kernels, "
            f"got {scores.dtype}"
        )
    rows, cols = _check_matrix(scores, "scores", scores.dtype)
    shape = (rows,) if width == 1 else (rows, width)
    _check_tensor(out_index, "out_index", torch.int64, shape)
    _check_tensor(out_value, "out_value", scores.dtype, shape)
    fn = getattr(_lib(), f"{name}_{_SUFFIX[scores.dtype]}")
    ld = scores.stride(0) if rows > 1 else cols
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
        for start, stop in _split_rows(rows)
    ]
    _run_split(fn, calls)


def row_argmax(scores: torch.Tensor, out_index: torch.Tensor, out_value: torch.Tensor) -> None:
    """``out_index[r], out_value[r]`` = argmax and max of ``scores[r]`` (CPU, float32/64).

    Raises ``TypeError`` / ``ValueError`` for a wrong dtype, device, layout or output size.
    """
    _run_rows("argmax_rows", scores, out_index, out_value, 1)


def row_top2(scores: torch.Tensor, out_index: torch.Tensor, out_value: torch.Tensor) -> None:
    """Best two columns per row into contiguous (rows, 2) outputs, best first.

    Raises ``TypeError`` / ``ValueError`` for a wrong dtype, device, layout or output size.
    """
    _run_rows("top2_rows", scores, out_index, out_value, 2)


def _check_cells(cells: torch.Tensor, rows: int, n_targets: int, checked: bool) -> int:
    """K of contiguous int32 CPU ``cells`` (rows, K) whose entries index n_targets rows
    (their range is checked unless the caller has: ``checked``)."""
    if not isinstance(cells, torch.Tensor) or cells.dim() != 2 or cells.shape[0] != rows:
        shape = tuple(cells.shape) if isinstance(cells, torch.Tensor) else type(cells).__name__
        raise ValueError(f"cells must have shape ({rows}, K), got {shape}")
    _check_tensor(cells, "cells", torch.int32, tuple(cells.shape))
    if not checked and cells.numel() and (int(cells.min()) < 0 or int(cells.max()) >= n_targets):
        raise ValueError(f"cells must lie in [0, {n_targets}), got [{cells.min()}, {cells.max()}]")
    return cells.shape[1]


def gather_dot(
    x: torch.Tensor, y: torch.Tensor, cells: torch.Tensor, *, checked: bool = False
) -> torch.Tensor:
    """raw[r, l] = <x[r], y[cells[r, l]]> for contiguous CPU x (M, d), y (N, d) of one
    float dtype and int32 ``cells`` (M, K): the same bits however the rows are split.
    ``checked``: the caller vouches that every cell lies in [0, N) (skips one pass)."""
    if not isinstance(x, torch.Tensor) or x.dtype not in _SUFFIX or x.dim() != 2:
        raise TypeError("x must be a 2-D float32 or float64 torch.Tensor")
    m, d = x.shape
    _check_tensor(x, "x", x.dtype, (m, d))
    _check_tensor(y, "y", x.dtype, (y.shape[0], d) if y.dim() == 2 else (-1, d))
    k = _check_cells(cells, m, y.shape[0], checked)
    raw = torch.empty(m, k, dtype=x.dtype)
    if m == 0 or k == 0:
        return raw
    fn = getattr(_lib(), f"gather_dot_{_SUFFIX[x.dtype]}")
    item = x.element_size()
    calls = [
        (
            x.data_ptr() + start * d * item,
            stop - start,
            d,
            y.data_ptr(),
            cells.data_ptr() + start * k * 4,
            k,
            raw.data_ptr() + start * k * item,
        )
        for start, stop in _split_rows(m)
    ]
    _run_split(fn, calls)
    return raw


def cand_top2(
    raw: torch.Tensor,
    cells: torch.Tensor,
    h: torch.Tensor,
    skip: torch.Tensor,
    *,
    checked: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The best two of raw[r, l] + h[cells[r, l]] over the cells not marked in ``skip``
    (N,) bool: values (M, 2) of raw's dtype and cells (M, 2) int64, best first, ties to
    the lower column; index −1 and the dtype's lowest value where fewer than two.
    ``checked``: the caller vouches that every cell lies in [0, N) (skips one pass)."""
    if not isinstance(raw, torch.Tensor) or raw.dtype not in _SUFFIX or raw.dim() != 2:
        raise TypeError("raw must be a 2-D float32 or float64 torch.Tensor")
    m, k = raw.shape
    _check_tensor(raw, "raw", raw.dtype, (m, k))
    n_targets = h.shape[0] if isinstance(h, torch.Tensor) else -1
    _check_tensor(h, "h", raw.dtype, (n_targets,))
    _check_tensor(skip, "skip", torch.bool, (n_targets,))
    if _check_cells(cells, m, n_targets, checked) != k:
        raise ValueError(f"cells must have shape {(m, k)}, got {tuple(cells.shape)}")
    idx = torch.empty(m, 2, dtype=torch.int64)
    val = torch.empty(m, 2, dtype=raw.dtype)
    if m == 0:
        return val, idx
    fn = getattr(_lib(), f"cand_top2_{_SUFFIX[raw.dtype]}")
    item = raw.element_size()
    calls = [
        (
            raw.data_ptr() + start * k * item,
            cells.data_ptr() + start * k * 4,
            stop - start,
            k,
            h.data_ptr(),
            skip.data_ptr(),
            idx.data_ptr() + start * 16,
            val.data_ptr() + start * 2 * item,
        )
        for start, stop in _split_rows(m)
    ]
    _run_split(fn, calls)
    return val, idx


FUSED_MAX_K = 64  # KMAX of fused_topk_f32


def _check_panels(yt: torch.Tensor, dim: int) -> int:
    """The padded target count npad of packed panels ``yt`` (npad / 8, ``dim``, 8)."""
    if not isinstance(yt, torch.Tensor):
        raise TypeError(f"yt must be a torch.Tensor, got {type(yt).__name__}")
    if yt.dim() != 3 or yt.shape[1:] != (dim, 8):
        raise ValueError(f"yt must have shape (npad / 8, {dim}, 8), got {tuple(yt.shape)}")
    _check_tensor(yt, "yt", torch.float32, tuple(yt.shape))
    npad = yt.shape[0] * 8
    if npad >= 2**31:
        raise ValueError(f"the fused kernels take fewer than 2^31 targets, got {npad}")
    return npad


def _fused_lib() -> ModuleType:
    lib = _lib()
    if not lib.fused_available():
        raise RuntimeError(
            f"the fused kernels need AVX2 and FMA, not the {lib.variant()!r} variant"
        )
    return lib


_FUSED_NAMES = ("fused_argmax", "fused_top2", "fused_topk")


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
    (padding -FLT_MAX); all float32, contiguous. ``x`` is float32 and row-major. The
    outputs (int64 and float32, contiguous) are (M,) for argmax, else (M, k) with
    k = 2 for top-2 and 1 ≤ k ≤ ``FUSED_MAX_K`` for top-k. Anything else raises
    ``TypeError`` / ``ValueError`` naming the argument.
    """
    if name not in _FUSED_NAMES:
        raise ValueError(f"name must be one of {_FUSED_NAMES}, got {name!r}")
    rows, dim = _check_matrix(x, "x", torch.float32)
    npad = _check_panels(yt, dim)
    _check_tensor(h, "h", torch.float32, (npad,))
    if name == "fused_argmax":
        width, shape = 1, (rows,)
    elif name == "fused_top2":
        width, shape = 2, (rows, 2)
    else:
        if not isinstance(out_index, torch.Tensor) or out_index.dim() != 2:
            raise ValueError("out_index must have shape (M, k) for fused_topk")
        width = out_index.shape[1]
        if not 1 <= width <= FUSED_MAX_K:
            raise ValueError(f"fused_topk takes 1 <= k <= {FUSED_MAX_K}, got k = {width}")
        shape = (rows, width)
    _check_tensor(out_index, "out_index", torch.int64, shape)
    _check_tensor(out_value, "out_value", torch.float32, shape)
    fn = getattr(_fused_lib(), f"{name}_f32")
    ldx = x.stride(0) if rows > 1 else dim
    k = (width,) if name == "fused_topk" else ()
    calls = [
        (
            x.data_ptr() + start * ldx * 4,
            stop - start,
            dim,
            ldx,
            yt.data_ptr(),
            h.data_ptr(),
            npad,
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
    A wrong dtype, device, layout or size raises ``TypeError`` / ``ValueError``.
    """
    rows, dim = _check_matrix(x, "x", torch.float32)
    _check_tensor(best, "best", torch.float32, (rows,))
    npad = _check_panels(yt, dim)
    fn = _fused_lib().fused_lift_f32
    ldx = x.stride(0) if rows > 1 else dim
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
            ldx,
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


def _check_index_array(a, name: str, low: int, high: int) -> np.ndarray:
    """A 1-D int64 array with entries in [low, high), else TypeError / ValueError."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype != np.int64:
        raise TypeError(f"{name} must have dtype int64, got {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{name} must be flat (1-D), got shape {a.shape}")
    if a.size and (int(a.min()) < low or int(a.max()) >= high):
        raise ValueError(
            f"{name} has entries outside [{low}, {high}): from {int(a.min())} to {int(a.max())}"
        )
    return a


def _check_sites(px, py, psi) -> list[np.ndarray]:
    """The sites' coordinates and weights as three contiguous float64 arrays of one
    length, all finite (the kernels build with -ffinite-math-only), else TypeError /
    ValueError."""
    sites = []
    for name, a in (("px", px), ("py", py), ("psi", psi)):
        a = np.asarray(a)
        if a.dtype.kind not in "fiu":
            raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
        if a.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
        sites.append(np.ascontiguousarray(a, dtype=np.float64))
    if sites[1].size != sites[0].size or sites[2].size != sites[0].size:
        raise ValueError(f"px, py and psi must have the same length, got {[a.size for a in sites]}")
    for name, a in zip(("px", "py", "psi"), sites, strict=True):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} must be finite, got {int((~np.isfinite(a)).sum())} NaN/inf")
    return sites


def _check_low(psi_lo, n: int) -> int:
    """The address of ``psi_lo`` (N,) float64 contiguous, the low parts of double-double
    weights, or 0 for None."""
    if psi_lo is None:
        return 0
    if not isinstance(psi_lo, np.ndarray) or psi_lo.dtype != np.float64:
        raise TypeError("psi_lo must be a float64 array or None")
    if psi_lo.shape != (n,) or not psi_lo.flags.c_contiguous:
        raise ValueError(f"psi_lo must be a contiguous array of shape ({n},), got {psi_lo.shape}")
    if not np.isfinite(psi_lo).all():
        raise ValueError("psi_lo must be finite")
    return psi_lo.ctypes.data


def _check_faces(simplices: np.ndarray, neighbors: np.ndarray, n_sites: int) -> int:
    """The number F of triangles of flat (3F,) int64 ``simplices`` (sites in [0, N)) and
    ``neighbors`` (triangles in [-1, F)), else TypeError / ValueError."""
    if simplices.size != neighbors.size or simplices.size % 3:
        raise ValueError(
            f"simplices and neighbors must be flat (3F,) arrays of one size, got "
            f"{simplices.size} and {neighbors.size} entries"
        )
    n_faces = simplices.size // 3
    _check_index_array(simplices, "simplices", 0, n_sites)
    _check_index_array(neighbors, "neighbors", -1, n_faces)
    return n_faces


def lawson_flips(
    px: np.ndarray,
    py: np.ndarray,
    psi: np.ndarray,
    simplices: np.ndarray,
    neighbors: np.ndarray,
    edges: np.ndarray | None,
    max_flips: int,
    stop_at_hidden: bool = False,
    psi_lo: np.ndarray | None = None,
) -> int:
    """Run the C Lawson flip loop of :func:`aeot.ot.power2d._lawson_flips` in place.

    ``px``, ``py``, ``psi`` (N,) float64; ``simplices`` and ``neighbors`` flat (3F,)
    int64, modified in place; ``edges`` the entries 3f + m to check first, or None to
    test every interior edge in C and check the non-regular ones first (what
    :func:`aeot.ot.power2d._lawson_flips`'s vectorised test would pass). Returns the
    number of flips, −1 after more than ``max_flips``, or, with ``stop_at_hidden``, −2 once
    a non-flippable edge proves a site hidden (its power cell empty). ``psi_lo`` (N,)
    float64 or None: low parts of the weights, which are then ψ + ψ_lo (double-double;
    differences ψ_i − ψ_j are formed as (ψ_i − ψ_j) + (lo_i − lo_j)). Arrays of the
    wrong kind, of mismatched lengths or with out-of-range indices raise
    ``TypeError`` / ``ValueError`` before any C code runs.
    """
    args = _check_sites(px, py, psi)
    lo = _check_low(psi_lo, args[0].size)
    for name, a in (("simplices", simplices), ("neighbors", neighbors)):
        if not isinstance(a, np.ndarray) or a.dtype != np.int64 or not a.flags.c_contiguous:
            raise ValueError(f"{name} must be a contiguous int64 array (it is updated in place)")
        if not a.flags.writeable:
            raise ValueError(f"{name} must be writeable (it is updated in place)")
    n_faces = _check_faces(simplices, neighbors, args[0].size)
    if edges is None:  # the kernel scans every entry of neighbors (n0 = -3F)
        edges, n0 = neighbors, -neighbors.size
    else:
        edges = np.asarray(edges)
        if edges.dtype.kind not in "iu":
            raise TypeError(f"edges must hold integers, got dtype {edges.dtype}")
        edges = np.ascontiguousarray(edges.reshape(-1), dtype=np.int64)
        _check_index_array(edges, "edges", 0, 3 * n_faces)
        n0 = edges.size
    return int(
        _lib().lawson_flips(
            *(a.ctypes.data for a in args),
            lo,
            *(a.ctypes.data for a in (simplices, neighbors, edges)),
            n0,
            int(max_flips),
            int(stop_at_hidden),
        )
    )


def warm_edges(
    px: np.ndarray,
    py: np.ndarray,
    psi: np.ndarray,
    simplices: np.ndarray,
    neighbors: np.ndarray,
    box: tuple[float, float, float, float],
    shift: np.ndarray | None,
    psi_lo: np.ndarray | None = None,
):
    """Run the C loop of :func:`aeot.ot.power2d._dual_edges` (warm start) and of the
    interior part of :func:`aeot.ot.power2d._assemble`.

    ``px``, ``py``, ``psi`` (N,) real; ``simplices``, ``neighbors`` flat (3F,) int64 (a
    triangulation of the sites, as for :func:`lawson_flips`); ``box`` = (low₀, low₁,
    high₀, high₁); ``shift`` (N, 2) the sites minus their reference points, or None;
    ``psi_lo`` the weights' low parts, or None (as for :func:`lawson_flips`).

    Returns ``(ei, ej, length, seg, cut, area)`` for the E diagram edges of positive
    length inside the box: cells (E,), lengths (E,), end points (E, 2, 2), ``cut`` (E,)
    uint8 (bit 0: the first end on the box boundary, bit 1: the second) and the edges'
    part of the cell areas (N,); or −1 when the triangulation is not the regular one for
    ``psi`` or has a skinny or flat triangle (use Qhull), −2 for an edge parallel to a
    side of the box (use the NumPy path). Arrays of the wrong kind, of mismatched
    lengths or with out-of-range indices raise ``TypeError`` / ``ValueError`` first.
    """
    sites = _check_sites(px, py, psi)
    n = sites[0].size
    lo = _check_low(psi_lo, n)
    s, nb = np.ascontiguousarray(simplices), np.ascontiguousarray(neighbors)
    n_faces = _check_faces(s, nb, n)
    box_arr = np.ascontiguousarray(box, dtype=np.float64)
    if box_arr.shape != (4,) or not (box_arr[:2] < box_arr[2:]).all():
        raise ValueError(f"box must be (low0, low1, high0, high1) with low < high, got {box}")
    if shift is not None:
        shift = np.ascontiguousarray(shift, dtype=np.float64)
        if shift.shape != (n, 2):
            raise ValueError(f"shift must have shape ({n}, 2), got {shift.shape}")
    # each interior edge once and every hull edge: (3F + hull edges) / 2
    size = (nb.size + int(np.count_nonzero(nb < 0))) // 2
    vertices = np.empty(2 * n_faces)
    ei, ej = np.empty(size, np.int64), np.empty(size, np.int64)
    length, seg, cut = np.empty(size), np.empty((size, 2, 2)), np.empty(size, np.uint8)
    area_i, area_j = np.zeros(n), np.zeros(n)
    kept = int(
        _lib().warm_edges(
            *(a.ctypes.data for a in sites),
            lo,
            *(a.ctypes.data for a in (s, nb)),
            n_faces,
            box_arr.ctypes.data,
            0 if shift is None else shift.ctypes.data,
            *(a.ctypes.data for a in (vertices, ei, ej, length, seg, cut, area_i, area_j)),
        )
    )
    if kept < 0:
        return kept
    area_i += area_j
    return ei[:kept], ej[:kept], length[:kept], seg[:kept], cut[:kept], area_i


def sweep_triangulate(
    px: np.ndarray, py: np.ndarray, psi: np.ndarray, psi_lo: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The regular triangulation of the sites (px, py) with weights ``psi`` (+ ``psi_lo``,
    as for :func:`lawson_flips`) by the C radial sweep with Lawson flips (for ψ = 0 the
    Delaunay triangulation).

    Returns ``(simplices, neighbors)``, (T, 3) int64 each: counter-clockwise triangles and
    the triangle opposite each corner (−1 on the hull), as
    :class:`aeot.ot.power2d.RegularTriangulation` holds them; or None when the kernel
    gives up (fewer than three sites, collinear or coincident sites, a site on a hull
    edge, a hidden site): use Qhull.  Floating-point predicates: the caller checks that
    the result is regular.
    """
    sites = _check_sites(px, py, psi)
    n = sites[0].size
    lo = _check_low(psi_lo, n)
    if n < 3:
        return None
    cap = max(1, 2 * n - 5)
    simplices, neighbors = np.empty(3 * cap, np.int64), np.empty(3 * cap, np.int64)
    count = int(
        _lib().sweep_triangulate(
            *(a.ctypes.data for a in sites), lo, n, simplices.ctypes.data, neighbors.ctypes.data
        )
    )
    if count < 0:
        return None
    return simplices[: 3 * count].reshape(count, 3), neighbors[: 3 * count].reshape(count, 3)


# ------------------------------------------- accelerated discrete OT (log-sum-exp passes)
#
# The passes of aeot.ot.accelerated over a float64 cost matrix C (n × m, row-major) and
# over its active sets (CSR lists), rows split over the thread pool; each thread adds
# into its own column sums, added up afterwards.  Their exponential is the kernels'
# exp_nonpos (about one ulp; 0 below e^−708).


def _check_costs(cost: torch.Tensor) -> tuple[int, int, int]:
    rows, cols = _check_matrix(cost, "cost", torch.float64)
    return rows, cols, cost.stride(0) if rows > 1 else cols


def _check_vector(tensor: torch.Tensor, name: str, n: int, dtype=torch.float64) -> int:
    _check_tensor(tensor, name, dtype, (n,))
    return tensor.data_ptr()


def lse_dense(
    cost: torch.Tensor, psi: torch.Tensor, a: torch.Tensor, reg: float, columns: torch.Tensor
) -> float:
    """Σ_i a_i (t_i + log s_i) over the rows of ``cost``, where z_ij = (ψ_j − C_ij) / reg,
    t_i = max_j z_ij and s_i = Σ_j e^(z_ij − t_i); adds Σ_i a_i softmax_j(z_i) to
    ``columns`` (m,).  All float64 on the CPU."""
    n, m, ld = _check_costs(cost)
    p, pa = _check_vector(psi, "psi", m), _check_vector(a, "a", n)
    _check_vector(columns, "columns", m)
    if not reg > 0:
        raise ValueError(f"reg must be > 0, got {reg}")
    lib = _lib()

    def part(start, stop):
        cols = torch.zeros(m, dtype=torch.float64)
        buf = torch.empty(m, dtype=torch.float64)
        value = lib.lse_dense_f64(
            cost.data_ptr() + 8 * start * ld,
            stop - start,
            m,
            ld,
            p,
            pa + 8 * start,
            float(reg),
            buf.data_ptr(),
            cols.data_ptr(),
        )
        return value, cols

    return _map_rows(part, n, columns)


def _map_rows(part, n: int, columns: torch.Tensor) -> float:
    """Σ of ``part(start, stop)``'s values over the row ranges; their column sums are
    added to ``columns``."""
    value = 0.0
    for piece, cols in _run_split(part, _split_rows(n)):
        value += piece
        columns += cols
    return value


def lse_csr(
    psi: torch.Tensor,
    cols: torch.Tensor,
    values: torch.Tensor,
    ptr: torch.Tensor,
    a: torch.Tensor,
    reg: float,
    w: torch.Tensor,
    columns: torch.Tensor,
    *,
    checked: bool = False,
) -> float:
    """:func:`lse_dense` over a CSR list: row i's entries ``ptr[i]`` to ``ptr[i + 1]`` − 1
    with columns ``cols`` (int64, each in [0, m)) and costs ``values``; every row
    non-empty.  Writes a_i softmax(z_i)_k to ``w`` (the entries' size) as well.  The
    offsets and column range are checked unless the caller has (``checked``: a list
    from :func:`active_entries`, checked once there by construction)."""
    m = psi.shape[0] if isinstance(psi, torch.Tensor) and psi.dim() == 1 else -1
    p = _check_vector(psi, "psi", max(m, 0))
    n = ptr.shape[0] - 1 if isinstance(ptr, torch.Tensor) and ptr.dim() == 1 else -1
    if n < 0:
        raise ValueError("ptr must be a 1-D tensor of n + 1 row offsets")
    _check_vector(ptr, "ptr", n + 1, torch.int64)
    k = cols.shape[0] if isinstance(cols, torch.Tensor) and cols.dim() == 1 else -1
    _check_vector(cols, "cols", max(k, 0), torch.int64)
    pv, pw = _check_vector(values, "values", k), _check_vector(w, "w", k)
    pa = _check_vector(a, "a", n)
    _check_vector(columns, "columns", m)
    if int(ptr[0]) != 0 or int(ptr[-1]) != k:
        raise ValueError("ptr must rise strictly from 0 to the number of entries")
    if not checked:
        if bool((ptr[1:] <= ptr[:-1]).any()):
            raise ValueError("ptr must rise strictly from 0 to the number of entries")
        if k and (int(cols.min()) < 0 or int(cols.max()) >= m):
            raise ValueError(f"cols must lie in [0, {m})")
    if not reg > 0:
        raise ValueError(f"reg must be > 0, got {reg}")
    lib = _lib()
    pp, pcol = ptr.data_ptr(), cols.data_ptr()

    def part(start, stop):
        out = torch.zeros(m, dtype=torch.float64)
        value = lib.lse_csr_f64(
            p,
            pcol,
            pv,
            pp + 8 * start,
            stop - start,
            pa + 8 * start,
            float(reg),
            pw,
            out.data_ptr(),
        )
        return value, out

    return _map_rows(part, n, columns)


def active_entries(
    cost: torch.Tensor, psi0: torch.Tensor, radius: float, max_entries: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """The entries (i, j) with ψ0_j − C_ij ≥ max_j (ψ0_j − C_ij) − ``radius`` as a CSR
    list ``(ptr, cols, values)`` (columns in order within each row), or None when they
    are more than ``max_entries``."""
    n, m, ld = _check_costs(cost)
    p = _check_vector(psi0, "psi0", m)
    if not radius >= 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    lib = _lib()
    top = torch.empty(n, dtype=torch.float64)
    ptr = torch.zeros(n + 1, dtype=torch.int64)
    count = ptr[1:]

    def counted(start, stop):
        buf = torch.empty(m, dtype=torch.float64)
        lib.active_count_f64(
            cost.data_ptr() + 8 * start * ld,
            stop - start,
            m,
            ld,
            p,
            float(radius),
            buf.data_ptr(),
            top.data_ptr() + 8 * start,
            count.data_ptr() + 8 * start,
        )

    ranges = _split_rows(n)
    _run_split(counted, ranges)
    ptr[1:] = torch.cumsum(count, 0)
    total = int(ptr[-1])
    if total > max_entries:
        return None
    cols = torch.empty(total, dtype=torch.int64)
    values = torch.empty(total, dtype=torch.float64)

    def filled(start, stop):
        return lib.active_fill_f64(
            cost.data_ptr() + 8 * start * ld,
            stop - start,
            m,
            ld,
            p,
            top.data_ptr() + 8 * start,
            float(radius),
            ptr.data_ptr() + 8 * start,
            cols.data_ptr(),
            values.data_ptr(),
        )

    bad = sum(_run_split(filled, ranges))
    # finite input fills every row's range exactly, each with its largest entry at least
    if bad or bool((count == 0).any()):
        raise ValueError("cost and psi0 must be finite (a NaN or inf entry made the active set)")
    return ptr, cols, values


def ctransform_dot(
    cost: torch.Tensor, psi: torch.Tensor, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(φ, C x) with φ_i = min_j (C_ij − ψ_j), in one pass over ``cost``."""
    n, m, ld = _check_costs(cost)
    p, px = _check_vector(psi, "psi", m), _check_vector(x, "x", m)
    lib = _lib()
    phi, dot = torch.empty(n, dtype=torch.float64), torch.empty(n, dtype=torch.float64)

    def part(start, stop):
        lib.ctransform_dot_f64(
            cost.data_ptr() + 8 * start * ld,
            stop - start,
            m,
            ld,
            p,
            px,
            phi.data_ptr() + 8 * start,
            dot.data_ptr() + 8 * start,
        )

    _run_split(part, _split_rows(n))
    return phi, dot
