"""GAN parts for the baselines: generators, discriminators / critics, losses, WGAN-GP penalty.

Generators reuse the autoencoder decoder stacks (an MLP generator *is* an MLP
decoder, a conv generator a DCGAN decoder), and any trained decoder can be wrapped
with :meth:`Generator.from_autoencoder`. Discriminators reuse the encoder stacks
with a single output unit. For WGAN-GP use ``norm="none"`` or ``"layer"`` (never
``"batch"``: the penalty is per sample); spectral normalisation is optional.

Shapes (n = batch size, L = latent_dim)::

    Generator        z (n, L) -> x (n, *output_shape)
    Discriminator    x (n, *input_shape) -> score (n,)   (logit, or critic value for WGAN)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aeot._validation import check_positive_int
from aeot.nets._blocks import (
    ACTIVATIONS,
    NORMS,
    OUTPUT_ACTIVATIONS,
    ConfigMixin,
    check_batch,
    check_choice,
    check_shape,
    conv_plan,
)
from aeot.nets.autoencoder import (
    Autoencoder,
    ConvAutoencoderConfig,
    MLPAutoencoderConfig,
    build_conv_decoder,
    build_conv_encoder,
    build_mlp_decoder,
    build_mlp_encoder,
)

GAN_LOSSES = ("ns", "wgan", "hinge")


# ----------------------------------------------------------------------------- configs


@dataclass
class MLPGeneratorConfig(ConfigMixin):
    """Configuration of :class:`MLPGenerator`."""

    KIND = "mlp_generator"

    latent_dim: int = 8  # L, dimension of the Gaussian noise z
    output_shape: tuple[int, ...] = (2,)  # one sample: (d,) for points, (c, h, w) for images
    hidden: tuple[int, ...] = (128, 128)  # hidden widths, from z towards x
    activation: str = "relu"  # "relu" | "leaky_relu"
    negative_slope: float = 0.2  # slope of leaky_relu for x < 0
    output_activation: str = "none"  # "none" for points | "sigmoid" for [0, 1] images | "tanh"

    def __post_init__(self) -> None:
        (self.latent_dim,) = check_shape(self.latent_dim, "latent_dim", length=1)
        self.output_shape = check_shape(self.output_shape, "output_shape")
        self.hidden = () if self.hidden in ((), [], None) else check_shape(self.hidden, "hidden")
        check_choice(self.activation, "activation", ACTIVATIONS)
        check_choice(self.output_activation, "output_activation", OUTPUT_ACTIVATIONS)
        self.negative_slope = float(self.negative_slope)

    def decoder_config(self) -> MLPAutoencoderConfig:
        return MLPAutoencoderConfig(
            input_shape=self.output_shape,
            latent_dim=self.latent_dim,
            hidden=tuple(reversed(self.hidden)),
            activation=self.activation,
            negative_slope=self.negative_slope,
            output_activation=self.output_activation,
        )


@dataclass
class ConvGeneratorConfig(ConfigMixin):
    """Configuration of :class:`ConvGenerator` (the DCGAN generator)."""

    KIND = "conv_generator"

    latent_dim: int = 64  # L, dimension of the Gaussian noise z
    output_shape: tuple[int, int, int] = (1, 28, 28)  # (c, H, W); H, W even and >= 8
    width: int = 64  # channels of the last hidden layer; doubled towards z
    max_width: int = 512  # cap on the channel count
    activation: str = "relu"  # "relu" | "leaky_relu"
    negative_slope: float = 0.2  # slope of leaky_relu for x < 0
    norm: str = "batch"  # "batch" (DCGAN) | "none" | "instance" | "layer"
    output_activation: str = "sigmoid"  # "sigmoid" for [0, 1] images | "tanh" | "none"

    def __post_init__(self) -> None:
        self.output_shape = check_shape(self.output_shape, "output_shape", length=3)
        self.decoder_config()  # validates the other fields

    def decoder_config(self) -> ConvAutoencoderConfig:
        return ConvAutoencoderConfig(
            input_shape=self.output_shape,
            latent_dim=self.latent_dim,
            width=self.width,
            max_width=self.max_width,
            activation=self.activation,
            negative_slope=self.negative_slope,
            norm=self.norm,
            output_activation=self.output_activation,
        )


@dataclass
class MLPDiscriminatorConfig(ConfigMixin):
    """Configuration of :class:`MLPDiscriminator`."""

    KIND = "mlp_discriminator"

    input_shape: tuple[int, ...] = (2,)  # one sample: (d,) or (c, h, w) (flattened)
    hidden: tuple[int, ...] = (128, 128)  # hidden widths
    activation: str = "leaky_relu"  # "relu" | "leaky_relu"
    negative_slope: float = 0.2  # slope of leaky_relu for x < 0
    spectral_norm: bool = False  # wrap every Linear in spectral normalisation

    def __post_init__(self) -> None:
        self.input_shape = check_shape(self.input_shape, "input_shape")
        self.hidden = () if self.hidden in ((), [], None) else check_shape(self.hidden, "hidden")
        check_choice(self.activation, "activation", ACTIVATIONS)
        self.spectral_norm = bool(self.spectral_norm)


@dataclass
class ConvDiscriminatorConfig(ConfigMixin):
    """Configuration of :class:`ConvDiscriminator` (the DCGAN discriminator / WGAN critic)."""

    KIND = "conv_discriminator"

    input_shape: tuple[int, int, int] = (1, 28, 28)  # (c, H, W); H, W even and >= 8
    width: int = 64  # channels of the first conv; doubled by every further conv
    max_width: int = 512  # cap on the channel count
    activation: str = "leaky_relu"  # "relu" | "leaky_relu"
    negative_slope: float = 0.2  # slope of leaky_relu for x < 0
    norm: str = "none"  # "none" / "layer" for WGAN-GP | "batch" (DCGAN) | "instance"
    spectral_norm: bool = False  # wrap every conv / linear in spectral normalisation

    def __post_init__(self) -> None:
        self.input_shape = check_shape(self.input_shape, "input_shape", length=3)
        check_choice(self.activation, "activation", ACTIVATIONS)
        check_choice(self.norm, "norm", NORMS)
        self.spectral_norm = bool(self.spectral_norm)
        conv_plan(self.input_shape, self.width, self.max_width)


# -------------------------------------------------------------------------- generators


class Generator(nn.Module):
    """Maps Gaussian noise z (n, L) to samples (n, *output_shape) through ``self.net``.

    Parameters
    ----------
    net : nn.Sequential
        The generator network (e.g. a decoder).
    latent_dim : int
        L, the noise dimension.
    output_shape : tuple of int
        Shape of one generated sample.
    """

    def __init__(self, net: nn.Sequential, latent_dim: int, output_shape: tuple[int, ...]):
        super().__init__()
        self.net = net
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.output_shape = tuple(output_shape)

    @classmethod
    def from_autoencoder(cls, model: Autoencoder, *, copy_weights: bool = True) -> Generator:
        """Wrap an autoencoder's decoder (a deep copy unless ``copy_weights=False``)."""
        decoder = copy.deepcopy(model.decoder) if copy_weights else model.decoder
        return cls(decoder, model.latent_dim, model.input_shape)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (n, L) -> samples (n, *output_shape)."""
        check_batch(z, (self.latent_dim,), "latent codes")
        return self.net(z)

    def sample(
        self,
        n: int,
        *,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Generate ``n`` samples from ``z ~ N(0, I)``.

        Gradients flow through; wrap the call in ``torch.no_grad()`` when not training.
        """
        n = check_positive_int(n, "n")
        device = self.device if device is None else torch.device(device)
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self(z)


