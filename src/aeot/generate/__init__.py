"""AE-OT generation: singular set detection and the piecewise-linear extension of the OT map.

* :func:`estimate_cell_graph` / :class:`CellGraph`: adjacency of the power cells, facet
  measures, cell centroids and masses, from source samples.
* :func:`detect_singular` / :class:`SingularSet`: the singular set of the Brenier
  potential — facets whose dihedral angle (on normalised codes) exceeds a threshold
  (2D mixtures), or whose two codes have a density valley between them
  (:func:`valley_ratios`; latent codes); :func:`singular_points` marks source points on it.
* :class:`AEOTSampler`: ``fit`` / ``sample`` / ``interpolate`` — new codes by the
  piecewise-linear extension that never mixes codes across a singular facet
  (An et al., ICLR 2020), or the reference code's pairwise rule.
"""

from aeot.generate.extension import (
    nearest_centroids,
    pairwise_codes,
    select_cells,
    simplex_weights,
)
from aeot.generate.graph import CellGraph, estimate_cell_graph
from aeot.generate.sampler import AEOTSampler, GeneratedCodes, Interpolation
from aeot.generate.singular import (
    RULES,
    SingularSet,
    ValleyIndex,
    default_threshold,
    detect_singular,
    dihedral_angles,
    normalise_targets,
    singular_points,
    unit_normals,
    valley_ratios,
)

__all__ = [
    "RULES",
    "AEOTSampler",
    "CellGraph",
    "GeneratedCodes",
    "Interpolation",
    "SingularSet",
    "ValleyIndex",
    "default_threshold",
    "detect_singular",
    "dihedral_angles",
    "estimate_cell_graph",
    "nearest_centroids",
    "normalise_targets",
    "pairwise_codes",
    "select_cells",
    "simplex_weights",
    "singular_points",
    "unit_normals",
    "valley_ratios",
]
