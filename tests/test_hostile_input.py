"""Hostile and broken input across the public API and the CLI (property-based).

Every case must end in a clear ``ValueError`` / ``TypeError`` / ``FileNotFoundError``
that names the problem, or in a correct answer: never a hang, a deep torch error or
a silent wrong result.
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from typer.testing import CliRunner

from aeot.cli import app
from aeot.ot import (
    BoxUniform,
    SemiDiscreteProblem,
    estimate_masses,
    solve_semidiscrete,
)
from aeot.ot.exact2d import solve_exact_2d
from aeot.pipeline import AEOT

FAST = settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
SLOWER = settings(deadline=None, max_examples=8, suppress_health_check=[HealthCheck.too_slow])
FINITE = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def _with_bad_entry(draw, shape):
    values = draw(arrays(np.float64, shape, elements=FINITE))
    index = tuple(draw(st.integers(0, n - 1)) for n in shape)
    values[index] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return values


# --------------------------------------------------------------------- the problem


def test_non_finite_entries_are_counted_chunk_by_chunk():
    """A finite chunk sum proves its chunk finite; an overflowing sum of finite entries
    (1e308 + 1e308 = inf) must still count none, and NaN / ±inf each count once."""
    from aeot._validation import _count_non_finite

    big = torch.full((10,), 1e308, dtype=torch.float64)
    assert _count_non_finite(big, chunk=4) == 0
    big[[1, 6, 9]] = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=torch.float64)
    assert _count_non_finite(big, chunk=4) == 3
    assert _count_non_finite(torch.tensor([float("inf"), -float("inf")]), chunk=2) == 2
    assert _count_non_finite(torch.tensor([1.0, float("nan")], dtype=torch.float16)) == 1
    assert _count_non_finite(torch.arange(5)) == 0


@FAST
@given(st.data(), st.integers(1, 6), st.integers(1, 4))
def test_non_finite_targets_or_weights_are_named(data, n, d):
    targets = _with_bad_entry(data.draw, (n, d))
    with pytest.raises(ValueError, match=r"targets contains .* NaN or infinite"):
        SemiDiscreteProblem(targets)
    good = np.random.default_rng(0).uniform(size=(n, d))
    weights = _with_bad_entry(data.draw, (n,))
    with pytest.raises(ValueError, match=r"weights contains .* NaN or infinite"):
        SemiDiscreteProblem(good, weights)


@FAST
@given(st.sampled_from([(0, 2), (0, 0), (3, 0), (0,), (2, 2, 2), ()]))
def test_empty_or_misshapen_targets(shape):
    with pytest.raises(ValueError, match=r"targets (is empty|must have 2 dimensions)"):
        SemiDiscreteProblem(np.zeros(shape))


@FAST
@given(
    st.sampled_from(
        [
            np.array([["a", "b"]]),
            np.ones((2, 2), dtype=complex),
            np.ones((2, 2), dtype=bool),
            torch.ones(2, 2, dtype=torch.bool),
            torch.ones(2, 2, dtype=torch.complex64),
            np.array([[1.0, None]], dtype=object),
            [[1.0, 2.0], [3.0]],
        ]
    )
)
def test_non_numeric_targets_are_type_errors(value):
    with pytest.raises(TypeError, match=r"targets must (hold real numbers|be an array)"):
        SemiDiscreteProblem(value)


def test_meta_tensors_are_refused():
    with pytest.raises(ValueError, match="meta tensor"):
        SemiDiscreteProblem(torch.rand(3, 2, device="meta"))


@FAST
@given(st.integers(2, 8), st.integers(1, 3), st.data())
def test_duplicate_targets_are_named(n, d, data):
    y = np.random.default_rng(n * 10 + d).uniform(size=(n, d))
    i, j = data.draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True))
    y[j] = y[i]
    with pytest.raises(ValueError, match=f"duplicate targets at rows \\[{min(i, j)}, {max(i, j)}"):
        SemiDiscreteProblem(y)


@FAST
@given(st.lists(st.floats(-1.0, 1.0), min_size=3, max_size=3))
def test_bad_weights(raw):
    y = np.eye(3)
    weights = np.array(raw)
    if (weights > 0).all() and abs(weights.sum() - 1) <= 1e-6:
        SemiDiscreteProblem(y, weights)  # a valid draw
        return
    with pytest.raises(ValueError, match="weights must"):
        SemiDiscreteProblem(y, weights)


@FAST
@given(st.lists(st.floats(0.05, 0.95), min_size=2, max_size=3))
def test_one_target_takes_all_the_mass(point):
    problem = SemiDiscreteProblem([point])
    result = solve_semidiscrete(problem, tol=1e-3, seed=0)
    assert result.converged and result.n_iter == 1
    assert result.cell_masses.tolist() == [1.0]
    assert result.h.tolist() == [0.0]
    if len(point) == 2:
        exact = solve_exact_2d(problem)
        assert exact.converged and exact.cell_masses.tolist() == pytest.approx([1.0])


# ------------------------------------------------------------ scales and geometry


@SLOWER
@given(st.integers(-30, 30), st.integers(0, 3))
def test_huge_and_tiny_target_scales_are_solved(exponent, seed):
    """The power cells of (c y, c h) are those of (y, h): any scale c gives a correct h."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(size=(12, 2))
    scale = 10.0**exponent
    problem = SemiDiscreteProblem(scale * y)
    result = solve_semidiscrete(problem, tol=0.03, seed=seed, max_iter=60)
    assert result.converged
    assert torch.isfinite(result.h).all()
    masses = result.measure_masses(2**16, seed=7)
    assert float((masses - problem.weights).abs().sum()) < 0.06
    # the same cells in the unscaled coordinates
    unscaled = SemiDiscreteProblem(y)
    x = unscaled.source.sample(4096, seed=3, qmc=False, dtype=torch.float64)
    scores = x @ torch.from_numpy(y).t() + result.h / scale
    assert (scores.argmax(1) == result.assign(x)).float().mean() > 0.99


