"""Figure of docs/EXACT_2D.md: equal-mass power cells of 400 targets under a grid density.

Left: the density (the wavy density of ``bench_exact2d.py --density wavy`` on 64 × 64
pixels) and the cells of the exact solution for ν uniform; right: the same targets
with a uniform source. Every cell carries mass 1/400 of its source: small where ρ is
large. Run ``python benchmarks/plot_exact2d_density.py docs/results/exact2d-density.png``.
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.collections import PolyCollection

from aeot.ot import GridDensity, SemiDiscreteProblem
from aeot.ot.exact2d import solve_exact_2d
from aeot.ot.power2d import power_cell_polygons_2d


def main(out: str) -> None:
    g = (np.arange(64) + 0.5) / 64
    x, y = np.meshgrid(g, g, indexing="ij")
    source = GridDensity(1.0 + 0.9 * np.sin(6 * x) * np.cos(4 * y + 1))
    targets = np.random.default_rng(0).random((400, 2))
    fig, axes = plt.subplots(1, 2, figsize=(10, 5), constrained_layout=True)
    for ax, src, title in (
        (axes[0], source, "grid density 64 x 64 (darker = denser)"),
        (axes[1], None, "uniform source"),
    ):
        problem = SemiDiscreteProblem(torch.from_numpy(targets), source=src)
        result = solve_exact_2d(problem)
        nu = problem.weights.numpy()
        rel = np.max(np.abs(result.cell_masses.numpy() - nu) / nu)
        if src is not None:
            ax.imshow(src.density().numpy().T, origin="lower", extent=(0, 1, 0, 1), cmap="Greys")
        cells = power_cell_polygons_2d(targets, result.h.numpy())
        ax.add_collection(PolyCollection(cells, facecolors="none", edgecolors="tab:blue", lw=0.6))
        ax.plot(targets[:, 0], targets[:, 1], ".", color="tab:red", ms=2)
        ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal")
        ax.set_title(f"{title}\n{result.n_iter} Newton steps, max rel. mass error {rel:.1e}")
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "exact2d-density.png")
