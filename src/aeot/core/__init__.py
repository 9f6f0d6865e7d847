"""The model layer's shared machinery: one resumable training loop.

* :mod:`aeot.core.rng` — the run's random streams: :func:`forked_rng`,
  :func:`capture_rng`, :func:`restore_rng`;
* :mod:`aeot.core.state` — :class:`TrainState`, where a run stands (steps done, history,
  its own generator);
* :mod:`aeot.core.checkpoint` — :class:`Checkpoint`, the atomic, fingerprinted file a run
  resumes from;
* :mod:`aeot.core.loop` — :func:`run_loop`, the loop every model drives with a step
  function (the autoencoder trainer, the baselines, AE-OT-GAN, the feature classifier).
"""

from aeot.core.checkpoint import Checkpoint
from aeot.core.loop import run_loop
from aeot.core.rng import capture_rng, forked_rng, restore_rng
from aeot.core.state import TrainState

__all__ = ["Checkpoint", "TrainState", "capture_rng", "forked_rng", "restore_rng", "run_loop"]
