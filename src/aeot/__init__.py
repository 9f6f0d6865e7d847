"""aeot: geometric generative modelling.

Autoencoders learn the data manifold, semi-discrete optimal transport moves a
uniform latent measure onto the latent codes, and the singular set of the
transport map is avoided when new codes are generated (AE-OT).
"""

__version__ = "0.1.0"

import importlib as _importlib

# headline names, imported on first use (``import aeot`` stays light)
_LAZY = {
    "AEOT": "aeot.models",
    "AEOTConfig": "aeot.models",
    "AEOTGAN": "aeot.models",
    "AEOTGANConfig": "aeot.models",
    "GANBaseline": "aeot.models",
    "WGANGPBaseline": "aeot.models",
    "VAEBaseline": "aeot.models",
    "NotFittedError": "aeot.models",
    "load_dataset": "aeot.data",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(_importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aeot' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
