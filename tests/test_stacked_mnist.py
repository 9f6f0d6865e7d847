"""Stacked MNIST: the cached MNIST classifier and the 1000-mode evaluation protocol.

The classifier is trained on small subsets here (seconds); the full classifier
(>= 98.5 % test accuracy) is trained in the slow test and by the benchmark.
"""

import math
import os

import pytest
import torch

from aeot.data import Dataset, load_dataset, stacked_digits
from aeot.evaluation import (
    MNIST_CLASSIFIER_CONFIG,
    default_feature_extractor,
    evaluate_samples,
    mnist_classifier,
)
from aeot.metrics import ClassifierConfig

SMALL = ClassifierConfig(
    widths=(8, 16), feature_dim=32, epochs=2, batch_size=32, name="mnist-small"
)


@pytest.fixture(scope="module")
def small_classifier(mnist_test, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    train = mnist_test.subset(torch.arange(2000))
    test = mnist_test.subset(torch.arange(2000, 3000))
    clf = mnist_classifier(
        cache, config=SMALL, train=train, test=test, min_accuracy=0.85, device="cpu"
    )
    return cache, train, test, clf


def test_classifier_is_trained_once_and_reused(small_classifier):
    cache, train, test, clf = small_classifier
    assert clf.origin == "trained"
    assert clf.metrics["test_accuracy"] >= 0.85
    assert (cache / "classifiers" / "mnist-small.safetensors").is_file()
    again = mnist_classifier(cache, config=SMALL, train=train, test=test, min_accuracy=0.85)
    assert again.origin == "loaded"
    assert again.metrics["test_accuracy"] == clf.metrics["test_accuracy"]
    images = test.x[:50]
    assert torch.equal(again.logits(images), clf.logits(images))
    with pytest.raises(RuntimeError, match="test accuracy, below min_accuracy"):
        mnist_classifier(cache, config=SMALL, train=train, test=test, min_accuracy=0.9999)
    with pytest.raises(TypeError, match="one label per image"):
        mnist_classifier(
            cache, config=SMALL, train=train, test=Dataset(test.x, kind="image"), min_accuracy=0.5
        )


def test_stacked_mnist_modes_and_kl(small_classifier, mnist_test):
    _, _, test, clf = small_classifier
    stacked = stacked_digits(test, n=2000, seed=0)
    scores = evaluate_samples(
        stacked, stacked.x[:600], feature_extractor=clf, max_real=300, max_pr=200, kid_subsets=2
    )
    # real stacked images: the classifier recovers most triples
    predicted = torch.stack([clf.predict(stacked.x[:600, c : c + 1]) for c in range(3)], 1)
    agree = float((predicted == stacked.labels[:600]).all(1).double().mean())
    assert agree > 0.5
    assert scores["n_modes"] == 1000
    distinct = len(torch.unique(predicted[:, 0] * 100 + predicted[:, 1] * 10 + predicted[:, 2]))
    assert scores["modes"] == distinct
    # a generator that repeats one triple covers one mode: KL = log 1000
    collapsed = stacked.x[:1].expand(100, -1, -1, -1)
    one = evaluate_samples(
        stacked, collapsed, feature_extractor=clf, max_real=100, max_pr=50, kid_subsets=2
    )
    assert one["modes"] == 1
    assert one["kl"] == pytest.approx(math.log(1000), abs=1e-12)
    assert "FD-mnist-small-per-channel" in scores


def test_stacked_mnist_by_name(mnist_test):
    stacked = load_dataset("stacked-mnist", n=64, seed=1, split="test")
    assert stacked.x.shape == (64, 3, 28, 28) and stacked.labels.shape == (64, 3)
    assert torch.equal(stacked.x, stacked_digits(mnist_test, n=64, seed=1).x)


def test_default_extractor_of_stacked_mnist_is_the_mnist_classifier(small_classifier, monkeypatch):
    cache, _, _, clf = small_classifier
    calls = []

    def fake(cache_dir):
        calls.append(cache_dir)
        return clf

    monkeypatch.setattr("aeot.evaluation.features.mnist_classifier", fake)
    labels = torch.zeros(4, 3, dtype=torch.int64)
    stacked = Dataset(torch.rand(4, 3, 28, 28), labels=labels, kind="image")
    assert default_feature_extractor(stacked, cache) is clf and calls == [cache]


@pytest.mark.slow
def test_full_mnist_classifier_reaches_the_protocol_accuracy(tmp_path):
    cache = os.environ.get("AEOT_CACHE_DIR") or tmp_path
    clf = mnist_classifier(cache)
    assert clf.config == MNIST_CLASSIFIER_CONFIG
    assert clf.metrics["test_accuracy"] >= 0.985
