"""The training loop of every aeot model: steps, divergence check, history, periodic
checkpoints and exact resume.

A model describes one step (an epoch, a generator update, ...) as a function
``step_fn(t) -> losses`` of the 0-based step index t; :func:`run_loop` repeats it from
``state.step`` up to ``total``::

    resume from the checkpoint, if there is one           (Checkpoint.resume)
    for t = state.step, ..., total - 1:
        losses = step_fn(t)
        a non-finite loss: FloatingPointError              (nothing recorded or saved)
        state.record(losses)                               (history, state.step = t + 1)
        on_step(state, losses)
        t + 1 a multiple of every, or t + 1 = total: Checkpoint.save(state)

Everything random inside ``step_fn`` must come from the global torch RNG or from
``state.generator``: those are the streams a checkpoint carries (:mod:`aeot.core.rng`).
Then, on CPU, a run interrupted at any step and resumed from its last checkpoint ends
bit-identical to an uninterrupted one: the steps after the checkpoint are redone from the
same model, optimiser and RNG states. Callers run the loop inside
:func:`aeot.core.rng.forked_rng`, which leaves their own RNG state untouched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from tqdm.auto import tqdm

from aeot._validation import check_positive_int
from aeot.core.checkpoint import Checkpoint
from aeot.core.state import TrainState

__all__ = ["run_loop"]

Losses = float | Mapping[str, float]


def _first_non_finite(losses: Losses) -> tuple[str, float] | None:
    items = losses.items() if isinstance(losses, Mapping) else (("loss", losses),)
    for key, value in items:
        value = float(value)
        if not math.isfinite(value):
            return key, value
    return None


def run_loop(
    step_fn: Callable[[int], Losses],
    state: TrainState,
    total: int,
    *,
    checkpoint: Checkpoint | None = None,
    every: int = 1,
    check_finite: bool = True,
    name: str = "training",
    unit: str = "step",
    hint: str = "try a smaller lr",
    progress: bool = False,
    desc: str | None = None,
    postfix_every: int = 1,
    on_step: Callable[[TrainState, Losses], None] | None = None,
) -> TrainState:
    """Run ``step_fn`` for steps ``state.step, ..., total - 1`` (module docstring).

    Parameters
    ----------
    step_fn : callable
        ``step_fn(t)`` does step t (0-based) and returns its loss: a float when
        ``state.history`` is a list, a dict with the history's keys when it is a dict.
    state : TrainState
        Advanced in place; after a resume it holds the checkpoint's step, history and
        RNG states.
    total : int
        Steps of the whole run (a resumed run continues up to it).
    checkpoint : Checkpoint, optional
        Resumed from when its file exists; written every ``every`` steps and after the
        last one.
    every : int
        Steps between checkpoints.
    check_finite : bool
        Raise ``FloatingPointError`` on a NaN or infinite loss, before recording it:
        ``"<name> diverged at <unit> <t + 1> (<loss> = <value>); <hint>"``. The last
        checkpoint written is then that of the last finite step.
    name, unit, hint : str
        Words of the divergence message (e.g. ``"GAN training"``, ``"iteration"``).
    progress : bool
        Show a tqdm bar over the steps, labelled ``desc``, with the losses every
        ``postfix_every`` steps.
    on_step : callable, optional
        ``on_step(state, losses)`` after each recorded step (before its checkpoint).

    Returns
    -------
    TrainState
        ``state``, with ``state.step == total``.
    """
    if not callable(step_fn):
        raise TypeError(f"step_fn must be callable, got {type(step_fn).__name__}")
    if not isinstance(state, TrainState):
        raise TypeError(f"state must be an aeot.core.TrainState, got {type(state).__name__}")
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        raise TypeError(
            f"checkpoint must be an aeot.core.Checkpoint, got {type(checkpoint).__name__}"
        )
    total = check_positive_int(total, "total")
    every = check_positive_int(every, "every")
    postfix_every = check_positive_int(postfix_every, "postfix_every")
    if checkpoint is not None:
        checkpoint.resume(state, total=total)
    if state.step > total:
        raise ValueError(f"the run is already at {unit} {state.step}, beyond {unit}s={total}")

    bar = tqdm(
        range(state.step, total),
        initial=state.step,
        total=total,
        disable=not progress,
        desc=desc,
        leave=False,
    )
    try:
        for t in bar:
            losses = step_fn(t)
            if check_finite and (bad := _first_non_finite(losses)) is not None:
                raise FloatingPointError(
                    f"{name} diverged at {unit} {t + 1} ({bad[0]} = {bad[1]}); {hint}"
                )
            state.record(losses)
            done = state.step
            if progress and (done % postfix_every == 0 or done == total):
                shown = losses.items() if isinstance(losses, Mapping) else (("loss", losses),)
                bar.set_postfix({k: f"{float(v):.4g}" for k, v in shown})
            if on_step is not None:
                on_step(state, losses)
            if checkpoint is not None and (done % every == 0 or done == total):
                checkpoint.save(state)
    finally:
        bar.close()
    return state
