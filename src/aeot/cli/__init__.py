"""The ``aeot`` command line: the only package of aeot that imports typer.

The commands live here (``fit``, ``fit-gan``, ``sample``, ``interpolate``, ``demo``) and
in :mod:`aeot.cli.compare` (``compare``) and :mod:`aeot.cli.cells` (``cells``); the work
they run is the library's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from aeot._checks import check_output_path, check_seed
from aeot.cli.cells import cells
from aeot.cli.compare import compare

#: Errors that describe the user's input or environment. OSError (unreadable or
#: unwritable files) and MemoryError always are; the others when aeot's own code raised
#: them (a check that names the problem). The same types raised deep inside torch or
#: numpy, and every other exception, are bugs: they keep their traceback.
_ENVIRONMENT_ERRORS = (OSError, MemoryError)
_INPUT_ERRORS = (ValueError, TypeError, FloatingPointError, RuntimeError)
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # src/aeot


def _raised_by_aeot(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc``'s traceback is in the aeot package."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE_DIR)


class _Commands(TyperGroup):
    """The one top-level handler: input and environment errors become ``error: ...``
    on stderr and exit code 2, without a traceback (``AEOT_DEBUG=1`` shows it)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):  # usage errors, exits: typer's own
            raise
        except Exception as exc:
            if os.environ.get("AEOT_DEBUG", "") not in ("", "0"):
                raise
            if isinstance(exc, MemoryError):
                message = f"out of memory: {exc}".rstrip(": ")
            elif isinstance(exc, _ENVIRONMENT_ERRORS) or (
                isinstance(exc, _INPUT_ERRORS) and _raised_by_aeot(exc)
            ):
                message = str(exc) or type(exc).__name__
            else:
                raise
            lines = message.strip().splitlines() or [type(exc).__name__]
            typer.secho(f"error: {' '.join(line.strip() for line in lines)}", fg="red", err=True)
            sys.stderr.flush()
            raise typer.Exit(code=2) from None


