"""Mode-collapse evidence: AE-OT against GAN, WGAN-GP and VAE at full budget.

Runs the three named experiments of :mod:`aeot.evaluation.experiments` — the 25-Gaussian grid and
the 8-Gaussian ring (3 seeds each, 2,500 samples) and stacked 8×8 digits (1 seed,
26,000 samples, 1000 modes) — and prints, per experiment, the talk-like table
(model, modes, KL, high-quality %, Fréchet distance, AE-OT's FD ÷ the FD of its
autoencoder's reconstructions, precision, recall, fit time) with the elapsed time.
Results go to ``<out>/<experiment>.json`` / ``.md`` and ``<out>/summary.md``.

The goals checked at the end (AE-OT only; the baselines are reported as measured):

* grid25: 25 / 25 modes and ≥ 90 % high-quality samples (every seed);
* ring8: 8 / 8 modes and ≥ 90 % high-quality samples (every seed);
* stacked digits: 1000 / 1000 modes, KL ≤ 0.05 and FD ≤ 1.25 × the reconstruction's.

Usage::

    python benchmarks/bench_mode_collapse.py [--out DIR] [--experiments grid25,ring8]
        [--seeds N] [--quick]

Whole script: about 20 minutes for the two mixtures and about an hour for stacked digits
(50,000 training images) on 2 shared CPU cores (one torch thread).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from aeot._io import atomic_write
from aeot.evaluation.experiments import (
    EXPERIMENTS,
    build_experiment,
    format_summary,
    machine_info,
    run_experiment,
)


def goals(name: str, rows: list[dict]) -> list[tuple[str, bool, str]]:
    """(goal, met, measured) for AE-OT in one experiment."""
    by = {row["model"]: row for row in rows}
    ae = by.get("AE-OT")
    if ae is None:
        return []
    per_seed = ae.get("per_seed", [ae])
    out = []
    if name in ("grid25", "ring8"):
        k = 25 if name == "grid25" else 8
        modes = [run["modes"] for run in per_seed]
        hq = [run["high_quality_pct"] for run in per_seed]
        out.append((f"{k}/{k} modes every seed", min(modes) >= k, f"min {min(modes):.0f}"))
        out.append(("≥ 90 % high quality every seed", min(hq) >= 90, f"min {min(hq):.1f} %"))
    else:
        fd = "FD-digits-cnn-per-channel"
        ratio = ae.get(f"{fd}_ratio_to_reconstruction", float("nan"))
        out.append(("1000/1000 modes", ae["modes"] >= 1000, f"{ae['modes']:.0f}"))
        out.append(("KL ≤ 0.05", ae["kl"] <= 0.05, f"{ae['kl']:.4f}"))
        out.append(("FD ≤ 1.25 × reconstruction", ratio <= 1.25, f"{ratio:.2f}×"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-mode-collapse"))
    parser.add_argument("--experiments", default=",".join(EXPERIMENTS))
    parser.add_argument(
        "--seeds", type=int, default=None, help="number of seeds (default per experiment)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny budgets (smoke test)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest here)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.experiments.split(",") if n.strip()]
    for name in names:
        build_experiment(name, quick=True)  # fail fast on a bad name
    machine = machine_info()
    print(f"machine: {machine}", flush=True)
    sections = [
        "# Mode-collapse benchmark\n",
        f"`python benchmarks/bench_mode_collapse.py {'--quick ' if args.quick else ''}"
        f"--experiments {','.join(names)}`  \n"
        f"machine: {machine['processor']}, {machine['cpu_count']} CPUs, "
        f"torch {machine['torch']} ({machine['torch_threads']} thread(s)), {machine['date']}\n",
    ]
    total = time.perf_counter()
    verdicts = []
    for name in names:
        start = time.perf_counter()
        rows = run_experiment(name, seeds=args.seeds, quick=args.quick, out_dir=args.out)
        elapsed = time.perf_counter() - start
        spec = build_experiment(name, quick=args.quick)
        table = format_summary(rows)
        print(f"\n== {spec.title}\n   seeds {rows[0]['seeds']}, elapsed {elapsed:.0f} s\n")
        print(table, flush=True)
        checks = goals(name, rows)
        for goal, met, measured in checks:
            print(f"   AE-OT goal {goal}: {'MET' if met else 'MISSED'} ({measured})")
        verdicts += [(name, *c) for c in checks]
        sections.append(
            f"\n## {spec.title}\n\nseeds {rows[0]['seeds']}; elapsed {elapsed:.0f} s\n\n"
            + format_summary(rows, markdown=True)
            + "".join(f"\n- {note}" for note in spec.notes)
            + "\n"
        )
    total = time.perf_counter() - total
    print(f"\ntotal {total:.0f} s ({total / 60:.1f} min)")
    sections.append(
        "\n## AE-OT goals\n\n| experiment | goal | met | measured |\n|---|---|---|---|\n"
        + "".join(f"| {n} | {g} | {'yes' if m else 'no'} | {v} |\n" for n, g, m, v in verdicts)
        + f"\ntotal {total:.0f} s\n"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    text = "".join(sections)
    atomic_write(args.out / "summary.md", lambda tmp: tmp.write_text(text))
    print(f"results written to {args.out}/")


if __name__ == "__main__":
    main()
