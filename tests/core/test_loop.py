"""aeot.core: the resumable training loop, its checkpoint file and RNG streams, on a toy
regression whose every step draws from both streams (batches from the run's generator,
input noise and dropout from the global RNG)."""

import json

import pytest
import torch
from torch import nn

from aeot.core import Checkpoint, TrainState, capture_rng, forked_rng, restore_rng, run_loop
from aeot.core import checkpoint as checkpoint_module

_g = torch.Generator().manual_seed(0)
X = torch.randn(64, 3, generator=_g)
Y = X @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(64, 1, generator=_g)


class Interrupted(Exception):
    """Stands for a killed process: raised from inside a step."""


class Toy:
    """A small net trained by run_loop; a new instance is a new process (own init)."""

    def __init__(self, path=None, *, init_seed=1, seed=0, lr=1e-2):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.model = nn.Sequential(nn.Linear(3, 16), nn.Dropout(0.3), nn.Linear(16, 1))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.seed = seed
        self.checkpoint = None
        if path is not None:
            self.checkpoint = Checkpoint(
                path,
                {"toy": 1, "seed": seed, "lr": lr},
                {"model": self.model, "optimizer": self.opt},
                counter="iteration",
                what="toy",
            )

    def fit(self, total, *, every=1, fail_at=None, nan_at=None, calls=None, **kw):
        with forked_rng("cpu", self.seed):
            state = TrainState(
                torch.Generator().manual_seed(self.seed + 1),
                "cpu",
                history={"loss": [], "noise": []},
            )

            def step(t):
                if calls is not None:
                    calls.append(t)
                if t == fail_at:
                    raise Interrupted(t)
                idx = torch.randint(X.shape[0], (16,), generator=state.generator)
                noise = 0.1 * torch.randn(16, 3)
                self.model.train()
                loss = nn.functional.mse_loss(self.model(X[idx] + noise), Y[idx])
                if t == nan_at:
                    loss = loss * float("nan")
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                return {"loss": float(loss.detach()), "noise": float(noise.sum())}

            run_loop(
                step,
                state,
                total,
                checkpoint=self.checkpoint,
                every=every,
                name="toy training",
                unit="iteration",
                **kw,
            )
        return state

    def params(self):
        return [p.detach().clone() for p in self.model.parameters()]


