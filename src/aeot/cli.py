"""The ``aeot`` command line."""

from __future__ import annotations

import typer

from aeot.relu.command import cells

app = typer.Typer(
    name="aeot",
    help="Geometric generative modelling: autoencoders, ReLU cells, semi-discrete OT, AE-OT.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Geometric generative modelling: autoencoders, ReLU cells, semi-discrete OT, AE-OT."""


app.command("cells")(cells)


def main() -> None:
    app()
