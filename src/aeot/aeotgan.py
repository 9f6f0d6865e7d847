"""AE-OT-GAN: the AE-OT decoder refined adversarially on AE-OT latent codes.

An, Guo, Zhang, Qi, Lei, Yau, Gu, "AE-OT-GAN: Training GANs from data specific latent
distribution", ECCV 2020.

A fitted :class:`~aeot.pipeline.AEOT` gives a latent distribution that already covers
every mode (the PL extension of the OT map never mixes codes across the singular set).
AE-OT-GAN keeps that distribution and sharpens the images: the generator G is
initialised from the autoencoder's decoder ψ and trained against a discriminator D on
codes z from the sampler. Each code is z = Σ_j λ_j y_{c_j}, a convex combination of
training codes y_{c_j} whose images x_{c_j} are known, so every generated image G(z) has
paired real images. The losses are

    L_D = E_x softplus(−D(x)) + E_z softplus(D(G(z)))                 ("ns"; or hinge)
    L_G = E_z softplus(−D(G(z))) + w · E_z Σ_j λ_j ℓ(G(z), x_{c_j})

with the content loss ℓ (see :func:`content_loss`) in pixels (L1 or squared error) or
in the discriminator's penultimate features φ_D plus pixel L1. D is frozen while L_G is
back-propagated, so the content loss trains the generator only.

Training draws its batches from a pool of ``n_codes`` codes sampled once and runs on
the loop of :mod:`aeot.core`: atomic checkpoints with a fingerprint of the run, resumed
from; on CPU a resumed run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from aeot._io import tensor_hash
from aeot._validation import as_float_tensor, check_positive_int, resolve_device
from aeot.core import Checkpoint, TrainState, forked_rng, run_loop
from aeot.core.config import ConfigMixin
from aeot.core.persist import read_folder, save_folder
from aeot.data.dataset import Dataset
from aeot.models.base import ConfigEstimator
from aeot.nets.autoencoder import ConvAutoencoder
from aeot.nets.gan import (
    ConvDiscriminator,
    ConvDiscriminatorConfig,
    Generator,
    MLPDiscriminator,
    MLPDiscriminatorConfig,
    discriminator_loss,
    generator_loss,
)
from aeot.pipeline import AEOT

__all__ = ["AEOTGAN", "AEOTGANConfig", "content_loss", "train_aeotgan"]

CONTENT_LOSSES = ("l1", "mse", "features")
GAN_LOSSES = ("ns", "hinge")
CHECKPOINT_VERSION = 1
_FORMAT = "aeot-gan-model"
# the files of an AE-OT-GAN folder besides aeot/ (sealed by manifest.json)
_GAN_FILES = ("generator.safetensors", "discriminator.safetensors", "config.json")


@dataclass
class AEOTGANConfig(ConfigMixin):
    """Settings of :class:`AEOTGAN` (the AE-OT model has its own :class:`AEOTConfig`)."""

    steps: int = 2000  # generator updates (one discriminator update each)
    batch_size: int = 64  # codes (and real images) per step
    lr_g: float = 1e-4  # Adam learning rate of the generator (starts from the decoder)
    lr_d: float = 2e-4  # Adam learning rate of the discriminator
    betas: tuple[float, float] = (0.5, 0.999)  # Adam (β₁, β₂) of both
    gan_loss: str = "ns"  # "ns" (non-saturating logistic) | "hinge"
    content_loss: str = "features"  # "l1" | "mse" | "features" (φ_D squared error + pixel L1)
    content_weight: float = 10.0  # w, weight of the content loss against the adversarial one
    disc_width: int = 32  # channels of the first conv of the discriminator (images)
    disc_hidden: tuple[int, ...] = (256, 128)  # widths of the MLP discriminator (MLP AEs)
    spectral_norm: bool = True  # spectral normalisation of every discriminator layer
    n_codes: int = 20000  # pool of AE-OT codes sampled once; batches are drawn from it
    checkpoint_every: int = 200  # steps between checkpoints (one is written at the end)
    seed: int = 0  # seeds the discriminator initialisation, the code pool and the batches
    device: str | None = None  # torch device; CUDA when available if None
    progress: bool = True  # progress bar over the steps

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "disc_width", "n_codes", "checkpoint_every"):
            setattr(self, name, check_positive_int(getattr(self, name), name))
        self.seed = check_positive_int(self.seed, "seed", minimum=0)
        for name in ("lr_g", "lr_d"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {getattr(self, name)!r}")
            setattr(self, name, value)
        betas = tuple(float(b) for b in self.betas)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = betas  # type: ignore[assignment]
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"gan_loss must be one of {GAN_LOSSES}, got {self.gan_loss!r}")
        if self.content_loss not in CONTENT_LOSSES:
            raise ValueError(
                f"content_loss must be one of {CONTENT_LOSSES}, got {self.content_loss!r}"
            )
        self.content_weight = float(self.content_weight)
        if not (math.isfinite(self.content_weight) and self.content_weight >= 0):
            raise ValueError(f"content_weight must be >= 0, got {self.content_weight}")
        self.disc_hidden = tuple(check_positive_int(h, "disc_hidden") for h in self.disc_hidden)
        self.spectral_norm = bool(self.spectral_norm)
        self.progress = bool(self.progress)


# ------------------------------------------------------------------------------ losses


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Parameters of ``module`` do not require gradients inside the block."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def discriminator_features(discriminator: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """φ_D(x): the discriminator's input to its final linear layer, (n, F)."""
    net = getattr(discriminator, "net", None)
    if not isinstance(net, nn.Sequential) or not isinstance(net[-1], nn.Linear):
        raise TypeError("discriminator must be an aeot.nets discriminator ending in a Linear layer")
    return net[:-1](x).flatten(1)


