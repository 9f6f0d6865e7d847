import json

import pytest
import torch
from torch import nn

from aeot.nets import (
    ConvAutoencoder,
    ConvAutoencoderConfig,
    ConvVAEConfig,
    MLPAutoencoder,
    MLPAutoencoderConfig,
    build_autoencoder,
    load_autoencoder,
    save_autoencoder,
)

ALLOWED = (
    nn.Linear,
    nn.Conv2d,
    nn.ConvTranspose2d,
    nn.ReLU,
    nn.LeakyReLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Flatten,
    nn.Unflatten,
    nn.BatchNorm2d,
    nn.InstanceNorm2d,
    nn.GroupNorm,
)


def _check_sequential(seq):
    assert type(seq) is nn.Sequential
    for layer in seq:
        assert isinstance(layer, ALLOWED), type(layer)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64)])
@pytest.mark.parametrize("latent", [2, 16])
def test_conv_autoencoder_shapes(shape, latent):
    torch.manual_seed(0)
    model = ConvAutoencoder(ConvAutoencoderConfig(input_shape=shape, latent_dim=latent, width=8))
    x = torch.rand(3, *shape)
    z = model.encode(x)
    assert z.shape == (3, latent)
    with torch.no_grad():
        out = model(x)
    assert out.shape == x.shape
    assert float(out.min()) >= 0 and float(out.max()) <= 1  # sigmoid output
    assert model.decode(torch.randn(5, latent)).shape == (5, *shape)
    _check_sequential(model.encoder)
    _check_sequential(model.decoder)
    assert any(isinstance(m, nn.ReLU) for m in model.encoder)
    assert model.num_parameters() > 0


def test_conv_layer_counts():
    widths = {s: ConvAutoencoderConfig(input_shape=(1, s, s)).widths for s in (8, 28, 32, 64)}
    assert [len(widths[s]) for s in (8, 28, 32, 64)] == [1, 2, 3, 4]
    cfg = ConvAutoencoderConfig(input_shape=(3, 64, 64), width=16, max_width=32)
    assert cfg.widths == [16, 32, 32, 32]


@pytest.mark.parametrize("norm", ["batch", "instance", "layer"])
def test_conv_norms(norm):
    model = ConvAutoencoder(ConvAutoencoderConfig(input_shape=(1, 28, 28), norm=norm, width=4))
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)
    _check_sequential(model.encoder)


@pytest.mark.parametrize("shape", [(2,), (5,), (1, 8, 8)])
@pytest.mark.parametrize("latent", [1, 3])
def test_mlp_autoencoder_shapes(shape, latent):
    cfg = MLPAutoencoderConfig(input_shape=shape, latent_dim=latent, hidden=(16, 8))
    model = MLPAutoencoder(cfg)
    x = torch.rand(4, *shape)
    assert model.encode(x).shape == (4, latent)
    assert model(x).shape == x.shape
    _check_sequential(model.encoder)
    _check_sequential(model.decoder)
    linears = [m for m in model.encoder if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [16, 8, latent]
    if len(shape) == 1:  # points: pure Linear/ReLU stacks
        assert all(isinstance(m, (nn.Linear, nn.ReLU)) for m in model.encoder)


def test_mlp_options():
    cfg = MLPAutoencoderConfig(
        input_shape=(3,), hidden=(), activation="leaky_relu", output_activation="sigmoid"
    )
    model = MLPAutoencoder(cfg)
    assert len(model.encoder) == 1 and isinstance(model.decoder[-1], nn.Sigmoid)
    cfg = MLPAutoencoderConfig(activation="leaky_relu", negative_slope=0.1)
    leaky = [m for m in MLPAutoencoder(cfg).encoder if isinstance(m, nn.LeakyReLU)]
    assert leaky and leaky[0].negative_slope == 0.1


@pytest.mark.parametrize(
    "cfg",
    [
        MLPAutoencoderConfig(input_shape=(1, 8, 8), latent_dim=3, hidden=(32, 16)),
        ConvAutoencoderConfig(input_shape=(3, 32, 32), latent_dim=7, width=8, norm="batch"),
        ConvVAEConfig(input_shape=(1, 8, 8), latent_dim=2, width=8),
    ],
)
def test_config_round_trip(cfg):
    d = cfg.to_dict()
    assert d["kind"] == cfg.KIND
    d2 = json.loads(json.dumps(d))
    back = type(cfg).from_dict(d2)
    assert back == cfg
    model = build_autoencoder(d2)
    assert model.config == cfg
    assert build_autoencoder(cfg).config == cfg


def test_config_errors():
    with pytest.raises(ValueError, match="kind"):
        build_autoencoder({"latent_dim": 2})
    with pytest.raises(ValueError, match="kind"):
        build_autoencoder({"kind": "transformer"})
    with pytest.raises(ValueError, match="unknown MLPAutoencoderConfig field"):
        MLPAutoencoderConfig.from_dict({"kind": "mlp", "latent": 2})
    with pytest.raises(ValueError, match="has kind 'conv'"):
        ConvAutoencoderConfig.from_dict({"kind": "mlp"})
    with pytest.raises(ValueError, match="activation"):
        MLPAutoencoderConfig(activation="gelu")
    with pytest.raises(ValueError, match="latent_dim"):
        MLPAutoencoderConfig(latent_dim=0)
    with pytest.raises(ValueError, match="even"):
        ConvAutoencoderConfig(input_shape=(1, 7, 7))
    with pytest.raises(ValueError, match="3 entries"):
        ConvAutoencoderConfig(input_shape=(28, 28))
    with pytest.raises(ValueError, match="norm"):
        ConvAutoencoderConfig(norm="group")


def test_wrong_input_shape_messages():
    conv = ConvAutoencoder(ConvAutoencoderConfig(input_shape=(1, 28, 28), width=4))
    with pytest.raises(
        ValueError, match=r"expected images of shape \(1, 28, 28\), got \(3, 32, 32\)"
    ):
        conv.encode(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="leading batch dimension"):
        conv(torch.rand(1, 28, 28))
    with pytest.raises(ValueError, match=r"latent codes of shape \(32,\)"):
        conv.decode(torch.rand(2, 5))
    mlp = MLPAutoencoder(MLPAutoencoderConfig(input_shape=(2,)))
    with pytest.raises(ValueError, match=r"expected inputs of shape \(2,\), got \(3,\)"):
        mlp(torch.rand(4, 3))
    with pytest.raises(TypeError, match="floating"):
        mlp(torch.ones(4, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="Tensor"):
        mlp([[0.0, 1.0]])


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = ConvAutoencoder(ConvAutoencoderConfig(input_shape=(1, 8, 8), latent_dim=4, width=8))
    save_autoencoder(tmp_path / "ae.safetensors", model)
    back = load_autoencoder(tmp_path / "ae.safetensors")
    x = torch.rand(3, 1, 8, 8)
    model.eval()
    assert torch.equal(model(x), back(x))
    with pytest.raises(FileNotFoundError):
        load_autoencoder(tmp_path / "missing.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        load_autoencoder(tmp_path / "bad.safetensors")
