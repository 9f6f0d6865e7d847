"""Probe aeot with hostile inputs and faults, and tally what happens (issue 20's report).

    python benchmarks/probe_hostile.py --out probe.json [--only CATEGORY ...] [--list]

Every case runs in its own child process with a wall-clock timeout. To keep a few
hundred cases fast, the parent imports torch and aeot once (running nothing: no
native kernel is loaded, no thread pool started) and forks one child per case, so a
case costs milliseconds of start-up instead of the ~5 s of a fresh interpreter; a
segfault, an abort or a SIGBUS kills only that child. A few cases (``fresh``) run
the real ``aeot`` entry point in a fresh interpreter as a check on the forked
emulation. Each outcome is classified automatically:

``clear_error``
    A Python exception of an expected type (ValueError, TypeError,
    FileNotFoundError, FloatingPointError) raised by aeot's own code, whose message matches what the
    case expects it to name; for the CLI: exit code 2, no traceback, and such a
    message.
``correct``
    A result checked against an independent expectation: brute-force scores in
    float64 numpy for assign / potential / topk / transport, cell masses measured
    by brute force on fresh numpy samples for solves, byte-for-byte comparison with
    the saved originals for model folders, a marker file for code that must not run.
    Python's own check of a call's keywords (``TypeError: f() got an unexpected
    keyword argument 'x'``, raised by the interpreter or a dataclass's ``__init__``)
    counts as aeot's: it names the argument.
``crash``
    A signal, an uncaught traceback from the CLI (exit 1), an exception of an
    internal type (RuntimeError, IndexError, KeyError, ...), or an expected type
    raised from inside torch / numpy / safetensors rather than by an aeot check.
``hang``
    The child did not finish within its timeout.
``silent_wrong``
    A result that disagrees with the expectation, exit code 0 on a corrupt model,
    code from a model file that ran, or hostile input accepted without a check.
``misleading_error``
    A clear-looking error whose message does not name the problem (or a refusal of
    valid input); reported separately.
``probe_error``
    A bug in this probe (an exception raised inside this file): never hidden.

The JSON written to ``--out`` lists every case: id, category, outcome, detail, seconds.
"""

# ruff: noqa: E501  (the case tables keep one case per line)
from __future__ import annotations

import os

# one thread per child: the machine is shared, and no thread pool may exist at fork time
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import contextlib
import json
import pickle
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import aeot
import aeot.cli
import aeot.ot._native as native
from aeot._io import load_tensors, save_tensors, write_manifest
from aeot.ot import (
    BoxUniform,
    CallableSource,
    Gaussian,
    SemiDiscreteProblem,
    estimate_masses,
    solve_semidiscrete,
)
from aeot.ot.exact2d import solve_exact_2d
from aeot.pipeline import AEOT

PACKAGE_DIR = os.path.dirname(os.path.abspath(aeot.__file__))
THIS_FILE = os.path.abspath(__file__)
OUTCOMES = (
    "clear_error",
    "correct",
    "hang",
    "crash",
    "silent_wrong",
    "misleading_error",
    "probe_error",
)
EXPECTED = (ValueError, TypeError, FileNotFoundError, FloatingPointError)
MODEL_FILES = ("config.json", "ot.safetensors", "autoencoder.safetensors")


# ====================================================================== framework


@dataclass
class Verdict:
    outcome: str
    detail: str = ""


def ok(detail: str = "") -> Verdict:
    return Verdict("correct", detail)


def wrong(detail: str) -> Verdict:
    return Verdict("silent_wrong", detail)


def judge(good: bool, detail: str) -> Verdict:
    return ok(detail) if good else wrong(detail)


@dataclass
class Case:
    id: str
    category: str
    run: Callable[[Ctx], Verdict | None]
    expect: str | None = None  # regex an error message must match to be a clear error
    errors: tuple = EXPECTED
    timeout: float = 60.0
    valid: bool = False  # valid input: an error is a misleading refusal
    user_error: bool = False  # an exception of the probe's own callback, passed through


@dataclass
class CliRun:
    code: int
    output: str


@dataclass
class Ctx:
    root: Path
    log: Path | None = None
    warnings: list = field(default_factory=list)
    _n: int = 0

    def tmp(self) -> Path:
        self._n += 1
        return Path(tempfile.mkdtemp(prefix=f"c{self._n}-", dir=self.root / "work"))

    def model(self, name: str) -> Path:
        """A private copy of fixture model ``name``."""
        target = self.tmp() / "model"
        shutil.copytree(self.root / "fixtures" / name, target)
        return target

    def fixture(self, name: str) -> Path:
        return self.root / "fixtures" / name

    def warned(self, pattern: str = "") -> bool:
        return any(re.search(pattern, str(w.message), re.I | re.S) for w in self.warnings)

    def cli(self, *args) -> CliRun:
        """The ``aeot`` CLI run in this (child) process, as a fresh interpreter would run
        it: SystemExit gives the exit code, anything else a traceback and exit code 1."""
        sys.stdout.flush()
        sys.stderr.flush()
        start = os.lseek(1, 0, os.SEEK_CUR)
        sys.argv = ["aeot", *[str(a) for a in args]]
        try:
            aeot.cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        with open(self.log, "rb") as handle:
            handle.seek(start)
            output = handle.read().decode(errors="replace")
        return CliRun(code, output)


def _innermost_file(exc: BaseException) -> str:
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return os.path.abspath(tb.tb_frame.f_code.co_filename)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def classify_exception(exc: BaseException, case: Case) -> Verdict:
    where = _innermost_file(exc)
    message = str(exc)
    described = f"{type(exc).__name__}: {_short(message)}"
    if where == THIS_FILE and case.user_error:
        return Verdict("clear_error", f"the source's own {described} passed through")
    if where == THIS_FILE:
        return Verdict("probe_error", f"{described} [{traceback.format_exc(limit=-3)}]")
    if not isinstance(exc, case.errors):
        return Verdict("crash", f"internal error type {described} (raised in {where})")
    signature = isinstance(exc, TypeError) and "unexpected keyword argument" in message
    if not where.startswith(PACKAGE_DIR) and not (signature and "site-packages" not in where):
        return Verdict("crash", f"raw error from {where}: {described}")
    if case.valid:
        return Verdict("misleading_error", f"valid input refused: {described}")
    if case.expect and not re.search(case.expect, message, re.I | re.S):
        return Verdict("misleading_error", f"message does not name /{case.expect}/: {described}")
    return Verdict("clear_error", described)


def judge_cli(
    run: CliRun,
    expect: str | None,
    check: Callable[[], Verdict] | None = None,
    valid: bool = False,
) -> Verdict:
    text = " ".join(re.sub(r"[\u2500-\u257f]", " ", run.output).split())  # typer's boxes
    tail = _short(text[-400:])
    if "Traceback (most recent call last)" in run.output or run.code not in (0, 2):
        return Verdict("crash", f"exit {run.code}: {tail}")
    if run.code == 2:
        if valid:
            return Verdict("misleading_error", f"valid input refused: {tail}")
        if expect and not re.search(expect, text, re.I | re.S):
            return Verdict("misleading_error", f"exit 2 without /{expect}/: {tail}")
        return Verdict("clear_error", f"exit 2: {tail}")
    if check is None:
        return wrong(f"exit 0 on hostile input: {tail}")
    return check()


def _child_main(case: Case, ctx: Ctx, write_fd: int) -> None:
    os.setpgid(0, 0)
    fd = os.open(ctx.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.chdir(ctx.tmp())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ctx.warnings = caught
        try:
            verdict = case.run(ctx)
            if verdict is None:
                verdict = wrong("hostile input accepted without an error or a check")
        except BaseException as exc:
            verdict = classify_exception(exc, case)
    sys.stdout.flush()
    sys.stderr.flush()
    payload = json.dumps({"outcome": verdict.outcome, "detail": verdict.detail}).encode()
    os.write(write_fd, payload)
    os.close(write_fd)
    os._exit(0)


def run_case(case: Case, root: Path) -> dict:
    """Fork, run ``case`` in the child, classify; a timeout kills the child's group."""
    log = root / "logs" / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', case.id)}.log"
    ctx = Ctx(root=root, log=log)
    read_fd, write_fd = os.pipe()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_fd)
        try:
            _child_main(case, ctx, write_fd)
        finally:
            os._exit(3)
    os.close(write_fd)
    data = b""
    hung = False
    deadline = start + case.timeout
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            hung = True
            break
        ready, _, _ = select.select([read_fd], [], [], remaining)
        if ready:
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            data += chunk
    if hung:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(read_fd)
    seconds = time.perf_counter() - start
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # grandchildren a case left behind
    tail = ""
    with contextlib.suppress(OSError):
        tail = _short(log.read_bytes()[-600:].decode(errors="replace"))
    if hung:
        result = {"outcome": "hang", "detail": f"no answer within {case.timeout:.0f} s"}
    elif os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        result = {"outcome": "crash", "detail": f"killed by {name}: {tail}"}
    elif not data:
        result = {
            "outcome": "crash",
            "detail": f"exit {os.WEXITSTATUS(status)} without a report: {tail}",
        }
    else:
        result = json.loads(data.decode())
    result["detail"] = _short(result["detail"], 240)
    return {"id": case.id, "category": case.category, **result, "seconds": round(seconds, 3)}


# ============================================================ independent checks


