"""Model folders: saved whole or not at all, sealed by a manifest, and checked on load.

Faults injected at every step of AEOT.save (and a real SIGKILL) must leave the previous
model loadable and no temporary files; tampered, mixed, NaN-weighted or oversized
folders must be refused naming the file or the config key.
"""

import json
import shutil
import subprocess
import sys
import time

import pytest
import torch

import aeot._io
import aeot.core.persist
import aeot.pipeline
from aeot._io import load_tensors, save_tensors, write_manifest
from aeot.pipeline import AEOT, UnverifiedModelWarning

MODEL_FILES = ["config.json", "ot.safetensors", "autoencoder.safetensors"]


def _fit(seed: int, latent: int = 3) -> AEOT:
    model = AEOT(
        autoencoder="mlp",
        latent_dim=latent,
        hidden=(8,),
        epochs=1,
        n_graph_samples=2**12,
        ot_max_iter=5,
        seed=seed,
        progress=False,
    )
    return model.fit(torch.rand(40, 6, generator=torch.Generator().manual_seed(seed)))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("fits")
    _fit(0).save(root / "a")
    _fit(1).save(root / "b")
    return root


def _copy(models, name, tmp_path) -> "Path":  # noqa: F821
    target = tmp_path / "model"
    shutil.copytree(models / name, target)
    return target


def _reseal(folder):
    write_manifest(folder, [n for n in MODEL_FILES if (folder / n).exists()])


def _leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".") or ".tmp" in p.name)


def _same_model(folder, reference) -> bool:
    return torch.equal(AEOT.load(folder).codes_, AEOT.load(reference).codes_)


def test_save_writes_a_manifest_and_keeps_other_entries(models, tmp_path):
    folder = _copy(models, "a", tmp_path)
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "ot.ckpt").write_bytes(b"resume state")
    AEOT.load(models / "b").save(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sorted(manifest["files"]) == sorted(MODEL_FILES)
    assert (folder / "checkpoints" / "ot.ckpt").read_bytes() == b"resume state"
    assert _same_model(folder, models / "b")
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "target, call",
    [
        ("aeot.pipeline.save_autoencoder", 1),
        ("aeot.core.persist.save_tensors", 1),
        ("aeot.core.persist.save_json", 1),
        ("aeot.core.persist.write_manifest", 1),
        ("os.rename", 2),  # the swap: old folder aside (1) is undone, new one in place (2)
    ],
)
def test_a_failing_save_leaves_the_previous_model_and_no_temporary_files(
    models, tmp_path, monkeypatch, target, call
):
    folder = _copy(models, "a", tmp_path)
    (folder / "checkpoints").mkdir()
    module, name = target.rsplit(".", 1)
    owner = {
        "aeot.pipeline": aeot.pipeline,
        "aeot.core.persist": aeot.core.persist,
        "os": aeot._io.os,
    }[module]
    real = getattr(owner, name)
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise OSError(f"injected fault in {name}")
        return real(*args, **kwargs)

    other = AEOT.load(models / "b")
    monkeypatch.setattr(owner, name, failing)
    with pytest.raises(OSError, match="injected fault"):
        other.save(folder)
    monkeypatch.undo()
    assert _same_model(folder, models / "a")
    assert (folder / "checkpoints").is_dir()
    assert _leftovers(tmp_path) == []


_SAVE_LOOP = """
import sys
from aeot.pipeline import AEOT
model = AEOT.load(sys.argv[1])
print("ready", flush=True)
while True:
    model.save(sys.argv[2])
"""


