import numpy as np
import pytest
import torch

from aeot.data import Dataset, load_digits8, ring_mixture, stacked_digits, stacked_mode_ids


def test_points_dataset_properties():
    d = ring_mixture(100, seed=0)
    assert d.shape == (100, 2) and len(d) == 100 and d.dim == 2
    assert d.image_shape is None and d.sample_shape == (2,)
    assert "ring8" in repr(d)


def test_image_dataset_properties():
    d = Dataset(torch.rand(5, 3, 4, 6), kind="image", name="tiny")
    assert d.image_shape == (3, 4, 6) and d.dim == 72
    assert d.flat().shape == (5, 72)


def test_split_is_deterministic_and_partitions():
    d = ring_mixture(101, seed=0)
    a1, b1 = d.split(0.8, seed=5)
    a2, b2 = d.split(0.8, seed=5)
    a3, _ = d.split(0.8, seed=6)
    assert len(a1) == 81 and len(b1) == 20
    assert torch.equal(a1.x, a2.x) and torch.equal(b1.labels, b2.labels)
    assert not torch.equal(a1.x, a3.x)
    both = torch.cat([a1.x, b1.x])
    assert torch.equal(torch.sort(both[:, 0]).values, torch.sort(d.x[:, 0]).values)
    assert a1.modes is d.modes or np.array_equal(a1.modes, d.modes)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            d.split(bad)


def test_to_device_and_dtype():
    d = ring_mixture(10, seed=0)
    e = d.to("cpu", dtype=torch.float64)
    assert e.x.dtype == torch.float64 and d.x.dtype == torch.float32
    assert e.labels is not None and e.modes.shape == (8, 2)


def test_subset():
    d = ring_mixture(10, seed=0)
    s = d.subset([0, 2, 4])
    assert torch.equal(s.x, d.x[[0, 2, 4]]) and torch.equal(s.labels, d.labels[[0, 2, 4]])
    with pytest.raises(IndexError):
        d.subset([10])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"x": torch.tensor([[0.0, float("nan")]])}, ValueError, "NaN"),
        ({"x": torch.zeros(3, 2, 2), "kind": "points"}, ValueError, r"\(n, d\)"),
        ({"x": torch.zeros(3, 2), "kind": "image"}, ValueError, r"\(n, c, h, w\)"),
        ({"x": torch.full((2, 1, 2, 2), 2.0), "kind": "image"}, ValueError, r"\[0, 1\]"),
        ({"x": torch.zeros(3, 2), "kind": "video"}, ValueError, "kind"),
        (
            {"x": torch.zeros(3, 2), "labels": torch.zeros(4, dtype=torch.long)},
            ValueError,
            "labels",
        ),
        ({"x": torch.zeros(3, 2), "labels": torch.zeros(3)}, TypeError, "integers"),
        ({"x": torch.zeros(3, 2), "modes": np.zeros((2, 3))}, ValueError, "modes"),
        ({"x": torch.zeros(0, 2)}, ValueError, "empty"),
    ],
)
def test_bad_inputs(kwargs, error, match):
    with pytest.raises(error, match=match):
        Dataset(**kwargs)


def test_digits8():
    d = load_digits8()
    assert d.shape == (1797, 1, 8, 8) and d.kind == "image"
    assert d.x.dtype == torch.float32
    assert float(d.x.min()) == 0.0 and float(d.x.max()) == 1.0
    # values are k/16
    assert torch.allclose(d.x * 16, torch.round(d.x * 16))
    assert set(d.labels.tolist()) == set(range(10))
    # a fresh copy every call
    d.x[0] = 0.5
    assert not torch.equal(load_digits8().x[0], d.x[0])


def test_stacked_digits_from_8x8():
    base = load_digits8()
    s = stacked_digits(base, 200, seed=1)
    assert s.shape == (200, 3, 8, 8) and s.labels.shape == (200, 3)
    ids = stacked_mode_ids(s.labels)
    assert torch.equal(ids, s.labels[:, 0] * 100 + s.labels[:, 1] * 10 + s.labels[:, 2])
    assert int(ids.min()) >= 0 and int(ids.max()) <= 999
    # each channel is an image of base carrying that channel's label
    for i in range(5):
        for ch in range(3):
            matches = (base.x[:, 0] == s.x[i, ch]).flatten(1).all(1)
            assert matches.any()
            assert int(s.labels[i, ch]) in set(base.labels[matches].tolist())
    assert torch.equal(stacked_digits(base, 50, seed=2).x, stacked_digits(base, 50, seed=2).x)


def test_stacked_digits_from_28x28():
    x = torch.rand(30, 1, 28, 28)
    base = Dataset(x, labels=torch.arange(30) % 10, kind="image", name="fake-mnist")
    s = stacked_digits(base, 20, seed=0)
    assert s.shape == (20, 3, 28, 28) and s.name == "stacked-fake-mnist"


def test_stacked_digits_bad_base():
    with pytest.raises(ValueError, match="single-channel"):
        stacked_digits(Dataset(torch.rand(4, 3, 8, 8), kind="image"), 5)
    with pytest.raises(ValueError, match="label"):
        stacked_digits(Dataset(torch.rand(4, 1, 8, 8), kind="image"), 5)
    with pytest.raises(TypeError):
        stacked_digits(torch.rand(4, 1, 8, 8), 5)
