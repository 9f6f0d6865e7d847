"""Upper bounds on the rectified-linear complexity (number of linear regions).

All bounds are exact Python integers (``math.comb``), so they do not overflow.

``widths`` is always the full list ``(n_0, n_1, ..., n_L, n_out)``: input
dimension, the widths of the ``L`` hidden ReLU layers, then the output width (the
talk writes ``(w_0, ..., w_{k+1})`` with ``k`` hidden layers).  The bounds of
Montúfar and Serra et al. depend on the hidden widths only; the talk's bound also
has a factor for the output layer.

References
----------
.. [Zas75] T. Zaslavsky, "Facing up to arrangements: face-count formulas for
   partitions of space by hyperplanes", Mem. AMS 154, 1975.
.. [LeiGu] N. Lei, D. An, Y. Guo, K. Su, S. Liu, Z. Luo, S.-T. Yau, X. Gu,
   "A Geometric Understanding of Deep Learning", Engineering 6(3), 2020,
   Theorem (rectified linear complexity of a ReLU DNN).
.. [Mon17] G. Montúfar, "Notes on the number of linear regions of deep neural
   networks", SampTA 2017 (the bound as restated in [STR18], eq. (2)).
.. [STR18] T. Serra, C. Tjandraatmadja, S. Ramalingam, "Bounding and Counting
   Linear Regions of Deep Neural Networks", ICML 2018, Theorem 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "arrangement_regions",
    "can_encode",
    "complexity_bounds",
    "lei_gu_bound",
    "montufar_bound",
    "serra_bound",
]


def _int(value, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _widths(widths: Sequence[int], min_len: int = 3) -> list[int]:
    if isinstance(widths, str):
        raise TypeError("widths must be a sequence of integers, not a string")
    ws = [_int(w, f"widths[{i}]", 1) for i, w in enumerate(widths)]
    if len(ws) < min_len:
        raise ValueError(
            f"widths must list the input, at least one hidden layer and the output "
            f"(>= {min_len} entries), got {ws}"
        )
    return ws


def arrangement_regions(d: int, n: int) -> int:
    """Maximal number of regions of ``n`` hyperplanes in ``R^d``: ``C(d, n)``.

    .. math::  C(d, n) = \\sum_{k=0}^{d} \\binom{n}{k}

    attained by hyperplanes in general position [Zas75].  Satisfies
    ``C(d, n + 1) = C(d, n) + C(d - 1, n)``, ``C(0, n) = 1`` and ``C(d, n) = 2^n``
    for ``d >= n``.

    Parameters
    ----------
    d : int >= 0
        Dimension of the space.
    n : int >= 0
        Number of hyperplanes.

    Returns
    -------
    int
    """
    d = _int(d, "d")
    n = _int(n, "n")
    return sum(math.comb(n, k) for k in range(min(d, n) + 1))


def lei_gu_bound(widths: Sequence[int]) -> int:
    """The talk's bound on the rectified linear complexity of a ReLU DNN [LeiGu].

    For a network ``N(w_0, ..., w_{k+1})`` (input ``w_0``, hidden widths
    ``w_1..w_k``, output ``w_{k+1}``)

    .. math::  \\mathcal N(N) \\le \\prod_{i=1}^{k+1} C(w_{i-1}, w_i),

    the product running over all layers including the output layer: layer ``i``
    cuts each cell of ``R^{w_{i-1}}`` by ``w_i`` hyperplanes.

    Parameters
    ----------
    widths : sequence of int, ``(w_0, w_1, ..., w_{k+1})``

    Returns
    -------
    int
    """
    ws = _widths(widths, 2)
    return math.prod(arrangement_regions(ws[i - 1], ws[i]) for i in range(1, len(ws)))


def montufar_bound(widths: Sequence[int]) -> int:
    """Montúfar's (2017) bound on the number of linear regions [Mon17].

    For ``L`` hidden layers of widths ``n_1..n_L`` on input dimension ``n_0``

    .. math::  \\prod_{l=1}^{L} C(d_l, n_l), \\qquad d_l = \\min(n_0, n_1, \\dots, n_l),

    i.e. ``prod_l sum_{j=0}^{d_l} binom(n_l, j)``: the image of a cell after layer
    ``l`` has dimension at most ``d_l``.  The output layer does not enter.

    Parameters
    ----------
    widths : sequence of int, ``(n_0, n_1, ..., n_L, n_out)``

    Returns
    -------
    int
    """
    ws = _widths(widths)
    hidden = ws[1:-1]
    total = 1
    dim = ws[0]
    for n_l in hidden:
        dim = min(dim, n_l)
        total *= arrangement_regions(dim, n_l)
    return total


def serra_bound(widths: Sequence[int]) -> int:
    """Serra, Tjandraatmadja & Ramalingam (2018), Theorem 1 [STR18].

    For ``L`` hidden ReLU layers of widths ``n_1..n_L`` on input dimension ``n_0``
    the number of linear regions is at most

    .. math::

        \\sum_{(j_1, \\dots, j_L) \\in J} \\prod_{l=1}^{L} \\binom{n_l}{j_l},
        \\quad J = \\{ (j_1..j_L) \\in \\mathbb Z^L : 0 \\le j_l \\le
        \\min(n_0, n_1 - j_1, \\dots, n_{l-1} - j_{l-1}, n_l) \\}.

    For one hidden layer this is ``C(n_0, n_1)``, which is exact (attained by
    generic hyperplanes).  It is never larger than :func:`montufar_bound` or
    :func:`lei_gu_bound`.  Evaluated exactly by dynamic programming over
    ``m_l = min(n_0, n_1 - j_1, ..., n_{l-1} - j_{l-1})``.

    Parameters
    ----------
    widths : sequence of int, ``(n_0, n_1, ..., n_L, n_out)``

    Returns
    -------
    int
    """
    ws = _widths(widths)
    hidden = ws[1:-1]
    # states: m_l -> sum over (j_1..j_{l-1}) reaching it of prod binom(n_i, j_i)
    states: dict[int, int] = {ws[0]: 1}
    for n_l in hidden:
        nxt: dict[int, int] = {}
        for m, weight in states.items():
            for j in range(min(m, n_l) + 1):
                key = min(m, n_l - j)
                nxt[key] = nxt.get(key, 0) + weight * math.comb(n_l, j)
        states = nxt
    return sum(states.values())


def complexity_bounds(widths: Sequence[int]) -> dict[str, int]:
    """All three bounds: ``{"lei_gu": ..., "montufar": ..., "serra": ...}``."""
    return {
        "lei_gu": lei_gu_bound(widths),
        "montufar": montufar_bound(widths),
        "serra": serra_bound(widths),
    }


_BOUNDS = {"lei_gu": lei_gu_bound, "montufar": montufar_bound, "serra": serra_bound}


def can_encode(widths: Sequence[int], complexity: int, *, bound: str = "serra") -> bool:
    """Whether a network with these widths can possibly encode a manifold.

    A ReLU encoder maps each of its linear regions affinely, so it can only embed a
    manifold whose rectified-linear complexity (the least number of linear pieces
    needed, e.g. at least ``4**(n + 1)`` for the talk's curve ``C_n``) does not
    exceed its number of linear regions.  Returns ``bound(widths) >= complexity``;
    ``False`` means the architecture certainly cannot, ``True`` only that the
    counting argument does not exclude it.

    Parameters
    ----------
    widths : sequence of int, ``(n_0, ..., n_L, n_out)``
    complexity : int >= 0
        Rectified-linear complexity of the manifold.
    bound : {"serra", "montufar", "lei_gu"}
        Which upper bound to use (``"serra"`` is the tightest).

    Returns
    -------
    bool
    """
    complexity = _int(complexity, "complexity")
    try:
        fn = _BOUNDS[bound]
    except KeyError:
        raise ValueError(f"bound must be one of {sorted(_BOUNDS)}, got {bound!r}") from None
    return fn(widths) >= complexity
