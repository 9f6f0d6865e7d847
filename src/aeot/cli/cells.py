"""``aeot cells``: exact cell decomposition of a ReLU network on a 2-D slice.

Registered by the CLI as ``app.command("cells")(cells)``; the file reading is
:mod:`aeot.relu.loading`.
"""

from __future__ import annotations

import itertools
import time
import warnings
from pathlib import Path
from typing import Annotated

import typer

from aeot._checks import check_output_path, check_seed
from aeot.relu.loading import condensed_message, load_model, load_weights

__all__ = ["cells"]

#: picture formats of ``--output`` (matplotlib would fail on others only after the work)
PICTURE_SUFFIXES = (".png", ".pdf", ".svg")
#: a larger --widths network is refused before it is allocated (10^5-wide layers once
#: died inside torch's allocator); its exact cells would be out of reach anyway
MAX_PARAMETERS = 2**24


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


def cells(
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            "-m",
            help="A .pt file holding an nn.Sequential (torch.save(model, path)) of supported "
            "layers, read weights-only: no code from the file runs. With --widths: a state "
            "dict (.pt or .safetensors) for that architecture.",
        ),
    ] = None,
    widths: Annotated[
        str | None,
        typer.Option(
            "--widths",
            "-w",
            help="Build a fresh He-initialised net instead, e.g. 2,64,64,64 "
            "(input then Linear widths, each followed by ReLU); with --model, the "
            "architecture its state dict is loaded into.",
        ),
    ] = None,
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle",
            help="DANGEROUS: unpickle --model in full when it needs more than weights "
            "(e.g. a custom module class). Unpickling runs any code the file holds: use "
            "only on files you made yourself.",
        ),
    ] = False,
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

    if model is None and widths is None:
        raise typer.BadParameter("give --model, --widths or both", param_hint="--model")
    if output is not None:  # before the decomposition, not after it
        try:
            check_output_path(output, folder=False, option="--output", suffixes=PICTURE_SUFFIXES)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--output") from None
    try:
        check_seed(seed, "--seed")
    except (TypeError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--seed") from None
    if trust_pickle and (model is None or widths is not None):
        raise typer.BadParameter(
            "--trust-pickle applies to a full pickled --model only", param_hint="--trust-pickle"
        )
    if widths is not None:
        ws = _int_list(widths, "--widths")
        size = sum((a + 1) * b for a, b in itertools.pairwise(ws))
        if size > MAX_PARAMETERS:
            raise typer.BadParameter(
                f"{widths} would build a network of {size} parameters, more than the limit "
                f"of {MAX_PARAMETERS}",
                param_hint="--widths",
            )
        try:
            net = random_relu_net(
                ws, seed=seed, bias_std=bias_std, output_activation=not linear_output
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--widths") from None
        source = f"He-initialised {widths} (seed {seed}, bias std {bias_std})"
    if model is not None and widths is not None:
        try:
            state = load_weights(model)
            net.load_state_dict(state)
        except (FileNotFoundError, ValueError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--model") from None
        except RuntimeError as exc:  # missing / unexpected keys, wrong shapes
            raise typer.BadParameter(
                f"{model} does not fit the --widths {widths} architecture: "
                f"{condensed_message(exc)}",
                param_hint="--model",
            ) from None
        source = f"{model} (weights) in the {widths} architecture"
    elif model is not None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            try:
                net = load_model(model, trust_pickle=trust_pickle)
            except (FileNotFoundError, ValueError) as exc:
                raise typer.BadParameter(str(exc), param_hint="--model") from None
            finally:  # the --trust-pickle warning, when the file was unpickled in full
                for warning in caught:
                    if "--trust-pickle" in str(warning.message):
                        typer.echo(f"warning: {warning.message}", err=True)
        source = str(model)
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
