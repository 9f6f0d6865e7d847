"""The main job: fit AE-OT on embedded data and write an HTML report.

``aeot demo`` trains on scikit-learn's 8×8 digits and on the 2D mixtures of the
PacGAN protocol (25-Gaussian grid, 8-Gaussian ring), then writes to a folder:
generated sample grids next to real and reconstructed ones, interpolation
strips, the singular set of the 2D OT maps drawn over their power diagrams,
and ``metrics.json``. No download is needed.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from aeot._io import save_json
from aeot.data import grid_mixture, load_digits8, ring_mixture
from aeot.metrics.memorisation import memorisation
from aeot.pipeline import AEOT
from aeot.report import Section, write_report
from aeot.report.figures import (
    plot_curve,
    plot_points,
    plot_singular_set_2d,
    save_image_grid,
)


def _superscript(n: int) -> str:
    """10 -> '¹⁰': an exponent the page shows as text (it is escaped, not rendered)."""
    return str(n).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


def digits_aeot(seed: int = 0, *, quick: bool = False, **overrides) -> AEOT:
    """The (unfitted) AE-OT model of the demo's digits section; ``overrides`` replace
    config fields."""
    # --quick keeps the full autoencoder: its 150 epochs cost a few seconds, and the
    # spread-out codes of a shorter run need two to three times the OT iterations
    # (40 epochs: 34 iterations, 20 s, against 15 iterations, 9 s), so a shorter run
    # made --quick slower than the full demo; quick loosens the OT tolerance instead
    settings = {
        "autoencoder": "mlp",
        "latent_dim": 10,
        "hidden": (256, 128),
        "epochs": 150,
        "loss": "bce",
        "ot_tol": 0.03 if quick else 0.02,
        "seed": seed,
    }
    return AEOT(**{**settings, **overrides})


def run_digits(
    out: Path, *, quick: bool, seed: int, device: str | None, log
) -> tuple[Section, dict]:
    from aeot.evaluation import evaluate_samples

    data = load_digits8()
    train, test = data.split(0.85, seed=seed)
    model = digits_aeot(seed, quick=quick, device=device)
    epochs = model.config.epochs
    start = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - start
    log(f"digits: fitted in {fit_seconds:.1f} s (OT error {model.ot_.error:.4f})")
    n_gen = len(train)
    info = model.sample_codes(n_gen, seed=seed + 1)
    generated = model.decode(info.codes)
    recon = model.reconstruct(train.x)
    # every scored row has the held-out split's count and none is a training image: the
    # reconstructions are of held-out images (those of training images sit on the
    # reference set and would reward copying)
    n_eval = len(test)
    cache = out / "cache"
    rows = {
        "AE-OT generated": (generated[:n_eval], info.codes[:n_eval]),
        "AE reconstruction (held-out images)": (model.reconstruct(test.x), None),
        "held-out real": (test.x, None),
    }
    train_codes, test_codes = model.ot_.targets, model.encode(test.x)
    metrics = {}
    for name, (images, codes) in rows.items():
        values = evaluate_samples(train, images, cache_dir=cache, seed=seed)
        if codes is not None:  # a code equal to a training code decodes to a reconstruction
            values["copies"] = memorisation(codes, train_codes, test_codes).copy_fraction
        values["NN ratio"] = memorisation(images, train.x, test.x).nn_ratio
        metrics[name] = values
    figures = []
    save_image_grid(train.x[:100], out / "digits_real.png")
    save_image_grid(recon[:100], out / "digits_reconstructed.png")
    save_image_grid(generated[:100], out / "digits_generated.png")
    figures += [
        ("digits_real.png", "real 8×8 digits (training set)"),
        ("digits_reconstructed.png", "their autoencoder reconstructions"),
        ("digits_generated.png", "AE-OT samples: new latent codes from the PL extension"),
    ]
    labels = train.labels.cpu().numpy()
    rows = []
    for digit in (0, 3, 7):
        same = np.nonzero(labels == digit)[0][:2]
        try:
            rows.append(model.interpolate(int(same[0]), int(same[1]), steps=10))
        except ValueError:
            continue
    if rows:
        save_image_grid(torch.cat(rows), out / "digits_interpolation.png", ncol=10)
        figures.append(
            (
                "digits_interpolation.png",
                "interpolation between two images of the same digit along the PL "
                "extension of the OT map (each row: 0, 3, 7)",
            )
        )
    plot_curve(
        model.ot_.errors,
        out / "digits_ot_error.png",
        title="OT solve (latent, d=10)",
        ylabel="L1 cell-mass error",
        target=model.config.ot_tol,
    )
    figures.append(("digits_ot_error.png", "Monte-Carlo Newton: cell-mass error per iteration"))
    header = ["samples", *metrics["AE-OT generated"].keys()]
    table = [[name, *[m.get(k, "") for k in header[1:]]] for name, m in metrics.items()]
    sampler = model.sampler_
    n_codes, latent_dim = model.ot_.targets.shape
    section = Section(
        "8×8 digits (scikit-learn, 1797 images)",
        paragraphs=[
            f"MLP autoencoder 64→256→128→10, {epochs} epochs; OT from the uniform cube "
            f"[−1,1]{_superscript(latent_dim)} to {n_codes} codes "
            f"({model.ot_.method}, {model.ot_.n_iter} iterations, error {model.ot_.error:.4f}); "
            f"{_singular_summary(sampler)}. Fit took {fit_seconds:.1f} s.",
            _singular_against_labels(model, train.labels, info),
            _spread_summary(model) + _quality_summary(metrics, n_eval, len(train)),
            _IMAGE_COLUMNS,
        ],
        tables=[(header, table)],
        figures=figures,
    )
    return section, metrics  # full precision in metrics.json


_IMAGE_COLUMNS = (
    "Columns: n_samples, images scored. FD-digits-cnn, the Fréchet distance between "
    "Gaussians fitted to the CNN features of the row and of the training images (lower "
    "is closer). KID-digits-cnn, the unbiased kernel estimate of the squared MMD in the "
    "same features: unbiased, so it is negative when the two sets are closer than their "
    "sampling noise. precision / recall, the share of the row's features inside the "
    "training images' k-NN balls (k = 3) and the reverse (quality and coverage). modes, "
    "digits the CNN predicts at least once; n_modes, digits in the training set. kl, "
    "KL(predicted digit histogram ‖ training label histogram); kl_uniform, the same "
    "against the uniform histogram. copies and NN ratio as in the paragraph above."
)

_MIXTURE_COLUMNS = (
    "Columns: modes, Gaussians with at least one high-quality sample; n_modes, the "
    "number of Gaussians; high_quality_pct, samples within 3 std of a mode; kl, KL of "
    "the high-quality samples' mode histogram to the uniform one; precision / recall, "
    "k-NN (k = 3) quality and coverage against the training points; FD-data, the "
    "Fréchet distance of Gaussians fitted to the points themselves. Coordinates: the "
    "power diagram is drawn on the source square [−1, 1]², the points in data units."
)


def _spread_summary(model) -> str:
    """What the sampler's spread did, in words, from its calibration record."""
    sampler = model.sampler_
    report = sampler.spread_report_
    if sampler.spread <= 0 or not report:
        return "New codes are the piecewise-linear extension's (no spread). "
    if model.config.spread_space == "data":
        space, what, fresh = (
            "data space",
            "their decoded images' median distance to the nearest training image",
            "a fresh image (a training image to its nearest other one)",
        )
    else:
        space, what, fresh = (
            "latent space",
            "their median distance to the nearest training code",
            "a fresh code (a training code to its nearest other one)",
        )
    return (
        f"New codes are spread (τ = {sampler.spread:g} in {space}): each takes a Gaussian "
        f"step shaped like the local covariance of its {sampler.spread_neighbours} nearest "
        f"mutually non-singular training codes{_rank_words(sampler)}, scaled until {what} "
        f"is {sampler.spread:g} × that of {fresh}; the extension alone places them at "
        f"{report['plain_ratio']:.2f} × (spread = 0 turns this off). "
    )


