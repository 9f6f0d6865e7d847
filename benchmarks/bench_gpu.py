"""Timing table of the CUDA path, with the CPU of the same machine in the same process.

Stages (``--stages``, comma-separated; each is timed and written to ``--out`` as soon as
it ends, so a run stopped at a time limit keeps what it measured):

* ``env``: torch, CUDA, the GPU, the CPU threads;
* ``throughput``: the Monte-Carlo solver's inner loop (``ScoreKernel.argmax``: each
  sample's best cell among N = 10⁵ targets in d = 32), samples/s on CUDA and on the CPU,
  and their ratio;
* ``ot``: ``solve_semidiscrete`` on CUDA for 10⁵ clustered codes in d = 32 (1000
  clusters on 8-dimensional sheets, rescaled into the source cube U[-1,1]^32 as AE-OT
  does), with a time limit; its L1 cell-mass error checked independently on 2²³ fresh
  i.i.d. samples in two halves by ``bench_latent_ot.fresh_check`` (raw, the halves'
  disagreement as noise, the i.i.d. floor of an exact solution, and sqrt(raw² − noise²));
* ``relu``: exact cells of He-initialised 2-128³ and 2-256⁴ nets on [-1,1]² (the cell
  code runs on the CPU whatever the device).

The AE-OT fit on MNIST with Inception FID is ``bench_real_images.py --device cuda``;
``benchmarks/gpu_check.sh`` runs both and the CUDA tests.

Usage::

    python benchmarks/bench_gpu.py --out gpu.json [--stages env,throughput,ot,relu]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from aeot.ot import BoxUniform, SemiDiscreteProblem, solve_semidiscrete
from aeot.ot.kernels import ScoreKernel
from bench_latent_ot import fresh_check, mixture

STAGES = ("env", "throughput", "ot", "relu")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def stage_env(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "device": str(device),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            multiprocessors=props.multi_processor_count,
            cuda=torch.version.cuda,
        )
    return info


def _rate(kernel: ScoreKernel, h: torch.Tensor, m: int, device: torch.device) -> float:
    """Samples per second of ``kernel.argmax`` on m fresh samples (best of three)."""
    x = torch.rand(m, kernel.targets.shape[1], device=device) * 2 - 1
    kernel.argmax(x[: min(m, 4096)], h)  # warm-up
    best = math.inf
    for _ in range(3):
        _sync(device)
        start = time.perf_counter()
        kernel.argmax(x, h)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return m / best


def stage_throughput(device: torch.device, n: int = 100_000, d: int = 32) -> dict[str, Any]:
    y = mixture(n, d, 1000, 4, 0.3, sheet=8)  # bench_latent_ot's "stacked" codes
    h = torch.zeros(n)
    rows = {}
    runs = [("cpu", 2**15)] + ([(str(device), 2**22)] if device.type != "cpu" else [])
    for where, m in runs:
        dev = torch.device(where)
        kernel = ScoreKernel(y.to(dev))
        rate = _rate(kernel, h.to(dev), m, dev)
        rows[where] = {"samples": m, "samples_per_s": rate, "gflops": 2 * n * d * rate / 1e9}
        _log(f"argmax {where}: {rate:,.0f} samples/s ({rows[where]['gflops']:.0f} GFLOP/s)")
    if device.type == "cuda":
        rows["ratio_cuda_over_cpu"] = (
            rows[str(device)]["samples_per_s"] / rows["cpu"]["samples_per_s"]
        )
    return {"n_targets": n, "dim": d, **rows}


def stage_ot(device: torch.device, n: int, d: int, seconds: float, tol: float) -> dict:
    y = mixture(n, d, 1000, 4, 0.3, sheet=8)  # bench_latent_ot's "stacked" codes
    problem = SemiDiscreteProblem(y, source=BoxUniform(d, -1.0, 1.0))
    _sync(device)
    start = time.perf_counter()
    result = solve_semidiscrete(problem, tol=tol, time_limit=seconds, seed=0, device=str(device))
    _sync(device)
    elapsed = time.perf_counter() - start
    out = {
        "problem": f"{n:,} codes, 1000 clusters on 8-dim sheets, d={d}, source U[-1,1]^{d}",
        "method": result.method,
        "tol": tol,
        "time_limit_s": seconds,
        "seconds": elapsed,
        "iterations": len(result.errors),
        "samples": result.n_samples,
        "converged": bool(result.converged),
        "solver_errors": [float(e) for e in result.errors],
    }
    _log(
        f"OT: {out['iterations']} it, {elapsed:.1f} s, solver's last error {result.errors[-1]:.4f}"
    )
    out["check_samples"] = 2**23
    out.update(fresh_check(problem, result.h, 2**23, device))
    _log(f"OT check: L1 {out['raw']:.4f} (noise {out['noise']:.4f}, floor {out['floor']:.4f})")
    return out


def stage_relu() -> dict[str, Any]:
    from aeot.relu import decompose_slice, random_relu_net

    rows = {}
    for widths in ((2, 128, 128, 128), (2, 256, 256, 256, 256)):
        net = random_relu_net(widths, seed=0)
        start = time.perf_counter()
        cells = decompose_slice(net)
        seconds = time.perf_counter() - start
        name = "-".join(map(str, widths))
        rows[name] = {"cells": len(cells), "seconds": seconds, "cells_per_s": len(cells) / seconds}
        _log(f"cells {name}: {len(cells):,} in {seconds:.1f} s")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file of the results")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--device", default=None, help="torch device (default: cuda if any)")
    parser.add_argument("--ot-n", type=int, default=100_000)
    parser.add_argument("--ot-dim", type=int, default=32)
    parser.add_argument("--ot-seconds", type=float, default=120.0)
    parser.add_argument("--ot-tol", type=float, default=0.1)
    args = parser.parse_args(argv)
    stages = [s for s in args.stages.split(",") if s]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stages {unknown}; choose from {', '.join(STAGES)}")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    results: dict[str, Any] = {"command": "python benchmarks/bench_gpu.py " + " ".join(argv or [])}
    for stage in stages:
        _log(f"stage {stage}")
        start = time.perf_counter()
        try:
            if stage == "env":
                results[stage] = stage_env(device)
            elif stage == "throughput":
                results[stage] = stage_throughput(device)
            elif stage == "ot":
                results[stage] = stage_ot(
                    device, args.ot_n, args.ot_dim, args.ot_seconds, args.ot_tol
                )
            else:
                results[stage] = stage_relu()
        except Exception as exc:  # a failed stage is a result too; the others still run
            results[stage] = {"error": f"{type(exc).__name__}: {exc}"}
            _log(f"stage {stage} failed: {type(exc).__name__}: {exc}")
        results[stage]["stage_seconds"] = time.perf_counter() - start
        args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
