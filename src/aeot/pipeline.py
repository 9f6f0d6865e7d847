"""AE-OT: an autoencoder for the manifold, semi-discrete OT for the distribution.

An, Guo, Lei, Luo, Yau, Gu, "AE-OT: A New Generative Model Based on Extended
Semi-Discrete Optimal Transport", ICLR 2020.

1. Train an autoencoder x ↦ z = φ(x) ↦ ψ(z) on the data (manifold learning).
2. Normalise the latent codes z_i into the cube [−1, 1]^k and solve semi-discrete
   OT from the uniform measure on the cube to Σ_i (1/N) δ_{z_i} (Brenier potential).
3. Detect the singular set of the OT map (large dihedral angles between adjacent
   facets of the potential) and generate new codes with the piecewise-linear
   extension of the map, which never mixes codes across a singular facet.
4. Decode the new codes.

For low-dimensional point clouds (d ≤ 3) the autoencoder may be the identity
(``autoencoder="identity"``, the default there): the OT then runs in data space,
which is how the talk's 2D pictures of the singular set are made.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aeot._io import load_tensors
from aeot._validation import as_float_tensor, as_working_tensor, check_seed, resolve_device
from aeot.core.config import ConfigMixin
from aeot.core.persist import UnverifiedModelWarning, is_shape_list, read_folder, save_folder
from aeot.data.dataset import Dataset
from aeot.generate import GeneratedCodes
from aeot.generate.sampler import METHODS as GENERATORS
from aeot.metrics.memorisation import NearestIndex, leave_one_out_median
from aeot.models.base import ConfigEstimator
from aeot.nets.autoencoder import (
    Autoencoder,
    ConvAutoencoderConfig,
    MLPAutoencoderConfig,
)
from aeot.nets.factory import build_autoencoder, load_autoencoder, save_autoencoder
from aeot.nets.train import LOSSES, train_autoencoder
from aeot.ot import (
    BoxUniform,
    ExactNewton2D,
    MonteCarloNewton,
    MonteCarloSettings,
    SemiDiscreteProblem,
    SemiDiscreteResult,
    solve,
)
from aeot.ot.montecarlo import METHODS as OT_METHODS

AUTOENCODERS = ("auto", "mlp", "conv", "identity")
MODEL_FILES = ("config.json", "ot.safetensors", "autoencoder.safetensors")


_FORMAT = "aeot-model"

#: Largest accepted value of each integer setting of :class:`AEOTConfig`. A model's
#: config.json may come from anyone: ``n_graph_samples = 2**40`` would ask for 26 TB.
CONFIG_LIMITS = {
    "latent_dim": 4096,
    "width": 4096,
    "epochs": 10**6,
    "batch_size": 2**20,
    "n_graph_samples": 2**24,
    "ot_max_iter": 10**6,
}
MAX_HIDDEN_WIDTH = 2**16
MAX_HIDDEN_LAYERS = 64
MAX_SEED = 2**42 - 1  # the Monte-Carlo solver derives batch seeds seed·1000003 + 2k


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _bounded_int(value, name: str, limit: int) -> int:
    """``value`` as an int in [1, ``limit``] (numpy integers accepted), or a ValueError
    naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value > limit:
        raise ValueError(f"{name} = {value} exceeds the limit of {limit}: refused")
    return int(value)


# exact 2D solves (AEOTConfig.exact_2d) stop at this largest relative cell-mass error:
# the sampler's cell graph cannot see 1e-8 of a cell, and it saves the last Newton step
EXACT_2D_TOL = 1e-8
# AEOTConfig.spread=None on an autoencoder's codes, by spread_space: in data space decoded
# samples 0.82× as far from the training data as fresh items (docs/RESULTS.md, "Spread
# measured in data space"); 0.9 in latent space (ibid., "Spread along the principal
# directions")
DEFAULT_SPREAD = {"data": 0.82, "latent": 0.9}


