"""Every entry point of the C kernels refuses arguments that would make C misbehave.

Wrong dtypes, devices, layouts or output sizes must raise ``TypeError`` /
``ValueError`` naming the argument before any C code runs, never corrupt memory.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aeot.ot import _native

pytestmark = pytest.mark.skipif(not _native.available(), reason="needs the C kernels")
fused = pytest.mark.skipif(not _native.fused_available(), reason="needs AVX2/FMA kernels")


def _outputs(rows: int, width: int, dtype=torch.float32):
    shape = (rows,) if width == 1 else (rows, width)
    return torch.empty(shape, dtype=torch.long), torch.empty(shape, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("reduce", "width"), [("row_argmax", 1), ("row_top2", 2)])
def test_row_reductions_answer_correctly_for_valid_input(dtype, reduce, width):
    torch.manual_seed(0)
    scores = torch.randn(300, 70, dtype=dtype)
    index, value = _outputs(300, width, dtype)
    getattr(_native, reduce)(scores, index, value)
    best = torch.topk(scores, width, dim=1)
    assert torch.equal(index.reshape(300, width), best.indices)
    assert torch.equal(value.reshape(300, width), best.values)


def test_row_reductions_read_row_major_views_through_their_leading_dimension():
    base = torch.randn(40, 90, dtype=torch.float64)
    scores = base[:, 5:75]  # rows 90 apart
    index, value = _outputs(40, 1, torch.float64)
    _native.row_argmax(scores, index, value)
    assert torch.equal(index, scores.argmax(1))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64, torch.int32])
@pytest.mark.parametrize("reduce", ["row_argmax", "row_top2"])
def test_row_reductions_refuse_scores_of_other_dtypes(dtype, reduce):
    scores = torch.ones(100, 8).to(dtype)
    width = 1 if reduce == "row_argmax" else 2
    index, value = _outputs(100, width, dtype)
    with pytest.raises(TypeError, match=rf"scores must be torch.float32 or torch.float64.*{dtype}"):
        getattr(_native, reduce)(scores, index, value)


@pytest.mark.parametrize(
    ("index_dtype", "value_dtype", "message"),
    [
        (torch.int32, torch.float32, r"out_index must have dtype torch.int64"),
        (torch.float64, torch.float32, r"out_index must have dtype torch.int64"),
        (torch.int64, torch.float64, r"out_value must have dtype torch.float32"),
        (torch.int64, torch.float16, r"out_value must have dtype torch.float32"),
    ],
)
def test_row_reductions_refuse_outputs_of_other_dtypes(index_dtype, value_dtype, message):
    scores = torch.randn(100, 8)
    with pytest.raises(TypeError, match=message):
        _native.row_argmax(
            scores, torch.empty(100, dtype=index_dtype), torch.empty(100, dtype=value_dtype)
        )


@pytest.mark.parametrize(
    ("index_shape", "value_shape", "message"),
    [
        ((99,), (100,), r"out_index must have shape \(100,\), got \(99,\)"),
        ((100,), (50,), r"out_value must have shape \(100,\), got \(50,\)"),
        ((100, 2), (100, 2), r"out_index must have shape \(100,\)"),
        ((1,), (1,), r"out_index must have shape"),
    ],
)
def test_row_argmax_refuses_outputs_of_the_wrong_size(index_shape, value_shape, message):
    scores = torch.randn(100, 8)
    with pytest.raises(ValueError, match=message):
        _native.row_argmax(
            scores,
            torch.empty(index_shape, dtype=torch.long),
            torch.empty(value_shape, dtype=torch.float32),
        )


def test_row_top2_refuses_outputs_of_the_argmax_shape():
    with pytest.raises(ValueError, match=r"out_index must have shape \(100, 2\)"):
        _native.row_top2(torch.randn(100, 8), *_outputs(100, 1))


def test_row_reductions_refuse_non_contiguous_outputs_and_column_strided_scores():
    scores = torch.randn(100, 8)
    index, value = _outputs(200, 1)
    with pytest.raises(ValueError, match=r"out_index must be contiguous"):
        _native.row_argmax(scores, index[::2], value[:100])
    with pytest.raises(ValueError, match=r"scores must be row-major"):
        _native.row_argmax(torch.randn(8, 100).t(), *_outputs(100, 1))
    with pytest.raises(ValueError, match=r"scores must be row-major"):
        _native.row_argmax(torch.randn(100, 16)[:, ::2], *_outputs(100, 1))


def test_row_reductions_refuse_misshapen_scores_and_other_devices():
    with pytest.raises(ValueError, match=r"scores must have at least one column"):
        _native.row_argmax(torch.empty(5, 0), *_outputs(5, 1))
    with pytest.raises(ValueError, match=r"scores must have 2 dimensions"):
        _native.row_argmax(torch.empty(5), *_outputs(5, 1))
    with pytest.raises(TypeError, match=r"scores must be a torch.Tensor"):
        _native.row_argmax(np.zeros((5, 3), np.float32), *_outputs(5, 1))
    with pytest.raises(ValueError, match=r"scores must be on the CPU"):
        _native.row_argmax(torch.empty(5, 3, device="meta"), *_outputs(5, 1))
    with pytest.raises(ValueError, match=r"out_value must be on the CPU"):
        _native.row_argmax(
            torch.randn(5, 3), torch.empty(5, dtype=torch.long), torch.empty(5, device="meta")
        )


def _panels(n: int, dim: int):
    from aeot.ot.kernels import pack_panels

    torch.manual_seed(n + dim)
    y = torch.randn(n, dim)
    yt = pack_panels(y)
    h = torch.full((yt.shape[0] * 8,), torch.finfo(torch.float32).min)
    h[:n] = torch.randn(n)
    return yt, h, y


@fused
@pytest.mark.parametrize(("name", "width"), [("fused_argmax", 1), ("fused_top2", 2)])
def test_fused_reduce_refuses_wrong_arguments(name, width):
    yt, h, _ = _panels(20, 3)
    x = torch.randn(50, 3)
    _native.fused_reduce(name, x, yt, h, *_outputs(50, width))  # valid: no error
    with pytest.raises(TypeError, match=r"x must have dtype torch.float32"):
        _native.fused_reduce(name, x.double(), yt, h, *_outputs(50, width))
    with pytest.raises(TypeError, match=r"x must have dtype torch.float32"):
        _native.fused_reduce(name, x.half(), yt, h, *_outputs(50, width))
    with pytest.raises(ValueError, match=r"yt must have shape \(npad / 8, 2, 8\)"):
        _native.fused_reduce(name, x[:, :2], yt, h, *_outputs(50, width))
    with pytest.raises(ValueError, match=r"h must have shape \(24,\)"):
        _native.fused_reduce(name, x, yt, h[:20], *_outputs(50, width))
    with pytest.raises(TypeError, match=r"h must have dtype torch.float32"):
        _native.fused_reduce(name, x, yt, h.double(), *_outputs(50, width))
    with pytest.raises(TypeError, match=r"yt must have dtype torch.float32"):
        _native.fused_reduce(name, x, yt.double(), h, *_outputs(50, width))
    with pytest.raises(ValueError, match=r"yt must be contiguous"):
        _native.fused_reduce(
            name, x, yt.transpose(0, 2).contiguous().transpose(0, 2), h, *_outputs(50, width)
        )
    with pytest.raises(ValueError, match=r"out_index must have shape"):
        _native.fused_reduce(name, x, yt, h, *_outputs(49, width))
    with pytest.raises(TypeError, match=r"out_value must have dtype torch.float32"):
        _native.fused_reduce(name, x, yt, h, *_outputs(50, width, torch.float64))
    with pytest.raises(ValueError, match=r"name must be one of"):
        _native.fused_reduce("argmax_rows", x, yt, h, *_outputs(50, width))


@fused
def test_fused_topk_refuses_k_beyond_its_lanes_and_mismatched_outputs():
    yt, h, y = _panels(40, 2)
    x = torch.randn(30, 2)
    index, value = _outputs(30, 5)
    _native.fused_reduce("fused_topk", x, yt, h, index, value)
    exact = x.double() @ y.double().t() + h[:40].double()
    torch.testing.assert_close(value.double(), exact.topk(5, dim=1).values, rtol=1e-5, atol=1e-5)
    k = _native.FUSED_MAX_K + 1
    with pytest.raises(ValueError, match=rf"fused_topk takes 1 <= k <= {k - 1}, got k = {k}"):
        _native.fused_reduce("fused_topk", x, yt, h, *_outputs(30, k))
    with pytest.raises(ValueError, match=r"out_value must have shape \(30, 5\)"):
        _native.fused_reduce("fused_topk", x, yt, h, index, torch.empty(30, 4))
    with pytest.raises(ValueError, match=r"out_index must have shape \(M, k\)"):
        _native.fused_reduce("fused_topk", x, yt, h, *_outputs(30, 1))


@fused
def test_fused_lift_refuses_wrong_arguments():
    yt, _, _ = _panels(20, 3)
    x, best = torch.randn(50, 3), torch.randn(50)
    lowest, total, total_sq = _native.fused_lift(x, best, yt)
    assert lowest.shape == total.shape == total_sq.shape == (24,)
    with pytest.raises(TypeError, match=r"x must have dtype torch.float32"):
        _native.fused_lift(x.double(), best, yt)
    with pytest.raises(TypeError, match=r"best must have dtype torch.float32"):
        _native.fused_lift(x, best.half(), yt)
    with pytest.raises(ValueError, match=r"best must have shape \(50,\)"):
        _native.fused_lift(x, best[:10], yt)
    with pytest.raises(ValueError, match=r"yt must have shape \(npad / 8, 3, 8\)"):
        _native.fused_lift(x, best, yt[:, :2].contiguous())


def _square():
    """Two triangles of the unit square, flat, as power2d passes them."""
    px = np.array([0.0, 1.0, 1.0, 0.0])
    py = np.array([0.0, 0.0, 1.0, 1.0])
    simplices = np.array([0, 1, 2, 0, 2, 3], dtype=np.int64)
    neighbors = np.array([-1, 1, -1, -1, -1, 0], dtype=np.int64)
    return px, py, np.zeros(4), simplices, neighbors


def test_lawson_flips_runs_on_a_valid_triangulation():
    px, py, psi, s, nb = _square()
    assert _native.lawson_flips(px, py, psi, s, nb, np.array([1]), 10) >= 0


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda a: a.update(psi=np.zeros(3)), ValueError, r"same length"),
        (lambda a: a.update(px=np.zeros((2, 2))), ValueError, r"px must be 1-D"),
        (lambda a: a.update(py=np.array(["a"] * 4)), TypeError, r"py must hold real numbers"),
        (
            lambda a: a.update(s=a["s"].astype(np.int32)),
            ValueError,
            r"simplices must be a "
            r"contiguous int64",
        ),
        (lambda a: a.update(s=a["s"][:5].copy()), ValueError, r"flat \(3F,\) arrays of one size"),
        (
            lambda a: a.update(s=np.array([0, 1, 99, 0, 2, 3])),
            ValueError,
            r"simplices has entries outside \[0, 4\)",
        ),
        (
            lambda a: a.update(s=np.array([0, 1, -1, 0, 2, 3])),
            ValueError,
            r"simplices has entries outside",
        ),
        (
            lambda a: a.update(nb=np.array([-1, 7, -1, -1, -1, 0])),
            ValueError,
            r"neighbors has entries outside \[-1, 2\)",
        ),
        (lambda a: a.update(edges=np.array([6])), ValueError, r"edges has entries outside"),
        (lambda a: a.update(edges=np.array([-3])), ValueError, r"edges has entries outside"),
        (lambda a: a.update(edges=np.array([1.0])), TypeError, r"edges must hold integers"),
    ],
)
def test_lawson_flips_refuses_inconsistent_arrays(change, error, message):
    px, py, psi, s, nb = _square()
    args = {"px": px, "py": py, "psi": psi, "s": s, "nb": nb, "edges": np.array([1])}
    change(args)
    with pytest.raises(error, match=message):
        _native.lawson_flips(
            args["px"], args["py"], args["psi"], args["s"], args["nb"], args["edges"], 10
        )


def test_lawson_flips_refuses_read_only_triangles():
    px, py, psi, s, nb = _square()
    s.flags.writeable = False
    with pytest.raises(ValueError, match=r"simplices must be writeable"):
        _native.lawson_flips(px, py, psi, s, nb, np.array([1]), 10)


def test_lawson_flips_stops_on_a_neighbour_that_does_not_share_the_edge():
    """Indices in range but adjacency inconsistent: C gives up (-1) and leaves the arrays
    as they were instead of indexing with a missing slot."""
    px, py, _, _, _ = _square()
    psi = np.array([0.0, 0.0, 0.0, 5.0])  # the shared edge would be flipped
    s = np.array([0, 1, 2, 0, 1, 3], dtype=np.int64)  # triangle 1 lacks vertex 2
    nb = np.array([-1, 1, -1, -1, -1, 0], dtype=np.int64)
    assert _native.lawson_flips(px, py, psi, s, nb, np.array([1]), 10) == -1
    assert s.tolist() == [0, 1, 2, 0, 1, 3] and nb.tolist() == [-1, 1, -1, -1, -1, 0]
    consistent = np.array([0, 1, 2, 0, 2, 3], dtype=np.int64)
    assert _native.lawson_flips(px, py, psi, consistent, nb.copy(), np.array([1]), 10) == 1


def _circumcentre(p, q, r):
    a = np.array([q - p, r - p])
    return p + np.linalg.solve(2 * a, (a**2).sum(1))


def test_warm_edges_on_a_quadrilateral_and_its_guards():
    """Two triangles of a quadrilateral, unweighted, in a box around it: four rays and the
    segment between the triangles' circumcentres (the Voronoi diagram); bad arrays raise
    before any C runs."""
    px, py = np.array([0.0, 1.0, 0.9, -0.1]), np.array([0.0, 0.1, 1.0, 0.9])
    psi = np.zeros(4)
    s = np.array([0, 1, 2, 0, 2, 3], dtype=np.int64)
    nb = np.array([-1, 1, -1, -1, -1, 0], dtype=np.int64)
    box = (-1.0, -1.0, 2.0, 2.0)
    ei, ej, length, seg, cut, _ = _native.warm_edges(px, py, psi, s, nb, box, None)
    assert ei.size == 5 and (cut == [1, 0, 1, 1, 1]).all()
    inner = np.flatnonzero(cut == 0)[0]
    assert {int(ei[inner]), int(ej[inner])} == {0, 2}
    p = np.stack([px, py], 1)
    v = [_circumcentre(*p[[0, 1, 2]]), _circumcentre(*p[[0, 2, 3]])]
    assert length[inner] == pytest.approx(np.linalg.norm(v[0] - v[1]), rel=1e-12)
    np.testing.assert_allclose(sorted(seg[inner].tolist()), sorted(np.array(v).tolist()))
    # the rays' first ends lie on the box boundary
    ends = seg[cut == 1, 0]
    assert (np.isclose(ends, -1.0, atol=1e-12) | np.isclose(ends, 2.0, atol=1e-12)).any(1).all()
    args = (px, py, psi, s, nb, box, None)
    with pytest.raises(ValueError, match="same length"):
        _native.warm_edges(px, py, np.zeros(3), *args[3:])
    with pytest.raises(ValueError, match="simplices has entries outside"):
        _native.warm_edges(px, py, psi, s + 4, *args[4:])
    with pytest.raises(ValueError, match="box must be"):
        _native.warm_edges(*args[:5], (2.0, -1.0, -1.0, 2.0), None)
    with pytest.raises(ValueError, match="shift must have shape"):
        _native.warm_edges(*args[:6], np.zeros((3, 2)))
    with pytest.raises(TypeError, match="px must hold real numbers"):
        _native.warm_edges(px.astype(complex), *args[1:])


@pytest.mark.parametrize("kernel", ["lawson_flips", "warm_edges", "sweep_triangulate"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_triangulation_kernels_refuse_non_finite_sites(kernel, bad):
    """The kernels build with -ffinite-math-only: a NaN or inf coordinate, weight or low
    part of a weight is refused before any C runs (an inf coordinate corrupted the
    sweep's heap)."""
    px, py, psi, s, nb = _square()
    calls = {
        "lawson_flips": lambda x, y, w, lo: _native.lawson_flips(
            x, y, w, s, nb, None, 10, False, lo
        ),
        "warm_edges": lambda x, y, w, lo: _native.warm_edges(
            x, y, w, s, nb, (-1, -1, 2, 2), None, lo
        ),
        "sweep_triangulate": lambda x, y, w, lo: _native.sweep_triangulate(x, y, w, lo),
    }
    call = calls[kernel]
    for name, arrays in (
        ("px", (np.where(np.arange(4) == 2, bad, px), py, psi, None)),
        ("py", (px, np.where(np.arange(4) == 0, bad, py), psi, None)),
        ("psi", (px, py, np.where(np.arange(4) == 3, bad, psi), None)),
        ("psi_lo", (px, py, psi, np.where(np.arange(4) == 1, bad, 0.0))),
    ):
        with pytest.raises(ValueError, match=f"{name} must be finite"):
            call(*arrays)
    assert call(px, py, psi, np.zeros(4)) is not None  # the same arrays, finite, run


def _csr(n=5, m=4):
    g = torch.Generator().manual_seed(0)
    ptr = torch.arange(0, 2 * n + 1, 2, dtype=torch.int64)
    cols = torch.tensor([0, 3], dtype=torch.int64).repeat(n)
    values = torch.rand(2 * n, dtype=torch.float64, generator=g)
    return dict(
        psi=torch.zeros(m, dtype=torch.float64),
        cols=cols,
        values=values,
        ptr=ptr,
        a=torch.ones(n, dtype=torch.float64),
        reg=0.1,
        w=torch.empty(2 * n, dtype=torch.float64),
        columns=torch.zeros(m, dtype=torch.float64),
    )


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda k: k["ptr"].__setitem__(2, 1), ValueError, "ptr must rise"),  # a row empty...
        (lambda k: k["ptr"].__setitem__(3, 9), ValueError, "ptr must rise"),  # ...or backwards
        (lambda k: k.update(ptr=k["ptr"][:-1], a=k["a"][:-1]), ValueError, "ptr must rise"),
        (lambda k: k["cols"].__setitem__(4, 4), ValueError, r"cols must lie in \[0, 4\)"),
        (lambda k: k["cols"].__setitem__(1, -1), ValueError, r"cols must lie in \[0, 4\)"),
        (lambda k: k.__setitem__("cols", k["cols"].int()), TypeError, "cols"),
        (lambda k: k.__setitem__("values", k["values"].float()), TypeError, "values"),
        (lambda k: k.__setitem__("w", k["w"][:-1]), ValueError, "w"),
        (
            lambda k: k.__setitem__("columns", torch.zeros(5, dtype=torch.float64)),
            ValueError,
            "columns",
        ),
        (lambda k: k.__setitem__("a", torch.ones(4, dtype=torch.float64)), ValueError, "a"),
        (lambda k: k.__setitem__("reg", 0.0), ValueError, "reg must be > 0"),
        (lambda k: k.__setitem__("reg", float("nan")), ValueError, "reg must be > 0"),
    ],
)
def test_lse_csr_refuses_lists_it_would_read_outside(change, error, message):
    kwargs = _csr()
    assert _native.lse_csr(**kwargs) == pytest.approx(_native.lse_csr(**_csr()))
    change(kwargs)
    with pytest.raises(error, match=message):
        _native.lse_csr(**kwargs)


