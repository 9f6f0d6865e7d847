import json
import math

import numpy as np
import pytest
import torch

from aeot.baselines import GANBaseline, VAEBaseline
from aeot.data import Dataset, gaussian_mixture, grid_mixture, load_digits8, stacked_digits
from aeot.evaluation import (
    DIGITS_CLASSIFIER_CONFIG,
    ChannelwiseFeatures,
    compare,
    digit_classifier,
    evaluate_samples,
    format_table,
    write_results,
)
from aeot.metrics import ClassifierConfig

# 3σ in 2D: P(|x - μ| ≤ 3σ) for an isotropic Gaussian = 1 - exp(-9/2) ≈ 0.9889
HQ_2D = 100.0 * (1.0 - math.exp(-4.5))


@pytest.fixture(scope="module")
def grid():
    return grid_mixture(5000, seed=0)


@pytest.fixture(scope="module")
def digits():
    return load_digits8()


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    cfg = ClassifierConfig(**{**DIGITS_CLASSIFIER_CONFIG.to_dict(), "epochs": 4})
    return digit_classifier(tmp_path_factory.mktemp("cache"), config=cfg)


# -------------------------------------------------------------------- mixtures


def test_exact_mixture_samples(grid):
    samples = grid_mixture(5000, seed=1).x
    r = evaluate_samples(grid, samples)
    assert r["modes"] == 25 and r["n_modes"] == 25
    assert r["high_quality_pct"] == pytest.approx(HQ_2D, abs=0.5)
    assert r["kl"] < 0.01
    assert r["precision"] > 0.9 and r["recall"] > 0.9
    assert r["FD-data"] < 0.05
    assert r["n_samples"] == 5000


def test_missing_modes_are_reported(grid):
    kept = grid.modes[:20]
    samples = gaussian_mixture(kept, 5000, seed=2, std=grid.mode_std).x
    r = evaluate_samples(grid, samples)
    assert r["modes"] == 20
    assert r["kl"] == pytest.approx(math.log(25 / 20), abs=0.01)
    assert r["recall"] < 0.85 and r["precision"] > 0.9
    far = evaluate_samples(grid, samples + 10.0)
    assert far["modes"] == 0 and far["high_quality_pct"] == 0 and math.isnan(far["kl"])


def test_points_without_modes():
    data = Dataset(torch.randn(300, 3), kind="points")
    r = evaluate_samples(data, torch.randn(200, 3))
    assert "modes" not in r and {"precision", "recall", "FD-data"} <= set(r)


def test_bad_samples(grid):
    with pytest.raises(ValueError, match="shape"):
        evaluate_samples(grid, torch.zeros(10, 3))
    with pytest.raises(ValueError, match="NaN"):
        evaluate_samples(grid, torch.full((10, 2), float("nan")))
    with pytest.raises(TypeError):
        evaluate_samples(grid.x, grid.x)


# ---------------------------------------------------------------------- images


def test_digits_fd(digits, classifier):
    half = digits.subset(np.arange(0, 1797, 2))
    other = digits.x[1::2]
    same = evaluate_samples(half, other, feature_extractor=classifier, kid_subsets=5)
    noise = evaluate_samples(
        half, torch.rand_like(other), feature_extractor=classifier, kid_subsets=5
    )
    assert set(same) >= {"FD-digits-cnn", "KID-digits-cnn", "precision", "recall", "modes", "kl"}
    assert same["FD-digits-cnn"] < 0.05 * noise["FD-digits-cnn"]
    assert same["KID-digits-cnn"] < 0.05 * noise["KID-digits-cnn"]
    assert same["modes"] == 10 and same["kl"] < 0.05
    assert same["precision"] > 0.8 and same["recall"] > 0.8
    assert noise["recall"] < 0.3
    identical = evaluate_samples(digits, digits.x, feature_extractor=classifier, kid_subsets=2)
    assert identical["FD-digits-cnn"] == pytest.approx(0.0, abs=1e-6)


