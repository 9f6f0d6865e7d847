"""Small building blocks shared by the models: activations, the strided-conv geometry
and input-shape checks; the configs' (de)serialisation is :class:`aeot.core.config.ConfigMixin`,
re-exported here for the network modules."""

from __future__ import annotations

import math

import torch
from torch import nn

from aeot.core.config import ConfigMixin as ConfigMixin  # re-exported for the networks

ACTIVATIONS = ("relu", "leaky_relu")
OUTPUT_ACTIVATIONS = ("none", "sigmoid", "tanh")
NORMS = ("none", "batch", "instance", "layer")


def check_shape(value, name: str, *, length: int | None = None) -> tuple[int, ...]:
    """A tuple of positive ints (optionally of a given length)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    try:
        shape = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of ints, got {value!r}") from None
    if not shape or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape
    ):
        raise ValueError(f"{name} must be a non-empty tuple of positive ints, got {value!r}")
    if length is not None and len(shape) != length:
        raise ValueError(f"{name} must have {length} entries, got {shape}")
    return shape


def check_choice(value: str, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def make_activation(name: str, negative_slope: float = 0.2) -> nn.Module:
    """``nn.ReLU()`` or ``nn.LeakyReLU(negative_slope)``.

    Modules rather than functional calls, so ReLU-geometry tools see them.
    """
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def make_output_activation(name: str) -> list[nn.Module]:
    """The final squashing layer as a (possibly empty) list of modules."""
    if name == "none":
        return []
    if name == "sigmoid":
        return [nn.Sigmoid()]
    if name == "tanh":
        return [nn.Tanh()]
    raise ValueError(f"output_activation must be one of {OUTPUT_ACTIVATIONS}, got {name!r}")


def make_norm2d(name: str, channels: int) -> list[nn.Module]:
    """A 2D normalisation layer as a (possibly empty) list.

    ``layer`` is ``GroupNorm(1, c)`` (per-sample normalisation over c, h, w), which,
    like ``instance`` and ``none``, keeps samples independent (needed for WGAN-GP).
    """
    if name == "none":
        return []
    if name == "batch":
        return [nn.BatchNorm2d(channels)]
    if name == "instance":
        return [nn.InstanceNorm2d(channels, affine=True)]
    if name == "layer":
        return [nn.GroupNorm(1, channels)]
    raise ValueError(f"norm must be one of {NORMS}, got {name!r}")


def conv_plan(image_shape: tuple[int, int, int], width: int, max_width: int) -> list[int]:
    """Channel widths of the stride-2 conv stack for an image size.

    Each 4×4 stride-2 conv (padding 1) halves height and width; we halve while both
    stay even and at least 4 after halving: 64 → 4 (4 convs), 32 → 4 (3), 28 → 7 (2),
    8 → 4 (1). Widths double from ``width`` up to ``max_width``.
    """
    _, h, w = image_shape
    n = 0
    while h % 2 == 0 and w % 2 == 0 and h // 2 >= 4 and w // 2 >= 4:
        h, w, n = h // 2, w // 2, n + 1
    if n == 0:
        raise ValueError(
            f"image size {image_shape[1]}x{image_shape[2]} is too small or odd for a strided conv "
            "net: height and width must be even and >= 8"
        )
    return [min(width * 2**i, max_width) for i in range(n)]


def conv_final_hw(image_shape: tuple[int, int, int], n_layers: int) -> tuple[int, int]:
    _, h, w = image_shape
    return h // 2**n_layers, w // 2**n_layers


def check_batch(x: torch.Tensor, sample_shape: tuple[int, ...], what: str) -> None:
    """Raise a clear error unless ``x`` has shape ``(n, *sample_shape)``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor of {what}, got {type(x).__name__}")
    if x.ndim != len(sample_shape) + 1 or tuple(x.shape[1:]) != tuple(sample_shape):
        got = tuple(x.shape[1:]) if x.ndim == len(sample_shape) + 1 else tuple(x.shape)
        hint = "" if x.ndim == len(sample_shape) + 1 else " (with a leading batch dimension)"
        raise ValueError(f"expected {what} of shape {tuple(sample_shape)}{hint}, got {got}")
    if not x.is_floating_point():
        raise TypeError(f"expected floating-point {what}, got dtype {x.dtype}")


def numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)
