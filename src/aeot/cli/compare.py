"""``aeot compare``: the command line of :mod:`aeot.evaluation.experiments`, importable
without torch (its work, and the heavy imports, start when the command runs)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from aeot._checks import check_output_path

__all__ = ["compare"]


def compare(
    experiment: Annotated[
        str, typer.Argument(help="grid25, ring8, stacked-digits or all.")
    ] = "all",
    seeds: Annotated[
        int | None,
        typer.Option(help="Number of seeds (default: 3 on the 2D mixtures, 1 on stacked digits)."),
    ] = None,
    quick: Annotated[bool, typer.Option(help="Tiny budgets (smoke test).")] = False,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for <experiment>.json / .md.")
    ] = Path("aeot-compare"),
    device: Annotated[str | None, typer.Option(help="torch device (default: cuda if any)")] = None,
) -> None:
    """Compare AE-OT with GAN, WGAN-GP and VAE on the mode-collapse experiments."""
    from aeot.evaluation.experiments import (
        EXPERIMENTS,
        QUICK_WARNING,
        format_summary,
        run_experiment,
    )

    names = list(EXPERIMENTS) if experiment == "all" else [experiment]
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        typer.secho(
            f"error: unknown experiment {unknown[0]!r}; choose one of "
            f"{', '.join(EXPERIMENTS)} or all",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(code=2)
    if seeds is not None and seeds < 1:
        typer.secho(
            f"error: --seeds must be at least 1, got {seeds}", fg=typer.colors.RED, err=True
        )
        raise typer.Exit(code=2)
    check_output_path(out, folder=True)  # before the runs, not after them
    for name in names:
        start = time.perf_counter()
        rows = run_experiment(name, seeds=seeds, quick=quick, out_dir=out, device=device)
        spec_title = rows[0].get("experiment", name)
        typer.echo(f"\n== {spec_title} ({time.perf_counter() - start:.0f} s)")
        if quick:
            typer.echo(QUICK_WARNING)
        typer.echo(format_summary(rows))
    typer.echo(f"results written to {out}/")
