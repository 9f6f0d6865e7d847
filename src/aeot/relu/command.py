"""``aeot cells``: exact cell decomposition of a ReLU network on a 2-D slice.

Registered by the CLI as ``app.command("cells")(cells)``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["cells", "load_model"]


def _int_list(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise typer.BadParameter(
            f"expected comma separated integers, got {text!r}", param_hint=name
        ) from None
    if not values:
        raise typer.BadParameter("expected at least one integer", param_hint=name)
    return values


def load_model(path: Path):
    """Load a network saved with ``torch.save(model, path)`` (full pickled module).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a torch file or holds no module (e.g. a state dict).

    Notes
    -----
    Unpickling runs code from the file: only load models you trust.
    """
    import torch
    from torch import nn

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ValueError(f"{path} is not a loadable torch file: {exc}") from None
    if isinstance(obj, dict):
        raise ValueError(
            f"{path} holds a dict (a state dict?), not a network; save the nn.Sequential "
            "itself with torch.save(model, path)"
        )
    if not isinstance(obj, (nn.Module, list, tuple)):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not an nn.Module")
    if isinstance(obj, nn.Module):
        obj.eval()
    return obj


def cells(
    model: Annotated[
        Path | None,
        typer.Option("--model", "-m", help="A .pt file holding an nn.Sequential (torch.save)."),
    ] = None,
    widths: Annotated[
        str | None,
        typer.Option(
            "--widths",
            "-w",
            help="Build a fresh He-initialised net instead, e.g. 2,64,64,64 "
            "(input then Linear widths, each followed by ReLU).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for --widths.")] = 0,
    bias_std: Annotated[
        float, typer.Option("--bias-std", help="Bias std for --widths (N(0, std^2) biases).")
    ] = 0.1,
    linear_output: Annotated[
        bool, typer.Option("--linear-output", help="With --widths: no ReLU after the last Linear.")
    ] = False,
    smin: Annotated[float, typer.Option("--smin", help="Slice box: lower s bound.")] = -1.0,
    smax: Annotated[float, typer.Option("--smax", help="Slice box: upper s bound.")] = 1.0,
    tmin: Annotated[float, typer.Option("--tmin", help="Slice box: lower t bound.")] = -1.0,
    tmax: Annotated[float, typer.Option("--tmax", help="Slice box: upper t bound.")] = 1.0,
    axes: Annotated[
        str,
        typer.Option("--axes", help="Input dimension > 2: the two input coordinates to slice."),
    ] = "0,1",
    input_shape: Annotated[
        str | None, typer.Option("--input-shape", help="Sample shape for conv nets, e.g. 1,28,28.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Save a PNG of the cells and their images here."),
    ] = None,
    rtol: Annotated[
        float, typer.Option("--rtol", help="Relative tolerance of the sign tests.")
    ] = 1e-9,
) -> None:
    """Count the exact cells (activation regions) of a ReLU network on a 2-D slice,
    its affine pieces, and print the rectified-linear complexity bounds."""
    from aeot.relu.bounds import complexity_bounds
    from aeot.relu.cells import decompose_slice
    from aeot.relu.network import as_relu_network, random_relu_net
    from aeot.relu.slices import PlaneSlice

    if (model is None) == (widths is None):
        raise typer.BadParameter("give exactly one of --model and --widths", param_hint="--model")
    if model is not None:
        try:
            net = load_model(model)
        except FileNotFoundError as exc:
            raise typer.BadParameter(str(exc), param_hint="--model") from None
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--model") from None
        source = str(model)
    else:
        ws = _int_list(widths, "--widths")
        try:
            net = random_relu_net(
                ws, seed=seed, bias_std=bias_std, output_activation=not linear_output
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--widths") from None
        source = f"He-initialised {widths} (seed {seed}, bias std {bias_std})"
    shape = None if input_shape is None else _int_list(input_shape, "--input-shape")
    try:
        network = as_relu_network(net, shape)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from None
    if network.input_dim < 2:
        raise typer.BadParameter(
            f"the network has input dimension {network.input_dim}; a 2-D slice needs >= 2",
            param_hint="--model",
        )
    ax = _int_list(axes, "--axes")
    try:
        if len(ax) != 2:
            raise ValueError(f"--axes needs two coordinates, got {ax}")
        plane = PlaneSlice.standard(network.input_dim, axes=(ax[0], ax[1]))
        t0 = time.perf_counter()
        decomp = decompose_slice(network, plane, (smin, smax, tmin, tmax), rtol=rtol)
        elapsed = time.perf_counter() - t0
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"network:        {network!r}  [{source}]")
    typer.echo(f"slice box:      s in [{smin}, {smax}], t in [{tmin}, {tmax}]")
    typer.echo(f"cells:          {decomp.n_cells}  ({elapsed:.3f} s)")
    typer.echo(f"affine pieces:  {decomp.n_affine_pieces}")
    typer.echo(f"total area:     {decomp.total_area:.12g} (box {decomp.box_area:.12g})")
    bw = network.bound_widths
    if len(bw) >= 3:
        bounds = complexity_bounds(bw)
        typer.echo(f"bound widths:   {bw}")
        typer.echo(f"Lei-Gu bound:   {bounds['lei_gu']}")
        typer.echo(f"Montufar bound: {bounds['montufar']}")
        typer.echo(f"Serra bound:    {bounds['serra']}")
    else:
        typer.echo("bounds:         the network has no ReLU layer (1 linear region)")
    if output is not None:
        from aeot.relu.plotting import plot_decomposition

        plot_decomposition(decomp, output)
        typer.echo(f"picture:        {output}")