class MLPGenerator(Generator):
    """Fully connected generator (an MLP decoder). ``config``: :class:`MLPGeneratorConfig`."""

    def __init__(self, config: MLPGeneratorConfig | dict | None = None):
        config = _config(config, MLPGeneratorConfig)
        super().__init__(
            build_mlp_decoder(config.decoder_config()), config.latent_dim, config.output_shape
        )
        self.config = config


class ConvGenerator(Generator):
    """DCGAN generator (a conv decoder). ``config``: :class:`ConvGeneratorConfig`."""

    def __init__(self, config: ConvGeneratorConfig | dict | None = None):
        config = _config(config, ConvGeneratorConfig)
        super().__init__(
            build_conv_decoder(config.decoder_config()), config.latent_dim, config.output_shape
        )
        self.config = config


# ---------------------------------------------------------------------- discriminators


def _apply_spectral_norm(net: nn.Sequential) -> None:
    for i, layer in enumerate(net):
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            net[i] = nn.utils.parametrizations.spectral_norm(layer)


class _Discriminator(nn.Module):
    config: MLPDiscriminatorConfig | ConvDiscriminatorConfig
    net: nn.Sequential

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, *input_shape) -> scores (n,)."""
        what = "images" if len(self.config.input_shape) == 3 else "inputs"
        check_batch(x, self.config.input_shape, what)
        return self.net(x).squeeze(1)


class MLPDiscriminator(_Discriminator):
    """Fully connected discriminator / critic. ``config``: :class:`MLPDiscriminatorConfig`."""

    def __init__(self, config: MLPDiscriminatorConfig | dict | None = None):
        super().__init__()
        config = _config(config, MLPDiscriminatorConfig)
        self.config = config
        enc = MLPAutoencoderConfig(
            input_shape=config.input_shape,
            latent_dim=1,
            hidden=config.hidden,
            activation=config.activation,
            negative_slope=config.negative_slope,
        )
        self.net = build_mlp_encoder(enc)  # (n, *input_shape) -> (n, 1)
        if config.spectral_norm:
            _apply_spectral_norm(self.net)


class ConvDiscriminator(_Discriminator):
    """DCGAN discriminator / WGAN critic. ``config``: :class:`ConvDiscriminatorConfig`."""

    def __init__(self, config: ConvDiscriminatorConfig | dict | None = None):
        super().__init__()
        config = _config(config, ConvDiscriminatorConfig)
        self.config = config
        enc = ConvAutoencoderConfig(
            input_shape=config.input_shape,
            latent_dim=1,
            width=config.width,
            max_width=config.max_width,
            activation=config.activation,
            negative_slope=config.negative_slope,
            norm=config.norm,
        )
        self.net = build_conv_encoder(enc)  # (n, c, H, W) -> (n, 1)
        if config.spectral_norm:
            _apply_spectral_norm(self.net)


def _config(config, cls):
    if config is None:
        return cls()
    if isinstance(config, dict):
        return cls.from_dict(config)
    if not isinstance(config, cls):
        raise TypeError(f"expected a {cls.__name__} or a dict, got {type(config).__name__}")
    return config


# ------------------------------------------------------------------------------ losses


def gradient_penalty(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty ``E[(||∇ critic(x̂)||₂ − 1)²]`` (Gulrajani et al. 2017).

    ``x̂ = ε real + (1 − ε) fake`` with one ``ε ~ U(0, 1)`` per sample. The graph is
    kept (``create_graph=True``) so the penalty can be back-propagated.

    Parameters
    ----------
    critic : nn.Module
        Maps (n, ...) to (n,) or (n, 1) scores.
    real, fake : tensors of the same shape (n, ...)
    generator : torch.Generator, optional
        Source of ε.

    Returns
    -------
    torch.Tensor
        Scalar penalty (multiply by λ, usually 10).
    """
    if real.shape != fake.shape:
        raise ValueError(
            "real and fake must have the same shape, "
            f"got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    eps_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    eps = torch.rand(eps_shape, generator=generator, device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = torch.sqrt(grad.flatten(1).pow(2).sum(dim=1) + 1e-12)
    return (norms - 1.0).pow(2).mean()


def discriminator_loss(
    real_scores: torch.Tensor, fake_scores: torch.Tensor, kind: str = "ns"
) -> torch.Tensor:
    """Discriminator / critic loss to minimise.

    ``"ns"``: logistic loss ``softplus(-D(x)) + softplus(D(G(z)))``; ``"wgan"``:
    ``D(G(z)) − D(x)`` (add :func:`gradient_penalty`); ``"hinge"``:
    ``relu(1 − D(x)) + relu(1 + D(G(z)))``.
    """
    check_choice(kind, "kind", GAN_LOSSES)
    if kind == "ns":
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()
    if kind == "wgan":
        return fake_scores.mean() - real_scores.mean()
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def generator_loss(fake_scores: torch.Tensor, kind: str = "ns") -> torch.Tensor:
    """Generator loss: non-saturating ``softplus(-D(G(z)))``, or ``−D(G(z))`` for wgan/hinge."""
    check_choice(kind, "kind", GAN_LOSSES)
    if kind == "ns":
        return F.softplus(-fake_scores).mean()
    return -fake_scores.mean()
