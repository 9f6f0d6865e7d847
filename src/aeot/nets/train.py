"""Training of the autoencoders (and VAEs), on the resumable loop of :mod:`aeot.core`.

A checkpoint holds the model and Adam states, the epoch, the loss history, the
random-number states (global torch RNG and the shuffling generator) and a
*fingerprint* of the run: model class and config, parameter shapes, data shape,
dtype and content hash, and the hyper-parameters that change the trajectory
(batch size, learning rate, loss, seed, weight decay). Training resumes from an
existing checkpoint only when its fingerprint matches; otherwise it raises, so a
stale checkpoint is never picked up silently. On CPU a run resumed after k epochs
is bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aeot._io import load_checkpoint as _load_checkpoint
from aeot._io import tensor_hash
from aeot._validation import as_float_tensor, check_positive_int, resolve_device
from aeot.core import Checkpoint, TrainState, forked_rng, run_loop

LOSSES = ("mse", "bce", "l1")
CHECKPOINT_VERSION = 1


def _is_vae(model: nn.Module) -> bool:
    return callable(getattr(model, "loss", None)) and callable(getattr(model, "encode_stats", None))


def _fingerprint(model: nn.Module, x: torch.Tensor, hyper: dict[str, Any]) -> dict[str, Any]:
    config = getattr(model, "config", None)
    return {
        "version": CHECKPOINT_VERSION,
        "model": type(model).__name__,
        "config": config.to_dict() if hasattr(config, "to_dict") else None,
        "parameters": {k: list(v.shape) for k, v in model.state_dict().items()},
        "data_shape": list(x.shape),
        "data_dtype": str(x.dtype),
        "data_hash": tensor_hash(x),
        **hyper,
    }


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`train_autoencoder` (tensors on CPU)."""
    required = {"fingerprint", "epoch", "history", "model", "optimizer", "rng"}
    return _load_checkpoint(path, required, what="training")


def _loss_fn(name: str):
    if name == "mse":
        return F.mse_loss
    if name == "bce":
        return F.binary_cross_entropy
    return F.l1_loss


def train_autoencoder(
    model: nn.Module,
    data,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    loss: str | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
    progress: bool = True,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    weight_decay: float = 0.0,
) -> list[float]:
    """Train an autoencoder (or VAE) with Adam on in-memory data.

    Parameters
    ----------
    model : nn.Module
        An :mod:`aeot.nets` autoencoder (``forward`` = reconstruction) or VAE (trained
        on its negative ELBO ``model.loss``), or any module mapping x to a
        reconstruction of the same shape.
    data : tensor (n, ...) or aeot.data.Dataset
        Training samples; NaN / infinite values are rejected.
    epochs : int
        Total number of epochs (when resuming, the run continues up to this count).
    batch_size : int
        Mini-batch size; the data are reshuffled every epoch.
    lr : float
        Adam learning rate.
    loss : {"mse", "bce", "l1"}, optional
        Reconstruction loss, averaged over all entries. ``"bce"`` needs data in [0, 1]
        and a sigmoid output. Default ``"mse"``; for a VAE its ``config.recon_loss``.
    device : torch.device or str, optional
        Where to train (default: CUDA when available, else CPU).
    seed : int
        Seeds the shuffling and the model's own randomness (VAE noise); the caller's
        global RNG state is left untouched. Model initialisation is the caller's.
    progress : bool
        Show a tqdm progress bar over epochs.
    checkpoint_path : path, optional
        Where to write checkpoints. If the file exists and belongs to this run (same
        fingerprint), training resumes from it; if it belongs to another run a
        ``ValueError`` is raised.
    checkpoint_every : int
        Write a checkpoint every this many epochs, and always after the last one.
    weight_decay : float
        Adam weight decay.

    Returns
    -------
    list of float
        Mean training loss of every epoch since the start (including epochs done
        before a resume). The model is left in eval mode on ``device``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x = data.x if hasattr(data, "x") and hasattr(data, "kind") else data
    x = as_float_tensor(x, "data")
    if x.ndim < 2:
        raise ValueError(f"data must have shape (n, ...), got {tuple(x.shape)}")
    expected = getattr(model, "input_shape", None)
    if expected is not None and tuple(x.shape[1:]) != tuple(expected):
        raise ValueError(
            f"data do not fit the model: expected samples of shape {tuple(expected)}, "
            f"got {tuple(x.shape[1:])}"
        )
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    seed = int(check_positive_int(seed, "seed", minimum=0))
    lr = float(lr)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr}")
    weight_decay = float(weight_decay)
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")

    vae = _is_vae(model)
    config = getattr(model, "config", None)
    if loss is None:
        loss = getattr(config, "recon_loss", "mse") if vae else "mse"
    if loss not in LOSSES or (vae and loss == "l1"):
        allowed = ("mse", "bce") if vae else LOSSES
        raise ValueError(f"loss must be one of {allowed}, got {loss!r}")
    if loss == "bce":
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 1:
            raise ValueError(f"loss='bce' needs data in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
        out_act = getattr(config, "output_activation", "sigmoid")
        if out_act != "sigmoid":
            raise ValueError(
                f"loss='bce' needs a model with output_activation='sigmoid', got {out_act!r}"
            )

    dev = resolve_device(device)
    model.to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    n = x.shape[0]
    hyper = {
        "batch_size": batch_size,
        "lr": lr,
        "loss": loss,
        "seed": seed,
        "weight_decay": weight_decay,
    }
    checkpoint = None
    if checkpoint_path is not None:
        checkpoint = Checkpoint(
            checkpoint_path,
            _fingerprint(model, x, hyper),
            {"model": model, "optimizer": optimizer},
            counter="epoch",
            what="training",
        )
    recon_fn = _loss_fn(loss)

    with forked_rng(dev, seed):
        state = TrainState(torch.Generator().manual_seed(seed), dev)

        def epoch(t: int) -> float:
            model.train()
            perm = torch.randperm(n, generator=state.generator)
            total = 0.0
            for i in range(0, n, batch_size):
                idx = perm[i : i + batch_size].to(x.device)
                xb = x[idx].to(dev, non_blocking=True)
                if vae:
                    value = model.loss(xb, recon_loss=loss)[0]
                else:
                    value = recon_fn(model(xb), xb)
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                optimizer.step()
                total += float(value.detach()) * xb.shape[0]
            return total / n

        run_loop(
            epoch,
            state,
            epochs,
            checkpoint=checkpoint,
            every=checkpoint_every,
            unit="epoch",
            progress=progress,
            desc=f"train {type(model).__name__}",
        )
    model.eval()
    return state.history
