"""Contract checkers (issue #24 item 4): every breach of the family and agent contracts is named
(who, the call, the field) in one ContractError, the evaluator runs the checks the first time a
user-registered family or agent is played, and built-ins never pay for them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import metarl_bench
from metarl_bench import Agent, ContractError, TaskFamily, check_agent, check_family, fresh_rng
from metarl_bench.core import checks
from metarl_bench.core.registry import _REG
from metarl_bench.evaluation.evaluate import EvalSettings, evaluate
from metarl_bench.reporting import leaderboard
from metarl_bench.running.run import main as run_main

TINY = EvalSettings(n_tasks=20, seeds=(0,))
PAGE = Path(__file__).resolve().parent.parent / "docs" / "checkers.md"


class Coin(TaskFamily):
    """Two arms, one pays 1; a subclass overrides one method with one fault."""

    obs_shape = (1,)

    def __init__(self, horizon: int = 5):
        self.num_actions, self.horizon = 2, horizon
        self.params = {"horizon": horizon}

    def sample_tasks(self, rng, num_trials):
        return {"good": rng.integers(0, 2, num_trials)}

    def init_state(self, tasks, rng):
        return {"t": np.zeros(len(tasks["good"]), int)}

    def observe(self, tasks, state):
        return np.zeros((len(tasks["good"]), 1), np.float32)

    def step(self, tasks, state, actions):
        return {"t": state["t"] + 1}, (actions == tasks["good"]).astype(float)

    def oracle_return(self, tasks):
        return np.full(len(tasks["good"]), float(self.horizon))


class WideObservation(Coin):
    def observe(self, tasks, state):
        return np.zeros((len(tasks["good"]), 2), np.float32)


class NaNRewards(Coin):
    def step(self, tasks, state, actions):
        state, rewards = super().step(tasks, state, actions)
        return state, rewards * np.nan


class InfObservation(Coin):
    def observe(self, tasks, state):
        return np.where(state["t"][:, None] > 1, np.inf, 0.0).astype(np.float32)


class ColumnRewards(Coin):
    def step(self, tasks, state, actions):
        state, rewards = super().step(tasks, state, actions)
        return state, rewards[:, None]


class ScalarTask(Coin):
    def sample_tasks(self, rng, num_trials):
        return {"good": rng.integers(0, 2, num_trials), "scale": np.float64(1.0)}


class SharedState(Coin):
    def init_state(self, tasks, rng):
        return {"t": np.zeros(len(tasks["good"]), int), "board": np.zeros((3, 3))}


class LateStartEpisode(Coin):
    """Two inner episodes; the fault shows only where the second one starts."""

    def __init__(self, horizon: int = 2):
        super().__init__(horizon)
        self.episodes_per_trial = 2

    def start_episode(self, tasks, state):
        return {"t": state["t"][:1]} if state["t"].any() else state


class NoActions(Coin):
    def __init__(self, horizon: int = 5):
        super().__init__(horizon)
        self.num_actions = 0


class BadOracle(Coin):
    def oracle_return(self, tasks):
        return float(self.horizon)


class StepReturnsRewardsOnly(Coin):
    def step(self, tasks, state, actions):
        return super().step(tasks, state, actions)[1]


FAMILY_FAULTS = [
    (WideObservation, "observe() at t=0", "observation", "shape (7, 2) for 7 trials; expected (7, 1)"),
    (NaNRewards, "step() at t=0", "rewards", "nan at trial 0; expected finite numbers"),
    (InfObservation, "observe() at t=2", "observation", "inf at trial 0 (index (0, 0))"),
    (ColumnRewards, "step() at t=0", "rewards", "shape (7, 1) for 7 trials; expected (7,), one per trial"),
    (ScalarTask, "sample_tasks()", "tasks['scale']", "shape () for 7 trials; every tasks array needs the leading"),
    (SharedState, "init_state()", "state['board']", "shape (3, 3) for 7 trials; every state array needs"),
    (LateStartEpisode, "start_episode() after t=1", "state['t']", "shape (1,) for 7 trials"),
    (NoActions, "attributes", "num_actions", "0; expected an integer >= 1"),
    (BadOracle, "oracle_return()", "its value", "shape () for 7 trials; expected (7,)"),
    (StepReturnsRewardsOnly, "step() at t=0", "result", "a ndarray; expected the pair (state, rewards)"),
]


@pytest.mark.parametrize("cls, call, field, problem", FAMILY_FAULTS, ids=[f[0].__name__ for f in FAMILY_FAULTS])
def test_every_family_fault_is_named_with_its_call_and_field(cls, call, field, problem):
    with pytest.raises(ContractError) as info:
        check_family(cls(), "my-family")
    error = info.value
    assert (error.subject, error.call, error.field) == ("family 'my-family'", call, field)
    assert str(error).startswith(f"family 'my-family', {call}, {field}: ") and problem in str(error)
    assert isinstance(error, ValueError) and "\n" not in str(error)


def test_a_sound_family_passes_and_the_check_takes_milliseconds():
    import time

    start = time.perf_counter()
    check_family(Coin(), "coin")
    assert time.perf_counter() - start < 0.5  # typically well under a millisecond


def test_every_builtin_family_passes():
    for name in metarl_bench.list_families():
        check_family(metarl_bench.make_family(name), name)


# ----------------------------------------------------------------------------- agents
class Counting(Agent):
    """Counts its pulls; plays the least pulled arm.  Sound: new memory every step."""

    name = "counting"

    def reset(self, num_trials, rng=None, tasks=None):
        return {"counts": np.zeros((num_trials, self.num_actions)), "rng": np.random.default_rng(rng)}

    def act(self, obs, memory):
        actions = memory["counts"].argmin(axis=1)
        return actions, {**memory, "counts": memory["counts"] + np.eye(self.num_actions)[actions]}


class InPlace(Counting):
    def act(self, obs, memory):
        actions = memory["counts"].argmin(axis=1)
        memory["counts"][np.arange(len(actions)), actions] += 1
        return actions, memory


class DrawsFromItsMemory(Counting):
    def act(self, obs, memory):
        return memory["rng"].integers(0, self.num_actions, len(memory["counts"])), memory


class DrawsFromAFreshCopy(Counting):  # the contract's way: sound
    def act(self, obs, memory):
        rng = fresh_rng(memory["rng"])
        return rng.integers(0, self.num_actions, len(memory["counts"])), {**memory, "rng": rng}


class AddsAKey(Counting):
    def act(self, obs, memory):
        memory["seen"] = True
        return super().act(obs, memory)


class AppendsToAList(Counting):
    def reset(self, num_trials, rng=None, tasks=None):
        return [np.zeros(num_trials)]

    def act(self, obs, memory):
        memory.append(np.ones(len(memory[0])))
        return np.zeros(len(memory[0]), np.int64), list(memory)


@dataclass
class Belief:
    counts: np.ndarray


class InPlaceDataclass(Counting):
    def reset(self, num_trials, rng=None, tasks=None):
        return Belief(np.zeros((num_trials, self.num_actions)))

    def act(self, obs, memory):
        memory.counts += 1
        return np.zeros(len(memory.counts), np.int64), memory


class OneAction(Counting):
    def act(self, obs, memory):
        return np.zeros(1, np.int64), memory


class FloatActions(Counting):
    def act(self, obs, memory):
        return np.zeros(len(memory["counts"])), memory


class OutOfRange(Counting):
    def act(self, obs, memory):
        return np.full(len(memory["counts"]), self.num_actions), memory


class ReturnsActionsOnly(Counting):
    def act(self, obs, memory):
        return super().act(obs, memory)[0]


class OffByOneBatch(Counting):
    def reset(self, num_trials, rng=None, tasks=None):
        return {"counts": np.zeros((num_trials + 1, self.num_actions))}

    def act(self, obs, memory):
        return np.zeros(len(obs["obs"]), np.int64), memory


class Stale(Counting):
    """Keeps its counts on itself, so a new trial starts where the last one ended."""

    def reset(self, num_trials, rng=None, tasks=None):
        if getattr(self, "_counts", None) is None or len(self._counts) != num_trials:
            self._counts = np.zeros((num_trials, self.num_actions))
        return {"counts": self._counts.copy()}

    def act(self, obs, memory):
        actions, memory = super().act(obs, memory)
        self._counts = memory["counts"]
        return actions, memory


AGENT_FAULTS = [
    (InPlace, "act() at t=0", "memory['counts']", "changed in place; act must leave the memory it is given unchanged"),
    (DrawsFromItsMemory, "act() at t=0", "memory['rng']", "changed in place"),
    (AddsAKey, "act() at t=0", "memory", "changed in place"),
    (AppendsToAList, "act() at t=0", "memory", "changed in place"),
    (InPlaceDataclass, "act() at t=0", "memory.counts", "changed in place"),
    (OneAction, "act() at t=0", "actions", "must have shape (7,) (one per trial), got shape (1,)"),
    (FloatActions, "act() at t=0", "actions", "must have an integer dtype, got float64"),
    (OutOfRange, "act() at t=0", "actions", "action 2 is out of range; allowed are integers in [0, 2)"),
    (ReturnsActionsOnly, "act() at t=0", "result", "a ndarray; expected the pair (actions, memory)"),
    (OffByOneBatch, "reset()", "memory['counts']", "shape (8, 2) for 7 trials and (4, 2) for 3"),
    (Stale, "reset() after play", "memory['counts']", "differs from what reset() gave for the same rng"),
]


@pytest.mark.parametrize("cls, call, field, problem", AGENT_FAULTS, ids=[f[0].__name__ for f in AGENT_FAULTS])
def test_every_agent_fault_is_named_with_its_call_and_field(cls, call, field, problem):
    with pytest.raises(ContractError) as info:
        check_agent(cls(Coin()), name="my-agent")
    error = info.value
    assert (error.subject, error.call, error.field) == ("agent 'my-agent'", call, field)
    assert problem in str(error) and "\n" not in str(error)


def test_torch_memory_changed_in_place_is_caught_and_a_torch_lstm_state_passes():
    torch = pytest.importorskip("torch")

    class Recurrent(Counting):
        def reset(self, num_trials, rng=None, tasks=None):
            return {"h": torch.zeros(1, num_trials, 4)}  # (layers, trials, hidden): trials need not lead

        def act(self, obs, memory):
            return np.zeros(memory["h"].shape[1], np.int64), {"h": memory["h"] + 1}

    class RecurrentInPlace(Recurrent):
        def act(self, obs, memory):
            memory["h"].add_(1)
            return np.zeros(memory["h"].shape[1], np.int64), memory

    check_agent(Recurrent(Coin()))
    with pytest.raises(ContractError, match=r"agent 'counting', act\(\) at t=0, memory\['h'\]: changed in place"):
        check_agent(RecurrentInPlace(Coin()))


@pytest.mark.parametrize("cls", [Counting, DrawsFromAFreshCopy])
def test_sound_agents_pass(cls):
    check_agent(cls(Coin()))


@pytest.mark.parametrize("name", ["random", "greedy", "epsilon-greedy", "thompson", "ucb1", "oracle", "bayes"])
def test_builtin_agents_pass(name):
    family = metarl_bench.make_family("bernoulli-k2-h100")
    check_agent(metarl_bench.make_agent(name, family), name=name)


def test_a_contract_error_pickles_whole():
    import pickle

    error = ContractError("agent 'x'", "act() at t=0", "actions", "wrong")
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.field == "actions"


# ----------------------------------------------------------------------------- when they run
@pytest.fixture
def registered():
    """Registers user families and agents for one test; removes them after."""
    families, agents = [], []

    def family(name: str, cls: type) -> str:
        metarl_bench.register(name, cls)
        families.append(name)
        return name

    def agent(name: str, cls: type) -> str:
        metarl_bench.register_agent(name, cls)
        agents.append(name)
        return name

    yield family, agent
    for name in families:
        metarl_bench.unregister(name)
    for name in agents:
        _REG.agents.pop(name, None)
        _REG.builtin.discard(("agent", name))


@pytest.mark.parametrize(
    "cls, message",
    [
        (WideObservation, r"family 'test-ck-fam', observe\(\) at t=0, observation: shape \(7, 2\)"),  # wrote a row
        (NaNRewards, r"family 'test-ck-fam', step\(\) at t=0, rewards: nan at trial 0"),  # ran the evaluation first
        (ColumnRewards, r"family 'test-ck-fam', step\(\) at t=0, rewards: shape \(7, 1\)"),  # a numpy broadcast error
        (InfObservation, r"family 'test-ck-fam', observe\(\) at t=2, observation: inf"),  # wrote a row
    ],
)
def test_evaluating_a_faulty_user_family_fails_before_any_play(registered, cls, message):
    name = registered[0]("test-ck-fam", cls)
    family = metarl_bench.make_family(name)
    with pytest.raises(ContractError, match=message):
        evaluate(metarl_bench.make_agent("random", family), name, TINY)


def test_evaluating_a_user_agent_that_changes_its_memory_fails(registered):
    name = registered[1]("test-ck-in-place", InPlace)
    agent = metarl_bench.make_agent(name, metarl_bench.make_family("bernoulli-k2-h100"))
    with pytest.raises(ContractError, match=r"agent 'test-ck-in-place', act\(\) at t=0, memory\['counts'\]"):
        evaluate(agent, "bernoulli-k2-h100", TINY)


def test_checks_run_once_per_class_and_name_and_never_for_builtins(registered, monkeypatch):
    calls = []
    real_family, real_agent = checks.check_family, checks.check_agent
    monkeypatch.setattr(checks, "check_family", lambda *a: (calls.append("family"), real_family(*a))[1])
    monkeypatch.setattr(checks, "check_agent", lambda *a: (calls.append("agent"), real_agent(*a))[1])
    monkeypatch.setattr(checks, "_CHECKED", set())
    builtin = metarl_bench.make_family("bernoulli-k2-h100")
    evaluate(metarl_bench.make_agent("thompson", builtin), "bernoulli-k2-h100", TINY)
    assert calls == []  # built-ins are trusted
    fam = registered[0]("test-ck-coin", Coin)
    agent = registered[1]("test-ck-counting", Counting)
    for _ in range(2):
        evaluate(metarl_bench.make_agent(agent, metarl_bench.make_family(fam)), fam, TINY)
    assert calls == ["family", "agent"]  # once each, however often they are played
    evaluate(metarl_bench.make_agent(agent, builtin), "bernoulli-k2-h100", TINY)
    assert calls == ["family", "agent", "agent"]  # the user agent on another family: checked there too


def test_an_unregistered_agent_is_not_checked_for_you(monkeypatch):
    monkeypatch.setattr(checks, "_CHECKED", set())
    family = metarl_bench.make_family("bernoulli-k2-h100")
    evaluate(InPlace(family), "bernoulli-k2-h100", TINY)  # the contract is yours to check: check_agent
    with pytest.raises(ContractError):
        check_agent(InPlace(family))


def test_a_faulty_family_fails_again_rather_than_passing_silently(registered):
    name = registered[0]("test-ck-again", ColumnRewards)
    for _ in range(2):
        with pytest.raises(ContractError):
            evaluate(metarl_bench.make_agent("random", metarl_bench.make_family(name)), name, TINY)


def test_check_registered_refuses_before_any_run_and_skips_learners(registered):
    fam = registered[0]("test-ck-pre", WideObservation)
    with pytest.raises(ContractError, match="family 'test-ck-pre'"):
        checks.check_registered(["random"], [fam])
    agent = registered[1]("test-ck-pre-agent", OneAction)
    with pytest.raises(ContractError, match="agent 'test-ck-pre-agent'"):
        checks.check_registered([agent], ["bernoulli-k2-h100"])
    checks.check_registered(["rl2", "thompson"], ["bernoulli-k2-h100"])  # built-ins: nothing built, nothing played

    class Buggy(Counting):
        def act(self, obs, memory):
            raise ValueError("a bug, not a breach")

    buggy = registered[1]("test-ck-pre-buggy", Buggy)
    checks.check_registered([buggy], ["bernoulli-k2-h100"])  # left to the run, which fails with its traceback


# ----------------------------------------------------------------------------- the command line
def _cli(tmp_path: Path, agent: str, env: str, *extra: str) -> int:
    return run_main(["--agent", agent, "--env", env, "--eval-tasks", "20", "--seeds", "0", *extra])


def test_the_cli_writes_no_row_for_a_faulty_family(registered, tmp_path, capsys):
    name = registered[0]("test-ck-cli", WideObservation)
    assert _cli(tmp_path, "random", name, "--results", str(tmp_path)) != 0
    err = capsys.readouterr().err
    assert "family 'test-ck-cli', observe() at t=0, observation: shape (7, 2)" in err
    board = tmp_path / leaderboard.LEADERBOARD_FILE
    assert not board.exists() or leaderboard.read(board).empty


def test_the_cli_no_longer_exits_zero_with_nan_rewards_and_no_save(registered, tmp_path, capsys):
    name = registered[0]("test-ck-nan", NaNRewards)
    assert _cli(tmp_path, "random", name, "--no-save") != 0
    assert "family 'test-ck-nan', step() at t=0, rewards: nan at trial 0" in capsys.readouterr().err


def test_the_cli_refuses_a_contract_breach_in_one_line_with_exit_two(registered, tmp_path, capsys):
    name = registered[0]("test-ck-two", ColumnRewards)
    assert _cli(tmp_path, "random", name, "--no-save") == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "family 'test-ck-two', step() at t=0, rewards: shape (7, 1)" in lines[0]


# ----------------------------------------------------------------------------- the docs page
def test_the_docs_page_runs_as_written_and_prints_what_it_shows(capsys):
    text = PAGE.read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, re.S)
    exec(compile(code, str(PAGE), "exec"), {"__name__": "checkers_page"})
    shown = text.split(code, 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    assert capsys.readouterr().out == shown