def _rank_words(sampler) -> str:
    """The words " along its r principal directions only", or none (full covariance)."""
    rank = sampler.spread_directions_
    if rank is None:
        return ""  # the full local covariance
    return (
        " along its principal direction only"
        if rank == 1
        else f" along its {rank} principal directions only"
    )


def _quality_summary(metrics: dict, n_eval: int, n_train: int) -> str:
    """The digits table in words, every number read from it."""
    gen = metrics["AE-OT generated"]
    rec = metrics["AE reconstruction (held-out images)"]
    real = metrics["held-out real"]
    fd = next(k for k in gen if k.startswith("FD-"))
    return (
        f"Each row scores {n_eval} images (the held-out split's size) against the {n_train} "
        f"training images, in the penultimate features of a small CNN trained on the same "
        f"digits ({fd}; not Inception). The reconstructions are of held-out images: those "
        f"of training images lie on the reference set and would reward copying it. "
        f"Generated FD {gen[fd]:.2f} against {rec[fd]:.2f} for the reconstructions "
        f"(ratio {gen[fd] / rec[fd]:.2f}) and {real[fd]:.2f} for held-out real digits; "
        f"precision {gen['precision']:.2f} against {rec['precision']:.2f}. Copies: "
        f"{gen['copies']:.1%} of the generated codes equal a training code. NN ratio: the "
        f"median distance of each row's images to their nearest training image, over the "
        f"same for held-out real digits (1 for fresh data, 0 for copies): "
        f"{gen['NN ratio']:.2f} generated, {rec['NN ratio']:.2f} reconstructed. "
        f"FD of {n_eval} samples is noisy and biased upwards: compare the rows with each "
        "other, not with FDs of other sample sizes."
    )


