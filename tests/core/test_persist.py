"""One persistence for every model (aeot.core.persist): save / load round trips of the
baselines, format dispatch by aeot.models.load, and the folder checks (manifest, format,
shapes, finite weights, a config asking for huge networks)."""

import json
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from aeot.baselines import GANBaseline, VAEBaseline, WGANGPBaseline
from aeot.core.persist import UnverifiedModelWarning, read_folder, save_folder
from aeot.data import load_digits8, ring_mixture
from aeot.models import load

BASELINES = [GANBaseline, WGANGPBaseline, VAEBaseline]
TINY = {"latent_dim": 2, "hidden": (32, 32), "batch_size": 32, "iterations": 5}


@pytest.fixture(scope="module")
def ring():
    return ring_mixture(256, seed=0)


@pytest.fixture(scope="module")
def fitted(ring):
    return {cls: cls(**TINY).fit(ring) for cls in BASELINES}


@pytest.mark.parametrize("cls", BASELINES)
def test_baseline_round_trip_gives_the_same_samples(cls, fitted, tmp_path):
    model = fitted[cls]
    model.save(tmp_path / "m")
    again = cls.load(tmp_path / "m")
    assert torch.equal(again.sample(300, seed=3), model.sample(300, seed=3))
    assert again.get_params() == model.get_params()
    assert again.history_ == model.history_ and again.n_iter_ == model.n_iter_
    for key in cls._module_keys:
        a, b = getattr(model, f"{key}_").state_dict(), getattr(again, f"{key}_").state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # aeot.models.load reads the class from the folder
    assert type(load(tmp_path / "m")) is cls


def test_image_baseline_round_trip(tmp_path):
    digits = load_digits8().subset(np.arange(128))
    model = GANBaseline(latent_dim=4, conv_width=8, batch_size=16, iterations=2).fit(digits)
    model.save(tmp_path / "g")
    again = load(tmp_path / "g")
    assert again.architecture_ == "conv" and again.sample_shape_ == (1, 8, 8)
    assert torch.equal(again.sample(20, seed=1), model.sample(20, seed=1))


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_sample_chunks_concatenate_to_sample(fitted, chunk):
    model = fitted[GANBaseline]
    whole = model.sample(150, seed=5)
    parts = list(model.sample_chunks(150, seed=5, chunk=chunk))
    assert [p.shape[0] for p in parts][:-1] == [chunk] * (len(parts) - 1)
    assert torch.equal(torch.cat(parts), whole)


def test_load_refuses_another_baseline_and_foreign_formats(fitted, tmp_path):
    fitted[GANBaseline].save(tmp_path / "gan")
    with pytest.raises(ValueError, match="holds a 'GANBaseline', not a VAEBaseline"):
        VAEBaseline.load(tmp_path / "gan")
    with pytest.raises(FileNotFoundError, match="not found"):
        load(tmp_path / "nothing")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"format": "pickle"}))
    with pytest.raises(ValueError, match="not an aeot model config: it names format 'pickle'"):
        load(tmp_path / "other")


def test_changed_or_added_files_are_refused(fitted, tmp_path):
    folder = tmp_path / "gan"
    fitted[GANBaseline].save(folder)
    state = load_file(folder / "generator.safetensors")
    state = {k: v.clone() for k, v in state.items()}
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] += 1
    save_file(state, folder / "generator.safetensors")
    with pytest.raises(ValueError, match=r"generator\.safetensors differs"):
        GANBaseline.load(folder)


def _unsealed(fitted, tmp_path, name="gan"):
    """A saved GAN folder without its manifest (as an older aeot wrote it)."""
    folder = tmp_path / name
    fitted[GANBaseline].save(folder)
    (folder / "manifest.json").unlink()
    return folder


