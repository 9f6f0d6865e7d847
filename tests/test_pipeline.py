"""AE-OT end to end on tiny data: fit, sample, interpolate, save/load, seeds, errors."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from aeot.data import grid_mixture, load_digits8
from aeot.pipeline import AEOT, DEFAULT_SPREAD, AEOTConfig


@pytest.fixture(scope="module")
def grid_model():
    data = grid_mixture(600, seed=0)
    return data, AEOT(autoencoder="identity", seed=0, n_graph_samples=2**15).fit(data)


@pytest.fixture(scope="module")
def digits_model(small_digits_config):
    data = load_digits8()
    small = data.subset(np.arange(300))
    return small, AEOT(small_digits_config).fit(small)


def test_identity_model_samples_near_the_modes(grid_model):
    data, model = grid_model
    x = model.sample(1000, seed=1)
    assert x.shape == (1000, 2)
    modes = torch.as_tensor(data.modes, dtype=torch.float32)
    nearest = torch.cdist(x, modes).min(1).values
    assert float((nearest < 3 * data.mode_std).float().mean()) > 0.9
    # new points, not copies of the targets (a cell whose facets are all singular can
    # only give its own code back; points outside the hull of a mode's centroids stay
    # close to the code of their cell)
    assert len(torch.unique(x, dim=0)) >= 990
    copies = (torch.cdist(x, model.decode(model.codes_)).min(1).values < 1e-6).float().mean()
    assert float(copies) < 0.15


def test_more_samples_than_codes(grid_model):
    _, model = grid_model
    assert model.sample(2000, seed=2).shape == (2000, 2)


def test_codes_never_mix_across_singular_facets(grid_model):
    _, model = grid_model
    info = model.sample_codes(2000, seed=3)
    singular = model.sampler_.singular_
    used = info.cells
    for a in range(used.shape[1]):
        for b in range(a + 1, used.shape[1]):
            both = (
                (used[:, a] >= 0)
                & (used[:, b] >= 0)
                & (info.weights[:, a] > 0)
                & (info.weights[:, b] > 0)
            )
            if bool(both.any()):
                assert not bool(singular.is_singular(used[both, a], used[both, b]).any())


def test_reproducible_from_seed(grid_model):
    data, model = grid_model
    torch.testing.assert_close(model.sample(50, seed=7), model.sample(50, seed=7))
    assert not torch.equal(model.sample(50, seed=7), model.sample(50, seed=8))
    again = AEOT(autoencoder="identity", seed=0, n_graph_samples=2**15).fit(data)
    torch.testing.assert_close(again.sample(50, seed=7), model.sample(50, seed=7))


def test_save_load_round_trip(tmp_path, digits_model):
    data, model = digits_model
    model.save(tmp_path / "m")
    loaded = AEOT.load(tmp_path / "m")
    torch.testing.assert_close(loaded.sample(20, seed=4), model.sample(20, seed=4))
    torch.testing.assert_close(loaded.reconstruct(data.x[:5]), model.reconstruct(data.x[:5]))
    torch.testing.assert_close(loaded.ot_.h, model.ot_.h)


def test_image_model_shapes_and_interpolation(digits_model):
    data, model = digits_model
    assert model.sample(8, seed=0).shape == (8, 1, 8, 8)
    assert model.encode(data.x[:3]).shape == (3, 4)
    same = np.nonzero(data.labels.numpy() == 1)[0]
    try:
        path = model.interpolate(int(same[0]), int(same[1]), steps=6)
    except ValueError as exc:  # two different modes: refused, never a jump
        assert "singular" in str(exc) or "component" in str(exc)
    else:
        assert path.shape == (6, 1, 8, 8)
        assert float(path.min()) >= 0 and float(path.max()) <= 1


def test_bad_input(tmp_path, digits_model):
    _, model = digits_model
    with pytest.raises(ValueError, match="shape"):
        model.reconstruct(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="NaN"):
        model.encode(torch.full((1, 1, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="out of range"):
        model.interpolate(0, 10**6)
    with pytest.raises(ValueError, match="data must be"):
        AEOT().fit(torch.zeros(5))
    with pytest.raises(NotFittedError, match="not fitted"):
        AEOT().sample(3)
    with pytest.raises(FileNotFoundError, match="model folder"):
        AEOT.load(tmp_path / "nothing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        AEOT.load(tmp_path / "broken")
    with pytest.raises(ValueError, match="autoencoder must be"):
        AEOT(autoencoder="resnet")


def test_interpolation_starts_and_ends_at_the_given_training_samples(grid_model):
    data, model = grid_model
    modes = torch.as_tensor(data.modes, dtype=torch.float32)
    mode_of = torch.cdist(data.x, modes).argmin(1)
    same = torch.nonzero(mode_of == mode_of[0]).flatten()
    a, b = int(same[0]), int(same[-1])
    path = model.interpolate(a, b, steps=8)
    assert path.shape == (8, 2)
    torch.testing.assert_close(path[0], data.x[a], atol=1e-3, rtol=0)
    torch.testing.assert_close(path[-1], data.x[b], atol=1e-3, rtol=0)
    # the whole path stays in the mode of its ends
    assert bool((torch.cdist(path, modes).argmin(1) == mode_of[0]).all())


def test_fit_checkpoints_the_ot_solve(tmp_path):
    """checkpoint_dir holds the OT solver state; a refit resumes it, other data are refused."""
    rng = torch.Generator().manual_seed(5)
    data = torch.rand(60, 3, generator=rng)
    settings = dict(autoencoder="identity", seed=0, n_graph_samples=2**12, ot_max_iter=4)
    first = AEOT(**settings, ot_tol=1e-4).fit(data, checkpoint_dir=tmp_path)
    assert (tmp_path / "ot.ckpt").is_file()
    again = AEOT(**settings, ot_tol=1e-4).fit(data, checkpoint_dir=tmp_path)
    assert torch.equal(again.ot_.h, first.ot_.h)
    assert again.ot_.errors == first.ot_.errors
    with pytest.raises(ValueError, match="different run"):
        AEOT(**settings, ot_tol=1e-4).fit(data**2, checkpoint_dir=tmp_path)


def test_ot_time_limit_stops_the_solve_at_its_best_iterate():
    """ot_time_limit reaches the Monte-Carlo solver: past it no further batch is drawn,
    and the solve reports itself unconverged with the error it measured."""
    rng = torch.Generator().manual_seed(5)
    data = torch.rand(60, 3, generator=rng)
    settings = dict(autoencoder="identity", seed=0, n_graph_samples=2**12, ot_tol=1e-4)
    free = AEOT(**settings, ot_max_iter=3).fit(data)
    assert free.ot_.n_iter == 3 and not free.ot_.converged
    limited = AEOT(**settings, ot_max_iter=3, ot_time_limit=1e-6).fit(data)
    assert limited.ot_.n_iter == 1 and not limited.ot_.converged
    assert limited.ot_.errors == free.ot_.errors[:1]  # the same first batch, measured
    assert limited.config.ot_time_limit == 1e-6


def test_saved_model_reports_its_best_iterates_error(tmp_path):
    """The saved h is the best measured iterate's; a loaded model read the last measured
    error instead (Stacked MNIST: 0.158 at fit, 0.178 after loading)."""
    rng = torch.Generator().manual_seed(5)
    data = torch.rand(60, 3, generator=rng)
    model = AEOT(autoencoder="identity", seed=0, n_graph_samples=2**12, ot_tol=1e-4, ot_max_iter=3)
    model.fit(data)
    model.ot_.best_iteration = 2  # a solve whose best iterate is not its last
    model.save(tmp_path / "m")
    loaded = AEOT.load(tmp_path / "m")
    assert loaded.ot_.best_iteration == 2
    assert loaded.ot_.error == model.ot_.errors[1] == model.ot_.error
    assert loaded.ot_.noise == model.ot_.noise


def test_interpolation_across_modes_names_the_items_and_suggests_others():
    """Refused in the user's terms (training item indices, not cell or component ids),
    with items of the first one's mode that do interpolate."""
    from aeot.data import grid_mixture

    data = grid_mixture(300, seed=0)
    model = AEOT(autoencoder="identity", seed=0).fit(data)
    labels = data.labels.numpy()
    a = 0
    b = int(np.nonzero(labels != labels[a])[0][0])  # another Gaussian: another mode
    with pytest.raises(ValueError) as info:
        model.interpolate(a, b)
    message = str(info.value)
    assert f"training item {a} and training item {b} lie in different modes" in message
    assert "component" not in message and "cell" not in message
    suggested = [int(i) for i in message.rsplit(": ", 1)[1].split(", ")]
    assert suggested and a not in suggested
    assert all(labels[i] == labels[a] for i in suggested)
    path = model.interpolate(a, suggested[0], steps=5)
    assert path.shape == (5, 2)


