"""Pictures of cell decompositions (matplotlib, imported lazily, Agg-safe)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aeot.relu.cells import CellDecomposition, decompose_slice
from aeot.relu.network import chain
from aeot.relu.slices import PlaneSlice

__all__ = [
    "cell_colors",
    "pca_projection",
    "plot_autoencoder_cells",
    "plot_cells",
    "plot_decomposition",
]


def _figure(figsize: tuple[float, float]):
    """A pyplot-free matplotlib Figure: saving it works on any backend (Agg included)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def cell_colors(decomp: CellDecomposition, seed: int = 0) -> np.ndarray:
    """One RGBA colour per cell, a deterministic function of its activation pattern.

    Returns
    -------
    np.ndarray, shape (P, 4)
    """
    from matplotlib import colormaps

    bits = decomp.pattern_matrix
    if bits.shape[1] == 0:
        keys = np.zeros(decomp.n_cells, dtype=np.uint64)
    else:
        packed = np.packbits(bits, axis=1).astype(np.uint64)
        # FNV-style hash of the packed pattern, then a hue in [0, 1)
        keys = np.full(packed.shape[0], 1469598103934665603, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for col in range(packed.shape[1]):
                keys = (keys ^ packed[:, col]) * np.uint64(1099511628211)
            keys ^= np.uint64(seed)
            keys = keys * np.uint64(0x9E3779B97F4A7C15)
    hue = (keys >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return colormaps["turbo"](0.05 + 0.9 * hue)


def _draw(
    ax, polys: list[np.ndarray], colors: np.ndarray, *, edges: bool, alpha: float, fit: bool = False
) -> None:
    from matplotlib.collections import PolyCollection

    lw = 0.3 if edges and len(polys) < 4000 else (0.1 if edges else 0.0)
    coll = PolyCollection(
        polys,
        facecolors=colors,
        edgecolors="k" if edges else "none",
        linewidths=lw,
        alpha=alpha,
    )
    ax.add_collection(coll)
    allv = np.concatenate(polys) if polys else np.zeros((1, 2))
    lo, hi = allv.min(axis=0), allv.max(axis=0)
    pad = 0.02 * np.maximum(hi - lo, 1e-12)
    if fit:  # square panel, equal scales: let the data limits grow to fill it
        ax.update_datalim(np.stack([lo - pad, hi + pad]))
        ax.autoscale_view()
        ax.set_aspect("equal", adjustable="datalim")
    else:
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        ax.set_aspect("equal", adjustable="box")


def pca_projection(points: np.ndarray, k: int = 2) -> np.ndarray:
    """Projection matrix (d, k) onto the top-``k`` principal directions of ``points``
    (columns padded with zeros when d < k)."""
    pts = np.asarray(points, dtype=np.float64)
    centred = pts - pts.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    proj = np.zeros((pts.shape[1], k))
    m = min(k, vt.shape[0])
    proj[:, :m] = vt[:m].T
    return proj


def _image_polys(decomp: CellDecomposition, upto, projection) -> list[np.ndarray]:
    if isinstance(projection, str):
        if projection != "pca":
            raise ValueError(f"projection must be an array or 'pca', got {projection!r}")
        projection = pca_projection(decomp.image_vertices(upto))
    polys = decomp.image_polygons(upto=upto, projection=projection)
    dim = polys[0].shape[1] if polys else 2
    if dim == 1:
        polys = [np.concatenate([p, np.zeros_like(p)], axis=1) for p in polys]
    elif dim > 2:
        raise ValueError(
            f"the image space has dimension {dim}; pass projection=(array of shape ({dim}, 2))"
        )
    return polys


def plot_cells(
    decomp: CellDecomposition,
    path: str | os.PathLike | None = None,
    *,
    space: str = "input",
    upto: int | None = None,
    projection=None,
    ax=None,
    title: str | None = None,
    edges: bool = True,
    alpha: float | None = None,
    dpi: int = 150,
):
    """Draw the cells, coloured by activation pattern.

    Parameters
    ----------
    decomp : CellDecomposition
    path : path, optional
        Where to save a PNG (a new figure is made when ``ax`` is None).
    space : {"input", "image"}
        ``"input"``: the cells in slice coordinates (s, t); ``"image"``: the image
        of each cell under the network (or its first ``upto`` stages, e.g. the
        latent space of an autoencoder), drawn translucent since images may overlap
        where the map folds.
    upto : int, optional
        Number of stages for ``space="image"``.
    projection : array_like of shape (k, 2) or "pca", optional
        Projection of k-dimensional images to the plane ("pca": onto the top two
        principal directions of the image vertices).
    ax : matplotlib Axes, optional
    title : str, optional
    edges : bool
        Draw cell boundaries.
    alpha : float, optional
        Face opacity (default 1 for input cells, 0.5 for images).

    Returns
    -------
    matplotlib Axes
    """
    colors = cell_colors(decomp)
    if space == "input":
        polys = decomp.polygons
        xlabel, ylabel = "s", "t"
        a = 1.0 if alpha is None else alpha
    elif space == "image":
        polys = _image_polys(decomp, upto, projection)
        if isinstance(projection, str):
            xlabel, ylabel = "principal direction 1", "principal direction 2"
        elif projection is not None:
            xlabel, ylabel = "projection 1", "projection 2"
        else:
            xlabel, ylabel = "y[0]", "y[1]"
        a = 0.5 if alpha is None else alpha
    else:
        raise ValueError(f"space must be 'input' or 'image', got {space!r}")
    fig = None
    if ax is None:
        fig = _figure((6, 6))
        ax = fig.subplots()
    _draw(ax, polys, colors, edges=edges, alpha=a, fit=space == "image")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is None:
        title = f"{decomp.n_cells} cells" if space == "input" else "cell images"
    ax.set_title(title)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        (fig if fig is not None else ax.figure).savefig(path, dpi=dpi, bbox_inches="tight")
    return ax


def plot_decomposition(
    decomp: CellDecomposition,
    path: str | os.PathLike,
    *,
    upto: int | None = None,
    projection=None,
    dpi: int = 150,
) -> Path:
    """Two panels: cells in the input slice and their images under the network.

    Images of dimension > 2 are projected (``projection``: a (k, 2) array or
    ``"pca"``, the default for such outputs).
    """
    out_dim = decomp.network.forward(np.zeros(decomp.network.input_dim), upto=upto).shape[1]
    if projection is None and out_dim > 2:
        projection = "pca"
    fig = _figure((12, 6))
    axes = fig.subplots(1, 2)
    plot_cells(decomp, space="input", ax=axes[0], title=f"input slice: {decomp.n_cells} cells")
    plot_cells(
        decomp,
        space="image",
        upto=upto,
        projection=projection,
        ax=axes[1],
        title=f"images ({decomp.n_affine_pieces} affine pieces)"
        + (" (PCA projection)" if isinstance(projection, str) else ""),
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def plot_autoencoder_cells(
    encoder,
    decoder,
    path: str | os.PathLike,
    *,
    plane: PlaneSlice | None = None,
    box: Sequence[float] = (-1.0, 1.0, -1.0, 1.0),
    latent_projection=None,
    output_projection=None,
    dpi: int = 150,
) -> tuple[CellDecomposition, CellDecomposition]:
    """The talk's pictures (d)–(f) for an autoencoder, in one PNG.

    Panels: (d) the encoder's cells on the input slice; (e) their images in latent
    space; (f) the cells of the composition ``decoder ∘ encoder`` on the same
    slice (a refinement of (d)); (g) the images of those cells under the
    reconstruction map.  Latent / output images of dimension > 2 are projected
    (default ``"pca"``, see :func:`plot_cells`).

    Returns
    -------
    (encoder decomposition, decoder∘encoder decomposition)
    """
    enc = decompose_slice(encoder, plane, box)
    full = decompose_slice(chain(encoder, decoder), plane, box)
    latent_dim = enc.network.output_dim
    out_dim = full.network.output_dim
    if output_projection is None and out_dim > 2:
        output_projection = "pca"
    fig = _figure((24, 6))
    axes = fig.subplots(1, 4)
    plot_cells(enc, space="input", ax=axes[0], title=f"(d) encoder cells: {enc.n_cells}")
    if latent_projection is None and latent_dim > 2:
        latent_projection = "pca"
    plot_cells(
        enc,
        space="image",
        projection=latent_projection,
        ax=axes[1],
        title="(e) latent images of the cells",
    )
    plot_cells(full, space="input", ax=axes[2], title=f"(f) decoder∘encoder cells: {full.n_cells}")
    plot_cells(
        full,
        space="image",
        projection=output_projection,
        ax=axes[3],
        title="(g) images under decoder∘encoder",
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return enc, full
