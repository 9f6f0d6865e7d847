"""Does the singular set separate classes? Precision / recall of singular-facet rules.

For each data set the latent codes of an autoencoder are the targets of a semi-discrete
OT problem from the uniform cube; the adjacent cells of its power diagram are estimated
from source samples (:func:`aeot.generate.estimate_cell_graph`, the pipeline's 2^17
samples). A rule flags some of those adjacent pairs as singular; it is scored against
"the two codes carry different class labels" (the rules never see the labels):

* precision = flagged pairs that join two classes / flagged pairs,
* recall    = flagged pairs that join two classes / pairs that join two classes,
* F1, and the share of all pairs that are flagged.

Rules: ``old`` = ``detect_singular(rule="angle")`` (dihedral-angle gap, else 5 × median
angle), ``new`` = the default ``rule="auto"`` (the density-valley rule on latent codes).
Also per rule: the non-singular components (count, largest share of the codes, label
purity) and what the PL extension makes of it (``AEOTSampler().sample``, 10,000 codes):
the share of *blends* (at least 20 % of a code's weight on training codes whose label is
not its main one) and of *single-cell* codes (one training code repeated).
``--sensitivity`` scores the valley rule for k = 5, 10, 20 and density ratios 1/2, 1/4;
``--candidates`` the scores that were weighed against it (area under the ROC curve,
the best F1 over thresholds chosen *with* the labels, and the share of the single
Gaussian's pairs that threshold would flag).

Data sets: ``digits`` (the 8×8 digits of ``aeot demo``, fitted exactly as the demo does:
MLP 64→256→128→10, 150 epochs, the pipeline's OT), ``mnist`` and ``fashion-mnist``
(20,000 training images, MLP autoencoder 784→256→128→16, 15 epochs,
``solve_semidiscrete`` with default settings and ``--ot-time`` seconds), ``blob`` (3,000
codes of one Gaussian in d = 16: nothing should be flagged) and ``clusters`` (3,000 codes
of 12 Gaussians in d = 16). Fitted codes, OT solutions and cell graphs are cached under
``--cache`` (default /tmp/aeot-bench-singular): delete it to refit.

Usage::

    python benchmarks/bench_singular.py --candidates --sensitivity   # everything
    python benchmarks/bench_singular.py --datasets digits --ot-time 120
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from aeot.generate import detect_singular, estimate_cell_graph
from aeot.ot import BoxUniform, SemiDiscreteProblem, SemiDiscreteResult, solve_semidiscrete

DATASETS = ("digits", "mnist", "fashion-mnist", "blob", "clusters")
N_GRAPH_SAMPLES = 2**17  # AEOTConfig.n_graph_samples


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- fitting
def _fit_digits(seed: int):
    """The demo's digits model (src/aeot/demo.py, run_digits, quick=False)."""
    from aeot.data import load_digits8
    from aeot.demo import digits_aeot

    train, _ = load_digits8().split(0.85, seed=seed)
    # the graph is estimated below
    model = digits_aeot(seed, progress=False, n_graph_samples=2**10).fit(train)
    return model.codes_, train.labels, model.ot_


def _fit_images(name: str, seed: int, n_train: int, epochs: int, ot_time: float):
    """MLP autoencoder (latent 16) on n_train images; OT with default settings, time-limited."""
    from aeot.data import load_dataset
    from aeot.pipeline import AEOT

    split = "train+valid" if name == "mnist" else "train"
    data = load_dataset(name, split=split)
    idx = np.sort(np.random.default_rng(seed).choice(len(data), size=n_train, replace=False))
    train = data.subset(idx)
    model = AEOT(
        autoencoder="mlp",
        latent_dim=16,
        hidden=(256, 128),
        epochs=epochs,
        batch_size=64,
        loss="bce",
        ot_max_iter=1,  # solved below with a time limit
        seed=seed,
        progress=False,
        n_graph_samples=2**10,
    ).fit(train)
    return model.codes_, train.labels, _solve(model.codes_, seed, ot_time)


def _solve(codes: torch.Tensor, seed: int, ot_time: float) -> SemiDiscreteResult:
    """The pipeline's OT problem (distinct codes, U[-1,1]^d), default solver settings."""
    unique, counts = torch.unique(codes, dim=0, return_counts=True)
    problem = SemiDiscreteProblem(
        unique, counts.double() / counts.sum(), source=BoxUniform(unique.shape[1], -1.0, 1.0)
    )
    return solve_semidiscrete(problem, seed=seed, time_limit=ot_time)


