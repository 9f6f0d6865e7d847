"""Where a training run stands: steps done, loss history and the run's own random stream.

A run counts *steps*, the units its loop repeats (an epoch of the autoencoder, one
generator update of a GAN). After ``step`` steps the history holds ``step`` entries per
loss: a list of floats for a run with one loss, a dict of such lists, one per named loss,
for a run with several.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from aeot.core.rng import capture_rng, restore_rng

__all__ = ["History", "TrainState"]

History = list[float] | dict[str, list[float]]


@dataclass
class TrainState:
    """The mutable state of a run that :func:`aeot.core.run_loop` advances.

    Attributes
    ----------
    generator : torch.Generator
        The run's own stream (shuffles, batch draws), seeded by the caller.
    device : torch.device
        Where the run trains (decides whether a CUDA RNG state is captured).
    history : list of float or dict of list of float
        The losses of every step done: a list for one unnamed loss, a dict for named
        losses (its keys fix the names a step must return). Empty at the start.
    step : int
        Steps done, ``0 <= step``; a resumed run starts from the checkpoint's count.
    """

    generator: torch.Generator
    device: torch.device | str = "cpu"
    history: History = field(default_factory=list)
    step: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator, got {type(self.generator).__name__}"
            )
        self.device = torch.device(self.device)
        if isinstance(self.history, Mapping):
            self.history = {str(k): [float(v) for v in vs] for k, vs in self.history.items()}
            if not self.history:
                raise ValueError("history must name at least one loss, got an empty dict")
        elif isinstance(self.history, list):
            self.history = [float(v) for v in self.history]
        else:
            raise TypeError(
                f"history must be a list or a dict of lists, got {type(self.history).__name__}"
            )
        if isinstance(self.step, bool) or not isinstance(self.step, int) or self.step < 0:
            raise ValueError(f"step must be an int >= 0, got {self.step!r}")

    def capture_rng(self) -> dict[str, Any]:
        """The global and own RNG states (:func:`aeot.core.rng.capture_rng`)."""
        return capture_rng(self.device, self.generator)

    def restore_rng(self, state: dict[str, Any]) -> None:
        """Set the global and own RNGs back to a state from :meth:`capture_rng`."""
        restore_rng(state, self.device, self.generator)

    def record(self, values: float | Mapping[str, float]) -> None:
        """Append one step's losses to the history and count the step.

        ``values`` is a float when the history is a list and a mapping with exactly the
        history's keys when it is a dict; anything else raises ``ValueError`` naming the
        mismatch, and the state is left as it was.
        """
        if isinstance(self.history, dict):
            if not isinstance(values, Mapping) or set(values) != set(self.history):
                got = sorted(values) if isinstance(values, Mapping) else type(values).__name__
                raise ValueError(
                    f"a step must return the losses {sorted(self.history)} (the history's "
                    f"keys), got {got}"
                )
            floats = {k: float(v) for k, v in values.items()}
            for key, value in floats.items():
                self.history[key].append(value)
        else:
            if isinstance(values, Mapping):
                raise ValueError(
                    f"a step must return one float for a list history, got {sorted(values)}"
                )
            self.history.append(float(values))
        self.step += 1

    def history_copy(self) -> History:
        """A copy of the history that later steps do not change."""
        if isinstance(self.history, dict):
            return {k: list(v) for k, v in self.history.items()}
        return list(self.history)
