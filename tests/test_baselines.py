import dataclasses

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from aeot.baselines import (
    GANBaseline,
    GANConfig,
    VAEBaseline,
    VAEConfig,
    WGANGPBaseline,
    WGANGPConfig,
    load_baseline_checkpoint,
)
from aeot.data import gaussian_mixture, grid_mixture, load_digits8, ring_mixture, stacked_digits

BASELINES = [GANBaseline, WGANGPBaseline, VAEBaseline]
TINY = {"latent_dim": 2, "hidden": (32, 32), "batch_size": 32, "iterations": 5}


@pytest.fixture(scope="module")
def ring():
    return ring_mixture(512, seed=0)


@pytest.fixture(scope="module")
def grid():
    return grid_mixture(512, seed=0)


@pytest.fixture(scope="module")
def digits():
    return load_digits8().subset(np.arange(256))


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ----------------------------------------------------------------------- shapes


@pytest.mark.parametrize("cls", BASELINES)
@pytest.mark.parametrize("which", ["ring", "grid"])
def test_trains_on_mixtures(cls, which, request):
    data = request.getfixturevalue(which)
    model = cls(**TINY).fit(data)
    assert model is not None and model.n_iter_ == 5
    x = model.sample(300, seed=1)
    assert x.shape == (300, 2) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert bool(torch.isfinite(x).all())
    for key, values in model.history_.items():
        assert len(values) == 5 and np.isfinite(values).all(), key


@pytest.mark.parametrize("cls", BASELINES)
def test_trains_on_images(cls, digits):
    model = cls(latent_dim=4, conv_width=8, batch_size=16, iterations=2).fit(digits)
    assert model.architecture_ == "conv"
    x = model.sample(10)
    assert x.shape == (10, 1, 8, 8)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_stacked_images_and_mlp_on_images(digits):
    stacked = stacked_digits(digits, n=64, seed=0)
    x = GANBaseline(latent_dim=4, conv_width=8, batch_size=16, iterations=2).fit(stacked).sample(5)
    assert x.shape == (5, 3, 8, 8)
    model = VAEBaseline(architecture="mlp", latent_dim=4, hidden=(16,), batch_size=16, iterations=2)
    x = model.fit(digits).sample(5)
    assert model.architecture_ == "mlp" and x.shape == (5, 1, 8, 8)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


# ------------------------------------------------------------------ estimator API


def test_config_defaults_follow_papers():
    wgan = WGANGPConfig()
    assert (wgan.n_critic, wgan.gp_weight, wgan.lr, wgan.betas) == (5, 10.0, 1e-4, (0.5, 0.9))
    gan = GANConfig()
    assert (gan.lr, gan.betas) == (2e-4, (0.5, 0.999))
    assert GANConfig().hidden == (128, 128, 128)
    assert VAEConfig().recon_loss == "auto"


def test_params_clone_and_repr():
    model = WGANGPBaseline(iterations=7, latent_dim=3)
    assert model.get_params()["iterations"] == 7
    assert "iterations=7" in repr(model) and "latent_dim=3" in repr(model)
    other = model.clone(seed=4)
    assert other.config.seed == 4 and other.config.iterations == 7 and model.config.seed == 0
    assert model.set_params(lr=1e-3) is model and model.config.lr == 1e-3
    assert GANBaseline({"iterations": 3}).config.iterations == 3
    assert (GANBaseline.name, WGANGPBaseline.name, VAEBaseline.name) == ("GAN", "WGAN-GP", "VAE")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"iterations": 0}, ValueError),
        ({"lr": -1.0}, ValueError),
        ({"betas": (0.5, 1.5)}, ValueError),
        ({"architecture": "resnet"}, ValueError),
        ({"latent_dim": 2.5}, TypeError),
    ],
)
def test_config_validation(kwargs, error):
    with pytest.raises(error):
        GANBaseline(**kwargs)


def test_bad_inputs(ring):
    with pytest.raises(NotFittedError):
        GANBaseline().sample(3)
    with pytest.raises(TypeError):
        GANBaseline(**TINY).fit(ring.x)
    with pytest.raises(TypeError):
        GANBaseline(WGANGPConfig())
    with pytest.raises(ValueError, match="conv"):
        GANBaseline(architecture="conv", **TINY).fit(ring)
    with pytest.raises(ValueError, match="bce"):
        VAEBaseline(recon_loss="bce", **TINY).fit(ring)


def test_sampling_is_seeded_and_fit_is_reproducible(ring):
    a = GANBaseline(**TINY).fit(ring)
    b = GANBaseline(**TINY).fit(ring)
    assert torch.equal(a.sample(50, seed=3), b.sample(50, seed=3))
    assert not torch.equal(a.sample(50, seed=3), a.sample(50, seed=4))
    c = GANBaseline(**{**TINY, "seed": 1}).fit(ring)
    assert not torch.equal(a.sample(50, seed=3), c.sample(50, seed=3))
    state = torch.get_rng_state()
    a.fit(ring)
    assert torch.equal(state, torch.get_rng_state())  # the caller's RNG is left alone


