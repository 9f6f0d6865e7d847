"""The random streams of a training run: a private copy of the global RNG, and its state
captured into and restored from a checkpoint.

A run draws from two streams:

* the global torch RNG (initialisation, dropout, the model's own noise; on CUDA also the
  device's RNG), and
* one ``torch.Generator`` of its own, on the CPU (shuffles, batch draws).

Training runs inside :func:`forked_rng`, so the caller's global state is the same before
and after. :func:`capture_rng` and :func:`restore_rng` move both streams through a
checkpoint; together with the model and optimiser states this makes a resumed run
bit-identical (on CPU) to an uninterrupted one.

The captured state is the dict ``{"torch": ByteTensor, "shuffle": ByteTensor}``, plus
``"cuda": ByteTensor`` when the run is on a CUDA device: the ``"rng"`` entry of every aeot
training checkpoint. NumPy's RNG is not part of it: no training loop draws from it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["capture_rng", "forked_rng", "restore_rng"]


def _device(device: torch.device | str) -> torch.device:
    try:
        return torch.device(device)
    except (TypeError, RuntimeError) as exc:
        raise ValueError(f"device must name a torch device, got {device!r}: {exc}") from None


def _check_generator(generator) -> None:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")


@contextlib.contextmanager
def forked_rng(device: torch.device | str, seed: int | None = None) -> Iterator[None]:
    """Run the block with a private copy of the global RNG state(s).

    On exit the CPU RNG (and, for a CUDA ``device``, that device's RNG) is set back to
    what it was on entry, whatever the block drew or seeded.

    Parameters
    ----------
    device : torch.device or str
        The device the run trains on; only a CUDA device adds its RNG to the fork.
    seed : int, optional
        When given, ``torch.manual_seed(seed)`` is called inside the fork.
    """
    dev = _device(device)
    devices = []
    if dev.type == "cuda":
        devices = [dev.index if dev.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        yield


def capture_rng(device: torch.device | str, generator: torch.Generator) -> dict[str, Any]:
    """The run's RNG states: ``{"torch", "shuffle"[, "cuda"]}`` (module docstring).

    Parameters
    ----------
    device : torch.device or str
        The run's device; a CUDA device adds its RNG state under ``"cuda"``.
    generator : torch.Generator
        The run's own stream (kept under ``"shuffle"``).
    """
    dev = _device(device)
    _check_generator(generator)
    state = {"torch": torch.get_rng_state(), "shuffle": generator.get_state()}
    if dev.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(dev)
    return state


def restore_rng(state: dict[str, Any], device: torch.device | str, generator: torch.Generator):
    """Set the global RNG and ``generator`` to a state from :func:`capture_rng`.

    A ``"cuda"`` entry is applied only when ``device`` is a CUDA device (a run moved from
    GPU to CPU keeps its CPU streams). A state that is not a dict holding ``"torch"`` and
    ``"shuffle"`` byte tensors raises ``ValueError``.
    """
    dev = _device(device)
    _check_generator(generator)
    if not isinstance(state, dict):
        raise ValueError(f"an RNG state must be a dict, got {type(state).__name__}")
    for key in ("torch", "shuffle"):
        if key not in state:
            raise ValueError(
                f"an RNG state must hold 'torch' and 'shuffle', got keys {sorted(map(str, state))}"
            )
        value = state[key]
        if not isinstance(value, torch.Tensor) or value.dtype != torch.uint8:
            found = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"RNG state {key!r} must be a uint8 tensor, got {found}")
    torch.set_rng_state(state["torch"])
    generator.set_state(state["shuffle"])
    if dev.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], dev)