def f64(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def _scores(y: np.ndarray, h: np.ndarray, x: np.ndarray) -> np.ndarray:
    return x @ y.T + h


def _margin(y, h, x, dtype: torch.dtype) -> np.ndarray:
    """Per-row rounding allowance for scores computed in ``dtype``."""
    eps = torch.finfo(dtype).eps
    return 64 * eps * ((np.abs(x) @ np.abs(y).T).max(1) + np.abs(h).max() + 1e-300)


def check_assign(result, x, cells) -> Verdict:
    y, h, xs = f64(result.targets), f64(result.h), f64(x).reshape(-1, result.targets.shape[1])
    cells = cells.detach().cpu().numpy() if isinstance(cells, torch.Tensor) else np.asarray(cells)
    if cells.shape != (xs.shape[0],):
        return wrong(f"assign gave shape {cells.shape} for {xs.shape[0]} points")
    if cells.min() < 0 or cells.max() >= y.shape[0]:
        return wrong(f"assign gave indices outside [0, {y.shape[0]})")
    s = _scores(y, h, xs)
    best = s.max(1)
    got = s[np.arange(len(cells)), cells]
    bad = int((best - got > _margin(y, h, xs, result.targets.dtype)).sum())
    return judge(bad == 0, f"{bad} of {len(cells)} points in a cell scoring below the best")


def check_potential(result, x, values) -> Verdict:
    y, h, xs = f64(result.targets), f64(result.h), f64(x).reshape(-1, result.targets.shape[1])
    v = f64(values)
    if v.shape != (xs.shape[0],) or not np.isfinite(v).all():
        return wrong(f"potential gave shape {v.shape} / non-finite values")
    err = np.abs(_scores(y, h, xs).max(1) - v)
    bad = int((err > _margin(y, h, xs, result.targets.dtype)).sum())
    return judge(bad == 0, f"{bad} potentials off (max error {err.max():.3g})")


def check_topk(result, x, k: int, out) -> Verdict:
    values, cells = f64(out[0]), out[1].detach().cpu().numpy()
    y, h, xs = f64(result.targets), f64(result.h), f64(x).reshape(-1, result.targets.shape[1])
    m = xs.shape[0]
    if values.shape != (m, k) or cells.shape != (m, k):
        return wrong(f"topk({k}) gave shapes {values.shape}, {cells.shape}")
    s = _scores(y, h, xs)
    expected = -np.sort(-s, axis=1)[:, :k]
    margin = _margin(y, h, xs, result.targets.dtype)[:, None]
    if cells.min() < 0 or cells.max() >= y.shape[0]:
        return wrong("topk gave indices out of range")
    got = np.take_along_axis(s, cells, 1)
    distinct = all(len(set(row)) == k for row in cells[: min(m, 2000)].tolist())
    bad_v = int((np.abs(values - expected) > margin).any(1).sum())
    bad_c = int((np.abs(got - expected) > margin).any(1).sum())
    return judge(
        bad_v == 0 and bad_c == 0 and distinct,
        f"topk({k}): {bad_v} rows with wrong values, {bad_c} with wrong cells, distinct={distinct}",
    )


def _source_samples(source, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if isinstance(source, BoxUniform):
        low, high = np.asarray(source.low, float), np.asarray(source.high, float)
        return low + (high - low) * rng.random((n, source.dim))
    if isinstance(source, Gaussian):
        return np.asarray(source.mean, float) + source.std * rng.standard_normal((n, source.dim))
    return f64(source.sample(n, seed=seed, qmc=False, dtype=torch.float64))


def independent_l1(result, n: int = 2**17, seed: int = 2024) -> tuple[float, float]:
    """Σ|μ(W_i) − ν_i| measured by brute force on fresh numpy samples, and its noise."""
    y, h, w = f64(result.targets), f64(result.h), f64(result.weights)
    x = _source_samples(result.problem.source, n, seed)
    counts = np.zeros(len(w))
    for part in np.array_split(x, max(1, n // 8192)):
        counts += np.bincount(_scores(y, h, part).argmax(1), minlength=len(w))
    l1 = float(np.abs(counts / n - w).sum())
    return l1, 1.2 * float(np.sqrt(len(w) / n)) + 1e-3


STOP_WARNING = r"converg|stall|stagnat|toleran|separate|precision|noise"


def check_solve(result, tol: float, ctx: Ctx, *, max_iter: int | None = None) -> Verdict:
    """A Monte-Carlo or exact solve: finite h, masses measured independently within the
    tolerance when it claims convergence, an honest reported error, and a warning when it
    stops unconverged before its iteration budget ``max_iter`` (None: any stop warns)."""
    h = f64(result.h)
    if h.shape != (result.problem.n_targets,) or not np.isfinite(h).all():
        return wrong(f"h has shape {h.shape} or non-finite entries")
    l1, noise = independent_l1(result)
    reported = result.error
    note = f"converged={result.converged} reported={reported:.4g} independent={l1:.4g}"
    if result.converged and l1 > tol + 4 * noise:
        return wrong(f"claims convergence but {note}")
    if np.isfinite(reported) and abs(reported - l1) > 0.1 + 0.25 * l1 + 4 * noise:
        return wrong(f"reported error lies: {note}")
    spent = max_iter is not None and result.n_iter >= max_iter
    if not result.converged and not spent and not ctx.warned(STOP_WARNING):
        return wrong(f"stopped unconverged without a warning: {note}")
    return ok(note)


def check_exact(result, ctx: Ctx, max_iter: int = 100) -> Verdict:
    verdict = check_solve(result, 1e-3, ctx, max_iter=max_iter)
    if verdict.outcome != "correct":
        return verdict
    cm, w = f64(result.cell_masses), f64(result.weights)
    if result.converged and np.abs(cm - w).sum() > 1e-6:
        return wrong(
            f"exact solve claims convergence with reported masses off by {np.abs(cm - w).sum():.3g}"
        )
    return verdict


# ================================================================ case builders


def _points(n: int, d: int = 2, seed: int = 0, dtype=torch.float64, low=0.05, high=0.95):
    """``n`` distinct points that stay distinct once cast to ``dtype``."""
    rng = np.random.default_rng(seed)
    out: list[tuple] = []
    seen = set()
    while len(out) < n:
        raw = torch.from_numpy(rng.uniform(low, high, (4 * n, d)))
        if dtype in (torch.int32, torch.int64, torch.uint8, torch.int16):
            raw = (raw * 200).round()
        cast = (
            raw.to(dtype) if dtype not in (torch.bool, torch.complex64, torch.complex128) else raw
        )
        for row in cast.tolist():
            key = tuple(row)
            if key not in seen and len(out) < n:
                seen.add(key)
                out.append(key)
    if dtype in (torch.bool, torch.complex64, torch.complex128):
        return torch.tensor(out).to(dtype)
    return torch.tensor(out, dtype=torch.float64).to(dtype)


def _solved(targets, seed: int = 0, max_iter: int = 8, **kw):
    problem = SemiDiscreteProblem(targets, **kw)
    return solve_semidiscrete(problem, tol=0.05, max_iter=max_iter, seed=seed)


def _queries(m: int, d: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).uniform(-0.1, 1.1, (m, d)))


TORCH_TARGET_DTYPES = [
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.int32,
    torch.int64,
    torch.uint8,
    torch.bool,
    torch.complex64,
    torch.complex128,
]
NUMPY_TARGET_DTYPES = ["float16", "float32", "float64", "int64", "bool", "complex128"]
BAD_DTYPE = r"real numbers|dtype"


def _name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def _targets_of(dtype, n: int = 20, seed: int = 0):
    """(value to pass, float64 values it stands for or None when it must be refused)."""
    if isinstance(dtype, str):
        if dtype == "bool":
            return np.ones((n, 2), dtype=bool), None
        if dtype.startswith("complex"):
            return np.ones((n, 2), dtype=dtype) * (1 + 1j), None
        like = {"float16": torch.float16, "float32": torch.float32, "int64": torch.int64}
        base = _points(n, seed=seed, dtype=like.get(dtype, torch.float64))
        value = base.double().numpy().astype(dtype)
        return value, value.astype(np.float64)
    t = _points(n, seed=seed, dtype=dtype)
    if dtype == torch.bool or dtype.is_complex:
        return t, None
    return t, t.double().numpy()


def dtype_cases() -> list[Case]:
    cases = []
    # ------------------------------------------------ target dtypes through every entry point
    for dtype in TORCH_TARGET_DTYPES + NUMPY_TARGET_DTYPES:
        tag = f"{'np.' if isinstance(dtype, str) else ''}{_name(dtype)}"
        refused = _targets_of(dtype)[1] is None
        ops = ["problem", "solve", "exact2d"] if refused else [
            "problem", "solve", "assign100k", "potential", "topk1", "topk2", "topk3", "topk5",
            "transport", "exact2d", "l1_error",
        ]  # fmt: skip
        for op in ops:

            def run(ctx, dtype=dtype, op=op):
                value, expected = _targets_of(dtype)
                if op == "problem":
                    p = SemiDiscreteProblem(value)
                    good = p.targets.dtype in (torch.float32, torch.float64) and np.array_equal(
                        f64(p.targets), expected
                    )
                    return judge(good, f"targets kept as {p.targets.dtype}, values exact: {good}")
                if op == "exact2d":
                    return check_exact(solve_exact_2d(SemiDiscreteProblem(value)), ctx)
                if op == "solve":
                    problem = SemiDiscreteProblem(value)
                    r = solve_semidiscrete(problem, tol=0.05, max_iter=40, seed=0)
                    return check_solve(r, 0.05, ctx, max_iter=40)
                r = _solved(value)
                x = _queries(100_000 if op == "assign100k" else 4000)
                if op == "assign100k":
                    return check_assign(r, x, r.assign(x))
                if op == "potential":
                    return check_potential(r, x, r.potential(x))
                if op.startswith("topk"):
                    k = int(op[4:])
                    return check_topk(r, x, k, r.topk(x, k))
                if op == "transport":
                    moved = f64(r.transport(x))
                    cells = np.array(
                        [np.flatnonzero((f64(r.targets) == row).all(1))[0] for row in moved[:500]]
                    )
                    return check_assign(r, x[:500], cells)
                if op == "l1_error":
                    l1, noise = independent_l1(r)
                    got = r.l1_error(2**17)
                    return judge(
                        abs(got - l1) <= 4 * noise, f"l1_error {got:.4g} vs independent {l1:.4g}"
                    )
                raise AssertionError(op)

            cases.append(
                Case(f"dtype/targets-{tag}/{op}", "dtype", run, expect=BAD_DTYPE, valid=not refused)
            )
    # ------------------------------------------------ query dtypes against f32 / f64 results
    queries = [
        torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int64, torch.int32,
        torch.uint8, torch.bool, torch.complex64, "np.float16", "np.int64", "np.bool", "np.complex64",
    ]  # fmt: skip
    for target_dtype in (torch.float32, torch.float64):
        for qdtype in queries:
            for op in ("assign", "potential", "topk3"):
                refused = "bool" in str(qdtype) or "complex" in str(qdtype)

                def run(ctx, target_dtype=target_dtype, qdtype=qdtype, op=op):
                    r = _solved(_points(20, dtype=target_dtype))
                    base = _queries(3000, seed=5)
                    if isinstance(qdtype, str):
                        kind = qdtype[3:]
                        x = (
                            (base * 3).round().numpy().astype(kind)
                            if kind != "float16"
                            else base.numpy().astype(kind)
                        )
                    elif qdtype.is_floating_point:
                        x = base.to(qdtype)
                    else:
                        x = (base * 3).round().to(qdtype)
                    if op == "assign":
                        return check_assign(r, x, r.assign(x))
                    if op == "potential":
                        return check_potential(r, x, r.potential(x))
                    return check_topk(r, x, 3, r.topk(x, 3))

                name = f"dtype/query-{_name(qdtype)}-vs-{_name(target_dtype)}/{op}"
                cases.append(
                    Case(name, "dtype", run, expect=r"x .*(real numbers|dtype)", valid=not refused)
                )
    # ------------------------------------------------ h0 and weights of every dtype
    for hdtype in (
        torch.float16,
        torch.bfloat16,
        torch.int64,
        torch.bool,
        torch.complex64,
        torch.float64,
    ):
        for sdtype in (torch.float32, torch.float64):
            refused = hdtype in (torch.bool, torch.complex64)

            def run(ctx, hdtype=hdtype, sdtype=sdtype):
                problem = SemiDiscreteProblem(_points(12, seed=3))
                h0 = torch.zeros(12).to(hdtype)
                r = solve_semidiscrete(problem, h0=h0, tol=0.05, max_iter=40, seed=0, dtype=sdtype)
                return check_solve(r, 0.05, ctx, max_iter=40)

            cases.append(Case(f"dtype/h0-{_name(hdtype)}/solve-{_name(sdtype)}", "dtype", run,
                              expect=r"h0.*(real numbers|dtype)", valid=not refused))  # fmt: skip
    for wdtype in (
        torch.float16,
        torch.bfloat16,
        torch.float32,
        torch.int64,
        torch.bool,
        torch.complex64,
    ):
        refused = wdtype in (
            torch.int64,
            torch.bool,
            torch.complex64,
            torch.float16,
            torch.bfloat16,
        )

        def run(ctx, wdtype=wdtype):
            w = torch.full((8,), 1 / 8, dtype=torch.float64)
            if wdtype in (torch.float16, torch.bfloat16):
                w = torch.tensor([0.1] * 7 + [0.3], dtype=torch.float64)
            p = SemiDiscreteProblem(_points(8, seed=4), w.to(wdtype))
            exact = wdtype == torch.float32 and abs(float(p.weights.sum()) - 1) < 1e-6
            return judge(exact, f"weights {wdtype} accepted as {p.weights.tolist()}")

        cases.append(Case(f"dtype/weights-{_name(wdtype)}", "dtype", run,
                          expect=r"weights.*(real numbers|dtype|sum to 1|must)",
                          valid=wdtype == torch.float32))  # fmt: skip
    return cases


# ---------------------------------------------------------------------- values


def _bad_targets():
    y = _points(10).numpy()
    nan, inf = y.copy(), y.copy()
    nan[3, 1] = np.nan
    inf[0, 0] = -np.inf
    t = torch.from_numpy(y)
    return {
        "nan": (nan, r"targets .*NaN"),
        "inf": (inf, r"targets .*(NaN|infinite)"),
        "empty-0x2": (np.zeros((0, 2)), r"targets is empty"),
        "empty-3x0": (np.zeros((3, 0)), r"targets is empty"),
        "1d": (y[:, 0], r"targets must have 2 dimensions"),
        "3d": (y[None], r"targets must have 2 dimensions"),
        "scalar": (1.0, r"targets must have 2 dimensions"),
        "ragged": ([[0.1, 0.2], [0.3]], r"targets must be an array"),
        "strings": ([["a", "b"]], r"targets must hold real numbers"),
        "none": (None, r"targets must"),
        "dict": ({"a": 1}, r"targets must"),
        "object": (np.array([[0.1, None]], dtype=object), r"targets must"),
        "duplicate": (np.vstack([y, y[2:3]]), r"duplicate targets at rows \[2, 10\]"),
        "meta": (torch.empty(3, 2, device="meta"), r"meta"),
        "f64-1e308": (y * 1e308, r"targets|range|overflow"),
        "f32-3e38": (torch.from_numpy(y * 3e38).float(), r"targets|range|overflow"),
        "int-2^60": (np.array([[2**60, 0], [0, 1]], dtype=np.int64), r"beyond 2\^53"),
        "sparse": (t.to_sparse(), r"targets|sparse|layout"),
    }


def value_cases() -> list[Case]:
    cases = []
    for name, (value, expect) in _bad_targets().items():

        def run(ctx, value=value):
            p = SemiDiscreteProblem(value)
            r = solve_semidiscrete(p, tol=0.05, max_iter=40, seed=0)
            return check_solve(r, 0.05, ctx, max_iter=40)

        cases.append(Case(f"values/targets-{name}", "values", run, expect=expect))
    # scales that must be solved correctly (power cells are scale-invariant)
    for dtype in (torch.float32, torch.float64):
        for scale in (1e-300, 1e-38, 1e-20, 1e-8, 1e8, 1e20, 1e35, 1e150, 1e300):
            if dtype == torch.float32 and (scale < 1e-30 or scale > 1e35):
                continue
            for solver in ("mc", "exact2d"):

                def run(ctx, dtype=dtype, scale=scale, solver=solver):
                    y = (_points(12, seed=6) * scale).to(dtype)
                    p = SemiDiscreteProblem(y)
                    if solver == "exact2d":
                        return check_exact(solve_exact_2d(p), ctx)
                    r = solve_semidiscrete(p, tol=0.05, max_iter=60, seed=0, dtype=dtype)
                    return check_solve(r, 0.05, ctx, max_iter=60)

                cases.append(Case(f"values/scale-{scale:g}-{_name(dtype)}/{solver}", "values", run,
                                  expect=r"targets|range|precision|scale", timeout=90))  # fmt: skip
    # float64 diagnostics at extreme magnitudes (issue item 7)
    for label, make in (
        ("1e-300", lambda y: y * 1e-300),
        ("1e8+U", lambda y: y + 1e8),
        ("-1e8+U", lambda y: y - 1e8),
    ):

        def run(ctx, make=make):
            y = make(_points(10, seed=7).double())
            r = solve_exact_2d(SemiDiscreteProblem(y), tol=1e-8)
            l1, noise = independent_l1(r)
            got = r.l1_error(2**17)
            masses = f64(r.measure_masses(2**17))
            good = r.converged and abs(got - l1) <= 4 * noise and abs(masses.sum() - 1) < 1e-9
            return judge(good, f"l1_error {got:.4g}, independent {l1:.4g}, converged {r.converged}")

        cases.append(Case(f"values/diagnostics-f64-{label}", "values", run, valid=True))
    # non-contiguous and requires_grad inputs: correct answers
    for what in ("targets-transposed", "targets-strided", "targets-grad", "weights-strided",
                 "weights-grad", "x-transposed", "x-strided", "x-grad", "h0-grad", "h0-strided",
                 "x-1d-one-point", "x-channels-last"):  # fmt: skip

        def run(ctx, what=what):
            y = _points(10, seed=8)
            w = torch.full((10,), 0.1, dtype=torch.float64)
            if what == "targets-transposed":
                y = y.t().contiguous().t()
            elif what == "targets-strided":
                y = torch.stack([y, y], 1).reshape(20, 2)[::2]
            elif what == "targets-grad":
                y = y.clone().requires_grad_(True)
            elif what == "weights-strided":
                w = torch.stack([w, w], 1).reshape(-1)[::2]
            elif what == "weights-grad":
                w = w.clone().requires_grad_(True)
            h0 = None
            if what == "h0-grad":
                h0 = torch.zeros(10, requires_grad=True)
            elif what == "h0-strided":
                h0 = torch.zeros(20)[::2]
            p = SemiDiscreteProblem(y, w)
            r = solve_semidiscrete(p, tol=0.05, max_iter=40, seed=0, h0=h0)
            v = check_solve(r, 0.05, ctx, max_iter=40)
            if v.outcome != "correct" or not what.startswith("x-"):
                return v
            x = _queries(3000)
            if what == "x-transposed":
                x = x.t().contiguous().t()
            elif what == "x-strided":
                x = torch.stack([x, x], 1).reshape(6000, 2)[::2]
            elif what == "x-grad":
                x = x.clone().float().requires_grad_(True)
            elif what == "x-1d-one-point":
                x = x[0]
            elif what == "x-channels-last":
                x = x.t()[:, :].t()
            out = r.assign(x)
            return check_assign(r, x.detach(), out)

        cases.append(Case(f"values/{what}", "values", run, valid=True))
    # bad queries, heights, weights, k and sample counts: named errors
    bad_calls = {
        "x-nan": (lambda r: r.assign(np.array([[0.1, np.nan]])), r"x contains .*NaN"),
        "x-inf": (lambda r: r.potential(np.array([[np.inf, 0.1]])), r"x contains .*(NaN|infinite)"),
        "x-empty": (lambda r: r.assign(np.zeros((0, 2))), r"x is empty"),
        "x-wrong-dim": (lambda r: r.assign(np.zeros((5, 3))), r"x must have shape"),
        "x-3d": (lambda r: r.assign(np.zeros((5, 2, 1))), r"x must have shape"),
        "x-scalar": (lambda r: r.assign(0.5), r"x must have shape"),
        "x-strings": (lambda r: r.assign([["a", "b"]]), r"x must hold real numbers"),
        "x-ragged": (lambda r: r.assign([[0.1], [0.1, 0.2]]), r"x must be an array"),
        "x-meta": (lambda r: r.assign(torch.empty(3, 2, device="meta")), r"meta"),
        "x-f32-overflow": (lambda r: _solved(r.targets.float()).assign(np.full((3, 2), 1e300)), r"x .*(range|overflow)"),
        "topk-0": (lambda r: r.topk(_queries(5), 0), r"k must be >= 1"),
        "topk--1": (lambda r: r.topk(_queries(5), -1), r"k must be >= 1"),
        "topk-N+1": (lambda r: r.topk(_queries(5), 11), r"k .*(10|targets|at most)"),
        "topk-1000": (lambda r: r.topk(_queries(5), 1000), r"k .*(10|targets|at most)"),
        "topk-2.5": (lambda r: r.topk(_queries(5), 2.5), r"k must be an integer"),
        "topk-str": (lambda r: r.topk(_queries(5), "3"), r"k must be an integer"),
        "topk-None": (lambda r: r.topk(_queries(5), None), r"k must be an integer"),
        "topk-True": (lambda r: r.topk(_queries(5), True), r"k must be an integer"),
        "measure-0": (lambda r: r.measure_masses(0), r"n_samples"),
        "measure--5": (lambda r: r.measure_masses(-5), r"n_samples"),
        "measure-2.5": (lambda r: r.measure_masses(2.5), r"n_samples"),
        "measure-str": (lambda r: r.measure_masses("100"), r"n_samples"),
        "l1-seed--1": (lambda r: r.l1_error(1000, seed=-1), r"seed"),
        "l1-seed-str": (lambda r: r.l1_error(1000, seed="x"), r"seed"),
        "estimate-h-short": (lambda r: estimate_masses(r.problem, np.zeros(9), 100), r"h has 9"),
        "estimate-h-nan": (lambda r: estimate_masses(r.problem, np.full(10, np.nan), 100), r"h contains"),
        "estimate-h-2d": (lambda r: estimate_masses(r.problem, np.zeros((10, 1)), 100), r"h must have 1"),
        "estimate-batch-0": (lambda r: estimate_masses(r.problem, np.zeros(10), 100, batch=0), r"batch"),
        "estimate-dtype-f16": (lambda r: estimate_masses(r.problem, np.zeros(10), 100, dtype=torch.float16), r"dtype"),
        "estimate-dtype-int": (lambda r: estimate_masses(r.problem, np.zeros(10), 100, dtype=torch.int64), r"dtype"),
        "estimate-not-problem": (lambda r: estimate_masses(np.eye(2), np.zeros(2), 10), r"SemiDiscreteProblem"),
        "h0-nan": (lambda r: solve_semidiscrete(r.problem, h0=np.full(10, np.nan)), r"h0 contains"),
        "h0-short": (lambda r: solve_semidiscrete(r.problem, h0=np.zeros(9)), r"h0 has 9"),
        "h0-2d": (lambda r: solve_semidiscrete(r.problem, h0=np.zeros((10, 2))), r"h0 must have 1"),
        "h0-str": (lambda r: solve_semidiscrete(r.problem, h0="zeros"), r"h0 must"),
        "weights-nan": (lambda r: SemiDiscreteProblem(r.targets, np.full(10, np.nan)), r"weights contains"),
        "weights-negative": (lambda r: SemiDiscreteProblem(r.targets, np.r_[-0.1, np.full(9, 1.1 / 9)]), r"weights must be positive"),
        "weights-zero": (lambda r: SemiDiscreteProblem(r.targets, np.r_[0.0, np.full(9, 1 / 9)]), r"weights must be positive"),
        "weights-sum": (lambda r: SemiDiscreteProblem(r.targets, np.full(10, 0.2)), r"weights must sum to 1"),
        "weights-short": (lambda r: SemiDiscreteProblem(r.targets, np.full(9, 1 / 9)), r"weights has 9"),
        "weights-2d": (lambda r: SemiDiscreteProblem(r.targets, np.full((10, 1), 0.1)), r"weights must have 1"),
        "weights-empty": (lambda r: SemiDiscreteProblem(r.targets, []), r"weights"),
        "source-dim": (lambda r: SemiDiscreteProblem(r.targets, source=BoxUniform(3)), r"source has dimension 3"),
        "source-not-source": (lambda r: SemiDiscreteProblem(r.targets, source="uniform"), r"source must be"),
        "result-h-short": (lambda r: type(r)(r.problem, np.zeros(9), r.cell_masses), r"h has 9"),
    }  # fmt: skip
    for name, (call, expect) in bad_calls.items():

        def run(ctx, call=call):
            r = _solved(_points(10, seed=9))
            call(r)

        cases.append(Case(f"values/{name}", "values", run, expect=expect))
    return cases


# ---------------------------------------------------------------- near duplicates


def near_duplicate_cases() -> list[Case]:
    cases = []
    for gap in (1e-4, 1e-6, 1e-9, 1e-12, 1e-15):
        for tdtype in (torch.float32, torch.float64):
            for sdtype in (torch.float32, torch.float64):

                def run(ctx, gap=gap, tdtype=tdtype, sdtype=sdtype):
                    y = _points(20, seed=10)
                    y = torch.cat([y, y[:1] + gap]).to(tdtype)
                    p = SemiDiscreteProblem(y)
                    # the issue's case (2 h once) with the default budget, the rest with 60
                    issue = (gap, tdtype, sdtype) == (1e-12, torch.float64, torch.float64)
                    budget, batch = (300, 2**24) if issue else (60, 2**20)  # default: 2**24
                    r = solve_semidiscrete(
                        p, tol=0.02, seed=0, dtype=sdtype, max_iter=budget, max_batch_size=batch
                    )
                    return check_solve(r, 0.02, ctx, max_iter=budget)

                cases.append(Case(f"near-dup/gap-{gap:g}-targets-{_name(tdtype)}-solve-{_name(sdtype)}",
                                  "near_duplicate", run, expect=r"duplicate targets", timeout=120))  # fmt: skip
        for tdtype in (torch.float32, torch.float64):

            def run(ctx, gap=gap, tdtype=tdtype):
                y = _points(20, seed=10)
                y = torch.cat([y, y[:1] + gap]).to(tdtype)
                return check_exact(solve_exact_2d(SemiDiscreteProblem(y)), ctx)

            cases.append(Case(f"near-dup/gap-{gap:g}-{_name(tdtype)}/exact2d", "near_duplicate", run,
                              expect=r"duplicate targets|separate|precision", timeout=120))  # fmt: skip

    def cluster(ctx, dtype=torch.float64, spread=1e-9):
        base = _points(10, seed=11)
        blob = 0.5 + spread * torch.from_numpy(np.random.default_rng(1).uniform(size=(10, 2)))
        y = torch.cat([base, blob]).to(dtype)
        r = solve_semidiscrete(SemiDiscreteProblem(y), tol=0.02, seed=0, dtype=dtype, max_iter=100)
        return check_solve(r, 0.02, ctx, max_iter=100)

    for dtype in (torch.float32, torch.float64):
        for spread in (1e-6, 1e-9, 1e-12):
            cases.append(Case(f"near-dup/cluster-{spread:g}-{_name(dtype)}", "near_duplicate",
                              lambda ctx, d=dtype, s=spread: cluster(ctx, d, s),
                              expect=r"duplicate targets", timeout=120))  # fmt: skip

    def ints(ctx):
        y = np.array([[2**25, 0], [2**25 + 1, 0], [0, 2**25]], dtype=np.int64)
        p = SemiDiscreteProblem(y)
        good = p.targets.dtype == torch.float64 and np.array_equal(f64(p.targets), y.astype(float))
        return judge(good, f"distinct int64 targets kept as {p.targets.dtype}")

    cases.append(Case("near-dup/int64-beyond-2^24", "near_duplicate", ints, valid=True))

    def one_ulp(ctx):
        y = _points(10, seed=12).float()
        y = torch.cat([y, torch.nextafter(y[:1], torch.full_like(y[:1], 2.0))])
        r = solve_semidiscrete(
            SemiDiscreteProblem(y), tol=0.02, seed=0, max_iter=60, max_batch_size=2**20
        )
        return check_solve(r, 0.02, ctx, max_iter=60)

    cases.append(Case("near-dup/one-ulp-f32", "near_duplicate", one_ulp, timeout=120))

    def fit_near_copy(ctx):
        """`aeot fit` on 60 points plus a copy 1e-6 away (the issue's case 6)."""
        rng = np.random.default_rng(0)
        data = rng.uniform(size=(60, 3))
        data = np.vstack([data, data[:1] + 1e-6])
        np.save("near.npy", data)
        run = ctx.cli(
            "fit", "near.npy", "-o", "m", "--autoencoder", "identity", "--latent-dim", "3"
        )

        def check():
            meta = json.loads(Path("m/config.json").read_text())
            converged = meta["ot"]["converged"]
            warned = "warning" in run.output.lower()
            return judge(converged or warned, f"converged={converged}, warned on stderr={warned}")

        return judge_cli(run, None, check, valid=True)

    cases.append(Case("near-dup/cli-fit-copy-1e-6", "near_duplicate", fit_near_copy, timeout=180))
    return cases


# ----------------------------------------------------------------------------- h0


def h0_cases() -> list[Case]:
    cases = []
    for value in (1e4, 1e8, 1e15, 1e30, -1e30, 1e300, "all-1e30", "ramp-1e20"):
        for dtype in (torch.float32, torch.float64):
            for method in ("newton", "jacobi", "adam"):

                def run(ctx, value=value, dtype=dtype, method=method):
                    p = SemiDiscreteProblem(_points(12, seed=13))
                    if value == "all-1e30":
                        h0 = np.full(12, 1e30)
                    elif value == "ramp-1e20":
                        h0 = np.linspace(0, 1e20, 12)
                    else:
                        h0 = np.zeros(12)
                        h0[3] = value
                    r = solve_semidiscrete(
                        p,
                        h0=h0,
                        tol=0.05,
                        seed=0,
                        dtype=dtype,
                        method=method,
                        max_iter=60,
                        max_batch_size=2**20,
                    )
                    return check_solve(r, 0.05, ctx, max_iter=60)

                cases.append(Case(f"h0/{value}-{_name(dtype)}-{method}", "h0", run,
                                  expect=r"h0", timeout=120))  # fmt: skip
    for value in (1e30, 1e300, -1e300):

        def run(ctx, value=value):
            h0 = np.zeros(12)
            h0[3] = value
            return check_exact(
                solve_exact_2d(SemiDiscreteProblem(_points(12, seed=13)), h0=h0), ctx
            )

        cases.append(Case(f"h0/{value:g}-exact2d", "h0", run, expect=r"h0", timeout=120))
    return cases


# ------------------------------------------------------------------------ settings


SOLVER_SETTINGS = [
    ("method", "sgd"), ("method", 3), ("method", None),
    ("tol", "0.1"), ("tol", 0.0), ("tol", -1.0), ("tol", float("nan")), ("tol", float("inf")), ("tol", None),
    ("tol", [0.1]), ("tol", True),
    ("max_iter", 0), ("max_iter", -3), ("max_iter", 2.5), ("max_iter", "10"), ("max_iter", True), ("max_iter", None),
    ("batch_size", 1), ("batch_size", 0), ("batch_size", -5), ("batch_size", 2**40), ("batch_size", "1000"),
    ("max_batch_size", 0), ("max_batch_size", 2**62),
    ("growth", 1.0), ("growth", 0.5), ("growth", float("inf")), ("growth", "2"),
    ("patience", 0), ("patience", -1), ("patience", 1.5),
    ("lr", -0.1), ("lr", 0.0), ("lr", float("nan")), ("lr", "fast"),
    ("qmc", "yes"), ("qmc", 2),
    ("hessian_samples", 0), ("hessian_samples", -1),
    ("slab_fraction", 0.0), ("slab_fraction", 1.5), ("slab_fraction", "x"),
    ("dtype", torch.float16), ("dtype", torch.bfloat16), ("dtype", torch.int64), ("dtype", "float32"),
    ("dtype", np.float64), ("dtype", torch.complex64),
    ("device", "tpu"), ("device", "meta"), ("device", "cuda:7"), ("device", 3),
    ("seed", -1), ("seed", 1.5), ("seed", "x"), ("seed", 2**70), ("seed", None),
    ("chunk", 0), ("chunk", -4), ("chunk", "big"),
    ("time_limit", -1.0), ("time_limit", 0.0), ("time_limit", float("nan")), ("time_limit", "1"),
    ("debias", "no"),
    ("noise_ratio", 0.0), ("noise_ratio", -1.0), ("noise_ratio", float("inf")),
    ("max_cell_error", 0.0), ("max_cell_error", -1.0), ("max_cell_error", "x"),
    ("pool_size", 0), ("pool_size", -1),
    ("unknown_setting", 1),
]  # fmt: skip

VALID_NUMPY_SETTINGS = [
    ("tol", np.float64(0.05)), ("tol", np.float32(0.05)), ("max_iter", np.int64(40)),
    ("max_iter", np.int32(40)), ("seed", np.int64(3)), ("seed", np.uint8(3)),
    ("batch_size", np.int64(2**14)), ("growth", np.float64(2.0)), ("patience", np.int64(4)),
    ("chunk", np.int64(1024)), ("time_limit", np.float64(60.0)), ("hessian_samples", np.int64(2**16)),
]  # fmt: skip


def _setting_name(value) -> str:
    text = repr(value)
    return re.sub(r"[^A-Za-z0-9_.+-]", "", text)[:24] or "x"


def settings_cases() -> list[Case]:
    cases = []
    for name, value in SOLVER_SETTINGS:

        def run(ctx, name=name, value=value):
            p = SemiDiscreteProblem(_points(6, seed=14))
            r = solve_semidiscrete(p, **{name: value})
            return check_solve(
                r,
                0.01,
                ctx,
                max_iter=value if name == "max_iter" and isinstance(value, int) else 300,
            )

        expect = r"unknown|unexpected|setting" if name == "unknown_setting" else re.escape(name)
        cases.append(
            Case(f"settings/solve-{name}={_setting_name(value)}", "settings", run, expect=expect)
        )
    for name, value in VALID_NUMPY_SETTINGS:

        def run(ctx, name=name, value=value):
            p = SemiDiscreteProblem(_points(6, seed=14))
            kw = {"tol": 0.05, "max_iter": 40, **{name: value}}
            r = solve_semidiscrete(p, **kw)
            return check_solve(r, float(kw["tol"]), ctx, max_iter=int(kw["max_iter"]))

        cases.append(
            Case(f"settings/solve-numpy-{name}={type(value).__name__}", "settings", run, valid=True)
        )
    # exact 2D settings
    for name, value, expect in (
        ("tol", 0.0, "tol"), ("tol", "1e-8", "tol"), ("tol", float("nan"), "tol"),
        ("max_iter", 0, "max_iter"), ("max_iter", 2.5, "max_iter"),
        ("h0", [0.0], "h0"), ("h0", np.full(12, np.nan), "h0"),
        ("problem-3d", None, r"2D|dimension|two"), ("source-gaussian", None, r"box|uniform|source"),
    ):  # fmt: skip

        def run(ctx, name=name, value=value):
            if name == "problem-3d":
                return check_exact(solve_exact_2d(SemiDiscreteProblem(_points(12, d=3))), ctx)
            if name == "source-gaussian":
                p = SemiDiscreteProblem(_points(12), source=Gaussian(2))
                return check_exact(solve_exact_2d(p), ctx)
            result = solve_exact_2d(SemiDiscreteProblem(_points(12, seed=15)), **{name: value})
            return check_exact(result, ctx, max_iter=value if name == "max_iter" else 100)

        cases.append(
            Case(f"settings/exact2d-{name}={_setting_name(value)}", "settings", run, expect=expect)
        )
    # sources (issue item 9)
    sources = {
        "box-low-str": (lambda: BoxUniform(2, "a", 1.0), r"box bounds|low"),
        "box-low-3": (lambda: BoxUniform(2, [0.0, 0.0, 0.0], 1.0), r"low .*2 numbers|box bounds"),
        "box-dim-str": (lambda: BoxUniform("2"), r"dim"),
        "box-dim-0": (lambda: BoxUniform(0), r"dim"),
        "box-dim-np": (lambda: BoxUniform(np.int64(2)), None),
        "box-huge": (lambda: BoxUniform(2, -1e308, 1e308), r"box|range|float32|overflow"),
        "box-tiny": (lambda: BoxUniform(2, 0.0, 1e-320), r"box|width|float32|range|zero"),
        "box-flat": (lambda: BoxUniform(2, [0.0, 0.0], [1.0, 0.0]), r"box bounds"),
        "gauss-mean-nan": (lambda: Gaussian(2, mean=float("nan")), r"mean"),
        "gauss-mean-3": (lambda: Gaussian(2, mean=[0.0, 0.0, 0.0]), r"mean .*2 numbers"),
        "gauss-mean-1e30": (lambda: Gaussian(2, mean=1e30), r"mean|range|precision|float32"),
        "gauss-std-0": (lambda: Gaussian(2, std=0.0), r"std"),
        "gauss-std-1e-300": (lambda: Gaussian(2, std=1e-300), r"std|point mass|float32|precision"),
        "gauss-std-str": (lambda: Gaussian(2, std="1"), r"std"),
        "callable-dim-str": (lambda: CallableSource(lambda n, g: torch.rand(n, 2, generator=g), "a"), r"dim"),
        "callable-not-fn": (lambda: CallableSource("rand", 2), r"fn must be callable"),
        "callable-wrong-shape": (lambda: CallableSource(lambda n, g: torch.rand(n, 3, generator=g), 2), r"shape|dimension|columns"),
        "callable-nan": (lambda: CallableSource(lambda n, g: torch.full((n, 2), float("nan")), 2), r"NaN|finite"),
        "callable-short": (lambda: CallableSource(lambda n, g: torch.rand(n // 2, 2, generator=g), 2), r"rows|samples|shape"),
        "callable-point-mass-list": (lambda: CallableSource(lambda n, g: [[0.5, 0.5]] * n, 2), r"distinct point.*atoms"),
        "callable-float64": (lambda: CallableSource(lambda n, g: torch.rand(n, 2, generator=g, dtype=torch.float64), 2), None),
        "callable-four-atoms": (lambda: CallableSource(lambda n, g: torch.randint(0, 2, (n, 2), generator=g), 2), r"distinct point.*atoms"),
        "callable-raises": (lambda: CallableSource(lambda n, g: 1 / 0, 2), r"source|division"),
    }  # fmt: skip
    for name, (make, expect) in sources.items():

        def run(ctx, make=make, name=name):
            src = make()
            y = _points(8, seed=16)
            if name.startswith("gauss"):
                y = (y - 0.5) * 4
            p = SemiDiscreteProblem(y, source=src)
            r = solve_semidiscrete(p, tol=0.05, max_iter=40, seed=0)
            return check_solve(r, 0.05, ctx, max_iter=40)

        errors = (*EXPECTED, ZeroDivisionError) if name == "callable-raises" else EXPECTED
        cases.append(Case(f"settings/source-{name}", "settings", run, expect=expect,
                          valid=expect is None, errors=errors,
                          user_error=name == "callable-raises"))  # fmt: skip
    # AEOT constructor and sample arguments
    aeot_settings = [
        ("seed", "x"), ("seed", -1), ("seed", 2**50), ("seed", 1.5), ("latent_dim", 0), ("latent_dim", "16"),
        ("latent_dim", 10**9), ("hidden", "8"), ("hidden", [0]), ("hidden", [-1]), ("hidden", [10**7]),
        ("hidden", [8] * 1000), ("hidden", 5), ("width", 10**6), ("epochs", 0), ("epochs", -1), ("batch_size", 0),
        ("lr", "0.1"), ("lr", float("nan")), ("ot_tol", 0), ("ot_tol", "0.1"), ("ot_max_iter", 0),
        ("autoencoder", "foo"), ("loss", "huber"), ("ot_method", "sgd"), ("device", "tpu"), ("device", 5),
        ("progress", "yes"), ("n_graph_samples", 2**40), ("n_graph_samples", 0), ("threshold", "x"),
        ("threshold", float("inf")), ("exact_2d", "no"), ("nonsense", 1),
    ]  # fmt: skip
    for name, value in aeot_settings:

        def run(ctx, name=name, value=value):
            AEOT(**{name: value})

        expect = r"unknown|unexpected|nonsense" if name == "nonsense" else re.escape(name)
        cases.append(
            Case(f"settings/aeot-{name}={_setting_name(value)}", "settings", run, expect=expect)
        )
    for name, value in (("seed", np.int64(3)), ("latent_dim", np.int32(2)), ("hidden", (np.int64(8),)),
                        ("ot_tol", np.float64(0.05)), ("epochs", np.int64(1))):  # fmt: skip

        def run(ctx, name=name, value=value):
            kw = {
                "autoencoder": "identity",
                "n_graph_samples": 2**12,
                "progress": False,
                name: value,
            }
            model = AEOT(**kw).fit(torch.rand(30, 2, generator=torch.Generator().manual_seed(0)))
            s = f64(model.sample(50, seed=np.int64(1)))
            return judge(s.shape == (50, 2) and np.isfinite(s).all(), f"numpy {name} accepted")

        cases.append(Case(f"settings/aeot-numpy-{name}", "settings", run, valid=True))
    sample_args = [
        ({"n": 0}, r"n must"), ({"n": -1}, r"n must"), ({"n": 2.5}, r"n must be an integer"),
        ({"n": "5"}, r"n must be an integer"), ({"n": 2, "seed": -1}, r"seed must"),
        ({"n": 2, "seed": "x"}, r"seed must be an integer"), ({"n": 2, "seed": 2**70}, r"seed must"),
        ({"n": np.int64(4), "seed": np.int64(2)}, None),
    ]  # fmt: skip
    for kwargs, expect in sample_args:

        def run(ctx, kwargs=kwargs):
            model = AEOT.load(ctx.fixture("pts_a"))
            s = f64(model.sample(**kwargs))
            ref = f64(model.sample(int(kwargs["n"]), seed=int(kwargs.get("seed", 0))))
            return judge(np.array_equal(s, ref), "numpy arguments give the same samples")

        cases.append(Case(f"settings/sample-{_setting_name(kwargs)}", "settings", run, expect=expect,
                          valid=expect is None))  # fmt: skip
    interp_args = [((-1, 1), r"index -1 out of range"), ((0, 10**6), r"out of range"),
                   ((0, 1, 0), r"steps"), ((0, 1, -2), r"steps"), ((0, 1, 2.5), r"steps"),
                   ((0, 1, 10**9), r"steps"), (("a", 1), r"interpolation end point|must"),
                   ((np.zeros(5), 1), r"interpolation end point|shape"),
                   ((np.int64(0), np.int64(1)), None)]  # fmt: skip
    for args, expect in interp_args:

        def run(ctx, args=args):
            model = AEOT.load(ctx.fixture("pts_a"))
            path = f64(model.interpolate(*args))
            return judge(path.shape[1:] == (3,) and np.isfinite(path).all(), f"path {path.shape}")

        cases.append(Case(f"settings/interpolate-{_setting_name(args)}", "settings", run, expect=expect,
                          valid=expect is None, timeout=60))  # fmt: skip
    return cases


# -------------------------------------------------------------------- model folders


def _reseal(folder: Path) -> None:
    write_manifest(folder, [n for n in MODEL_FILES if (folder / n).exists()])


def _flip(path: Path, where: float) -> None:
    data = bytearray(path.read_bytes())
    index = min(len(data) - 1, int(len(data) * where))
    data[index] ^= 0x5A
    path.write_bytes(bytes(data))


def _edit_config(folder: Path, edit) -> None:
    meta = json.loads((folder / "config.json").read_text())
    meta = edit(meta)
    text = meta if isinstance(meta, str) else json.dumps(meta)
    (folder / "config.json").write_text(text)
    _reseal(folder)


def _set(key, value, section="config"):
    def edit(meta):
        if section is None:
            meta[key] = value
        else:
            meta[section][key] = value
        return meta

    return edit


def _edit_ot(folder: Path, edit) -> None:
    tensors = load_tensors(folder / "ot.safetensors")
    edit(tensors)
    save_tensors(folder / "ot.safetensors", tensors)
    _reseal(folder)


def _edit_ae(folder: Path, edit, config_edit=None) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = folder / "autoencoder.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata())
    tensors = load_tensors(path)
    edit(tensors)
    if config_edit is not None:
        metadata["config"] = json.dumps(config_edit(json.loads(metadata["config"])))
    save_file(tensors, str(path), metadata=metadata)
    _reseal(folder)


def _same_as_fixture(model: AEOT, ctx: Ctx, name: str) -> bool:
    ref = AEOT.load(ctx.fixture(name))
    if model.config.to_dict() != ref.config.to_dict():
        return False
    # h is re-centred on load (mean zero), which can move it by an ulp per save/load cycle
    h_close = torch.allclose(
        model.ot_.h, ref.ot_.h, rtol=0, atol=1e-12 * float(ref.ot_.h.abs().max()) + 1e-30
    )
    if not (torch.equal(model.codes_, ref.codes_) and h_close):
        return False
    if (model.autoencoder_ is None) != (ref.autoencoder_ is None):
        return False
    if model.autoencoder_ is not None:
        a, b = model.autoencoder_.state_dict(), ref.autoencoder_.state_dict()
        if a.keys() != b.keys() or not all(torch.equal(a[k], b[k]) for k in a):
            return False
    return torch.equal(model.sample(64, seed=3), ref.sample(64, seed=3))


def _folder_cases() -> dict[str, tuple[str, Callable[[Path], None], str | None, str]]:
    """name -> (fixture, damage, expected error regex or None, how to check a load).

    check: "same" (must equal the fixture), "finite" (crafted but valid: finite samples),
    "refuse" (must be refused)."""
    cases: dict = {}
    for file in MODEL_FILES:
        cases[f"copy-other-{file}"] = ("mlp_a", lambda f, file=file: shutil.copy(f.parent.parent.parent / "fixtures" / "mlp_b" / file, f / file), rf"{re.escape(file)} differs", "refuse")  # fmt: skip
        for where in (0.0, 0.003, 0.5, 0.9, 1.0):
            cases[f"flip-{file}-{where}"] = ("mlp_a", lambda f, file=file, w=where: _flip(f / file, w), rf"{re.escape(file)}|manifest", "refuse")  # fmt: skip
        for cut in (0.0, 0.5, "minus1"):

            def truncate(f, file=file, cut=cut):
                data = (f / file).read_bytes()
                (f / file).write_bytes(
                    data[: len(data) - 1] if cut == "minus1" else data[: int(len(data) * cut)]
                )

            cases[f"truncate-{file}-{cut}"] = ("mlp_a", truncate, rf"{re.escape(file)}", "refuse")
        cases[f"missing-{file}"] = ("mlp_a", lambda f, file=file: (f / file).unlink(), rf"{re.escape(file)}", "refuse")  # fmt: skip
        cases[f"missing-resealed-{file}"] = ("mlp_a", lambda f, file=file: ((f / file).unlink(), _reseal(f)), rf"{re.escape(file)}|autoencoder weights missing|config", "refuse")  # fmt: skip
    cases["copy-other-ot-points"] = ("pts_a", lambda f: shutil.copy(f.parent.parent.parent / "fixtures" / "pts_b" / "ot.safetensors", f / "ot.safetensors"), r"ot.safetensors differs", "refuse")  # fmt: skip
    cases["ae-of-other-fit-added-to-identity"] = ("pts_a", lambda f: shutil.copy(f.parent.parent.parent / "fixtures" / "mlp_a" / "autoencoder.safetensors", f), r"autoencoder.safetensors is not listed", "refuse")  # fmt: skip
    cases["nan-ae-weights"] = ("mlp_a", lambda f: _edit_ae(f, lambda t: t[sorted(t)[0]].fill_(float("nan"))), r"NaN or infinite", "refuse")  # fmt: skip
    cases["inf-ae-weights"] = ("mlp_a", lambda f: _edit_ae(f, lambda t: t[sorted(t)[-1]].fill_(float("inf"))), r"NaN or infinite", "refuse")  # fmt: skip
    cases["f16-ae-weights"] = ("mlp_a", lambda f: _edit_ae(f, lambda t: [t.__setitem__(k, v.half()) for k, v in list(t.items())]), r"dtype|float16|weight", "finite")  # fmt: skip
    cases["ae-width-1e6-meta"] = ("mlp_a", lambda f: _edit_ae(f, lambda t: None, lambda c: {**c, "hidden": [10**6, 10**6]}), r"do not match|hidden|limit", "refuse")  # fmt: skip
    cases["ae-meta-garbage"] = ("mlp_a", lambda f: _edit_ae(f, lambda t: None, lambda c: [1, 2]), r"autoencoder|config", "refuse")  # fmt: skip
    cases["ae-extra-tensor"] = ("mlp_a", lambda f: _edit_ae(f, lambda t: t.__setitem__("evil", torch.zeros(10**3))), r"do not match|evil", "refuse")  # fmt: skip
    for name, value in (("nan", float("nan")), ("inf", float("inf"))):
        for tensor in ("targets", "h", "codes", "weights", "center", "scale", "cell_masses"):
            cases[f"{name}-ot-{tensor}"] = ("pts_a", lambda f, t=tensor, v=value: _edit_ot(f, lambda d: d[t].view(-1)[0].fill_(v)), rf"{tensor}|NaN|infinite|codes", "refuse")  # fmt: skip
    for dtype in (torch.float16, torch.bfloat16):
        cases[f"{_name(dtype)}-ot-all"] = ("pts_a", lambda f, d=dtype: _edit_ot(f, lambda t: [t.__setitem__(k, t[k].to(d)) for k in ("targets", "h", "cell_masses", "codes", "center", "scale")]), r"weights must sum|codes", "finite")  # fmt: skip
    cases["int64-ot-targets-codes"] = ("pts_a", lambda f: _edit_ot(f, lambda t: [t.__setitem__(k, (t[k] * 1000).round().long()) for k in ("targets", "codes")]), r"codes|targets|duplicate", "finite-any")  # fmt: skip
    cases["bool-ot-targets"] = ("pts_a", lambda f: _edit_ot(f, lambda t: t.__setitem__("targets", t["targets"] > 0)), r"targets .*(real numbers|dtype)", "refuse")  # fmt: skip
    cases["ot-missing-key"] = ("pts_a", lambda f: _edit_ot(f, lambda t: t.pop("h")), r"lacks \['h'\]", "refuse")  # fmt: skip
    cases["ot-h-short"] = ("pts_a", lambda f: _edit_ot(f, lambda t: t.__setitem__("h", t["h"][:-1])), r"h has shape", "refuse")  # fmt: skip
    cases["ot-targets-3d"] = ("pts_a", lambda f: _edit_ot(f, lambda t: t.__setitem__("targets", t["targets"][None])), r"targets must have 2", "refuse")  # fmt: skip
    cases["ot-codes-other"] = ("mlp_a", lambda f: _edit_ot(f, lambda t: t.__setitem__("codes", load_tensors(f.parent.parent.parent / "fixtures" / "mlp_b" / "ot.safetensors")["codes"])), r"different models", "refuse")  # fmt: skip
    cases["ot-scale-zero"] = ("pts_a", lambda f: _edit_ot(f, lambda t: t["scale"].zero_()), r"scale must be positive", "refuse")  # fmt: skip
    cases["ot-huge-tensor"] = ("pts_a", lambda f: _edit_ot(f, lambda t: t.__setitem__("junk", torch.zeros(2**20))), r"junk|unexpected|unknown", "finite")  # fmt: skip
    configs = {
        "list": lambda m: "[1, 2, 3]",
        "nested-50000": lambda m: "[" * 50000 + "]" * 50000,
        "nested-dict": lambda m: '{"a":' * 20000 + "1" + "}" * 20000,
        "string": lambda m: '"aeot-model"',
        "null": lambda m: "null",
        "empty-object": lambda m: "{}",
        "empty-file": lambda m: "",
        "binary": lambda m: "\x00\xff\xfe garbage",
        "nan-literal": lambda m: json.dumps(m).replace('"ot_tol": 0.02', '"ot_tol": NaN'),
        "huge-number": lambda m: json.dumps(m).replace('"ot_tol": 0.02', '"ot_tol": 1e400'),
        "format-gan": _set("format", "aeot-gan-model", None),
        "format-wrong": _set("format", "something", None),
        "n_graph_samples-2^40": _set("n_graph_samples", 2**40),
        "width-1e6": _set("width", 10**6),
        "hidden-1e6": _set("hidden", [10**6]),
        "hidden-1000-layers": _set("hidden", [8] * 1000),
        "latent_dim-2^30": _set("latent_dim", 2**30),
        "epochs-1e12": _set("epochs", 10**12),
        "batch_size-2^40": _set("batch_size", 2**40),
        "ot_max_iter-1e12": _set("ot_max_iter", 10**12),
        "seed-str": _set("seed", "x"),
        "seed--1": _set("seed", -1),
        "seed-1.5": _set("seed", 1.5),
        "seed-2^60": _set("seed", 2**60),
        "ot_tol-str": _set("ot_tol", "0.1"),
        "lr-neg": _set("lr", -1.0),
        "device-tpu": _set("device", "tpu"),
        "device-list": _set("device", ["cpu"]),
        "autoencoder-evil": _set("autoencoder", "__import__('os')"),
        "unknown-key": _set("exec", "rm -rf /"),
        "config-list": _set("config", [1, 2], None),
        "input_shape-1e9": _set("input_shape", [10**9], None),
        "input_shape-empty": _set("input_shape", [], None),
        "input_shape-neg": _set("input_shape", [-3], None),
        "input_shape-str": _set("input_shape", "3", None),
        "kind-evil": _set("kind", "exec", None),
        "ot-list": _set("ot", [], None),
        "ot-errors-str": _set("ot", {"errors": ["x"]}, None),
        "ot-converged-str": _set("ot", {"errors": [0.01], "converged": "false"}, None),
    }
    for name, edit in configs.items():
        fixture = "mlp_a" if name in ("width-1e6", "hidden-1e6", "latent_dim-2^30") else "pts_a"
        check = "finite" if name in ("unknown-key-ok",) else "refuse"
        expect = r"config|limit|seed|ot_tol|lr|device|autoencoder|input_shape|kind|'ot'|nested|JSON|exceeds|format|not an aeot|hidden|width|latent|epochs|batch_size|converged"
        cases[f"config-{name}"] = (fixture, lambda f, e=edit: _edit_config(f, e), expect, check)
    # manifest damage, leftovers of interrupted saves
    cases["manifest-list"] = ("pts_a", lambda f: (f / "manifest.json").write_text("[1]"), r"manifest", "refuse")  # fmt: skip
    cases["manifest-traversal"] = ("pts_a", lambda f: (f / "manifest.json").write_text('{"format": "aeot-manifest", "files": {"../../etc/passwd": "00"}}'), r"not a file of", "refuse")  # fmt: skip
    cases["manifest-garbage"] = ("pts_a", lambda f: (f / "manifest.json").write_bytes(b"\x00\x01garbage"), r"manifest", "refuse")  # fmt: skip
    cases["manifest-nested"] = ("pts_a", lambda f: (f / "manifest.json").write_text("[" * 100000), r"nested|manifest", "refuse")  # fmt: skip
    cases["manifest-is-folder"] = ("pts_a", lambda f: ((f / "manifest.json").unlink(), (f / "manifest.json").mkdir()), r"manifest", "refuse")  # fmt: skip
    cases["manifest-missing"] = ("mlp_a", lambda f: (f / "manifest.json").unlink(), None, "same")
    cases["leftover-saving-folder"] = ("mlp_a", lambda f: (shutil.copytree(f, f.parent / ".model.saving-999999-abc"), (f.parent / ".model.saving-999999-abc" / "ot.safetensors").write_bytes(b"half")), None, "same")  # fmt: skip
    cases["leftover-tmp-files"] = ("mlp_a", lambda f: ((f / "ot.safetensors.tmp").write_bytes(b"x"), (f / ".config.json.tmp123").write_text("{")), None, "same")  # fmt: skip
    cases["leftover-old-only"] = ("mlp_a", lambda f: (f.parent / ".model.old-999999-x").mkdir() or shutil.move(str(f), str(f.parent / ".model.old-999999-x" / "model")), r"interrupted save left the previous model", "refuse")  # fmt: skip
    cases["folder-is-file"] = ("pts_a", lambda f: (shutil.rmtree(f), f.write_text("x")), r"model folder not found|not a folder", "refuse")  # fmt: skip
    cases["folder-empty"] = ("pts_a", lambda f: (shutil.rmtree(f), f.mkdir()), r"config.json|not found|missing", "refuse")  # fmt: skip
    cases["file-is-folder"] = ("pts_a", lambda f: ((f / "ot.safetensors").unlink(), (f / "ot.safetensors").mkdir()), r"ot.safetensors", "refuse")  # fmt: skip
    cases["file-symlink-other"] = ("pts_a", lambda f: ((f / "ot.safetensors").unlink(), (f / "ot.safetensors").symlink_to(f.parent.parent.parent / "fixtures" / "pts_b" / "ot.safetensors")), r"ot.safetensors", "refuse")  # fmt: skip
    cases["file-symlink-dev-zero"] = ("pts_a", lambda f: ((f / "ot.safetensors").unlink(), (f / "ot.safetensors").symlink_to("/dev/zero")), r"ot.safetensors", "refuse")  # fmt: skip
    cases["intact"] = ("mlp_a", lambda f: None, None, "same")
    return cases


def _check_loaded(model: AEOT, ctx: Ctx, fixture: str, check: str) -> Verdict:
    if check == "same":
        return judge(_same_as_fixture(model, ctx, fixture), f"loaded model equals {fixture}")
    if check in ("finite", "finite-any"):  # finite-any: a crafted model of another scale
        s = f64(model.sample(256, seed=1))
        good = s.shape[0] == 256 and np.isfinite(s).all()
        if good and check == "finite" and fixture == "pts_a":  # stay in the data box
            data = np.load(ctx.fixture("points_a.npy"))
            good = bool(((s >= data.min(0) - 0.02) & (s <= data.max(0) + 0.02)).all())
        return judge(good, f"crafted model loaded: {s.shape} samples, finite and in range: {good}")
    return wrong("a damaged model folder loaded without an error")


def model_folder_cases() -> list[Case]:
    cases = []
    for name, (fixture, damage, expect, check) in _folder_cases().items():

        def lib(ctx, fixture=fixture, damage=damage, check=check):
            folder = ctx.model(fixture)
            damage(folder)
            return _check_loaded(AEOT.load(folder), ctx, fixture, check)

        def cli(ctx, fixture=fixture, damage=damage, expect=expect, check=check):
            folder = ctx.model(fixture)
            damage(folder)
            out = folder.parent / "s.npy"
            run = ctx.cli("sample", folder, "-n", "200", "-o", out)
            if check == "refuse":
                return judge_cli(run, expect)

            def verify():
                s = np.load(out)
                if check == "same":
                    ref = f64(AEOT.load(ctx.fixture(fixture)).sample(200))
                    return judge(np.array_equal(s, ref), "CLI samples equal the intact model's")
                return judge(
                    s.shape[0] == 200 and np.isfinite(s).all(), f"crafted model sampled {s.shape}"
                )

            return judge_cli(run, expect, verify, valid=check == "same")

        valid = check == "same"
        cases.append(Case(f"model/{name}/load", "model_folder", lib, expect=expect, valid=valid))
        cases.append(
            Case(f"model/{name}/cli-sample", "model_folder", cli, expect=expect, valid=valid)
        )
    return cases


# --------------------------------------------------------------- native kernels
#
# The kernels are the extension aeot.ot._native_ext, compiled by pip install and picked
# per CPU at import; nothing is built or cached at run time. What is left to get wrong:
# AEOT_NATIVE, and an install without the extension. (Run the probe on an installed
# aeot, editable or not: from a bare source tree every case gets the torch path.)


def _kernels_work(ctx: Ctx, variant: str, warning: str | None = None) -> Verdict:
    """Assign, potential and top-k right in float32 (fused kernels) and float64 (row
    scans); the kernel ``variant`` in use; one RuntimeWarning matching ``warning``, or none."""
    for targets in (_points(30, seed=17).float(), _points(30, seed=17)):
        r = _solved(targets)
        x = _queries(100_000, seed=4).to(targets.dtype)
        for verdict in (
            check_assign(r, x, r.assign(x)),
            check_potential(r, x[:20000], r.potential(x[:20000])),
            check_topk(r, x[:20000], 3, r.topk(x[:20000], 3)),
        ):
            if verdict.outcome != "correct":
                return verdict
    if native.variant() != variant:
        return wrong(f"kernel variant {native.variant()!r} in use, expected {variant!r}")
    said = [
        str(w.message)
        for w in ctx.warnings
        if issubclass(w.category, RuntimeWarning)
        and re.search("native|AEOT_NATIVE", str(w.message))
    ]
    if warning is None and said:
        return wrong(f"unexpected warning: {_short(said[0])}")
    if warning is not None and (len(said) != 1 or not re.search(warning, said[0])):
        return wrong(f"expected one warning matching /{warning}/, got {said}")
    return ok(f"kernels correct (variant {variant!r})")


def native_cases() -> list[Case]:
    def runnable() -> tuple[str, ...]:
        """The variants this CPU runs, best first (imported in the child: the parent
        loads no kernel); none without the extension."""
        try:
            from aeot.ot import _native_ext
        except ImportError:
            return ()
        return _native_ext.variants()

    def with_env(value: str | None):
        def run(ctx):
            if value is None:
                os.environ.pop("AEOT_NATIVE", None)
            else:
                os.environ["AEOT_NATIVE"] = value
            if value == "0":
                return _kernels_work(ctx, "torch")
            if not runnable():
                return _kernels_work(ctx, "torch", r"not installed.*pure-torch path")
            best = runnable()[0]
            if value in (None, "", "1") or value in runnable():
                return _kernels_work(ctx, best if value in (None, "", "1") else value)
            return _kernels_work(ctx, best, rf"AEOT_NATIVE={re.escape(repr(value))} ignored")

        return run

    def extension_missing(ctx):
        os.environ.pop("AEOT_NATIVE", None)
        sys.modules["aeot.ot._native_ext"] = None  # its import fails, as when never built
        return _kernels_work(ctx, "torch", r"not installed.*pure-torch path")

    scenarios: dict[str, Callable[[Ctx], Verdict]] = {"AEOT_NATIVE-unset": with_env(None)}
    for value in ("0", "1", "", "avx512", "avx2", "baseline", "AVX2", "avx1024", " 1", "../x"):
        scenarios[f"AEOT_NATIVE={value!r}"] = with_env(value)
    scenarios["extension-missing"] = extension_missing
    return [
        Case(f"native/{name}", "native", run, valid=True, timeout=180)
        for name, run in scenarios.items()
    ]


# ---------------------------------------------------------- crafted pickles (cells)


class _Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


class _EvilSystem:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class CustomNet(torch.nn.Sequential):  # a supported network whose class needs full unpickling
    def __init__(self):
        super().__init__(
            torch.nn.Linear(2, 6), torch.nn.ReLU(), torch.nn.Linear(6, 6), torch.nn.ReLU()
        )


def _grid_patterns(net: torch.nn.Sequential) -> int:
    """Distinct activation patterns of ``net`` on a fine grid of [-1, 1]^2: a lower bound
    on the number of cells, computed independently of aeot.relu."""
    s = torch.linspace(-1, 1, 401, dtype=torch.float64)
    x = torch.cartesian_prod(s, s)
    signs = []
    h = x
    for layer in net.double():
        h = layer(h)
        if isinstance(layer, torch.nn.ReLU):
            signs.append(h > 0)
    return len({row.tobytes() for row in torch.cat(signs, 1).numpy()})


def pickle_cases() -> list[Case]:
    cases = []

    def evil(kind):
        def run(ctx):
            marker = Path.cwd() / "PWNED"
            path = Path.cwd() / "model.pt"
            if kind == "torch-exec":
                torch.save(_Evil(str(marker)), path)
            elif kind == "torch-system":
                torch.save(_EvilSystem(str(marker)), path)
            elif kind == "torch-nested":
                net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU())
                torch.save({"net": net, "x": _Evil(str(marker))}, path)
            elif kind == "plain-pickle":
                path.write_bytes(pickle.dumps(_Evil(str(marker))))
            elif kind == "plain-pickle-proto0":
                path.write_bytes(pickle.dumps(_EvilSystem(str(marker)), protocol=0))
            elif kind == "state-dict-evil-widths":
                torch.save({"0.weight": _Evil(str(marker))}, path)
            elif kind == "module-attr-evil":
                net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU())
                net.payload = _Evil(str(marker))
                torch.save(net, path)
            args = ["cells", "--model", path]
            if kind == "state-dict-evil-widths":
                args += ["--widths", "2,4"]
            run = ctx.cli(*args)
            if marker.exists():
                return wrong(f"code from the model file ran (exit {run.code})")
            return judge_cli(
                run, r"not unpickled in full|weights-only|not a loadable|needs full unpickling"
            )

        return run

    for kind in ("torch-exec", "torch-system", "torch-nested", "plain-pickle", "plain-pickle-proto0",
                 "state-dict-evil-widths", "module-attr-evil"):  # fmt: skip
        cases.append(Case(f"pickle/{kind}", "pickle", evil(kind), timeout=120))

    def legit(kind):
        def run(ctx):
            torch.manual_seed(0)
            net = torch.nn.Sequential(
                torch.nn.Linear(2, 6), torch.nn.ReLU(), torch.nn.Linear(6, 6), torch.nn.ReLU()
            )
            path = Path.cwd() / (
                "model.safetensors" if kind == "safetensors-widths" else "model.pt"
            )
            args = ["cells", "--model", path]
            if kind == "sequential":
                torch.save(net, path)
            elif kind == "state-dict-widths":
                torch.save(net.state_dict(), path)
                args += ["--widths", "2,6,6"]
            elif kind == "safetensors-widths":
                from safetensors.torch import save_file

                save_file(net.state_dict(), str(path))
                args += ["--widths", "2,6,6"]
            elif kind == "custom-class-trusted":
                custom = CustomNet()
                custom.load_state_dict(net.state_dict())
                torch.save(custom, path)
                args += ["--trust-pickle"]
            run = ctx.cli(*args)

            def check():
                match = re.search(r"cells:\s+(\d+)", run.output)
                if not match:
                    return wrong(f"no cell count in the output: {_short(run.output)}")
                found, lower = int(match.group(1)), _grid_patterns(net)
                good = lower <= found <= 4 * lower + 10
                return judge(good, f"{found} cells, grid sees {lower}")

            return judge_cli(run, None, check, valid=True)

        return run

    for kind in ("sequential", "state-dict-widths", "safetensors-widths", "custom-class-trusted"):
        cases.append(Case(f"pickle/legit-{kind}", "pickle", legit(kind), valid=True, timeout=120))

    junk = {
        "custom-class-untrusted": (lambda p: torch.save(CustomNet(), p), r"needs full unpickling|--trust-pickle"),
        "empty-file": (lambda p: p.write_bytes(b""), r"not|cannot be read"),
        "garbage": (lambda p: p.write_bytes(os.urandom(512)), r"not|cannot be read"),
        "truncated-zip": (lambda p: (torch.save(torch.nn.Sequential(torch.nn.Linear(2, 3)), p), p.write_bytes(p.read_bytes()[:300])), r"not|cannot be read"),
        "tensor": (lambda p: torch.save(torch.zeros(3), p), r"not an nn.Module"),
        "list-of-ints": (lambda p: torch.save([1, 2, 3], p), r"not|network|layer|Module"),
        "dict-of-strings": (lambda p: torch.save({"a": "b"}, p), r"dict|state dict"),
        "folder": (lambda p: p.mkdir(), r"not found|not a file|folder"),
        "missing": (lambda p: None, r"not found|does not exist"),
        "state-dict-no-widths": (lambda p: torch.save(torch.nn.Linear(2, 3).state_dict(), p), r"state dict|--widths"),
        "only-linear": (lambda p: torch.save(torch.nn.Sequential(torch.nn.Linear(2, 3)), p), None),
        "input-dim-1": (lambda p: torch.save(torch.nn.Sequential(torch.nn.Linear(1, 3), torch.nn.ReLU()), p), r"input dimension 1"),
        "nan-weights": (lambda p: torch.save(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU()).apply(lambda m: [t.data.fill_(float("nan")) for t in m.parameters(recurse=False)]), p), r"NaN|finite"),
        "conv-no-shape": (lambda p: torch.save(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU()), p), r"input-shape|shape"),
        "huge-linear-meta": (lambda p: torch.save(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU()), p), None),
    }  # fmt: skip
    for name, (write, expect) in junk.items():

        def run(ctx, write=write, expect=expect):
            path = Path.cwd() / "model.pt"
            write(path)
            result = ctx.cli("cells", "--model", path)

            def check():
                match = re.search(r"cells:\s+(\d+)", result.output)
                return judge(bool(match), f"decomposed: {_short(result.output[-200:])}")

            return judge_cli(
                result, expect, check if expect is None else None, valid=expect is None
            )

        cases.append(Case(f"pickle/{name}", "pickle", run, timeout=120))
    widths = {
        "state-dict-wrong-shape": (["--widths", "2,5"], lambda p: torch.save(torch.nn.Linear(2, 3).state_dict(), p), r"does not fit"),
        "state-dict-nan-tensor": (["--widths", "2,3"], lambda p: torch.save({"0.weight": torch.full((3, 2), float("nan")), "0.bias": torch.zeros(3)}, p), r"NaN|finite"),
        "safetensors-garbage": (["--widths", "2,3"], None, r"safetensors|corrupt"),
    }  # fmt: skip
    for name, (extra, write, expect) in widths.items():

        def run(ctx, extra=extra, write=write, expect=expect):
            path = Path.cwd() / ("w.safetensors" if write is None else "w.pt")
            if write is None:
                path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
            else:
                write(path)
            return judge_cli(ctx.cli("cells", "--model", path, *extra), expect)

        cases.append(Case(f"pickle/{name}", "pickle", run, timeout=120))
    return cases


# ------------------------------------------------------------------------------ CLI


def _out_paths(ctx: Ctx, kind: str) -> dict[str, str]:
    base = Path.cwd()
    blocker = base / "a-file"
    blocker.write_text("x")
    (base / "a-dir").mkdir(exist_ok=True)
    common = {
        "under-a-file": str(blocker / ("x.npy" if kind == "file" else "out")),
        "proc": "/proc/aeot-probe" + (".npy" if kind == "file" else ""),
        "sys": "/sys/aeot-probe" + (".npy" if kind == "file" else ""),
        "dev-null-parent": "/dev/null/out" + (".npy" if kind == "file" else ""),
    }
    if kind == "file":
        common.update({"is-a-folder": str(base / "a-dir"), "txt-suffix": str(base / "s.txt"),
                       "no-suffix": str(base / "samples"), "empty": ""})  # fmt: skip
    else:
        common.update({"is-a-file": str(blocker)})
    return common


CLI_COMMANDS = {
    "fit": ("folder", ["fit", "{points}", "--autoencoder", "identity", "-o", "{out}"]),
    "fit-gan": ("folder", ["fit-gan", "{model}", "{points}", "-o", "{out}"]),
    "demo": ("folder", ["demo", "--quick", "-o", "{out}"]),
    "compare": ("folder", ["compare", "grid25", "--quick", "-o", "{out}"]),
    "sample": ("file", ["sample", "{model}", "-n", "10", "-o", "{out}"]),
    "interpolate": ("file", ["interpolate", "{model}", "--from", "0", "--to", "1", "-o", "{out}"]),
    "cells": ("file-png", ["cells", "--widths", "2,8,8", "-o", "{out}"]),
}


def cli_cases() -> list[Case]:
    cases = []
    for command, (kind, template) in CLI_COMMANDS.items():
        names = _out_path_names("file" if kind.startswith("file") else "folder")
        for where in names:

            def run(ctx, template=template, kind=kind, where=where):
                out = _out_paths(ctx, "file" if kind.startswith("file") else "folder")[where]
                if kind == "file-png" and out.endswith(".npy"):
                    out = out[:-4] + ".png"
                args = [
                    a.format(
                        points=ctx.fixture("points_a.npy"), model=ctx.fixture("pts_a"), out=out
                    )
                    for a in template
                ]
                start = time.perf_counter()
                result = ctx.cli(*args)
                verdict = judge_cli(
                    result,
                    r"--out|--output|out|folder|file|cannot write|suffix|use \.png|not a folder|exists",
                )
                if verdict.outcome == "clear_error" and time.perf_counter() - start > 20:
                    return Verdict(
                        "misleading_error",
                        f"refused only after {time.perf_counter() - start:.0f} s of work",
                    )
                return verdict

            cases.append(Case(f"cli/{command}-out-{where}", "cli", run, timeout=120))
    bad = [
        (["sample", "{model}", "-o", "s.npy", "--seed", "-1"], r"--seed must be >= 0"),
        (["sample", "{model}", "-o", "s.npy", "--seed", str(2**70)], r"seed"),
        (["sample", "{model}", "-o", "s.npy", "--seed", "x"], r"seed|Invalid value"),
        (["sample", "{model}", "-o", "s.npy", "-n", "0"], r"-n must be positive"),
        (["sample", "{model}", "-o", "s.npy", "-n", "-3"], r"-n must be positive"),
        (["sample", "{model}", "-o", "s.npy", "-n", "x"], r"-n|Invalid value"),
        (["sample", "{model}", "-o", "s.npy", "-n", str(2**70)], r"-n|Invalid value|too large"),
        (["sample", "{model}", "-o", "s.npy", "--device", "tpu"], r"device"),
        (["sample", "{model}", "-o", "s.npy", "--device", "cuda"], r"CUDA|device"),
        (["sample", "{model}", "-o", "s.npy", "--device", "meta"], r"meta|device"),
        (["sample", "{model}", "-o", "s.png", "-n", "4"], r"a PNG shows images or 2D points"),
        (["sample", "{model}", "-o", "s.png", "-n", "20000"], r"at most 10000"),
        (["sample", "nowhere", "-o", "s.npy"], r"model folder not found"),
        (["sample", "{points}", "-o", "s.npy"], r"not found|folder"),
        (["sample", "{model}"], r"Missing option|--out"),
        (["fit", "{points}", "-o", "m", "--seed", "-1"], r"--seed must be >= 0"),
        (["fit", "{points}", "-o", "m", "--latent-dim", "0"], r"latent_dim"),
        (["fit", "{points}", "-o", "m", "--latent-dim", "-5"], r"latent_dim"),
        (["fit", "{points}", "-o", "m", "--latent-dim", str(10**7)], r"latent_dim"),
        (["fit", "{points}", "-o", "m", "--epochs", "-1"], r"epochs"),
        (["fit", "{points}", "-o", "m", "--ot-tol", "0"], r"ot_tol"),
        (["fit", "{points}", "-o", "m", "--ot-tol", "nan"], r"ot_tol"),
        (["fit", "{points}", "-o", "m", "--ot-tol", "-1"], r"ot_tol"),
        (["fit", "{points}", "-o", "m", "--ot-tol", "inf"], r"ot_tol"),
        (["fit", "{points}", "-o", "m", "--ot-max-iter", "0"], r"ot_max_iter"),
        (["fit", "{points}", "-o", "m", "--autoencoder", "foo"], r"autoencoder"),
        (["fit", "{points}", "-o", "m", "--device", "tpu"], r"device"),
        (["fit", "nonsense-dataset", "-o", "m"], r"nonsense-dataset|unknown|not found"),
        (["fit-gan", "{model}", "{points}", "-o", "g", "--steps", "0"], r"steps|image"),
        (["fit-gan", "{model}", "{points}", "-o", "g", "--batch-size", "-1"], r"batch|image"),
        (["fit-gan", "{model}", "{points}", "-o", "g", "--content-loss", "x"], r"content|image"),
        (["fit-gan", "{model}", "{points}", "-o", "g", "--seed", "-1"], r"--seed must be >= 0"),
        (
            ["fit-gan", "{model}", "{points}", "-o", "g"],
            r"image|points|needs an AEOT model with an autoencoder",
        ),
        (
            ["interpolate", "{model}", "--from", "-1", "--to", "1", "-o", "i.npy"],
            r"index -1 out of range",
        ),
        (
            ["interpolate", "{model}", "--from", "0", "--to", str(10**6), "-o", "i.npy"],
            r"out of range",
        ),
        (
            ["interpolate", "{model}", "--from", "0", "--to", "1", "--steps", "0", "-o", "i.npy"],
            r"steps",
        ),
        (
            ["interpolate", "{model}", "--from", "0", "--to", "1", "--steps", "-2", "-o", "i.npy"],
            r"steps",
        ),
        (
            [
                "interpolate",
                "{model}",
                "--from",
                "0",
                "--to",
                "1",
                "--steps",
                str(10**9),
                "-o",
                "i.npy",
            ],
            r"steps",
        ),
        (
            ["interpolate", "{model}", "--from", "x", "--to", "1", "-o", "i.npy"],
            r"Invalid value|--from",
        ),
        (
            ["interpolate", "{model}", "--from", "0", "--to", "1", "-o", "i.png"],
            r"a PNG shows images or 2D points",
        ),
        (["cells", "--widths", "a,b"], r"comma separated integers"),
        (["cells", "--widths", "2"], r"widths|layer"),
        (["cells", "--widths", "2,0"], r"widths|positive"),
        (["cells", "--widths", "2,-3"], r"widths|positive"),
        (["cells", "--widths", "2,100000,100000"], r"widths|limit|too"),
        (["cells", "--widths", "2,8", "--smin", "1", "--smax", "0"], r"smin|box|bound"),
        (["cells", "--widths", "2,8", "--smin", "nan"], r"smin|finite|box|bound"),
        (["cells", "--widths", "2,8", "--rtol", "-1"], r"rtol"),
        (["cells", "--widths", "2,8", "--axes", "0,0"], r"axes"),
        (["cells", "--widths", "2,8", "--axes", "5,6"], r"axes|dimension|range"),
        (["cells", "--widths", "2,8", "--axes", "0"], r"axes|two"),
        (["cells", "--widths", "2,8", "--input-shape", "x"], r"input-shape|integers"),
        (["cells", "--widths", "2,8", "--bias-std", "nan"], r"bias"),
        (["cells", "--widths", "2,8", "--bias-std", "-1"], r"bias"),
        (["cells", "--widths", "2,8", "--seed", "-1"], r"seed"),
        (["cells"], r"give --model, --widths"),
        (["cells", "--widths", "2,8", "--trust-pickle"], r"--trust-pickle applies"),
        (["compare", "nonsense", "--quick", "-o", "c"], r"unknown experiment"),
        (["compare", "grid25", "--seeds", "0", "-o", "c"], r"--seeds must be at least 1"),
        (["demo", "--seed", "-1", "-o", "r"], r"--seed must be >= 0"),
        (["nonsense-command"], r"No such command"),
        (["sample", "--n", "3"], r"No such option|Missing"),
    ]
    for i, (args, expect) in enumerate(bad):

        def run(ctx, args=args, expect=expect):
            filled = [
                a.format(points=ctx.fixture("points_a.npy"), model=ctx.fixture("pts_a"))
                for a in args
            ]
            return judge_cli(ctx.cli(*filled), expect)

        label = "-".join(a for a in args if not a.startswith("{"))[:60]
        cases.append(Case(f"cli/bad-{i:02d}-{label}", "cli", run, expect=expect, timeout=120))
    # bad data files for `aeot fit`
    data_files = {
        "nan": (lambda p: np.save(p, np.r_[np.random.default_rng(0).uniform(size=(20, 2)), [[np.nan, 0]]]), r"NaN|finite"),
        "inf": (lambda p: np.save(p, np.r_[np.random.default_rng(0).uniform(size=(20, 2)), [[np.inf, 0]]]), r"NaN|finite|infinite"),
        "one-row": (lambda p: np.save(p, np.zeros((1, 2))), r"at least|one|samples|row"),
        "all-equal": (lambda p: np.save(p, np.full((10, 3), 0.25)), None),
        "3d": (lambda p: np.save(p, np.zeros((4, 2, 3))), r"identity.*needs points.*images"),
        "strings": (lambda p: np.save(p, np.array([["a", "b"]])), r"numeric"),
        "object-pickle": (lambda p: np.save(p, np.array([[1, None]], dtype=object), allow_pickle=True), r"pickle|corrupt|object"),
        "empty-array": (lambda p: np.save(p, np.zeros((0, 2))), r"empty|samples|at least"),
        "empty-file": (lambda p: p.write_bytes(b""), r"corrupt|empty"),
        "garbage": (lambda p: p.write_bytes(os.urandom(300)), r"corrupt"),
        "complex": (lambda p: np.save(p, np.ones((10, 2), dtype=complex)), r"numeric|complex|real"),
        "huge-1e300": (lambda p: np.save(p, np.random.default_rng(0).uniform(size=(20, 2)) * 1e300), r"range|float32"),
        "bool": (lambda p: np.save(p, np.random.default_rng(0).uniform(size=(20, 3)) > 0.5), None),
        "int64": (lambda p: np.save(p, np.random.default_rng(0).integers(0, 1000, (30, 3))), None),
        "float16": (lambda p: np.save(p, np.random.default_rng(0).uniform(size=(30, 3)).astype(np.float16)), None),
        "wide-1d": (lambda p: np.save(p, np.zeros(10)), r"shape|points|expected"),
    }  # fmt: skip
    for name, (write, expect) in data_files.items():

        def run(ctx, write=write, expect=expect):
            path = Path.cwd() / "data.npy"
            write(path)
            result = ctx.cli(
                "fit", path, "-o", "m", "--autoencoder", "identity", "--latent-dim", "3"
            )

            def check():
                data = np.load(path).astype(np.float64)
                model = AEOT.load("m")
                s = f64(model.sample(500, seed=0))
                inside = ((s >= data.min(0) - 1e-3) & (s <= data.max(0) + 1e-3)).all()
                converged = json.loads(Path("m/config.json").read_text())["ot"]["converged"]
                warned = "warning" in result.output.lower()
                good = bool(np.isfinite(s).all() and inside and (converged or warned))
                return judge(good, f"fit a model whose samples stay in the data's box: {good}")

            return judge_cli(
                result, expect, check if expect is None else None, valid=expect is None
            )

        cases.append(Case(f"cli/fit-data-{name}", "cli", run, expect=expect, timeout=120))
    # a valid sample run, and its .npy compared with the library
    for n in (1, 7, 100):

        def run(ctx, n=n):
            result = ctx.cli("sample", ctx.fixture("pts_a"), "-n", n, "--seed", "5", "-o", "s.npy")

            def check():
                ref = f64(AEOT.load(ctx.fixture("pts_a")).sample(n, seed=5))
                return judge(np.array_equal(np.load("s.npy"), ref), "CLI samples equal AEOT.sample")

            return judge_cli(result, None, check, valid=True)

        cases.append(Case(f"cli/sample-valid-n{n}", "cli", run, valid=True))
    return cases


def _out_path_names(kind: str) -> list[str]:
    names = ["under-a-file", "proc", "sys", "dev-null-parent"]
    return names + (
        ["is-a-folder", "txt-suffix", "no-suffix", "empty"] if kind == "file" else ["is-a-file"]
    )


# -------------------------------------------------------------- kill during save


_SAVER = """
import sys
from aeot.pipeline import AEOT
a, b = AEOT.load(sys.argv[1]), AEOT.load(sys.argv[2])
print("ready", flush=True)
while True:
    b.save(sys.argv[3])
    a.save(sys.argv[3])
"""


def _saver_child(a: Path, b: Path, folder: Path, write_fd: int) -> None:
    """Grandchild body: load two fits, then save them alternately into ``folder``."""
    try:
        ma, mb = AEOT.load(a), AEOT.load(b)
        os.write(write_fd, b"r")
        while True:
            mb.save(folder)
            ma.save(folder)
    finally:
        os._exit(1)


def _kill_after(fn, delay: float) -> None:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        fn(write_fd)
    os.close(write_fd)
    select.select([read_fd], [], [], 60)
    os.read(read_fd, 1)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(read_fd)


def kill_cases(n_save: int = 30, n_sample: int = 10, n_fresh: int = 5) -> list[Case]:
    cases = []
    rng = random.Random(20)
    for i in range(n_save):
        delay = rng.uniform(0.0, 0.6)

        def run(ctx, delay=delay):
            folder = ctx.model("mlp_a")
            a, b = ctx.fixture("mlp_a"), ctx.fixture("mlp_b")
            _kill_after(lambda fd: _saver_child(a, b, folder, fd), delay)
            if not folder.exists():
                try:
                    AEOT.load(folder)
                except FileNotFoundError as exc:
                    good = "interrupted save left the previous model" in str(exc)
                    return Verdict("clear_error" if good else "misleading_error", _short(str(exc)))
                return wrong("a missing folder loaded")
            model = AEOT.load(folder)
            same = [name for name in ("mlp_a", "mlp_b") if _same_as_fixture(model, ctx, name)]
            if not same:
                return wrong("the loaded model is neither fit: a mix of two saves")
            model.save(folder)
            left = [
                p.name
                for p in folder.parent.iterdir()
                if p.name.startswith(".") or ".tmp" in p.name
            ]
            left += [p.name for p in folder.iterdir() if ".tmp" in p.name or p.name.startswith(".")]
            return judge(
                not left, f"loaded {same[0]} whole after a kill at {delay:.3f} s; leftovers: {left}"
            )

        cases.append(Case(f"kill/save-{i:02d}-at-{delay:.3f}s", "kill_save", run, timeout=90))
    for i in range(n_fresh):
        delay = rng.uniform(0.0, 0.4)

        def run(ctx, delay=delay):
            folder = ctx.tmp() / "new-model"
            a = ctx.fixture("mlp_a")
            _kill_after(lambda fd: _saver_child(a, a, folder, fd), delay)
            if not folder.exists():
                left = [p.name for p in folder.parent.iterdir()]
                AEOT.load(folder)
                return wrong(f"a missing folder loaded ({left})")
            return judge(
                _same_as_fixture(AEOT.load(folder), ctx, "mlp_a"),
                "a first save killed: whole or absent",
            )

        cases.append(Case(f"kill/first-save-{i}-at-{delay:.3f}s", "kill_save", run,
                          expect=r"model folder not found", timeout=90))  # fmt: skip
    for i in range(n_sample):
        delay = rng.uniform(0.0, 1.5)

        def run(ctx, delay=delay):
            out = Path.cwd() / "big.npy"
            model = ctx.fixture("pts_a")

            def sampler(fd):
                os.write(fd, b"r")
                ctx.cli("sample", model, "-n", "400000", "-o", out)
                os._exit(0)

            _kill_after(sampler, delay)
            if not out.exists():
                left = [p.name for p in out.parent.iterdir() if p.name not in ("a-file", "a-dir")]
                return judge(
                    not any(n.endswith(".npy") for n in left), f"killed before the rename: {left}"
                )
            data = np.load(out)
            ref = f64(AEOT.load(model).sample(400000))
            return judge(
                np.array_equal(data, ref), f"a complete .npy after a kill at {delay:.2f} s"
            )

        cases.append(Case(f"kill/sample-npy-{i}-at-{delay:.2f}s", "kill_save", run, timeout=120))
    return cases


# ---------------------------------------------------------------- fresh interpreter


def fresh_cases() -> list[Case]:
    """The real ``aeot`` entry point in a fresh interpreter (checks the fork emulation)."""
    cases = []

    def fresh(args: list[str], env: dict | None = None) -> CliRun:
        code = "import sys; from aeot.cli import main; sys.argv[0] = 'aeot'; main()"
        full_env = {**os.environ, **(env or {})}
        proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                              text=True, timeout=150, env=full_env)  # fmt: skip
        if proc.returncode < 0:
            return CliRun(
                proc.returncode, f"killed by signal {-proc.returncode}: {proc.stderr[-300:]}"
            )
        return CliRun(proc.returncode, proc.stdout + proc.stderr)

    def f16_model(ctx):
        folder = ctx.model("pts_a")
        _edit_ot(
            folder, lambda t: [t.__setitem__(k, t[k].half()) for k in ("targets", "h", "codes")]
        )
        run = fresh(["sample", folder, "-n", "100000", "-o", "s.npy"])
        return judge_cli(
            run,
            None,
            lambda: judge(np.isfinite(np.load("s.npy")).all(), "float16 model sampled"),
            valid=True,
        )

    def corrupt(ctx):
        folder = ctx.model("mlp_a")
        _flip(folder / "autoencoder.safetensors", 0.7)
        return judge_cli(
            fresh(["sample", folder, "-o", "s.npy"]), r"autoencoder.safetensors differs"
        )

    def seed(ctx):
        return judge_cli(
            fresh(["sample", ctx.fixture("pts_a"), "-o", "s.npy", "--seed", "-1"]),
            r"--seed must be >= 0",
        )

    def proc_out(ctx):
        return judge_cli(
            fresh(["sample", ctx.fixture("pts_a"), "-o", "/proc/x.npy"]), r"cannot write|--out"
        )

    def evil_pickle(ctx):
        marker = Path.cwd() / "PWNED"
        torch.save(_Evil(str(marker)), "evil.pt")
        run = fresh(["cells", "--model", "evil.pt"])
        if marker.exists():
            return wrong("code from the model file ran")
        return judge_cli(run, r"not unpickled in full|needs full unpickling|weights-only")

    for name, fn in (("f16-model-sample", f16_model), ("flipped-ae-byte", corrupt),
                     ("seed--1", seed), ("out-in-proc", proc_out),
                     ("evil-pickle-cells", evil_pickle)):  # fmt: skip
        cases.append(Case(f"fresh/{name}", "fresh", fn, timeout=320))
    return cases


