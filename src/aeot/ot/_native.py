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


# --------------------------------------------------------------- argument checks
#
# The C kernels trust their pointers, lengths and strides. Every entry point below
# checks dtype, device, layout and sizes first, so that a wrong argument is a
# TypeError / ValueError naming it instead of memory corruption.

_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


def _lib() -> ctypes.CDLL:
    """The loaded library, or a RuntimeError saying why it is not there."""
    lib = load()
    if lib is None:
        raise RuntimeError(
            "the native kernels are not available (no C compiler, or AEOT_NATIVE=0); "
            "use the torch path"
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


FUSED_MAX_K = 16  # KMAX of fused_topk_f32


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


def _fused_lib() -> ctypes.CDLL:
    lib = _lib()
    if not lib.fused_available():
        raise RuntimeError("the fused kernels were not built here (they need AVX2 and FMA)")
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
    a non-flippable edge proves a site hidden (its power cell empty). Arrays of the
    wrong kind, of mismatched lengths or with out-of-range indices raise
    ``TypeError`` / ``ValueError`` before any C code runs.
    """
    args = []
    for name, a in (("px", px), ("py", py), ("psi", psi)):
        a = np.asarray(a)
        if a.dtype.kind not in "fiu":
            raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
        if a.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
        args.append(np.ascontiguousarray(a, dtype=np.float64))
    n_sites = args[0].size
    if args[1].size != n_sites or args[2].size != n_sites:
        raise ValueError(
            f"px, py and psi must have the same length, got {[a.size for a in args]}"
        )
    for name, a in (("simplices", simplices), ("neighbors", neighbors)):
        if not isinstance(a, np.ndarray) or a.dtype != np.int64 or not a.flags.c_contiguous:
            raise ValueError(f"{name} must be a contiguous int64 array (it is updated in place)")
        if not a.flags.writeable:
            raise ValueError(f"{name} must be writeable (it is updated in place)")
    if simplices.size != neighbors.size or simplices.size % 3:
        raise ValueError(
            f"simplices and neighbors must be flat (3F,) arrays of one size, got "
            f"{simplices.size} and {neighbors.size} entries"
        )
    n_faces = simplices.size // 3
    _check_index_array(simplices, "simplices", 0, n_sites)
    _check_index_array(neighbors, "neighbors", -1, n_faces)
    edges = np.asarray(edges)
    if edges.dtype.kind not in "iu":
        raise TypeError(f"edges must hold integers, got dtype {edges.dtype}")
    edges = np.ascontiguousarray(edges.reshape(-1), dtype=np.int64)
    _check_index_array(edges, "edges", 0, 3 * n_faces)
    return int(
        _lib().lawson_flips(
            *(a.ctypes.data for a in (*args, simplices, neighbors, edges)),
            edges.size,
            int(max_flips),
            int(stop_at_hidden),
        )
    )
