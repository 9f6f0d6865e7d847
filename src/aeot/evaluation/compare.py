"""Compare generative models (:func:`compare`): fit every model for every seed, sample,
score (:func:`aeot.evaluation.scoring.evaluate_samples`) and aggregate mean ± std.

A model with a ``reconstruct(x)`` method (AE-OT) also gets a *reconstruction* row, its
autoencoder's reconstructions of real data scored the same way — the ceiling any sampler
in that latent space can reach. Any object with ``fit(dataset) -> self`` and
``sample(n, seed=...) -> tensor`` is a model here (:mod:`aeot.models`).
"""

from __future__ import annotations

import copy
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import clone as sklearn_clone

from aeot._validation import check_positive_int
from aeot.data.dataset import Dataset, make_rng
from aeot.evaluation.features import default_feature_extractor
from aeot.evaluation.scoring import evaluate_samples

__all__ = ["compare"]


# Keys that are bookkeeping, not metrics (never averaged).
_META_KEYS = ("model", "kind", "n_seeds", "seeds", "per_seed", "n_samples", "dataset")


def _seeded(model, seed: int):
    """A fresh, unfitted copy of ``model`` whose training seed is ``seed``.

    A factory (callable without ``fit``) is called as ``model(seed)``. An estimator
    (``get_params``: every aeot model, any scikit-learn one) is cloned with
    :func:`sklearn.base.clone` and given ``seed`` (or ``random_state``) by
    ``set_params``; a ``checkpoint_path`` parameter gets a ``-seed<k>`` suffix so runs
    never share a checkpoint. Any other object is deep-copied and its ``seed``
    attribute set, or, without one, a warning says that only the sampling seed changes.
    """
    if callable(model) and not hasattr(model, "fit"):
        return model(seed)
    if callable(getattr(model, "get_params", None)):
        new = sklearn_clone(model)
        params = new.get_params(deep=False)
        updates: dict[str, Any] = {}
        for name in ("seed", "random_state"):
            if name in params:
                updates[name] = seed
        if params.get("checkpoint_path") is not None:
            path = Path(params["checkpoint_path"])
            updates["checkpoint_path"] = str(path.with_name(f"{path.stem}-seed{seed}{path.suffix}"))
        if updates:
            new.set_params(**updates)
        if "seed" in updates or "random_state" in updates:
            return new
    else:
        new = copy.deepcopy(model)
        if hasattr(new, "seed") and not callable(new.seed):
            new.seed = seed
            return new
    warnings.warn(
        f"cannot set the training seed of {type(model).__name__}; "
        "only the sampling seed changes between seeds",
        stacklevel=3,
    )
    return new


