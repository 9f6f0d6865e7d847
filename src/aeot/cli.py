"""The ``aeot`` command line."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="aeot",
    help="Geometric generative modelling: autoencoders, ReLU cells, semi-discrete OT, AE-OT.",
    no_args_is_help=True,
    add_completion=False,
)


def main() -> None:
    app()
