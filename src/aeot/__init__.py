"""aeot: geometric generative modelling.

Autoencoders learn the data manifold, semi-discrete optimal transport moves a
uniform latent measure onto the latent codes, and the singular set of the
transport map is avoided when new codes are generated (AE-OT).
"""

__version__ = "0.1.0"