def test_unsealed_folder_loads_with_a_warning(fitted, tmp_path):
    folder = _unsealed(fitted, tmp_path)
    with pytest.warns(UnverifiedModelWarning, match="has no manifest.json"):
        again = GANBaseline.load(folder)
    assert torch.equal(again.sample(10), fitted[GANBaseline].sample(10))


def test_weights_that_do_not_fit_the_config_are_refused(fitted, tmp_path):
    folder = _unsealed(fitted, tmp_path)
    meta = json.loads((folder / "config.json").read_text())
    meta["config"]["hidden"] = [64, 64]
    (folder / "config.json").write_text(json.dumps(meta))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnverifiedModelWarning)
        with pytest.raises(
            ValueError, match=r"does not fit .* has shape \(32,\), the config gives \(64,\)"
        ):
            GANBaseline.load(folder)


def test_a_config_asking_for_huge_networks_allocates_nothing(fitted, tmp_path):
    """Built on the meta device first: hidden = 2**20 fails on the shapes, in no time and
    without the terabytes such networks would take."""
    folder = _unsealed(fitted, tmp_path)
    meta = json.loads((folder / "config.json").read_text())
    meta["config"]["hidden"] = [2**20, 2**20]
    (folder / "config.json").write_text(json.dumps(meta))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnverifiedModelWarning)
        with pytest.raises(ValueError, match="does not fit"):
            GANBaseline.load(folder)


def test_non_finite_weights_and_damaged_config_are_refused(fitted, tmp_path):
    folder = _unsealed(fitted, tmp_path)
    state = {k: v.clone() for k, v in load_file(folder / "generator.safetensors").items()}
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key][0] = float("nan")
    save_file(state, folder / "generator.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnverifiedModelWarning)
        with pytest.raises(ValueError, match="holds NaN or inf"):
            GANBaseline.load(folder)
        folder = _unsealed(fitted, tmp_path, "gan2")
        meta = json.loads((folder / "config.json").read_text())
        meta["sample_shape"] = [0]
        meta["data_kind"] = "sound"
        (folder / "config.json").write_text(json.dumps(meta))
        with pytest.raises(ValueError, match=r"'sample_shape' must be .*'data_kind' must be"):
            GANBaseline.load(folder)


def test_save_folder_writes_config_components_and_manifest(tmp_path):
    net = torch.nn.Linear(3, 2)
    with save_folder(tmp_path / "f", format="test-format", config={"a": 1}, meta={"b": 2}) as out:
        out.module("net", net)
        out.tensors("extra", {"t": torch.arange(4.0)})
    saved = read_folder(
        tmp_path / "f", format="test-format", files=["net.safetensors"], what="test"
    )
    assert saved.config == {"a": 1} and saved.meta["b"] == 2
    again = saved.load_module("net", torch.nn.Linear(3, 2))
    assert torch.equal(again.weight, net.weight)
    assert torch.equal(saved.tensors("extra")["t"], torch.arange(4.0))
    manifest = json.loads((tmp_path / "f" / "manifest.json").read_text())
    assert sorted(manifest["files"]) == ["config.json", "extra.safetensors", "net.safetensors"]
    with pytest.raises(ValueError, match="is not an other model config"):
        read_folder(tmp_path / "f", format="other-format", files=[], what="other")


def test_cli_samples_a_saved_baseline_and_refuses_to_interpolate_it(fitted, tmp_path):
    from typer.testing import CliRunner

    from aeot.cli import app

    runner = CliRunner()
    fitted[VAEBaseline].save(tmp_path / "vae")
    out = tmp_path / "s.npy"
    result = runner.invoke(app, ["sample", str(tmp_path / "vae"), "-n", "300", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.load(out), fitted[VAEBaseline].sample(300).numpy())
    path = tmp_path / "p.npy"
    args = ["interpolate", str(tmp_path / "vae"), "--from", "0", "--to", "1", "-o", str(path)]
    result = runner.invoke(app, args)
    assert (
        result.exit_code != 0 and "VAEBaseline model; interpolate needs an AE-OT" in result.output
    )
