"""Geometry of ReLU networks: activation patterns, exact cells, complexity bounds.

Following "A Geometric Understanding of Deep Learning" (Lei, Gu et al.): a ReLU
network is a continuous piecewise-affine map; its input space is decomposed into
convex cells of constant activated path ρ(x), and on each cell ``f(x) = A x + b``.

* :func:`activation_pattern`, :func:`same_activation_path`, :func:`count_patterns`,
  :func:`local_affine_map` — the activated path of data points (torch, any device);
* :func:`decompose_slice` — exact cells of a 2-D slice of input space
  (:class:`PlaneSlice`), returned as a :class:`CellDecomposition`;
* :func:`decompose_path` / :func:`count_path_pieces` — exact pieces along a
  segment or polyline;
* :func:`arrangement_regions`, :func:`lei_gu_bound`, :func:`montufar_bound`,
  :func:`serra_bound`, :func:`can_encode` — rectified-linear complexity bounds;
* :func:`plot_cells`, :func:`plot_decomposition`, :func:`plot_autoencoder_cells`.

The submodules load on first use of a name (PEP 562), so that ``aeot.cli.cells``
(the ``aeot cells`` command line) imports without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aeot.relu.bounds import (
        arrangement_regions,
        can_encode,
        complexity_bounds,
        lei_gu_bound,
        montufar_bound,
        serra_bound,
    )
    from aeot.relu.cells import Cell, CellDecomposition, decompose_slice, grid_pattern_count
    from aeot.relu.network import (
        AffineStage,
        ReluNetwork,
        as_relu_network,
        chain,
        flatten_modules,
        random_relu_net,
    )
    from aeot.relu.paths import (
        PathDecomposition,
        count_path_pieces,
        decompose_path,
        sampled_path_count,
    )
    from aeot.relu.patterns import (
        activation_pattern,
        count_patterns,
        local_affine_map,
        pattern_labels,
        pattern_matrix,
        same_activation_path,
    )
    from aeot.relu.plotting import (
        cell_colors,
        pca_projection,
        plot_autoencoder_cells,
        plot_cells,
        plot_decomposition,
    )
    from aeot.relu.slices import PlaneSlice

_LAZY = {
    "AffineStage": "aeot.relu.network",
    "Cell": "aeot.relu.cells",
    "CellDecomposition": "aeot.relu.cells",
    "PathDecomposition": "aeot.relu.paths",
    "PlaneSlice": "aeot.relu.slices",
    "ReluNetwork": "aeot.relu.network",
    "activation_pattern": "aeot.relu.patterns",
    "arrangement_regions": "aeot.relu.bounds",
    "as_relu_network": "aeot.relu.network",
    "can_encode": "aeot.relu.bounds",
    "cell_colors": "aeot.relu.plotting",
    "chain": "aeot.relu.network",
    "complexity_bounds": "aeot.relu.bounds",
    "count_path_pieces": "aeot.relu.paths",
    "count_patterns": "aeot.relu.patterns",
    "decompose_path": "aeot.relu.paths",
    "decompose_slice": "aeot.relu.cells",
    "flatten_modules": "aeot.relu.network",
    "grid_pattern_count": "aeot.relu.cells",
    "lei_gu_bound": "aeot.relu.bounds",
    "local_affine_map": "aeot.relu.patterns",
    "montufar_bound": "aeot.relu.bounds",
    "pattern_labels": "aeot.relu.patterns",
    "pattern_matrix": "aeot.relu.patterns",
    "pca_projection": "aeot.relu.plotting",
    "plot_autoencoder_cells": "aeot.relu.plotting",
    "plot_cells": "aeot.relu.plotting",
    "plot_decomposition": "aeot.relu.plotting",
    "random_relu_net": "aeot.relu.network",
    "same_activation_path": "aeot.relu.patterns",
    "sampled_path_count": "aeot.relu.paths",
    "serra_bound": "aeot.relu.bounds",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AffineStage",
    "Cell",
    "CellDecomposition",
    "PathDecomposition",
    "PlaneSlice",
    "ReluNetwork",
    "activation_pattern",
    "arrangement_regions",
    "as_relu_network",
    "can_encode",
    "cell_colors",
    "chain",
    "complexity_bounds",
    "count_path_pieces",
    "count_patterns",
    "decompose_path",
    "decompose_slice",
    "flatten_modules",
    "grid_pattern_count",
    "lei_gu_bound",
    "local_affine_map",
    "montufar_bound",
    "pattern_labels",
    "pattern_matrix",
    "pca_projection",
    "plot_autoencoder_cells",
    "plot_cells",
    "plot_decomposition",
    "random_relu_net",
    "same_activation_path",
    "sampled_path_count",
    "serra_bound",
]
