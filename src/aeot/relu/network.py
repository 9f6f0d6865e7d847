"""Piecewise-linear view of a torch ReLU network.

A network built from affine modules (``Linear``, convolutions, average pooling,
batch normalisation in eval mode), reshapes (``Flatten``, ``Unflatten``,
``Identity``) and the kinked activations ``ReLU`` / ``LeakyReLU`` is a continuous
piecewise-affine map.  :func:`as_relu_network` turns such a network into a list of
dense float64 *stages*

.. math::  z_l = W_l h_{l-1} + b_l, \\qquad h_l = \\sigma_l(z_l),

where :math:`\\sigma_l` is ``ReLU`` (negative slope 0), ``LeakyReLU`` (negative
slope :math:`\\alpha`) or the identity (a purely affine stage, no neurons).  Each
pre-activation unit :math:`z_{l,i}` of a stage with a kinked activation is one
*neuron*; its sign is the neuron's bit of the activation pattern (``z > 0`` is
"fires", ties count as not firing, matching the autograd derivative of ``relu``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = [
    "AffineStage",
    "ReluNetwork",
    "as_relu_network",
    "chain",
    "flatten_modules",
    "random_relu_net",
    "validated_modules",
]

#: modules that only reshape the sample: no stage, no neurons
_RESHAPES: tuple[type[nn.Module], ...] = (nn.Flatten, nn.Unflatten, nn.Identity)
#: affine modules whose dense matrix is read off by probing with a basis
_PROBED: tuple[type[nn.Module], ...] = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
)
_EVAL_ONLY: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.Dropout,
)
_ACTIVATIONS: tuple[type[nn.Module], ...] = (nn.ReLU, nn.LeakyReLU)
_SUPPORTED_NAMES = (
    "Linear, Conv1d/2d/3d, ConvTranspose1d/2d, AvgPool1d/2d, BatchNorm1d/2d and Dropout "
    "(eval mode), Flatten, Unflatten, Identity, ReLU, LeakyReLU, nested Sequential"
)


@dataclass(frozen=True)
class AffineStage:
    """One affine map followed by an optional kinked activation.

    Attributes
    ----------
    weight : np.ndarray, shape (n_out, n_in), float64
    bias : np.ndarray, shape (n_out,), float64
    negative_slope : float or None
        ``0.0`` for ReLU, ``alpha`` for LeakyReLU, ``None`` for no activation
        (an affine stage: it has no neurons and does not split cells).
    name : str
        Human readable origin, e.g. ``"2: Linear(in_features=2, ...)"``.
    """

    weight: np.ndarray
    bias: np.ndarray
    negative_slope: float | None
    name: str = ""

    @property
    def n_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[0])

    @property
    def n_neurons(self) -> int:
        """Number of neurons (pre-activation units with a kink): ``n_out`` or 0."""
        return 0 if self.negative_slope is None else self.n_out

    def activate(self, z: np.ndarray) -> np.ndarray:
        """Apply the stage's activation to pre-activations ``z`` of shape (..., n_out)."""
        if self.negative_slope is None:
            return z
        if self.negative_slope == 0.0:
            return np.maximum(z, 0.0)
        return np.where(z > 0, z, self.negative_slope * z)