def _fit_synthetic(name: str, seed: int, ot_time: float):
    """Codes without an autoencoder, rescaled into the cube as the pipeline does.

    ``blob``: 3,000 codes of one Gaussian in d = 16 (a single mode: nothing should be
    flagged). ``clusters``: 3,000 codes of 12 Gaussians in d = 16 with spreads 0.5–1.5
    and centres N(0, 18 I) (labels: the Gaussian).
    """
    from aeot.pipeline import _Normaliser

    rng = np.random.default_rng(seed)
    d, n = 16, 3000
    if name == "blob":
        codes = rng.standard_normal((n, d))
        labels = np.zeros(n, dtype=np.int64)
    else:
        k = 12
        centres = rng.standard_normal((k, d)) * 6.0 / np.sqrt(2.0)
        spread = rng.uniform(0.5, 1.5, k)
        labels = rng.integers(0, k, n)
        codes = centres[labels] + spread[labels, None] * rng.standard_normal((n, d))
    z = torch.as_tensor(codes)
    z = _Normaliser.fit(z).forward(z)
    return z, torch.as_tensor(labels), _solve(z, seed, ot_time)


def load_case(name: str, cache: Path, *, seed: int, n_train: int, epochs: int, ot_time: float):
    """Codes, heights and per-code labels of one data set (fitted once, then cached)."""
    folder = cache / name
    arrays = folder / "case.npz"
    if arrays.is_file():
        data = np.load(arrays)
        info = json.loads((folder / "info.json").read_text())
    else:
        t0 = time.perf_counter()
        if name == "digits":
            codes, image_labels, result = _fit_digits(seed)
        elif name in ("blob", "clusters"):
            codes, image_labels, result = _fit_synthetic(name, seed, ot_time)
        else:
            codes, image_labels, result = _fit_images(name, seed, n_train, epochs, ot_time)
        seconds = time.perf_counter() - t0
        # the OT targets are the distinct codes (torch.unique): label each by its first image
        _, inverse = torch.unique(codes, dim=0, return_inverse=True)
        labels = np.full(result.targets.shape[0], -1, dtype=np.int64)
        order = np.arange(inverse.numel())[::-1]  # the first image wins
        labels[inverse.numpy()[order]] = image_labels.cpu().numpy()[order]
        data = {
            "targets": result.targets.cpu().double().numpy(),
            "weights": result.problem.weights.cpu().double().numpy(),
            "h": result.h.cpu().double().numpy(),
            "cell_masses": result.cell_masses.cpu().double().numpy(),
            "labels": labels,
        }
        info = {
            "n_images": int(codes.shape[0]),
            "latent_dim": int(result.targets.shape[1]),
            "ot_method": result.method,
            "ot_error": float(result.error),
            "ot_converged": bool(result.converged),
            "ot_iterations": int(result.n_iter),
            "fit_seconds": round(seconds, 1),
        }
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(arrays, **data)
        (folder / "info.json").write_text(json.dumps(info, indent=1))
    y = torch.as_tensor(data["targets"])
    problem = SemiDiscreteProblem(
        y, torch.as_tensor(data["weights"]), source=BoxUniform(y.shape[1], -1.0, 1.0)
    )
    result = SemiDiscreteResult(
        problem=problem,
        h=torch.as_tensor(data["h"]),
        cell_masses=torch.as_tensor(data["cell_masses"]),
    )
    return result, np.asarray(data["labels"]), info


def load_graph(name: str, cache: Path, result: SemiDiscreteResult, seed: int):
    """The cell graph of the pipeline (2^17 Sobol source samples), cached."""
    path = cache / name / "graph.pt"
    if path.is_file():
        return torch.load(path, weights_only=False)
    graph = estimate_cell_graph(result, N_GRAPH_SAMPLES, seed=seed)
    torch.save(graph, path)
    return graph


# --------------------------------------------------------------------------- scoring
def score(flagged: np.ndarray, inter: np.ndarray) -> dict:
    """Precision, recall and F1 of ``flagged`` against ``inter`` (pairs of two classes)."""
    tp = int((flagged & inter).sum())
    n_flag, n_inter = int(flagged.sum()), int(inter.sum())
    return {
        "flagged": n_flag,
        "precision": tp / n_flag if n_flag else float("nan"),
        "recall": tp / n_inter if n_inter else float("nan"),
        "f1": 2 * tp / (n_flag + n_inter) if n_flag + n_inter else float("nan"),
    }


