"""The spread τ of AE-OT's sampler: novelty against quality, one fitted model per data set.

For each τ the sampler alone is re-fitted (``AEOTSampler(spread=τ)`` on the model's OT
solution, same graph samples and seed) and its samples are scored: the codes' median
distance to the nearest training code over that of encoded held-out images, the NN ratio
of the decoded images (:mod:`aeot.metrics.memorisation`), the classifier FD, precision and
recall (:func:`aeot.evaluation.evaluate_samples`), and on the 2D mixtures mode coverage and
high-quality share.

Data sets: ``digits`` (the model and split of ``aeot demo``; 1,527 samples, the 270
held-out images as reference), ``mnist`` / ``fashion-mnist`` (a model saved by
``bench_real_images.py --model-dir DIR``; 5,000 samples against the test split, NN ratio
on 2,000), ``grid25`` / ``ring8`` (identity autoencoder on 2,000 points).

Usage::

    python benchmarks/bench_spread.py digits grid25 ring8 --taus 0,0.8,0.9,1.0
    python benchmarks/bench_spread.py mnist --model-dir /tmp/models --taus 0,0.8,0.9,1.0
    python benchmarks/bench_spread.py mnist --model-dir /tmp/models --taus 0.85 --ranks 1,2,full
    python benchmarks/bench_spread.py mnist --model-dir /tmp/models --taus 0,0.92 --grid g.png
    python benchmarks/bench_spread.py mnist --model-dir /tmp/models --taus 0.82 --space data

``--grid PATH`` writes the first 32 decoded samples of every setting, four rows of eight
per setting in the order printed; all settings draw from the same seed, so the rows show
the same source points.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from aeot.evaluation import evaluate_samples
from aeot.evaluation.features import default_cache_dir
from aeot.generate import AEOTSampler
from aeot.metrics.memorisation import memorisation, nearest_distances
from aeot.pipeline import AEOT


def _model(name: str, model_dir: Path | None):
    """(model, training set, scoring reference, held-out images, samples per τ)."""
    if name == "digits":
        from aeot.data import load_digits8
        from aeot.demo import digits_aeot

        train, test = load_digits8().split(0.85, seed=0)
        model = digits_aeot(0, progress=False).fit(train)
        return model, train, train, test.x, len(train)
    if name in ("grid25", "ring8"):
        from aeot.data import grid_mixture, ring_mixture

        make = grid_mixture if name == "grid25" else ring_mixture
        train = make(2000, seed=0)
        model = AEOT(autoencoder="identity", seed=0, progress=False).fit(train)
        return model, train, train, make(2000, seed=3).x, 2000
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_real_images import BUDGETS, _data

    if model_dir is None:
        raise SystemExit(f"{name} needs --model-dir (a folder of bench_real_images.py)")
    train, reference, _ = _data(name, BUDGETS["reduced"], 0)
    model = AEOT.load(model_dir / f"{name}-aeot")
    return model, train, reference, reference.x[:2000], 5000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", nargs="+")
    parser.add_argument("--taus", default="0,0.8,0.9,1.0")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--neighbours", default="32", help="spread_neighbours, comma-separated")
    parser.add_argument(
        "--ranks", default="2", help="spread_rank, comma-separated ('full': every direction)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--space",
        choices=("latent", "data"),
        default="latent",
        help="where τ is measured (data: AEOT.calibrate_spread on the training images)",
    )
    parser.add_argument(
        "--grid", type=Path, default=None, help="PNG of 32 samples per setting (one data set)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    taus = [float(t) for t in args.taus.split(",")]
    if args.grid is not None and len(args.datasets) != 1:
        raise SystemExit("--grid takes one data set")
    shown = []
    for name in args.datasets:
        model, train, reference, heldout, n = _model(name, args.model_dir)
        clf = None  # digits: the default extractor (the cached 8x8 digit classifier)
        if name in ("mnist", "fashion-mnist"):
            # bench_real_images' classifier, not one trained on the reference set
            from bench_real_images import _classifier

            clf = _classifier(name, default_cache_dir(), "cpu")
        cfg = model.config
        targets = model.ot_.targets
        held_codes = model.encode(heldout).to(targets.dtype)
        m_h = float(nearest_distances(held_codes, targets).median())
        n_eval = min(n, len(reference)) if name not in ("digits",) else len(heldout)
        print(f"\n{name}: {targets.shape[0]} codes in d = {targets.shape[1]}", flush=True)
        recon = None
        if name not in ("grid25", "ring8"):
            # the yardstick of the FD ratio: reconstructions of n training images (as
            # bench_real_images scores them), and the decoder's own NN ratio: the
            # reconstructions of held-out images against the held-out images
            pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
            recon_scores = evaluate_samples(
                reference,
                model.reconstruct(train.x[pick[:n_eval]]),
                feature_extractor=clf,
                seed=0,
            )
            recon = next(float(v) for k, v in recon_scores.items() if k.startswith("FD"))
            recon_nn = memorisation(model.reconstruct(heldout[:2000]), train.x, heldout[:2000])
            print(
                f"reconstructions: FD {recon:.3f}, precision {recon_scores['precision']:.4f}; "
                f"held-out reconstructions' NN ratio {recon_nn.nn_ratio:.3f}",
                flush=True,
            )
        ranks = [None if r == "full" else int(r) for r in args.ranks.split(",")]
        grid = [(t, int(k), r) for r in ranks for k in args.neighbours.split(",") for t in taus]
        for tau, k, rank in grid:
            start = time.perf_counter()
            sampler = AEOTSampler(spread=tau, spread_neighbours=k, spread_rank=rank).fit(
                model.ot_,
                n_graph_samples=cfg.n_graph_samples,
                threshold=cfg.threshold,
                seed=cfg.seed,
            )
            if args.space == "data" and name not in ("grid25", "ring8"):
                model.sampler_ = sampler
                model.calibrate_spread(train)
            seconds = time.perf_counter() - start
            start = time.perf_counter()
            codes = sampler.sample(n, seed=1).codes
            sample_seconds = time.perf_counter() - start
            images = model.decode(codes)
            shown.append(images[:32])
            scores = evaluate_samples(reference, images[:n_eval], feature_extractor=clf, seed=0)
            keys = [k for k in scores if k.startswith("FD") or k in ("precision", "recall")]
            keys += [k for k in ("modes", "high_quality_pct", "kl") if k in scores]
            row = {k: round(float(scores[k]), 4) for k in keys}
            if recon is not None:
                fd = next(v for k, v in row.items() if k.startswith("FD"))
                row["FD ratio"] = round(fd / recon, 3)
            latent = float(nearest_distances(codes.to(targets.dtype), targets).median()) / m_h
            nn = memorisation(images[:2000], train.x, heldout[:2000]).nn_ratio
            print(
                f"tau={tau:g} ({args.space}) K={k} rank={rank or 'full'}: "
                f"scale {sampler.spread_scale_:.3f} (fit {seconds:.1f} s, "
                f"{n} samples {sample_seconds:.1f} s), "
                f"codes' NN distance / held-out codes' {latent:.3f}, NN ratio {nn:.3f}, {row}",
                flush=True,
            )
    if args.grid is not None and shown and shown[0].dim() == 4:
        from aeot.report.figures import save_image_grid

        print(f"grid: {save_image_grid(torch.cat(shown).clamp(0, 1), args.grid, ncol=8)}")


if __name__ == "__main__":
    main()
