"""How exact is the returned h of the exact 2D solver? Rational arithmetic decides.

10,000 uniform targets in the unit square, two of them 1.04e-7 apart. After
``solve_exact_2d`` the cells of that pair and of three ordinary targets are rebuilt from the
returned float64 h with exact rational half-plane clipping (``fractions.Fraction``, the 40
nearest targets), and their exact masses compared with ``result.cell_masses`` (the
solver's, exact for its internal power weights ψ), with a fresh float64 diagram of h
(``power_diagram_2d``) and with ν.

Run ``python benchmarks/check_exact2d_h.py`` (about a minute).
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import torch

from aeot.ot import SemiDiscreteProblem
from aeot.ot.exact2d import solve_exact_2d
from aeot.ot.power2d import power_diagram_2d


def exact_area(y: np.ndarray, h: np.ndarray, i: int, k: int = 40) -> Fraction:
    """|W_i ∩ [0,1]²| for the float64 values y, h taken as exact rationals."""
    near = np.argsort(np.hypot(*(y - y[i]).T))[1:k]
    zero, one = Fraction(0), Fraction(1)
    poly = [(zero, zero), (one, zero), (one, one), (zero, one)]
    yi = [Fraction(float(v)) for v in y[i]]
    for j in near:
        a = [Fraction(float(v)) - w for v, w in zip(y[j], yi, strict=True)]
        b = Fraction(float(h[i])) - Fraction(float(h[j]))
        out = []
        for q in range(len(poly)):
            p, r = poly[q], poly[(q + 1) % len(poly)]
            fp = p[0] * a[0] + p[1] * a[1] - b
            fr = r[0] * a[0] + r[1] * a[1] - b
            if fp <= 0:
                out.append(p)
            if fp * fr < 0:
                t = fp / (fp - fr)
                out.append((p[0] + t * (r[0] - p[0]), p[1] + t * (r[1] - p[1])))
        poly = out
        if not poly:
            return zero
    twice = sum(
        poly[q][0] * poly[(q + 1) % len(poly)][1] - poly[q][1] * poly[(q + 1) % len(poly)][0]
        for q in range(len(poly))
    )
    return abs(twice) / 2


def main() -> None:
    rng = np.random.default_rng(0)
    n = 10_000
    y = rng.random((n, 2))
    y[1] = y[0] + np.array([1e-7, 0.3e-7])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the near-duplicate pair is the point here
        problem = SemiDiscreteProblem(torch.from_numpy(y))
    result = solve_exact_2d(problem)
    h, masses = result.h.numpy(), result.cell_masses.numpy()
    nu = Fraction(1, n)
    fresh = power_diagram_2d(y, h).areas
    print(f"converged {result.converged}, {result.n_iter} Newton steps")
    print("cell | solver's mass vs exact (rel) | fresh float64 diagram vs exact | exact vs nu")
    for i in (0, 1, 2, 3, 4):  # the close pair, then three ordinary cells
        exact = exact_area(y, h, i)
        print(
            f"{i:>5} | {float((Fraction(float(masses[i])) - exact) / exact):>+10.2e} | "
            f"{float((Fraction(float(fresh[i])) - exact) / exact):>+10.2e} | "
            f"{float((exact - nu) / nu):>+10.2e}"
        )


if __name__ == "__main__":
    main()
