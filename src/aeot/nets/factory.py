"""Autoencoders by name and on disk: :func:`build_autoencoder` from a config with a
``"kind"`` (plain or variational, MLP or conv), :func:`save_autoencoder` /
:func:`load_autoencoder` (safetensors weights with the config as JSON metadata).

Its own module so that :mod:`aeot.nets.autoencoder` and :mod:`aeot.nets.vae` (which
builds on it) do not import each other.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch

from aeot._io import load_tensors, save_tensors
from aeot._validation import _count_non_finite, resolve_device
from aeot.nets._blocks import ConfigMixin
from aeot.nets.autoencoder import (
    Autoencoder,
    ConvAutoencoder,
    ConvAutoencoderConfig,
    MLPAutoencoder,
    MLPAutoencoderConfig,
)
from aeot.nets.vae import MLPVAE, ConvVAE, ConvVAEConfig, MLPVAEConfig

__all__ = ["build_autoencoder", "load_autoencoder", "save_autoencoder"]

_REGISTRY: dict[str, tuple[type, type]] = {
    "mlp": (MLPAutoencoderConfig, MLPAutoencoder),
    "conv": (ConvAutoencoderConfig, ConvAutoencoder),
    "mlp_vae": (MLPVAEConfig, MLPVAE),
    "conv_vae": (ConvVAEConfig, ConvVAE),
}


def build_autoencoder(config: dict[str, Any] | ConfigMixin) -> Autoencoder:
    """Build a model from a config dict with a ``"kind"`` entry (or a config dataclass).

    Kinds: ``"mlp"`` (:class:`MLPAutoencoder`), ``"conv"`` (:class:`ConvAutoencoder`),
    ``"mlp_vae"`` and ``"conv_vae"`` (:mod:`aeot.nets.vae`). The other entries are the
    fields of the corresponding config dataclass.
    """
    registry = _REGISTRY
    if isinstance(config, ConfigMixin):
        config = config.to_dict()
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict or a config dataclass, got {type(config).__name__}")
    kind = config.get("kind")
    if kind not in registry:
        raise ValueError(f"config 'kind' must be one of {sorted(registry)}, got {kind!r}")
    config_cls, model_cls = registry[kind]
    return model_cls(config_cls.from_dict(config))


def save_autoencoder(path: str | os.PathLike, model: Autoencoder) -> None:
    """Write weights (safetensors) with the config as JSON metadata, atomically."""
    if not hasattr(model, "config") or not isinstance(model.config, ConfigMixin):
        raise TypeError("model must be an aeot.nets autoencoder with a config")
    save_tensors(path, model.state_dict(), metadata={"config": json.dumps(model.config.to_dict())})


def load_autoencoder(
    path: str | os.PathLike, device: torch.device | str | None = "cpu"
) -> Autoencoder:
    """Rebuild a model saved by :func:`save_autoencoder` (in eval mode, on ``device``)."""
    from safetensors import safe_open

    tensors = load_tensors(path, what="autoencoder weights")
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
    if "config" not in meta:
        raise ValueError(f"{path} has no model config in its metadata (not saved by aeot?)")
    try:
        config = json.loads(meta["config"])
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(
            f"{path}: the model config in its metadata is not valid JSON: {exc}"
        ) from None
    # the skeleton on the meta device allocates nothing: a config naming huge layers is
    # refused by the shape check below instead of being built first
    with torch.device("meta"):
        skeleton = build_autoencoder(config)
    expected = {name: tuple(t.shape) for name, t in skeleton.state_dict().items()}
    stored = {name: tuple(t.shape) for name, t in tensors.items()}
    if expected != stored:
        differ = sorted(k for k in set(expected) | set(stored) if expected.get(k) != stored.get(k))
        shown = "; ".join(
            f"{k}: config {expected.get(k, 'absent')}, file {stored.get(k, 'absent')}"
            for k in differ[:3]
        )
        raise ValueError(f"{path}: weights do not match the stored config ({shown})")
    for name, tensor in tensors.items():
        bad = _count_non_finite(tensor)
        if bad:
            raise ValueError(f"{path}: weight {name!r} holds {bad} NaN or infinite value(s)")
    model = build_autoencoder(config)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not match the stored config: {exc}") from None
    return model.to(resolve_device(device)).eval()
