"""Named mode-collapse experiments: AE-OT against GAN, WGAN-GP and VAE.

Three experiments follow the protocols of VEEGAN (Srivastava et al. 2017) and PacGAN
(Lin, Khetan, Fanti & Oh 2018), as in the talk "A Geometric Understanding of Deep
Learning" (Gu) and AE-OT (An et al., ICLR 2020):

``"grid25"``
    25 Gaussians on the grid {−4, −2, 0, 2, 4}², σ = 0.05; 5,000 training points,
    2,500 generated samples per model and seed, 3 seeds. Metrics: modes covered (a
    mode counts when a sample lies within 3σ of its centre), the percentage of
    high-quality samples (within 3σ of the nearest centre), KL(p_gen ‖ Uniform(25)) of
    the mode histogram, k-NN precision / recall and the Fréchet distance in data space.
``"ring8"``
    8 Gaussians evenly spaced on the unit circle (radius 1, as in
    :func:`aeot.data.ring_mixture`), σ = 0.01; same sizes and metrics.
``"stacked-digits"``
    Stacked digits (Metz et al. 2017) built from scikit-learn's embedded 8×8 digits:
    three random digits stacked as the channels of a 3×8×8 image, 50,000 training
    images, 26,000 generated samples, 1 seed. Every channel is classified by the
    1-channel digit classifier of :func:`aeot.evaluation.features.digit_classifier`, giving a
    mode out of 1000 = 10³; reported are the modes covered, KL(p_gen ‖ Uniform(1000))
    (natural log), and the Fréchet distance / precision / recall in the classifier's
    feature space (each channel's features, concatenated).

Every model gets the *same latent size* (2 on the mixtures, where AE-OT runs its OT
in data space with the identity autoencoder; :data:`STACKED_LATENT` on stacked
digits). Budgets: on the mixtures the baselines train for 10–25× AE-OT's wall time
(GAN 4,000 and WGAN-GP 1,500 generator steps, VAE 4,000 steps, batch 256); on stacked
digits GAN and VAE take 30,000 steps and WGAN-GP 8,000 generator steps (40,000 critic
steps), batch 64 — 1.5–4 minutes each on 2 CPU cores, less than AE-OT, whose
semi-discrete OT solve dominates its fit. Baseline settings that give them a fair
chance:

* WGAN-GP uses λ = 0.1 on the 2D mixtures — the value of the authors' own 2D toy code;
  with the image default λ = 10 its critic lags on tight mixtures — and λ = 10 on
  images;
* the VAE uses β = 0.05 on the 2D mixtures (with β = 1 the posterior blurs the modes
  together) and β = 1 with a Bernoulli likelihood on images;
* the GAN uses the DCGAN optimiser Adam(2e-4, β = (0.5, 0.999)).

Scores are taken against a *held-out* draw of the same distribution (a fresh mixture
sample / a fresh stacked draw), so that a model which reproduces its training points
does not get trivially perfect precision / recall. Every table also has two reference
rows:

* ``"data"`` — ``n_samples`` real training points scored the same way (what a perfect
  sampler of the training set reaches at this sample size; for stacked digits its
  KL is the imbalance of a random 50,000-image training set, ≈ 0.01);
* ``"AE-OT (reconstruction)"`` — the autoencoder's reconstructions of real training
  images scored the same way: the ceiling of any sampler in that latent space (on the
  mixtures the autoencoder is the identity, so this row is real data too).

:func:`run_experiment` runs one experiment over seeds with :func:`aeot.evaluation.compare.compare`
and optionally writes ``<name>.json`` / ``<name>.md``; :func:`aeot.cli.compare.compare`
is the command-line entry (``aeot compare``) that runs one or all and prints the tables.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aeot._io import atomic_write, save_json
from aeot.baselines import GANBaseline, VAEBaseline, WGANGPBaseline
from aeot.data import grid_mixture, load_digits8, ring_mixture, stacked_digits
from aeot.data.dataset import Dataset
from aeot.evaluation.compare import compare as compare_models
from aeot.evaluation.tables import _jsonable, modes_cell, render_table
from aeot.pipeline import AEOT

__all__ = [
    "EXPERIMENTS",
    "STACKED_LATENT",
    "STACKED_N_TRAIN",
    "STACKED_OT_MAX_ITER",
    "STACKED_OT_TOL",
    "STACKED_THRESHOLD",
    "Experiment",
    "build_experiment",
    "format_summary",
    "machine_info",
    "run_experiment",
    "write_experiment",
]

#: Names of the experiments, in the order ``"all"`` runs them.
EXPERIMENTS: tuple[str, ...] = ("grid25", "ring8", "stacked-digits")

#: Latent size of every model on stacked digits (AE-OT's code, the baselines' prior).
STACKED_LATENT = 24

#: Training images on stacked digits. A random training set is itself KL ≈ 999 / (2n)
#: from Uniform(1000) (0.022 at 25,000), and 26,000 draws from it add ≈ 0.019 more: at
#: 50,000 images a sampler that reproduces its training set exactly scores ≈ 0.03,
#: leaving room under the 0.05 goal for the OT and classifier errors.
STACKED_N_TRAIN = 50_000

#: AE-OT's OT settings on stacked digits. The Monte-Carlo Newton solver (50,000 codes
#: in 24 dimensions) goes from an L1 cell-mass error of 1.28 to ≈ 0.5 in five iterations
#: and then levels off, while the batch keeps growing (to 2^22 samples); the iteration
#: cap bounds the time, and the remaining error averages out over the ≈ 50 cells of each
#: of the 1000 modes. See docs/MODE_COLLAPSE.md.
STACKED_OT_TOL = 0.1
STACKED_OT_MAX_ITER = 14

#: Singular dihedral angle (radians, normalised codes) on stacked digits. In 24
#: dimensions the angles of adjacent cells show no gap (median ≈ 0.66; pairs of cells
#: with the same digit triple: median ≈ 0.47, pairs differing in one or more digits:
#: 0.58–0.77), so the data-driven rule falls back to min(5 × median, π) = π and marks
#: nothing singular; the PL extension then blends codes of different digit triples.
#: 0.45 marks ≈ 94 % of the sampled facets singular, which keeps blends to cells of
#: nearly the same code (≈ 1.04 cells per generated code).
STACKED_THRESHOLD = 0.45


@dataclass
class Experiment:
    """Everything one experiment needs: data, models and how many samples to score.

    Attributes
    ----------
    name : str
        One of :data:`EXPERIMENTS`.
    title : str
        One line describing the setup (used as the Markdown heading).
    dataset : Dataset
        Training data.
    reference : Dataset
        Held-out data the samples are scored against.
    models : dict of str -> model
        Unfitted estimators (``fit`` / ``sample``), keyed by table name; AE-OT first.
    n_samples : int
        Samples generated (and reconstructions scored) per model and seed.
    seeds : tuple of int
        Default training / sampling seeds.
    settings : dict
        JSON-friendly description of data and model settings (written with the results).
    notes : list of str
        Remarks printed under the table (fairness settings, caveats).
    """

    name: str
    title: str
    dataset: Dataset
    reference: Dataset
    models: dict[str, Any]
    n_samples: int
    seeds: tuple[int, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------- definitions


def _mixture(name: str, *, quick: bool, device: str | None) -> Experiment:
    make: Callable[..., Dataset] = grid_mixture if name == "grid25" else ring_mixture
    n_train = 1000 if quick else 5000
    n_ref = 1000 if quick else 5000
    dataset = make(n_train, seed=0)
    reference = make(n_ref, seed=1)
    if quick:
        budget = {"gan": 30, "wgan": 10, "vae": 50}
    else:
        budget = {"gan": 4000, "wgan": 1500, "vae": 4000}
    common = {
        "latent_dim": 2,
        "hidden": (128, 128, 128),
        "batch_size": 256,
        "device": device,
        "progress": False,
    }
    aeot = {"autoencoder": "identity", "latent_dim": 2, "device": device, "progress": False}
    gan = {**common, "iterations": budget["gan"]}
    wgan = {**common, "iterations": budget["wgan"], "gp_weight": 0.1}
    vae = {**common, "iterations": budget["vae"], "beta": 0.05}
    models = {
        "AE-OT": AEOT(**aeot),
        "GAN": GANBaseline(**gan),
        "WGAN-GP": WGANGPBaseline(**wgan),
        "VAE": VAEBaseline(**vae),
    }
    what = (
        "25 Gaussians on the 5×5 grid {-4,-2,0,2,4}², σ = 0.05"
        if name == "grid25"
        else "8 Gaussians on the unit circle, σ = 0.01"
    )
    n_samples = 500 if quick else 2500
    return Experiment(
        name=name,
        title=f"{name}: {what}; {n_train} training points, {n_samples} samples per model",
        dataset=dataset,
        reference=reference,
        models=models,
        n_samples=n_samples,
        seeds=(0, 1, 2),
        settings={
            "data": {"n_train": n_train, "n_reference": n_ref, "train_seed": 0, "ref_seed": 1},
            "AE-OT": aeot,
            "GAN": _plain(gan),
            "WGAN-GP": _plain(wgan),
            "VAE": _plain(vae),
        },
        notes=[
            "AE-OT: identity autoencoder (OT in data space; latent size 2 = the baselines').",
            "Baselines: MLPs with three hidden layers of 128 units (PacGAN 2D), batch 256, "
            "latent N(0, I_2).",
            "WGAN-GP λ = 0.1 (the authors' 2D toy setting; λ = 10 fails on tight mixtures); "
            "VAE β = 0.05.",
        ],
    )


def _stacked(*, quick: bool, device: str | None) -> Experiment:
    base = load_digits8()
    n_train = 2000 if quick else STACKED_N_TRAIN
    n_ref = 2000 if quick else 10000
    n_samples = 1000 if quick else 26000
    latent = 8 if quick else STACKED_LATENT
    dataset = stacked_digits(base, n_train, seed=0)
    reference = stacked_digits(base, n_ref, seed=1)
    aeot = {
        "autoencoder": "mlp",
        "latent_dim": latent,
        "hidden": (64,) if quick else (512, 256),
        "epochs": 2 if quick else 30,
        "batch_size": 128,
        "loss": "bce",
        "ot_tol": 0.5 if quick else STACKED_OT_TOL,
        "ot_max_iter": 3 if quick else STACKED_OT_MAX_ITER,
        "threshold": None if quick else STACKED_THRESHOLD,
        "n_graph_samples": 2**12 if quick else 2**17,
        "device": device,
        "progress": False,
    }
    common = {
        "latent_dim": latent,
        "architecture": "conv",
        "conv_width": 8 if quick else 32,
        "batch_size": 64,
        "device": device,
        "progress": False,
    }
    if quick:
        budget = {"gan": 5, "wgan": 3, "vae": 10}
    else:
        budget = {"gan": 30000, "wgan": 8000, "vae": 30000}
    gan = {**common, "iterations": budget["gan"]}
    wgan = {**common, "iterations": budget["wgan"]}
    vae = {**common, "iterations": budget["vae"]}
    models = {
        "AE-OT": AEOT(**aeot),
        "GAN": GANBaseline(**gan),
        "WGAN-GP": WGANGPBaseline(**wgan),
        "VAE": VAEBaseline(**vae),
    }
    return Experiment(
        name="stacked-digits",
        title=(
            f"stacked-digits: 3 random 8×8 digits as RGB channels (1000 modes); {n_train} "
            f"training images, {n_samples} samples per model, latent size {latent}"
        ),
        dataset=dataset,
        reference=reference,
        models=models,
        n_samples=n_samples,
        seeds=(0,),
        settings={
            "data": {"n_train": n_train, "n_reference": n_ref, "train_seed": 0, "ref_seed": 1},
            "AE-OT": _plain(aeot),
            "GAN": _plain(gan),
            "WGAN-GP": _plain(wgan),
            "VAE": _plain(vae),
        },
        notes=[
            f"Same latent size {latent} for all models. AE-OT: MLP autoencoder "
            f"{_plain(aeot)['hidden']}, BCE loss; baselines: DCGAN-style conv networks.",
            "AE-OT OT solve capped at "
            f"{aeot['ot_max_iter']} Monte-Carlo Newton iterations (tol {aeot['ot_tol']}); "
            f"singular threshold {aeot['threshold']} rad (the data-driven rule finds no gap "
            "in 24 dimensions and marks nothing singular).",
            "Modes and KL(p_gen ‖ Uniform(1000)) from the per-channel digit classifier; FD, "
            "precision and recall in its feature space (3 channels concatenated).",
        ],
    )


def _plain(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}


def build_experiment(name: str, *, quick: bool = False, device: str | None = None) -> Experiment:
    """The data, models and sample count of a named experiment.

    Parameters
    ----------
    name : str
        One of :data:`EXPERIMENTS`.
    quick : bool
        Tiny data and budgets (tests, CI smoke runs); the numbers mean nothing.
    device : str, optional
        torch device of every model (default: CUDA when available).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if name in ("grid25", "ring8"):
        return _mixture(name, quick=quick, device=device)
    if name == "stacked-digits":
        return _stacked(quick=quick, device=device)
    raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")


