"""The ``aeot`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aeot.experiments import compare
from aeot.relu.command import cells

app = typer.Typer(
    name="aeot",
    help="Geometric generative modelling: autoencoders, ReLU cells, semi-discrete OT, AE-OT.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Geometric generative modelling: autoencoders, ReLU cells, semi-discrete OT, AE-OT."""


app.command("cells")(cells)
app.command("compare")(compare)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder.")] = Path("aeot-report"),
    quick: Annotated[bool, typer.Option(help="Smaller, faster run (smoke test).")] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str | None, typer.Option(help="torch device (default: cuda if any)")] = None,
) -> None:
    """Fit AE-OT on embedded digits and 2D mixtures; write an HTML report."""
    from aeot.demo import run_demo

    run_demo(out, quick=quick, seed=seed, device=device, log=typer.echo)


@app.command()
def fit(
    data: Annotated[
        str, typer.Argument(help="Data set name (digits, grid25, ring8, ...) or path.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
    latent_dim: Annotated[int, typer.Option(help="Latent code size.")] = 16,
    autoencoder: Annotated[str, typer.Option(help="auto | mlp | conv | identity")] = "auto",
    epochs: Annotated[int, typer.Option(help="Autoencoder epochs.")] = 100,
    ot_tol: Annotated[float, typer.Option(help="OT L1 cell-mass tolerance.")] = 0.02,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str | None, typer.Option(help="torch device")] = None,
) -> None:
    """Fit an AE-OT model on a data set and save it (resumes an interrupted run)."""
    from aeot.data import load_dataset
    from aeot.pipeline import AEOT

    try:
        dataset = load_dataset(data)
        model = AEOT(
            latent_dim=latent_dim,
            autoencoder=autoencoder,
            epochs=epochs,
            ot_tol=ot_tol,
            seed=seed,
            device=device,
        )
        model.fit(dataset, checkpoint_dir=out / "checkpoints")
    except (FileNotFoundError, ValueError, TypeError) as exc:
        _fail(str(exc))
    model.save(out)
    typer.echo(
        f"saved AE-OT model to {out} (OT error {model.ot_.error:.4f}, "
        f"{model.ot_.targets.shape[0]} codes)"
    )


@app.command("fit-gan")
def fit_gan(
    model: Annotated[Path, typer.Argument(help="AE-OT model folder written by `aeot fit`.")],
    data: Annotated[str, typer.Argument(help="The data set that model was fitted on.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="AE-OT-GAN model folder to write.")],
    steps: Annotated[int, typer.Option(help="Generator updates.")] = 2000,
    batch_size: Annotated[int, typer.Option(help="Codes and real images per step.")] = 64,
    content_loss: Annotated[str, typer.Option(help="l1 | mse | features")] = "features",
    content_weight: Annotated[float, typer.Option(help="Weight of the content loss.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str | None, typer.Option(help="torch device")] = None,
) -> None:
    """Refine a saved AE-OT model into AE-OT-GAN and save it (resumes an interrupted run)."""
    from aeot.aeotgan import AEOTGAN
    from aeot.data import load_dataset
    from aeot.pipeline import AEOT

    try:
        base = AEOT.load(model, device=device)
        gan = AEOTGAN(
            aeot=base,
            steps=steps,
            batch_size=batch_size,
            content_loss=content_loss,
            content_weight=content_weight,
            seed=seed,
            device=device,
        )
        gan.fit(load_dataset(data), checkpoint_dir=out / "checkpoints")
    except (FileNotFoundError, ValueError, TypeError) as exc:
        _fail(str(exc))
    gan.save(out)
    typer.echo(f"saved AE-OT-GAN model to {out} ({steps} steps)")


def _load_model(path: Path, device: str | None):
    """An AE-OT or AE-OT-GAN model folder, told apart by the format in its config.json."""
    from aeot._io import load_json
    from aeot.aeotgan import AEOTGAN
    from aeot.pipeline import AEOT

    try:
        config = path / "config.json"
        is_gan = config.is_file() and load_json(config).get("format") == "aeot-gan-model"
        return (AEOTGAN if is_gan else AEOT).load(path, device=device)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))


def _write_samples(x, out: Path, ncol: int) -> None:
    import numpy as np

    from aeot.report.figures import save_image_grid

    suffix = out.suffix.lower()
    if suffix == ".npy":
        from aeot._io import atomic_write

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:  # np.save on a name would append ".npy"
                np.save(handle, x.numpy(), allow_pickle=False)

        atomic_write(out, write)
    elif suffix == ".png":
        if x.ndim != 4:
            _fail("PNG output needs an image model; use .npy for points")
        save_image_grid(x, out, ncol=ncol)
    else:
        _fail(f"unsupported output {out}: use .png or .npy")
    typer.echo(f"wrote {tuple(x.shape)} to {out}")


@app.command()
def sample(
    model: Annotated[Path, typer.Argument(help="Model folder (`aeot fit` or `aeot fit-gan`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .png (images) or .npy.")],
    n: Annotated[int, typer.Option("-n", help="Number of samples.")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str | None, typer.Option(help="torch device")] = None,
) -> None:
    """Generate new samples from a saved AE-OT or AE-OT-GAN model."""
    if n < 1:
        _fail(f"-n must be positive, got {n}")
    loaded = _load_model(model, device)
    _write_samples(loaded.sample(n, seed=seed), out, ncol=min(n, 10))


@app.command()
def interpolate(
    model: Annotated[Path, typer.Argument(help="Model folder written by `aeot fit`.")],
    a: Annotated[int, typer.Option(help="Index of the first training code.")],
    b: Annotated[int, typer.Option(help="Index of the second training code.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .png (images) or .npy.")],
    steps: Annotated[int, typer.Option(help="Points along the curve.")] = 10,
    device: Annotated[str | None, typer.Option(help="torch device")] = None,
) -> None:
    """Interpolate between two training codes, staying off the singular set."""
    loaded = _load_model(model, device)
    if not callable(getattr(loaded, "interpolate", None)):
        _fail(f"{model} is an AE-OT-GAN model; interpolate needs an AE-OT model (`aeot fit`)")
    try:
        path = loaded.interpolate(a, b, steps)
    except ValueError as exc:
        _fail(str(exc))
    _write_samples(path, out, ncol=steps)


def main() -> None:
    app()
