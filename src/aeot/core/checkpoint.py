"""Resumable training checkpoints: one ``torch.save`` file per run, written atomically and
resumed only by the run it belongs to.

A checkpoint is the dict, in this order::

    {"fingerprint": str,          # JSON (sorted keys) of what identifies the run
     <counter>: int,              # steps done: "epoch", "iteration", "step"
     "history": list | dict,      # the losses of those steps (aeot.core.state)
     <part>: state, ...,          # modules, optimisers, ... named by the caller
     "rng": dict}                 # aeot.core.rng.capture_rng

A part is an ``nn.Module`` (saved as its ``state_dict`` detached on the CPU), any other
object with ``state_dict`` / ``load_state_dict`` (optimisers, schedulers; saved as is), or
a dict of these (saved as the dict of their states). The fingerprint holds whatever
changes the trajectory (networks, data hash, hyper-parameters, seed); a file whose
fingerprint differs from the run's raises ``ValueError`` naming the differing entries, so
a stale or foreign checkpoint is never resumed silently.

The file is replaced atomically (:func:`aeot._io.atomic_write`): a write that is
interrupted leaves the previous checkpoint, never a truncated one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aeot._io import atomic_write, check_fingerprint, load_checkpoint
from aeot.core.state import TrainState

__all__ = ["Checkpoint"]


def _check_part(name: str, part) -> None:
    if isinstance(part, Mapping):
        for key, inner in part.items():
            _check_part(f"{name}.{key}", inner)
    elif not (
        callable(getattr(part, "state_dict", None))
        and callable(getattr(part, "load_state_dict", None))
    ):
        raise TypeError(
            f"checkpoint part {name!r} must have state_dict and load_state_dict (a module, "
            f"an optimiser) or be a dict of such, got {type(part).__name__}"
        )


def _state_of(part) -> Any:
    if isinstance(part, Mapping):
        return {key: _state_of(inner) for key, inner in part.items()}
    if isinstance(part, nn.Module):
        return {k: v.detach().cpu() for k, v in part.state_dict().items()}
    return part.state_dict()


def _load_into(part, state) -> None:
    if isinstance(part, Mapping):
        for key, inner in part.items():
            _load_into(inner, state[key])
    else:
        part.load_state_dict(state)


class Checkpoint:
    """The checkpoint file of one run.

    Parameters
    ----------
    path : path
        The file (its folder is created on the first write).
    fingerprint : dict
        JSON-serialisable description of the run; stored as ``json.dumps(fingerprint,
        sort_keys=True)`` and compared on resume.
    parts : dict
        ``name -> module | optimiser | dict of these``: what is saved besides counter,
        history and RNG, in this order (module docstring).
    counter : str
        Name of the step count in the file (``"epoch"``, ``"iteration"``, ``"step"``);
        error messages use it too.
    what : str
        The kind of checkpoint, named when a file lacks an entry
        (``"not an aeot <what> checkpoint"``).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fingerprint: dict[str, Any],
        parts: Mapping[str, Any],
        *,
        counter: str = "step",
        what: str = "training",
    ):
        self.path = Path(path)
        if not isinstance(fingerprint, dict):
            raise TypeError(f"fingerprint must be a dict, got {type(fingerprint).__name__}")
        self.fingerprint = fingerprint
        self._fingerprint_json = json.dumps(fingerprint, sort_keys=True)
        if not isinstance(parts, Mapping):
            raise TypeError(f"parts must be a dict of name -> state, got {type(parts).__name__}")
        reserved = {"fingerprint", counter, "history", "rng"} & set(parts)
        if reserved:
            raise ValueError(f"parts must not use the reserved names {sorted(reserved)}")
        for name, part in parts.items():
            _check_part(name, part)
        self.parts = dict(parts)
        self.counter = counter
        self.what = what

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.path)!r}, counter={self.counter!r}, parts={list(self.parts)})"

    @property
    def required(self) -> set[str]:
        """The entries a file must hold to be this kind of checkpoint."""
        return {"fingerprint", self.counter, "history", *self.parts, "rng"}

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> dict[str, Any]:
        """The file's payload (tensors on the CPU), fingerprint not checked.

        Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a corrupt
        one or one that lacks an entry of :attr:`required`.
        """
        return load_checkpoint(self.path, self.required, what=self.what)

    def payload(self, state: TrainState) -> dict[str, Any]:
        """What :meth:`save` writes for ``state`` (module docstring)."""
        return {
            "fingerprint": self._fingerprint_json,
            self.counter: state.step,
            "history": state.history_copy(),
            **{name: _state_of(part) for name, part in self.parts.items()},
            "rng": state.capture_rng(),
        }

    def save(self, state: TrainState) -> None:
        """Write the checkpoint of ``state`` atomically (replacing any previous one)."""
        payload = self.payload(state)
        atomic_write(self.path, lambda tmp: torch.save(payload, tmp))

    def resume(self, state: TrainState, *, total: int) -> bool:
        """Load the file into the parts and ``state`` when there is one; say whether.

        The fingerprint must match the run's, and the file's step count must not exceed
        ``total`` (both ``ValueError``; nothing is loaded then). On success the parts
        hold the saved states, and ``state`` the step count, history and RNG states.
        """
        if not self.exists():
            return False
        payload = self.read()
        check_fingerprint(self.path, payload["fingerprint"], self.fingerprint)
        done = int(payload[self.counter])
        if done > total:
            raise ValueError(
                f"checkpoint {self.path} is already at {self.counter} {done}, "
                f"beyond {self.counter}s={total}"
            )
        for name, part in self.parts.items():
            _load_into(part, payload[name])
        state.restore_rng(payload["rng"])
        saved = payload["history"]
        if isinstance(state.history, dict):
            state.history = {k: [float(v) for v in saved[k]] for k in state.history}
        else:
            state.history = [float(v) for v in saved]
        state.step = done
        return True
