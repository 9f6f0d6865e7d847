"""Variational autoencoders (Kingma & Welling 2014), MLP and conv, built from the AE stacks.

The encoder is the autoencoder's encoder with a head of width ``2 L`` whose output
is split into the posterior mean ``mu`` and log-variance ``logvar``; the decoder is
the autoencoder's decoder unchanged.

Shapes (n = batch size, L = latent_dim)::

    x (n, *input_shape) -> encoder -> h (n, 2L) -> mu (n, L), logvar (n, L)
    z = mu + exp(logvar / 2) * eps,  eps ~ N(0, I)  (reparameterisation)
    z (n, L) -> decoder -> x_hat (n, *input_shape)

Loss per sample, averaged over the batch: ``recon + beta * KL(q(z|x) || N(0, I))``
with ``recon`` the summed binary cross-entropy (Bernoulli likelihood) or summed
squared error (Gaussian likelihood of fixed variance 1/2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from aeot.nets._blocks import check_choice
from aeot.nets.autoencoder import (
    Autoencoder,
    ConvAutoencoderConfig,
    MLPAutoencoderConfig,
    build_conv_decoder,
    build_conv_encoder,
    build_mlp_decoder,
    build_mlp_encoder,
)

RECON_LOSSES = ("bce", "mse")


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag(exp(logvar))) || N(0, I) ) per sample, shape (n,).

    Closed form: ``0.5 * sum(mu^2 + exp(logvar) - 1 - logvar)`` over the latent axis.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(dim=1)


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """Summed per-sample reconstruction loss, shape (n,).

    ``"bce"`` needs ``x_hat`` in (0, 1) (sigmoid output) and ``x`` in [0, 1].
    """
    if kind == "bce":
        per = F.binary_cross_entropy(x_hat, x, reduction="none")
    elif kind == "mse":
        per = (x_hat - x).pow(2)
    else:
        raise ValueError(f"recon_loss must be one of {RECON_LOSSES}, got {kind!r}")
    return per.flatten(1).sum(dim=1)


@dataclass
class MLPVAEConfig(MLPAutoencoderConfig):
    """Configuration of :class:`MLPVAE`: the MLP autoencoder fields plus the loss."""

    KIND = "mlp_vae"

    recon_loss: str = "mse"  # "mse" (Gaussian likelihood) | "bce" (Bernoulli; needs sigmoid)
    beta: float = 1.0  # weight of the KL term (beta-VAE); 1 is the plain ELBO

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_loss(self.recon_loss, self.output_activation, self.beta)
        self.beta = float(self.beta)


@dataclass
class ConvVAEConfig(ConvAutoencoderConfig):
    """Configuration of :class:`ConvVAE`: the conv autoencoder fields plus the loss."""

    KIND = "conv_vae"

    recon_loss: str = "bce"  # "bce" (Bernoulli, images in [0, 1]) | "mse"
    beta: float = 1.0  # weight of the KL term (beta-VAE); 1 is the plain ELBO

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_loss(self.recon_loss, self.output_activation, self.beta)
        self.beta = float(self.beta)


def _check_loss(recon_loss: str, output_activation: str, beta: float) -> None:
    check_choice(recon_loss, "recon_loss", RECON_LOSSES)
    if recon_loss == "bce" and output_activation != "sigmoid":
        raise ValueError("recon_loss='bce' needs output_activation='sigmoid'")
    if not float(beta) >= 0:
        raise ValueError(f"beta must be >= 0, got {beta}")


class _VAE(Autoencoder):
    """Shared VAE logic; subclasses build ``encoder`` (-> 2L) and ``decoder``."""

    def encode_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each (n, L)."""
        h = super().encode(x)  # (n, 2L)
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean ``mu`` (n, L): the deterministic code used downstream."""
        return self.encode_stats(x)[0]

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction: of a sampled z in training mode, of ``mu`` in eval mode."""
        mu, logvar = self.encode_stats(x)
        z = self.reparameterize(mu, logvar) if self.training else mu
        return self.decode(z)

    def loss(
        self, x: torch.Tensor, recon_loss: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Negative ELBO, averaged over the batch.

        Parameters
        ----------
        x : (n, *input_shape) tensor
        recon_loss : {"bce", "mse"}, optional
            Overrides ``config.recon_loss``.

        Returns
        -------
        (total, recon, kl) : scalar tensors, ``total = recon + beta * kl``.
        """
        mu, logvar = self.encode_stats(x)
        z = self.reparameterize(mu, logvar)
        x_hat = self.decode(z)
        recon = reconstruction_loss(x_hat, x, recon_loss or self.config.recon_loss).mean()
        kl = kl_divergence(mu, logvar).mean()
        return recon + self.config.beta * kl, recon, kl

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Decode ``n`` prior draws ``z ~ N(0, I)``: (n, *input_shape)."""
        device = self.device if device is None else torch.device(device)
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.decode(z)


class MLPVAE(_VAE):
    """Fully connected VAE for points (n, d) or small images.

    Parameters
    ----------
    config : MLPVAEConfig or dict
    """

    def __init__(self, config: MLPVAEConfig | dict | None = None):
        super().__init__()
        if config is None:
            config = MLPVAEConfig()
        elif isinstance(config, dict):
            config = MLPVAEConfig.from_dict(config)
        self.config = config
        self.encoder = build_mlp_encoder(config, 2 * config.latent_dim)  # -> (n, 2L)
        self.decoder = build_mlp_decoder(config)  # (n, L) -> (n, *input_shape)


class ConvVAE(_VAE):
    """DCGAN-like convolutional VAE for (n, c, H, W) images.

    Parameters
    ----------
    config : ConvVAEConfig or dict
    """

    def __init__(self, config: ConvVAEConfig | dict | None = None):
        super().__init__()
        if config is None:
            config = ConvVAEConfig()
        elif isinstance(config, dict):
            config = ConvVAEConfig.from_dict(config)
        self.config = config
        self.encoder = build_conv_encoder(config, 2 * config.latent_dim)  # -> (n, 2L)
        self.decoder = build_conv_decoder(config)  # (n, L) -> (n, c, H, W)