def _singular_summary(sampler) -> str:
    singular = sampler.singular_
    n_singular = int(singular.singular.sum())
    if singular.rule == "valley":
        how = (
            "density-valley rule: the kNN density of the codes half-way between the two "
            f"codes is below half that at them, spacing ratio v > {singular.threshold:.3f}"
        )
    else:
        how = {"gap": "angle gap rule", "median": "5 × median angle", "given": "given"}.get(
            singular.rule, singular.rule
        )
        how = f"{how}, dihedral angle above {singular.threshold:.3f} rad"
    return (
        f"{n_singular} of {singular.singular.numel()} adjacent facet pairs singular ({how}); "
        f"{singular.n_components} non-singular components"
    )


def _singular_against_labels(model, image_labels: torch.Tensor, info) -> str:
    """Precision / recall of the singular pairs against "two different digits" (the labels
    only score the rule), and what the generated codes are made of — in words."""
    sampler = model.sampler_
    singular, pairs = sampler.singular_, sampler.graph_.pairs.cpu().numpy()
    # the OT targets are the distinct codes (torch.unique): label each by its first image
    _, inverse = torch.unique(model.codes_, dim=0, return_inverse=True)
    labels = np.full(model.ot_.targets.shape[0], -1, dtype=np.int64)
    order = np.arange(inverse.numel())[::-1]
    labels[inverse.cpu().numpy()[order]] = image_labels.cpu().numpy()[order]
    inter = labels[pairs[:, 0]] != labels[pairs[:, 1]]
    flagged = singular.singular.cpu().numpy()
    hits = int((flagged & inter).sum())
    if flagged.any():
        precision = hits / int(flagged.sum())
        flags = (
            f"{precision:.0%} of the flagged pairs join two different digits (precision) "
            f"and they are {hits / max(int(inter.sum()), 1):.0%} of the {int(inter.sum())} "
            f"adjacent pairs that do (recall)"
        )
    else:
        flags = (
            f"none of the {int(inter.sum())} adjacent pairs that join two different digits "
            "is flagged"
        )
    used = (info.weights > 0).cpu()
    cells = info.cells.cpu().numpy()
    weights = info.weights.cpu().numpy()
    lab = labels[np.maximum(cells, 0)]
    per = np.stack([(weights * (lab == c)).sum(1) for c in np.unique(labels)], 1)
    blends = float((1.0 - per.max(1) >= 0.2).mean())
    single = float((used.sum(1) == 1).double().mean())
    return (
        f"Against the digit labels (which the rule does not see): {flags}, out of "
        f"{len(pairs)} adjacent pairs, {inter.mean():.0%} of which join two digits. Of the "
        f"{len(cells)} generated codes, {blends:.0%} put at least 20 % of their weight on "
        f"training codes of another digit than the main one, and {single:.0%} are a single "
        f"training code."
    )