def _aggregate(name: str, kind: str, runs: list[dict[str, float]], seeds) -> dict[str, Any]:
    row: dict[str, Any] = {"model": name, "kind": kind, "n_seeds": len(runs), "seeds": list(seeds)}
    keys: list[str] = []
    for run in runs:
        keys += [key for key in run if key not in keys]
    for key in keys:
        values = np.array([run.get(key, math.nan) for run in runs], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            row[key] = float(values.mean())
            row[f"{key}_std"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
    row["per_seed"] = [dict(run) for run in runs]
    return row


def compare(
    models: Mapping[str, Any],
    dataset: Dataset,
    *,
    n_samples: int,
    seeds: Sequence[int] = (0,),
    reference: Dataset | None = None,
    feature_extractor=None,
    cache_dir: str | os.PathLike | None = None,
    include_data: bool = False,
    verbose: bool = False,
    **eval_kwargs: Any,
) -> list[dict[str, Any]]:
    """Fit, sample and score every model for every seed; aggregate mean ± std.

    For each seed s and model: ``est = fresh copy with training seed s``,
    ``est.fit(dataset)``, ``x = est.sample(n_samples, seed=s)``, then
    :func:`evaluate_samples` (``reference``, x). If ``est`` has ``reconstruct(x)`` the
    reconstructions of ``n_samples`` real training points (a seeded random subset) are
    scored too, as the row ``"<name> (reconstruction)"``.

    Parameters
    ----------
    models : dict name -> model
        Unfitted models (``fit`` / ``sample``), e.g. :class:`aeot.models.GANBaseline`
        or :class:`aeot.models.AEOT`, or factories ``seed -> model``. An estimator is
        cloned per seed (:func:`sklearn.base.clone`) with its ``seed`` parameter set to
        the seed; a ``checkpoint_path`` parameter gets a ``-seed<s>`` suffix.
    dataset : Dataset
        Training data.
    n_samples : int
        Samples generated (and reconstructions scored) per model and seed.
    seeds : sequence of int
        Training / sampling seeds.
    reference : Dataset, optional
        Real data to score against (e.g. a held-out split); default ``dataset``.
    feature_extractor, cache_dir
        See :func:`evaluate_samples`; the default extractor is built once.
    include_data : bool
        Add a ``"data"`` row: ``n_samples`` real training points scored against
        ``reference`` (the best achievable values at this sample size). Pass a
        held-out ``reference``: against the training set itself these points are a
        subset of the reference and precision/recall are trivially 1.
    verbose : bool
        Print a line per fitted model.
    **eval_kwargs
        Passed on to :func:`evaluate_samples` (``max_real``, ``max_pr``, ``k``, ...).

    Returns
    -------
    list of dict
        One row per model (then its reconstruction row): ``model``, ``kind``
        (``"model"``, ``"reconstruction"`` or ``"data"``), ``n_seeds``, ``seeds``, each
        metric as its mean over seeds with ``<metric>_std`` (sample std, 0 for one
        seed), ``fit_seconds`` / ``sample_seconds``, and ``per_seed`` (the raw dicts).
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be an aeot.data.Dataset, got {type(dataset).__name__}")
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty dict of name -> model")
    n_samples = check_positive_int(n_samples, "n_samples")
    seeds = [check_positive_int(int(s), "seed", minimum=0) for s in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    reference = dataset if reference is None else reference
    if not isinstance(reference, Dataset):
        raise TypeError(f"reference must be an aeot.data.Dataset, got {type(reference).__name__}")
    if feature_extractor is None and reference.kind == "image":
        feature_extractor = default_feature_extractor(reference, cache_dir)

    def score(samples, seed: int) -> dict[str, float]:
        return evaluate_samples(
            reference, samples, feature_extractor=feature_extractor, seed=seed, **eval_kwargs
        )

    rows: list[dict[str, Any]] = []
    if include_data:
        runs = []
        for seed in seeds:
            idx = make_rng(seed).choice(
                len(dataset), size=min(n_samples, len(dataset)), replace=False
            )
            runs.append(score(dataset.x[torch.from_numpy(idx)], seed))
        rows.append(_aggregate("data", "data", runs, seeds))

    for name, model in models.items():
        runs, recon_runs = [], []
        for seed in seeds:
            est = _seeded(model, seed)
            t0 = time.perf_counter()
            fitted = est.fit(dataset)
            est = fitted if fitted is not None else est
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            samples = torch.as_tensor(est.sample(n_samples, seed=seed))
            sample_s = time.perf_counter() - t0
            result = score(samples, seed)
            result["fit_seconds"], result["sample_seconds"] = fit_s, sample_s
            runs.append(result)
            if callable(getattr(est, "reconstruct", None)):
                idx = make_rng(seed + 10_000).choice(
                    len(dataset), size=min(n_samples, len(dataset)), replace=False
                )
                with torch.no_grad():
                    recon = torch.as_tensor(est.reconstruct(dataset.x[torch.from_numpy(idx)]))
                recon_runs.append(score(recon.detach().cpu(), seed))
            if verbose:
                shown = {
                    key: round(v, 4)
                    for key, v in result.items()
                    if key in ("modes", "high_quality_pct", "kl", "precision", "recall")
                    or key.startswith(("FD-", "FID"))
                }
                print(f"[compare] {name} seed={seed} fit {fit_s:.1f}s {shown}", flush=True)
        rows.append(_aggregate(name, "model", runs, seeds))
        if recon_runs:
            rows.append(_aggregate(f"{name} (reconstruction)", "reconstruction", recon_runs, seeds))
    return rows