@pytest.mark.parametrize("delay", [0.05, 0.23])
def test_sigkill_during_save_never_leaves_a_mixed_folder(models, tmp_path, delay):
    folder = _copy(models, "a", tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-c", _SAVE_LOOP, str(models / "b"), str(folder)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(delay)
    finally:
        child.kill()
        child.wait(timeout=30)
    if not folder.exists():  # killed between the two renames: the old model is kept aside
        with pytest.raises(FileNotFoundError, match="interrupted save left the previous"):
            AEOT.load(folder)
        return
    loaded = AEOT.load(folder)  # a whole model, verified by its manifest
    assert any(torch.equal(loaded.codes_, AEOT.load(models / name).codes_) for name in ("a", "b"))
    loaded.save(folder)  # the next save removes what the killed one left
    assert _leftovers(tmp_path) == []


def test_saving_over_a_file_is_refused(models, tmp_path):
    (tmp_path / "model").write_text("not a folder")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        AEOT.load(models / "a").save(tmp_path / "model")
    assert _leftovers(tmp_path) == []


# ------------------------------------------------------------ tampered folders


def test_one_flipped_byte_is_named(models, tmp_path):
    folder = _copy(models, "a", tmp_path)
    data = bytearray((folder / "ot.safetensors").read_bytes())
    data[-5] ^= 0x10
    (folder / "ot.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"ot.safetensors differs from the copy recorded"):
        AEOT.load(folder)


@pytest.mark.parametrize("file", ["autoencoder.safetensors", "config.json", "ot.safetensors"])
def test_a_file_of_another_fit_is_named(models, tmp_path, file):
    folder = _copy(models, "a", tmp_path)
    shutil.copy(models / "b" / file, folder / file)
    with pytest.raises(ValueError, match=f"{file} differs"):
        AEOT.load(folder)


def _forged_codes(models, tmp_path, edit):
    """A copy of model "a" whose stored codes are replaced by ``edit(codes)``, resealed."""
    folder = _copy(models, "a", tmp_path)
    tensors = load_tensors(folder / "ot.safetensors")
    tensors["codes"] = edit(tensors["codes"])
    save_tensors(folder / "ot.safetensors", tensors)
    _reseal(folder)
    return folder


def test_codes_of_another_fit_are_refused_even_with_a_consistent_manifest(models, tmp_path):
    other = load_tensors(models / "b" / "ot.safetensors")["codes"]
    folder = _forged_codes(models, tmp_path, lambda codes: other)
    with pytest.raises(ValueError, match="codes and the OT state come from different models"):
        AEOT.load(folder)


def test_weights_that_are_not_the_code_frequencies_are_refused(models, tmp_path):
    folder = _forged_codes(models, tmp_path, lambda codes: torch.cat([codes, codes[:1]]))
    with pytest.raises(ValueError, match="weights are not the frequencies of the codes"):
        AEOT.load(folder)


def test_nan_autoencoder_weights_are_refused(models, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    folder = _copy(models, "a", tmp_path)
    path = folder / "autoencoder.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_tensors(path)
    name = sorted(tensors)[0]
    tensors[name][...] = float("nan")
    save_file(tensors, str(path), metadata=metadata)
    _reseal(folder)
    with pytest.raises(ValueError, match=f"weight '{name}' holds .* NaN or infinite"):
        AEOT.load(folder)


def test_latent_dim_of_the_config_must_match_the_targets(models, tmp_path):
    folder = _copy(models, "a", tmp_path)
    meta = json.loads((folder / "config.json").read_text())
    meta["config"]["latent_dim"] = 5
    (folder / "config.json").write_text(json.dumps(meta))
    _reseal(folder)
    with pytest.raises(ValueError, match=r"config latent_dim 5.*files from different models"):
        AEOT.load(folder)


def test_folder_without_manifest_loads_with_a_warning(models, tmp_path):
    folder = _copy(models, "a", tmp_path)
    (folder / "manifest.json").unlink()
    with pytest.warns(UnverifiedModelWarning, match="has no manifest.json"):
        model = AEOT.load(folder)
    assert torch.isfinite(model.sample(4)).all()


@pytest.mark.parametrize(
    "manifest, error, match",
    [
        ("[1, 2]", ValueError, "not an aeot manifest"),
        ('{"format": "aeot-manifest", "files": {"../x": "0"}}', ValueError, "not a file of"),
        ("{", ValueError, "not valid JSON"),
        ("[" * 100000, ValueError, "nested too deeply"),
    ],
)
def test_damaged_manifest(models, tmp_path, manifest, error, match):
    folder = _copy(models, "a", tmp_path)
    (folder / "manifest.json").write_text(manifest)
    with pytest.raises(error, match=match):
        AEOT.load(folder)


# -------------------------------------------------------------- resource bombs


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("n_graph_samples", 2**40, "n_graph_samples = 1099511627776 exceeds the limit"),
        ("hidden", [10**6], r"hidden\[0\] = 1000000 exceeds the limit"),
        ("latent_dim", 2**30, "latent_dim = 1073741824 exceeds the limit"),
        ("batch_size", 2**40, "batch_size = 1099511627776 exceeds the limit"),
        ("seed", "x", "seed must be an integer"),
        ("seed", -1, "seed must be >= 0"),
        ("ot_tol", "0.1", "ot_tol must be a positive finite number"),
        ("ot_time_limit", -1, "ot_time_limit must be positive seconds or None"),
        ("ot_time_limit", "inf", "ot_time_limit must be positive seconds or None"),
    ],
)
def test_absurd_config_values_are_refused_before_allocating(models, tmp_path, key, value, match):
    folder = _copy(models, "a", tmp_path)
    meta = json.loads((folder / "config.json").read_text())
    meta["config"][key] = value
    (folder / "config.json").write_text(json.dumps(meta))
    _reseal(folder)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        AEOT.load(folder)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    "ot, match",
    [
        ({"errors": [0.01], "converged": "false"}, "'converged' must be true or false"),
        ({"errors": [], "n_iter": "3"}, "'n_iter' must be an integer"),
        ({"errors": [], "method": 5}, "'method' must be a string"),
        ({"errors": [0.1], "best_iteration": 2}, r"'best_iteration' must lie in \[0, 1\]"),
        ({"errors": [0.1], "best_iteration": True}, "'best_iteration' must be an integer"),
        ({"errors": [0.1], "noise": "0.1"}, "'noise' must be a number"),
        ({"errors": [0.1], "noise": -0.5}, "'noise' must be a finite number >= 0"),
        ({"errors": [0.1], "noise": -1}, "'noise' must be a finite number >= 0"),
    ],
)
def test_ot_summary_types_are_checked(models, tmp_path, ot, match):
    """bool("false") is True: a string "false" loaded as a converged solve."""
    folder = _copy(models, "a", tmp_path)
    meta = json.loads((folder / "config.json").read_text())
    meta["ot"] = ot
    (folder / "config.json").write_text(json.dumps(meta))
    _reseal(folder)
    with pytest.raises(ValueError, match=match):
        AEOT.load(folder)