@dataclass
class AEOTConfig(ConfigMixin):
    """Settings of :class:`AEOT`."""

    autoencoder: str = "auto"  # "auto" | "mlp" | "conv" | "identity" (auto: identity for
    # d ≤ 3, conv for images of 16×16 pixels or more, else mlp)
    latent_dim: int = 16  # size k of the latent code
    hidden: tuple[int, ...] = (256, 128)  # MLP encoder widths (the decoder mirrors them)
    width: int = 32  # channels of the first conv layer (conv autoencoders)
    epochs: int = 100  # autoencoder training epochs
    batch_size: int = 128  # autoencoder minibatch size
    lr: float = 1e-3  # Adam learning rate of the autoencoder
    loss: str = "mse"  # reconstruction loss: "mse" | "bce" | "l1"
    ot_tol: float = 0.02  # L1 cell-mass error at which the OT solve stops
    ot_method: str = "auto"  # Monte-Carlo rule: "auto" or one of ot.montecarlo.METHODS
    ot_max_iter: int = 300  # Monte-Carlo iterations at most
    ot_time_limit: float | None = None  # seconds the Monte-Carlo solve may take (None: no
    # limit); it stops unconverged at the limit and keeps its best measured iterate
    exact_2d: bool = True  # exact power-diagram Newton when the latent space is 2D
    threshold: float | None = None  # singular dihedral angle (rad, normalised); data-driven if None
    n_graph_samples: int = 2**17  # source samples used to estimate the cell graph
    spread: float | None = None  # τ of AEOTSampler: new samples at τ × a fresh item's
    # distance from the training set (in spread_space); 0 is the plain PL extension; None:
    # DEFAULT_SPREAD[spread_space] for an autoencoder's codes, 0 for "identity" (points:
    # spreading moves 2D samples off their modes)
    spread_space: str = "data"  # where τ is measured: "data" (decoded samples against
    # the training data, AEOT.calibrate_spread) or "latent" (codes against the training
    # codes, AEOTSampler's own calibration)
    generator: str = "pl"  # "pl": the PL extension, moved by the spread; "pairwise": the
    # AE-OT reference code's rule z = (1 − w) y_i + w y_j of each point's two best cells
    # (y_i alone across a singular facet), no spread (AEOTSampler, method)
    pair_weight: float = 0.25  # w of the "pairwise" generator, the runner-up cell's weight
    seed: int = 0  # seeds autoencoder training, OT sampling and the sampler
    device: str | None = None  # torch device; CUDA when available if None
    progress: bool = True  # progress bars on long steps

    def __post_init__(self) -> None:
        """Check every field; a shared config.json reaches here too (:meth:`AEOT.load`),
        so sizes are bounded (:data:`CONFIG_LIMITS`) before anything is allocated."""
        for name, choices in (
            ("autoencoder", AUTOENCODERS),
            ("loss", LOSSES),
            ("ot_method", OT_METHODS),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        for name, limit in CONFIG_LIMITS.items():
            setattr(self, name, _bounded_int(getattr(self, name), name, limit))
        if isinstance(self.hidden, str) or not isinstance(self.hidden, list | tuple):
            raise ValueError(f"hidden must be a list of layer widths, got {self.hidden!r}")
        if len(self.hidden) > MAX_HIDDEN_LAYERS:
            raise ValueError(
                f"hidden has {len(self.hidden)} layers, more than {MAX_HIDDEN_LAYERS}: refused"
            )
        self.hidden = tuple(
            _bounded_int(w, f"hidden[{i}]", MAX_HIDDEN_WIDTH) for i, w in enumerate(self.hidden)
        )
        self.seed = check_seed(self.seed, maximum=MAX_SEED)
        for name in ("lr", "ot_tol"):
            value = getattr(self, name)
            if not (_is_number(value) and value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
            setattr(self, name, float(value))
        if self.ot_time_limit is not None:
            value = self.ot_time_limit
            if not (_is_number(value) and value > 0 and math.isfinite(value)):
                raise ValueError(f"ot_time_limit must be positive seconds or None, got {value!r}")
            self.ot_time_limit = float(value)
        if self.spread is not None:
            if not (_is_number(self.spread) and 0.0 <= self.spread <= 4.0):
                raise ValueError(f"spread must be a number in [0, 4] or None, got {self.spread!r}")
            self.spread = float(self.spread)
        if self.generator not in GENERATORS:
            raise ValueError(f"generator must be one of {GENERATORS}, got {self.generator!r}")
        if not (_is_number(self.pair_weight) and 0.0 <= self.pair_weight <= 1.0):
            raise ValueError(f"pair_weight must be a number in [0, 1], got {self.pair_weight!r}")
        self.pair_weight = float(self.pair_weight)
        if self.generator == "pairwise" and self.spread not in (None, 0.0):
            raise ValueError(
                f"spread {self.spread} moves the PL extension's codes; the 'pairwise' "
                "generator takes none: leave spread None or 0"
            )
        if self.spread_space not in ("latent", "data"):
            raise ValueError(f"spread_space must be 'latent' or 'data', got {self.spread_space!r}")
        if self.threshold is not None:
            if not (_is_number(self.threshold) and math.isfinite(self.threshold)):
                raise ValueError(
                    f"threshold must be a finite number or None, got {self.threshold!r}"
                )
            self.threshold = float(self.threshold)
        for name in ("exact_2d", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.device is not None and not isinstance(self.device, str):
            raise ValueError(f"device must be a string such as 'cpu' or None, got {self.device!r}")
        if self.device is not None:  # parsed here; whether it is available, at first use
            try:
                torch.device(self.device)
            except RuntimeError:
                raise ValueError(
                    f"device {self.device!r} is not a torch device (e.g. 'cpu', 'cuda:0')"
                ) from None


@dataclass
class _Normaliser:
    """Affine map of latent codes into the cube [−1, 1]^k: z̃ = (z − center) / scale."""

    center: torch.Tensor
    scale: torch.Tensor

    @classmethod
    def fit(cls, codes: torch.Tensor, margin: float = 1.02) -> _Normaliser:
        low, high = codes.min(0).values, codes.max(0).values
        center = (low + high) / 2
        scale = ((high - low) / 2 * margin).clamp_min(1e-12)
        return cls(center, scale)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.center.to(z)) / self.scale.to(z)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.scale.to(z) + self.center.to(z)


class AEOT(ConfigEstimator):
    """The AE-OT generative model (the estimator contract of :mod:`aeot.models.base`).

    Parameters
    ----------
    config : AEOTConfig or dict, optional
        All settings; keyword arguments (the fields of :class:`AEOTConfig`) override
        single fields. ``get_params`` / ``set_params`` / ``clone`` work on those fields.

    Attributes (after :meth:`fit`)
    ------------------------------
    autoencoder_ : Autoencoder or None
        The trained autoencoder (None for the identity).
    codes_ : (N, k) tensor
        Normalised latent codes of the training data (the OT targets).
    ot_ : SemiDiscreteResult
        The Brenier potential from the uniform cube to the codes.
    sampler_ : aeot.generate.AEOTSampler
        The piecewise-linear extension with its singular set.
    history_ : dict
        Autoencoder losses, OT errors and timings.

    Examples
    --------
    >>> from aeot.data import load_dataset
    >>> model = AEOT(epochs=50, latent_dim=8).fit(load_dataset("digits"))
    >>> images = model.sample(64, seed=1)
    """

    config_class = AEOTConfig
    _fitted_attribute = "ot_"

    # ------------------------------------------------------------------ fitting
    def fit(self, data, *, checkpoint_dir: str | os.PathLike | None = None) -> AEOT:
        """Train the autoencoder, encode the data, solve OT and build the sampler.

        Parameters
        ----------
        data : Dataset or tensor
            Images (n, c, h, w) in [0, 1] or points (n, d).
        checkpoint_dir : path, optional
            Where the autoencoder checkpoint (``autoencoder.ckpt``) and the OT solver
            checkpoint (``ot.ckpt``, Monte-Carlo solver only) are kept; an interrupted fit
            resumes from them, and a checkpoint of a different run raises ValueError.
        """
        import time

        cfg = self.config
        x = self._as_tensor(data)
        self.input_shape_ = tuple(x.shape[1:])
        self.kind_ = "image" if x.ndim == 4 else "points"
        device = resolve_device(cfg.device)
        history: dict = {}
        start = time.perf_counter()
        self.autoencoder_ = self._build_autoencoder(x)
        if self.autoencoder_ is not None:
            checkpoint = None
            if checkpoint_dir is not None:
                checkpoint = Path(checkpoint_dir) / "autoencoder.ckpt"
            history["ae_loss"] = train_autoencoder(
                self.autoencoder_,
                x,
                epochs=cfg.epochs,
                batch_size=cfg.batch_size,
                lr=cfg.lr,
                loss=cfg.loss,
                device=device,
                seed=cfg.seed,
                progress=cfg.progress,
                checkpoint_path=checkpoint,
            )
            self.autoencoder_.eval()
        history["ae_seconds"] = time.perf_counter() - start
        codes = self._encode_raw(x)
        self.normaliser_ = _Normaliser.fit(codes)
        self.codes_ = self.normaliser_.forward(codes)
        start = time.perf_counter()
        ot_checkpoint = Path(checkpoint_dir) / "ot.ckpt" if checkpoint_dir is not None else None
        self._say(
            f"solving OT from the uniform cube to {len(self.codes_)} codes in d = "
            f"{self.codes_.shape[1]} (tol {cfg.ot_tol})"
        )
        self.ot_ = self._solve_ot(self.codes_, ot_checkpoint)
        history["ot_seconds"] = time.perf_counter() - start
        history["ot_errors"] = list(self.ot_.errors)
        self._say(
            f"OT {'converged' if self.ot_.converged else 'stopped unconverged'}: L1 error "
            f"{self.ot_.error:.3g} after {self.ot_.n_iter} iterations, "
            f"{history['ot_seconds']:.1f} s; estimating the cell graph and singular set"
        )
        start = time.perf_counter()
        self._fit_sampler(x)
        history["sampler_seconds"] = time.perf_counter() - start
        self.history_ = history
        return self

    def _say(self, message: str) -> None:
        """A progress line on stderr (with ``progress``), for the stages without a bar."""
        if self.config.progress:
            print(f"aeot: {message}", file=sys.stderr, flush=True)

    def _as_tensor(self, data) -> torch.Tensor:
        if isinstance(data, Dataset):
            data = data.x
        x = as_float_tensor(data, "data", dtype=torch.float32)
        if x.ndim not in (2, 4):
            raise ValueError(
                f"data must be points (n, d) or images (n, c, h, w), got shape {tuple(x.shape)}"
            )
        if x.shape[0] < 2:
            raise ValueError(f"need at least 2 training samples, got {x.shape[0]}")
        return x

    def _build_autoencoder(self, x: torch.Tensor) -> Autoencoder | None:
        cfg = self.config
        kind = cfg.autoencoder
        if kind == "auto":
            # identity for point clouds in d ≤ 3; conv for images from 16×16 pixels up;
            # an MLP for smaller images (8×8 digits, as `aeot demo` fits them) and other data
            small = x.ndim == 4 and x.shape[2] * x.shape[3] < 256
            kind = (
                "identity"
                if x.ndim == 2 and x.shape[1] <= 3
                else ("conv" if x.ndim == 4 and not small else "mlp")
            )
        if kind == "identity":
            if x.ndim != 2:
                raise ValueError(
                    f"autoencoder='identity' uses the data as codes, so it needs points "
                    f"(n, d); got images of shape {tuple(x.shape)}: use 'conv', 'mlp' or 'auto'"
                )
            return None
        output = "sigmoid" if x.ndim == 4 else "none"
        if kind == "conv":
            if x.ndim != 4:
                raise ValueError("a conv autoencoder needs images (n, c, h, w)")
            config = ConvAutoencoderConfig(
                input_shape=tuple(x.shape[1:]),
                latent_dim=cfg.latent_dim,
                width=cfg.width,
                output_activation=output,
            )
        else:
            config = MLPAutoencoderConfig(
                input_shape=tuple(x.shape[1:]),
                latent_dim=cfg.latent_dim,
                hidden=cfg.hidden,
                output_activation=output,
            )
        torch.manual_seed(cfg.seed)
        return build_autoencoder(config)

    def _solve_ot(self, codes: torch.Tensor, checkpoint: Path | None = None) -> SemiDiscreteResult:
        cfg = self.config

        def report(info) -> None:
            if info.batch_size == 0:  # the exact 2D solver: no samples, no noise
                self._say(
                    f"OT Newton iteration {info.iteration}: exact L1 error {info.error:.2e}, "
                    f"{info.elapsed:.1f} s"
                )
                return
            self._say(
                f"OT iteration {info.iteration}: L1 error {info.error:.4f} (sampling noise "
                f"{info.noise:.4f}), batch {info.batch_size}, {info.elapsed:.0f} s"
            )

        unique, counts = torch.unique(codes, dim=0, return_counts=True)
        weights = counts.double() / counts.sum()
        k = codes.shape[1]
        problem = SemiDiscreteProblem(unique, weights, source=BoxUniform(k, -1.0, 1.0))
        monte_carlo = MonteCarloNewton(
            MonteCarloSettings(
                method=cfg.ot_method,
                tol=cfg.ot_tol,
                max_iter=cfg.ot_max_iter,
                time_limit=cfg.ot_time_limit,
                seed=cfg.seed,
                device=cfg.device,
            ),
            checkpoint_path=checkpoint,
        )
        return solve(
            problem,
            "auto" if cfg.exact_2d else MonteCarloNewton.name,
            exact=ExactNewton2D(tol=EXACT_2D_TOL),
            monte_carlo=monte_carlo,
            callback=report if cfg.progress else None,
        )

    def _fit_sampler(self, data) -> AEOT:
        """Rebuild the sampler from the OT solution and the current config (``spread``,
        ``spread_space``) alone, the autoencoder and OT kept; ``data`` is the training
        data, which the data-space calibration (:meth:`calibrate_spread`) measures
        against. :meth:`fit` ends with it."""
        in_data = self.config.spread_space == "data" and self.autoencoder_ is not None
        self.sampler_ = self._build_sampler(calibrate=not in_data)
        if in_data:
            self.calibrate_spread(data)
        return self

    def _build_sampler(self, *, calibrate: bool):
        """The sampler of the OT solution; ``calibrate``: its scale picked among the codes
        (latent space), else left 0 for the data-space calibration or a saved scale."""
        from aeot.generate import AEOTSampler

        cfg = self.config
        return AEOTSampler(
            spread=self.spread_, method=cfg.generator, pair_weight=cfg.pair_weight
        ).fit(
            self.ot_,
            n_graph_samples=cfg.n_graph_samples,
            threshold=cfg.threshold,
            seed=cfg.seed,
            calibrate=calibrate,
        )

    def calibrate_spread(self, data, *, n: int = 1024, steps: int = 16) -> AEOT:
        """Scale the sampler's spread in data space: decoded samples at τ × a fresh item's
        distance from the training data (``spread_space="data"``; :meth:`fit` calls it).

        The fresh item's distance is the median leave-one-out distance of n training
        items to the nearest other one; the generated items' is the median distance of n
        decoded codes (the plain extension plus their spread steps) to the nearest
        training item, both Euclidean on the flattened data, as
        :func:`aeot.metrics.memorisation.memorisation` measures novelty. τ then sets that
        novelty directly: a latent τ lands at different novelty on different data sets,
        as far as the decoder pulls its outputs towards the training data
        (docs/RESULTS.md, "Spread measured in data space").

        Parameters
        ----------
        data : Dataset or tensor
            The training data the model was fitted on.
        n, steps : int
            Items and codes used, bisection steps.
        """
        self._check_fitted()
        if self.autoencoder_ is None:
            raise ValueError(
                "spread_space='data' needs an autoencoder; without one the "
                "latent space is the data space"
            )
        x = self._check_input(self._as_tensor(data))
        if len(x) != len(self.codes_):
            raise ValueError(
                f"data has {len(x)} items but the model was fitted on {len(self.codes_)}: "
                "calibrate with the training data"
            )
        if self.sampler_.spread <= 0:
            return self
        device = next(self.autoencoder_.parameters()).device  # the decoder's images' device
        index = NearestIndex(x.to(device))  # float32 images: screened in float32, exact
        fresh = leave_one_out_median(index, n, seed=self.config.seed + 7_923)

        def distance(z: torch.Tensor) -> torch.Tensor:
            return index.distances(self.decode(z.to(self.ot_.targets.dtype)))

        self.sampler_.calibrate_spread(distance, fresh, seed=self.config.seed, n=n, steps=steps)
        return self

    @property
    def spread_(self) -> float:
        """The sampler's spread τ: ``config.spread``, or when None DEFAULT_SPREAD for an
        autoencoder's codes (by ``config.spread_space``) and 0 without an autoencoder
        (identity: points) or with the ``"pairwise"`` generator."""
        if self.config.spread is not None:
            return self.config.spread
        if self.config.generator == "pairwise" or getattr(self, "autoencoder_", None) is None:
            return 0.0
        return DEFAULT_SPREAD[self.config.spread_space]

    # ---------------------------------------------------------------- encoding
    def _encode_raw(self, x: torch.Tensor, batch: int = 1024) -> torch.Tensor:
        if self.autoencoder_ is None:
            return x.clone()
        device = next(self.autoencoder_.parameters()).device
        with torch.no_grad():
            return torch.cat(
                [self.autoencoder_.encode(part.to(device)).cpu() for part in x.split(batch)]
            )

    def _decode_raw(self, z: torch.Tensor, batch: int = 1024) -> torch.Tensor:
        if self.autoencoder_ is None:
            return z.clone()
        device = next(self.autoencoder_.parameters()).device
        with torch.no_grad():
            return torch.cat(
                [self.autoencoder_.decode(part.to(device)).cpu() for part in z.split(batch)]
            )

    def _check_input(self, x, name: str = "x") -> torch.Tensor:
        x = as_float_tensor(x, name, dtype=torch.float32)
        if tuple(x.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"{name} must have shape (n, {', '.join(map(str, self.input_shape_))}), "
                f"got {tuple(x.shape)}"
            )
        return x

    def encode(self, x) -> torch.Tensor:
        """Normalised latent codes of data: (n, *input_shape) -> (n, k)."""
        self._check_fitted()
        return self.normaliser_.forward(self._encode_raw(self._check_input(x)))

    def decode(self, codes) -> torch.Tensor:
        """Data from normalised latent codes: (n, k) -> (n, *input_shape)."""
        self._check_fitted()
        z = as_float_tensor(codes, "codes", ndim=2, dtype=torch.float32)
        if z.shape[1] != self.codes_.shape[1]:
            raise ValueError(
                f"codes must have shape (n, {self.codes_.shape[1]}), got {tuple(z.shape)}"
            )
        return self._decode_raw(self.normaliser_.inverse(z))

    def reconstruct(self, x) -> torch.Tensor:
        """ψ(φ(x)): the autoencoder's reconstruction of data."""
        self._check_fitted()
        return self._decode_raw(self._encode_raw(self._check_input(x)))

    # -------------------------------------------------------------- generation
    def sample_codes(self, n: int, *, seed: int = 0) -> GeneratedCodes:
        """``n`` new normalised latent codes from the PL extension of the OT map.

        The returned :class:`~aeot.generate.GeneratedCodes` also says which training
        codes (``cells``) were mixed into each new code and with which ``weights``.
        """
        self._check_fitted()
        return self.sampler_.sample(n, seed=seed)

    def sample(self, n: int, *, seed: int = 0) -> torch.Tensor:
        """``n`` generated data samples: (n, *input_shape)."""
        return self.decode(self.sample_codes(n, seed=seed).codes)

    def sample_chunks(self, n: int, *, seed: int = 0, chunk: int = 2**14) -> Iterator[torch.Tensor]:
        """:meth:`sample` in consecutive blocks of at most ``chunk`` samples (together
        the samples ``sample(n, seed=seed)`` gives), holding one block at a time."""
        self._check_fitted()
        for codes in self.sampler_.sample_chunks(n, seed, chunk=chunk):
            yield self.decode(codes.codes)

    def interpolate(self, a, b, steps: int = 10) -> torch.Tensor:
        """Decoded latent interpolation from data ``a`` to data ``b`` off the singular set.

        ``a`` and ``b`` are single data samples (shape ``input_shape``) or indices of
        training codes. The curve follows the PL extension of the OT map between
        their cells and detours around singular facets; when the two lie in
        different modes (no non-singular path joins them) a ValueError says so.
        Returns (steps, *input_shape).
        """
        self._check_fitted()
        ends = [self._cell_of(v) for v in (a, b)]
        components = self.sampler_.singular_.components
        if int(components[ends[0]]) != int(components[ends[1]]):
            raise ValueError(self._different_modes(a, b, ends[0]))
        path = self.sampler_.interpolate(ends[0], ends[1], steps)
        return self.decode(path.codes)

    def _different_modes(self, a, b, cell_a: int) -> str:
        """The error of :meth:`interpolate` across modes, in the user's terms, with a hint."""
        name = lambda v: (  # noqa: E731
            f"training item {int(v)}" if isinstance(v, int | np.integer) else "the given point"
        )
        message = (
            f"{name(a)} and {name(b)} lie in different modes of the OT map: every path "
            "between them crosses the singular set, so no interpolation avoids mixing modes"
        )
        # training items in a's mode, by their codes' cells
        _, cells = torch.unique(self.codes_, dim=0, return_inverse=True)  # targets' rows
        comp = self.sampler_.singular_.components
        same = torch.nonzero(comp[cells] == comp[cell_a]).flatten().tolist()
        same = [i for i in same if not (isinstance(a, int | np.integer) and i == int(a))][:5]
        if same:
            message += f"; training items in the mode of {name(a)}: {', '.join(map(str, same))}"
        return message

    def _cell_of(self, value) -> int:
        """The OT cell of a training sample (by its index in the training data) or a point."""
        if isinstance(value, int | np.integer) and not isinstance(value, bool):
            value = int(value)
            n_codes = self.codes_.shape[0]
            if not 0 <= value < n_codes:
                raise ValueError(f"index {value} out of range for {n_codes} training codes")
            # the targets are the distinct codes (sorted by torch.unique): find its row
            code = self.codes_[value : value + 1].to(self.ot_.targets)
        else:
            point = as_float_tensor(value, "interpolation end point", allow_empty=True)
            x = self._check_input(point.unsqueeze(0), "interpolation end point")
            code = self.normaliser_.forward(self._encode_raw(x)).to(self.ot_.targets)
        return int(torch.cdist(code, self.ot_.targets).argmin())

    # ------------------------------------------------------------------ saving
    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to a folder: config.json, autoencoder and OT safetensors, and
        ``manifest.json`` with the SHA-256 of each (:func:`aeot.core.persist.save_folder`).

        The folder is replaced as a whole (:func:`aeot._io.atomic_folder`): the files
        are written into a new sibling folder, the manifest last, which is then renamed
        onto ``path``; an interrupted save leaves the previous model (or nothing) at
        ``path``, never a mix of two fits, and an error leaves no temporary files.
        Other entries of an existing folder (``checkpoints/``) are kept.
        """
        self._check_fitted()
        meta = {
            "input_shape": list(self.input_shape_),
            "kind": self.kind_,
            "ot": {
                "method": self.ot_.method,
                "errors": self.ot_.errors,
                "converged": self.ot_.converged,
                "n_iter": self.ot_.n_iter,
                # the returned h is the best measured iterate's: its error and noise
                "best_iteration": self.ot_.best_iteration,
                "noise": self.ot_.noise if math.isfinite(self.ot_.noise) else None,
            },
        }
        if self.config.spread_space == "data":  # its calibration needs the training data
            meta["spread_scale"] = self.sampler_.spread_scale_
        with save_folder(path, format=_FORMAT, config=self.config.to_dict(), meta=meta) as out:
            out.tensors(
                "ot",
                {
                    "targets": self.ot_.targets,
                    "weights": self.ot_.weights,
                    "h": self.ot_.h,
                    "cell_masses": self.ot_.cell_masses,
                    "codes": self.codes_,
                    "center": self.normaliser_.center,
                    "scale": self.normaliser_.scale,
                },
            )
            if self.autoencoder_ is not None:
                device = next(self.autoencoder_.parameters()).device
                save_autoencoder(out.file("autoencoder.safetensors"), self.autoencoder_.cpu())
                self.autoencoder_.to(device)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | None = None) -> AEOT:
        """Read a model written by :meth:`save` (the sampler is rebuilt from its seed).

        The files are checked against ``manifest.json`` first: a file that is missing,
        changed, or added after the save is a ValueError naming it. A folder without a
        manifest (saved by aeot before manifests existed) still loads, with a
        :class:`UnverifiedModelWarning`, since its files cannot be checked against each
        other; saving it again adds one. Then every file is checked on its own and
        against the others: config values within :data:`CONFIG_LIMITS`, finite
        autoencoder weights of the configured shapes, OT tensors of matching shapes,
        and codes whose distinct rows and frequencies are the OT targets and weights.
        """
        saved = read_folder(path, format=_FORMAT, files=MODEL_FILES, what="aeot")
        folder = saved.folder
        meta_path = folder / "config.json"
        meta = _check_meta(meta_path, saved.meta)
        if "spread_space" not in meta["config"]:  # saved before it existed: latent τ
            meta["config"]["spread_space"] = "latent"
        try:
            config = AEOTConfig.from_dict(meta["config"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{meta_path} is damaged: {exc}") from None
        if device is not None:
            config.device = device
        resolve_device(config.device)  # an unusable device fails here, not at first use
        model = cls(config)
        model.input_shape_ = tuple(meta["input_shape"])
        model.kind_ = meta["kind"]
        ae_path = folder / "autoencoder.safetensors"
        model.autoencoder_ = (
            load_autoencoder(ae_path, device=resolve_device(config.device))
            if ae_path.exists()
            else None
        )
        if model.autoencoder_ is None and config.autoencoder not in ("identity", "auto"):
            raise FileNotFoundError(f"autoencoder weights missing: {ae_path}")
        if model.autoencoder_ is not None and config.autoencoder == "identity":
            raise ValueError(
                f"{folder} holds {ae_path.name} but its config says autoencoder='identity': "
                "files from different models"
            )
        ot_path = folder / "ot.safetensors"
        tensors = _check_ot_tensors(ot_path, load_tensors(ot_path, what="OT state"))
        k = tensors["targets"].shape[1]
        if model.autoencoder_ is not None:
            ae_in = tuple(getattr(model.autoencoder_, "input_shape", model.input_shape_))
            ae_k = model.autoencoder_.config.latent_dim
            if ae_in != model.input_shape_ or ae_k != k or config.latent_dim != k:
                raise ValueError(
                    f"{ae_path} maps {ae_in} to {ae_k} latent dimensions, but the model in "
                    f"{folder} expects {model.input_shape_} and {k} (config latent_dim "
                    f"{config.latent_dim}): files from different models"
                )
        elif model.input_shape_ != (k,):
            raise ValueError(
                f"{folder} has no autoencoder, so its input shape {model.input_shape_} must be "
                f"the latent shape ({k},)"
            )
        problem = SemiDiscreteProblem(
            tensors["targets"], tensors["weights"], source=BoxUniform(k, -1.0, 1.0)
        )
        _check_codes_match_targets(ot_path, tensors["codes"], problem)
        info = meta["ot"]
        model.ot_ = SemiDiscreteResult(
            problem=problem,
            h=tensors["h"],
            cell_masses=tensors["cell_masses"],
            errors=[float(e) for e in info.get("errors", [])],
            converged=bool(info.get("converged", False)),
            n_iter=int(info.get("n_iter", 0)),
            method=str(info.get("method", "")),
            # models saved before 2026-12-06 lack these: their error reads the last one
            best_iteration=int(info.get("best_iteration") or 0),
            noise=float("nan") if info.get("noise") is None else float(info["noise"]),
        )
        model.codes_ = tensors["codes"]
        model.normaliser_ = _Normaliser(tensors["center"], tensors["scale"])
        # a data-space scale was saved with the model (its calibration needs the data)
        in_data = config.spread_space == "data"
        model.sampler_ = model._build_sampler(calibrate=not in_data)
        if in_data:
            model.sampler_.spread_scale_ = meta["spread_scale"]
        model.history_ = {}
        return model


def _check_codes_match_targets(path: Path, codes: torch.Tensor, problem) -> None:
    """The OT targets are the distinct codes, and their weights the codes' frequencies
    (how :meth:`AEOT.fit` builds them); anything else is a folder mixing two models."""
    unique, counts = torch.unique(codes.to(problem.targets.dtype), dim=0, return_counts=True)
    targets = torch.unique(problem.targets, dim=0)
    if unique.shape != targets.shape or not torch.equal(unique, targets):
        raise ValueError(
            f"{path}: the {codes.shape[0]} codes have {unique.shape[0]} distinct rows that "
            f"are not the {problem.n_targets} OT targets: the codes and the OT state come "
            "from different models"
        )
    order = torch.unique(problem.targets, dim=0, return_inverse=True)[1]
    expected = (counts.double() / codes.shape[0])[order]
    if not torch.allclose(expected, problem.weights.double().cpu(), rtol=0, atol=1e-6):
        raise ValueError(
            f"{path}: the OT weights are not the frequencies of the codes: the codes and "
            "the OT state come from different models"
        )


def _check_meta(path: Path, meta: dict) -> dict:
    """The config.json of a saved model (its format checked by :func:`read_folder`), with
    the entries :meth:`AEOT.load` reads checked."""
    shape = meta.get("input_shape")
    problems = []
    if not isinstance(meta.get("config"), dict):
        problems.append("'config' must be an object")
    if not is_shape_list(shape):
        problems.append(f"'input_shape' must be a list of positive integers, got {shape!r}")
    if meta.get("kind") not in ("image", "points"):
        problems.append(f"'kind' must be 'image' or 'points', got {meta.get('kind')!r}")
    ot = meta.setdefault("ot", {})
    errors = ot.get("errors", []) if isinstance(ot, dict) else None
    if not isinstance(errors, list) or not all(
        isinstance(e, (int, float)) and not isinstance(e, bool) for e in errors
    ):
        problems.append("'ot' must be an object whose 'errors' is a list of numbers")
    else:  # bool("false") is True: the types are checked, not coerced
        for key, kind, what in (
            ("converged", bool, "true or false"),
            ("n_iter", int, "an integer"),
            ("best_iteration", int, "an integer"),
            ("noise", (int, float), "a number"),
            ("method", str, "a string"),
        ):
            value = ot.get(key)
            if value is not None and (
                not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))
            ):
                problems.append(f"'ot' '{key}' must be {what}, got {value!r}")
        noise = ot.get("noise")
        if _is_number(noise) and not (math.isfinite(noise) and noise >= 0):
            problems.append(f"'ot' 'noise' must be a finite number >= 0, got {noise!r}")
        best = ot.get("best_iteration")
        if isinstance(best, int) and not 0 <= best <= len(errors):
            problems.append(
                f"'ot' 'best_iteration' must lie in [0, {len(errors)}] (its errors), got {best}"
            )
    config = meta.get("config")
    if isinstance(config, dict) and config.get("spread_space") == "data":
        scale = meta.get("spread_scale")
        if not (_is_number(scale) and math.isfinite(scale) and scale >= 0):
            problems.append(
                f"'spread_scale' must be a non-negative number with spread_space 'data', "
                f"got {scale!r}"
            )
    if problems:
        raise ValueError(f"{path} is damaged: {'; '.join(problems)}")
    return meta


def _check_ot_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The OT state of a saved model, checked for completeness, finiteness and shapes.

    Every tensor comes back as float32 or float64 (:func:`as_working_tensor`): a file
    holding float16 / bfloat16 tensors is promoted to float32 losslessly, integer
    tensors to a float dtype that holds them exactly, anything else is refused.
    """
    needed = {"targets", "weights", "h", "cell_masses", "codes", "center", "scale"}
    if not needed <= set(tensors):
        raise ValueError(f"{path} lacks {sorted(needed - set(tensors))}")
    checked = {
        name: as_working_tensor(tensors[name], f"{path.name}: {name}", ndim=ndim)
        for name, ndim in (
            ("targets", 2),
            ("weights", 1),
            ("h", 1),
            ("cell_masses", 1),
            ("codes", 2),
            ("center", 1),
            ("scale", 1),
        )
    }
    n, k = checked["targets"].shape
    expected = {"weights": (n,), "h": (n,), "cell_masses": (n,), "center": (k,), "scale": (k,)}
    for name, shape in expected.items():
        if tuple(checked[name].shape) != shape:
            raise ValueError(
                f"{path}: {name} has shape {tuple(checked[name].shape)}, expected {shape}"
            )
    if checked["codes"].shape[1] != k:
        raise ValueError(f"{path}: codes have {checked['codes'].shape[1]} columns, expected {k}")
    if bool((checked["scale"] <= 0).any()):
        raise ValueError(f"{path}: the latent scale must be positive")
    return checked


__all__ = ["AEOT", "AEOTConfig", "UnverifiedModelWarning"]
