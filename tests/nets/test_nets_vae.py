import pytest
import torch
from torch import nn

from aeot.data import load_digits8
from aeot.nets import (
    MLPVAE,
    ConvVAE,
    ConvVAEConfig,
    MLPVAEConfig,
    build_autoencoder,
    kl_divergence,
    reconstruction_loss,
    train_autoencoder,
)


def test_kl_matches_closed_form_and_torch():
    torch.manual_seed(0)
    mu = torch.randn(6, 4, dtype=torch.float64)
    logvar = torch.randn(6, 4, dtype=torch.float64)
    kl = kl_divergence(mu, logvar)
    var = logvar.exp()
    closed = 0.5 * (var + mu**2 - 1 - torch.log(var)).sum(1)
    torch.testing.assert_close(kl, closed)
    q = torch.distributions.Normal(mu, var.sqrt())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.testing.assert_close(kl, torch.distributions.kl_divergence(q, p).sum(1))
    # zero exactly at the prior
    assert float(kl_divergence(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max()) == 0.0


def test_reconstruction_loss():
    x = torch.tensor([[0.0, 1.0]])
    x_hat = torch.tensor([[0.5, 0.5]])
    torch.testing.assert_close(reconstruction_loss(x_hat, x, "mse"), torch.tensor([0.5]))
    torch.testing.assert_close(
        reconstruction_loss(x_hat, x, "bce"), torch.tensor([2 * torch.log(torch.tensor(2.0))])
    )
    with pytest.raises(ValueError, match="recon_loss"):
        reconstruction_loss(x_hat, x, "l1")


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_conv_vae_shapes(shape):
    torch.manual_seed(0)
    vae = ConvVAE(ConvVAEConfig(input_shape=shape, latent_dim=5, width=4))
    x = torch.rand(2, *shape)
    mu, logvar = vae.encode_stats(x)
    assert mu.shape == logvar.shape == (2, 5)
    assert torch.equal(vae.encode(x), mu)
    assert vae(x).shape == x.shape
    assert vae.sample(3).shape == (3, *shape)
    assert type(vae.encoder) is nn.Sequential and type(vae.decoder) is nn.Sequential
    total, recon, kl = vae.loss(x)
    assert total.ndim == 0 and torch.isclose(total, recon + kl)


def test_mlp_vae_loss_and_training():
    torch.manual_seed(0)
    data = torch.randn(256, 3)
    vae = MLPVAE(MLPVAEConfig(input_shape=(3,), latent_dim=2, hidden=(32,), beta=0.5))
    total, recon, kl = vae.loss(data)
    assert torch.isclose(total, recon + 0.5 * kl)
    history = train_autoencoder(vae, data, epochs=5, lr=3e-3, device="cpu", progress=False)
    assert history[-1] < history[0]
    vae.eval()
    assert torch.equal(vae(data[:4]), vae(data[:4]))  # eval mode decodes the mean


def test_conv_vae_trains_on_digits():
    torch.manual_seed(0)
    data = load_digits8().x[:512]
    vae = ConvVAE(ConvVAEConfig(input_shape=(1, 8, 8), latent_dim=4, width=16))
    history = train_autoencoder(vae, data, epochs=3, batch_size=64, device="cpu", progress=False)
    assert history[-1] < history[0]


def test_sample_with_generator_is_reproducible():
    vae = MLPVAE(MLPVAEConfig(input_shape=(2,), latent_dim=2))
    a = vae.sample(4, generator=torch.Generator().manual_seed(1))
    b = vae.sample(4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_vae_config_errors_and_factory():
    with pytest.raises(ValueError, match="sigmoid"):
        MLPVAEConfig(recon_loss="bce", output_activation="none")
    with pytest.raises(ValueError, match="beta"):
        ConvVAEConfig(beta=-1)
    cfg = MLPVAEConfig(input_shape=(4,), latent_dim=2, recon_loss="mse")
    assert isinstance(build_autoencoder(cfg.to_dict()), MLPVAE)
    with pytest.raises(ValueError, match="loss"):
        train_autoencoder(MLPVAE(cfg), torch.rand(8, 4), epochs=1, loss="l1", progress=False)


def test_vae_checkpoint_resume_is_exact(tmp_path):
    data = torch.randn(96, 3)
    cfg = MLPVAEConfig(input_shape=(3,), latent_dim=2, hidden=(16,))
    kw = dict(batch_size=32, seed=2, device="cpu", progress=False)
    torch.manual_seed(0)
    straight = MLPVAE(cfg)
    h_straight = train_autoencoder(straight, data, epochs=4, **kw)
    ckpt = tmp_path / "vae.pt"
    torch.manual_seed(0)
    train_autoencoder(MLPVAE(cfg), data, epochs=2, checkpoint_path=ckpt, **kw)
    resumed = MLPVAE(cfg)
    assert train_autoencoder(resumed, data, epochs=4, checkpoint_path=ckpt, **kw) == h_straight
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