def components(singular, labels: np.ndarray) -> dict:
    """Non-singular components: how many, the largest one's share of the codes, and the
    share of codes whose label is their component's most common one (purity)."""
    comp = singular.components.cpu().numpy()
    pure = 0
    for c in np.unique(comp):
        pure += np.bincount(labels[comp == c] - labels.min()).max()
    return {
        "components": int(comp.max()) + 1,
        "largest": float(np.bincount(comp).max() / comp.size),
        "purity": pure / comp.size,
    }


def sample_mixing(result, graph, labels: np.ndarray, rule: str, n: int, seed: int) -> dict:
    """Codes of the PL extension: the share that are blends (at least 20 % of the weight on
    cells whose label is not the code's main one) and the share made from a single cell
    (a training code repeated)."""
    from aeot.generate import AEOTSampler

    t0 = time.perf_counter()
    out = AEOTSampler().fit(result, graph=graph, rule=rule).sample(n, seed=seed)
    seconds = time.perf_counter() - t0
    cells, weights = out.cells.numpy(), out.weights.numpy()
    used = weights > 0
    lab = labels[np.maximum(cells, 0)]
    per_label = np.stack([(weights * (lab == c) * used).sum(1) for c in np.unique(labels)], 1)
    minority = 1.0 - per_label.max(1)
    return {
        "blends": float((minority >= 0.2).mean()),
        "single_cell": float((used.sum(1) == 1).mean()),
        "seconds": seconds,
    }