# ------------------------------------------------------------------------------ running


def _seed_list(seeds: int | Sequence[int] | None, default: Sequence[int]) -> list[int]:
    if seeds is None:
        return list(default)
    if isinstance(seeds, bool):
        raise TypeError("seeds must be a number of seeds or a sequence of seeds")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be at least 1, got {seeds}")
        return list(range(seeds))
    out = [int(s) for s in seeds]
    if not out or min(out) < 0:
        raise ValueError(f"seeds must be non-empty and non-negative, got {seeds!r}")
    return out


def _fd_key(rows: Sequence[Mapping[str, Any]]) -> str | None:
    for row in rows:
        for key in row:
            if key.startswith("FD-") and not key.endswith("_std"):
                return key
    return None


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    """Add ``<metric>_ratio_to_reconstruction`` to every model row that has a reference row."""
    by_name = {row["model"]: row for row in rows}
    fd = _fd_key(rows)
    for row in rows:
        ref = by_name.get(f"{row['model']} (reconstruction)")
        if ref is None:
            continue
        for key in (fd, "precision", "recall"):
            if key is None or key not in row or key not in ref:
                continue
            num, den = float(row[key]), float(ref[key])
            ratio = num / den if den > 0 and math.isfinite(den) else math.nan
            row[f"{key}_ratio_to_reconstruction"] = ratio


