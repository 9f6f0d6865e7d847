"""Pictures and the ``cells`` command."""

from __future__ import annotations

import pytest
import torch
import typer
from typer.testing import CliRunner

from aeot.cli.cells import cells
from aeot.relu import (
    PlaneSlice,
    decompose_slice,
    plot_autoencoder_cells,
    plot_cells,
    plot_decomposition,
    random_relu_net,
)
from aeot.relu.loading import load_model


def _png_ok(path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000


def test_plots_are_written(tmp_path):
    net = random_relu_net([2, 8, 8, 2], seed=0, output_activation=False)
    decomp = decompose_slice(net)
    plot_cells(decomp, tmp_path / "in.png")
    plot_cells(decomp, tmp_path / "out.png", space="image")
    plot_decomposition(decomp, tmp_path / "both.png")
    for name in ("in.png", "out.png", "both.png"):
        _png_ok(tmp_path / name)
    with pytest.raises(ValueError, match="space"):
        plot_cells(decomp, tmp_path / "x.png", space="latent")


def test_high_dimensional_images_are_projected(tmp_path):
    net = random_relu_net([2, 8, 5], seed=1)
    decomp = decompose_slice(net)
    with pytest.raises(ValueError, match="projection"):
        plot_cells(decomp, tmp_path / "x.png", space="image")
    plot_cells(decomp, tmp_path / "pca.png", space="image", projection="pca")
    _png_ok(tmp_path / "pca.png")


def test_autoencoder_pictures(tmp_path):
    enc = random_relu_net([3, 8, 2], seed=2, output_activation=False)
    dec = random_relu_net([2, 8, 3], seed=3, output_activation=False)
    plane = PlaneSlice.standard(3)
    enc_d, full_d = plot_autoencoder_cells(enc, dec, tmp_path / "ae.png", plane=plane)
    _png_ok(tmp_path / "ae.png")
    assert full_d.n_cells >= enc_d.n_cells


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("cells")(cells)
    app.command("other")(lambda: None)  # keep "cells" a sub-command
    return app


def test_command_with_widths(tmp_path):
    out = tmp_path / "cells.png"
    res = CliRunner().invoke(
        _app(), ["cells", "--widths", "2,8,8", "--seed", "1", "--smin", "-2", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "cells:" in res.output and "affine pieces:" in res.output
    assert "Serra bound:" in res.output and "Montufar bound:" in res.output
    assert "Lei-Gu bound:" in res.output
    n = int(res.output.split("cells:")[1].split()[0])
    net = random_relu_net([2, 8, 8], seed=1, bias_std=0.1)
    assert n == decompose_slice(net, box=(-2, 1, -1, 1)).n_cells
    _png_ok(out)


def test_command_with_saved_model(tmp_path):
    net = random_relu_net([4, 6, 2], seed=0, output_activation=False)
    path = tmp_path / "net.pt"
    torch.save(net, path)
    res = CliRunner().invoke(_app(), ["cells", "--model", str(path), "--axes", "1,3"])
    assert res.exit_code == 0, res.output
    assert isinstance(load_model(path), torch.nn.Sequential)


def test_command_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(_app(), ["cells", "--model", str(tmp_path / "missing.pt")])
    assert res.exit_code != 0 and "not found" in res.output
    sd = tmp_path / "sd.pt"
    torch.save(random_relu_net([2, 3]).state_dict(), sd)
    res = runner.invoke(_app(), ["cells", "--model", str(sd)])
    assert res.exit_code != 0 and "state dict" in res.output
    res = runner.invoke(_app(), ["cells"])
    assert res.exit_code != 0
    res = runner.invoke(_app(), ["cells", "--widths", "2,x"])
    assert res.exit_code != 0
    bad = tmp_path / "tanh.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh()), bad)
    res = runner.invoke(_app(), ["cells", "--model", str(bad)])
    assert res.exit_code != 0 and "Tanh" in res.output
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nope.pt")
