"""The model layer's shared machinery: one resumable training loop, one persistence,
one config mixin.

* :mod:`aeot.core.rng` — the run's random streams: :func:`forked_rng`,
  :func:`capture_rng`, :func:`restore_rng`;
* :mod:`aeot.core.state` — :class:`TrainState`, where a run stands (steps done, history,
  its own generator);
* :mod:`aeot.core.checkpoint` — :class:`Checkpoint`, the atomic, fingerprinted file a run
  resumes from;
* :mod:`aeot.core.loop` — :func:`run_loop`, the loop every model drives with a step
  function (the autoencoder trainer, the baselines, AE-OT-GAN, the feature classifier);
* :mod:`aeot.core.persist` — :func:`~aeot.core.persist.save_folder` /
  :func:`~aeot.core.persist.read_folder`, the one folder format (config.json, a
  safetensors file per component, a manifest) every model saves to, and
  :func:`~aeot.core.persist.load_model`, which opens any of them;
* :mod:`aeot.core.config` — :class:`~aeot.core.config.ConfigMixin`, ``to_dict`` /
  ``from_dict`` of every settings dataclass.
"""

from aeot.core.checkpoint import Checkpoint
from aeot.core.loop import run_loop
from aeot.core.rng import capture_rng, forked_rng, restore_rng
from aeot.core.state import TrainState

__all__ = ["Checkpoint", "TrainState", "capture_rng", "forked_rng", "restore_rng", "run_loop"]
