"""Where AE-OT's Stacked MNIST mode imbalance (KL) comes from: OT, decoder, or mixing.

Loads an AE-OT model saved by ``bench_real_images.py --datasets stacked-mnist
--model-dir DIR`` and, on the same fresh source points, takes the KL(p_gen ‖
Uniform(1000)) of the 1000 digit-triple modes apart stage by stage:

- **OT**: the true modes (labels of the training images) of the cells the points fall in,
  and the OT cell masses summed by mode — is the map itself balanced over the modes?
- **graph**: the adjacent cells of the cell graph and of each point's two best cells — in
  how many do the two codes belong to one mode, and how many of the pairs that join two
  modes does the singular set flag?
- **copies**: the winners' own codes decoded and classified (the decoder's share).
- **pairwise**: the AE-OT reference code's rule, z = (1 − w) y_i + w y_j for the two best
  cells, at the weights given.
- **plain** / **default**: the PL extension without and with the sampler's spread.

Each generator row gives modes, KL, the share of samples whose classified triple is the
winner cell's true triple (and per channel), and with ``--nn`` the NN ratio (2,000
decoded samples against the training images, held-out test images as the reference
distance) and the share of codes equal to a training code. The OT cells are the sorted
distinct codes (``AEOT``'s targets), so a cell's mode is that of its code's image.

Example (after the real-images run saved the model)::

    .venv/bin/python benchmarks/bench_stacked_modes.py --model-dir DIR --nn \\
        --parts ot graph copies pairwise plain default --pair-weights 0.1 0.25 0.5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aeot.data.digits import stacked_mode_ids
from aeot.evaluation.features import mnist_classifier
from aeot.generate.sampler import generation_seed
from aeot.metrics.memorisation import memorisation
from aeot.metrics.modes import (
    classify_stacked,
    kl_to_uniform,
    stacked_mode_metrics,
)
from aeot.pipeline import AEOT
from bench_real_images import stacked_mnist

PARTS = ("ot", "graph", "copies", "pairwise", "plain", "default")
N_NN = 2000  # samples per NN ratio, as bench_real_images.py's N_MEMORISATION


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--n", type=int, default=26000, help="samples per row")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--pair-weights", type=float, nargs="+", default=[0.25])
    parser.add_argument("--nn", action="store_true", help="also NN ratio and code copies")
    parser.add_argument("--seed", type=int, default=0, help="the fit's and the draw's seed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="JSON of the rows")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    train, reference = stacked_mnist(128000, args.seed)
    heldout = reference.x[:N_NN]
    aeot = AEOT.load(args.model_dir / "stacked-mnist-aeot", device="cpu")
    clf = mnist_classifier(None, device="cpu")
    res, sampler = aeot.ot_, aeot.sampler_
    y = res.targets
    distinct, inverse = torch.unique(aeot.codes_.to(y.dtype), dim=0, return_inverse=True)
    if not torch.equal(distinct, y):
        raise SystemExit("the OT targets are not the model's distinct codes")
    labels = torch.empty(len(y), 3, dtype=torch.long)  # each cell's digit triple
    labels[inverse] = train.labels
    mode = stacked_mode_ids(labels).numpy()
    out: dict = {"model": str(args.model_dir), "n": args.n, "ot_error": res.error, "rows": []}
    _log(f"loaded: OT error {res.error:.3f}, singular rule {sampler.singular_.rule}")

    x = res.problem.source.sample(
        args.n, seed=generation_seed(args.seed), qmc=True, dtype=y.dtype
    )  # the points AEOT.sample_codes(n, seed) draws
    winners = res.assign(x).numpy()

    def row(name: str, codes: torch.Tensor, **extra) -> None:
        images = aeot.decode(codes)
        pred = classify_stacked(clf, images)
        stats = stacked_mode_metrics(pred)
        r = {"rule": name, "modes": stats["modes"], "kl": stats["kl"]}
        r["winner_mode_kept"] = float((stacked_mode_ids(pred).numpy() == mode[winners]).mean())
        kept = (pred.numpy() == labels[winners].numpy()).mean(0)
        r["winner_digit_kept"] = [round(float(v), 4) for v in kept]
        if args.nn:
            r["nn_ratio"] = memorisation(images[:N_NN], train.x, heldout).nn_ratio
            r["code_copies"] = memorisation(codes[:N_NN], y, aeot.encode(heldout)).copy_fraction
        r.update(extra)
        out["rows"].append(r)
        _log(json.dumps(r))

    if "ot" in args.parts:
        picks = np.random.default_rng(5).integers(0, len(y), args.n)
        n_mass = 20 * args.n
        masses = res.measure_masses(n_mass, qmc=True).numpy()  # the cells' μ(W_i)
        out["ot"] = {
            "kl_true_modes_of_winners": kl_to_uniform(np.bincount(mode[winners], minlength=1000)),
            "kl_true_modes_of_uniform_cell_picks": kl_to_uniform(
                np.bincount(mode[picks], minlength=1000)
            ),
            "kl_ot_mass_by_mode": kl_to_uniform(np.bincount(mode, weights=masses, minlength=1000)),
            "kl_training_share_by_mode": kl_to_uniform(np.bincount(mode, minlength=1000)),
            "cell_mass_l1": float(np.abs(masses - res.problem.weights.numpy()).sum()),
            "mass_points": n_mass,
        }
        _log(f"OT: {out['ot']}")
    if "graph" in args.parts:
        pairs = sampler.graph_.pairs
        two = mode[pairs[:, 0].numpy()] != mode[pairs[:, 1].numpy()]
        differing = (labels[pairs[:, 0]] != labels[pairs[:, 1]]).sum(1).numpy()
        flagged = sampler.singular_.singular.numpy()
        top2 = res.topk(x, 2)[1].numpy()
        out["graph"] = {
            "adjacent_pairs": len(pairs),
            "share_joining_two_modes": float(two.mean()),
            "share_by_channels_differing": (np.bincount(differing, minlength=4) / len(pairs))
            .round(4)
            .tolist(),
            "share_flagged_singular": float(flagged.mean()),
            "precision": float(two[flagged].mean()) if flagged.any() else None,
            "recall": float(flagged[two].mean()),
            "top2_cells_in_one_mode": float((mode[top2[:, 0]] == mode[top2[:, 1]]).mean()),
        }
        _log(f"graph: {out['graph']}")
    if "copies" in args.parts:
        row("winners' codes (copies)", y[torch.from_numpy(winners)])
    if "pairwise" in args.parts:
        for w in args.pair_weights:
            sampler.pair_weight = w
            gen = sampler.generate(x, method="pairwise")
            mixed = float((gen.weights[:, 1] > 0).double().mean())
            row(f"pairwise w = {w}", gen.codes, mixed_share=mixed)
    if "plain" in args.parts:
        gen = sampler.generate(x, spread=False)
        row("plain PL extension", gen.codes, cells_mixed=float(gen.n_mixed.double().mean()))
    if "default" in args.parts:
        gen = sampler.generate(x, seed=args.seed)
        row("default (PL extension and spread)", gen.codes)
    if args.out is not None:
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
