"""Network reading, activated paths and local affine maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from aeot.relu import (
    activation_pattern,
    as_relu_network,
    chain,
    count_patterns,
    local_affine_map,
    pattern_labels,
    pattern_matrix,
    random_relu_net,
    same_activation_path,
)


def _double(net: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(net).double().eval()


def test_stages_and_widths():
    net = nn.Sequential(
        nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 4), nn.LeakyReLU(0.2), nn.Linear(4, 2)
    )
    rn = as_relu_network(net)
    assert rn.widths == [3, 5, 4, 2]
    assert rn.neuron_counts == [5, 4]
    assert rn.bound_widths == [3, 5, 4, 2]
    assert [st.negative_slope for st in rn.stages] == [0.0, 0.2, None]
    x = np.random.default_rng(0).normal(size=(50, 3))
    with torch.no_grad():
        ref = _double(net)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(rn.forward(x), ref, rtol=1e-12, atol=1e-12)


def test_list_of_modules_and_nested_sequential():
    torch.manual_seed(0)
    mods = [nn.Linear(2, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 3), nn.ReLU()), nn.Linear(3, 1)]
    rn = as_relu_network(mods)
    assert rn.neuron_counts == [4, 3]
    seq = chain(nn.Sequential(*mods[:2]), mods[2], [mods[3]])
    assert isinstance(seq, nn.Sequential) and len(seq) == 5
    x = torch.randn(20, 2)
    torch.testing.assert_close(seq(x), nn.Sequential(*mods)(x))


def test_chain_encoder_decoder_and_autoencoder_module():
    enc = random_relu_net([3, 8, 2], seed=1, output_activation=False)
    dec = random_relu_net([2, 8, 3], seed=2, output_activation=False)
    full = as_relu_network(chain(enc, dec))
    n_enc = len(as_relu_network(enc).stages)
    x = np.random.default_rng(1).normal(size=(10, 3))
    np.testing.assert_allclose(full.forward(x, upto=n_enc), as_relu_network(enc).forward(x))

    class AE(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = enc, dec

        def forward(self, x):
            return self.decoder(self.encoder(x))

    np.testing.assert_allclose(as_relu_network(AE()).forward(x), full.forward(x))


def test_unsupported_layer_is_named():
    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    with pytest.raises(ValueError, match="Tanh"):
        as_relu_network(net)
    with pytest.raises(ValueError, match="MaxPool2d"):
        activation_pattern(nn.Sequential(nn.MaxPool2d(2)), np.zeros((1, 1, 4, 4)))


def test_training_mode_batchnorm_rejected_and_eval_accepted():
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 1))
    with pytest.raises(ValueError, match="training mode"):
        as_relu_network(net)
    net.eval()
    with torch.no_grad():
        net[1].running_mean.copy_(torch.tensor([0.1, -0.2, 0.3]))
        net[1].running_var.copy_(torch.tensor([2.0, 0.5, 1.5]))
    rn = as_relu_network(net)
    x = np.random.default_rng(2).normal(size=(30, 2))
    with torch.no_grad():
        ref = _double(net)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(rn.forward(x), ref, atol=1e-12)


def test_nan_weights_rejected():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    with torch.no_grad():
        net[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        as_relu_network(net)


def test_conv_net_is_read_as_dense_matrices():
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Conv2d(1, 2, 2), nn.ReLU(), nn.AvgPool2d(1), nn.Flatten(), nn.Linear(8, 3), nn.ReLU()
    )
    with pytest.raises(ValueError, match="input_shape"):
        as_relu_network(net)
    rn = as_relu_network(net, input_shape=(1, 3, 3))
    assert rn.input_dim == 9 and rn.neuron_counts == [8, 3]
    x = torch.randn(40, 1, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        ref = _double(net)(x).numpy()
    np.testing.assert_allclose(rn.forward(x.reshape(40, 9).numpy()), ref, atol=1e-12)
    ours = rn.patterns(x.reshape(40, -1).numpy())
    theirs = activation_pattern(net, x)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b.numpy())


def test_activation_pattern_matches_preactivations():
    net = random_relu_net([2, 6, 5, 1], seed=4, output_activation=False)
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    pats = activation_pattern(net, x)
    assert [p.shape for p in pats] == [(100, 6), (100, 5)]
    with torch.no_grad():
        z1 = _double(net)[0](x.double())
    torch.testing.assert_close(pats[0], z1 > 0)
    single = activation_pattern(net, x[0].numpy())
    assert single[0].shape == (1, 6)
    assert pattern_matrix(net, x).shape == (100, 11)


def test_equivalence_and_counting():
    # one neuron: two regions, half-planes x0 > 0 and x0 <= 0
    net = nn.Sequential(nn.Linear(2, 1), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
        net[0].bias.zero_()
    x = np.array([[1.0, 5.0], [2.0, -3.0], [-1.0, 0.0], [-4.0, 2.0]])
    y = np.array([[3.0, 0.0], [-2.0, 0.0], [-1.0, 9.0], [1.0, 1.0]])
    np.testing.assert_array_equal(
        same_activation_path(net, x, y).numpy(), [True, False, True, False]
    )
    assert count_patterns(net, x) == 2
    labels, pats = pattern_labels(net, x)
    assert labels[0] == labels[1] != labels[2] == labels[3]
    assert pats.shape == (2, 1)


def test_local_affine_map_reproduces_network():
    net = random_relu_net([3, 7, 7, 2], seed=5, output_activation=False, negative_slope=0.1)
    x = np.random.default_rng(6).normal(size=(25, 3))
    a, b = local_affine_map(net, x)
    assert a.shape == (25, 2, 3) and b.shape == (25, 2)
    with torch.no_grad():
        f = _double(net)(torch.from_numpy(x))
    torch.testing.assert_close(torch.einsum("noi,ni->no", a, torch.from_numpy(x)) + b, f)
    # same as the maps read off the activation patterns
    rn = as_relu_network(net)
    a2, b2 = rn.affine_maps(rn.patterns(x))
    np.testing.assert_allclose(a.numpy(), a2, atol=1e-12)
    np.testing.assert_allclose(b.numpy(), b2, atol=1e-12)
    a1, b1 = local_affine_map(net, x[0])
    assert a1.shape == (2, 3) and b1.shape == (2,)


def test_bad_inputs():
    net = random_relu_net([2, 4, 1], seed=0)
    with pytest.raises(ValueError, match="input dimension 2"):
        activation_pattern(net, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        activation_pattern(net, np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="NaN"):
        as_relu_network(net).patterns(np.array([[np.inf, 0.0]]))
    with pytest.raises(ValueError, match="expected"):
        as_relu_network(net).forward(np.zeros((5, 3)))
    with pytest.raises(TypeError):
        activation_pattern(net, np.array([["a", "b"]]))
    with pytest.raises(ValueError):
        random_relu_net([2])
    with pytest.raises(TypeError):
        as_relu_network(42)