def auc(score_values: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney), ties counted half."""
    from scipy.stats import rankdata

    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(score_values)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def best_f1(values: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """The largest F1 of "values > t" over thresholds t, and that t."""
    order = np.argsort(-values, kind="stable")
    tp = np.cumsum(positive[order])
    f1 = 2 * tp / (np.arange(1, len(values) + 1) + positive.sum())
    best = int(np.argmax(f1))
    below = values[order[best + 1]] if best + 1 < len(values) else -np.inf
    return float(f1[best]), float((values[order[best]] + below) / 2)


def candidate_scores(result, graph, k: int = 10, snn: int = 30) -> dict[str, np.ndarray]:
    """Label-free per-pair scores that were weighed (larger = more likely singular)."""
    from aeot.generate import dihedral_angles, normalise_targets, valley_ratios

    y, _, _ = normalise_targets(result.targets)
    p = graph.pairs
    r = (y[p[:, 0]] - y[p[:, 1]]).norm(dim=1)
    n = y.shape[0]
    kth = torch.empty(n, dtype=torch.float64)
    near = torch.empty(n, snn, dtype=torch.long)
    for start in range(0, n, 1024):
        d = torch.cdist(y[start : start + 1024], y)
        d[torch.arange(d.shape[0]), torch.arange(start, start + d.shape[0])] = torch.inf
        v, i = torch.topk(d, max(k, snn), dim=1, largest=False)
        kth[start : start + d.shape[0]] = v[:, k - 1]
        near[start : start + d.shape[0]] = i[:, :snn]
    sets = [set(row) | {a} for a, row in enumerate(near.tolist())]
    shared = np.array([len(sets[a] & sets[b]) for a, b in p.tolist()], dtype=float)
    return {
        "θ (dihedral angle)": dihedral_angles(result.targets, p).numpy(),
        "‖y_i − y_j‖": r.numpy(),
        f"‖y_i − y_j‖ / kNN spacing (k={k})": (r / (kth[p[:, 0]] * kth[p[:, 1]]).sqrt()).numpy(),
        f"1 − shared neighbours (k={snn})": 1.0 - shared / (snn + 1),
        f"valley ratio v (k={k})": valley_ratios(result.targets, p, k).numpy(),
    }


def _fmt(value, digits: int = 2) -> str:
    if isinstance(value, float):
        return "–" if value != value else f"{value:.{digits}f}"
    return str(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/aeot-bench-singular"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=20000, help="MNIST / Fashion images")
    parser.add_argument("--epochs", type=int, default=15, help="MNIST / Fashion AE epochs")
    parser.add_argument("--ot-time", type=float, default=240.0, help="OT time limit (s)")
    parser.add_argument("--samples", type=int, default=10000, help="codes drawn per rule")
    parser.add_argument("--candidates", action="store_true", help="AUC of the rules weighed")
    parser.add_argument(
        "--sensitivity", action="store_true", help="valley rule for k = 5, 10, 20 and ratios"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows, setup, aucs, sens = [], [], [], []
    for name in args.datasets:
        result, labels, info = load_case(
            name,
            args.cache,
            seed=args.seed,
            n_train=args.n_train,
            epochs=args.epochs,
            ot_time=args.ot_time,
        )
        graph = load_graph(name, args.cache, result, args.seed)
        pairs = graph.pairs.numpy()
        inter = labels[pairs[:, 0]] != labels[pairs[:, 1]]
        _log(f"{name}: {info}; {graph.n_edges} adjacent pairs, {inter.mean():.3f} inter-class")
        setup.append(
            f"| {name} | {result.targets.shape[0]} | {result.targets.shape[1]} | "
            f"{info['ot_method']}, {info['ot_iterations']} it, L1 {info['ot_error']:.3f}"
            f"{' (converged)' if info['ot_converged'] else ''} | {graph.n_edges} | "
            f"{inter.mean():.3f} |"
        )
        for label, rule in (("old: angle", "angle"), ("new: auto", "auto")):
            t0 = time.perf_counter()
            found = detect_singular(graph, result.targets, rule=rule)
            seconds = time.perf_counter() - t0
            s = score(found.singular.numpy(), inter)
            c = components(found, labels)
            m = sample_mixing(result, graph, labels, rule, args.samples, args.seed + 1)
            rows.append(
                f"| {name} | {label} ({found.rule}, threshold {found.threshold:.3f}) | "
                f"{s['flagged']} ({s['flagged'] / max(len(pairs), 1):.1%}) | "
                f"{_fmt(s['precision'])} | {_fmt(s['recall'])} | {_fmt(s['f1'])} | "
                f"{c['components']} / {c['largest']:.0%} / {c['purity']:.2f} | "
                f"{m['blends']:.1%} | {m['single_cell']:.1%} | {seconds:.1f} / {m['seconds']:.0f} |"
            )
            _log(rows[-1])
        if args.sensitivity:
            for k in (5, 10, 20):
                for ratio in (0.5, 0.25):
                    found = detect_singular(
                        graph, result.targets, rule="valley", neighbours=k, density_ratio=ratio
                    )
                    s = score(found.singular.numpy(), inter)
                    sens.append(
                        f"| {name} | {k} | {ratio} | {found.threshold:.3f} | "
                        f"{s['flagged'] / max(len(pairs), 1):.1%} | {_fmt(s['precision'])} | "
                        f"{_fmt(s['recall'])} | {_fmt(s['f1'])} |"
                    )
        if args.candidates:
            aucs.append((name, candidate_scores(result, graph), inter))
    print()
    print("| data | codes | d | OT solve | adjacent pairs | inter-class share |")
    print("|---|---|---|---|---|---|")
    print("\n".join(setup))
    print()
    print(
        "| data | rule | flagged pairs | precision | recall | F1 | components / largest / "
        "purity | blends (≥ 20 % weight off the main label) | single-cell codes | seconds: "
        "rule / fit + sampling |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if sens:
        print()
        print("| data | k | density ratio | threshold on v | flagged | precision | recall | F1 |")
        print("|---|---|---|---|---|---|---|---|")
        print("\n".join(sens))
    if aucs:
        # AUC: how well each score ranks "two classes" above "one class" (threshold-free);
        # best F1: at the threshold chosen with the labels (a ceiling, not a rule); and
        # how many pairs of the single Gaussian ("blob") that threshold would flag
        blob = next((c for n, c, _ in aucs if n == "blob"), None)
        print()
        print("| data | score | AUC | best F1 (threshold chosen with labels) | blob flagged |")
        print("|---|---|---|---|---|")
        for name, cand, inter in aucs:
            if not inter.any():
                continue
            for key, values in cand.items():
                f1, threshold = best_f1(values, inter)
                share = "–" if blob is None else f"{(blob[key] > threshold).mean():.0%}"
                print(f"| {name} | {key} | {_fmt(auc(values, inter), 3)} | {f1:.2f} | {share} |")


if __name__ == "__main__":
    main()
