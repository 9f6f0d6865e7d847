"""Baseline generative models for comparison with AE-OT: GAN, WGAN-GP and VAE.

Every baseline is a small scikit-learn style estimator:

* ``__init__(config=None, **overrides)`` stores a config dataclass (nothing is built),
* ``fit(dataset) -> self`` builds the networks from the data shape and trains them,
* learned state lives in attributes ending in ``_`` (``generator_``, ``history_``, ...),
* ``sample(n, *, seed=0) -> torch.Tensor`` draws ``n`` samples in data space: points
  ``(n, d)`` or images ``(n, c, h, w)`` in [0, 1], as a float32 CPU tensor,
* ``name`` is the label used in result tables.

Architectures follow the usual small-scale protocols: for point clouds an MLP with
three hidden layers of 128 units in both networks (PacGAN's 2D experiments), for
images the DCGAN-style conv stacks of :mod:`aeot.nets`. The latent prior is the
standard Gaussian ``N(0, I_L)``; set ``latent_dim`` to AE-OT's latent dimension for
a like-for-like comparison.

Training runs for a fixed number of ``iterations`` (generator updates for the GANs,
optimiser steps for the VAE) on mini-batches drawn uniformly with replacement.
Checkpoints are written atomically every ``checkpoint_every`` iterations when
``checkpoint_path`` is set; a later ``fit`` with the same run fingerprint (networks,
data hash, hyper-parameters, seed) resumes from it, and on CPU the resumed run is
bit-identical to an uninterrupted one. A checkpoint of a different run raises
``ValueError`` instead of being picked up silently.

References
----------
Goodfellow et al. 2014, "Generative Adversarial Nets" (non-saturating loss).
Radford, Metz & Chintala 2016, "DCGAN".
Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville 2017, "Improved Training of
Wasserstein GANs" (WGAN-GP, Algorithm 1: λ = 10, n_critic = 5, Adam(1e-4, 0.5, 0.9)).
Kingma & Welling 2014, "Auto-Encoding Variational Bayes".
Lin, Khetan, Fanti & Oh 2018, "PacGAN" (2D mixture protocol).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from aeot._io import load_checkpoint, tensor_hash
from aeot._validation import as_float_tensor, check_positive_int, resolve_device
from aeot.core import Checkpoint, TrainState, forked_rng, run_loop
from aeot.core.config import ConfigMixin
from aeot.core.persist import CONFIG_FILE, is_shape_list, read_folder, save_folder
from aeot.data.dataset import Dataset
from aeot.models.base import ConfigEstimator
from aeot.nets.gan import (
    ConvDiscriminator,
    ConvDiscriminatorConfig,
    ConvGenerator,
    ConvGeneratorConfig,
    Generator,
    MLPDiscriminator,
    MLPDiscriminatorConfig,
    MLPGenerator,
    MLPGeneratorConfig,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
)
from aeot.nets.vae import MLPVAE, ConvVAE, ConvVAEConfig, MLPVAEConfig

__all__ = [
    "ARCHITECTURES",
    "BaselineConfig",
    "GANBaseline",
    "GANConfig",
    "VAEBaseline",
    "VAEConfig",
    "WGANGPBaseline",
    "WGANGPConfig",
    "load_baseline_checkpoint",
]

ARCHITECTURES = ("auto", "mlp", "conv")
CHECKPOINT_VERSION = 1
_FORMAT = "aeot-baseline-model"
_SAMPLE_BLOCK = 4096  # latent rows drawn and decoded at a time (sample's default batch)
# Config fields that do not change the training trajectory (left out of the fingerprint).
_NOT_FINGERPRINTED = ("iterations", "device", "progress", "checkpoint_path", "checkpoint_every")


# ----------------------------------------------------------------------------- configs


@dataclass
class BaselineConfig(ConfigMixin):
    """Settings shared by all baselines.

    Attributes
    ----------
    latent_dim : int
        L, dimension of the Gaussian latent ``z ~ N(0, I_L)`` (use AE-OT's).
    architecture : {"auto", "mlp", "conv"}
        ``"auto"``: MLP for points, conv (DCGAN-like) for images. ``"mlp"`` also works
        on (small) images, which it flattens.
    hidden : tuple of int
        Hidden widths of the MLP networks (PacGAN 2D: three layers of 128).
    conv_width : int
        Channels of the first conv layer of the conv networks (doubled per layer).
    iterations : int
        Training budget: generator updates (GANs) or optimiser steps (VAE). A resumed
        run continues up to this count.
    batch_size : int
        Mini-batch size; batches are drawn uniformly with replacement.
    lr : float
        Adam learning rate (all networks).
    betas : (float, float)
        Adam ``(β₁, β₂)``.
    device : str, optional
        ``None``: CUDA when available, else CPU.
    seed : int
        Seeds initialisation, batches and noise (the caller's RNG state is untouched).
    progress : bool
        Show a tqdm progress bar.
    checkpoint_path : str, optional
        File of the resumable checkpoint (``torch.save`` format, written atomically).
    checkpoint_every : int
        Iterations between checkpoints (one is always written at the end).
    """

    latent_dim: int = 8
    architecture: str = "auto"
    hidden: tuple[int, ...] = (128, 128, 128)
    conv_width: int = 32
    iterations: int = 2000
    batch_size: int = 256
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    device: str | None = None
    seed: int = 0
    progress: bool = False
    checkpoint_path: str | None = None
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        self.latent_dim = check_positive_int(self.latent_dim, "latent_dim")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}"
            )
        self.hidden = tuple(check_positive_int(h, "hidden") for h in self.hidden)
        self.conv_width = check_positive_int(self.conv_width, "conv_width")
        self.iterations = check_positive_int(self.iterations, "iterations")
        self.batch_size = check_positive_int(self.batch_size, "batch_size")
        self.seed = check_positive_int(self.seed, "seed", minimum=0)
        self.checkpoint_every = check_positive_int(self.checkpoint_every, "checkpoint_every")
        self.lr = float(self.lr)
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        betas = tuple(float(b) for b in self.betas)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = betas  # type: ignore[assignment]
        if self.checkpoint_path is not None:
            self.checkpoint_path = os.fspath(self.checkpoint_path)
        self.progress = bool(self.progress)


@dataclass
class GANConfig(BaselineConfig):
    """Vanilla GAN with the non-saturating generator loss (Goodfellow et al. 2014).

    Defaults are the DCGAN optimiser, Adam(2e-4, β = (0.5, 0.999)).

    Attributes
    ----------
    d_steps : int
        Discriminator updates per generator update.
    """

    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    d_steps: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        self.d_steps = check_positive_int(self.d_steps, "d_steps")


@dataclass
class WGANGPConfig(BaselineConfig):
    """WGAN-GP (Gulrajani et al. 2017, Algorithm 1 defaults).

    Attributes
    ----------
    n_critic : int
        Critic updates per generator update (5).
    gp_weight : float
        λ, weight of the gradient penalty (10, the paper's value for images). For 2D
        toy mixtures the authors' own code (``gan_toy.py``) uses λ = 0.1; with λ = 10 the
        critic on a ring / grid of tight Gaussians lags and the critic gap oscillates
        in sign for thousands of iterations (measured here: 1 of 8 ring modes after
        2000 iterations with λ = 10 against 8 of 8 with λ = 0.1).
    """

    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    n_critic: int = 5
    gp_weight: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.n_critic = check_positive_int(self.n_critic, "n_critic")
        self.gp_weight = float(self.gp_weight)
        if not (math.isfinite(self.gp_weight) and self.gp_weight >= 0):
            raise ValueError(f"gp_weight must be >= 0, got {self.gp_weight}")


@dataclass
class VAEConfig(BaselineConfig):
    """VAE trained on the negative ELBO (Kingma & Welling 2014).

    Attributes
    ----------
    recon_loss : {"auto", "mse", "bce"}
        Likelihood: ``"mse"`` = Gaussian with fixed variance 1/2 (points), ``"bce"`` =
        Bernoulli (images in [0, 1]). ``"auto"`` picks by data kind.
    beta : float
        Weight of the KL term (1: the plain ELBO; < 1 is a sharper decoder likelihood).
    """

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    recon_loss: str = "auto"
    beta: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.recon_loss not in ("auto", "mse", "bce"):
            raise ValueError(f"recon_loss must be 'auto', 'mse' or 'bce', got {self.recon_loss!r}")
        self.beta = float(self.beta)
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be >= 0, got {self.beta}")


# ------------------------------------------------------------------------------ helpers


def _architecture(config: BaselineConfig, dataset: Dataset) -> str:
    if config.architecture != "auto":
        if config.architecture == "conv" and dataset.kind != "image":
            raise ValueError("architecture='conv' needs image data (n, c, h, w)")
        return config.architecture
    return "conv" if dataset.kind == "image" else "mlp"


def _check_dataset(dataset) -> Dataset:
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be an aeot.data.Dataset, got {type(dataset).__name__}")
    if len(dataset) < 2:
        raise ValueError(f"need at least 2 training samples, got {len(dataset)}")
    return dataset


def load_baseline_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a baseline checkpoint (tensors on CPU); raises for missing or foreign files."""
    required = {"fingerprint", "iteration", "history", "modules", "optimizers", "rng"}
    return load_checkpoint(path, required, what="baseline")


# --------------------------------------------------------------------------- estimator


class _Baseline(ConfigEstimator):
    """Shared estimator logic: the contract of :mod:`aeot.models.base` over a
    :class:`BaselineConfig`, the resumable loop, sampling."""

    name: ClassVar[str] = "baseline"
    config_class: ClassVar[type[BaselineConfig]] = BaselineConfig
    _fitted_attribute: ClassVar[str] = "n_iter_"
    _history_keys: ClassVar[tuple[str, ...]] = ()
    _module_keys: ClassVar[tuple[str, ...]] = ()  # the networks _build returns

    # -- subclass hooks
    def _build(self, shape: tuple[int, ...], kind: str) -> dict[str, nn.Module]:
        """The networks for samples of ``shape`` and data ``kind`` ("image" / "points")."""
        raise NotImplementedError

    def _optimizers(self, modules: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def _step(self, batch, modules, optimizers) -> dict[str, float]:
        raise NotImplementedError

    def _sampler(self) -> nn.Module:
        raise NotImplementedError

    # -- training
    def fit(self, dataset: Dataset) -> _Baseline:
        """Train on ``dataset`` (points ``(n, d)`` or images ``(n, c, h, w)`` in [0, 1]).

        Networks are (re)initialised from ``config.seed``; with a matching checkpoint
        at ``config.checkpoint_path`` training resumes from it.

        Returns
        -------
        self
            With ``history_`` (per-iteration losses), ``n_iter_``, ``sample_shape_``,
            ``data_kind_``, ``fit_seconds_`` and the trained networks set.
        """
        dataset = _check_dataset(dataset)
        cfg = self.config
        dev = resolve_device(cfg.device)
        x = dataset.x
        n = len(dataset)
        arch = _architecture(cfg, dataset)
        start_time = time.perf_counter()

        with forked_rng(dev, cfg.seed):
            self.data_kind_ = dataset.kind
            self.sample_shape_ = tuple(dataset.sample_shape)
            self.architecture_ = arch
            modules = self._build(self.sample_shape_, self.data_kind_)
            for module in modules.values():
                module.to(dev)
            optimizers = self._optimizers(modules)
            state = TrainState(
                torch.Generator().manual_seed(cfg.seed + 1),
                dev,
                history={k: [] for k in self._history_keys},
            )
            checkpoint = None
            if cfg.checkpoint_path is not None:
                checkpoint = Checkpoint(
                    cfg.checkpoint_path,
                    self._fingerprint(modules, x, arch),
                    {"modules": modules, "optimizers": optimizers},
                    counter="iteration",
                    what="baseline",
                )

            def batch() -> torch.Tensor:
                idx = torch.randint(n, (cfg.batch_size,), generator=state.generator).to(x.device)
                return x[idx].to(dev, non_blocking=True)

            for module in modules.values():
                module.train()
            run_loop(
                lambda t: self._step(batch, modules, optimizers),
                state,
                cfg.iterations,
                checkpoint=checkpoint,
                every=cfg.checkpoint_every,
                name=f"{self.name} training",
                unit="iteration",
                progress=cfg.progress,
                desc=f"train {self.name}",
                postfix_every=50,
            )

        for key, module in modules.items():
            module.eval()
            setattr(self, f"{key}_", module)
        self.history_ = state.history
        self.n_iter_ = cfg.iterations
        self.device_ = dev
        self.fit_seconds_ = time.perf_counter() - start_time
        return self

    def _fingerprint(self, modules: dict[str, nn.Module], x: torch.Tensor, arch: str) -> dict:
        hyper = {k: v for k, v in self.config.to_dict().items() if k not in _NOT_FINGERPRINTED}
        return {
            "version": CHECKPOINT_VERSION,
            "estimator": type(self).__name__,
            "architecture": arch,
            "modules": {
                key: {
                    "class": type(m).__name__,
                    "config": m.config.to_dict() if hasattr(m.config, "to_dict") else None,
                    "parameters": {k: list(v.shape) for k, v in m.state_dict().items()},
                }
                for key, m in modules.items()
            },
            "data_shape": list(x.shape),
            "data_dtype": str(x.dtype),
            "data_hash": tensor_hash(x),
            "hyper": hyper,
        }

    # -- sampling
    @torch.no_grad()
    def sample(self, n: int, *, seed: int = 0, batch_size: int = _SAMPLE_BLOCK) -> torch.Tensor:
        """Draw ``n`` samples ``G(z)``, ``z ~ N(0, I_L)``, deterministically from ``seed``.

        Parameters
        ----------
        n : int
            Number of samples.
        seed : int
            Seed of the latent draws (independent of the training seed).
        batch_size : int
            Decoding batch size.

        Returns
        -------
        torch.Tensor
            float32 CPU tensor, ``(n, d)`` for points or ``(n, c, h, w)`` in [0, 1] for
            images.
        """
        self._check_fitted()
        n = check_positive_int(n, "n")
        seed = check_positive_int(seed, "seed", minimum=0)
        batch_size = check_positive_int(batch_size, "batch_size")
        return torch.cat(list(self._decoded_blocks(n, seed, batch_size)))

    def _decoded_blocks(self, n: int, seed: int, block: int) -> Iterator[torch.Tensor]:
        """G(z) for the latent stream of ``seed``, drawn and decoded ``block`` rows at a
        time (the block size fixes the draws: torch's CPU normal stream depends on it)."""
        net = self._sampler()
        net.eval()
        gen = torch.Generator(device=self.device_).manual_seed(seed)
        latent_dim = self.config.latent_dim
        for s in range(0, n, block):
            m = min(block, n - s)
            with torch.no_grad():
                z = torch.randn(m, latent_dim, generator=gen, device=self.device_)
                out = net(z).float().cpu()
            yield out.clamp_(0.0, 1.0) if self.data_kind_ == "image" else out

    def sample_chunks(self, n: int, *, seed: int = 0, chunk: int = 2**14) -> Iterator[torch.Tensor]:
        """:meth:`sample` in blocks of ``chunk`` samples, for outputs larger than memory:
        their concatenation equals ``sample(n, seed=seed)`` for any ``chunk``."""
        self._check_fitted()
        n = check_positive_int(n, "n")
        chunk = check_positive_int(chunk, "chunk")
        seed = check_positive_int(seed, "seed", minimum=0)
        pending: list[torch.Tensor] = []
        held = 0
        for out in self._decoded_blocks(n, seed, _SAMPLE_BLOCK):
            pending.append(out)
            held += out.shape[0]
            while held >= chunk:
                joined = torch.cat(pending)
                yield joined[:chunk]
                pending, held = [joined[chunk:]], held - chunk
        if held:
            yield torch.cat(pending)

    # -- persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted baseline to a folder (:func:`aeot.core.persist.save_folder`):
        config.json (the config, the data shape and kind, the architecture, the loss
        history), one safetensors file per network and ``manifest.json``. The folder is
        replaced whole; :meth:`load` (or :func:`aeot.models.load`) reads it back."""
        self._check_fitted()
        meta = {
            "estimator": type(self).__name__,
            "sample_shape": list(self.sample_shape_),
            "data_kind": self.data_kind_,
            "architecture": self.architecture_,
            "n_iter": self.n_iter_,
            "history": {k: list(v) for k, v in self.history_.items()},
        }
        with save_folder(path, format=_FORMAT, config=self.config.to_dict(), meta=meta) as out:
            for key in self._module_keys:
                out.module(key, getattr(self, f"{key}_"))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | None = None):
        """Read a baseline written by :meth:`save` onto ``device`` (default: the saved
        one); the files are checked against the manifest, the networks are rebuilt from
        the saved config (on the meta device: nothing is allocated before the weights
        files are found to match) and their weights loaded. ``load`` of another
        baseline's folder is an error naming both."""
        names = [f"{key}.safetensors" for key in cls._module_keys]
        saved = read_folder(path, format=_FORMAT, files=names, what="baseline")
        meta = saved.meta
        config_path = saved.folder / CONFIG_FILE
        if meta.get("estimator") != cls.__name__:
            raise ValueError(
                f"{config_path} holds a {meta.get('estimator')!r}, not a {cls.__name__}"
            )
        shape = meta.get("sample_shape")
        problems = []
        if not (is_shape_list(shape) and len(shape) <= 3 and math.prod(shape) <= 2**24):
            problems.append(f"'sample_shape' must be 1 to 3 positive integers, got {shape!r}")
        if meta.get("data_kind") not in ("image", "points"):
            problems.append(
                f"'data_kind' must be 'image' or 'points', got {meta.get('data_kind')!r}"
            )
        if meta.get("architecture") not in ("mlp", "conv"):
            problems.append(
                f"'architecture' must be 'mlp' or 'conv', got {meta.get('architecture')!r}"
            )
        n_iter = meta.get("n_iter")
        if not isinstance(n_iter, int) or isinstance(n_iter, bool) or n_iter < 1:
            problems.append(f"'n_iter' must be a positive integer, got {n_iter!r}")
        history = meta.get("history", {})
        if not isinstance(history, dict):
            problems.append("'history' must be an object")
        if problems:
            raise ValueError(f"{config_path} is damaged: {'; '.join(problems)}")
        try:
            model = cls(config=saved.config)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{config_path} is damaged: {exc}") from None
        if device is not None:
            model.config.device = device
        dev = resolve_device(model.config.device)
        model.sample_shape_ = tuple(shape)
        model.data_kind_ = meta["data_kind"]
        model.architecture_ = meta["architecture"]
        with torch.device("meta"):
            modules = model._build(model.sample_shape_, model.data_kind_)
        for key in cls._module_keys:
            setattr(model, f"{key}_", saved.load_module(key, modules[key], dev))
        model.history_ = copy.deepcopy(history)
        model.n_iter_ = n_iter
        model.device_ = dev
        model.fit_seconds_ = 0.0
        return model


class _GANBase(_Baseline):
    """Generator + discriminator construction shared by the two GANs."""

    _module_keys = ("generator", "discriminator")
    _generator_norm: ClassVar[str] = "batch"
    _discriminator_norm: ClassVar[str] = "none"

    def _build(self, shape: tuple[int, ...], kind: str) -> dict[str, nn.Module]:
        cfg = self.config
        out_act = "sigmoid" if kind == "image" else "none"
        generator: Generator
        if self.architecture_ == "mlp":
            generator = MLPGenerator(
                MLPGeneratorConfig(
                    latent_dim=cfg.latent_dim,
                    output_shape=shape,
                    hidden=cfg.hidden,
                    activation="relu",
                    output_activation=out_act,
                )
            )
            critic: nn.Module = MLPDiscriminator(
                MLPDiscriminatorConfig(input_shape=shape, hidden=cfg.hidden)
            )
        else:
            generator = ConvGenerator(
                ConvGeneratorConfig(
                    latent_dim=cfg.latent_dim,
                    output_shape=shape,
                    width=cfg.conv_width,
                    norm=self._generator_norm,
                    output_activation="sigmoid",
                )
            )
            critic = ConvDiscriminator(
                ConvDiscriminatorConfig(
                    input_shape=shape, width=cfg.conv_width, norm=self._discriminator_norm
                )
            )
        return {"generator": generator, "discriminator": critic}

    def _optimizers(self, modules):
        cfg = self.config
        return {
            key: torch.optim.Adam(m.parameters(), lr=cfg.lr, betas=cfg.betas)
            for key, m in modules.items()
        }

    def _noise(self, n: int, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(n, self.config.latent_dim, device=like.device, dtype=like.dtype)

    def _sampler(self) -> nn.Module:
        return self.generator_


class GANBaseline(_GANBase):
    """Vanilla GAN with the non-saturating loss (Goodfellow et al. 2014).

    The discriminator D (logits) and the generator G alternate Adam steps on

        L_D = E_x softplus(−D(x)) + E_z softplus(D(G(z)))      (logistic loss),
        L_G = E_z softplus(−D(G(z)))                            (non-saturating),

    with ``z ~ N(0, I_L)``. Conv networks are DCGAN's (batch norm in G).

    Parameters
    ----------
    config : GANConfig or dict, optional
    **overrides
        Config fields to replace, e.g. ``GANBaseline(iterations=500, latent_dim=2)``.

    Attributes
    ----------
    generator_ : aeot.nets.Generator
    discriminator_ : nn.Module
    history_ : dict of list of float
        ``"d_loss"`` and ``"g_loss"`` per iteration (L_D averaged over ``d_steps``).
    n_iter_ : int
    fit_seconds_ : float
        Wall time of the last :meth:`fit`.
    """

    name = "GAN"
    config_class = GANConfig
    _history_keys = ("d_loss", "g_loss")
    _discriminator_norm = "batch"

    def _step(self, batch, modules, optimizers) -> dict[str, float]:
        g, d = modules["generator"], modules["discriminator"]
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
        d_total = 0.0
        for _ in range(self.config.d_steps):
            real = batch()
            with torch.no_grad():
                fake = g(self._noise(real.shape[0], real))
            loss_d = discriminator_loss(d(real), d(fake), "ns")
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            d_total += float(loss_d.detach())
        fake = g(self._noise(self.config.batch_size, real))
        loss_g = generator_loss(d(fake), "ns")
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {"d_loss": d_total / self.config.d_steps, "g_loss": float(loss_g.detach())}


class WGANGPBaseline(_GANBase):
    """WGAN with gradient penalty (Gulrajani et al. 2017, Algorithm 1).

    Per generator update the critic D takes ``n_critic`` Adam steps on

        L_D = E_z D(G(z)) − E_x D(x) + λ E_x̂ (‖∇_x̂ D(x̂)‖₂ − 1)²,
        x̂ = ε x + (1 − ε) G(z),  ε ~ U(0, 1),

    then the generator one step on ``L_G = −E_z D(G(z))``. Defaults: λ = 10,
    n_critic = 5, Adam(1e-4, β = (0.5, 0.9)). The critic has no batch norm (the penalty
    is per sample); the conv generator keeps DCGAN's batch norm.

    Parameters
    ----------
    config : WGANGPConfig or dict, optional
    **overrides
        Config fields to replace.

    Attributes
    ----------
    generator_ : aeot.nets.Generator
    discriminator_ : nn.Module
        The critic.
    history_ : dict of list of float
        Per generator iteration, averaged over its critic steps: ``"critic_loss"``
        (L_D), ``"wasserstein"`` (the critic gap E D(x) − E D(G(z)), an estimate of
        W₁ once the critic is near-optimal), ``"gradient_penalty"``; and ``"g_loss"``.
    n_iter_ : int
    fit_seconds_ : float
    """

    name = "WGAN-GP"
    config_class = WGANGPConfig
    _history_keys = ("critic_loss", "wasserstein", "gradient_penalty", "g_loss")
    _discriminator_norm = "none"

    def _step(self, batch, modules, optimizers) -> dict[str, float]:
        cfg = self.config
        g, d = modules["generator"], modules["discriminator"]
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
        totals = {"critic_loss": 0.0, "wasserstein": 0.0, "gradient_penalty": 0.0}
        for _ in range(cfg.n_critic):
            real = batch()
            with torch.no_grad():
                fake = g(self._noise(real.shape[0], real))
            real_scores, fake_scores = d(real), d(fake)
            gap = real_scores.mean() - fake_scores.mean()
            penalty = gradient_penalty(d, real, fake)
            loss_d = -gap + cfg.gp_weight * penalty
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            totals["critic_loss"] += float(loss_d.detach())
            totals["wasserstein"] += float(gap.detach())
            totals["gradient_penalty"] += float(penalty.detach())
        fake = g(self._noise(cfg.batch_size, real))
        loss_g = generator_loss(d(fake), "wgan")
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        out = {k: v / cfg.n_critic for k, v in totals.items()}
        out["g_loss"] = float(loss_g.detach())
        return out


class VAEBaseline(_Baseline):
    """Variational autoencoder; samples decode prior draws ``z ~ N(0, I_L)``.

    Adam minimises the negative ELBO per sample (Kingma & Welling 2014)

        L = E_{q(z|x)} [−log p(x|z)] + β KL(q(z|x) ‖ N(0, I_L)),

    with a Gaussian likelihood of fixed variance 1/2 (``"mse"``: summed squared error)
    for points and a Bernoulli likelihood (``"bce"``) for images. Networks are the
    :class:`aeot.nets.MLPVAE` / :class:`aeot.nets.ConvVAE` stacks.

    Parameters
    ----------
    config : VAEConfig or dict, optional
    **overrides
        Config fields to replace.

    Attributes
    ----------
    model_ : MLPVAE or ConvVAE
    history_ : dict of list of float
        ``"loss"`` (negative ELBO), ``"recon"`` and ``"kl"`` per iteration.
    n_iter_ : int
    fit_seconds_ : float
    """

    name = "VAE"
    config_class = VAEConfig
    _history_keys = ("loss", "recon", "kl")
    _module_keys = ("model",)

    def _build(self, shape: tuple[int, ...], kind: str) -> dict[str, nn.Module]:
        cfg = self.config
        recon = cfg.recon_loss
        if recon == "auto":
            recon = "bce" if kind == "image" else "mse"
        if recon == "bce" and kind != "image":
            raise ValueError("recon_loss='bce' needs image data in [0, 1]")
        out_act = "sigmoid" if kind == "image" else "none"
        model: nn.Module
        if self.architecture_ == "mlp":
            model = MLPVAE(
                MLPVAEConfig(
                    input_shape=shape,
                    latent_dim=cfg.latent_dim,
                    hidden=cfg.hidden,
                    output_activation=out_act,
                    recon_loss=recon,
                    beta=cfg.beta,
                )
            )
        else:
            model = ConvVAE(
                ConvVAEConfig(
                    input_shape=shape,
                    latent_dim=cfg.latent_dim,
                    width=cfg.conv_width,
                    output_activation="sigmoid",
                    recon_loss=recon,
                    beta=cfg.beta,
                )
            )
        return {"model": model}

    def _optimizers(self, modules):
        cfg = self.config
        return {
            "model": torch.optim.Adam(modules["model"].parameters(), lr=cfg.lr, betas=cfg.betas)
        }

    def _step(self, batch, modules, optimizers) -> dict[str, float]:
        model, opt = modules["model"], optimizers["model"]
        total, recon, kl = model.loss(batch())
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        return {
            "loss": float(total.detach()),
            "recon": float(recon.detach()),
            "kl": float(kl.detach()),
        }

    def _sampler(self) -> nn.Module:
        return self.model_.decoder

    @torch.no_grad()
    def encode(self, x) -> torch.Tensor:
        """Posterior means ``μ(x)``, shape ``(n, L)`` (CPU float32)."""
        self._check_fitted()
        x = as_float_tensor(x, "x", dtype=torch.float32)
        return self.model_.encode(x.to(self.device_)).cpu()


def baseline_class(name) -> type[_Baseline]:
    """The baseline estimator class called ``name`` (a saved folder's "estimator")."""
    classes = {cls.__name__: cls for cls in (GANBaseline, WGANGPBaseline, VAEBaseline)}
    if name not in classes:
        raise ValueError(f"{name!r} is not an aeot baseline (one of {sorted(classes)})")
    return classes[name]