def same(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


# --------------------------------------------------------------------------- resume


@pytest.mark.parametrize(
    ("fail_at", "every"), [(0, 1), (1, 1), (3, 1), (5, 2), (6, 4), (9, 3), (9, 20)]
)
def test_resume_after_interruption_is_bit_identical(tmp_path, fail_at, every):
    straight = Toy()
    s_state = straight.fit(10)

    path = tmp_path / "toy.ckpt"
    with pytest.raises(Interrupted):
        Toy(path).fit(10, every=every, fail_at=fail_at)
    saved = (fail_at // every) * every  # the last checkpoint before the interruption
    if saved == 0:
        assert not path.exists()
    else:
        payload = torch.load(path, weights_only=True)
        assert payload["iteration"] == saved
        assert payload["history"] == {k: v[:saved] for k, v in s_state.history.items()}

    # with a checkpoint, another init (the checkpoint must replace it); without, a rerun
    resumed = Toy(path, init_seed=99 if saved else 1)
    calls = []
    r_state = resumed.fit(10, every=every, calls=calls)
    assert calls == list(range(saved, 10))  # only the steps after the checkpoint rerun
    assert r_state.step == 10
    assert r_state.history == s_state.history
    assert same(resumed.params(), straight.params())
    assert torch.equal(r_state.generator.get_state(), s_state.generator.get_state())


def test_resume_needs_the_rng_states(tmp_path, monkeypatch):
    """The toy draws from both streams: a resume that skipped them would not match."""
    straight = Toy().fit(8)
    path = tmp_path / "toy.ckpt"
    Toy(path).fit(4)
    monkeypatch.setattr(TrainState, "restore_rng", lambda self, state: None)
    assert Toy(path).fit(8).history != straight.history


def test_a_finished_run_only_reloads(tmp_path):
    path = tmp_path / "toy.ckpt"
    done = Toy(path)
    history = done.fit(6, every=4).history
    again, calls = Toy(path, init_seed=5), []
    assert again.fit(6, calls=calls).history == history
    assert calls == [] and same(again.params(), done.params())
    with pytest.raises(ValueError, match=r"already at iteration 6, beyond iterations=5"):
        Toy(path).fit(5)


def test_foreign_or_broken_checkpoints_are_refused(tmp_path):
    path = tmp_path / "toy.ckpt"
    Toy(path).fit(3)
    before = path.read_bytes()
    other = Toy(path, lr=0.5)
    untouched = other.params()
    with pytest.raises(ValueError, match=r"belongs to a different run \(lr: checkpoint 0.01"):
        other.fit(6)
    assert same(other.params(), untouched)  # nothing was loaded
    assert path.read_bytes() == before

    torch.save({"fingerprint": "{}", "iteration": 1}, path)
    with pytest.raises(ValueError, match="not an aeot toy checkpoint"):
        Toy(path).fit(6)
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        Toy(path).fit(6)


# ---------------------------------------------------------------- steps, checkpoints


@pytest.mark.parametrize(
    ("total", "every", "saves"),
    [(10, 1, list(range(1, 11))), (10, 3, [3, 6, 9, 10]), (10, 5, [5, 10]), (4, 20, [4])],
)
def test_checkpoint_schedule(tmp_path, monkeypatch, total, every, saves):
    written = []
    save = Checkpoint.save
    monkeypatch.setattr(
        Checkpoint, "save", lambda self, state: (written.append(state.step), save(self, state))
    )
    Toy(tmp_path / "toy.ckpt").fit(total, every=every)
    assert written == saves


def test_step_counting_and_on_step():
    seen = []
    state = TrainState(torch.Generator(), history=[])
    run_loop(
        lambda t: float(t) / 2,
        state,
        5,
        on_step=lambda s, loss: seen.append((s.step, len(s.history), loss)),
    )
    assert state.step == 5 and state.history == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert seen == [(t + 1, t + 1, t / 2) for t in range(5)]
    # a state already part-way continues from its step
    state = TrainState(torch.Generator(), history=[9.0, 9.0], step=2)
    calls = []
    run_loop(lambda t: calls.append(t) or 1.0, state, 4)
    assert calls == [2, 3] and state.history == [9.0, 9.0, 1.0, 1.0]
    with pytest.raises(ValueError, match=r"already at step 4, beyond steps=3"):
        run_loop(lambda t: 1.0, state, 3)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    straight = Toy().fit(8)
    path = tmp_path / "toy.ckpt"
    Toy(path).fit(4, every=2)
    before = path.read_bytes()

    def torn_save(obj, f):  # writes half a file, then the process "dies"
        with open(f, "wb") as handle:
            handle.write(before[: len(before) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        Toy(path).fit(8, every=2)
    assert path.read_bytes() == before  # the previous checkpoint survives whole
    assert [p.name for p in tmp_path.iterdir()] == ["toy.ckpt"]  # no temp file left
    monkeypatch.undo()
    assert Toy(path).fit(8, every=2).history == straight.history


# --------------------------------------------------------------------- divergence


def test_divergence_stops_before_recording_or_saving(tmp_path):
    path = tmp_path / "toy.ckpt"
    toy = Toy(path)
    with pytest.raises(
        FloatingPointError,
        match=r"^toy training diverged at iteration 6 \(loss = nan\); try a smaller lr$",
    ):
        toy.fit(10, every=2, nan_at=5)
    payload = torch.load(path, weights_only=True)
    assert payload["iteration"] == 4 and len(payload["history"]["loss"]) == 4

    # with the check off the NaN is recorded like any loss
    state = Toy().fit(7, nan_at=5, check_finite=False)
    assert state.step == 7 and state.history["loss"][5] != state.history["loss"][5]


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_divergence_names_the_first_bad_loss(bad):
    state = TrainState(torch.Generator(), history={"d": [], "g": []})
    with pytest.raises(FloatingPointError, match=rf"GAN diverged at round 3 \(g = {bad}\); hint"):
        run_loop(
            lambda t: {"d": 1.0, "g": bad if t == 2 else 0.0},
            state,
            5,
            name="GAN",
            unit="round",
            hint="hint",
        )
    assert state.step == 2 and state.history == {"d": [1.0, 1.0], "g": [0.0, 0.0]}


# ---------------------------------------------------------------------------- rng


def test_capture_and_restore_both_streams():
    gen = torch.Generator().manual_seed(3)
    with torch.random.fork_rng(devices=[]):
        saved = capture_rng("cpu", gen)
        first = (torch.rand(5), torch.rand(5, generator=gen))
        torch.rand(7), torch.rand(7, generator=gen)  # move both on
        restore_rng(saved, "cpu", gen)
        again = (torch.rand(5), torch.rand(5, generator=gen))
    assert set(saved) == {"torch", "shuffle"}
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    # a CUDA entry of a run moved to the CPU is ignored
    restore_rng({**saved, "cuda": torch.zeros(8, dtype=torch.uint8)}, "cpu", gen)


def test_forked_rng_seeds_and_leaves_the_caller_alone():
    torch.manual_seed(11)
    outside = torch.get_rng_state()
    with forked_rng("cpu", seed=4):
        inside = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), outside)
    torch.manual_seed(4)
    assert torch.equal(inside, torch.rand(3))
    with pytest.raises(RuntimeError), forked_rng("cpu"):
        torch.rand(9)
        raise RuntimeError
    torch.manual_seed(11)
    assert torch.equal(torch.get_rng_state(), outside)


def test_restore_rng_rejects_bad_states():
    gen = torch.Generator()
    good = capture_rng("cpu", gen)
    with pytest.raises(ValueError, match=r"must hold 'torch' and 'shuffle', got keys \['torch'\]"):
        restore_rng({"torch": good["torch"]}, "cpu", gen)
    with pytest.raises(ValueError, match=r"'shuffle' must be a uint8 tensor, got torch.float32"):
        restore_rng({**good, "shuffle": torch.zeros(3)}, "cpu", gen)
    with pytest.raises(ValueError, match="must be a dict, got list"):
        restore_rng([], "cpu", gen)
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator, got int"):
        capture_rng("cpu", 3)
    with pytest.raises(ValueError, match="device must name a torch device"):
        capture_rng("tpu9", gen)


# ------------------------------------------------------------------ file layout, API


def test_payload_layout_with_nested_parts(tmp_path):
    g, d = nn.Linear(2, 2), nn.Linear(2, 1)
    opts = {"g": torch.optim.SGD(g.parameters(), lr=0.1), "d": torch.optim.SGD(d.parameters())}
    ckpt = Checkpoint(
        tmp_path / "c.pt",
        {"b": 1, "a": (1, 2)},
        {"modules": {"g": g, "d": d}, "optimizers": opts},
        counter="iteration",
    )
    state = TrainState(torch.Generator(), history={"x": [1.0]}, step=1)
    ckpt.save(state)
    payload = ckpt.read()
    assert list(payload) == ["fingerprint", "iteration", "history", "modules", "optimizers", "rng"]
    assert payload["fingerprint"] == json.dumps({"b": 1, "a": [1, 2]}, sort_keys=True)
    assert payload["iteration"] == 1 and payload["history"] == {"x": [1.0]}
    assert set(payload["modules"]) == {"g", "d"}
    assert torch.equal(payload["modules"]["g"]["weight"], g.weight.detach())
    assert payload["optimizers"]["g"]["param_groups"][0]["lr"] == 0.1
    assert ckpt.required == {"fingerprint", "iteration", "history", "modules", "optimizers", "rng"}


def test_bad_arguments_name_the_problem(tmp_path):
    state = TrainState(torch.Generator())
    with pytest.raises(TypeError, match="step_fn must be callable, got int"):
        run_loop(3, state, 1)
    with pytest.raises(TypeError, match=r"state must be an aeot\.core\.TrainState, got dict"):
        run_loop(lambda t: 0.0, {}, 1)
    with pytest.raises(ValueError, match="total must be >= 1, got 0"):
        run_loop(lambda t: 0.0, state, 0)
    with pytest.raises(ValueError, match="every must be >= 1, got 0"):
        run_loop(lambda t: 0.0, state, 1, every=0)
    with pytest.raises(TypeError, match=r"checkpoint must be an aeot\.core\.Checkpoint, got str"):
        run_loop(lambda t: 0.0, state, 1, checkpoint="c.pt")
    with pytest.raises(ValueError, match=r"return the losses \['a', 'b'\].*got \['a'\]"):
        run_loop(lambda t: {"a": 1.0}, TrainState(torch.Generator(), history={"a": [], "b": []}), 1)
    with pytest.raises(ValueError, match="one float for a list history"):
        run_loop(lambda t: {"a": 1.0}, TrainState(torch.Generator()), 1)
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator, got int"):
        TrainState(0)
    with pytest.raises(ValueError, match="step must be an int >= 0, got -1"):
        TrainState(torch.Generator(), step=-1)
    with pytest.raises(TypeError, match="history must be a list or a dict of lists, got str"):
        TrainState(torch.Generator(), history="loss")
    with pytest.raises(TypeError, match=r"part 'nets.g' must have state_dict.*got str"):
        Checkpoint(tmp_path / "c.pt", {}, {"nets": {"g": "not a module"}})
    with pytest.raises(ValueError, match=r"reserved names \['history'\]"):
        Checkpoint(tmp_path / "c.pt", {}, {"history": nn.Linear(1, 1)})
    with pytest.raises(TypeError, match="fingerprint must be a dict, got list"):
        Checkpoint(tmp_path / "c.pt", [], {})
