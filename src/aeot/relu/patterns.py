"""Activated paths ρ(x) of data points, computed with torch on any device.

The activation pattern (activated path) of a point ``x`` is, for every layer with a
kinked activation (``ReLU`` / ``LeakyReLU``), the boolean vector ``z_l(x) > 0`` of
its pre-activations.  Two points are *equivalent* when their patterns agree; the
equivalence classes are the (convex) activation regions, on each of which the
network is one affine map ``f(x) = A x + b``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from aeot.relu.network import validated_modules

__all__ = [
    "activation_pattern",
    "count_patterns",
    "local_affine_map",
    "pattern_labels",
    "pattern_matrix",
    "same_activation_path",
]

_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU)


def _prepare(net, x, device, input_shape):
    """float64 copies of the modules on ``device`` and ``x`` as a batched tensor."""
    modules = validated_modules(net)
    dev = torch.device("cpu") if device is None else torch.device(device)
    if isinstance(x, torch.Tensor):
        t = x.detach().to(device=dev, dtype=torch.float64)
    else:
        arr = np.asarray(x)
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
        ):
            raise TypeError(f"x must hold real numbers, got dtype {arr.dtype}")
        t = torch.as_tensor(arr, dtype=torch.float64, device=dev)
    if t.numel() == 0:
        raise ValueError(f"x is empty (shape {tuple(t.shape)})")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("x contains NaN or infinite values")
    first_linear = next((m for m in modules if isinstance(m, nn.Linear)), None)
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
        n_in = int(np.prod(shape))
        if tuple(t.shape) == shape or tuple(t.shape) == (n_in,):
            t = t.reshape(1, *shape)
        elif t.ndim >= 2 and (tuple(t.shape[1:]) == shape or tuple(t.shape[1:]) == (n_in,)):
            t = t.reshape(t.shape[0], *shape)
        else:
            raise ValueError(f"x has shape {tuple(t.shape)}; expected (N, *{shape})")
    else:
        leading = next((m for m in modules if not isinstance(m, _ACTIVATIONS)), None)
        if isinstance(leading, nn.Linear) or (leading is None and first_linear is not None):
            d = first_linear.in_features
            if t.ndim == 1:
                t = t.reshape(1, -1)
            if t.shape[-1] != d:
                raise ValueError(
                    f"x has shape {tuple(t.shape)}; the network expects input dimension {d}"
                )
        elif t.ndim < 2:
            raise ValueError(f"x must be batched, got shape {tuple(t.shape)}")
    mods = [copy.deepcopy(m).to(device=dev, dtype=torch.float64) for m in modules]
    for m in mods:
        m.requires_grad_(False)
    return mods, t


def _run(mods, t):
    pre = []
    h = t
    for i, m in enumerate(mods):
        if isinstance(m, _ACTIVATIONS):
            pre.append(h.reshape(h.shape[0], -1))
        try:
            h = m(h)
        except RuntimeError as exc:
            raise ValueError(
                f"layer {i} ({m!r}) failed on input of shape {tuple(h.shape)}: {exc}"
            ) from None
    return pre, h


def activation_pattern(
    net,
    x,
    *,
    device: torch.device | str | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> list[torch.Tensor]:
    """Activated path ρ(x): which neurons fire, layer by layer.

    Parameters
    ----------
    net : nn.Sequential, list of modules or autoencoder (see ``as_relu_network``)
    x : array_like or Tensor, shape (N, d) or (d,), or (N, *input_shape)
    device : torch device, optional
        Where the float64 computation runs (default CPU).
    input_shape : tuple of int, optional
        Shape of one sample, for nets that start with a convolution and flat ``x``.

    Returns
    -------
    list of torch.Tensor
        One boolean tensor of shape (N, n_l) per ``ReLU`` / ``LeakyReLU`` layer:
        ``z_l(x) > 0`` (pre-activation strictly positive).
    """
    mods, t = _prepare(net, x, device, input_shape)
    with torch.no_grad():
        pre, _ = _run(mods, t)
    return [z > 0 for z in pre]


def pattern_matrix(net, x, **kwargs) -> torch.Tensor:
    """All activation bits of each point concatenated: bool tensor (N, n_neurons)."""
    pats = activation_pattern(net, x, **kwargs)
    if not pats:
        n = 1 if np.asarray(x).ndim == 1 else len(x)
        return torch.zeros((n, 0), dtype=torch.bool)
    return torch.cat(pats, dim=1)


def same_activation_path(net, x, y, **kwargs) -> torch.Tensor:
    """Whether ``x[i]`` and ``y[i]`` have the same activated path (are equivalent).

    Parameters
    ----------
    x, y : array_like, shape (N, d) (or (d,) each)

    Returns
    -------
    torch.Tensor, bool, shape (N,)
    """
    px = pattern_matrix(net, x, **kwargs)
    py = pattern_matrix(net, y, **kwargs)
    if px.shape != py.shape:
        raise ValueError(f"x and y hold different numbers of points: {px.shape} vs {py.shape}")
    return (px == py).all(dim=1)


def pattern_labels(net, x, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Label the points of a data set by activation region.

    Returns
    -------
    labels : np.ndarray of int64, shape (N,)
        ``labels[i] == labels[j]`` iff points i and j have the same pattern.
    patterns : np.ndarray of bool, shape (K, n_neurons)
        The K distinct patterns (row ``k`` is the pattern of label ``k``).
    """
    bits = pattern_matrix(net, x, **kwargs).cpu().numpy()
    if bits.shape[1] == 0:
        return np.zeros(bits.shape[0], dtype=np.int64), bits[:1]
    packed = np.packbits(bits, axis=1)
    _, first, labels = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    return labels.reshape(-1).astype(np.int64), bits[first]


def count_patterns(net, x, **kwargs) -> int:
    """Number of distinct activation patterns (activation regions met) on a data set."""
    return int(pattern_labels(net, x, **kwargs)[1].shape[0])


def local_affine_map(
    net,
    x,
    *,
    device: torch.device | str | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The affine map ``f(y) = A y + b`` of the cell containing each point.

    Parameters
    ----------
    net : ReLU network (see ``as_relu_network``)
    x : array_like, shape (N, d) or (d,)

    Returns
    -------
    A : torch.Tensor, float64, shape (N, d_out, d) (or (d_out, d) for a single point)
        The Jacobian at ``x``; inputs/outputs are flattened for conv nets.
    b : torch.Tensor, float64, shape (N, d_out) (or (d_out,))
        ``b = f(x) - A x``.

    Notes
    -----
    On a cell the network is affine, so the autograd Jacobian is exactly the
    cell's ``A = W_L D_{L-1} W_{L-1} ... D_1 W_1`` with ``D_l`` the diagonal of
    activation slopes (1 for firing neurons, 0 or the LeakyReLU slope otherwise).
    """
    single = not isinstance(x, torch.Tensor) and np.asarray(x).ndim == 1
    single = single or (isinstance(x, torch.Tensor) and x.ndim == 1)
    mods, t = _prepare(net, x, device, input_shape)
    n = t.shape[0]

    def f(z: torch.Tensor) -> torch.Tensor:
        return _run(mods, z)[1].reshape(n, -1)

    with torch.no_grad():
        out = f(t)
    jac = torch.func.jacrev(lambda z: f(z).sum(0))(t)  # (d_out, N, *in)
    a = jac.reshape(out.shape[1], n, -1).permute(1, 0, 2).contiguous()
    a = a.detach()
    b = out - torch.einsum("noi,ni->no", a, t.reshape(n, -1))
    if single:
        return a[0], b[0]
    return a, b
