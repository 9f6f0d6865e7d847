"""The C kernels are the extension ``aeot.ot._native_ext``, built by ``pip install``: it
imports, picks the best variant the CPU runs, every variant answers as torch does, and
without it (or under ``AEOT_NATIVE``) the pure-torch path is used as documented.

The cases about the environment and a missing extension run in a fresh interpreter, so
that the variant and the one-time warning of this process are untouched.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from aeot.ot import _native
from aeot.ot.kernels import ScoreKernel, pack_panels

VARIANTS = ("avx512", "avx2", "baseline")
_AVX512 = ("avx512f", "avx512cd", "avx512vl", "avx512bw", "avx512dq")


def _extension():
    from aeot.ot import _native_ext

    return _native_ext


def test_extension_is_built_and_importable():
    """``pip install`` (editable or not) compiled the kernels into the package."""
    ext = _extension()
    assert Path(ext.__file__).parent == Path(_native.__file__).parent
    assert any(ext.__file__.endswith(s) for s in importlib.machinery.EXTENSION_SUFFIXES)
    assert ext.variants()[-1] == "baseline" and set(ext.variants()) <= set(VARIANTS)
    if os.environ.get("AEOT_NATIVE", "1") in ("", "1"):
        assert _native.available() and _native.variant() == ext.variants()[0]


def _cpu_flags() -> set[str] | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    return set(value.split())
    except OSError:
        pass
    return None


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64") or _cpu_flags() is None,
    reason="reads the x86 feature flags of /proc/cpuinfo",
)
def test_dispatch_takes_the_best_variant_the_cpu_runs():
    flags = _cpu_flags()
    expected = ["baseline"]
    if {"avx2", "fma"} <= flags:
        expected.insert(0, "avx2")
        if set(_AVX512) <= flags:
            expected.insert(0, "avx512")
    assert list(_extension().variants()) == expected


@pytest.fixture(params=VARIANTS)
def variant(request):
    """The extension switched to each variant this CPU runs, and back afterwards."""
    ext = _extension()
    if request.param not in ext.variants():
        pytest.skip(f"this CPU does not run the {request.param} variant")
    if not _native.available():
        pytest.skip("native kernels off (AEOT_NATIVE=0)")
    previous = ext.variant()
    ext.select(request.param)
    yield request.param
    ext.select(previous)


def _integers(gen, *shape, dtype=torch.float32, high=30):
    """Small integers: every score below is exact, so each answer has one right value."""
    return torch.randint(-high, high + 1, shape, generator=gen).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [3, 20])
def test_every_variant_assigns_as_exact_arithmetic(variant, dtype, dim):
    """Argmax (ties to the lower index) and top-2 of ⟨x, y_i⟩ + h_i, fused or not."""
    gen = torch.Generator().manual_seed(dim)
    y, h = _integers(gen, 301, dim, dtype=dtype), _integers(gen, 301, dtype=dtype)
    x = _integers(gen, 1001, dim, dtype=dtype)
    kernel = ScoreKernel(y)
    assert kernel.native and kernel.fused == (variant != "baseline" and dtype == torch.float32)
    exact = x.double() @ y.double().t() + h.double()
    order = torch.sort(exact, dim=1, descending=True, stable=True)
    cells, best = kernel.argmax(x, h)
    assert torch.equal(cells, order.indices[:, 0])
    assert torch.equal(best.double(), order.values[:, 0])
    values, top = kernel.topk(x, h, 2)
    assert torch.equal(values.double(), order.values[:, :2])
    assert torch.equal(top[:, 0], cells) and bool((top[:, 1] != cells).all())
    assert torch.equal(exact.gather(1, top), order.values[:, :2])  # a runner-up, if tied


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_variant_gives_the_pool_kernels_exactly(variant, dtype):
    gen = torch.Generator().manual_seed(1)
    x, y = _integers(gen, 300, 19, dtype=dtype), _integers(gen, 50, 19, dtype=dtype)
    h = _integers(gen, 50, dtype=dtype)
    cells = torch.randint(0, 50, (300, 7), generator=gen, dtype=torch.int32)
    skip = torch.rand(50, generator=gen) < 0.3
    raw = _native.gather_dot(x, y, cells)
    assert torch.equal(raw, (x[:, None, :] * y[cells.long()]).sum(-1))
    values, top = _native.cand_top2(raw, cells, h, skip)
    scores = (raw + h[cells.long()]).double().masked_fill(skip[cells.long()], -torch.inf)
    order = torch.sort(scores, dim=1, descending=True, stable=True)
    expected = cells.long().gather(1, order.indices[:, :2])
    assert torch.equal(top, expected.masked_fill(order.values[:, :2] == -torch.inf, -1))
    lowest = torch.finfo(dtype).min
    assert torch.equal(values, order.values[:, :2].to(dtype).clamp(min=lowest))


def test_every_variant_lifts_and_flips_as_the_torch_and_python_paths(variant, monkeypatch):
    import aeot.ot.power2d as power2d

    if variant != "baseline":  # the fused lift: column min, sum and sum of squares of gaps
        gen = torch.Generator().manual_seed(2)
        x, y = _integers(gen, 600, 5, high=3), _integers(gen, 37, 5, high=3)
        best = (x @ y.t()).amax(1)
        lowest, total, total_sq = _native.fused_lift(x, best, pack_panels(y))
        gap = best[:, None].double() - x.double() @ y.double().t()
        assert torch.equal(lowest[:37].double(), gap.amin(0))
        assert torch.equal(total[:37], gap.sum(0))
        assert torch.equal(total_sq[:37], (gap**2).sum(0))
    rng = np.random.default_rng(3)
    sites = rng.random((2000, 2))
    psi0 = 1e-7 * rng.standard_normal(2000)
    base = power2d._power_diagram(sites, psi0, (0.0, 0.0), (1.0, 1.0)).triangulation
    psi = psi0 + 1e-7 * rng.standard_normal(2000)
    native = power2d._lawson_flips(sites, psi, base, 100)
    monkeypatch.setattr(_native, "available", lambda: False)
    python = power2d._lawson_flips(sites, psi, base, 100)
    assert python is not None and python is not base
    np.testing.assert_array_equal(native.simplices, python.simplices)
    np.testing.assert_array_equal(native.neighbors, python.neighbors)


def test_baseline_variant_has_no_fused_kernels():
    ext = _extension()
    previous = ext.variant()
    try:
        ext.select("baseline")
        assert not _native.fused_available()
        with pytest.raises(RuntimeError, match="AVX2 and FMA"):
            _native.fused_lift(torch.zeros(4, 2), torch.zeros(4), torch.zeros(1, 2, 8))
        with pytest.raises(ValueError, match="no kernel variant 'avx1024'"):
            ext.select("avx1024")
    finally:
        ext.select(previous)


# Imports the kernels in a fresh interpreter, checks their answers on exactly
# representable data and prints a JSON summary. ``BLOCK`` hides the extension.
_PROBE = textwrap.dedent(
    """
    import json, sys, types, warnings
    warnings.simplefilter("always")
    if BLOCK:
        sys.modules["aeot.ot._native_ext"] = None  # its import fails, as when not built
    with warnings.catch_warnings(record=True) as caught:
        import torch
        import aeot
        # the kernel modules alone: skip aeot.ot's __init__ (scipy, sklearn) to save time
        package = types.ModuleType("aeot.ot")
        package.__path__ = [aeot.__path__[0] + "/ot"]
        sys.modules["aeot.ot"] = package
        from aeot.ot import _native
        from aeot.ot.kernels import ScoreKernel

        state = [_native.available(), _native.variant(), _native.fused_available()]
        state += [_native.available(), _native.variant()]  # asked again: no second warning
        gen = torch.Generator().manual_seed(0)
        y = torch.randint(-50, 50, (300, 3), generator=gen).float()
        x = torch.randint(-50, 50, (2000, 3), generator=gen).float()
        h = torch.randint(-50, 50, (300,), generator=gen).float()
        cells = ScoreKernel(y).argmax(x, h)[0]
        correct = torch.equal(cells, (x.double() @ y.double().t() + h.double()).argmax(1))
    print(json.dumps({
        "state": state,
        "correct": correct,
        "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
    }))
    """
)


def _probe(native: str | None, block: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "AEOT_NATIVE"}
    if native is not None:
        env["AEOT_NATIVE"] = native
    code = f"BLOCK = {block}\n{_PROBE}"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-3000:]}"
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_missing_extension_warns_once_and_torch_answers():
    result = _probe(None, block=True)
    assert result["state"] == [False, "torch", False, False, "torch"] and result["correct"]
    [warning] = result["warnings"]
    assert "native kernels are not installed" in warning and "pure-torch path" in warning


def test_native_off_is_silent():
    result = _probe("0")
    assert result == {
        "state": [False, "torch", False, False, "torch"],
        "correct": True,
        "warnings": [],
    }


@pytest.mark.parametrize("name", VARIANTS)
def test_environment_picks_the_variant(name):
    if name not in _extension().variants():
        pytest.skip(f"this CPU does not run the {name} variant")
    result = _probe(name)
    assert result["state"] == [True, name, name != "baseline", True, name]
    assert result["correct"] and result["warnings"] == []


def test_unknown_variant_in_the_environment_warns_once_and_keeps_the_best():
    best = _extension().variants()[0]
    result = _probe("avx1024")
    assert result["state"][:2] == [True, best] and result["correct"]
    [warning] = result["warnings"]
    assert "AEOT_NATIVE='avx1024' ignored" in warning and f"using '{best}'" in warning
