"""Benchmark: exact 2-D cell enumeration of He-initialised ReLU networks.

Networks: ``random_relu_net(widths, seed, bias_std)`` — ``Linear`` layers with
He-normal weights ``N(0, 2 / fan_in)`` (``kaiming_normal_``, fan-in, ReLU gain),
biases ``N(0, bias_std^2)`` (default 0.1) and a ReLU after every layer, so all
``64 + 64 + 64`` units of ``2-64-64-64`` are neurons.  Slice: the input plane,
box ``[-1, 1]^2``.

Baselines, in the same run:

* ``naive``: a straightforward per-polygon Python implementation of the same
  algorithm (Sutherland–Hodgman clipping of one polygon by one line at a time);
  it must find the same number of cells;
* ``grid``: distinct activation patterns on a ``res × res`` grid (a lower bound);
* ``regioncam``: the Regioncam package (Rust, float32), when it is importable; its
  face count is printed beside ours.

``--large`` adds 2-256-256-256-256 (about 4.4·10^5 cells, one run of each method).
The last column gives cells per second; the peak RSS of the process is printed at
the end (run ``--large`` alone to read it for that net).

Rows: ``exact`` counts cells (with their patterns and polygons); ``exact + affine
maps`` also materialises every cell's affine map and counts the distinct ones
(``count`` is then the number of affine pieces).

Timings are the minimum (and median) of ``--repeats`` runs; other jobs on the
machine make them noisy.

Run: ``python benchmarks/bench_relu_cells.py [--repeats 3] [--skip-naive] [--large]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import statistics
import time
from collections.abc import Callable

import numpy as np

from aeot.relu import as_relu_network, decompose_slice, grid_pattern_count, random_relu_net
from aeot.relu.network import ReluNetwork


def naive_decompose(network: ReluNetwork, box=(-1.0, 1.0, -1.0, 1.0), rtol: float = 1e-9) -> int:
    """Reference: clip each polygon by each neuron's line in plain Python; returns #cells."""
    s0, s1, t0, t1 = box
    scale = np.array([max(abs(s0), abs(s1)), max(abs(t0), abs(t1)), 1.0])
    # each item: (vertices list of (s, t), homogeneous map (3, d) to the current h)
    polys = [([(s0, t0), (s1, t0), (s1, t1), (s0, t1)], np.array([[1.0, 0], [0, 1.0], [0, 0]]))]
    for st in network.stages:
        new_polys = []
        for verts, hmap in polys:
            z = hmap @ st.weight.T
            z[2] += st.bias
            if not st.n_neurons:
                new_polys.append((verts, z))
                continue
            tol = rtol * (np.abs(z).T @ scale)
            pieces = [(verts, [])]
            for j in range(st.n_out):
                a, b, c = z[0, j], z[1, j], z[2, j]
                out = []
                for pv, bits in pieces:
                    vals = [a * s + b * t + c for s, t in pv]
                    sg = [1 if v > tol[j] else (-1 if v < -tol[j] else 0) for v in vals]
                    if not (1 in sg and -1 in sg):
                        out.append((pv, [*bits, 1 in sg]))
                        continue
                    pos, neg = [], []
                    k = len(pv)
                    for i in range(k):
                        nxt = (i + 1) % k
                        if sg[i] >= 0:
                            pos.append(pv[i])
                        if sg[i] <= 0:
                            neg.append(pv[i])
                        if sg[i] * sg[nxt] < 0:
                            f = vals[i] / (vals[i] - vals[nxt])
                            p = (
                                pv[i][0] + f * (pv[nxt][0] - pv[i][0]),
                                pv[i][1] + f * (pv[nxt][1] - pv[i][1]),
                            )
                            pos.append(p)
                            neg.append(p)
                    out.append((pos, [*bits, True]))
                    out.append((neg, [*bits, False]))
                pieces = out
            for pv, bits in pieces:
                slope = np.where(bits, 1.0, st.negative_slope)
                new_polys.append((pv, z * slope[None, :]))
        polys = new_polys
    return len(polys)


