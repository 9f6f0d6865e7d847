"""Autoencoders: an MLP one for point clouds / small flattened images and a DCGAN-like conv one.

Both keep the encoder and the decoder as plain ``nn.Sequential`` stacks of
``Linear`` / ``Conv2d`` / ``ConvTranspose2d`` and activation *modules* (``nn.ReLU``,
``nn.LeakyReLU``), so ReLU-geometry tools can walk them layer by layer.

Shapes (n = batch size, D = prod(input_shape), L = latent_dim)::

    MLPAutoencoder   x (n, *input_shape) -> [Flatten] -> Linear/ReLU ... -> z (n, L)
                     z (n, L) -> Linear/ReLU ... -> [Sigmoid] -> [Unflatten] -> x_hat
    ConvAutoencoder  x (n, c, H, W) -> Conv4x4/2 (+norm) + act ... -> Flatten -> Linear -> z (n, L)
                     z (n, L) -> Linear + act -> Unflatten -> ConvT4x4/2 ... -> Sigmoid -> x_hat
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from aeot.nets._blocks import (
    ACTIVATIONS,
    NORMS,
    OUTPUT_ACTIVATIONS,
    ConfigMixin,
    check_batch,
    check_choice,
    check_shape,
    conv_final_hw,
    conv_plan,
    make_activation,
    make_norm2d,
    make_output_activation,
    numel,
)

# ----------------------------------------------------------------------------- configs


@dataclass
class MLPAutoencoderConfig(ConfigMixin):
    """Configuration of :class:`MLPAutoencoder`."""

    KIND = "mlp"

    input_shape: tuple[int, ...] = (2,)  # one sample: (d,) for points, (c, h, w) for images
    latent_dim: int = 2  # L, size of the code z
    hidden: tuple[int, ...] = (128, 128)  # encoder hidden widths; the decoder mirrors them
    activation: str = "relu"  # "relu" | "leaky_relu"
    negative_slope: float = 0.2  # slope of leaky_relu for x < 0 (unused for relu)
    output_activation: str = "none"  # "none" | "sigmoid" | "tanh", applied to the reconstruction

    def __post_init__(self) -> None:
        self.input_shape = check_shape(self.input_shape, "input_shape")
        (self.latent_dim,) = check_shape(self.latent_dim, "latent_dim", length=1)
        self.hidden = () if self.hidden in ((), [], None) else check_shape(self.hidden, "hidden")
        check_choice(self.activation, "activation", ACTIVATIONS)
        check_choice(self.output_activation, "output_activation", OUTPUT_ACTIVATIONS)
        self.negative_slope = float(self.negative_slope)


@dataclass
class ConvAutoencoderConfig(ConfigMixin):
    """Configuration of :class:`ConvAutoencoder` (8×8, 28×28, 32×32, 64×64, ... images)."""

    KIND = "conv"

    input_shape: tuple[int, int, int] = (1, 28, 28)  # (c, H, W); H, W even and >= 8
    latent_dim: int = 32  # L, size of the code z
    width: int = 32  # channels of the first conv; doubled by every further conv
    max_width: int = 512  # cap on the channel count
    activation: str = "relu"  # "relu" | "leaky_relu"
    negative_slope: float = 0.2  # slope of leaky_relu for x < 0 (unused for relu)
    norm: str = "none"  # "none" | "batch" | "instance" | "layer", after hidden (de)convs
    output_activation: str = "sigmoid"  # "sigmoid" for [0, 1] images | "tanh" | "none"

    def __post_init__(self) -> None:
        self.input_shape = check_shape(self.input_shape, "input_shape", length=3)
        (self.latent_dim,) = check_shape(self.latent_dim, "latent_dim", length=1)
        (self.width,) = check_shape(self.width, "width", length=1)
        (self.max_width,) = check_shape(self.max_width, "max_width", length=1)
        check_choice(self.activation, "activation", ACTIVATIONS)
        check_choice(self.norm, "norm", NORMS)
        check_choice(self.output_activation, "output_activation", OUTPUT_ACTIVATIONS)
        self.negative_slope = float(self.negative_slope)
        conv_plan(self.input_shape, self.width, self.max_width)  # raises for bad sizes

    @property
    def widths(self) -> list[int]:
        """Channel counts of the encoder convs (the decoder runs through them backwards)."""
        return conv_plan(self.input_shape, self.width, self.max_width)


# ------------------------------------------------------------------------ layer stacks


def mlp_layers(sizes: list[int], activation: str, negative_slope: float = 0.2) -> list[nn.Module]:
    """``Linear(sizes[0], sizes[1]), act, ..., Linear(sizes[-2], sizes[-1])`` (no final act)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(make_activation(activation, negative_slope))
    return layers


def build_mlp_encoder(config: MLPAutoencoderConfig, out_dim: int | None = None) -> nn.Sequential:
    """(n, *input_shape) -> (n, out_dim or latent_dim)."""
    d = numel(config.input_shape)
    sizes = [d, *config.hidden, out_dim or config.latent_dim]
    flatten = [nn.Flatten()] if len(config.input_shape) > 1 else []
    return nn.Sequential(*flatten, *mlp_layers(sizes, config.activation, config.negative_slope))