def test_stacked_digits_modes(digits, classifier):
    stacked = stacked_digits(digits, n=2000, seed=0)
    samples = stacked_digits(digits, n=8000, seed=1).x
    r = evaluate_samples(stacked, samples, feature_extractor=classifier, max_pr=500, kid_subsets=2)
    # 8000 uniform draws miss a given triple with probability exp(-8) ≈ 3e-4
    assert r["modes"] >= 990 and r["n_modes"] == 1000
    assert r["kl"] < 0.1
    assert "FD-digits-cnn-per-channel" in r
    collapsed = evaluate_samples(
        stacked, samples[:1].repeat(100, 1, 1, 1), feature_extractor=classifier, kid_subsets=2
    )
    assert collapsed["modes"] == 1 and collapsed["kl"] == pytest.approx(math.log(1000))


class _CountingClassifier:
    """The classifier with a count of the images it sees, and no head-only shortcut."""

    def __init__(self, inner):
        self.inner, self.seen = inner, 0
        self.feature_space_name = inner.feature_space_name

    def features(self, images, *, batch_size=512):
        self.seen += images.shape[0]
        return self.inner.features(images, batch_size=batch_size)

    def predict(self, images, *, batch_size=512):
        self.seen += images.shape[0]
        return self.inner.predict(images, batch_size=batch_size)


def test_labels_from_features_and_reference_cache(digits, classifier):
    """Modes and KL from the features' head equal those of a second forward pass; a
    shared cache computes the reference features once and changes no number."""
    stacked = stacked_digits(digits, n=600, seed=0)
    samples = stacked_digits(digits, n=900, seed=1).x
    kwargs = {"max_pr": 300, "kid_subsets": 2}
    counting = _CountingClassifier(classifier)
    slow = evaluate_samples(stacked, samples, feature_extractor=counting, **kwargs)
    assert counting.seen == 3 * (600 + 900 + 900)  # reference, features, labels
    fast = evaluate_samples(stacked, samples, feature_extractor=classifier, **kwargs)
    assert fast == slow
    cache: dict = {}
    first = evaluate_samples(stacked, samples, feature_extractor=counting, cache=cache, **kwargs)
    counting.seen = 0
    again = evaluate_samples(stacked, samples, feature_extractor=counting, cache=cache, **kwargs)
    assert counting.seen == 3 * (900 + 900) and len(cache) == 1
    assert first == again == slow
    # other reference images are another entry, not a stale hit
    other = stacked_digits(digits, n=600, seed=5)
    evaluate_samples(other, samples, feature_extractor=counting, cache=cache, **kwargs)
    assert len(cache) == 2
    with pytest.raises(TypeError, match="cache must be a dict"):
        evaluate_samples(stacked, samples, feature_extractor=classifier, cache=[], **kwargs)
    flat = evaluate_samples(digits, digits.x[:500], feature_extractor=counting, **kwargs)
    assert flat == evaluate_samples(digits, digits.x[:500], feature_extractor=classifier, **kwargs)


def test_channelwise_features(classifier):
    x = torch.rand(4, 3, 8, 8)
    feats = ChannelwiseFeatures(classifier).features(x)
    d = classifier.feature_dim
    assert feats.shape == (4, 3 * d)
    # same network on a different batch composition: equal up to float32 GEMM rounding
    torch.testing.assert_close(
        feats[:, d : 2 * d], classifier.features(x[:, 1:2]), rtol=1e-4, atol=1e-5
    )


def test_digit_classifier_is_cached(tmp_path):
    cfg = ClassifierConfig(**{**DIGITS_CLASSIFIER_CONFIG.to_dict(), "epochs": 1, "widths": (8,)})
    first = digit_classifier(tmp_path, config=cfg)
    again = digit_classifier(tmp_path, config=cfg)
    assert first.origin == "trained" and again.origin == "loaded"
    assert (tmp_path / "classifiers" / "digits-cnn.safetensors").is_file()


def test_default_extractor_for_other_labelled_images(digits, tmp_path):
    x = torch.nn.functional.interpolate(digits.x[:120], size=(16, 16), mode="bilinear")
    data = Dataset(x.clamp(0, 1), labels=digits.labels[:120], name="big-digits", kind="image")
    r = evaluate_samples(data, x[:60], cache_dir=tmp_path, kid_subsets=2)
    assert "FD-big-digits-cnn" in r and "modes" in r
    assert (tmp_path / "classifiers" / "big-digits-cnn.json").is_file()
    unlabelled = Dataset(x, name="nolabels", kind="image")
    with pytest.raises(ValueError, match="feature_extractor"):
        evaluate_samples(unlabelled, x[:10], cache_dir=tmp_path)