@SLOWER
@given(st.integers(-30, 30), st.integers(3, 12), st.integers(0, 3))
def test_exact_2d_at_any_scale(exponent, n, seed):
    rng = np.random.default_rng(seed)
    y = rng.uniform(0.05, 0.95, (n, 2)) * 10.0**exponent
    result = solve_exact_2d(SemiDiscreteProblem(y), tol=1e-8)
    assert result.converged
    np.testing.assert_allclose(result.cell_masses.numpy(), 1 / n, rtol=1e-6)


@FAST
@given(
    st.integers(2, 12),
    st.floats(0, np.pi),
    st.floats(0.1, 0.9),
    st.floats(0.1, 0.9),
    st.integers(0, 3),
)
def test_exact_2d_collinear_targets(n, angle, cx, cy, seed):
    """Targets on one line: the cells are parallel strips with the requested masses."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(-0.3, 0.3, n))
    if np.diff(t).min() < 1e-3:
        t = np.linspace(-0.3, 0.3, n)
    y = np.c_[cx + t * np.cos(angle), cy + t * np.sin(angle)]
    weights = rng.dirichlet(np.ones(n) * 4)
    weights = np.maximum(weights, 0.02)
    weights /= weights.sum()
    result = solve_exact_2d(SemiDiscreteProblem(y, weights), tol=1e-8)
    assert result.converged
    np.testing.assert_allclose(result.cell_masses.numpy(), weights, rtol=1e-6)


def test_collinear_points_through_aeot_stay_on_their_line():
    t = torch.linspace(0, 1, 30)
    data = torch.stack([t, 0.5 * t + 0.2], 1)
    model = AEOT(autoencoder="identity", n_graph_samples=2**12, progress=False).fit(data)
    samples = model.sample(200, seed=1)
    assert torch.allclose(samples[:, 1], 0.5 * samples[:, 0] + 0.2, atol=1e-5)


def test_constant_data_generate_that_point():
    model = AEOT(autoencoder="identity", n_graph_samples=2**12, progress=False)
    samples = model.fit(torch.full((10, 3), 0.25)).sample(5)
    assert torch.equal(samples, torch.full((5, 3), 0.25))


def test_data_beyond_float32_are_named():
    with pytest.raises(ValueError, match=r"beyond the range of torch\.float32"):
        AEOT(autoencoder="identity").fit(torch.rand(10, 3, dtype=torch.float64) * 1e300)


def test_exploding_initial_heights_raise():
    # heights spread far beyond the scores: refused before the first batch, naming h0
    problem = SemiDiscreteProblem(np.random.default_rng(0).uniform(size=(3, 2)))
    with pytest.raises(ValueError, match="h0 spans 1e\\+30"):
        solve_semidiscrete(problem, h0=[1e30, 0.0, 0.0], tol=1e-3, max_iter=30)


# ------------------------------------------------------- settings and arguments


BAD_SETTINGS = st.sampled_from(
    [
        ("method", "sgd"),
        ("tol", 0.0),
        ("tol", float("nan")),
        ("tol", float("inf")),
        ("max_iter", 0),
        ("max_iter", 2.5),
        ("max_iter", True),
        ("batch_size", 1),
        ("batch_size", 2**30),
        ("growth", 1.0),
        ("growth", float("inf")),
        ("slab_fraction", 0.0),
        ("slab_fraction", 1.0),
        ("lr", -0.1),
        ("lr", float("nan")),
        ("time_limit", -1.0),
        ("seed", -1),
        ("seed", 1.5),
        ("seed", 2**60),
        ("chunk", 0),
        ("chunk", -4),
        ("dtype", torch.float16),
        ("dtype", "float32"),
        ("device", "meta"),
        ("device", "tpu"),
        ("hessian_samples", 0),
    ]
)


@FAST
@given(BAD_SETTINGS)
def test_bad_settings_are_value_errors_naming_the_field(bad):
    name, value = bad
    problem = SemiDiscreteProblem(np.eye(2) * 0.5 + 0.2)
    with pytest.raises(ValueError, match=name):
        solve_semidiscrete(problem, **{name: value})


def test_cuda_without_cuda_is_a_value_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        solve_semidiscrete(SemiDiscreteProblem(np.eye(2) * 0.5), device="cuda")


def test_not_a_problem():
    with pytest.raises(TypeError, match="SemiDiscreteProblem"):
        solve_semidiscrete(np.eye(2))
    with pytest.raises(TypeError, match="SemiDiscreteProblem"):
        estimate_masses(np.eye(2), np.zeros(2), 10)


@FAST
@given(st.data())
def test_bad_heights_and_queries(data):
    problem = SemiDiscreteProblem(np.random.default_rng(1).uniform(size=(4, 2)))
    n = data.draw(st.sampled_from([3, 5]))
    with pytest.raises(ValueError, match="h has"):
        estimate_masses(problem, np.zeros(n), 100)
    with pytest.raises(ValueError, match="h contains"):
        estimate_masses(problem, _with_bad_entry(data.draw, (4,)), 100)
    with pytest.raises(ValueError, match="h0"):
        solve_semidiscrete(problem, h0=_with_bad_entry(data.draw, (4,)))
    with pytest.raises(ValueError, match="n_samples"):
        estimate_masses(problem, np.zeros(4), data.draw(st.integers(-5, 0)))
    result = solve_semidiscrete(problem, tol=0.05, seed=0)
    with pytest.raises(ValueError, match="x contains"):
        result.assign(_with_bad_entry(data.draw, (3, 2)))
    with pytest.raises(ValueError, match="x must have shape"):
        result.assign(np.zeros((3, data.draw(st.sampled_from([1, 3])))))
    with pytest.raises(ValueError, match="x is empty"):
        result.potential(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="n_samples"):
        result.measure_masses(0)


def test_box_source_bounds():
    for low, high in [(1.0, 0.0), (0.0, 0.0), (np.nan, 1.0), (0.0, np.inf)]:
        with pytest.raises(ValueError, match="box bounds"):
            BoxUniform(2, low, high)


# ------------------------------------------------------------- corrupt model files


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    points = AEOT(autoencoder="identity", n_graph_samples=2**12, progress=False)
    points.fit(torch.rand(40, 3, generator=torch.Generator().manual_seed(0))).save(root / "points")
    mlp = AEOT(
        autoencoder="mlp",
        latent_dim=3,
        hidden=(8,),
        epochs=2,
        n_graph_samples=2**12,
        ot_max_iter=5,
        progress=False,
    )
    mlp.fit(torch.rand(40, 6, generator=torch.Generator().manual_seed(1))).save(root / "mlp")
    return root


def _reseal(folder):
    """Rewrite the manifest after editing a file: a crafted folder can carry a
    consistent manifest, so the checks behind it must hold on their own."""
    from aeot._io import write_manifest

    names = ["config.json", "ot.safetensors", "autoencoder.safetensors"]
    write_manifest(folder, [n for n in names if (folder / n).exists()])


def _copy(saved_models, name, tmp_path):
    target = tmp_path / "model"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(saved_models / name, target)
    return target


@FAST
@given(st.sampled_from(["ot.safetensors", "autoencoder.safetensors"]), st.floats(0, 0.999))
def test_truncated_safetensors(saved_models, tmp_path_factory, file, fraction):
    folder = _copy(saved_models, "mlp", tmp_path_factory.mktemp("t"))
    data = (folder / file).read_bytes()
    (folder / file).write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ValueError, match=f"{file} differs from the copy recorded"):
        AEOT.load(folder)
    _reseal(folder)
    with pytest.raises(ValueError, match="corrupt or not a safetensors file"):
        AEOT.load(folder)


@FAST
@given(st.binary(max_size=64))
def test_garbage_config_json(saved_models, tmp_path_factory, garbage):
    folder = _copy(saved_models, "points", tmp_path_factory.mktemp("j"))
    (folder / "config.json").write_bytes(garbage)
    with pytest.raises(ValueError, match="config"):
        AEOT.load(folder)
    _reseal(folder)
    with pytest.raises(ValueError, match="config"):
        AEOT.load(folder)


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False)
    | st.text(max_size=4)
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


@FAST
@given(st.sampled_from(["input_shape", "kind", "ot", "config", "format", None]), JSON)
def test_damaged_config_entries(saved_models, tmp_path_factory, key, value):
    folder = _copy(saved_models, "points", tmp_path_factory.mktemp("e"))
    meta = json.loads((folder / "config.json").read_text())
    original = meta.get(key) if key is not None else dict(meta)
    if key is None:
        meta = value
    else:
        meta[key] = value
    (folder / "config.json").write_text(json.dumps(meta))
    _reseal(folder)
    try:
        model = AEOT.load(folder)
    except (ValueError, TypeError):
        return  # a clear error (the message names the file)
    # accepted only when it still describes this model: same shape, finite samples
    assert value == original or key in ("config", "ot", "kind")
    samples = model.sample(3)
    assert samples.shape == (3, 3) and torch.isfinite(samples).all()


@pytest.mark.parametrize(
    "name, edit, match",
    [
        ("h", lambda t: t.__setitem__(0, float("nan")), "h contains"),
        ("h", lambda t: None, "h has shape"),
        ("scale", lambda t: t.zero_(), "scale must be positive"),
        ("codes", lambda t: None, "codes have"),
    ],
)
def test_damaged_ot_tensors(saved_models, tmp_path, name, edit, match):
    from aeot._io import load_tensors, save_tensors

    folder = _copy(saved_models, "points", tmp_path)
    tensors = load_tensors(folder / "ot.safetensors")
    if match == "h has shape":
        tensors["h"] = tensors["h"][:-1]
    elif match == "codes have":
        tensors["codes"] = tensors["codes"][:, :2]
    else:
        edit(tensors[name])
    save_tensors(folder / "ot.safetensors", tensors)
    _reseal(folder)
    with pytest.raises(ValueError, match=match):
        AEOT.load(folder)


def test_files_of_different_models_are_not_mixed(saved_models, tmp_path):
    folder = _copy(saved_models, "points", tmp_path)
    shutil.copy(saved_models / "mlp" / "autoencoder.safetensors", folder)
    with pytest.raises(ValueError, match=r"autoencoder\.safetensors is not listed in"):
        AEOT.load(folder)
    _reseal(folder)
    with pytest.raises(ValueError, match="files from different models"):
        AEOT.load(folder)


def test_missing_files(saved_models, tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        AEOT.load(tmp_path / "nowhere")
    folder = _copy(saved_models, "mlp", tmp_path)
    (folder / "autoencoder.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"autoencoder\.safetensors is missing but listed"):
        AEOT.load(folder)
    _reseal(folder)
    with pytest.raises(FileNotFoundError, match="autoencoder weights missing"):
        AEOT.load(folder)


@FAST
@given(st.sampled_from(["truncate", "garbage-json", "missing"]))
def test_cli_reports_corrupt_models_without_a_traceback(saved_models, tmp_path_factory, damage):
    tmp = tmp_path_factory.mktemp("cli")
    folder = _copy(saved_models, "mlp", tmp)
    if damage == "truncate":
        data = (folder / "ot.safetensors").read_bytes()
        (folder / "ot.safetensors").write_bytes(data[:100])
    elif damage == "garbage-json":
        (folder / "config.json").write_text('{"format": "aeot-model", "config": [')
    else:
        shutil.rmtree(folder)
    result = CliRunner().invoke(app, ["sample", str(folder), "-n", "4", "-o", str(tmp / "s.npy")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert str(folder) in " ".join(result.output.split()).replace("\n", "")


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    """The ``aeot`` CLI in a fresh interpreter: a crash fails the test, not pytest."""
    code = "import sys; from aeot.cli import main; sys.argv[0] = 'aeot'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_model_with_half_precision_ot_tensors_samples(saved_models, tmp_path, dtype):
    """ot.safetensors holding float16 / bfloat16 tensors (a crafted or foreign file)
    used to reach the C kernels unconverted: `aeot sample` died of heap corruption."""
    from aeot._io import load_tensors, save_tensors

    folder = _copy(saved_models, "points", tmp_path)
    tensors = load_tensors(folder / "ot.safetensors")
    for name in ("targets", "h", "cell_masses", "codes", "center", "scale"):
        tensors[name] = tensors[name].to(dtype)
    save_tensors(folder / "ot.safetensors", tensors)
    _reseal(folder)
    out = tmp_path / "samples.npy"
    run = _run_cli("sample", str(folder), "-n", "2000", "-o", str(out))
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-3000:]}"
    samples = np.load(out)
    assert samples.shape == (2000, 3) and np.isfinite(samples).all()
    model = AEOT.load(folder)  # safe in-process now
    for tensor in (model.ot_.targets, model.ot_.h, model.codes_, model.normaliser_.scale):
        assert tensor.dtype == torch.float32
    assert torch.equal(model.ot_.targets, tensors["targets"].float())  # promoted exactly
    codes = torch.rand(5000, 3).half()  # half-precision queries: promoted exactly too
    assert torch.equal(model.ot_.assign(codes), model.ot_.assign(codes.float()))


def test_model_with_half_precision_weights_is_a_clear_error(saved_models, tmp_path):
    """float16 weights no longer sum to one: refused by name, not corrected silently."""
    from aeot._io import load_tensors, save_tensors

    folder = _copy(saved_models, "points", tmp_path)
    tensors = load_tensors(folder / "ot.safetensors")
    tensors["weights"] = (tensors["weights"] * 1.001).half()
    save_tensors(folder / "ot.safetensors", tensors)
    _reseal(folder)
    run = _run_cli("sample", str(folder), "-n", "8", "-o", str(tmp_path / "s.npy"))
    assert run.returncode == 2, f"exit {run.returncode}: {run.stderr[-3000:]}"
    assert "weights must sum to 1" in run.stderr + run.stdout
    assert "Traceback" not in run.stderr + run.stdout


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n": -1}, ValueError, "n must be"),
        ({"n": 0}, ValueError, "n must be"),
        ({"n": 2.5}, TypeError, "n must be an integer"),
        ({"n": 2, "seed": -1}, ValueError, "seed must be"),
        ({"n": 2, "seed": 2**70}, ValueError, "seed must be"),
        ({"n": 2, "seed": 1.5}, TypeError, "seed must be an integer"),
    ],
)
def test_bad_sample_arguments(saved_models, kwargs, error, match):
    model = AEOT.load(saved_models / "points")
    with pytest.raises(error, match=match):
        model.sample(**kwargs)


@pytest.mark.parametrize("content", ["missing", "nan", "one-row", "ragged-dims", "complex"])
def test_cli_fit_on_bad_data(tmp_path, content):
    path = tmp_path / "points.npy"
    if content == "complex":  # once fitted on the real parts, imaginary parts dropped
        np.save(path, np.ones((10, 2)) * (1 + 2j))
    elif content == "nan":
        data = np.random.default_rng(0).uniform(size=(20, 2))
        data[3, 1] = np.nan
        np.save(path, data)
    elif content == "one-row":
        np.save(path, np.zeros((1, 2)))
    elif content == "ragged-dims":
        np.save(path, np.zeros((4, 2, 3)))
    out = tmp_path / "model"
    args = ["fit", str(path), "-o", str(out), "--autoencoder", "identity"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not (out / "config.json").exists()


def test_identity_autoencoder_on_images_is_named(tmp_path):
    """(4, 2, 3) data are images; the identity autoencoder once passed them on as 4-D
    "targets" and failed naming those."""
    np.save(tmp_path / "images.npy", np.random.default_rng(0).uniform(size=(4, 2, 3)))
    args = ["fit", str(tmp_path / "images.npy"), "-o", str(tmp_path / "m"), "--autoencoder"]
    result = CliRunner().invoke(app, [*args, "identity"])
    assert result.exit_code == 2, result.output
    assert "'identity' uses the data as codes, so it needs points" in " ".join(
        result.output.split()
    )


# ------------------------------------------------- found by benchmarks/probe_hostile.py


@pytest.fixture(scope="module")
def solved():
    problem = SemiDiscreteProblem(np.random.default_rng(9).uniform(0.05, 0.95, (10, 2)))
    return solve_semidiscrete(problem, tol=0.05, max_iter=40, seed=0)


@pytest.mark.parametrize("k", [11, 1000])
def test_topk_beyond_the_number_of_targets_is_refused(solved, k):
    """It returned padding columns with cell -1, which indexes the last target."""
    with pytest.raises(ValueError, match=f"k = {k} exceeds the number of targets \\(10\\)"):
        solved.topk(torch.rand(5, 2, dtype=torch.float64), k)
    assert solved.topk(torch.rand(5, 2, dtype=torch.float64), 10)[1].min() >= 0


def test_queries_that_require_grad(solved):
    """addmm(out=...) refused them with a raw autograd error."""
    x = torch.rand(50, 2, dtype=torch.float64, requires_grad=True)
    assert torch.equal(solved.assign(x), solved.assign(x.detach()))  # indices: no gradient
    assert torch.equal(solved.transport(x), solved.transport(x.detach()))
    for call in (lambda: solved.potential(x), lambda: solved.topk(x, 2)):
        with pytest.raises(ValueError, match=r"x requires grad.*x\.detach"):
            call()


def test_sparse_targets_are_a_type_error():
    dense = torch.rand(5, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match="targets must be a dense tensor, got layout"):
        SemiDiscreteProblem(dense.to_sparse())
    with pytest.raises(TypeError, match="x must be a dense tensor"):
        solve_exact_2d(SemiDiscreteProblem(dense)).assign(dense.to_sparse())


@pytest.mark.parametrize(
    "seed, error, match",
    [(-1, ValueError, "seed must be >= 0"), ("x", TypeError, "seed must be an integer")],
)
def test_measure_seeds_are_checked(solved, seed, error, match):
    """A negative seed was accepted, a string one failed on `str + int`."""
    with pytest.raises(error, match=match):
        solved.l1_error(1000, seed=seed)


def test_half_precision_working_dtype_is_named():
    problem = SemiDiscreteProblem(np.eye(2) * 0.5 + 0.2)
    with pytest.raises(TypeError, match="the working dtype must be float32 or float64"):
        estimate_masses(problem, np.zeros(2), 100, dtype=torch.float16)


@pytest.mark.parametrize(
    "fn",
    [
        lambda n, g: [[0.5, 0.5]] * n,  # a point mass
        lambda n, g: torch.randint(0, 2, (n, 2), generator=g),  # four atoms
    ],
)
def test_sources_with_atoms_are_named(fn):
    """Their heights diverged and the solver blamed h0 for a float32 overflow."""
    from aeot.ot import CallableSource

    problem = SemiDiscreteProblem(np.random.default_rng(0).uniform(size=(6, 2)))
    problem = SemiDiscreteProblem(problem.targets, source=CallableSource(fn, 2))
    with pytest.raises(ValueError, match=r"distinct point\(s\) among its first .* atoms"):
        solve_semidiscrete(problem, tol=0.05, max_iter=20)


def test_continuous_callable_sources_still_solve():
    from aeot.ot import CallableSource

    y = np.random.default_rng(1).uniform(0.1, 0.9, size=(6, 2))
    source = CallableSource(lambda n, g: torch.rand(n, 2, generator=g, dtype=torch.float64), 2)
    result = solve_semidiscrete(SemiDiscreteProblem(y, source=source), tol=0.05, seed=0)
    assert result.converged


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((0, 1, 10**9), ValueError, "steps = 1000000000 exceeds the limit"),
        (("a", 1), TypeError, "interpolation end point must hold real numbers"),
        ((np.zeros(5), 1), ValueError, r"interpolation end point must have shape \(n, 3\)"),
    ],
)
def test_bad_interpolation_arguments(saved_models, args, error, match):
    """steps = 10^9 was allocated (the machine's OOM killer ended it); a string end
    point failed inside torch.as_tensor."""
    with pytest.raises(error, match=match):
        AEOT.load(saved_models / "points").interpolate(*args)


def test_numpy_integer_interpolation_indices(saved_models):
    model = AEOT.load(saved_models / "points")
    path = model.interpolate(np.int64(0), np.int64(1), steps=5)
    assert torch.equal(path, model.interpolate(0, 1, steps=5))