# ------------------------------------------------------------------ training signal


def _mean_distance_to_modes(x: torch.Tensor, modes) -> float:
    mu = torch.as_tensor(modes, dtype=torch.float32)
    return float(torch.cdist(x, mu).min(dim=1).values.mean())


@pytest.fixture(scope="module")
def offset():
    # modes away from the origin, where an untrained generator puts its mass: the
    # critic / discriminator has a clear signal from the first step (a ring or grid
    # centred at 0 has the same mean as the initial generator, so a near-linear critic
    # sees no gap at first)
    return gaussian_mixture([[2.0, 2.0], [2.0, 3.0], [3.0, 2.0]], 512, seed=0, std=0.05)


def test_gan_learns(offset):
    model = GANBaseline(latent_dim=2, hidden=(32, 32), batch_size=64, lr=1e-3, iterations=1)
    start = _mean_distance_to_modes(model.fit(offset).sample(500), offset.modes)
    model.set_params(iterations=200).fit(offset)
    end = _mean_distance_to_modes(model.sample(500), offset.modes)
    assert end < 0.5 * start
    d_loss = np.asarray(model.history_["d_loss"])
    # the discriminator starts near chance (log 4) and stays finite and bounded
    assert abs(d_loss[:3].mean() - np.log(4)) < 0.3
    assert np.isfinite(d_loss).all() and d_loss.max() < 3.0


def test_wgan_gp_critic_gap(offset):
    model = WGANGPBaseline(latent_dim=2, hidden=(32, 32), batch_size=64, lr=1e-3, iterations=1)
    start = _mean_distance_to_modes(model.fit(offset).sample(500), offset.modes)
    model.set_params(iterations=80).fit(offset)
    end = _mean_distance_to_modes(model.sample(500), offset.modes)
    gap = np.asarray(model.history_["wasserstein"])
    gp = np.asarray(model.history_["gradient_penalty"])
    # the critic gap E D(x) - E D(G(z)), an estimate of W1, grows to about the distance
    # between generator and data, then shrinks as the generator catches up; the
    # penalty keeps the critic close to 1-Lipschitz
    assert gap.max() > 0.5 * start
    assert gap[-10:].mean() < 0.6 * gap.max()
    assert gp[-20:].mean() < 0.1
    assert end < 0.5 * start


def test_vae_elbo_decreases(grid):
    model = VAEBaseline(latent_dim=2, hidden=(64, 64), batch_size=64, lr=1e-3, iterations=200)
    loss = np.asarray(model.fit(grid).history_["loss"])
    assert loss[-20:].mean() < 0.8 * loss[:5].mean()


# ------------------------------------------------------------------------ resume


@pytest.mark.parametrize("cls", BASELINES)
def test_resume_equals_straight_run(cls, ring, tmp_path):
    cfg = {**TINY, "iterations": 12, "device": "cpu"}
    straight = cls(**cfg).fit(ring)

    path = tmp_path / "ckpt.pt"
    first = cls(**{**cfg, "iterations": 7, "checkpoint_path": str(path), "checkpoint_every": 3})
    first.fit(ring)
    assert load_baseline_checkpoint(path)["iteration"] == 7
    resumed = cls(**{**cfg, "checkpoint_path": str(path), "checkpoint_every": 3}).fit(ring)
    assert load_baseline_checkpoint(path)["iteration"] == 12

    net = "model_" if cls is VAEBaseline else "generator_"
    a, b = _params(getattr(straight, net)), _params(getattr(resumed, net))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert straight.history_ == resumed.history_
    assert torch.equal(straight.sample(20, seed=2), resumed.sample(20, seed=2))


def test_resume_refuses_other_runs(ring, tmp_path):
    path = tmp_path / "ckpt.pt"
    WGANGPBaseline(**TINY, checkpoint_path=str(path)).fit(ring)
    with pytest.raises(ValueError, match="different run"):
        WGANGPBaseline(**{**TINY, "lr": 1e-3}, checkpoint_path=str(path)).fit(ring)
    with pytest.raises(ValueError, match="different run"):
        WGANGPBaseline(**TINY, checkpoint_path=str(path)).fit(grid_mixture(512, seed=0))
    with pytest.raises(ValueError, match="beyond"):
        WGANGPBaseline(**{**TINY, "iterations": 2}, checkpoint_path=str(path)).fit(ring)
    # a finished checkpoint of the same run is simply loaded
    again = WGANGPBaseline(**TINY, checkpoint_path=str(path)).fit(ring)
    assert len(again.history_["g_loss"]) == TINY["iterations"]
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt"):
        WGANGPBaseline(**TINY, checkpoint_path=str(path)).fit(ring)


def test_config_to_dict_roundtrip():
    cfg = WGANGPConfig(latent_dim=3, hidden=(8,))
    d = cfg.to_dict()
    assert d["hidden"] == [8] and d["betas"] == [0.5, 0.9]
    assert dataclasses.replace(cfg) == WGANGPConfig(**{**d, "hidden": (8,), "betas": (0.5, 0.9)})