def test_a_killed_writers_temporary_file_is_removed(tmp_path):
    """A killed `aeot sample` left a hidden .tmp as large as its output for good."""
    from aeot._io import save_json

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    stale = tmp_path / f".out.json.{dead}-abc123.tmp"
    stale.write_bytes(b"partial")
    alive = tmp_path / ".out.json.1-abc123.tmp"  # pid 1 is running: kept
    alive.write_bytes(b"partial")
    save_json(tmp_path / "out.json", {"a": 1})
    assert not stale.exists() and alive.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, "out.json"]


def test_huge_width_in_autoencoder_metadata_is_refused_before_building(models, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    folder = _copy(models, "a", tmp_path)
    path = folder / "autoencoder.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        config = json.loads(handle.metadata()["config"])
    config["hidden"] = [10**6, 10**6]  # ~10^12 parameters if built
    save_file(load_tensors(path), str(path), metadata={"config": json.dumps(config)})
    _reseal(folder)
    start = time.perf_counter()
    with pytest.raises(ValueError, match="weights do not match the stored config"):
        AEOT.load(folder)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    "values, error",
    [
        ({"seed": "x"}, TypeError),
        ({"seed": 2**50}, ValueError),
        ({"hidden": 5}, ValueError),
        ({"lr": float("nan")}, ValueError),
        ({"loss": "huber"}, ValueError),
        ({"ot_method": "sgd"}, ValueError),
        ({"progress": "yes"}, ValueError),
        ({"device": "tpu"}, ValueError),  # once accepted, failing only at fit
    ],
)
def test_bad_constructor_settings(values, error):
    name = next(iter(values))
    with pytest.raises(error, match=name):
        AEOT(**values)


def test_numpy_integer_settings_are_accepted():
    import numpy as np

    config = AEOT(seed=np.int64(3), latent_dim=np.int32(4), hidden=(np.int64(8),)).config
    assert (config.seed, config.latent_dim, config.hidden) == (3, 4, (8,))
    assert all(type(v) is int for v in (config.seed, config.latent_dim, *config.hidden))


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_written_files_and_folders_respect_the_umask(tmp_path, mask):
    """mkstemp / mkdtemp make 0600 / 0700 entries; what aeot writes gets the umask's mode,
    as open() and mkdir() would give (a colleague or a web server can read a report)."""
    import os
    import stat

    from aeot._io import atomic_folder, save_json

    old = os.umask(mask)
    try:
        save_json(tmp_path / "metrics.json", {"a": 1})
        with atomic_folder(tmp_path / "model") as folder:
            save_json(folder / "config.json", {"b": 2})
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "metrics.json") == 0o666 & ~mask
    assert mode(tmp_path / "model") == 0o777 & ~mask
    assert mode(tmp_path / "model" / "config.json") == 0o666 & ~mask
