"""Training loop for the autoencoders (and VAEs), with atomic checkpoints and exact resume.

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

import contextlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from aeot._io import atomic_write
from aeot._io import check_fingerprint as _check_fingerprint
from aeot._io import load_checkpoint as _load_checkpoint
from aeot._io import tensor_hash as _data_hash
from aeot._validation import as_float_tensor, check_positive_int, resolve_device

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
        "data_hash": _data_hash(x),
        **hyper,
    }


@contextlib.contextmanager
def _forked_rng(device: torch.device) -> Iterator[None]:
    """Run with a private copy of the global RNG state(s); the caller's state is restored."""
    devices = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if (device.type == "cuda")
        else []
    )
    with torch.random.fork_rng(devices=devices):
        yield


def _rng_state(device: torch.device, shuffle: torch.Generator) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device, shuffle: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    shuffle.set_state(state["shuffle"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


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
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    fingerprint = _fingerprint(model, x, hyper) if ckpt is not None else None
    recon_fn = _loss_fn(loss)

    with _forked_rng(dev):
        torch.manual_seed(seed)
        shuffle = torch.Generator().manual_seed(seed)
        history: list[float] = []
        start = 0
        if ckpt is not None and ckpt.exists():
            payload = load_checkpoint(ckpt)
            _check_fingerprint(ckpt, payload["fingerprint"], fingerprint)
            start = int(payload["epoch"])
            if start > epochs:
                raise ValueError(
                    f"checkpoint {ckpt} is already at epoch {start}, beyond epochs={epochs}"
                )
            model.load_state_dict(payload["model"])
            optimizer.load_state_dict(payload["optimizer"])
            _set_rng_state(payload["rng"], dev, shuffle)
            history = [float(v) for v in payload["history"]]

        bar = tqdm(
            range(start, epochs),
            initial=start,
            total=epochs,
            disable=not progress,
            desc=f"train {type(model).__name__}",
            leave=False,
        )
        for epoch in bar:
            model.train()
            perm = torch.randperm(n, generator=shuffle)
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
            epoch_loss = total / n
            if not math.isfinite(epoch_loss):
                raise FloatingPointError(
                    f"training diverged at epoch {epoch + 1} (loss {epoch_loss}); try a smaller lr"
                )
            history.append(epoch_loss)
            bar.set_postfix(loss=f"{epoch_loss:.4g}")
            done = epoch + 1
            if ckpt is not None and (done % checkpoint_every == 0 or done == epochs):
                _save_checkpoint(
                    ckpt,
                    {
                        "fingerprint": json.dumps(fingerprint, sort_keys=True),
                        "epoch": done,
                        "history": list(history),
                        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                        "optimizer": optimizer.state_dict(),
                        "rng": _rng_state(dev, shuffle),
                    },
                )
        bar.close()
    model.eval()
    return history