def build_mlp_decoder(config: MLPAutoencoderConfig) -> nn.Sequential:
    """(n, latent_dim) -> (n, *input_shape)."""
    d = numel(config.input_shape)
    sizes = [config.latent_dim, *reversed(config.hidden), d]
    layers = mlp_layers(sizes, config.activation, config.negative_slope)
    layers += make_output_activation(config.output_activation)
    if len(config.input_shape) > 1:
        layers.append(nn.Unflatten(1, config.input_shape))
    return nn.Sequential(*layers)


def build_conv_encoder(config: ConvAutoencoderConfig, out_dim: int | None = None) -> nn.Sequential:
    """(n, c, H, W) -> (n, out_dim or latent_dim) via stride-2 4×4 convs and a Linear head."""
    c = config.input_shape[0]
    widths = config.widths
    layers: list[nn.Module] = []
    for i, w in enumerate(widths):
        layers.append(nn.Conv2d(c if i == 0 else widths[i - 1], w, 4, stride=2, padding=1))
        if i > 0:  # DCGAN: no normalisation on the first conv
            layers += make_norm2d(config.norm, w)
        layers.append(make_activation(config.activation, config.negative_slope))
    fh, fw = conv_final_hw(config.input_shape, len(widths))
    layers += [nn.Flatten(), nn.Linear(widths[-1] * fh * fw, out_dim or config.latent_dim)]
    return nn.Sequential(*layers)


def build_conv_decoder(config: ConvAutoencoderConfig) -> nn.Sequential:
    """(n, latent_dim) -> (n, c, H, W): Linear, Unflatten, stride-2 4×4 transposed convs."""
    c = config.input_shape[0]
    widths = config.widths
    fh, fw = conv_final_hw(config.input_shape, len(widths))
    layers: list[nn.Module] = [
        nn.Linear(config.latent_dim, widths[-1] * fh * fw),
        make_activation(config.activation, config.negative_slope),
        nn.Unflatten(1, (widths[-1], fh, fw)),
    ]
    for i in range(len(widths) - 1, 0, -1):
        layers.append(nn.ConvTranspose2d(widths[i], widths[i - 1], 4, stride=2, padding=1))
        layers += make_norm2d(config.norm, widths[i - 1])
        layers.append(make_activation(config.activation, config.negative_slope))
    layers.append(nn.ConvTranspose2d(widths[0], c, 4, stride=2, padding=1))
    layers += make_output_activation(config.output_activation)
    return nn.Sequential(*layers)


# ------------------------------------------------------------------------------ models


class Autoencoder(nn.Module):
    """Common interface: ``encode``, ``decode``, ``forward`` (= reconstruction)."""

    config: Any
    encoder: nn.Sequential
    decoder: nn.Sequential

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.config.input_shape)

    @property
    def latent_dim(self) -> int:
        return int(self.config.latent_dim)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def _what(self) -> str:
        return "images" if len(self.input_shape) == 3 else "inputs"

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(n, *input_shape) -> codes (n, latent_dim)."""
        check_batch(x, self.input_shape, self._what)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """codes (n, latent_dim) -> reconstructions (n, *input_shape)."""
        check_batch(z, (self.latent_dim,), "latent codes")
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``decode(encode(x))``, same shape as ``x``."""
        return self.decode(self.encode(x))

    def extra_repr(self) -> str:
        return f"input_shape={self.input_shape}, latent_dim={self.latent_dim}"


class MLPAutoencoder(Autoencoder):
    """Fully connected autoencoder for point clouds (n, d) or small images (n, c, h, w).

    Parameters
    ----------
    config : MLPAutoencoderConfig or dict
    """

    def __init__(self, config: MLPAutoencoderConfig | dict | None = None):
        super().__init__()
        if config is None:
            config = MLPAutoencoderConfig()
        elif isinstance(config, dict):
            config = MLPAutoencoderConfig.from_dict(config)
        self.config = config
        self.encoder = build_mlp_encoder(config)  # (n, *input_shape) -> (n, L)
        self.decoder = build_mlp_decoder(config)  # (n, L) -> (n, *input_shape)


class ConvAutoencoder(Autoencoder):
    """DCGAN-like convolutional autoencoder for (n, c, H, W) images in [0, 1].

    Parameters
    ----------
    config : ConvAutoencoderConfig or dict
    """

    def __init__(self, config: ConvAutoencoderConfig | dict | None = None):
        super().__init__()
        if config is None:
            config = ConvAutoencoderConfig()
        elif isinstance(config, dict):
            config = ConvAutoencoderConfig.from_dict(config)
        self.config = config
        self.encoder = build_conv_encoder(config)  # (n, c, H, W) -> (n, L)
        self.decoder = build_conv_decoder(config)  # (n, L) -> (n, c, H, W)
