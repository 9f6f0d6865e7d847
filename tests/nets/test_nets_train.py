import pytest
import torch

from aeot.data import load_digits8, ring_mixture
from aeot.nets import (
    ConvAutoencoder,
    ConvAutoencoderConfig,
    MLPAutoencoder,
    MLPAutoencoderConfig,
    load_checkpoint,
    train_autoencoder,
)


def small_mlp(seed=0, hidden=(32, 32)):
    torch.manual_seed(seed)
    return MLPAutoencoder(MLPAutoencoderConfig(input_shape=(2,), latent_dim=2, hidden=hidden))


def params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_mlp_on_ring_mixture_reduces_loss_a_lot():
    data = ring_mixture(1000, seed=0)
    model = small_mlp(hidden=(64, 64))
    history = train_autoencoder(
        model, data, epochs=20, batch_size=100, lr=3e-3, device="cpu", seed=0, progress=False
    )
    assert len(history) == 20
    assert history[-1] < history[0] / 50
    with torch.no_grad():
        assert torch.nn.functional.mse_loss(model(data.x), data.x) < 1e-3
    assert not model.training


def test_conv_on_digits_reduces_loss():
    data = load_digits8()
    torch.manual_seed(0)
    model = ConvAutoencoder(ConvAutoencoderConfig(input_shape=(1, 8, 8), latent_dim=8, width=16))
    with torch.no_grad():
        before = torch.nn.functional.mse_loss(model(data.x), data.x).item()
    history = train_autoencoder(
        model, data.x, epochs=2, batch_size=64, lr=2e-3, device="cpu", progress=False
    )
    with torch.no_grad():
        after = torch.nn.functional.mse_loss(model(data.x), data.x).item()
    assert history[1] < history[0]
    assert after < 0.7 * before


@pytest.mark.parametrize("loss", ["bce", "l1"])
def test_other_losses(loss):
    data = torch.rand(64, 3)
    torch.manual_seed(0)
    cfg = MLPAutoencoderConfig(input_shape=(3,), hidden=(16,), output_activation="sigmoid")
    history = train_autoencoder(
        MLPAutoencoder(cfg), data, epochs=3, loss=loss, device="cpu", progress=False
    )
    assert len(history) == 3 and all(h > 0 for h in history)


