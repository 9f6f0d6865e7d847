"""Pictures for reports: image grids, interpolation strips, 2D singular sets.

matplotlib is imported inside the functions (Agg backend, no pyplot), so importing
:mod:`aeot` never pulls it in.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _save(fig, path: str | os.PathLike) -> Path:
    from aeot._io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", bbox_inches="tight")
    return path


def tile_images(images: torch.Tensor, ncol: int, pad: int = 1) -> np.ndarray:
    """Tile (n, c, h, w) images in [0, 1] into one (H, W, 3) or (H, W) array."""
    x = torch.as_tensor(images).detach().float().clamp(0, 1).cpu().numpy()
    if x.ndim != 4:
        raise ValueError(f"images must have shape (n, c, h, w), got {x.shape}")
    n, c, h, w = x.shape
    nrow = -(-n // ncol)
    canvas = np.ones((c, nrow * (h + pad) + pad, ncol * (w + pad) + pad), dtype=np.float32)
    for k in range(n):
        r, q = divmod(k, ncol)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        canvas[:, top : top + h, left : left + w] = x[k]
    return canvas[0] if c == 1 else np.moveaxis(canvas[:3], 0, -1)


def grid_columns(n: int) -> int:
    """Columns of a grid of ``n`` images: ``n`` itself up to 10, else the smallest
    divisor of ``n`` from ceil(sqrt(n)) to 2 ceil(sqrt(n)) (64 -> 8x8, 50 -> 10x5: no
    ragged last row), or ceil(sqrt(n)) when there is none (37 -> 7 columns)."""
    if n <= 10:
        return max(n, 1)
    root = math.isqrt(n - 1) + 1
    return next((c for c in range(root, 2 * root + 1) if n % c == 0), root)


def save_image_grid(images, path, *, ncol: int | None = None, title: str | None = None) -> Path:
    """Write a grid of images (n, c, h, w) in [0, 1] to a PNG (``ncol`` columns, by
    default :func:`grid_columns`)."""
    tiled = tile_images(images, ncol or grid_columns(len(images)))
    # small images (8×8 digits) are blown up so that a grid is ~5 inches wide
    inches = 5.0 * tiled.shape[1] / max(tiled.shape)
    fig = _figure(max(inches, 1.0), max(5.0 * tiled.shape[0] / max(tiled.shape), 0.6))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(
        tiled, cmap="gray" if tiled.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest"
    )
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_singular_set_2d(
    result,
    singular,
    path,
    *,
    points: np.ndarray | None = None,
    generated: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """The power diagram of a 2D OT solution with its singular facets in red.

    Parameters
    ----------
    result : SemiDiscreteResult
        A 2D solution with a box source.
    singular : aeot.generate.SingularSet
        Decides for every edge (i, j) of the exact power diagram whether its facet is
        singular (dihedral angle above the threshold).
    points : (N, 2) array, optional
        Drawn in the right panel (e.g. the target codes).
    generated : (M, 2) array, optional
        Generated codes, drawn in the right panel.
    """
    from matplotlib.collections import LineCollection

    from aeot.ot.power2d import power_diagram_2d

    source = result.problem.source
    y = result.targets.double().cpu().numpy()
    diagram = power_diagram_2d(y, result.h.double().cpu().numpy(), source.low, source.high)
    edges = torch.as_tensor(diagram.edges, dtype=torch.long)
    is_singular = singular.is_singular(edges[:, 0], edges[:, 1]).cpu().numpy().astype(bool)

    fig = _figure(11, 5.2)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    left.add_collection(
        LineCollection(diagram.edge_segments[~is_singular], colors="0.7", linewidths=0.4)
    )
    left.add_collection(
        LineCollection(
            diagram.edge_segments[is_singular],
            colors="crimson",
            linewidths=1.4,
            label="singular set Σ",
        )
    )
    left.add_collection(LineCollection(diagram.boundary_segments, colors="k", linewidths=0.8))
    left.set_xlim(source.low[0], source.high[0])
    left.set_ylim(source.low[1], source.high[1])
    left.set_aspect("equal")
    left.set_title("source: power diagram of the Brenier potential")
    left.legend(loc="upper right", fontsize=8)

    if points is not None:
        right.scatter(points[:, 0], points[:, 1], s=2, c="0.3", label="targets (codes)")
    if generated is not None:
        right.scatter(
            generated[:, 0], generated[:, 1], s=2, c="tab:blue", alpha=0.6, label="generated"
        )
    pairs = diagram.edges[is_singular]
    right.add_collection(
        LineCollection(
            y[pairs], colors="crimson", linewidths=0.3, alpha=0.5, label="pairs split by Σ"
        )
    )
    right.set_aspect("equal")
    right.set_title("target: codes, generated codes, singular pairs")
    right.legend(loc="upper right", fontsize=8, markerscale=4)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_points(
    real: np.ndarray, generated: dict[str, np.ndarray], path, *, title: str = ""
) -> Path:
    """Side-by-side scatter plots of real 2D points and each model's samples."""
    panels = 1 + len(generated)
    fig = _figure(3.2 * panels, 3.4)
    lim = np.abs(real).max() * 1.15
    for k, (name, pts) in enumerate([("real", real), *generated.items()]):
        ax = fig.add_subplot(1, panels, k + 1)
        ax.scatter(pts[:, 0], pts[:, 1], s=1.5, alpha=0.5, c="0.2" if k == 0 else "tab:blue")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("x₁", fontsize=8)
        ax.set_ylabel("x₂", fontsize=8)
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def save_points_plot(points, path, *, connect: bool = False, title: str | None = None) -> Path:
    """Scatter plot of 2D points (M, 2), in data units; ``connect`` joins them in order
    (an interpolation path)."""
    pts = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"a scatter plot needs points of shape (M, 2), got {pts.shape}")
    fig = _figure(4.0, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    if connect:
        ax.plot(pts[:, 0], pts[:, 1], "-o", ms=3, lw=1, c="tab:blue")
    else:
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.6, c="tab:blue")
    ax.set_aspect("equal")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.set_title(title or f"{len(pts)} points", fontsize=9)
    return _save(fig, path)


def plot_curve(
    values: list[float],
    path,
    *,
    title: str,
    ylabel: str,
    log: bool = True,
    target: float | None = None,
) -> Path:
    """A single training/convergence curve; ``target`` draws a dashed line (a tolerance)."""
    from matplotlib.ticker import LogLocator

    fig = _figure(4.5, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(np.arange(1, len(values) + 1), values, marker="o", ms=2)
    if target is not None:
        ax.axhline(target, ls="--", c="tab:red", lw=1, label=f"tolerance {target:g}")
        ax.legend(fontsize=8)
    if log and min(values, default=1) > 0 and (target is None or target > 0):
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, numticks=12))  # every decade labelled
        low = min([*values, *([target] if target is not None else [])])
        ax.set_ylim(bottom=10 ** np.floor(np.log10(low)))  # down to the decade below
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)