def machine_info() -> dict[str, Any]:
    """Where a run happened: host, CPU count, torch threads and version, date (UTC)."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def run_experiment(
    name: str,
    *,
    seeds: int | Sequence[int] | None = None,
    quick: bool = False,
    out_dir: str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """Fit, sample and score every model of a named experiment over seeds.

    Parameters
    ----------
    name : str
        One of :data:`EXPERIMENTS`.
    seeds : int or sequence of int, optional
        A number of seeds (``0 .. seeds − 1``) or the seeds themselves; default the
        experiment's (3 seeds on the mixtures, 1 on stacked digits).
    quick : bool
        Tiny data and budgets (smoke test).
    out_dir : path-like, optional
        Folder for ``<name>.json`` (rows, settings, machine, timing) and ``<name>.md``
        (the summary table); nothing is written when omitted.
    device : str, optional
        torch device of every model.
    progress : bool
        Print a line per fitted model and seed.
    cache_dir : path-like, optional
        Cache of the digit classifier (default :func:`aeot.evaluation.features.default_cache_dir`).

    Returns
    -------
    list of dict
        The rows of :func:`aeot.evaluation.compare.compare` — ``"data"``, then each model, AE-OT
        followed by ``"AE-OT (reconstruction)"`` — each with an ``"experiment"`` key;
        model rows with a reconstruction reference also get
        ``<FD key>_ratio_to_reconstruction`` (and the same for precision / recall).

    Raises
    ------
    ValueError
        For an unknown experiment name or invalid seeds.
    """
    spec = build_experiment(name, quick=quick, device=device)
    seed_list = _seed_list(seeds, spec.seeds)
    start = time.perf_counter()
    rows = compare_models(
        spec.models,
        spec.dataset,
        n_samples=spec.n_samples,
        seeds=seed_list,
        reference=spec.reference,
        cache_dir=cache_dir,
        include_data=True,
        verbose=progress,
    )
    elapsed = time.perf_counter() - start
    for row in rows:
        row["experiment"] = spec.name
    _add_ratios(rows)
    if out_dir is not None:
        write_experiment(spec, rows, out_dir, seeds=seed_list, elapsed=elapsed, quick=quick)
    return rows


def write_experiment(
    spec: Experiment,
    rows: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    *,
    seeds: Sequence[int],
    elapsed: float,
    quick: bool = False,
) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.json`` and ``<out_dir>/<name>.md`` (atomically).

    The JSON holds ``experiment``, ``title``, ``quick``, ``seeds``, ``n_samples``,
    ``settings``, ``machine``, ``elapsed_seconds`` and ``rows``; the Markdown the
    title, the summary table (:func:`format_summary`) and the notes.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "experiment": spec.name,
        "title": spec.title,
        "quick": bool(quick),
        "seeds": list(seeds),
        "n_samples": spec.n_samples,
        "settings": spec.settings,
        "machine": machine_info(),
        "elapsed_seconds": float(elapsed),
        "rows": _jsonable(list(rows)),
    }
    path_json = folder / f"{spec.name}.json"
    path_md = folder / f"{spec.name}.md"
    save_json(path_json, payload)
    text = (
        f"# {spec.title}\n\nseeds {list(seeds)}; {elapsed:.0f} s"
        + (" (quick budgets)" if quick else "")
        + "\n\n"
        + format_summary(rows, markdown=True)
        + "\n"
        + "".join(f"- {note}\n" for note in spec.notes)
    )
    atomic_write(path_md, lambda tmp: tmp.write_text(text))
    return path_json, path_md


# ------------------------------------------------------------------------------- tables


def _num(
    row: Mapping[str, Any], key: str, digits: int, *, std: bool = True, significant: bool = False
) -> str:
    """``mean ± std`` of a row entry: ``digits`` decimals, or significant digits."""
    if key not in row:
        return "-"
    value = float(row[key])
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf"
    spec = f".{digits}g" if significant else f".{digits}f"
    text = format(value, spec)
    spread = row.get(f"{key}_std")
    if std and spread is not None and math.isfinite(float(spread)) and float(spread) > 0:
        text += " ± " + format(float(spread), ".2g" if significant else spec)
    return text


def format_summary(rows: Sequence[Mapping[str, Any]], *, markdown: bool = False) -> str:
    """The talk-like table: model, modes, KL, high-quality %, FD, precision, recall, fit time.

    The column ``FD ÷ recon`` is a model's Fréchet distance divided by that of its
    autoencoder's reconstructions (AE-OT only); cells are mean ± std over seeds, the
    Fréchet distance with 3 significant digits (it is ~1e-4 on the ring).
    """
    rows = list(rows)
    fd = _fd_key(rows)
    header = ["model", "modes", "KL", "high-quality %"]
    header += [fd or "FD", "FD ÷ recon", "precision", "recall", "fit s"]
    table: list[list[str]] = []
    for row in rows:
        modes = modes_cell(row, _num)
        ratio = "-"
        if fd is not None and f"{fd}_ratio_to_reconstruction" in row:
            ratio = _num(row, f"{fd}_ratio_to_reconstruction", 2, std=False) + "×"
        table.append(
            [
                str(row.get("model", "?")),
                modes,
                _num(row, "kl", 4),
                _num(row, "high_quality_pct", 1),
                _num(row, fd, 3, significant=True) if fd is not None else "-",
                ratio,
                _num(row, "precision", 3),
                _num(row, "recall", 3),
                _num(row, "fit_seconds", 1, std=False),
            ]
        )
    return render_table(header, table, markdown=markdown)


# -------------------------------------------------------------------------- the command


# printed above every --quick table: its budgets only check that the pipeline runs
QUICK_WARNING = (
    "--quick: smoke-test budgets (every model trained for a small fraction of its "
    "steps). These numbers show that the pipeline runs, not how well any model, the "
    "GAN baselines above all, can do; run without --quick to compare the models."
)