def test_deterministic_and_global_rng_untouched():
    data = ring_mixture(300, seed=1).x
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, b = small_mlp(), small_mlp()
    torch.set_rng_state(state)
    ha = train_autoencoder(a, data, epochs=3, batch_size=32, seed=5, device="cpu", progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    hb = train_autoencoder(b, data, epochs=3, batch_size=32, seed=5, device="cpu", progress=False)
    assert ha == hb and torch.equal(params(a), params(b))
    c = small_mlp()
    train_autoencoder(c, data, epochs=3, batch_size=32, seed=6, device="cpu", progress=False)
    assert not torch.equal(params(a), params(c))


def test_checkpoint_resume_equals_straight_run(tmp_path):
    data = ring_mixture(200, seed=0).x
    kw = dict(batch_size=32, lr=1e-2, seed=3, device="cpu", progress=False)
    straight = small_mlp()
    h_straight = train_autoencoder(straight, data, epochs=4, **kw)

    ckpt = tmp_path / "run" / "ckpt.pt"
    first = small_mlp()
    h_first = train_autoencoder(first, data, epochs=2, checkpoint_path=ckpt, **kw)
    assert ckpt.is_file() and load_checkpoint(ckpt)["epoch"] == 2
    assert h_first == h_straight[:2]

    resumed = small_mlp(seed=99)  # different init: the checkpoint must overwrite it
    h_resumed = train_autoencoder(resumed, data, epochs=4, checkpoint_path=ckpt, **kw)
    assert h_resumed == h_straight
    assert torch.equal(params(resumed), params(straight))
    assert load_checkpoint(ckpt)["epoch"] == 4
    assert [p.name for p in ckpt.parent.iterdir()] == ["ckpt.pt"]  # no temp files left

    # asking for the epochs already done just reloads the final state
    again = small_mlp(seed=7)
    assert train_autoencoder(again, data, epochs=4, checkpoint_path=ckpt, **kw) == h_straight
    assert torch.equal(params(again), params(straight))
    with pytest.raises(ValueError, match="already at epoch 4"):
        train_autoencoder(small_mlp(), data, epochs=3, checkpoint_path=ckpt, **kw)


def test_checkpoint_every(tmp_path):
    data = ring_mixture(64, seed=0).x
    ckpt = tmp_path / "c.pt"
    train_autoencoder(
        small_mlp(),
        data,
        epochs=5,
        checkpoint_path=ckpt,
        checkpoint_every=2,
        device="cpu",
        progress=False,
    )
    assert load_checkpoint(ckpt)["epoch"] == 5


def test_mismatched_checkpoint_is_refused(tmp_path):
    data = ring_mixture(100, seed=0).x
    ckpt = tmp_path / "c.pt"
    kw = dict(device="cpu", progress=False, checkpoint_path=ckpt)
    train_autoencoder(small_mlp(), data, epochs=1, **kw)
    before = ckpt.read_bytes()
    with pytest.raises(ValueError, match="data_shape"):
        train_autoencoder(small_mlp(), ring_mixture(120, seed=0).x, epochs=2, **kw)
    with pytest.raises(ValueError, match="data_hash"):
        train_autoencoder(small_mlp(), ring_mixture(100, seed=1).x, epochs=2, **kw)
    with pytest.raises(ValueError, match="lr"):
        train_autoencoder(small_mlp(), data, epochs=2, lr=0.5, **kw)
    with pytest.raises(ValueError, match="config"):
        train_autoencoder(small_mlp(hidden=(32, 16)), data, epochs=2, **kw)
    with pytest.raises(ValueError, match="different run"):
        train_autoencoder(small_mlp(), data, epochs=2, seed=1, **kw)
    assert ckpt.read_bytes() == before  # untouched


def test_corrupt_checkpoint(tmp_path):
    ckpt = tmp_path / "c.pt"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt"):
        train_autoencoder(
            small_mlp(),
            torch.rand(10, 2),
            epochs=1,
            device="cpu",
            progress=False,
            checkpoint_path=ckpt,
        )
    torch.save({"foo": 1}, ckpt)
    with pytest.raises(ValueError, match="not an aeot training checkpoint"):
        load_checkpoint(ckpt)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.pt")


def test_bad_inputs():
    model = small_mlp()
    kw = dict(epochs=1, device="cpu", progress=False)
    bad = torch.rand(10, 2)
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        train_autoencoder(model, bad, **kw)
    with pytest.raises(ValueError, match=r"expected samples of shape \(2,\), got \(3,\)"):
        train_autoencoder(model, torch.rand(10, 3), **kw)
    with pytest.raises(ValueError, match="loss"):
        train_autoencoder(model, torch.rand(10, 2), loss="huber", **kw)
    with pytest.raises(ValueError, match="sigmoid"):
        train_autoencoder(model, torch.rand(10, 2), loss="bce", **kw)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        train_autoencoder(model, torch.randn(10, 2) * 5, loss="bce", **kw)
    with pytest.raises(ValueError, match="epochs"):
        train_autoencoder(model, torch.rand(10, 2), epochs=0, device="cpu")
    with pytest.raises(ValueError, match="lr"):
        train_autoencoder(model, torch.rand(10, 2), lr=-1.0, **kw)
    with pytest.raises(ValueError, match="device"):
        train_autoencoder(model, torch.rand(10, 2), epochs=1, device="tpu9")
    with pytest.raises(TypeError, match="Module"):
        train_autoencoder("model", torch.rand(10, 2), **kw)
