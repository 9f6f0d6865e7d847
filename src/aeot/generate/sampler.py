"""AE-OT generation: new latent codes from the extended semi-discrete OT map.

:class:`AEOTSampler` wraps a solved :class:`~aeot.ot.SemiDiscreteResult` (source μ,
codes y_i, heights h_i). ``fit`` estimates the cell graph, centroids and singular
facets from source samples; ``sample`` pushes fresh source samples through the
piecewise-linear extension (:mod:`aeot.generate.extension`); ``interpolate`` walks
between two cells along a source-space curve that avoids the singular set.

References: An, Guo, Lei, Luo, Yau, Gu, "AE-OT: A new generative model based on
extended semi-discrete optimal transport", ICLR 2020; Lei, Su, Cui, Yau, Gu,
"A geometric understanding of deep learning", Engineering 2020.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.sparse.csgraph import dijkstra
from sklearn.exceptions import NotFittedError

from aeot._validation import as_float_tensor, check_positive_int, check_seed
from aeot.generate.extension import (
    MAX_CELLS,
    nearest_centroids,
    pairwise_codes,
    select_cells,
    simplex_weights,
)
from aeot.generate.graph import CellGraph, estimate_cell_graph
from aeot.generate.singular import SingularSet, detect_singular, singular_points
from aeot.metrics.memorisation import NearestIndex, leave_one_out_median
from aeot.ot.result import SemiDiscreteResult

__all__ = ["AEOTSampler", "GeneratedCodes", "Interpolation"]

METHODS = ("pl", "pairwise")
MAX_INTERPOLATION_STEPS = 100_000  # codes on one path (each decoded: steps x data size)
_GENERATION_TAG = 0x6165_6F74  # entropy beside the seed of the generation stream


def generation_seed(seed: int) -> int:
    """The seed of the source sequence that :meth:`AEOTSampler.sample` draws for ``seed``.

    Fitting draws source points from small seeds: the cell graph's (its ``seed``, whose
    samples set the cells' centroids), the solver's batches (``seed·1000003 + 2k``), the
    spread calibration's (``seed + 7920``). Drawing generated samples from the user's seed
    itself replayed them: ``sample(n, seed=0)`` of a sampler fitted with seed 0 returned
    the graph's first n points, each a point of its cell's centroid estimate (with about
    one graph sample per cell, the centroid itself), so the codes were in-sample and
    nearer the training codes than fresh ones (on Stacked MNIST, 128,000 codes and 2¹⁷
    graph samples: median distance of decoded plain codes to the training images 6.86
    against 9.27–9.41 for other draws). The seed is hashed (``numpy.random.SeedSequence``
    with a fixed tag) to 63 bits instead: the same seed gives the same samples, and no
    fitting stream is met in practice.
    """
    state = np.random.SeedSequence([check_seed(seed), _GENERATION_TAG]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


@dataclass(eq=False)
class GeneratedCodes:
    """New codes and how they were made.

    Attributes
    ----------
    codes : (M, d) tensor
        Generated latent codes z (dtype and device of the targets).
    points : (M, d) tensor
        The source points x they come from.
    cells : (M, k) long tensor
        Cells combined for each code, −1 padding: for ``"pl"`` the accepted cells by
        distance of their centroid to x (nearest first); for ``"pairwise"`` the two
        best-scoring cells (winner first).
    weights : (M, k) float64 tensor
        Their weights λ (rows sum to 1): z = Σ_j λ_j y_{cells_j}, before the sampler's
        ``spread`` moves z (:class:`AEOTSampler`).
    gates : (M, k) float64 tensor
        Gates g_j of the cells (``"pl"``; for ``"pairwise"`` 1 where mixed).
    winners : (M,) long tensor
        The power cell containing each source point, argmax_i <x, y_i> + h_i.
    method : str
        ``"pl"`` or ``"pairwise"``.
    neighbours : (M, K) long tensor or None
        With the sampler's ``spread``: the training codes whose local covariance shaped
        each code's step (:class:`AEOTSampler`), −1 padding; None otherwise.
    """

    codes: torch.Tensor
    points: torch.Tensor
    cells: torch.Tensor
    weights: torch.Tensor
    gates: torch.Tensor
    winners: torch.Tensor
    method: str
    neighbours: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def n_mixed(self) -> torch.Tensor:
        """Cells with positive weight per code, (M,)."""
        return (self.weights > 0).sum(1)


@dataclass(eq=False)
class Interpolation:
    """A latent path produced by :meth:`AEOTSampler.interpolate`.

    Attributes
    ----------
    codes : (steps, d) tensor
        Latent codes along the path.
    points : (steps, d) tensor
        The source points they come from (on the straight segment or the detour).
    cells : (steps,) long tensor
        Cell containing each point.
    routed : bool
        False for the straight segment; True when it crossed a singular facet and the
        path was routed through the non-singular cell graph.
    path : list of int
        The cells of the detour (empty for the straight segment).
    crossings : int
        Singular facets crossed by the path as checked on a fine discretisation
        (0 unless the cell graph missed a facet).
    """

    codes: torch.Tensor
    points: torch.Tensor
    cells: torch.Tensor
    routed: bool
    path: list[int] = field(default_factory=list)
    crossings: int = 0


class AEOTSampler:
    """Generate latent codes with the piecewise-linear extension of a semi-discrete OT map.

    Parameters
    ----------
    n_cells : int, optional
        k, the most cells mixed per code: min(d + 1, 4) by default, at most 8.
        (d + 1 cells span a simplex in d dimensions; more than a few only blur.)
    n_candidates : int, optional
        Nearest centroids of the winner's mode examined per point (the walk of
        :func:`~aeot.generate.select_cells`): max(4k, k + 8) by default, at most N.
    smoothing : float
        ρ / σ² of :func:`~aeot.generate.extension.simplex_weights`: the width of the
        zone where a cell's weight is faded out. Smaller is closer to exact barycentric
        coordinates but steeper where cells enter or leave (on a uniform square, the
        largest local slope of z(x) was ≈ 90× the median at 0.05, ≈ 15–35× at 0.25).
    gate_mix : float in [0, 1)
        β: the weights are (1 − β) λ + β g / Σg, a small share of the normalised gates
        g, so that points outside the hull of their centroids (where λ sticks to a
        vertex) still give distinct codes. 0 gives the pure PL extension.
    method : {"pl", "pairwise"}
        Default generator: the PL extension, or the reference code's pairwise rule.
    pair_weight : float
        Weight w of the runner-up cell in the pairwise rule (the reference code
        uses a fixed 0.75 on whichever of the pair has the larger index, i.e.
        0.25 or 0.75 on the runner-up).
    chunk : int
        Points processed per batch.
    spread : float
        τ ≥ 0, how far from the training codes the new codes are placed, as a fraction
        of the distance from a fresh code to its nearest training code. The PL
        extension's codes are convex combinations of a few neighbouring training codes
        and sit closer to them than fresh codes of the data distribution do (on 20,000
        MNIST codes, about 0.7× the median distance). With τ > 0 each code z is moved by
        a Gaussian step shaped like its neighbourhood: with y_k, k ∈ K(z), the
        ``spread_neighbours`` nearest training codes of z that are not singular to z's
        accepted cells nor to one another (the accepted cells first),
        z' = z + s Σ_k ξ_k (y_k − ȳ) / sqrt(|K(z)|), ξ_k ~ N(0, 1), ȳ their mean — a
        step of covariance s² × their local covariance (a "manifold Parzen" kernel), and
        still an affine combination of mutually non-singular codes only. With
        ``spread_rank`` r the step keeps only the r principal directions of that local
        covariance (deviations y_k − ȳ = U S Vᵀ: z' = z + s Σ_{j≤r} ξ_j S_j v_j / sqrt(|K(z)|),
        still in the span of the deviations): the codes move along the directions in which
        their neighbourhood varies most, the tangent of the code manifold, and not off it
        into directions that hold only noise. ``fit`` picks
        the scale s (``spread_scale_``) by bisection so that the median distance of
        generated codes to their nearest training code equals τ times the median
        leave-one-out nearest-neighbour distance of the training codes (what a fresh code
        of the same distribution has). 0 (the default) is the plain PL extension.
    spread_neighbours : int
        |K(z)| at most, the neighbours that shape the spread (default 32; at least 2).
    spread_rank : int or None
        r, the principal directions of the neighbourhood's covariance the step keeps
        (default 2; None keeps them all, the full local covariance). On MNIST and
        Fashion-MNIST codes (d = 16) at equal NN ratio, r = 2 adds 20–50 % less classifier
        FD over the reconstructions' than the full covariance (docs/RESULTS.md, "Spread
        along the principal directions").

    Examples
    --------
    >>> sampler = AEOTSampler().fit(result, seed=0)           # doctest: +SKIP
    >>> out = sampler.sample(10_000, seed=1)                  # doctest: +SKIP
    >>> out.codes.shape                                       # doctest: +SKIP
    torch.Size([10000, d])
    """

    def __init__(
        self,
        n_cells: int | None = None,
        n_candidates: int | None = None,
        smoothing: float = 0.25,
        gate_mix: float = 0.05,
        method: str = "pl",
        pair_weight: float = 0.25,
        chunk: int = 4096,
        spread: float = 0.0,
        spread_neighbours: int = 32,
        spread_rank: int | None = 2,
    ):
        if n_cells is not None:
            check_positive_int(n_cells, "n_cells")
            if n_cells > MAX_CELLS:
                raise ValueError(f"n_cells must be at most {MAX_CELLS}, got {n_cells}")
        if n_candidates is not None:
            check_positive_int(n_candidates, "n_candidates")
        if not (math.isfinite(smoothing) and smoothing > 0):
            raise ValueError(f"smoothing must be positive, got {smoothing}")
        if not 0.0 <= gate_mix < 1.0:
            raise ValueError(f"gate_mix must be in [0, 1), got {gate_mix}")
        _check_method(method)
        if not 0.0 <= pair_weight <= 1.0:
            raise ValueError(f"pair_weight must be in [0, 1], got {pair_weight}")
        if (
            isinstance(spread, bool)
            or not isinstance(spread, int | float | np.integer | np.floating)
            or not (math.isfinite(spread) and 0.0 <= spread <= 4.0)
        ):
            raise ValueError(f"spread must be a number in [0, 4], got {spread!r}")
        self.n_cells = n_cells
        self.n_candidates = n_candidates
        self.smoothing = float(smoothing)
        self.gate_mix = float(gate_mix)
        self.method = method
        self.pair_weight = float(pair_weight)
        self.chunk = check_positive_int(chunk, "chunk")
        self.spread = float(spread)
        self.spread_neighbours = check_positive_int(spread_neighbours, "spread_neighbours")
        if self.spread_neighbours < 2:
            raise ValueError(f"spread_neighbours must be at least 2, got {spread_neighbours}")
        self.spread_rank = (
            None if spread_rank is None else check_positive_int(spread_rank, "spread_rank")
        )
        self.spread_scale_ = 0.0
        self.spread_report_: dict[str, float] = {}
        self.result_: SemiDiscreteResult | None = None
        self.graph_: CellGraph | None = None
        self.singular_: SingularSet | None = None
        self.cell_scale_: torch.Tensor | None = None
        self._targets64: torch.Tensor | None = None

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        result: SemiDiscreteResult,
        n_graph_samples: int = 2**16,
        threshold: float | None = None,
        seed: int = 0,
        *,
        qmc: bool = True,
        slab_fraction: float = 0.05,
        graph: CellGraph | None = None,
        rule: str = "auto",
        calibrate: bool = True,
    ) -> AEOTSampler:
        """Estimate the cell graph, centroids and singular facets of ``result``.

        Parameters
        ----------
        result : SemiDiscreteResult
            The solved OT problem (codes y = ``result.targets``).
        n_graph_samples : int
            Source samples for :func:`~aeot.generate.estimate_cell_graph`.
        threshold : float, optional
            Singular angle threshold in radians on normalised codes; when omitted the
            singular pairs are chosen by ``rule``.
        seed : int
            Seed of the graph samples.
        qmc : bool
            Sobol graph samples.
        slab_fraction : float
            See :func:`~aeot.generate.estimate_cell_graph`.
        graph : CellGraph, optional
            A graph already estimated for ``result`` (skips the sampling).
        rule : {"auto", "angle", "valley"}
            How :func:`~aeot.generate.detect_singular` flags the singular pairs: "auto"
            keeps the angle threshold when the angles show a clean gap (2D mixtures) and
            uses the density-valley rule otherwise (latent codes).
        calibrate : bool
            Pick ``spread_scale_`` among the codes (:meth:`calibrate_spread` with the
            distance to the nearest training code). False leaves it 0 for a caller that
            sets it: a data-space calibration (:meth:`aeot.pipeline.AEOT.calibrate_spread`)
            or a saved scale.

        Returns
        -------
        self
        """
        if not isinstance(result, SemiDiscreteResult):
            raise TypeError(f"result must be a SemiDiscreteResult, got {type(result).__name__}")
        if graph is None:
            graph = estimate_cell_graph(
                result, n_graph_samples, seed=seed, qmc=qmc, slab_fraction=slab_fraction
            )
        elif graph.n_cells != result.targets.shape[0]:
            raise ValueError("graph does not belong to this result (different number of cells)")
        singular = detect_singular(graph, result.targets, threshold, rule=rule)
        self.result_, self.graph_, self.singular_ = result, graph, singular
        self.cell_scale_ = _cell_scales(graph, ~singular.singular)
        self._targets64 = result.targets.to(torch.float64)
        self.spread_scale_ = 0.0
        self.spread_report_ = {}
        if calibrate and self.spread > 0 and self.method == "pl":
            self._calibrate_spread(seed)
        return self

    def _calibrate_spread(self, seed: int, n: int = 2048, steps: int = 30) -> None:
        """Pick ``spread_scale_`` (class docstring, ``spread``) by bisection on n codes."""
        y = self._targets64
        if y.shape[0] < 3:
            return
        index = NearestIndex(y)
        fresh = leave_one_out_median(index, n, seed=seed + 7_919)
        self.calibrate_spread(index.distances, fresh, seed=seed, n=n, steps=steps)

    def calibrate_spread(
        self,
        distance: Callable[[torch.Tensor], torch.Tensor],
        fresh_median: float,
        *,
        seed: int = 0,
        n: int = 2048,
        steps: int = 30,
    ) -> AEOTSampler:
        """Set ``spread_scale_`` so that generated codes lie ``spread`` × ``fresh_median``
        from the training set, as measured by ``distance``.

        ``fit`` calls it with the distance to the nearest training code and the median
        leave-one-out distance of the training codes; a model with a decoder can measure
        in data space instead (:meth:`aeot.pipeline.AEOT.calibrate_spread`). The scale s
        is found by bisection on the median of ``distance(z + s Δ(z))`` over n codes z of
        the plain extension with their spread steps Δ (the sampler's own, for seed
        ``seed``); a median already above the target at s = 0 keeps s = 0.

        Parameters
        ----------
        distance : callable
            (n, k) float64 codes -> (n,) distances of each code (or its image) to the
            nearest training item, increasing along the step on average.
        fresh_median : float
            The median distance of a fresh item to the training set, in the same space.
        seed, n, steps : int
            Seed of the source points and steps, codes used, bisection steps.
        """
        result, _, _ = self._fitted()
        y = self._targets64
        if self.method != "pl":
            raise ValueError(f"the spread moves codes of method 'pl' only, not {self.method!r}")
        if not (math.isfinite(fresh_median) and fresh_median > 0):
            raise ValueError(f"fresh_median must be a positive number, got {fresh_median!r}")
        self.spread_scale_ = 0.0  # the plain extension's codes first
        target = self.spread * fresh_median
        x = result.problem.source.sample(n, seed=seed + 7_920, dtype=y.dtype, device=y.device)
        base = self.generate(x, seed=seed + 7_921)
        direction = self._spread_direction(base, seed + 7_921, 0)
        z0 = base.codes.to(torch.float64)

        def median_distance(scale: float) -> float:
            return float(distance(z0 + scale * direction).median())

        plain = median_distance(0.0)
        if self.spread > 0 and plain < target:
            lo, hi = 0.0, 1.0
            while median_distance(hi) < target and hi < 64.0:
                lo, hi = hi, 2.0 * hi
            for _ in range(steps):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if median_distance(mid) < target else (lo, mid)
            self.spread_scale_ = 0.5 * (lo + hi)
        self.spread_report_ = {
            "fresh_median_distance": fresh_median,
            "target_median_distance": target,
            "plain_median_distance": plain,
            "plain_ratio": plain / fresh_median,
            "scale": self.spread_scale_,
            "reached_median_distance": median_distance(self.spread_scale_),
        }
        return self

    def _spread_neighbours(self, out: GeneratedCodes) -> torch.Tensor:
        """K(z) of each code (class docstring, ``spread``): (M, spread_neighbours) long,
        −1 padding. The accepted cells come first (mutually non-singular already); then
        the nearest training codes of z, nearest first, each kept when it is singular to
        none kept before it nor to the winner (:func:`select_cells`' walk)."""
        y = self._targets64
        k = self.spread_neighbours
        search = min(k + 8, y.shape[0])
        dist, near = nearest_centroids(out.codes.to(torch.float64), y, search + 1)
        first = out.cells
        again = (near[:, :, None] == first[:, None, :]).any(2) & (near >= 0)
        near = torch.where(again, torch.full_like(near, -1), near)
        cells = torch.cat([first, near], 1)
        dist = torch.cat([torch.zeros_like(first, dtype=torch.float64), dist], 1)
        kept, _ = select_cells(
            dist, cells, None, None, None, None, k, singular=self.singular_, anchor=out.winners
        )
        return kept

    @property
    def spread_directions_(self) -> int | None:
        """r, the principal directions the spread's step keeps, or None when
        ``spread_rank`` keeps them all (None, or at least min(|K(z)|, d): the full local
        covariance)."""
        rank = self.spread_rank
        d = self._fitted()[0].targets.shape[1]
        return None if rank is None or rank >= min(self.spread_neighbours, d) else rank

    def _spread_direction(self, out: GeneratedCodes, seed: int, offset: int) -> torch.Tensor:
        """Σ_k ξ_k (y_k − ȳ) / sqrt(|K(z)|) for rows ``offset``... of a seeded draw (K(z):
        :meth:`_spread_neighbours`); the standard normals ξ of global row r come from
        fixed blocks of 4096 rows, so a sample drawn in chunks gets the rows the whole
        draw gets. Sets ``out.neighbours``."""
        y = self._targets64
        cells = self._spread_neighbours(out)
        out.neighbours = cells
        m, k = cells.shape
        block = 4096
        first, last = offset // block, (offset + m - 1) // block
        xi = torch.cat(
            [
                torch.randn(
                    block,
                    self.spread_neighbours,
                    generator=torch.Generator().manual_seed((seed * 1_000_003 + b) % 2**63),
                    dtype=torch.float64,
                )
                for b in range(first, last + 1)
            ]
        )[offset - first * block : offset - first * block + m, :k].to(y.device)
        on = cells >= 0
        count = on.sum(1, keepdim=True)
        near = torch.where(on[..., None], y[cells.clamp_min(0)], torch.zeros(()).to(y))
        mean = near.sum(1) / count.clamp_min(1)
        deviation = torch.where(on[..., None], near - mean[:, None], torch.zeros(()).to(y))
        rank = self.spread_directions_
        if rank is not None:
            # the r principal directions of the local covariance: deviation = U S Vᵀ, a
            # step Σ_{j≤r} ξ_j S_j v_j (padding rows are zero and change no direction)
            _, sing, vh = torch.linalg.svd(deviation, full_matrices=False)
            xi = torch.where(count > 1, xi[:, :rank], torch.zeros(()).to(xi))
            step = ((xi * sing[:, :rank])[..., None] * vh[:, :rank]).sum(1)
            return step / count.clamp_min(1).sqrt()
        xi = torch.where(on & (count > 1), xi, torch.zeros_like(xi))
        return (xi[..., None] * deviation).sum(1) / count.clamp_min(1).sqrt()

    def _fitted(self) -> tuple[SemiDiscreteResult, CellGraph, SingularSet]:
        if self.result_ is None or self.graph_ is None or self.singular_ is None:
            raise NotFittedError("this AEOTSampler is not fitted yet: call fit(result) first")
        return self.result_, self.graph_, self.singular_

    @property
    def threshold_(self) -> float:
        """The singular threshold in use: radians on normalised codes for the angle rules,
        the valley ratio for the valley rule (``singular_.rule``)."""
        return self._fitted()[2].threshold

    @property
    def singular_pairs_(self) -> torch.Tensor:
        """Adjacent cell pairs separated by a singular facet, (S, 2)."""
        _, graph, singular = self._fitted()
        return graph.pairs[singular.singular]

    def _k(self, dim: int, n_targets: int) -> tuple[int, int]:
        k = self.n_cells if self.n_cells is not None else min(dim + 1, 4)
        k = max(1, min(k, n_targets))
        search = self.n_candidates if self.n_candidates is not None else max(4 * k, k + 8)
        search = max(k, min(search, n_targets))
        return k, search

    # --------------------------------------------------------------- generation
    def sample(
        self, n: int, seed: int = 0, *, qmc: bool = True, method: str | None = None
    ) -> GeneratedCodes:
        """Draw ``n`` source samples x ~ μ and map them to new codes.

        Parameters
        ----------
        n : int
            Number of codes (any number; not limited to the N training codes).
        seed : int
            Seed of the source sampler: the same seed gives the same codes. The source
            sequence is drawn from :func:`generation_seed` (seed), apart from the points
            the fit drew.
        qmc : bool
            Scrambled Sobol source samples (even coverage) instead of i.i.d.
        method : {"pl", "pairwise"}, optional
            Overrides the sampler's default.

        Returns
        -------
        GeneratedCodes
        """
        result, _, _ = self._fitted()
        n = check_positive_int(n, "n")
        seed = check_seed(seed)
        y = result.targets
        x = result.problem.source.sample(
            n, seed=generation_seed(seed), qmc=qmc, dtype=y.dtype, device=y.device
        )
        return self.generate(x, method=method, seed=seed)

    def sample_chunks(
        self,
        n: int,
        seed: int = 0,
        *,
        chunk: int = 2**16,
        qmc: bool = True,
        method: str | None = None,
    ) -> Iterator[GeneratedCodes]:
        """:meth:`sample` in consecutive blocks of at most ``chunk`` codes.

        The blocks together are the codes ``sample(n, seed)`` gives (the source draws
        one sequence in pieces, :meth:`~aeot.ot.Source.sample_chunks`), in memory
        O(``chunk``) instead of O(``n``).
        """
        result, _, _ = self._fitted()
        n = check_positive_int(n, "n")
        seed = check_seed(seed)
        chunk = check_positive_int(chunk, "chunk")
        y = result.targets
        offset = 0
        for x in result.problem.source.sample_chunks(
            n, chunk, seed=generation_seed(seed), qmc=qmc, dtype=y.dtype, device=y.device
        ):
            yield self.generate(x, method=method, seed=seed, offset=offset)
            offset += x.shape[0]

    def generate(
        self,
        x,
        *,
        method: str | None = None,
        gate_mix: float | None = None,
        seed: int = 0,
        offset: int = 0,
        spread: bool = True,
    ) -> GeneratedCodes:
        """Map given source points x (M, d) (or one point (d,)) through the extended OT map.

        ``method`` and ``gate_mix`` override the sampler's settings. With the sampler's
        ``spread`` > 0 (and ``spread`` True here) the codes are then moved as the class
        docstring says, by normals drawn from ``seed`` for rows ``offset``,
        ``offset + 1``, ... of that draw; ``spread=False`` gives the extended map itself.
        """
        result, _, _ = self._fitted()
        method = _check_method(method or self.method)
        mix = self.gate_mix if gate_mix is None else float(gate_mix)
        if not 0.0 <= mix < 1.0:
            raise ValueError(f"gate_mix must be in [0, 1), got {gate_mix}")
        y = result.targets
        x = as_float_tensor(x, "x", dtype=y.dtype, device=y.device)
        if x.ndim == 1:
            x = x.unsqueeze(0)
        if x.ndim != 2 or x.shape[1] != y.shape[1]:
            raise ValueError(f"x must have shape (M, {y.shape[1]}), got {tuple(x.shape)}")
        _, search = self._k(y.shape[1], y.shape[0])
        # bound the (chunk, K, d + 1) candidate normals of select_cells to ~2^24 numbers
        chunk = min(self.chunk, max(64, 2**24 // ((search + 1) * (y.shape[1] + 1))))
        parts = [
            self._generate_chunk(x[s : s + chunk], method, mix) for s in range(0, x.shape[0], chunk)
        ]
        out = GeneratedCodes(
            codes=torch.cat([p[0] for p in parts]),
            points=x,
            cells=torch.cat([p[1] for p in parts]),
            weights=torch.cat([p[2] for p in parts]),
            gates=torch.cat([p[3] for p in parts]),
            winners=torch.cat([p[4] for p in parts]),
            method=method,
        )
        if spread and self.spread_scale_ > 0 and method == "pl":
            seed, offset = check_seed(seed), int(offset)
            move = self.spread_scale_ * self._spread_direction(out, seed, offset)
            out.codes = (out.codes.to(torch.float64) + move).to(y.dtype)
        return out

    def _generate_chunk(self, x: torch.Tensor, method: str, gate_mix: float):
        result, graph, singular = self._fitted()
        y = result.targets
        n_targets, dim = y.shape
        normals = singular.normals
        if method == "pairwise":
            values, cells = result.topk(x, 2)
            codes, weights, _ = pairwise_codes(
                values, cells, y, normals, singular.threshold, self.pair_weight, singular=singular
            )
            winner = cells[:, 0].clone()
            cells = torch.where(weights > 0, cells, torch.full_like(cells, -1))
            gates = (weights > 0).to(torch.float64)
            return codes, cells, weights, gates, winner
        k, search = self._k(dim, n_targets)
        winner = result.assign(x)
        mode = singular.components[winner]
        anchor = None
        if not singular.by_angle:
            # valley rule: mode-mates of the winner are tested pairwise (anchor), and a
            # component too small to supply the candidates does not restrict them (the
            # sampled graph misses most facets in high dimension; module docstring of
            # aeot.generate.extension)
            size = torch.bincount(singular.components, minlength=singular.n_components)
            mode = torch.where(size[mode] > search, mode, torch.full_like(mode, -1))
            anchor = winner
        dist, cells = nearest_centroids(
            x, graph.centroids, search + 1, x_groups=mode, groups=singular.components
        )
        kept, gates = select_cells(
            dist,
            cells,
            mode,
            singular.components,
            normals,
            singular.threshold,
            k,
            singular=singular,
            anchor=anchor,
        )
        # no candidate accepted (the valley rule, when every nearby centroid is across a
        # valley from the winner; with components c_{i₀} is a candidate): use y_{i₀}
        lonely = kept[:, 0] < 0
        if bool(lonely.any()):
            kept[lonely, 0] = winner[lonely]
            gates[lonely, 0] = 1.0
        on = kept >= 0
        safe = kept.clamp_min(0)
        centroids = graph.centroids[safe]  # (M, k, d)
        scale = (gates * self.cell_scale_[safe]).sum(1) / gates.sum(1)
        weights = simplex_weights(x, centroids, gates, scale, self.smoothing)
        if gate_mix > 0:
            share = gates / gates.sum(1, keepdim=True)
            weights = (1.0 - gate_mix) * weights + gate_mix * share
        weights = torch.where(on, weights, torch.zeros_like(weights))
        codes = torch.einsum("mk,mkd->md", weights, self._targets64[safe])
        return codes.to(y.dtype), kept, weights, gates, winner

    # ------------------------------------------------------------ diagnostics
    def singular_points(self, x, tol: float | None = None) -> torch.Tensor:
        """Whether source points lie within ``tol`` of a singular facet (default: graph ε).

        See :func:`~aeot.generate.singular_points`.
        """
        result, graph, singular = self._fitted()
        return singular_points(result, x, tol=tol, graph=graph, singular=singular)

    def nearest_cell(self, code) -> int:
        """Index of the training code closest to ``code`` (d,) (e.g. an encoded input)."""
        result, _, _ = self._fitted()
        y = result.targets
        z = as_float_tensor(code, "code", ndim=1, dtype=y.dtype, device=y.device)
        if z.shape[0] != y.shape[1]:
            raise ValueError(f"code must have {y.shape[1]} entries, got {z.shape[0]}")
        return int((y - z).pow(2).sum(1).argmin())

    def crossings(self, points) -> int:
        """Singular facets crossed between consecutive points of a polyline (M, d).

        A crossing is a change of containing cell from i to j where (i, j) is a
        singular pair or i and j lie in different non-singular components.
        """
        result, _, singular = self._fitted()
        y = result.targets
        p = as_float_tensor(points, "points", ndim=2, dtype=y.dtype, device=y.device)
        cells = result.assign(p)
        a, b = cells[:-1], cells[1:]
        change = a != b
        if not bool(change.any()):
            return 0
        a, b = a[change], b[change]
        bad = singular.is_singular(a, b) | (singular.components[a] != singular.components[b])
        return int(bad.sum())

    # ------------------------------------------------------------ interpolation
    def interpolate(self, a, b, steps: int = 16, *, resolution: int = 1024) -> Interpolation:
        """Latent interpolation between two cells (or source points) off the singular set.

        The straight source segment from p_a to p_b (the cells' centroids, or the given
        points) is mapped through the PL extension. If that segment crosses a singular
        facet, the path is routed through the graph of non-singular facets: the
        shortest path i_0 → … → i_L by centroid distance, followed as the polyline
        p_a → c_{i_0} → m_{i_0 i_1} → c_{i_1} → … → c_{i_L} → p_b, where m_ij is a point
        on facet ij. Power cells are convex and contain their centroid, so each piece
        stays in one cell and the path crosses only the non-singular facets
        (i_l, i_{l+1}). ``steps`` points equally spaced by arc length are mapped by
        the pure PL extension (``gate_mix`` 0), so a cell endpoint maps to ≈ y_i.

        Parameters
        ----------
        a, b : int or (d,) array
            A cell index (start at its centroid c_i, code ≈ y_i) or a source point.
        steps : int
            Number of codes on the path (≥ 2), endpoints included.
        resolution : int
            Points per segment used to check the straight segment for crossings.

        Returns
        -------
        Interpolation

        Raises
        ------
        ValueError
            If the two cells lie in different non-singular components (different
            modes): every path between them crosses the singular set.
        """
        result, graph, singular = self._fitted()
        steps = check_positive_int(steps, "steps", minimum=2)
        if steps > MAX_INTERPOLATION_STEPS:
            raise ValueError(
                f"steps = {steps} exceeds the limit of {MAX_INTERPOLATION_STEPS} points on one "
                "interpolation path"
            )
        resolution = check_positive_int(resolution, "resolution", minimum=2)
        y = result.targets
        pa, ca = self._endpoint(a, "a")
        pb, cb = self._endpoint(b, "b")
        comp = singular.components
        if int(comp[ca]) != int(comp[cb]):
            raise ValueError(
                f"cells {ca} and {cb} lie in different non-singular components "
                f"({int(comp[ca])} and {int(comp[cb])}): every path between them crosses "
                "the singular set, so no interpolation avoids mode mixture"
            )
        t = torch.linspace(0, 1, resolution, dtype=torch.float64, device=pa.device).unsqueeze(1)
        fine = pa + t * (pb - pa)
        path: list[int] = []
        routed = self.crossings(fine.to(y.dtype)) > 0
        if routed:
            path = _shortest_path(graph, singular, ca, cb)
            nodes = [pa]
            for l, cell in enumerate(path):
                if l > 0:
                    edge = int(graph.edge_ids([path[l - 1]], [cell])[0])
                    nodes.append(graph.facet_points[edge])
                nodes.append(graph.centroids[cell])
            nodes.append(pb)
            poly = torch.stack(nodes)
            points = _resample(poly, steps)
            check = _resample(poly, max(resolution, 64 * len(nodes)))
        else:
            t = torch.linspace(0, 1, steps, dtype=torch.float64, device=pa.device).unsqueeze(1)
            points = pa + t * (pb - pa)
            check = fine
        crossings = self.crossings(check.to(y.dtype))
        out = self.generate(points.to(y.dtype), method="pl", gate_mix=0.0, spread=False)
        return Interpolation(
            codes=out.codes,
            points=out.points,
            cells=out.winners,
            routed=routed,
            path=path,
            crossings=crossings,
        )

    def _endpoint(self, value, name: str) -> tuple[torch.Tensor, int]:
        result, graph, _ = self._fitted()
        n_targets, dim = result.targets.shape
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            index = int(value)
            if not 0 <= index < n_targets:
                raise ValueError(f"{name}: cell index {index} out of range [0, {n_targets})")
            return graph.centroids[index], index
        p = as_float_tensor(value, name, ndim=1, dtype=torch.float64, device=graph.centroids.device)
        if p.shape[0] != dim:
            raise ValueError(f"{name} must be a cell index or a source point of dimension {dim}")
        return p, int(result.assign(p.to(result.targets.dtype))[0])


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def _cell_scales(graph: CellGraph, keep: torch.Tensor) -> torch.Tensor:
    """σ_i² = mean |c_i − c_j|² over the non-singular neighbours j of i (global median if none)."""
    n = graph.n_cells
    pairs = graph.pairs[keep]
    c = graph.centroids
    sq = (c[pairs[:, 0]] - c[pairs[:, 1]]).pow(2).sum(1)
    total = torch.zeros(n, dtype=torch.float64, device=c.device)
    count = torch.zeros(n, dtype=torch.float64, device=c.device)
    for col in (0, 1):
        total.index_add_(0, pairs[:, col], sq)
        count.index_add_(0, pairs[:, col], torch.ones_like(sq))
    scale = total / count.clamp_min(1)
    have = (count > 0) & (scale > 0)
    if bool(have.any()):
        fallback = float(scale[have].median())
    else:  # no usable edge: the squared spread of the centroids per cell
        spread = float((c - c.mean(0)).pow(2).sum(1).mean()) / max(n, 1)
        fallback = spread if spread > 0 else 1.0
    return torch.where(have, scale, torch.full_like(scale, fallback))


def _shortest_path(graph: CellGraph, singular: SingularSet, start: int, stop: int) -> list[int]:
    """Cells of the shortest path start → stop over non-singular edges (centroid distances)."""
    if start == stop:
        return [start]
    adj = graph.adjacency((~singular.singular).cpu().numpy())
    _, pred = dijkstra(adj, directed=False, indices=start, return_predecessors=True)
    if pred[stop] < 0:
        raise ValueError(f"no non-singular path between cells {start} and {stop}")
    path = [stop]
    while path[-1] != start:
        path.append(int(pred[path[-1]]))
    return path[::-1]


def _resample(poly: torch.Tensor, m: int) -> torch.Tensor:
    """m points equally spaced by arc length along a polyline (P, d)."""
    seg = (poly[1:] - poly[:-1]).norm(dim=1)
    cum = torch.cat([seg.new_zeros(1), seg.cumsum(0)])
    total = float(cum[-1])
    if total <= 0:
        return poly[:1].expand(m, -1).clone()
    s = torch.linspace(0, total, m, dtype=poly.dtype, device=poly.device)
    idx = torch.searchsorted(cum, s, right=True).clamp(1, poly.shape[0] - 1) - 1
    frac = ((s - cum[idx]) / seg[idx].clamp_min(1e-300)).clamp(0, 1).unsqueeze(1)
    return poly[idx] + frac * (poly[idx + 1] - poly[idx])