# ===================================================================== fixtures


def build_fixtures(root: Path) -> None:
    """Models and data every case copies (built in a child, so the parent runs nothing)."""
    fx = root / "fixtures"
    fx.mkdir(parents=True)
    pts_a = torch.rand(40, 3, generator=torch.Generator().manual_seed(0))
    pts_b = torch.rand(40, 3, generator=torch.Generator().manual_seed(1))
    np.save(fx / "points_a.npy", pts_a.double().numpy())
    for name, pts, seed in (("pts_a", pts_a, 0), ("pts_b", pts_b, 1)):
        AEOT(autoencoder="identity", n_graph_samples=2**12, progress=False, seed=seed).fit(
            pts
        ).save(fx / name)
    for name, seed in (("mlp_a", 0), ("mlp_b", 1)):
        model = AEOT(autoencoder="mlp", latent_dim=3, hidden=(8,), epochs=1, n_graph_samples=2**12,
                     ot_max_iter=5, seed=seed, progress=False)  # fmt: skip
        model.fit(torch.rand(40, 6, generator=torch.Generator().manual_seed(seed))).save(fx / name)


def all_cases() -> list[Case]:
    return (
        dtype_cases()
        + value_cases()
        + near_duplicate_cases()
        + h0_cases()
        + settings_cases()
        + model_folder_cases()
        + native_cases()
        + pickle_cases()
        + cli_cases()
        + kill_cases()
        + fresh_cases()
    )