def test_fit_reports_each_stage_on_stderr(capsys):
    """With progress on, the OT iterations and the sampler stage print a line each (the
    screen stayed blank for minutes after the autoencoder's bar)."""
    points = torch.rand(60, 3, generator=torch.Generator().manual_seed(0))
    AEOT(autoencoder="identity", n_graph_samples=2**12, progress=True).fit(points)
    err = capsys.readouterr().err
    assert "solving OT from the uniform cube to 60 codes in d = 3" in err
    assert "OT iteration 1: L1 error" in err
    assert "estimating the cell graph and singular set" in err
    AEOT(autoencoder="identity", n_graph_samples=2**12, progress=False).fit(points)
    assert "OT iteration" not in capsys.readouterr().err


def test_spread_is_saved_and_reproduced(tmp_path, small_digits_config):
    data = load_digits8().subset(np.arange(300))
    model = AEOT(small_digits_config, spread=1.0).fit(data)
    assert model.sampler_.spread == 1.0 and model.sampler_.spread_scale_ > 0
    model.save(tmp_path / "m")
    loaded = AEOT.load(tmp_path / "m")
    assert loaded.config.spread == 1.0
    torch.testing.assert_close(loaded.sample(20, seed=3), model.sample(20, seed=3))
    chunks = torch.cat(list(model.sample_chunks(20, seed=3, chunk=7)))
    torch.testing.assert_close(chunks, model.sample(20, seed=3))