class ReluNetwork:
    """A continuous piecewise-affine network as a list of dense float64 stages.

    Parameters
    ----------
    stages : sequence of AffineStage
        Consecutive stages; ``stages[k].n_in == stages[k-1].n_out``.
    input_shape : tuple of int, optional
        Shape of one input sample (e.g. ``(1, 28, 28)`` for a conv net); points are
        handled flattened (C order), of dimension ``prod(input_shape)``.

    Notes
    -----
    Build one with :func:`as_relu_network` rather than by hand.
    """

    def __init__(self, stages: Sequence[AffineStage], input_shape: tuple[int, ...] | None = None):
        stages = tuple(stages)
        if not stages:
            raise ValueError("a network needs at least one affine or activation layer")
        for k in range(1, len(stages)):
            if stages[k].n_in != stages[k - 1].n_out:
                raise ValueError(
                    f"stage {k} ({stages[k].name}) expects {stages[k].n_in} inputs but stage "
                    f"{k - 1} gives {stages[k - 1].n_out}"
                )
        self.stages: tuple[AffineStage, ...] = stages
        self.input_dim: int = stages[0].n_in
        if input_shape is None:
            input_shape = (self.input_dim,)
        if math.prod(input_shape) != self.input_dim:
            raise ValueError(f"input_shape {input_shape} does not have {self.input_dim} entries")
        self.input_shape: tuple[int, ...] = tuple(int(s) for s in input_shape)
        self.output_dim: int = stages[-1].n_out

    def __repr__(self) -> str:
        parts = []
        for st in self.stages:
            act = {None: "", 0.0: "+relu"}.get(st.negative_slope, f"+leaky({st.negative_slope})")
            parts.append(f"{st.n_out}{act}")
        return f"ReluNetwork({self.input_dim} -> " + " -> ".join(parts) + ")"

    @property
    def widths(self) -> list[int]:
        """Layer widths ``[n_0, n_1, ..., n_L]``: input dimension then each stage's output."""
        return [self.input_dim] + [st.n_out for st in self.stages]

    @property
    def bound_widths(self) -> list[int]:
        """Widths for the complexity bounds: ``[n_0, n_1, ..., n_L, n_out]``.

        ``n_1..n_L`` are the neuron counts of the activated stages and ``n_out`` the
        output dimension.  Affine stages without activation are merged into the
        next stage (which can only lower the true count, so the bounds stay
        valid); a network ending with an activation gets the identity as output
        layer (``n_out = n_L``).
        """
        return [self.input_dim, *self.neuron_counts, self.output_dim]

    @property
    def neuron_counts(self) -> list[int]:
        """Number of neurons of each *activated* stage (stages without activation omitted)."""
        return [st.n_neurons for st in self.stages if st.n_neurons]

    @property
    def activated_stages(self) -> list[int]:
        """Indices of the stages with a kinked activation (those that carry neurons)."""
        return [k for k, st in enumerate(self.stages) if st.n_neurons]

    @property
    def n_neurons(self) -> int:
        return sum(self.neuron_counts)

    def check_points(self, x, name: str = "x") -> np.ndarray:
        """Return ``x`` as a float64 array of shape (N, input_dim), with clear errors.

        Accepts shape (input_dim,), (N, input_dim), ``input_shape`` or
        (N, *input_shape); rejects NaN/inf and wrong dimensions with ``ValueError``.
        """
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        arr = np.asarray(x, dtype=np.float64)
        d = self.input_dim
        if arr.shape == self.input_shape or arr.shape == (d,):
            arr = arr.reshape(1, d)
        elif arr.ndim >= 2 and (arr.shape[1:] == self.input_shape or arr.shape[1:] == (d,)):
            arr = arr.reshape(arr.shape[0], d)
        else:
            raise ValueError(
                f"{name} has shape {arr.shape}; expected (N, {d}) or (N, *{self.input_shape}) "
                f"for a network with input dimension {d}"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return arr

    def forward(self, x, upto: int | None = None) -> np.ndarray:
        """Evaluate the network in float64.

        Parameters
        ----------
        x : array_like, shape (N, input_dim) or (input_dim,)
        upto : int, optional
            Evaluate only the first ``upto`` stages (their post-activations), e.g. the
            latent code of an autoencoder built with :func:`chain`.

        Returns
        -------
        np.ndarray, shape (N, n_upto)
        """
        h = self.check_points(x)
        for st in self.stages[: len(self.stages) if upto is None else upto]:
            h = st.activate(h @ st.weight.T + st.bias)
        return h

    def preactivations(self, x) -> list[np.ndarray]:
        """Pre-activations of every activated stage: list of arrays of shape (N, n_l)."""
        h = self.check_points(x)
        out = []
        for st in self.stages:
            z = h @ st.weight.T + st.bias
            if st.n_neurons:
                out.append(z)
            h = st.activate(z)
        return out

    def patterns(self, x) -> list[np.ndarray]:
        """Activation pattern ρ(x): per activated stage a boolean array (N, n_l), ``z > 0``."""
        return [z > 0 for z in self.preactivations(x)]

    def affine_maps(self, patterns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Affine map ``f(x) = A x + b`` on the cells with the given activation patterns.

        Parameters
        ----------
        patterns : list of bool arrays, shapes (P, n_l), one per activated stage

        Returns
        -------
        A : np.ndarray, shape (P, output_dim, input_dim)
        b : np.ndarray, shape (P, output_dim)

        Notes
        -----
        ``A = W_L D_{L-1} W_{L-1} ... D_1 W_1`` with ``D_l = diag(1 if bit else slope)``,
        propagated in homogeneous coordinates.
        """
        if len(patterns) != len(self.neuron_counts):
            raise ValueError(
                f"expected {len(self.neuron_counts)} pattern arrays, got {len(patterns)}"
            )
        n_cells = int(np.asarray(patterns[0]).shape[0]) if patterns else 1
        d = self.input_dim
        # H: (P, d+1, n) homogeneous map x -> h, last row the constant
        h_map = np.zeros((n_cells, d + 1, d))
        h_map[:, np.arange(d), np.arange(d)] = 1.0
        it = iter(patterns)
        for st in self.stages:
            z = h_map @ st.weight.T
            z[:, -1, :] += st.bias
            if st.n_neurons:
                bits = np.asarray(next(it), dtype=bool).reshape(n_cells, st.n_out)
                z *= np.where(bits, 1.0, st.negative_slope)[:, None, :]
            h_map = z
        return np.ascontiguousarray(h_map[:, :-1, :].transpose(0, 2, 1)), h_map[:, -1, :]


def _is_autoencoder(module) -> bool:
    return (
        isinstance(module, nn.Module)
        and not isinstance(module, (nn.Sequential, nn.ModuleList))
        and isinstance(getattr(module, "encoder", None), nn.Module)
        and isinstance(getattr(module, "decoder", None), nn.Module)
    )


def flatten_modules(net) -> list[nn.Module]:
    """Flatten a network into its leaf modules.

    Parameters
    ----------
    net : nn.Sequential, nn.Module, or an iterable of modules / Sequentials
        Nested ``nn.Sequential`` / ``nn.ModuleList`` containers are expanded.  A
        module with ``encoder`` and ``decoder`` sub-modules (an autoencoder) is read
        as the composition ``decoder ∘ encoder``.

    Returns
    -------
    list of nn.Module
    """
    if isinstance(net, (nn.Sequential, nn.ModuleList)):
        items: Iterable = list(net)
    elif _is_autoencoder(net):
        items = [net.encoder, net.decoder]
    elif isinstance(net, nn.Module):
        return [net]
    elif isinstance(net, (list, tuple)):
        items = net
    else:
        raise TypeError(
            "expected an nn.Sequential, an nn.Module or a list of modules, "
            f"got {type(net).__name__}"
        )
    out: list[nn.Module] = []
    for item in items:
        if isinstance(item, (nn.Sequential, nn.ModuleList, list, tuple)) or _is_autoencoder(item):
            out.extend(flatten_modules(item))
        elif isinstance(item, nn.Module):
            out.append(item)
        else:
            raise TypeError(f"expected modules, got {type(item).__name__}")
    return out


def chain(*parts) -> nn.Sequential:
    """Chain networks into one ``nn.Sequential`` (e.g. ``chain(encoder, decoder)``).

    Parameters
    ----------
    *parts : nn.Sequential, nn.Module or lists of modules
        Nested containers are flattened; the modules are shared, not copied.

    Returns
    -------
    nn.Sequential
        The composition ``parts[-1] ∘ ... ∘ parts[0]``.
    """
    if not parts:
        raise ValueError("chain needs at least one network")
    modules: list[nn.Module] = []
    for part in parts:
        modules.extend(flatten_modules(part))
    return nn.Sequential(*modules)


def validated_modules(net) -> list[nn.Module]:
    """Flatten ``net`` (see :func:`flatten_modules`) and check every leaf is supported.

    Raises
    ------
    ValueError
        Naming the first unsupported layer (e.g. ``Tanh`` or ``MaxPool2d``), or a
        ``BatchNorm`` / ``Dropout`` left in training mode.
    """
    modules = flatten_modules(net)
    if not modules:
        raise ValueError("the network has no layers")
    for i, m in enumerate(modules):
        ok = isinstance(m, (nn.Linear, *_PROBED, *_EVAL_ONLY, *_RESHAPES, *_ACTIVATIONS))
        if not ok:
            raise ValueError(
                f"unsupported layer in ReLU network, {_describe(i, m)}; "
                f"supported: {_SUPPORTED_NAMES}"
            )
        if isinstance(m, _EVAL_ONLY) and m.training:
            raise ValueError(
                f"{_describe(i, m)} is in training mode (random or batch dependent); call .eval()"
            )
    return modules


def _describe(index: int, module: nn.Module) -> str:
    return f"layer {index}: {module!r}"


def _probe_affine(
    module: nn.Module, shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Dense matrix of an affine module on samples of ``shape``: returns (W, b, out_shape)."""
    n_in = math.prod(shape)
    mod = copy.deepcopy(module).to(device="cpu", dtype=torch.float64)
    with torch.no_grad():
        zero = torch.zeros((1, *shape), dtype=torch.float64)
        basis = torch.eye(n_in, dtype=torch.float64).reshape(n_in, *shape)
        try:
            b = mod(zero)
            cols = mod(basis)
        except Exception as exc:
            raise ValueError(
                f"{module!r} cannot be applied to samples of shape {shape}: {exc}"
            ) from None
    out_shape = tuple(b.shape[1:])
    weight = (cols - b).reshape(n_in, -1).T.numpy().copy()
    return weight, b.reshape(-1).numpy().copy(), out_shape


def _reshape_shape(module: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    with torch.no_grad():
        try:
            return tuple(module(torch.zeros((1, *shape))).shape[1:])
        except Exception as exc:
            raise ValueError(f"{module!r} cannot reshape samples of shape {shape}: {exc}") from None


def as_relu_network(net, input_shape: Sequence[int] | None = None) -> ReluNetwork:
    """Convert a torch ReLU network to a :class:`ReluNetwork` of dense float64 stages.

    Parameters
    ----------
    net : nn.Sequential, list of modules, nn.Module or ReluNetwork
        Supported leaves: ``Linear``; ``Conv1d/2d/3d``, ``ConvTranspose1d/2d``,
        ``AvgPool1d/2d`` (read off as dense matrices, so keep the images small);
        ``BatchNorm1d/2d`` and ``Dropout`` in eval mode (affine / identity);
        ``Flatten``, ``Unflatten``, ``Identity`` (reshapes); ``ReLU`` and
        ``LeakyReLU`` (kinked activations, each pre-activation unit is a neuron).
    input_shape : sequence of int, optional
        Shape of one input sample.  Required when the first affine layer is not a
        ``Linear`` (e.g. a convolution needs ``(C, H, W)``).

    Returns
    -------
    ReluNetwork

    Raises
    ------
    ValueError
        For an unsupported layer (the message names it), a module in training mode
        whose output is random or batch dependent, or inconsistent shapes.

    Notes
    -----
    Every affine module becomes its own stage (consecutive affine modules are not
    merged), so stage indices of ``chain(encoder, decoder)`` are those of the encoder
    followed by those of the decoder.  An activation that does not directly follow
    an affine module gets an identity affine stage.
    """
    if isinstance(net, ReluNetwork):
        return net
    modules = validated_modules(net)
    shape: tuple[int, ...] | None = (
        None if input_shape is None else tuple(int(s) for s in input_shape)
    )
    if shape is None:
        for i, m in enumerate(modules):
            if isinstance(m, nn.Linear):
                shape = (m.in_features,)
                break
            if isinstance(m, (*_PROBED, nn.BatchNorm2d, nn.Unflatten)):
                raise ValueError(
                    f"input_shape is needed to read {_describe(i, m)} as a dense matrix"
                )
        if shape is None:
            raise ValueError("input_shape is needed: the network has no Linear layer")
    start_shape = shape
    stages: list[AffineStage] = []
    open_stage = False  # last stage is affine and still takes an activation
    for i, m in enumerate(modules):
        n = math.prod(shape)
        if isinstance(m, _RESHAPES) or isinstance(m, nn.Dropout):
            shape = _reshape_shape(m, shape)
            continue
        if isinstance(m, _ACTIVATIONS):
            slope = float(m.negative_slope) if isinstance(m, nn.LeakyReLU) else 0.0
            if open_stage:
                last = stages[-1]
                stages[-1] = AffineStage(
                    last.weight, last.bias, slope, f"{last.name} + {_describe(i, m)}"
                )
            else:
                stages.append(AffineStage(np.eye(n), np.zeros(n), slope, _describe(i, m)))
            open_stage = False
            continue
        if isinstance(m, nn.Linear):
            if shape[-1] != m.in_features:
                raise ValueError(
                    f"{_describe(i, m)} expects {m.in_features} features but receives samples "
                    f"of shape {shape}"
                )
            w = m.weight.detach().to("cpu", torch.float64).numpy()
            b = (
                m.bias.detach().to("cpu", torch.float64).numpy()
                if m.bias is not None
                else np.zeros(m.out_features)
            )
            if len(shape) == 1:
                weight, bias = w.copy(), b.copy()
            else:  # Linear acting on the last axis of a multi-axis sample
                reps = n // m.in_features
                weight = np.kron(np.eye(reps), w)
                bias = np.tile(b, reps)
            shape = (*shape[:-1], m.out_features)
        else:  # probed affine module
            weight, bias, shape = _probe_affine(m, shape)
        if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
            raise ValueError(f"{_describe(i, m)} has NaN or infinite parameters")
        stages.append(AffineStage(weight, bias, None, _describe(i, m)))
        open_stage = True
    if not stages:
        raise ValueError("the network has no affine or activation layer")
    return ReluNetwork(stages, input_shape=start_shape)


def random_relu_net(
    widths: Sequence[int],
    *,
    seed: int = 0,
    bias_std: float = 0.1,
    output_activation: bool = True,
    negative_slope: float = 0.0,
    device: torch.device | str = "cpu",
) -> nn.Sequential:
    """A fresh He-initialised fully connected ReLU network.

    Parameters
    ----------
    widths : sequence of int
        ``[n_0, n_1, ..., n_L]``: input dimension then the width of each ``Linear``.
    seed : int
        Seed of a private ``torch.Generator`` (the global RNG is not touched).
    bias_std : float
        Biases are drawn i.i.d. ``N(0, bias_std**2)``.  With zero biases every cell is
        a cone through the origin, so a small positive value is used by default.
    output_activation : bool
        If True (default) every ``Linear`` is followed by the activation, so all
        ``n_1 + ... + n_L`` units are neurons (as in the region-counting
        literature); if False the last ``Linear`` is the affine output layer.
    negative_slope : float
        0 gives ``ReLU``; a positive value gives ``LeakyReLU(negative_slope)``.
    device : torch device

    Returns
    -------
    nn.Sequential

    Notes
    -----
    He (Kaiming) normal initialisation: ``W_ij ~ N(0, 2 / fan_in)``, i.e.
    ``nn.init.kaiming_normal_(W, mode="fan_in", nonlinearity="relu")``.
    """
    widths = [int(w) for w in widths]
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"widths needs at least two positive entries, got {widths}")
    if bias_std < 0 or not math.isfinite(bias_std):
        raise ValueError(f"bias_std must be a finite number >= 0, got {bias_std}")
    gen = torch.Generator().manual_seed(int(seed))
    layers: list[nn.Module] = []
    for k in range(1, len(widths)):
        lin = nn.Linear(widths[k - 1], widths[k])
        with torch.no_grad():
            nn.init.kaiming_normal_(lin.weight, mode="fan_in", nonlinearity="relu", generator=gen)
            lin.bias.copy_(torch.randn(lin.bias.shape, generator=gen) * bias_std)
        layers.append(lin)
        if k < len(widths) - 1 or output_activation:
            layers.append(nn.LeakyReLU(negative_slope) if negative_slope else nn.ReLU())
    return nn.Sequential(*layers).to(device)