def test_dense_accelerated_kernels_refuse_wrong_arguments():
    cost = torch.rand(6, 5, dtype=torch.float64)
    psi, a = torch.zeros(5, dtype=torch.float64), torch.ones(6, dtype=torch.float64)
    with pytest.raises(TypeError, match="cost"):
        _native.lse_dense(cost.float(), psi, a, 0.1, torch.zeros(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="columns"):
        _native.lse_dense(cost, psi, a, 0.1, torch.zeros(6, dtype=torch.float64))
    with pytest.raises(ValueError, match="reg"):
        _native.lse_dense(cost, psi, a, -1.0, torch.zeros(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="psi0"):
        _native.active_entries(cost, torch.zeros(6, dtype=torch.float64), 0.1, 30)
    with pytest.raises(ValueError, match="radius"):
        _native.active_entries(cost, psi, -0.1, 30)
    with pytest.raises(ValueError, match="x"):
        _native.ctransform_dot(cost, psi, torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="cost"):
        _native.ctransform_dot(cost.t(), torch.zeros(6, dtype=torch.float64), psi[:6])
    # every entry kept: 30 > 29 entries allowed gives None, the full list at 30
    assert _native.active_entries(cost, psi, 10.0, 29) is None
    ptr, cols, values = _native.active_entries(cost, psi, 10.0, 30)
    assert torch.equal(values, cost.reshape(-1)) and torch.equal(cols, torch.arange(5).repeat(6))
    # a NaN cost is never kept (both passes skip it): the list stays within its rows
    cost[2, 3] = float("nan")
    ptr, cols, values = _native.active_entries(cost, psi, 10.0, 30)
    assert int(ptr[-1]) == 29 and not bool(values.isnan().any())
