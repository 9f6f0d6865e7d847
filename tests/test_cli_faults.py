"""The CLI on bad paths, bad settings and hostile model folders: one line and exit code 2,
checked before any long work; tracebacks only for genuine bugs (or with AEOT_DEBUG=1)."""

import json
import shutil
import time

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import aeot.cli
from aeot._io import write_manifest
from aeot.cli import app
from aeot.pipeline import AEOT

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    points = torch.rand(40, 3, generator=torch.Generator().manual_seed(0))
    AEOT(autoencoder="identity", n_graph_samples=2**12, progress=False).fit(points).save(
        root / "model"
    )
    np.save(root / "points.npy", points.numpy())
    return root


def _invoke(*args, env=None):
    start = time.perf_counter()
    result = runner.invoke(app, [str(a) for a in args], env=env)
    return result, time.perf_counter() - start


def _clear_error(result, *needles):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    for needle in needles:
        assert needle in text, text


@pytest.fixture
def blocker(tmp_path):
    """A plain file where a folder is needed."""
    path = tmp_path / "a-file"
    path.write_text("x")
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["fit", "{points}", "-o", "{out}", "--autoencoder", "identity"],
        ["fit-gan", "{model}", "{points}", "-o", "{out}"],
        ["demo", "--quick", "-o", "{out}"],
        ["compare", "grid25", "--quick", "-o", "{out}"],
    ],
)
@pytest.mark.parametrize("where", ["under-a-file", "is-a-file"])
def test_folder_outputs_are_checked_before_any_work(model_dir, blocker, command, where):
    out = blocker / "model" if where == "under-a-file" else blocker
    args = [
        a.format(points=model_dir / "points.npy", model=model_dir / "model", out=out)
        for a in command
    ]
    result, seconds = _invoke(*args)
    _clear_error(result, str(blocker))
    assert seconds < 5  # refused up front, not after a fit


@pytest.mark.parametrize(
    "out, message",
    [
        ("{tmp}", "is a folder; give a file name"),
        ("{tmp}/samples.txt", "unsupported output; use .png or .npy"),
        ("{blocker}/samples.npy", "is a file, not a folder"),
    ],
)
@pytest.mark.parametrize("command", ["sample", "interpolate"])
def test_file_outputs_are_checked_before_loading(tmp_path, blocker, out, message, command):
    out = out.format(tmp=tmp_path, blocker=blocker)
    missing = tmp_path / "no-model"  # the output is refused first
    extra = ["--from", "0", "--to", "1"] if command == "interpolate" else []
    result, _ = _invoke(command, missing, "-o", out, *extra)
    _clear_error(result, message)


def test_unwritable_output_folder_is_named(model_dir, tmp_path, monkeypatch):
    import aeot._io

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(aeot._io.tempfile, "mkstemp", refuse)
    result, _ = _invoke("sample", model_dir / "model", "-o", tmp_path / "s.npy")
    _clear_error(result, "cannot write in", "Permission denied")


@pytest.mark.parametrize(
    "args, message",
    [
        (["sample", "{model}", "-o", "{tmp}/s.npy", "--seed", "-1"], "--seed must be >= 0"),
        (["sample", "{model}", "-o", "{tmp}/s.png", "-n", "20000"], "at most 10000 samples"),
        (["sample", "{model}", "-o", "{tmp}/s.png", "-n", "4"], "a PNG shows images or 2D points"),
        (["fit", "{points}", "-o", "{tmp}/m", "--seed", "-3"], "--seed must be >= 0"),
        (["demo", "-o", "{tmp}/r", "--seed", "-1"], "--seed must be >= 0"),
        # 2**70 samples were streamed to disk until it was full
        (["sample", "{model}", "-o", "{tmp}/s.npy", "-n", str(2**70)], "GiB free"),
    ],
)
def test_bad_settings_are_one_line_errors(model_dir, tmp_path, args, message):
    args = [
        a.format(model=model_dir / "model", tmp=tmp_path, points=model_dir / "points.npy")
        for a in args
    ]
    result, _ = _invoke(*args)
    _clear_error(result, message)
    assert not (tmp_path / "s.npy").exists() and not (tmp_path / "s.png").exists()