def run_mixture(
    out: Path, make, n_points: int, *, quick: bool, seed: int, device: str | None, log
) -> tuple[Section, dict]:
    """Fit AE-OT to ``make(n_points, seed=seed)`` (a mixture of :mod:`aeot.data`) and
    score it against fresh draws ``make(n_points, seed=seed + 2)`` (the data row) and
    ``seed + 3`` (the held-out reference of the NN ratio)."""
    from aeot.evaluation import evaluate_samples

    dataset = make(n_points, seed=seed)
    model = AEOT(autoencoder="identity", seed=seed, device=device)
    start = time.perf_counter()
    model.fit(dataset)
    fit_seconds = time.perf_counter() - start
    log(f"{dataset.name}: fitted in {fit_seconds:.1f} s")
    # three rows of the same size, all scored against the training points: AE-OT from a
    # Sobol source (even coverage, the default), from an i.i.d. source, and a fresh draw of
    # the mixture itself; a second fresh draw is the held-out reference of the NN ratio
    n = len(dataset)
    info = model.sampler_.sample(n, seed=seed + 1, qmc=True)
    generated = model.decode(info.codes)
    iid = model.decode(model.sampler_.sample(n, seed=seed + 1, qmc=False).codes)
    fresh, heldout = (make(n, seed=seed + k).x for k in (2, 3))
    rows = {"AE-OT (Sobol source)": generated, "AE-OT (i.i.d. source)": iid}
    rows["fresh data (i.i.d.)"] = fresh
    table_metrics = {}
    for row, samples in rows.items():
        values = evaluate_samples(dataset, samples, seed=seed)
        mem = memorisation(samples, dataset.x, heldout)
        values["copies"] = mem.copy_fraction
        values["NN ratio"] = mem.nn_ratio
        table_metrics[row] = values
    metrics = table_metrics["AE-OT (Sobol source)"]
    name = dataset.name
    plot_singular_set_2d(
        model.ot_,
        model.sampler_.singular_,
        out / f"{name}_singular_set.png",
        points=model.ot_.targets.cpu().numpy(),
        generated=info.codes.cpu().numpy(),
        title=f"{name}: singular set of the OT map (red) between the modes",
    )
    plot_points(
        dataset.x.cpu().numpy(),
        {"AE-OT": generated.cpu().numpy()},
        out / f"{name}_samples.png",
        title=name,
    )
    header = ["samples", *metrics.keys()]
    table = [[row, *[v.get(k, "") for k in header[1:]]] for row, v in table_metrics.items()]
    section = Section(
        f"2D mixture: {name} ({len(dataset)} training points)",
        paragraphs=[
            f"Identity autoencoder (OT in data space, normalised to [−1,1]²); exact "
            f"power-diagram Newton solve ({model.ot_.n_iter} steps, L1 error "
            f"{model.ot_.error:.2e}); {_singular_summary(model.sampler_)}. "
            f"Fit took {fit_seconds:.1f} s. Each row scores {n} points against the training "
            "points by the PacGAN protocol (high quality: within 3 std of a mode).",
            _mixture_caveats(table_metrics),
            _MIXTURE_COLUMNS,
        ],
        tables=[(header, table)],
        figures=[
            (
                f"{name}_singular_set.png",
                "left: power diagram of the Brenier potential on the source square, "
                "singular facets in red; right: the target codes, generated codes and the "
                "pairs of codes separated by the singular set",
            ),
            (f"{name}_samples.png", "real points and AE-OT samples (Sobol source)"),
        ],
    )
    return name, section, table_metrics


def _mixture_caveats(rows: dict) -> str:
    """What the mixture metrics can and cannot show, with this page's numbers."""
    sobol, iid = rows["AE-OT (Sobol source)"], rows["AE-OT (i.i.d. source)"]
    fresh = rows["fresh data (i.i.d.)"]
    return (
        "What these numbers can and cannot show. Modes and high-quality share only say "
        "that samples land near the modes, which copies of the training points also do. "
        f"KL to uniform mode weights: {sobol['kl']:.4f} from the Sobol source, "
        f"{iid['kl']:.4f} from an i.i.d. source and {fresh['kl']:.4f} for fresh data; a "
        "KL below fresh data's comes from the evenly spread (quasi-random) source, not "
        "from better modelling. Copies (samples equal to a training point): "
        f"{sobol['copies']:.1%} Sobol, {iid['copies']:.1%} i.i.d. NN ratio (median "
        "distance to the nearest training point over the same for a fresh held-out draw; "
        f"1 for fresh data, 0 for copies): {sobol['NN ratio']:.2f} Sobol, "
        f"{iid['NN ratio']:.2f} i.i.d., {fresh['NN ratio']:.2f} fresh data: below 1, AE-OT "
        "samples lie between the training points, an interpolation of them."
    )


def run_demo(
    out: str | Path, *, quick: bool = False, seed: int = 0, device: str | None = None, log=print
) -> Path:
    """Run the whole demo and return the path of ``index.html``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    # the demo's networks and OT problems are tiny: one CPU thread beats two, which
    # spin against each other (and against anything else running on the machine)
    torch.set_num_threads(1)
    try:
        return _run(out, quick=quick, seed=seed, device=device, log=log)
    finally:
        torch.set_num_threads(threads)


def _run(out: Path, *, quick: bool, seed: int, device: str | None, log) -> Path:
    start = time.perf_counter()
    sections, metrics = [], {}
    n_points = 1000 if quick else 2000
    for make in (grid_mixture, ring_mixture):
        name, section, values = run_mixture(
            out, make, n_points, quick=quick, seed=seed, device=device, log=log
        )
        sections.append(section)
        metrics[name] = values
    section, values = run_digits(out, quick=quick, seed=seed, device=device, log=log)
    sections.insert(0, section)
    metrics["digits"] = values
    elapsed = time.perf_counter() - start
    metrics["seconds"] = round(elapsed, 1)
    save_json(out / "metrics.json", metrics)
    page = write_report(
        out / "index.html",
        "AE-OT demo: manifold learning + semi-discrete optimal transport",
        sections,
        intro=f"Generated by the command aeot demo (seed {seed}) in {elapsed:.0f} s on "
        f"{torch.get_num_threads()} CPU thread(s). Metrics are in metrics.json.",
    )
    log(f"report written to {page}")
    return page
