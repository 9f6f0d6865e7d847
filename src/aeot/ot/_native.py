"""Build-on-first-use loader for the C kernels in ``_native.c`` (row reductions, fused
score reductions, Lawson flips).

The shared library is compiled with the system C compiler and loaded with ctypes.
Where ``AEOT_NATIVE=0`` is set :func:`load` returns ``None`` and callers use the
pure-torch path, which gives identical answers more slowly; where no compiler is
available, or compiling fails, the same happens after a one-time ``RuntimeWarning``
saying so.

The cache
---------
Built libraries are kept in ``$AEOT_CACHE_DIR/native`` (default
``~/.cache/aeot/native``) and loaded by later processes, so nothing that could be
planted or damaged there is trusted blindly:

* the cache key hashes the C source, the compiler flags, the compiler binary, the
  machine type and the CPU's feature flags (``/proc/cpuinfo``): a cache shared
  between machines never hands one CPU's ``-march=native`` build to another;
* each build is compiled under a temporary name and renamed into place, then a
  small JSON manifest beside it records its SHA-256 with the source hash, flags,
  compiler and CPU signature (also written atomically);
* before loading, the manifest must match and the file's SHA-256 must equal the
  recorded one; the file must be a regular file owned by the current user and not
  writable by group or others. Any mismatch, or a failure to load, rebuilds it (a
  truncated library, which once made every later process die of SIGBUS, is simply
  replaced);
* the cache folder itself (and its parent) must be owned by the current user and
  not writable by group or others: otherwise another user could plant a library
  with a matching manifest. Such a folder is refused with a one-time
  ``RuntimeWarning`` and the kernels are built in a private temporary folder for
  this process instead (about a second), which is deleted once loaded.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import numpy as np
import torch

from aeot._io import file_sha256

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
_MANIFEST_VERSION = 1


def _cache_root() -> Path:
    """``$AEOT_CACHE_DIR`` or ``~/.cache/aeot``."""
    root = os.environ.get("AEOT_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "aeot"
    )
    return Path(root)


def _cache_dir() -> Path:
    """The folder of the built libraries: ``native`` under :func:`_cache_root`."""
    return _cache_root() / "native"


@cache
def _cpu_signature() -> str:
    """SHA-256 of the machine type and the CPU feature flags (what -march=native sees)."""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    flags = " ".join(sorted(value.split()))
                    break
    except OSError:
        pass
    if not flags:  # not Linux: the best description at hand
        flags = f"{platform.processor()} {platform.platform()}"
    return hashlib.sha256(f"{platform.machine()}|{flags}".encode()).hexdigest()


def _find_compiler() -> str | None:
    """``$CC``, else ``cc`` or ``gcc`` on the PATH."""
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def _compiler_id(compiler: str) -> str:
    """The compiler's resolved path, size and modification time (a new compiler: a new key)."""
    path = shutil.which(compiler) or compiler
    try:
        info = os.stat(path)
    except OSError:
        return path
    return f"{os.path.realpath(path)}:{info.st_size}:{info.st_mtime_ns}"


def _unsafe_reason(path: Path, *, folder: bool) -> str | None:
    """Why ``path`` cannot be trusted, or ``None``: it must be a folder (or a regular
    file) owned by the current user and not writable by group or others."""
    try:
        info = os.stat(path) if folder else os.lstat(path)
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if folder and not stat.S_ISDIR(info.st_mode):
        return "not a folder"
    if not folder and not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"owned by user id {info.st_uid}, not by the current user ({os.getuid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by group or others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def _private_cache() -> tuple[Path | None, str | None]:
    """The cache folder, created owner-only if missing, or ``None`` and why not."""
    root, folder = _cache_root(), _cache_dir()
    for path in (root, folder):  # the root is checked before anything is made in it
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            return None, f"{path} cannot be created ({exc.strerror or exc})"
        reason = _unsafe_reason(path, folder=True)
        if reason is not None:
            return None, f"{path} is {reason}, so a library planted there could run code here"
    return folder, None


def _manifest(source: bytes, flags: list[str], compiler: str) -> dict:
    """What a cached library must have been built from (its SHA-256 is added beside)."""
    return {
        "version": _MANIFEST_VERSION,
        "source_sha256": hashlib.sha256(source).hexdigest(),
        "flags": list(flags),
        "compiler": _compiler_id(compiler),
        "machine": platform.machine(),
        "cpu": _cpu_signature(),
    }


def _paths(folder: Path, expected: dict) -> tuple[Path, Path]:
    """The library and manifest paths, named by a hash of everything in ``expected``."""
    key = hashlib.sha256(json.dumps(expected, sort_keys=True).encode()).hexdigest()[:16]
    return folder / f"aeot_kernels_{key}.so", folder / f"aeot_kernels_{key}.json"


_LAST_ERROR = [""]  # the last build failure, for the warning