def regioncam_faces(net) -> int:
    """Faces found by Regioncam on [-1, 1]^2 for a ``Linear``/``ReLU`` sequential net."""
    import regioncam
    import torch

    cam = regioncam.Regioncam(1.0)  # the square [-1, 1]^2
    for module in net:
        if isinstance(module, torch.nn.Linear):
            weight = module.weight.detach().float().numpy().T.copy()
            cam.linear(weight, module.bias.detach().float().numpy().copy())
        elif isinstance(module, torch.nn.ReLU):
            cam.relu()
    return int(cam.num_faces)


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bias-std", type=float, default=0.1)
    parser.add_argument("--skip-naive", action="store_true", help="skip the slow baseline")
    parser.add_argument(
        "--count-seeds", type=int, default=5, help="also count 2-64-64-64 cells for seeds 0..k-1"
    )
    parser.add_argument(
        "--grid", type=int, nargs="*", default=[256, 512, 1024], help="grid resolutions"
    )
    parser.add_argument("--large", action="store_true", help="add 2-256-256-256-256")
    args = parser.parse_args()
    has_regioncam = importlib.util.find_spec("regioncam") is not None

    rows: list[tuple[str, ...]] = []

    def add(net: str, method: str, tmin: float, tmed: float, count: int, ref: float | None):
        ratio = "" if ref is None else f"{tmin / ref:.1f}x"
        rate = f"{count / tmin:,.0f}"
        rows.append((net, method, f"{tmin:.3f}", f"{tmed:.3f}", str(count), ratio, rate))

    nets = [[2, 64, 64, 64], [2, 128, 128, 128]] + ([[2, 256, 256, 256, 256]] * args.large)
    for widths in nets:
        name = "-".join(map(str, widths))
        net = random_relu_net(widths, seed=args.seed, bias_std=args.bias_std)
        network = as_relu_network(net)
        reps = (
            args.repeats if widths[1] <= 64 else 1 if widths[1] > 128 else max(1, args.repeats - 1)
        )
        tmin, tmed, dec = timed(lambda network=network: decompose_slice(network), reps)
        add(name, "exact (vectorised)", tmin, tmed, dec.n_cells, None)
        ref = tmin
        if has_regioncam:
            rmin, rmed, count = timed(lambda net=net: regioncam_faces(net), reps)
            add(name, "regioncam (float32)", rmin, rmed, count, ref)
        pmin, pmed, pieces = timed(
            lambda network=network: decompose_slice(network).n_affine_pieces, reps
        )
        add(name, "exact + affine maps", pmin, pmed, pieces, ref)
        if widths[1] <= 64:
            for res in args.grid:
                gmin, gmed, count = timed(
                    lambda res=res, network=network: grid_pattern_count(network, resolution=res),
                    1,
                )
                add(name, f"grid {res}x{res}", gmin, gmed, count, ref)
            if not args.skip_naive:
                nmin, nmed, count = timed(lambda network=network: naive_decompose(network), 1)
                add(name, "naive per-polygon", nmin, nmed, count, ref)
                assert count == dec.n_cells, (count, dec.n_cells)

    counts = [
        decompose_slice(random_relu_net([2, 64, 64, 64], seed=k, bias_std=args.bias_std)).n_cells
        for k in range(args.count_seeds)
    ]
    header = ("network", "method", "t_min [s]", "t_med [s]", "count", "time / exact", "count/s")
    widths_col = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("{:<" + str(w) + "}" for w in widths_col)
    print(f"seed {args.seed}, bias std {args.bias_std}, box [-1, 1]^2, repeats {args.repeats}")
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths_col)))
    for r in rows:
        print(line.format(*r))
    if counts:
        print(
            f"2-64-64-64 cells for seeds 0..{len(counts) - 1}: {counts} "
            f"(mean {statistics.mean(counts):.0f})"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