def tally(results: list[dict]) -> list[tuple[str, dict]]:
    rows = []
    categories = sorted({r["category"] for r in results}, key=[c.category for c in _ORDER].index)
    for category in [*categories, "total"]:
        chosen = [r for r in results if category in ("total", r["category"])]
        counts = {o: sum(r["outcome"] == o for r in chosen) for o in OUTCOMES}
        rows.append((category, {"inputs": len(chosen), **counts}))
    return rows


def format_table(rows) -> str:
    head = ["category", "inputs", "clear errors", "correct", "hangs", "crashes", "silent wrong",
            "misleading", "probe errors"]  # fmt: skip
    keys = ["inputs", *OUTCOMES]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for category, counts in rows:
        cells = [
            f"**{category}**" if category == "total" else category,
            *(str(counts[k]) for k in keys),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


_ORDER: list[Case] = []


def _commit() -> str:
    """The git commit of the aeot that ran, with "+changes" when its tree differs."""
    src = Path(aeot.__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=30).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=30).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "not a git checkout") + ("+changes" if dirty else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file with every case")
    parser.add_argument("--only", nargs="*", default=None, help="categories or id substrings")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    cases = all_cases()
    seen = set()
    for case in cases:
        if case.category not in seen:
            seen.add(case.category)
            _ORDER.append(case)
    if args.only:
        cases = [c for c in cases if any(o == c.category or o in c.id for o in args.only)]
    if args.list:
        for case in cases:
            print(case.category, case.id)
        print(f"{len(cases)} cases")
        return 0
    root = Path(tempfile.mkdtemp(prefix="aeot-probe-"))
    (root / "work").mkdir()
    (root / "logs").mkdir()
    started = time.perf_counter()
    try:
        assert native.load.cache_info().currsize == 0, "the parent must not load the kernels"
        built = run_case(
            Case(
                "fixtures", "fixtures", lambda ctx: (build_fixtures(ctx.root), ok())[1], timeout=600
            ),
            root,
        )
        if built["outcome"] != "correct":
            print(f"building the fixtures failed: {built}", file=sys.stderr)
            return 1
        results = []
        for i, case in enumerate(cases, 1):
            result = run_case(case, root)
            results.append(result)
            flag = (
                ""
                if result["outcome"] in ("clear_error", "correct")
                else "   <-- " + result["detail"][:200]
            )
            print(
                f"[{i:3d}/{len(cases)}] {result['outcome']:16s} {result['seconds']:6.2f}s {case.id}{flag}",
                flush=True,
            )
            for leftover in (root / "work").iterdir():  # each case's files go with it
                shutil.rmtree(leftover, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    elapsed = time.perf_counter() - started
    rows = tally(results)
    table = format_table(rows)
    print()
    print(table)
    print(
        f"\n{len(results)} cases in {elapsed:.0f} s (torch {torch.__version__}, aeot {aeot.__version__})"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "aeot": aeot.__file__,
        "commit": _commit(),
        "seconds": round(elapsed, 1),
        "tally": dict(rows),
        "cases": results,
    }, indent=1))  # fmt: skip
    bad = rows[-1][1]
    return 1 if bad["hang"] or bad["crash"] or bad["silent_wrong"] or bad["probe_error"] else 0


if __name__ == "__main__":
    sys.exit(main())