# ---------------------------------------------------------------------- compare


class Oracle:
    """Duck-typed model (no base class): samples the true mixture, reconstructs exactly."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, dataset):
        self.dataset_ = dataset
        return self

    def sample(self, n, *, seed=0):
        d = self.dataset_
        return gaussian_mixture(d.modes, n, seed=1000 + seed, std=d.mode_std).x

    def reconstruct(self, x):
        return x.clone()


def test_compare_rows(grid):
    tiny = {"latent_dim": 2, "hidden": (16, 16), "batch_size": 32, "iterations": 3}
    models = {"gan": GANBaseline(**tiny), "vae": VAEBaseline(**tiny), "oracle": Oracle()}
    rows = compare(models, grid, n_samples=400, seeds=(0, 1), include_data=True)
    names = [r["model"] for r in rows]
    assert names == ["data", "gan", "vae", "oracle", "oracle (reconstruction)"]
    for row in rows:
        assert row["n_seeds"] == 2 and row["seeds"] == [0, 1] and len(row["per_seed"]) == 2
        for key in ("modes", "kl", "high_quality_pct", "precision", "recall", "FD-data"):
            assert key in row and f"{key}_std" in row
    gan = rows[1]
    assert gan["kind"] == "model" and "fit_seconds" in gan
    per = [run["FD-data"] for run in gan["per_seed"]]
    assert gan["FD-data"] == pytest.approx(np.mean(per))
    assert gan["FD-data_std"] == pytest.approx(np.std(per, ddof=1))
    assert per[0] != per[1]  # the two seeds trained different networks
    oracle, recon = rows[3], rows[4]
    assert oracle["modes"] == 25 and oracle["modes_std"] == 0
    assert recon["kind"] == "reconstruction" and recon["modes"] == 25
    assert recon["high_quality_pct"] == pytest.approx(HQ_2D, abs=2.0)

    table = format_table(rows)
    for name in names:
        assert name in table
    assert "± " in table and "/ 25" in table and "FD-data" in table
    markdown = format_table(rows, markdown=True)
    assert markdown.startswith("| model |")


def test_compare_checkpoints_per_seed(grid, tmp_path):
    tiny = {"latent_dim": 2, "hidden": (8,), "batch_size": 16, "iterations": 2}
    ckpt = tmp_path / "gan.pt"
    compare(
        {"gan": GANBaseline(**tiny, checkpoint_path=str(ckpt))}, grid, n_samples=50, seeds=(0, 3)
    )
    assert (tmp_path / "gan-seed0.pt").is_file() and (tmp_path / "gan-seed3.pt").is_file()
    with pytest.raises(ValueError):
        compare({}, grid, n_samples=10)


def test_compare_accepts_factories(grid):
    rows = compare({"oracle": lambda seed: Oracle(seed)}, grid, n_samples=200, seeds=(5,))
    assert rows[0]["model"] == "oracle" and rows[0]["modes"] == 25


def test_write_results(tmp_path):
    rows = [
        {"model": "A", "modes": 3.0, "n_modes": 8.0, "kl": float("nan"), "precision": 0.5},
        {"model": "B", "FD-digits-cnn": 1.25, "FD-digits-cnn_std": 0.5, "recall": 0.75},
    ]
    write_results(rows, tmp_path / "r.json", tmp_path / "r.md", title="demo")
    loaded = json.loads((tmp_path / "r.json").read_text())
    assert [r["model"] for r in loaded["rows"]] == ["A", "B"]
    assert loaded["rows"][0]["kl"] == "nan"
    md = (tmp_path / "r.md").read_text()
    assert md.startswith("# demo") and "FD-digits-cnn" in md and "1.250 ± 0.500" in md
    text = format_table(rows)
    assert "3 / 8" in text and text.splitlines()[0].startswith("model")


def test_the_earlier_module_names_still_work():
    """aeot.evaluate re-exports aeot.evaluation; aeot.experiments is the same module
    object as aeot.evaluation.experiments."""
    import aeot.evaluate
    import aeot.evaluation
    import aeot.evaluation.experiments
    import aeot.experiments

    for name in aeot.evaluation.__all__:
        assert getattr(aeot.evaluate, name) is getattr(aeot.evaluation, name), name
    assert aeot.experiments is aeot.evaluation.experiments