def content_loss(
    fake: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    *,
    kind: str = "l1",
    discriminator: nn.Module | None = None,
) -> torch.Tensor:
    """Content loss tying each generated image to the real images of the codes it mixes.

    ``(1/B) Σ_b Σ_j λ_bj ℓ(g_b, x_bj)`` with, per pair, ``ℓ = mean |g − x|`` (``"l1"``),
    ``mean (g − x)²`` (``"mse"``) or ``mean |g − x| + mean (φ_D(g) − φ_D(x))²``
    (``"features"``, φ_D = :func:`discriminator_features`). The discriminator is frozen
    and the real features carry no graph: the gradient reaches ``fake`` only.

    Parameters
    ----------
    fake : (B, *S) tensor
        Generated samples g_b.
    targets : (B, K, *S) tensor
        Real samples x_bj of the K cells mixed into each code.
    weights : (B, K) tensor
        λ_bj ≥ 0, rows summing to 1 (0 for padding).
    kind : {"l1", "mse", "features"}
    discriminator : nn.Module, optional
        Needed for ``"features"``.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    if kind not in CONTENT_LOSSES:
        raise ValueError(f"kind must be one of {CONTENT_LOSSES}, got {kind!r}")
    if targets.ndim != fake.ndim + 1 or targets.shape[0] != fake.shape[0]:
        raise ValueError(
            f"targets must have shape (B, K, *S) for fake of shape {tuple(fake.shape)}, "
            f"got {tuple(targets.shape)}"
        )
    if tuple(targets.shape[2:]) != tuple(fake.shape[1:]):
        raise ValueError(
            f"targets hold samples of shape {tuple(targets.shape[2:])}, "
            f"fake of shape {tuple(fake.shape[1:])}"
        )
    if weights.shape != targets.shape[:2]:
        raise ValueError(
            f"weights must have shape {tuple(targets.shape[:2])}, got {tuple(weights.shape)}"
        )
    diff = fake.unsqueeze(1) - targets.detach()  # (B, K, *S)
    per_pair = diff.abs() if kind != "mse" else diff.square()
    per_pair = per_pair.flatten(2).mean(2)  # (B, K)
    if kind == "features":
        if discriminator is None:
            raise ValueError("content_loss(kind='features') needs the discriminator")
        b, k = weights.shape
        with _frozen(discriminator):
            fake_f = discriminator_features(discriminator, fake)  # (B, F)
            with torch.no_grad():
                real_f = discriminator_features(discriminator, targets.flatten(0, 1))
        real_f = real_f.reshape(b, k, -1)  # (B, K, F)
        per_pair = per_pair + (fake_f.unsqueeze(1) - real_f).square().mean(2)
    return (weights.to(per_pair) * per_pair).sum(1).mean()


# ---------------------------------------------------------------------------- training


def train_aeotgan(
    generator: Generator,
    discriminator: nn.Module,
    data: torch.Tensor,
    codes: torch.Tensor,
    cells: torch.Tensor,
    weights: torch.Tensor,
    config: AEOTGANConfig,
    *,
    checkpoint_path: str | os.PathLike | None = None,
) -> dict[str, list[float]]:
    """Train generator and discriminator of AE-OT-GAN on a pool of AE-OT codes.

    Every step draws ``batch_size`` real samples and ``batch_size`` pool codes
    uniformly with replacement, makes one discriminator step on L_D and one generator
    step on L_G (module docstring).

    Parameters
    ----------
    generator : Generator
        Maps codes (B, L) to samples (B, *S); initialised from the decoder.
    discriminator : nn.Module
        Maps (B, *S) to scores (B,); an :mod:`aeot.nets` discriminator for ``"features"``.
    data : (N, *S) tensor
        The training samples; row i belongs to training code i.
    codes : (P, L) tensor
        Generator inputs (codes in the decoder's latent space).
    cells : (P, K) long tensor
        Rows of ``data`` mixed into each code (−1 padding).
    weights : (P, K) tensor
        Their weights λ (rows sum to 1, 0 on padding).
    config : AEOTGANConfig
        Steps, batch size, learning rates, losses, seed, device, checkpoint interval.
    checkpoint_path : path, optional
        Resumable checkpoint; an existing file from the same run (same fingerprint:
        networks, data, pool and every setting but ``steps``) is resumed, one from
        another run raises ``ValueError``.

    Returns
    -------
    dict
        Per step since the start: ``d_loss``, ``g_adv`` (adversarial part of L_G) and
        ``content``. Both networks are left in eval mode on ``config.device``.
    """
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be an aeot.nets Generator, got {type(generator).__name__}")
    if not isinstance(discriminator, nn.Module):
        raise TypeError(f"discriminator must be an nn.Module, got {type(discriminator).__name__}")
    x = as_float_tensor(data, "data", dtype=torch.float32)
    if tuple(x.shape[1:]) != tuple(generator.output_shape):
        raise ValueError(
            f"data must have shape (N, {', '.join(map(str, generator.output_shape))}) "
            f"to match the generator, got {tuple(x.shape)}"
        )
    z_pool = as_float_tensor(codes, "codes", ndim=2, dtype=torch.float32)
    if z_pool.shape[1] != generator.latent_dim:
        raise ValueError(
            f"codes must have shape (P, {generator.latent_dim}), got {tuple(z_pool.shape)}"
        )
    cells = torch.as_tensor(cells)
    lam = as_float_tensor(weights, "weights", ndim=2, dtype=torch.float32)
    if cells.dtype != torch.int64 or cells.shape != lam.shape or cells.shape[0] != z_pool.shape[0]:
        raise ValueError(
            f"cells (int64) and weights must both have shape ({z_pool.shape[0]}, K), "
            f"got {cells.dtype} {tuple(cells.shape)} and {tuple(lam.shape)}"
        )
    if int(cells.max()) >= x.shape[0]:
        raise ValueError(f"cells index rows up to {int(cells.max())}, data has {x.shape[0]}")
    if bool((lam < 0).any()) or bool(((cells < 0) & (lam > 0)).any()):
        raise ValueError("weights must be >= 0 and 0 on padded cells (-1)")
    if not torch.allclose(lam.sum(1), torch.ones(lam.shape[0]), atol=1e-4):
        raise ValueError("weights must sum to 1 in every row")
    cfg = config
    dev = resolve_device(cfg.device)
    generator.to(dev)
    discriminator.to(dev)
    rows = cells.clamp_min(0)  # padding reads row 0 with weight 0
    z_pool, lam = z_pool.to(dev), lam.to(dev)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr_g, betas=cfg.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr_d, betas=cfg.betas)
    checkpoint = None
    if checkpoint_path is not None:
        hyper = {k: v for k, v in cfg.to_dict().items() if k not in ("steps", "progress")}
        hyper.pop("device")
        fingerprint = {
            "version": CHECKPOINT_VERSION,
            "generator": {k: list(v.shape) for k, v in generator.state_dict().items()},
            "generator_hash": tensor_hash(*generator.state_dict().values()),
            "discriminator": {k: list(v.shape) for k, v in discriminator.state_dict().items()},
            "discriminator_hash": tensor_hash(*discriminator.state_dict().values()),
            "data_shape": list(x.shape),
            "data_hash": tensor_hash(x),
            "pool_hash": tensor_hash(z_pool, cells, lam),
            **hyper,
        }
        checkpoint = Checkpoint(
            checkpoint_path,
            fingerprint,
            {
                "generator": generator,
                "discriminator": discriminator,
                "opt_g": opt_g,
                "opt_d": opt_d,
            },
            counter="step",
            what="AE-OT-GAN",
        )
    n, p, b = x.shape[0], z_pool.shape[0], cfg.batch_size

    with forked_rng(dev, cfg.seed):
        state = TrainState(
            torch.Generator().manual_seed(cfg.seed),
            dev,
            history={"d_loss": [], "g_adv": [], "content": []},
        )

        def step(t: int) -> dict[str, float]:
            real_idx = torch.randint(n, (b,), generator=state.generator)
            code_idx = torch.randint(p, (b,), generator=state.generator)
            real = x[real_idx].to(dev, non_blocking=True)
            fake = generator(z_pool[code_idx.to(dev)])
            d_loss = discriminator_loss(
                discriminator(real), discriminator(fake.detach()), cfg.gan_loss
            )
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()

            paired = x[rows[code_idx]].to(dev, non_blocking=True)  # (B, K, *S)
            with _frozen(discriminator):
                g_adv = generator_loss(discriminator(fake), cfg.gan_loss)
            content = content_loss(
                fake,
                paired,
                lam[code_idx.to(dev)],
                kind=cfg.content_loss,
                discriminator=discriminator,
            )
            g_loss = g_adv + cfg.content_weight * content
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            return {
                "d_loss": float(d_loss.detach()),
                "g_adv": float(g_adv.detach()),
                "content": float(content.detach()),
            }

        generator.train()
        discriminator.train()
        run_loop(
            step,
            state,
            cfg.steps,
            checkpoint=checkpoint,
            every=cfg.checkpoint_every,
            name="AE-OT-GAN training",
            unit="step",
            hint="try smaller learning rates",
            progress=cfg.progress,
            desc="train AE-OT-GAN",
        )
    generator.eval()
    discriminator.eval()
    return state.history


# --------------------------------------------------------------------------- estimator


def _build_discriminator(config: AEOTGANConfig, aeot: AEOT) -> nn.Module:
    shape = tuple(aeot.input_shape_)
    if isinstance(aeot.autoencoder_, ConvAutoencoder):
        return ConvDiscriminator(
            ConvDiscriminatorConfig(
                input_shape=shape, width=config.disc_width, spectral_norm=config.spectral_norm
            )
        )
    return MLPDiscriminator(
        MLPDiscriminatorConfig(
            input_shape=shape, hidden=config.disc_hidden, spectral_norm=config.spectral_norm
        )
    )


def _sample_of_target(aeot: AEOT) -> torch.Tensor:
    """Index of a training sample of each OT target, (T,).

    The targets are the distinct training codes sorted by ``torch.unique``; a target
    shared by several identical samples maps to the first of them.
    """
    unique, inverse = torch.unique(aeot.codes_, dim=0, return_inverse=True)
    targets = aeot.ot_.targets.to(unique)
    if unique.shape != targets.shape or not torch.equal(unique, targets):
        raise ValueError("the AEOT model's OT targets are not the distinct codes of its data")
    n = aeot.codes_.shape[0]
    first = torch.full((unique.shape[0],), n, dtype=torch.int64)
    return first.scatter_reduce(0, inverse, torch.arange(n), reduce="amin")


class AEOTGAN(ConfigEstimator):
    """AE-OT-GAN generative model built on :class:`AEOT` (the estimator contract of
    :mod:`aeot.models.base`).

    Parameters
    ----------
    config : AEOTGANConfig or dict, optional
        GAN settings; keyword arguments (the fields of :class:`AEOTGANConfig`) override
        single fields.
    aeot : AEOT, optional
        The AE-OT model supplying the latent codes: fitted (used as is, not copied; the
        data passed to :meth:`fit` must be its training data) or unfitted (fitted by
        :meth:`fit`). Default: ``AEOT(seed=config.seed, device=config.device)``. A
        parameter like the config fields: ``get_params()["aeot"]``, ``aeot__epochs``
        with ``deep=True``; ``clone`` clones it unfitted, as scikit-learn does.

    Attributes (after :meth:`fit`)
    ------------------------------
    aeot_ : AEOT
        The fitted AE-OT model.
    generator_ : Generator
        The refined decoder: raw latent codes (n, k) -> samples (n, *input_shape).
    discriminator_ : nn.Module
        Conv (conv autoencoders) or MLP discriminator.
    history_ : dict
        Per-step ``d_loss``, ``g_adv``, ``content`` and ``gan_seconds``.

    Examples
    --------
    >>> from aeot.data import load_dataset
    >>> base = AEOT(epochs=50, latent_dim=8).fit(load_dataset("digits"))   # doctest: +SKIP
    >>> model = AEOTGAN(aeot=base, steps=500).fit(load_dataset("digits"))   # doctest: +SKIP
    >>> images = model.sample(64, seed=1)                                   # doctest: +SKIP
    """

    config_class = AEOTGANConfig
    _fitted_attribute = "generator_"
    _estimator_params = ("aeot",)

    def __init__(
        self, config: AEOTGANConfig | dict | None = None, *, aeot: AEOT | None = None, **params
    ):
        super().__init__(config, **params)
        self._set_estimator_param("aeot", aeot)

    def _set_estimator_param(self, name: str, value) -> None:
        if value is not None and not isinstance(value, AEOT):
            raise TypeError(f"aeot must be an AEOT model, got {type(value).__name__}")
        self.aeot = value

    def fit(self, data, *, checkpoint_dir: str | os.PathLike | None = None) -> AEOTGAN:
        """Fit AE-OT if needed, sample the code pool and train the GAN.

        Parameters
        ----------
        data : Dataset or tensor (N, *S)
            The training data (of the AEOT model, when it is already fitted).
        checkpoint_dir : path, optional
            Holds ``aeot/`` (the AE-OT autoencoder checkpoint) and ``gan.ckpt``; an
            interrupted fit resumes from them.
        """
        cfg = self.config
        x = as_float_tensor(data.x if isinstance(data, Dataset) else data, "data")
        x = x.to(torch.float32)
        folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
        aeot = self.aeot
        if aeot is None:
            aeot = AEOT(seed=cfg.seed, device=cfg.device)
        if not hasattr(aeot, "ot_"):
            aeot.fit(x, checkpoint_dir=folder / "aeot" if folder is not None else None)
        self._check_training_data(aeot, x)
        start = time.perf_counter()
        generator = Generator.from_autoencoder(aeot.autoencoder_)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            discriminator = _build_discriminator(cfg, aeot)
        if cfg.progress:
            print(
                f"aeot-gan: sampling the pool of {cfg.n_codes} AE-OT codes, then "
                f"{cfg.steps} adversarial steps",
                file=sys.stderr,
                flush=True,
            )
        pool = aeot.sample_codes(cfg.n_codes, seed=cfg.seed)
        raw = aeot.normaliser_.inverse(pool.codes.to(torch.float32).cpu())
        cells = pool.cells.cpu()
        sample_of = _sample_of_target(aeot)
        rows = torch.where(cells >= 0, sample_of[cells.clamp_min(0)], torch.full_like(cells, -1))
        lam = pool.weights.cpu().double() * (cells >= 0)
        lam = (lam / lam.sum(1, keepdim=True)).to(torch.float32)
        history = train_aeotgan(
            generator,
            discriminator,
            x,
            raw,
            rows,
            lam,
            cfg,
            checkpoint_path=folder / "gan.ckpt" if folder is not None else None,
        )
        self.aeot_ = aeot
        self.generator_ = generator
        self.discriminator_ = discriminator
        self.history_ = {**history, "gan_seconds": time.perf_counter() - start}
        return self

    @staticmethod
    def _check_training_data(aeot: AEOT, x: torch.Tensor) -> None:
        if aeot.autoencoder_ is None:
            raise ValueError(
                "AE-OT-GAN needs an AEOT model with an autoencoder (its decoder is the "
                "generator), got one with autoencoder='identity'"
            )
        n = aeot.codes_.shape[0]
        if tuple(x.shape[1:]) != aeot.input_shape_ or x.shape[0] != n:
            raise ValueError(
                f"data must be the AEOT model's training data, of shape "
                f"({n}, {', '.join(map(str, aeot.input_shape_))}), got {tuple(x.shape)}"
            )
        m = min(n, 64)
        if not torch.allclose(aeot.encode(x[:m]), aeot.codes_[:m].float(), atol=1e-4, rtol=1e-4):
            raise ValueError("data are not the data the AEOT model was fitted on (codes differ)")

    # -------------------------------------------------------------- generation
    def generate(self, codes, *, batch_size: int = 1024) -> torch.Tensor:
        """G(z) for normalised AE-OT codes (n, k) -> samples (n, *input_shape) on CPU."""
        self._check_fitted()
        k = self.aeot_.codes_.shape[1]
        z = as_float_tensor(codes, "codes", ndim=2, dtype=torch.float32)
        if z.shape[1] != k:
            raise ValueError(f"codes must have shape (n, {k}), got {tuple(z.shape)}")
        batch_size = check_positive_int(batch_size, "batch_size")
        raw = self.aeot_.normaliser_.inverse(z.cpu())
        device = self.generator_.device
        self.generator_.eval()
        with torch.no_grad():
            return torch.cat(
                [self.generator_(part.to(device)).cpu() for part in raw.split(batch_size)]
            )

    def sample(self, n: int, *, seed: int = 0) -> torch.Tensor:
        """``n`` generated samples (n, *input_shape): G of new AE-OT codes."""
        self._check_fitted()
        return self.generate(self.aeot_.sample_codes(n, seed=seed).codes)

    def sample_chunks(self, n: int, *, seed: int = 0, chunk: int = 2**14):
        """:meth:`sample` in consecutive blocks of at most ``chunk`` samples (together
        the samples ``sample(n, seed=seed)`` gives), holding one block at a time."""
        self._check_fitted()
        for codes in self.aeot_.sampler_.sample_chunks(n, seed, chunk=chunk):
            yield self.generate(codes.codes)

    # ------------------------------------------------------------------ saving
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``aeot/`` (the AE-OT model, sealed by its own manifest), generator and
        discriminator safetensors, ``config.json`` (which records the SHA-256 of
        ``aeot/manifest.json``) and ``manifest.json`` with the SHA-256 of each file
        (:func:`aeot.core.persist.save_folder`).

        The folder is replaced as a whole (:func:`aeot._io.atomic_folder`): an
        interrupted save leaves the previous model (or nothing), never a mix of two.
        """
        self._check_fitted()
        history = {k: v for k, v in self.history_.items() if isinstance(v, list)}
        with save_folder(
            path, format=_FORMAT, config=self.config.to_dict(), meta={"history": history}
        ) as out:
            out.child("aeot", self.aeot_.save)
            out.module("generator", self.generator_)
            out.module("discriminator", self.discriminator_)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | None = None) -> AEOTGAN:
        """Read a model written by :meth:`save` onto ``device`` (default: the saved one).

        Its files are checked against ``manifest.json`` (a changed, missing or added file
        is an error naming it; a folder saved before manifests loads with an
        :class:`~aeot.core.persist.UnverifiedModelWarning`), and ``aeot/`` against the
        manifest digest recorded at the save (another fit's AE-OT model is refused).
        """
        saved = read_folder(path, format=_FORMAT, files=_GAN_FILES, what="AE-OT-GAN")
        aeot_folder = saved.child("aeot", "AE-OT model")
        config = AEOTGANConfig.from_dict(saved.config)
        if device is not None:
            config.device = device
        aeot = AEOT.load(aeot_folder, device=config.device)
        if aeot.autoencoder_ is None:
            raise ValueError(f"{aeot_folder} holds no autoencoder: not an AE-OT-GAN model")
        model = cls(config, aeot=aeot)
        dev = resolve_device(config.device)
        generator = Generator.from_autoencoder(aeot.autoencoder_)
        discriminator = _build_discriminator(config, aeot)
        for module, name in ((generator, "generator"), (discriminator, "discriminator")):
            saved.load_module(name, module).to(dev).eval()
        model.aeot_, model.generator_, model.discriminator_ = aeot, generator, discriminator
        model.history_ = copy.deepcopy(saved.meta.get("history", {}))
        return model
