"""Rectified-linear complexity bounds."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aeot.relu import (
    arrangement_regions,
    can_encode,
    complexity_bounds,
    lei_gu_bound,
    montufar_bound,
    serra_bound,
)


def test_arrangement_regions_values():
    assert arrangement_regions(2, 3) == 7
    assert arrangement_regions(3, 4) == 15
    assert arrangement_regions(1, 10) == 11
    assert arrangement_regions(0, 5) == 1
    assert arrangement_regions(4, 0) == 1
    assert arrangement_regions(10, 6) == 64
    assert arrangement_regions(2, 64) == 1 + 64 + 64 * 63 // 2
    big = arrangement_regions(50, 200)
    assert isinstance(big, int) and big == sum(math.comb(200, k) for k in range(51))


@settings(deadline=None)
@given(st.integers(1, 40), st.integers(0, 60))
def test_arrangement_recursion(d, n):
    assert arrangement_regions(d, n + 1) == arrangement_regions(d, n) + arrangement_regions(
        d - 1, n
    )
    assert arrangement_regions(d, n) <= 2**n


@settings(deadline=None)
@given(st.integers(1, 30), st.integers(1, 60), st.integers(1, 5))
def test_serra_one_layer_is_exact_arrangement_count(n0, n1, n_out):
    assert serra_bound([n0, n1, n_out]) == arrangement_regions(n0, n1)
    assert montufar_bound([n0, n1, n_out]) == arrangement_regions(n0, n1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=3, max_size=6))
def test_bound_ordering(widths):
    s, m, t = serra_bound(widths), montufar_bound(widths), lei_gu_bound(widths)
    assert 1 <= s <= m <= t


def test_known_values():
    # J for (2, 3, 3): j1 <= 2, j2 <= min(2, 3 - j1): 1*7 + 3*7 + 3*4 = 40
    assert serra_bound([2, 3, 3, 1]) == 40
    assert montufar_bound([2, 3, 3, 1]) == 7 * 7
    assert lei_gu_bound([2, 3, 3, 1]) == 7 * 8 * 2
    b = complexity_bounds([2, 64, 64, 64, 1])
    assert b["montufar"] == b["serra"] == arrangement_regions(2, 64) ** 3
    assert b["lei_gu"] == arrangement_regions(2, 64) * 2**64 * 2**64 * 2


def test_can_encode():
    widths = [2, 4, 4, 2]
    for bound in ("serra", "montufar", "lei_gu"):
        limit = complexity_bounds(widths)[bound]
        assert can_encode(widths, limit, bound=bound)
        assert not can_encode(widths, limit + 1, bound=bound)
    # the talk's curve C_n needs >= 4**(n + 1) pieces
    assert not can_encode([2, 3, 1], 4 ** (3 + 1))
    assert can_encode([2, 64, 64, 2], 4 ** (3 + 1))
    with pytest.raises(ValueError, match="bound"):
        can_encode(widths, 3, bound="nope")


def test_bound_errors():
    with pytest.raises(ValueError):
        serra_bound([2, 3])
    with pytest.raises(ValueError):
        montufar_bound([2, 0, 3])
    with pytest.raises(TypeError):
        lei_gu_bound("2,3,4")
    with pytest.raises(TypeError):
        arrangement_regions(2.5, 3)
    with pytest.raises(ValueError):
        arrangement_regions(-1, 3)