app = typer.Typer(
    name="aeot",
    cls=_Commands,
    help="Geometric generative modelling: autoencoders, ReLU cells, semi-discrete OT, AE-OT. "
    "Bad input ends in a one-line error and exit code 2 (AEOT_DEBUG=1: the traceback).",
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

    check_seed(seed, "--seed")
    check_output_path(out, folder=True)
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
    ot_max_iter: Annotated[int, typer.Option(help="OT iterations (batches) at most.")] = 300,
    ot_time_limit: Annotated[
        float | None,
        typer.Option(help="Seconds the OT solve may take (it stops unconverged at the limit)."),
    ] = None,
    spread: Annotated[
        float | None,
        typer.Option(
            help="New samples at this fraction of a fresh item's distance from the training "
            "set, in --spread-space (0: the plain PL extension; default 0.82 in data space, "
            "0.9 in latent space, 0 for 2D points)."
        ),
    ] = None,
    spread_space: Annotated[
        str,
        typer.Option(
            help="Where --spread is measured: data (decoded samples against the training "
            "data) | latent (codes against the training codes)."
        ),
    ] = "data",
    generator: Annotated[
        str,
        typer.Option(
            help="pl (the piecewise-linear extension, moved by --spread) | pairwise (the AE-OT "
            "reference code's rule: (1 - w) y_i + w y_j of the two best cells, no spread)."
        ),
    ] = "pl",
    pair_weight: Annotated[
        float, typer.Option(help="w of --generator pairwise, the runner-up cell's weight.")
    ] = 0.25,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str | None, typer.Option(help="torch device")] = None,
) -> None:
    """Fit an AE-OT model on a data set and save it (resumes an interrupted run)."""
    from aeot.data import load_dataset
    from aeot.pipeline import AEOT

    check_seed(seed, "--seed")
    check_output_path(out, folder=True)  # before the fit, not after it
    try:
        dataset = load_dataset(data)
        typer.echo(
            f"{data}: {len(dataset)} samples of shape {tuple(dataset.sample_shape)}", err=True
        )
        model = AEOT(
            latent_dim=latent_dim,
            autoencoder=autoencoder,
            epochs=epochs,
            ot_tol=ot_tol,
            ot_max_iter=ot_max_iter,
            ot_time_limit=ot_time_limit,
            spread=spread,
            spread_space=spread_space,
            generator=generator,
            pair_weight=pair_weight,
            seed=seed,
            device=device,
        )
        model.fit(dataset, checkpoint_dir=out / "checkpoints")
    except (FileNotFoundError, ValueError, TypeError) as exc:
        _fail(str(exc))
    model.save(out)
    ot = model.ot_
    typer.echo(f"saved AE-OT model to {out} (OT error {ot.error:.4f}, {ot.targets.shape[0]} codes)")
    if not ot.converged:
        noise = getattr(ot, "noise", float("nan"))
        measured = f" (sampling noise {noise:.4f})" if noise == noise else ""
        typer.echo(
            f"warning: the OT solve stopped before its tolerance {model.config.ot_tol}: "
            f"its best measured L1 cell-mass error is {ot.error:.4f}{measured}, so samples "
            "follow the codes' distribution only to that accuracy; near-duplicate codes "
            "or too small an iteration or time budget (ot_max_iter, ot_time_limit) cause this",
            err=True,
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

    check_seed(seed, "--seed")
    check_output_path(out, folder=True)
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
    """A saved AE-OT, AE-OT-GAN or baseline model folder, told apart by the format in
    its config.json (:func:`aeot.models.load`)."""
    from aeot.models import load

    return load(path, device=device)


SAMPLE_SUFFIXES = (".png", ".npy")
MAX_PNG_SAMPLES = 10_000  # one image grid; more belongs in a .npy
SAMPLE_CHUNK = 2**14  # samples generated and written at a time by `aeot sample`


def _check_sample_output(out: Path, n: int) -> None:
    check_output_path(out, folder=False, option="--out", suffixes=SAMPLE_SUFFIXES)
    if out.suffix.lower() == ".png" and n > MAX_PNG_SAMPLES:
        _fail(f"a PNG grid holds at most {MAX_PNG_SAMPLES} samples, got -n {n}; use .npy")


def _check_disk_space(out: Path, n: int, sample_shape) -> None:
    """Refuse, before writing, a .npy of ``n`` float32 samples that the disk cannot hold
    (``-n`` is bounded by the disk, not the memory: 2**70 would write until it is full)."""
    import math
    import shutil

    if not sample_shape:
        return
    needed = n * math.prod(sample_shape) * 4
    folder = out.parent if str(out.parent) else Path(".")
    free = shutil.disk_usage(folder).free
    if needed > free:
        _fail(
            f"-n {n} samples of shape {tuple(sample_shape)} need {needed / 2**30:.3g} GiB, but "
            f"{folder} has {free / 2**30:.3g} GiB free"
        )


def _write_samples(x, out: Path, ncol: int | None = None, *, path: bool = False) -> None:
    """Write samples as .npy, or as a PNG: an image grid, or a scatter plot of 2D points
    (``path``: joined in order, an interpolation)."""
    from aeot.report.figures import save_image_grid, save_points_plot

    if out.suffix.lower() == ".npy":
        _write_npy_chunks(iter([x]), x.shape[0], out)
    elif x.ndim == 2 and x.shape[1] == 2:
        save_points_plot(x, out, connect=path)
    elif x.ndim != 4:
        _fail(
            f"a PNG shows images or 2D points; these samples have shape {tuple(x.shape[1:])}: "
            "use .npy"
        )
    else:
        save_image_grid(x, out, ncol=ncol)
    typer.echo(f"wrote {tuple(x.shape)} to {out}")


def _write_npy_chunks(chunks, n: int, out: Path, progress: bool = False) -> tuple[int, ...]:
    """Write the (n, ...) array given as row blocks to ``out`` (.npy, atomically), one
    block in memory at a time; returns its shape."""
    import numpy as np

    from aeot._io import atomic_write

    shape: list[tuple[int, ...]] = []

    def write(tmp: Path) -> None:
        written = 0
        with open(tmp, "wb") as handle:
            for block in chunks:
                array = np.ascontiguousarray(block.numpy())
                if not shape:
                    shape.append((n, *array.shape[1:]))
                    header = np.lib.format.header_data_from_array_1_0(array)
                    header["shape"] = shape[0]
                    np.lib.format.write_array_header_2_0(handle, header)
                handle.write(array.tobytes())
                written += array.shape[0]
                if progress:
                    typer.echo(f"\rsampled {written}/{n}", err=True, nl=written == n)
        if written != n:
            raise RuntimeError(f"wrote {written} samples, expected {n}")

    atomic_write(out, write)
    return shape[0]


@app.command()
def sample(
    model: Annotated[
        Path,
        typer.Argument(help="Model folder (`aeot fit`, `aeot fit-gan`, or a saved baseline)."),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Output .png (images) or .npy (written in blocks, any -n)."
        ),
    ],
    n: Annotated[int, typer.Option("-n", help="Number of samples.")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str | None, typer.Option(help="torch device")] = None,
) -> None:
    """Generate new samples from a saved AE-OT, AE-OT-GAN or baseline model.

    A .npy output is generated and written in blocks of SAMPLE_CHUNK samples, with
    progress on stderr, so -n is bounded by the disk, not the memory.
    """
    if n < 1:
        _fail(f"-n must be positive, got {n}")
    check_seed(seed, "--seed")
    _check_sample_output(out, n)
    loaded = _load_model(model, device)
    if out.suffix.lower() == ".png":
        _write_samples(loaded.sample(n, seed=seed), out)
        return
    shape = getattr(loaded, "input_shape_", None) or getattr(loaded, "sample_shape_", None)
    _check_disk_space(out, n, shape)
    chunks = loaded.sample_chunks(n, seed=seed, chunk=SAMPLE_CHUNK)
    shape = _write_npy_chunks(chunks, n, out, progress=n > SAMPLE_CHUNK)
    typer.echo(f"wrote {shape} to {out}")


@app.command()
def interpolate(
    model: Annotated[Path, typer.Argument(help="Model folder written by `aeot fit`.")],
    start: Annotated[
        int, typer.Option("--from", help="Index of the training item the path starts at.")
    ],
    end: Annotated[int, typer.Option("--to", help="Index of the training item it ends at.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .png (images) or .npy.")],
    steps: Annotated[int, typer.Option(help="Points along the curve.")] = 10,
    device: Annotated[str | None, typer.Option(help="torch device")] = None,
) -> None:
    """Interpolate between two training codes, staying off the singular set."""
    check_output_path(out, folder=False, option="--out", suffixes=SAMPLE_SUFFIXES)
    loaded = _load_model(model, device)
    if not callable(getattr(loaded, "interpolate", None)):
        kind = "AE-OT-GAN" if type(loaded).__name__ == "AEOTGAN" else type(loaded).__name__
        _fail(f"{model} is a {kind} model; interpolate needs an AE-OT model (`aeot fit`)")
    try:
        path = loaded.interpolate(start, end, steps)
    except ValueError as exc:
        _fail(str(exc))
    _write_samples(path, out, ncol=steps, path=True)


def main() -> None:
    app()
