import pytest
import torch
from torch import nn

from aeot.nets import (
    ConvAutoencoder,
    ConvAutoencoderConfig,
    ConvDiscriminator,
    ConvDiscriminatorConfig,
    ConvGenerator,
    ConvGeneratorConfig,
    Generator,
    MLPDiscriminator,
    MLPDiscriminatorConfig,
    MLPGenerator,
    MLPGeneratorConfig,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64)])
@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_conv_generator_and_discriminator_shapes(shape, norm):
    torch.manual_seed(0)
    g = ConvGenerator(ConvGeneratorConfig(latent_dim=6, output_shape=shape, width=4, norm=norm))
    d = ConvDiscriminator(ConvDiscriminatorConfig(input_shape=shape, width=4, norm=norm))
    with torch.no_grad():
        x = g.sample(3)
    assert x.shape == (3, *shape) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert d(x).shape == (3,)
    assert type(g.net) is nn.Sequential and type(d.net) is nn.Sequential


def test_discriminator_norm_config():
    d = ConvDiscriminator(ConvDiscriminatorConfig(input_shape=(1, 28, 28), norm="none"))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    d = ConvDiscriminator(ConvDiscriminatorConfig(input_shape=(1, 28, 28), norm="batch"))
    assert any(isinstance(m, nn.BatchNorm2d) for m in d.modules())


def test_spectral_norm():
    torch.manual_seed(0)
    d = MLPDiscriminator(MLPDiscriminatorConfig(input_shape=(2,), spectral_norm=True))
    for _ in range(30):  # power iterations converge during training-mode forwards
        d(torch.randn(8, 2))
    d.eval()
    for layer in d.net:
        if isinstance(layer, nn.Linear):
            with torch.no_grad():
                sigma = float(torch.linalg.matrix_norm(layer.weight, ord=2))
            assert sigma == pytest.approx(1.0, abs=0.05)
    c = ConvDiscriminator(
        ConvDiscriminatorConfig(input_shape=(3, 32, 32), width=4, spectral_norm=True)
    )
    assert c(torch.rand(2, 3, 32, 32)).shape == (2,)


def test_mlp_generator_and_discriminator():
    g = MLPGenerator(MLPGeneratorConfig(latent_dim=3, output_shape=(2,), hidden=(16, 8)))
    linears = [m for m in g.net if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [16, 8, 2]
    assert g(torch.randn(5, 3)).shape == (5, 2)
    d = MLPDiscriminator(MLPDiscriminatorConfig(input_shape=(1, 8, 8)))
    assert d(torch.rand(4, 1, 8, 8)).shape == (4,)
    with pytest.raises(ValueError, match=r"latent codes of shape \(3,\)"):
        g(torch.randn(5, 4))
    with pytest.raises(ValueError, match=r"expected images of shape \(1, 8, 8\)"):
        d(torch.rand(4, 1, 28, 28))


def test_generator_from_autoencoder():
    ae = ConvAutoencoder(ConvAutoencoderConfig(input_shape=(1, 8, 8), latent_dim=4, width=8))
    g = Generator.from_autoencoder(ae)
    z = torch.randn(3, 4)
    assert torch.equal(g(z), ae.decode(z))
    assert g.net is not ae.decoder
    assert Generator.from_autoencoder(ae, copy_weights=False).net is ae.decoder


def test_config_round_trip():
    for cfg in (
        MLPGeneratorConfig(latent_dim=3, hidden=(4,)),
        ConvGeneratorConfig(output_shape=(3, 32, 32)),
        MLPDiscriminatorConfig(spectral_norm=True),
        ConvDiscriminatorConfig(norm="layer"),
    ):
        assert type(cfg).from_dict(cfg.to_dict()) == cfg


def test_gradient_penalty_unit_linear_critic_is_zero():
    torch.manual_seed(0)
    critic = nn.Linear(5, 1)
    with torch.no_grad():
        w = torch.randn(1, 5)
        critic.weight.copy_(w / w.norm())
    real, fake = torch.randn(16, 5), torch.randn(16, 5)
    gp = gradient_penalty(critic, real, fake)
    assert float(gp.detach()) == pytest.approx(0.0, abs=1e-8)
    # a critic of slope 3 has penalty (3 - 1)^2 = 4
    with torch.no_grad():
        critic.weight.mul_(3)
    assert float(gradient_penalty(critic, real, fake).detach()) == pytest.approx(4.0, rel=1e-5)


def test_gradient_penalty_backpropagates_and_images():
    torch.manual_seed(0)
    d = ConvDiscriminator(ConvDiscriminatorConfig(input_shape=(1, 8, 8), width=4, norm="layer"))
    gp = gradient_penalty(d, torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8))
    gp.backward()
    # every weight matrix gets a gradient (biases do not enter the input gradient)
    weights = [p for p in d.parameters() if p.ndim > 1]
    assert weights and all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(d, torch.rand(4, 1, 8, 8), torch.rand(3, 1, 8, 8))


def test_gan_losses():
    r, f = torch.tensor([2.0, 1.0]), torch.tensor([-1.0, 0.0])
    assert float(discriminator_loss(r, f, "wgan")) == pytest.approx(-2.0)
    assert float(discriminator_loss(r, f, "hinge")) == pytest.approx(0.5)
    sp = torch.nn.functional.softplus
    expected = float(sp(-r).mean() + sp(f).mean())
    assert float(discriminator_loss(r, f, "ns")) == pytest.approx(expected)
    assert float(generator_loss(f, "ns")) == pytest.approx(float(sp(-f).mean()))
    assert float(generator_loss(f, "wgan")) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="kind"):
        generator_loss(f, "lsgan")
