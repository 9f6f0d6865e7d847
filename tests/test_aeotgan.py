"""AE-OT-GAN on tiny data: content loss, training, resume, save/load, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.exceptions import NotFittedError

from aeot.aeotgan import (
    AEOTGAN,
    AEOTGANConfig,
    content_loss,
    discriminator_features,
    train_aeotgan,
)
from aeot.data import load_digits8
from aeot.nets.gan import (
    ConvDiscriminator,
    ConvDiscriminatorConfig,
    ConvGenerator,
    ConvGeneratorConfig,
)
from aeot.pipeline import AEOT

GAN_SETTINGS = dict(steps=6, batch_size=16, n_codes=200, progress=False, checkpoint_every=3)


@pytest.fixture(scope="module")
def digits_aeot():
    data = load_digits8().subset(np.arange(200))
    model = AEOT(
        autoencoder="conv",
        latent_dim=4,
        width=8,
        epochs=3,
        ot_tol=0.05,
        seed=0,
        progress=False,
        n_graph_samples=2**13,
        device="cpu",
    )
    return data, model.fit(data)


@pytest.fixture(scope="module")
def digits_gan(digits_aeot):
    data, base = digits_aeot
    return data, AEOTGAN(aeot=base, device="cpu", **GAN_SETTINGS).fit(data)


def _nets(seed=0):
    torch.manual_seed(seed)
    gen = ConvGenerator(ConvGeneratorConfig(latent_dim=3, output_shape=(1, 8, 8), width=4))
    disc = ConvDiscriminator(ConvDiscriminatorConfig(input_shape=(1, 8, 8), width=4))
    return gen, disc


# ------------------------------------------------------------------------ content loss


def test_content_loss_closed_forms():
    torch.manual_seed(0)
    fake = torch.rand(5, 1, 8, 8)
    targets = torch.rand(5, 3, 1, 8, 8)
    one_hot = torch.zeros(5, 3)
    one_hot[:, 1] = 1
    assert torch.allclose(content_loss(fake, targets, one_hot), F.l1_loss(fake, targets[:, 1]))
    assert torch.allclose(
        content_loss(fake, targets, one_hot, kind="mse"), F.mse_loss(fake, targets[:, 1])
    )
    lam = torch.softmax(torch.randn(5, 3), 1)
    expected = sum(
        lam[b, j] * (fake[b] - targets[b, j]).abs().mean() for b in range(5) for j in range(3)
    )
    assert torch.allclose(content_loss(fake, targets, lam), expected / 5)
    # an image equal to all its targets has zero loss, in pixels and in features
    _, disc = _nets()
    same = fake.unsqueeze(1).expand(5, 3, 1, 8, 8)
    assert float(content_loss(fake, same, lam, kind="features", discriminator=disc)) < 1e-12


def test_content_loss_gradient_reaches_the_generator_only():
    gen, disc = _nets()
    z = torch.randn(6, 3)
    targets = torch.rand(6, 2, 1, 8, 8)
    lam = torch.full((6, 2), 0.5)
    loss = content_loss(gen(z), targets, lam, kind="features", discriminator=disc)
    loss.backward()
    assert all(p.grad is None for p in disc.parameters())
    assert all(p.requires_grad for p in disc.parameters())  # unfrozen afterwards
    grads = [p.grad for p in gen.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert discriminator_features(disc, targets[:, 0]).shape[0] == 6


def test_content_loss_bad_input():
    fake = torch.rand(4, 1, 8, 8)
    with pytest.raises(ValueError, match="kind must be one of"):
        content_loss(fake, torch.rand(4, 2, 1, 8, 8), torch.ones(4, 2) / 2, kind="vgg")
    with pytest.raises(ValueError, match="targets must have shape"):
        content_loss(fake, torch.rand(4, 1, 8, 8), torch.ones(4, 1))
    with pytest.raises(ValueError, match="targets hold samples of shape"):
        content_loss(fake, torch.rand(4, 2, 1, 4, 4), torch.ones(4, 2) / 2)
    with pytest.raises(ValueError, match="weights must have shape"):
        content_loss(fake, torch.rand(4, 2, 1, 8, 8), torch.ones(4, 3) / 3)
    with pytest.raises(ValueError, match="needs the discriminator"):
        content_loss(fake, torch.rand(4, 2, 1, 8, 8), torch.ones(4, 2) / 2, kind="features")


# ----------------------------------------------------------------------------- training


def _pool(n_data=40, n_codes=30, k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    data = torch.rand(n_data, 1, 8, 8, generator=g)
    codes = torch.randn(n_codes, 3, generator=g)
    cells = torch.randint(n_data, (n_codes, k), generator=g)
    cells[::4, 1] = -1
    weights = torch.rand(n_codes, k, generator=g) * (cells >= 0)
    return data, codes, cells, weights / weights.sum(1, keepdim=True)


def test_resume_equals_uninterrupted_run(tmp_path):
    data, codes, cells, weights = _pool()
    cfg = AEOTGANConfig(steps=6, batch_size=8, progress=False, checkpoint_every=2, device="cpu")
    gen, disc = _nets()
    full = train_aeotgan(gen, disc, data, codes, cells, weights, cfg)

    ckpt = tmp_path / "gan.ckpt"
    gen2, disc2 = _nets()
    first = AEOTGANConfig.from_dict({**cfg.to_dict(), "steps": 4})
    part = train_aeotgan(gen2, disc2, data, codes, cells, weights, first, checkpoint_path=ckpt)
    assert len(part["d_loss"]) == 4
    gen3, disc3 = _nets()  # a fresh process: same initial networks, state from the file
    resumed = train_aeotgan(gen3, disc3, data, codes, cells, weights, cfg, checkpoint_path=ckpt)
    assert resumed == full
    for a, b in zip(gen.state_dict().values(), gen3.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(disc.state_dict().values(), disc3.state_dict().values(), strict=True):
        assert torch.equal(a, b)

    other = AEOTGANConfig.from_dict({**cfg.to_dict(), "content_weight": 1.0})
    with pytest.raises(ValueError, match="belongs to a different run"):
        train_aeotgan(*_nets(), data, codes, cells, weights, other, checkpoint_path=ckpt)


def test_training_checks_its_inputs():
    data, codes, cells, weights = _pool()
    cfg = AEOTGANConfig(steps=1, batch_size=4, progress=False, device="cpu")
    gen, disc = _nets()
    with pytest.raises(ValueError, match="data must have shape"):
        train_aeotgan(gen, disc, data[:, :, :4], codes, cells, weights, cfg)
    with pytest.raises(ValueError, match="codes must have shape"):
        train_aeotgan(gen, disc, data, codes[:, :2], cells, weights, cfg)
    with pytest.raises(ValueError, match="cells index rows up to"):
        train_aeotgan(gen, disc, data[:5], codes, cells, weights, cfg)
    with pytest.raises(ValueError, match="sum to 1"):
        train_aeotgan(gen, disc, data, codes, cells, weights * 2, cfg)
    with pytest.raises(ValueError, match="0 on padded cells"):
        train_aeotgan(gen, disc, data, codes, cells, torch.full_like(weights, 0.5), cfg)
    with pytest.raises(ValueError, match="cells \\(int64\\)"):
        train_aeotgan(gen, disc, data, codes, cells.float(), weights, cfg)
    with pytest.raises(TypeError, match="Generator"):
        train_aeotgan(disc, disc, data, codes, cells, weights, cfg)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("steps", 0, "steps"),
        ("lr_g", -1.0, "lr_g"),
        ("content_loss", "vgg", "content_loss must be one of"),
        ("gan_loss", "wgan", "gan_loss must be one of"),
        ("content_weight", float("nan"), "content_weight"),
        ("betas", (0.5, 1.0), "betas"),
    ],
)
def test_config_rejects_bad_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        AEOTGANConfig(**{field: value})
    with pytest.raises(ValueError, match=r"unknown AEOTGANConfig field\(s\)"):
        AEOTGANConfig.from_dict({"epochs": 3})


# ---------------------------------------------------------------------------- estimator


def test_fit_sample_shapes_and_history(digits_gan):
    _, model = digits_gan
    x = model.sample(10, seed=1)
    assert x.shape == (10, 1, 8, 8)
    assert float(x.min()) >= 0 and float(x.max()) <= 1  # the decoder's sigmoid
    assert torch.equal(x, model.sample(10, seed=1))
    assert not torch.equal(x, model.sample(10, seed=2))
    assert len(model.history_["content"]) == GAN_SETTINGS["steps"]
    # the generator started from the decoder and moved away from it
    decoded = model.aeot_.decode(model.aeot_.sample_codes(10, seed=1).codes)
    assert not torch.equal(x, decoded)
    assert model.generate(model.aeot_.codes_[:3]).shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="codes must have shape"):
        model.generate(torch.zeros(3, 5))


def test_save_load_round_trip(digits_gan, tmp_path):
    _, model = digits_gan
    folder = model.save(tmp_path / "gan")
    loaded = AEOTGAN.load(folder, device="cpu")
    assert torch.equal(loaded.sample(12, seed=4), model.sample(12, seed=4))
    assert loaded.config == model.config
    assert loaded.history_["d_loss"] == model.history_["d_loss"]
    for a, b in zip(
        model.discriminator_.state_dict().values(),
        loaded.discriminator_.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a.cpu(), b)
    (folder / "config.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match=r"config\.json"):
        AEOTGAN.load(folder)  # the manifest no longer matches
    (folder / "manifest.json").unlink()
    with pytest.warns(UserWarning, match=r"no manifest\.json"):
        with pytest.raises(ValueError, match="not an AE-OT-GAN model config"):
            AEOTGAN.load(folder)
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        AEOTGAN.load(tmp_path / "absent")


def test_saved_folder_is_sealed_against_swapped_files(digits_gan, tmp_path):
    # issue 20: another fit's files in the folder are refused, naming them
    _, model = digits_gan
    folder = model.save(tmp_path / "gan")
    other = model.save(tmp_path / "other")
    AEOTGAN.load(folder, device="cpu")
    # a flipped byte in the generator weights
    data = bytearray((folder / "generator.safetensors").read_bytes())
    data[-1] ^= 1
    (folder / "generator.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"generator\.safetensors"):
        AEOTGAN.load(folder, device="cpu")
    # the AE-OT model of another save (a re-sealed aeot/ folder)
    folder = model.save(tmp_path / "gan")
    model.aeot_.config.seed += 1  # a different (re-sealed) AE-OT model folder
    try:
        model.aeot_.save(other / "aeot")
    finally:
        model.aeot_.config.seed -= 1
    import shutil

    shutil.rmtree(folder / "aeot")
    shutil.copytree(other / "aeot", folder / "aeot")
    with pytest.raises(ValueError, match="not the AE-OT model this AE-OT-GAN was saved with"):
        AEOTGAN.load(folder, device="cpu")


def test_fit_resumes_from_its_checkpoint_dir(digits_aeot, digits_gan, tmp_path):
    data, base = digits_aeot
    _, reference = digits_gan
    first = AEOTGAN(aeot=base, device="cpu", **{**GAN_SETTINGS, "steps": 3})
    first.fit(data, checkpoint_dir=tmp_path)
    assert (tmp_path / "gan.ckpt").is_file()
    resumed = AEOTGAN(aeot=base, device="cpu", **GAN_SETTINGS).fit(data, checkpoint_dir=tmp_path)
    assert resumed.history_["d_loss"] == reference.history_["d_loss"]
    assert torch.equal(resumed.sample(8, seed=3), reference.sample(8, seed=3))


def test_estimator_errors(digits_aeot):
    data, base = digits_aeot
    with pytest.raises(NotFittedError, match="not fitted"):
        AEOTGAN().sample(4)
    with pytest.raises(TypeError, match="aeot must be an AEOT"):
        AEOTGAN(aeot="model")
    gan = AEOTGAN(aeot=base, device="cpu", **GAN_SETTINGS)
    with pytest.raises(ValueError, match="must be the AEOT model's training data"):
        gan.fit(data.x[:50])
    with pytest.raises(ValueError, match="not the data the AEOT model was fitted on"):
        gan.fit(data.x.flip(0))
    points = torch.randn(50, 2)
    identity = AEOT(autoencoder="identity", n_graph_samples=2**12, progress=False).fit(points)
    with pytest.raises(ValueError, match="needs an AEOT model with an autoencoder"):
        AEOTGAN(aeot=identity, **GAN_SETTINGS).fit(points)


def test_fit_says_what_it_does_before_its_bar(digits_aeot, capsys):
    """The pool sampling before the first step used to be minutes of blank screen."""
    data, base = digits_aeot
    AEOTGAN(aeot=base, device="cpu", **{**GAN_SETTINGS, "progress": True}).fit(data)
    assert "sampling the pool of 200 AE-OT codes, then 6 adversarial steps" in (
        capsys.readouterr().err
    )