@pytest.mark.parametrize(
    "config, message",
    [
        ("[1, 2, 3]", "is not an aeot model config"),
        ("[" * 50000 + "]" * 50000, "nested too deeply"),
        ("edit:seed=x", "seed must be an integer"),
        ("edit:n_graph_samples=1099511627776", "n_graph_samples = 1099511627776 exceeds"),
    ],
)
def test_hostile_config_json(model_dir, tmp_path, config, message):
    folder = tmp_path / "model"
    shutil.copytree(model_dir / "model", folder)
    if config.startswith("edit:"):
        key, value = config[5:].split("=")
        meta = json.loads((folder / "config.json").read_text())
        meta["config"][key] = int(value) if value.isdigit() else value
        config = json.dumps(meta)
    (folder / "config.json").write_text(config)
    write_manifest(folder, ["config.json", "ot.safetensors"])  # a consistent forgery
    result, _ = _invoke("sample", folder, "-o", tmp_path / "s.npy")
    _clear_error(result, message)


def test_sample_streams_in_blocks_with_progress(model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(aeot.cli, "SAMPLE_CHUNK", 1000)
    out = tmp_path / "s.npy"
    result, _ = _invoke("sample", model_dir / "model", "-n", 2500, "--seed", 4, "-o", out)
    assert result.exit_code == 0, result.output
    assert "sampled 2500/2500" in result.output and "wrote (2500, 3)" in result.output
    expected = AEOT.load(model_dir / "model").sample(2500, seed=4).numpy()
    np.testing.assert_array_equal(np.load(out), expected)


def test_a_failing_stream_leaves_no_file(model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(aeot.cli, "SAMPLE_CHUNK", 100)

    def broken(self, n, *, seed=0, chunk=100):
        yield torch.zeros(chunk, 3)
        raise OSError("disk full (injected)")

    monkeypatch.setattr(AEOT, "sample_chunks", broken)
    result, _ = _invoke("sample", model_dir / "model", "-n", 300, "-o", tmp_path / "s.npy")
    _clear_error(result, "disk full (injected)")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_genuine_bugs_keep_their_traceback(model_dir, tmp_path, monkeypatch):
    def buggy(*args, **kwargs):
        return torch.zeros(2) + torch.zeros(3)  # a RuntimeError raised inside torch

    monkeypatch.setattr(AEOT, "load", buggy)
    result, _ = _invoke("sample", model_dir / "model", "-o", tmp_path / "s.npy")
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)

    def key_error(*args, **kwargs):
        return {}["missing"]

    monkeypatch.setattr(AEOT, "load", key_error)
    result, _ = _invoke("sample", model_dir / "model", "-o", tmp_path / "s.npy")
    assert result.exit_code == 1 and isinstance(result.exception, KeyError)


def test_aeot_debug_shows_the_traceback(tmp_path):
    args = ("sample", tmp_path / "missing", "-o", tmp_path / "s.npy", "--seed", "-1")
    result, _ = _invoke(*args, env={"AEOT_DEBUG": "1"})
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)
    result, _ = _invoke(*args, env={"AEOT_DEBUG": "0"})
    _clear_error(result, "--seed must be >= 0")


def test_cells_output_is_checked_before_the_decomposition(blocker):
    result, _ = _invoke("cells", "--widths", "2,8,8", "-o", blocker / "cells.png")
    assert result.exit_code == 2 and "not a folder" in result.output  # a typer usage box


@pytest.mark.parametrize(
    "args, message",
    [
        # matplotlib refused .txt only after the decomposition (a traceback)
        (["--widths", "2,8,8", "-o", "{tmp}/cells.txt"], "use .png or .pdf or .svg"),
        (["--widths", "2,8,8", "-o", "{tmp}/cells"], "use .png or .pdf or .svg"),
        (["--widths", "2,8", "--seed", "-1"], "--seed must be >= 0"),  # was accepted
        # a 10^10-parameter network died inside torch's allocator
        (["--widths", "2,100000,100000"], "more than the limit of 16777216"),
    ],
)
def test_cells_settings_are_checked_before_the_work(tmp_path, args, message):
    result, seconds = _invoke("cells", *[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert message in " ".join(result.output.replace("│", " ").split())
    assert seconds < 5 and list(tmp_path.iterdir()) == []