def _compile(source: bytes, target: Path, flags: list[str], compiler: str) -> str | None:
    """Compile ``source`` into ``target`` (temp name, then an atomic rename).

    Returns the SHA-256 of the built library, or ``None`` when compiling failed
    (the compiler's message then goes to :data:`_LAST_ERROR`).
    """
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        src = Path(tmp) / "kernels.c"
        src.write_bytes(source)
        out = Path(tmp) / target.name
        try:
            result = subprocess.run(
                [compiler, *flags, str(src), "-o", str(out)], capture_output=True, timeout=120
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            _LAST_ERROR[0] = f"{compiler} could not run: {exc}"
            return None
        if result.returncode != 0 or not out.is_file():
            stderr = result.stderr.decode(errors="replace").strip().splitlines()
            _LAST_ERROR[0] = f"{compiler} failed: {' / '.join(stderr[-3:]) or result.returncode}"
            return None
        os.chmod(out, 0o755)  # never group/other-writable, whatever the umask
        digest = file_sha256(out)
        os.replace(out, target)  # atomic: concurrent builders never see a partial file
    return digest


def _write_manifest(path: Path, manifest: dict) -> None:
    """Write ``manifest`` as JSON to ``path`` atomically (temp file, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".manifest-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(manifest, handle, sort_keys=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_verified(target: Path, manifest_path: Path, expected: dict) -> ctypes.CDLL | None:
    """Load ``target`` only if its manifest matches ``expected`` and its SHA-256 the
    manifest's; both files must be owned by the current user, not group/other-writable."""
    if not target.exists() or not manifest_path.exists():
        return None
    for path in (target, manifest_path):
        if _unsafe_reason(path, folder=False) is not None:
            return None
    try:
        recorded = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(recorded, dict) or any(recorded.get(k) != v for k, v in expected.items()):
        return None
    try:
        before = os.stat(target)
        if file_sha256(target) != recorded.get("sha256"):
            return None
        after = os.stat(target)
        if (before.st_ino, before.st_size, before.st_mtime_ns) != (
            after.st_ino,
            after.st_size,
            after.st_mtime_ns,
        ):
            return None  # replaced while hashing: check again on the rebuild path
        return _configure(ctypes.CDLL(str(target)))
    except (OSError, AttributeError):  # unloadable, or a symbol missing
        return None


def _configure(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Declare the argument and result types of the kernels in ``lib``."""
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
    for suffix in ("f32", "f64"):
        # (x, rows, d, y, cells, k, raw)
        fn = getattr(lib, f"gather_dot_{suffix}")
        fn.argtypes = [ctypes.c_void_p, *[ctypes.c_int64] * 2, *[ctypes.c_void_p] * 2]
        fn.argtypes += [ctypes.c_int64, ctypes.c_void_p]
        fn.restype = None
        # (raw, cells, rows, k, h, skip, idx, val)
        fn = getattr(lib, f"cand_top2_{suffix}")
        fn.argtypes = [*[ctypes.c_void_p] * 2, *[ctypes.c_int64] * 2, *[ctypes.c_void_p] * 4]
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


def _build_and_load(
    source: bytes, flags: list[str], compiler: str, folder: Path
) -> ctypes.CDLL | None:
    """The verified cached library for ``flags`` in ``folder``, (re)built when missing,
    damaged, foreign or unloadable."""
    expected = _manifest(source, flags, compiler)
    target, manifest_path = _paths(folder, expected)
    lib = _load_verified(target, manifest_path, expected)
    if lib is not None:
        return lib
    try:
        digest = _compile(source, target, flags, compiler)
        if digest is None:
            return None
        _write_manifest(manifest_path, {**expected, "sha256": digest})
    except OSError as exc:  # a full disk, a folder gone read-only
        _LAST_ERROR[0] = f"writing into {folder} failed: {exc}"
        return None
    return _load_verified(target, manifest_path, expected)


def _warn(message: str) -> None:
    warnings.warn(f"aeot: {message}", RuntimeWarning, stacklevel=3)


@cache
def load() -> ctypes.CDLL | None:
    """The compiled kernel library, or ``None`` when it cannot be built here.

    ``None`` without a word under ``AEOT_NATIVE=0``; otherwise a missing compiler, a
    failed build or a refused cache folder each give a one-time ``RuntimeWarning``
    naming the consequence (see the module docstring for the cache's checks).
    """
    if os.environ.get("AEOT_NATIVE", "1") == "0":
        return None
    compiler = _find_compiler()
    if compiler is None:
        _warn(
            "no C compiler found (set CC, or install cc or gcc): the native kernels are not "
            "built and aeot uses its pure-torch path, which gives the same answers more "
            "slowly (set AEOT_NATIVE=0 to silence this)"
        )
        return None
    source = _SOURCE.read_bytes()
    folder, refused = _private_cache()
    private = None
    if folder is None:
        _warn(
            f"not using the native-kernel cache: {refused}. Building the kernels in a "
            "private temporary folder instead (about a second per process); give the "
            "folder to the current user alone (chmod go-w), or point AEOT_CACHE_DIR at one"
        )
        try:
            private = Path(tempfile.mkdtemp(prefix="aeot-native-"))
        except OSError as exc:
            _warn(f"no private temporary folder either ({exc}): aeot uses its pure-torch path")
            return None
        folder = private
    try:
        for flags in (["-march=native", *_FLAGS], _FLAGS):
            lib = _build_and_load(source, flags, compiler, folder)
            if lib is not None:
                return lib
    finally:
        if private is not None:  # the loaded library stays mapped
            shutil.rmtree(private, ignore_errors=True)
    _warn(
        f"the native kernels could not be built ({_LAST_ERROR[0]}): aeot uses its "
        "pure-torch path, which gives the same answers more slowly"
    )
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
        raise ValueError(f"px, py and psi must have the same length, got {[a.size for a in args]}")
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