def test_pairwise_generator(tmp_path, small_digits_config):
    """generator='pairwise' (the AE-OT reference code's rule): every code is y_i or
    (1 − w) y_i + w y_j of the point's two best cells i, j, with no spread; the choice is
    saved and reloaded with the model, and bad values are refused."""
    data = load_digits8().subset(np.arange(300))
    model = AEOT(small_digits_config, generator="pairwise", pair_weight=0.3).fit(data)
    assert model.spread_ == 0.0 and model.sampler_.spread_scale_ == 0.0
    out = model.sample_codes(200, seed=1)
    assert out.method == "pairwise"
    y = model.ot_.targets.double()
    _, best = model.ot_.topk(out.points, 2)
    torch.testing.assert_close(out.winners, best[:, 0])
    mixed = out.weights[:, 1] > 0
    assert 0 < int(mixed.sum())
    expected = torch.where(mixed[:, None], 0.7 * y[best[:, 0]] + 0.3 * y[best[:, 1]], y[best[:, 0]])
    torch.testing.assert_close(out.codes.double(), expected, rtol=0, atol=1e-5)
    # a pair across a singular facet is never mixed
    assert not bool(model.sampler_.singular_.is_singular(best[mixed, 0], best[mixed, 1]).any())
    model.save(tmp_path / "m")
    loaded = AEOT.load(tmp_path / "m")
    assert (loaded.config.generator, loaded.config.pair_weight) == ("pairwise", 0.3)
    torch.testing.assert_close(loaded.sample(20, seed=3), model.sample(20, seed=3))
    with pytest.raises(ValueError, match="generator must be one of"):
        AEOT(generator="nearest")
    with pytest.raises(ValueError, match="pair_weight"):
        AEOT(generator="pairwise", pair_weight=1.5)
    with pytest.raises(ValueError, match="takes none"):
        AEOT(generator="pairwise", spread=0.5)


def test_spread_default_by_autoencoder(grid_model, digits_model):
    assert grid_model[1].spread_ == 0.0 and grid_model[1].sampler_.spread_scale_ == 0.0
    model = digits_model[1]  # small_digits_config measures in latent space
    assert model.config.spread is None and model.spread_ == DEFAULT_SPREAD["latent"]
    assert model.sampler_.spread_scale_ > 0
    assert AEOTConfig().spread_space == "data"  # the default: DEFAULT_SPREAD["data"]


def test_spread_in_data_space(tmp_path):
    """spread_space='data': decoded samples' median distance to the nearest training
    image = τ × the training images' leave-one-out median (calibrated on one draw,
    checked on another, brute-force distances here); saved and reloaded, the same
    samples without the training data. The demo's digits model: a decoder good enough
    that the plain extension's images lie nearer than the target (a poor one's lie
    farther already, and the scale stays 0)."""
    from aeot.demo import digits_aeot

    train, _ = load_digits8().split(0.85, seed=0)
    model = digits_aeot(0, progress=False)
    model.config.spread_space = "data"
    model.fit(train)
    report = model.sampler_.spread_report_
    assert report["plain_median_distance"] < report["target_median_distance"]
    x = train.x.reshape(len(train.x), -1).double()
    d = torch.cdist(x, x)
    d.fill_diagonal_(float("inf"))
    fresh = float(d.min(1).values.median())
    images = model.sample(2000, seed=5).reshape(2000, -1).double()
    reached = float(torch.cdist(images, x).min(1).values.median())
    assert reached == pytest.approx(model.spread_ * fresh, rel=0.08)
    model.save(tmp_path / "m")
    loaded = AEOT.load(tmp_path / "m")
    assert loaded.sampler_.spread_scale_ == model.sampler_.spread_scale_ > 0
    assert loaded.sampler_.spread_report_ == {}  # the saved scale: no latent calibration
    torch.testing.assert_close(loaded.sample(50, seed=3), model.sample(50, seed=3))


def test_spread_in_data_space_bad_use(grid_model, digits_model):
    with pytest.raises(ValueError, match="spread_space"):
        AEOT(spread_space="pixels")
    with pytest.raises(ValueError, match="needs an autoencoder"):
        grid_model[1].calibrate_spread(grid_model[0])
    with pytest.raises(ValueError, match="training data"):
        digits_model[1].calibrate_spread(digits_model[0].x[:100])


@pytest.mark.parametrize("bad", [-1.0, 5.0, float("nan"), "1", True])
def test_bad_spread(bad):
    with pytest.raises(ValueError, match="spread"):
        AEOT(spread=bad)
