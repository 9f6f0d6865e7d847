"""``aeot cells --model``: weights-only loading by default, full unpickling only on request.

A crafted .pt whose unpickling runs code must be refused without running it; genuine
networks of the supported layers, state dicts (.pt or .safetensors) with --widths, and
(behind --trust-pickle) full pickles of custom classes still load.
"""

from __future__ import annotations

import builtins
import os

import pytest
import torch
import typer
from safetensors.torch import save_file
from torch import nn
from typer.testing import CliRunner

from aeot.cli.cells import cells
from aeot.relu import decompose_slice, random_relu_net
from aeot.relu.loading import load_model, load_weights


class _Payload:
    """Unpickling this calls ``exec`` (or ``os.system``) to create a marker file."""

    def __init__(self, marker, via_system: bool = False):
        self.marker, self.via_system = str(marker), via_system

    def __reduce__(self):
        if self.via_system:
            return (os.system, (f"touch '{self.marker}'",))
        return (builtins.exec, (f"open({self.marker!r}, 'w').close()",))


class CustomReluNet(nn.Sequential):
    """A genuine network whose class is not among the weights-only layers."""


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("cells")(cells)
    app.command("other")(lambda: None)  # keep "cells" a sub-command
    return app


def _invoke(*args: str):
    return CliRunner().invoke(_app(), ["cells", *args])


def _text(output: str) -> str:
    """CLI output on one line, without the borders of rich's error box."""
    return " ".join(output.replace("│", " ").split())


def _n_cells(output: str) -> int:
    return int(output.split("cells:")[1].split()[0])


def _crafted(tmp_path, kind: str):
    marker = tmp_path / f"marker-{kind}"
    path = tmp_path / f"{kind}.pt"
    payload = _Payload(marker, via_system=kind == "system")
    if kind in ("exec", "system"):
        torch.save(payload, path)
    elif kind == "inside-network":
        net = random_relu_net([2, 4, 2], seed=0)
        net.note = payload  # a genuine network carrying the payload
        torch.save(net, path)
    elif kind == "inside-state-dict":
        state = dict(random_relu_net([2, 4, 2], seed=0).state_dict())
        state["extra"] = payload
        torch.save(state, path)
    elif kind == "legacy-format":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    return path, marker


KINDS = ["exec", "system", "inside-network", "inside-state-dict", "legacy-format"]


@pytest.mark.parametrize("kind", KINDS)
def test_crafted_model_file_is_refused_without_running_its_code(tmp_path, kind):
    path, marker = _crafted(tmp_path, kind)
    res = _invoke("--model", str(path))
    assert res.exit_code != 0
    text = _text(res.output)
    assert "would run code from the file" in text and "--trust-pickle" in text
    assert not marker.exists()
    with pytest.raises(ValueError, match=r"it was not unpickled in full"):
        load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_crafted_weights_file_is_refused_with_widths(tmp_path, kind):
    path, marker = _crafted(tmp_path, kind)
    res = _invoke("--model", str(path), "--widths", "2,4,2")
    assert res.exit_code != 0
    assert "not a weights-only torch file" in _text(res.output)
    assert not marker.exists()


def test_refusal_names_what_the_file_refers_to(tmp_path):
    path, _ = _crafted(tmp_path, "exec")
    with pytest.raises(ValueError, match=r"needs full unpickling \(it refers to exec\)"):
        load_model(path)
    custom = tmp_path / "custom.pt"
    torch.save(CustomReluNet(nn.Linear(2, 3), nn.ReLU()), custom)
    with pytest.raises(ValueError, match=r"it refers to [\w.]*CustomReluNet"):
        load_model(custom)


def test_network_of_supported_layers_loads_weights_only(tmp_path):
    """torch.save(model) of Sequential / Linear / ReLU / ... needs no opt-in."""
    net = nn.Sequential(
        nn.Linear(3, 6),
        nn.LeakyReLU(0.2),
        nn.Sequential(nn.Linear(6, 4), nn.ReLU()),
        nn.Dropout(0.1),
        nn.BatchNorm1d(4),
        nn.Identity(),
        nn.Linear(4, 2),
    ).eval()
    path = tmp_path / "net.pt"
    torch.save(net, path)
    loaded = load_model(path)
    x = torch.randn(10, 3)
    assert torch.equal(loaded(x), net(x))
    res = _invoke("--model", str(path))
    assert res.exit_code == 0, res.output
    assert "warning" not in res.output


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_state_dict_with_widths_is_that_network(tmp_path, suffix):
    net = random_relu_net([2, 7, 5], seed=4, output_activation=False)
    path = tmp_path / f"weights{suffix}"
    if suffix == ".pt":
        torch.save(net.state_dict(), path)
    else:
        save_file(net.state_dict(), str(path))
    assert set(load_weights(path)) == set(net.state_dict())
    res = _invoke("--model", str(path), "--widths", "2,7,5", "--linear-output")
    assert res.exit_code == 0, res.output
    assert _n_cells(res.output) == decompose_slice(net).n_cells
    wrong = _invoke("--model", str(path), "--widths", "2,8,5", "--linear-output")
    assert wrong.exit_code != 0
    assert "does not fit the --widths 2,8,5 architecture" in _text(wrong.output)


def test_weights_alone_need_an_architecture(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file(random_relu_net([2, 3]).state_dict(), str(path))
    res = _invoke("--model", str(path))
    assert res.exit_code != 0
    assert "give the architecture with --widths" in _text(res.output)


def test_trust_pickle_loads_a_genuine_full_model_and_warns(tmp_path):
    net = CustomReluNet(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 2))
    path = tmp_path / "custom.pt"
    torch.save(net, path)
    refused = _invoke("--model", str(path))
    assert refused.exit_code != 0 and "--trust-pickle" in _text(refused.output)
    res = _invoke("--model", str(path), "--trust-pickle")
    assert res.exit_code == 0, res.output
    assert "warning: --trust-pickle" in res.output and "runs any code" in res.output
    assert _n_cells(res.output) == decompose_slice(net).n_cells
    with pytest.warns(UserWarning, match=r"runs any code the file holds"):
        assert isinstance(load_model(path, trust_pickle=True), CustomReluNet)


def test_trust_pickle_is_documented_as_dangerous_and_only_for_full_models(tmp_path):
    res = CliRunner().invoke(_app(), ["cells", "--help"], terminal_width=200)
    help_text = _text(res.output)
    assert "--trust-pickle" in help_text and "DANGEROUS" in help_text
    assert "runs any code" in help_text
    res = _invoke("--widths", "2,4", "--trust-pickle")
    assert res.exit_code != 0
    assert "applies to a full pickled --model only" in _text(res.output)


def test_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(os.urandom(300))
    with pytest.raises(ValueError, match=r"garbage.pt (cannot be read weights-only|is not a)"):
        load_model(path)
