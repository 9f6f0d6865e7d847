"""Checkpoint and resume of the Monte-Carlo solver: same iterates, no stale resumes."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from aeot.ot import SemiDiscreteProblem, solve_semidiscrete
from aeot.ot.montecarlo import load_solver_checkpoint

# a solve that does not converge within max_iter, so every iteration updates h
SETTINGS = dict(tol=1e-4, max_iter=12, batch_size=2**12, max_batch_size=2**13, seed=3)


def _problem(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return SemiDiscreteProblem(rng.uniform(0, 1, (n, d)), rng.dirichlet(np.ones(n) * 5))


def _same(a, b):
    assert torch.equal(a.h, b.h)
    assert a.errors == b.errors
    assert (a.n_iter, a.n_samples, a.converged) == (b.n_iter, b.n_samples, b.converged)


@pytest.mark.parametrize("method", ["pool", "jacobi", "newton", "adam", "nesterov"])
def test_resume_after_interruption_gives_the_same_result(tmp_path, method):
    problem = _problem()
    full = solve_semidiscrete(problem, method=method, **SETTINGS)
    path = tmp_path / "ot.ckpt"
    # the first process stops after 5 iterations (as if killed after its 5th checkpoint)
    part = solve_semidiscrete(
        problem, method=method, checkpoint_path=path, **{**SETTINGS, "max_iter": 5}
    )
    assert part.n_iter == 5
    assert load_solver_checkpoint(path)["tensors"]["h"].shape == (40,)
    resumed = solve_semidiscrete(problem, method=method, checkpoint_path=path, **SETTINGS)
    _same(resumed, full)


def test_checkpoint_every_and_a_finished_run(tmp_path):
    problem = _problem(seed=1)
    path = tmp_path / "ot.ckpt"
    first = solve_semidiscrete(problem, checkpoint_path=path, checkpoint_every=4, **SETTINGS)
    assert json.loads(load_solver_checkpoint(path)["state"])["iteration"] == 12
    again = solve_semidiscrete(problem, checkpoint_path=path, checkpoint_every=4, **SETTINGS)
    _same(again, first)


_CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import torch
    torch.set_num_threads(1)
    from aeot.ot import SemiDiscreteProblem, solve_semidiscrete
    rng = np.random.default_rng(0)
    problem = SemiDiscreteProblem(rng.uniform(0, 1, (40, 3)), rng.dirichlet(np.ones(40) * 5))
    solve_semidiscrete(problem, checkpoint_path=sys.argv[1], callback=lambda info: time.sleep(0.3),
                       tol=1e-4, max_iter=12, batch_size=2**12, max_batch_size=2**13, seed=3)
    print("finished")
    """
)


def test_sigkill_mid_solve_then_resume(tmp_path):
    """A solver process killed with SIGKILL after its first checkpoint resumes exactly."""
    path = tmp_path / "ot.ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)], env=env, stdout=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    assert path.exists(), "the child wrote no checkpoint"
    os.kill(child.pid, signal.SIGKILL)
    out, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert b"finished" not in out
    done = json.loads(load_solver_checkpoint(path)["state"])["iteration"]
    assert 1 <= done < 12
    assert not list(tmp_path.glob(".*.tmp"))  # no partial temporary files left behind
    problem = _problem()
    resumed = solve_semidiscrete(problem, checkpoint_path=path, **SETTINGS)
    _same(resumed, solve_semidiscrete(problem, **SETTINGS))


@pytest.mark.parametrize(
    "change, match",
    [
        ({"seed": 4}, "seed"),
        ({"tol": 2e-4}, "tol"),
        ({"method": "adam"}, "method"),
        ({"dtype": torch.float64}, "dtype"),
        ({"problem": 2}, "targets_hash"),
        ({"h0": True}, "h0_hash"),
    ],
)
def test_mismatched_checkpoint_is_refused(tmp_path, change, match):
    path = tmp_path / "ot.ckpt"
    solve_semidiscrete(_problem(), checkpoint_path=path, **{**SETTINGS, "max_iter": 2})
    before = path.read_bytes()
    change = dict(change)
    problem = _problem(seed=change.pop("problem", 0))
    h0 = np.zeros(40) if change.pop("h0", False) else None
    with pytest.raises(ValueError, match=f"different run.*{match}"):
        solve_semidiscrete(problem, checkpoint_path=path, h0=h0, **{**SETTINGS, **change})
    assert path.read_bytes() == before  # the foreign checkpoint is left alone


def test_weights_and_source_are_fingerprinted(tmp_path):
    from aeot.ot import BoxUniform

    path = tmp_path / "ot.ckpt"
    problem = _problem()
    solve_semidiscrete(problem, checkpoint_path=path, **{**SETTINGS, "max_iter": 2})
    other_weights = SemiDiscreteProblem(problem.targets, None)
    with pytest.raises(ValueError, match="weights_hash"):
        solve_semidiscrete(other_weights, checkpoint_path=path, **SETTINGS)
    other_source = SemiDiscreteProblem(problem.targets, problem.weights, BoxUniform(3, -1.0, 1.0))
    with pytest.raises(ValueError, match="source"):
        solve_semidiscrete(other_source, checkpoint_path=path, **SETTINGS)


def test_larger_max_iter_continues(tmp_path):
    """max_iter is not fingerprinted: a finished run extended equals a longer run."""
    path = tmp_path / "ot.ckpt"
    problem = _problem()
    solve_semidiscrete(problem, checkpoint_path=path, **{**SETTINGS, "max_iter": 6})
    extended = solve_semidiscrete(problem, checkpoint_path=path, **SETTINGS)
    _same(extended, solve_semidiscrete(problem, **SETTINGS))


@pytest.mark.parametrize(
    "content, error",
    [
        (b"", ValueError),
        (b"not a checkpoint at all", ValueError),
        (None, ValueError),  # a valid torch file that is not a solver checkpoint
    ],
)
def test_corrupt_checkpoint(tmp_path, content, error):
    path = tmp_path / "ot.ckpt"
    if content is None:
        torch.save({"epoch": 3}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(error, match="checkpoint"):
        solve_semidiscrete(_problem(), checkpoint_path=path, **SETTINGS)


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "ot.ckpt"
    solve_semidiscrete(_problem(), checkpoint_path=path, **{**SETTINGS, "max_iter": 2})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        solve_semidiscrete(_problem(), checkpoint_path=path, **SETTINGS)


def test_bad_checkpoint_every():
    with pytest.raises(ValueError, match="checkpoint_every"):
        solve_semidiscrete(_problem(), checkpoint_path="unused.ckpt", checkpoint_every=0)
