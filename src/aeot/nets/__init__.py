"""Neural networks: MLP and conv autoencoders, VAEs, GAN parts and the AE training loop.

Encoders and decoders are plain ``nn.Sequential`` stacks of Linear / Conv / ReLU
modules so that :mod:`aeot.relu` can analyse their cell decompositions.
"""

from aeot.nets.autoencoder import (
    Autoencoder,
    ConvAutoencoder,
    ConvAutoencoderConfig,
    MLPAutoencoder,
    MLPAutoencoderConfig,
)
from aeot.nets.factory import build_autoencoder, load_autoencoder, save_autoencoder
from aeot.nets.gan import (
    ConvDiscriminator,
    ConvDiscriminatorConfig,
    ConvGenerator,
    ConvGeneratorConfig,
    Generator,
    MLPDiscriminator,
    MLPDiscriminatorConfig,
    MLPGenerator,
    MLPGeneratorConfig,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
)
from aeot.nets.train import load_checkpoint, train_autoencoder
from aeot.nets.vae import (
    MLPVAE,
    ConvVAE,
    ConvVAEConfig,
    MLPVAEConfig,
    kl_divergence,
    reconstruction_loss,
)

__all__ = [
    "MLPVAE",
    "Autoencoder",
    "ConvAutoencoder",
    "ConvAutoencoderConfig",
    "ConvDiscriminator",
    "ConvDiscriminatorConfig",
    "ConvGenerator",
    "ConvGeneratorConfig",
    "ConvVAE",
    "ConvVAEConfig",
    "Generator",
    "MLPAutoencoder",
    "MLPAutoencoderConfig",
    "MLPDiscriminator",
    "MLPDiscriminatorConfig",
    "MLPGenerator",
    "MLPGeneratorConfig",
    "MLPVAEConfig",
    "build_autoencoder",
    "discriminator_loss",
    "generator_loss",
    "gradient_penalty",
    "kl_divergence",
    "load_autoencoder",
    "load_checkpoint",
    "reconstruction_loss",
    "save_autoencoder",
    "train_autoencoder",
]
