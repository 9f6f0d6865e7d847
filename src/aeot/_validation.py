"""Input checks shared by the public API: clear errors instead of deep tracebacks."""

from __future__ import annotations

import numpy as np
import torch

from aeot._checks import check_positive_int, check_seed  # noqa: F401  (re-exported)


def _count_non_finite(tensor: torch.Tensor, chunk: int = 2**22) -> int:
    """Number of NaN / ±inf entries, checked in chunks (no full-size temporaries)."""
    if not (tensor.is_floating_point() or tensor.is_complex()):
        return 0
    flat = tensor.reshape(-1)  # a view for contiguous input
    # torch has no isfinite for the 8-bit float types: check them widened (exactly)
    widen = tensor.is_floating_point() and tensor.element_size() == 1
    count = 0
    for i in range(0, flat.numel(), chunk):
        part = flat[i : i + chunk].float() if widen else flat[i : i + chunk]
        # a NaN or ±inf entry makes the sum NaN or ±inf, so a finite sum proves the chunk
        # finite in one reduction; a non-finite sum (perhaps only an overflow) is counted
        if not bool(torch.isfinite(part.sum())):
            count += int((~torch.isfinite(part)).sum())
    return count


def as_float_tensor(
    value,
    name: str,
    *,
    ndim: int | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    allow_empty: bool = False,
) -> torch.Tensor:
    """Convert ``value`` to a floating tensor and check it.

    Raises ``TypeError`` for non-numeric input and ``ValueError`` for a wrong number
    of dimensions, an empty array or non-finite entries. Integer input is accepted
    and converted; complex or boolean input is rejected.
    """
    if isinstance(value, torch.Tensor):
        tensor = value
    else:
        try:
            array = np.asarray(value)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be an array of numbers: {exc}") from None
        if array.dtype == object or not (
            np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
        ):
            raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.device.type == "meta":
        raise ValueError(f"{name} is a meta tensor (it holds no data)")
    if tensor.layout != torch.strided:
        raise TypeError(
            f"{name} must be a dense tensor, got layout {tensor.layout}; pass .to_dense()"
        )
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    bad = _count_non_finite(tensor)
    original_dtype = tensor.dtype
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.get_default_dtype() if dtype is None else dtype)
    if dtype is not None or device is not None:
        tensor = tensor.to(dtype=dtype or tensor.dtype, device=device or tensor.device)
    if bad == 0 and tensor.dtype != original_dtype and _count_non_finite(tensor):
        raise ValueError(f"{name} has values beyond the range of {tensor.dtype}")
    if ndim is not None and tensor.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(tensor.shape)}")
    if not allow_empty and tensor.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(tensor.shape)})")
    if bad:
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s)")
    return tensor


WORKING_DTYPES = (torch.float32, torch.float64)
_FLOAT32_EXACT = 2**24  # float32 holds every integer up to this magnitude
_FLOAT64_EXACT = 2**53


def as_working_tensor(value, name: str, *, ndim: int | None = None) -> torch.Tensor:
    """:func:`as_float_tensor`, then float32 or float64 holding the given values exactly.

    The numerical code (and its C kernels) works in float32 or float64 only, so:

    * float32 and float64 input is kept as it is;
    * narrower floating input (float16, bfloat16, float8) is promoted to float32,
      which holds each of its values exactly (NaN and infinities stay so, and are
      then refused by name);
    * integer input becomes the default dtype (float32 unless changed) when every
      value fits float32's 24-bit significand, else float64; integers beyond 2^53,
      which float64 cannot hold exactly, are a ``ValueError``.

    Complex, boolean and non-numeric input is a ``TypeError`` as for
    :func:`as_float_tensor`.
    """
    if isinstance(value, torch.Tensor):
        if value.layout != torch.strided:
            pass  # refused by as_float_tensor, naming the layout
        elif value.is_floating_point() and value.dtype not in WORKING_DTYPES:
            value = value.to(torch.float32)
        elif _is_integer(value.dtype) and value.device.type != "meta":
            value = _exact_float(value.detach().cpu().numpy(), name).to(value.device)
    else:
        try:
            array = np.asarray(value)
        except Exception:  # ragged lists and the like: as_float_tensor names them
            array = None
        if array is not None and array.dtype.kind in "iu":
            value = _exact_float(array, name)
        elif array is not None and array.dtype.kind == "f" and array.dtype.itemsize < 4:
            value = array.astype(np.float32)
    tensor = as_float_tensor(value, name, ndim=ndim)
    if tensor.dtype not in WORKING_DTYPES:  # e.g. a half-precision default dtype
        tensor = tensor.to(torch.float32)
    return tensor


def _is_integer(dtype: torch.dtype) -> bool:
    return not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)


def _exact_float(array: np.ndarray, name: str) -> torch.Tensor:
    """Integer ``array`` as the default float dtype when that is exact, else float64."""
    largest = max(abs(int(array.min())), abs(int(array.max()))) if array.size else 0
    if largest > _FLOAT64_EXACT:
        raise ValueError(
            f"{name} has integer values up to {largest} in magnitude, beyond 2^53: "
            "float64 cannot hold them exactly; rescale them"
        )
    default = torch.get_default_dtype()
    dtype = default if default in WORKING_DTYPES else torch.float32
    if largest > _FLOAT32_EXACT:
        dtype = torch.float64
    return torch.from_numpy(np.ascontiguousarray(array)).to(dtype)


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``None`` means CUDA when available, else CPU; strings are parsed and checked."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}: {exc}") from None
    if resolved.type == "meta":
        raise ValueError("device 'meta' holds no data; choose a compute device such as 'cpu'")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return resolved
