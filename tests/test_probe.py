"""Belief probes: recovery on synthetic memories, splits, policy agreement, errors, the CLI."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import metarl_bench
from metarl_bench.core.agent import Agent, Obs, fresh_rng, last_transition
from metarl_bench.core.family import Arrays, TaskFamily
from metarl_bench.core.registry import _REG
from metarl_bench.envs.bandits.family import BernoulliBandit
from metarl_bench.evaluation import evaluate
from metarl_bench.evaluation.evaluate import EvalSettings, RolloutStep, held_out_tasks
from metarl_bench.probes import analysis as A
from metarl_bench.probes import record as R
from metarl_bench.probes import ridge
from metarl_bench.probes import rows as probe_report
from metarl_bench.running import probe as P

SMALL = "test-probe-k2-h20"
GOAL = "test-probe-goal"
NO_BELIEF = "test-probe-nobelief"
FAST = EvalSettings(n_tasks=200, seeds=(0,))


class GoalFamily(TaskFamily):
    """A stand-in for a gridworld: one hidden goal among ``cells``; the goal pays 1 w.p. 0.9, others w.p. 0.1.

    Its belief is a posterior over cells (a categorical target), and no ``bayes`` agent plays it.
    """

    obs_shape = (1,)
    reward_low, reward_high = 0.0, 1.0

    def __init__(self, cells: int = 4, horizon: int = 10):
        self.num_actions, self.horizon = cells, horizon
        self.params = {"cells": cells, "horizon": horizon}

    def sample_tasks(self, rng: np.random.Generator, num_trials: int) -> Arrays:
        return {"goal": rng.integers(self.num_actions, size=num_trials)}

    def init_state(self, tasks: Arrays, rng: np.random.Generator) -> Arrays:
        n = len(tasks["goal"])
        return {"u": rng.random((n, self.horizon)), "t": np.zeros(n, np.int64)}

    def observe(self, tasks: Arrays, state: Arrays) -> np.ndarray:
        return np.zeros((len(state["t"]), 1), np.float32)

    def step(self, tasks: Arrays, state: Arrays, actions: np.ndarray) -> tuple[Arrays, np.ndarray]:
        rows = np.arange(len(actions))
        p = np.where(actions == tasks["goal"], 0.9, 0.1)
        rewards = (state["u"][rows, state["t"]] < p).astype(float)
        return {**state, "t": state["t"] + 1}, rewards

    def oracle_return(self, tasks: Arrays) -> np.ndarray:
        return np.full(len(tasks["goal"]), 0.9 * self.horizon)

    def prior(self, num_trials: int) -> Arrays:
        return {"p": np.full((num_trials, self.num_actions), 1.0 / self.num_actions)}

    def update_belief(self, belief: Arrays, actions: np.ndarray, rewards: np.ndarray, obs=None) -> Arrays:
        at_goal = np.arange(self.num_actions)[None, :] == actions[:, None]
        win = rewards[:, None] > 0.5
        post = belief["p"] * np.where(at_goal, np.where(win, 0.9, 0.1), np.where(win, 0.1, 0.9))
        return {"p": post / post.sum(axis=1, keepdims=True)}

    def belief_features(self, belief: Arrays) -> dict[str, np.ndarray]:
        return {"goal_posterior": belief["p"]}


class NoBeliefFamily(GoalFamily):
    """The same dynamics without a belief model."""

    prior = TaskFamily.prior
    update_belief = TaskFamily.update_belief
    belief_features = TaskFamily.belief_features


class BeliefNoiseAgent(Agent):
    """Plays uniformly at random; its memory is the family's exact belief plus N(0, noise^2) noise.

    With ``signal=False`` the memory is pure noise (``dims`` entries).  It exposes uniform
    ``action_probs``, so the probability it gives to the Bayes action is exactly 1/k.  As every
    agent, ``act`` returns new memory and leaves the one it is given as it was; ``features``
    draws its noise from a generator of its own, so probing never changes what the agent plays.
    """

    name = "test-probe-belief"

    def __init__(self, family: TaskFamily, noise: float = 0.01, signal: bool = True, dims: int = 8):
        super().__init__(family, noise=noise, signal=signal, dims=dims)

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        rng = np.random.default_rng(rng)
        noise = np.random.default_rng(rng.integers(2**63))
        return {"rng": rng, "noise": noise, "belief": self.family.prior(num_trials)}

    def action_probs(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        n = len(obs["prev_action"])
        return np.full((n, self.num_actions), 1.0 / self.num_actions), memory

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        action, reward, has_prev = last_transition(obs)
        belief = memory["belief"]
        if has_prev.all():  # trials move in lock step: all or none have a previous transition
            belief = self.family.update_belief(belief, action, reward, obs["obs"])
        rng = fresh_rng(memory["rng"])
        return rng.integers(0, self.num_actions, size=len(action)), {**memory, "rng": rng, "belief": belief}

    def _signal(self, memory: Any) -> bool:
        return self.config["signal"]

    def features(self, memory: Any) -> np.ndarray:
        n = len(next(iter(memory["belief"].values())))
        if self._signal(memory):
            feats = self.family.belief_features(memory["belief"])
            x = np.concatenate([np.asarray(v, float).reshape(n, -1) for v in feats.values()], axis=1)
        else:
            x = np.zeros((n, self.config["dims"]))
        return x + self.config["noise"] * memory["noise"].standard_normal(x.shape)


class LearnerAgent(BeliefNoiseAgent):
    """Learns: trained, its memory is the belief plus noise; untrained (``fit`` budget 0), pure noise."""

    name = "test-probe-learner"
    learns = True

    def __init__(self, family: TaskFamily, **config: Any):
        super().__init__(family, **config)
        self.trained: bool | None = None  # None: no model yet, as RL² before fit()

    def fit(self, family: TaskFamily, budget: int, seed: int | None = None, **kwargs: Any) -> dict[str, Any]:
        self.trained = budget > 0
        return {"train_steps": int(budget)}

    def prepare(self, train_family, train_env, options=None) -> dict[str, Any]:
        budget = options.train_steps if options is not None else None
        return {**self.fit(train_family, budget or 1000, 0), "checkpoint": ""}

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        if self.trained is None:
            raise RuntimeError("no model yet: fit() it first")
        return super().reset(num_trials, rng, tasks)

    def _signal(self, memory: Any) -> bool:
        return bool(self.trained)


class PureNoiseAgent(BeliefNoiseAgent):
    name = "test-probe-noise"

    def __init__(self, family: TaskFamily, **config: Any):
        super().__init__(family, **{"noise": 1.0, "signal": False, **config})


@pytest.fixture(scope="module", autouse=True)
def registered():
    metarl_bench.register(SMALL, BernoulliBandit, replace=True, k=2, horizon=20)
    metarl_bench.register(GOAL, GoalFamily, replace=True)
    metarl_bench.register(NO_BELIEF, NoBeliefFamily, replace=True)
    agents = (BeliefNoiseAgent, LearnerAgent, PureNoiseAgent)
    for cls in agents:
        metarl_bench.register_agent(cls.name, cls, replace=True)
    yield
    for name in (SMALL, GOAL, NO_BELIEF):
        metarl_bench.unregister(name)
    for cls in agents:  # the registry has no public unregister for agents
        _REG.agents.pop(cls.name, None)


def report(agent: str, env: str = SMALL, settings: EvalSettings = FAST, **config: Any) -> A.ProbeReport:
    a = metarl_bench.make_agent(agent, metarl_bench.make_family(env), **config)
    if a.learns:
        a.prepare(a.family, env)
    control, note = R.untrained_control(a, a.family)
    return A.probe(a, env, settings, control, note)


def test_probe_recovers_the_belief_from_a_noisy_copy_and_nothing_from_noise():
    exact = report(BeliefNoiseAgent.name, noise=0.0).targets
    # Features recorded at the step the belief describes: an exact copy is decoded exactly.
    assert all(t.r2.value > 1 - 1e-9 for t in exact.values()), {k: t.r2.value for k, t in exact.items()}
    noisy = report(BeliefNoiseAgent.name, noise=0.01).targets
    assert set(noisy) == {"posterior_mean", "alpha", "beta", "all"}
    for t in noisy.values():
        assert t.r2.value > 0.99 and t.r2.ci[0] > 0.98, (t.name, t.r2)
        assert t.kind == "continuous" and t.accuracy is None
    noise = report(PureNoiseAgent.name).targets
    for t in noise.values():
        assert -0.05 < t.r2.value < 0.02 and t.r2.ci[0] < 0.0 < t.r2.ci[1] + 0.01, (t.name, t.r2)
        assert t.r2.ci[0] <= t.r2.value <= t.r2.ci[1]  # a biased bootstrap would leave its own estimate out
        assert t.inverse_r2 < 0.02  # the belief explains none of a pure-noise memory


def test_categorical_target_reports_accuracy_and_cross_entropy_without_a_bayes_agent():
    good = report(BeliefNoiseAgent.name, env=GOAL).targets["goal_posterior"]
    bad = report(PureNoiseAgent.name, env=GOAL).targets["goal_posterior"]
    assert good.kind == "distribution" and good.accuracy.value > 0.97
    assert bad.accuracy.value < good.accuracy.value - 0.3
    assert good.entropy <= good.xent < bad.xent
    rep = report(BeliefNoiseAgent.name, env=GOAL)
    assert rep.agreement is None and rep.bayes_method == ""  # no Bayes-optimal policy to compare with


def test_control_is_the_untrained_agent():
    rep = report(LearnerAgent.name)
    assert "fit budget 0" in rep.control_note
    for t in rep.targets.values():
        assert t.r2.value > 0.99 and abs(t.control.r2.value) < 0.05, (t.name, t.r2.value, t.control.r2.value)
    assert report(BeliefNoiseAgent.name).targets["alpha"].control is None  # non-learners have none


def test_splits_never_share_a_trial_or_a_task():
    settings = EvalSettings(n_tasks=60, seeds=(0, 1))
    rep = report(BeliefNoiseAgent.name, settings=settings)
    fit, test = set(rep.fit_trials), set(rep.test_trials)
    assert not fit & test and fit | test == set(range(120))
    tasks = rep.recording.task_of_trial
    assert not set(tasks[rep.fit_trials]) & set(tasks[rep.test_trials])  # both seeds of a task on one side
    assert len(rep.fit_trials) == 60
    fit_tasks, test_tasks = A.split_tasks(60, 0.5, np.random.default_rng(0))
    assert not set(fit_tasks) & set(test_tasks) and len(fit_tasks) + len(test_tasks) == 60
    with pytest.raises(R.ProbeError, match="strictly between 0 and 1"):
        A.split_tasks(60, 1.0, np.random.default_rng(0))
    with pytest.raises(R.ProbeError, match="needs >= 5 fit tasks"):
        A.split_tasks(6, 0.5, np.random.default_rng(0))


def test_ridge_cv_chooses_a_large_penalty_for_noise_and_a_small_one_for_signal(rng):
    x = rng.standard_normal((400, 30))
    groups = np.repeat(np.arange(40), 10)
    y = {"signal": x[:, :2] @ np.array([[1.0], [2.0]]), "noise": rng.standard_normal((400, 1))}
    fitted = ridge.fit_ridge_cv(x, y, groups, rng)
    assert fitted["signal"].alpha < 1e-3 < fitted["noise"].alpha
    assert np.allclose(fitted["signal"].predict(x), y["signal"], atol=1e-2)


def test_r2_of_the_mean_predictor_is_zero_and_its_interval_does_not_drift(rng):
    y = rng.standard_normal((20, 1, 1)) + rng.standard_normal((20, 5, 1)) * 0.1  # [trial, step, dim]
    fig = A.r2_figure(y, np.full_like(y, y.mean()), np.arange(20), rng)
    assert fig.value == pytest.approx(0.0, abs=1e-12)
    assert fig.ci == pytest.approx((0.0, 0.0), abs=1e-12)  # resampling units must not move the baseline


def test_policy_agreement_is_one_for_bayes_against_itself_and_below_one_for_random():
    rep = report("bayes")
    assert rep.agreement.agreement.value == 1.0 and rep.agreement.agreement.ci == (1.0, 1.0)
    assert rep.bayes_method == "exact" and rep.agreement.bayes_action_prob is None  # deterministic: no probs
    family = metarl_bench.make_family(SMALL)
    rec = R.record(metarl_bench.make_agent("random", family), SMALL, family, FAST, with_features=False)
    agree = A.policy_agreement(
        rec.actions, rec.bayes_actions, rec.bayes_prob, rec.task_of_trial, np.random.default_rng(0)
    )
    assert 0.4 < agree.agreement.value < 0.6 and agree.agreement.ci[1] < 0.7
    # An agent with action probabilities: p(Bayes action) and -log of it are exact for a uniform policy.
    uniform = report(BeliefNoiseAgent.name).agreement
    assert uniform.bayes_action_prob.value == pytest.approx(0.5)
    assert uniform.bayes_xent == pytest.approx(np.log(2))


def test_recording_plays_the_evaluators_rollout(monkeypatch):
    """The probed agent plays exactly the trials the evaluator scores: same rollout, same rewards."""
    settings = EvalSettings(n_tasks=40, seeds=(0, 3))  # two seeds: trials are seed-major
    family = metarl_bench.make_family(SMALL)
    agent = metarl_bench.make_agent(BeliefNoiseAgent.name, family)
    learner = metarl_bench.make_agent(LearnerAgent.name, family)
    learner.prepare(family, SMALL)
    control, _ = R.untrained_control(learner, family)
    calls = []
    real = evaluate.rollout

    def spy(*args: Any, **kwargs: Any) -> evaluate.Rollout:
        calls.append(kwargs.get("observer"))
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate, "rollout", spy)
    rec = R.record(agent, SMALL, family, settings, control)
    assert len(calls) == 1 and calls[0] is not None  # one rollout, the evaluator's, with the recorder observing
    monkeypatch.undo()
    # Played again by the evaluator alone (no shadows, no features read): the same actions and rewards.
    actions: list[np.ndarray] = []
    tasks = held_out_tasks(SMALL, family, settings)
    played = evaluate.rollout(agent, SMALL, family, tasks, settings, observer=lambda s: actions.append(s.actions))
    T = family.trial_length
    assert rec.rewards.shape == (80, T) and np.array_equal(rec.rewards, played.rewards.reshape(80, T))
    assert np.array_equal(rec.actions, np.stack(actions).reshape(2, T, 40).transpose(0, 2, 1).reshape(80, T))
    assert rec.control_actions is not None and rec.bayes_actions is not None and rec.features.shape[:2] == (80, T)


def test_an_observer_sees_every_step_and_changes_nothing():
    settings = EvalSettings(n_tasks=30, seeds=(0, 1))
    family = metarl_bench.make_family(SMALL)
    tasks = held_out_tasks(SMALL, family, settings)
    agent = metarl_bench.make_agent("thompson", family)
    plain = evaluate.rollout(agent, SMALL, family, tasks, settings)
    steps: list[RolloutStep] = []
    observed = evaluate.rollout(agent, SMALL, family, tasks, settings, observer=steps.append)
    assert np.array_equal(plain.rewards, observed.rewards)
    assert np.array_equal(plain.episode_returns, observed.episode_returns)
    T = family.trial_length
    assert [(s.seed_index, s.seed, s.t) for s in steps] == [
        (i, seed, t) for i, seed in enumerate((0, 1)) for t in range(T)
    ]
    for s in steps:
        assert np.array_equal(s.rewards, plain.rewards[s.seed_index, :, s.t])
        if s.t > 0:  # memory before act is the memory the previous step's act returned
            prev = steps[steps.index(s) - 1]
            assert s.memory is prev.next_memory
            assert np.array_equal(s.obs["prev_action"].argmax(axis=1), prev.actions)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--agent", "nope", "--env", SMALL], "valid agents"),
        (["--agent", "bayes", "--env", "nope"], "valid envs"),
        (["--agent", "random", "--env", SMALL], "agent 'random' exposes no features()"),
        (["--agent", "bayes", "--env", NO_BELIEF], f"distribution {NO_BELIEF!r} has no belief model"),
        (["--agent", "bayes", "--env", SMALL, "--fit-frac", "1.5"], "strictly between 0 and 1"),
    ],
)
def test_bad_input_names_what_was_wrong_and_what_is_allowed(argv, message, capsys):
    assert P.main(argv + ["--eval-tasks", "50", "--no-save"]) != 0
    err = capsys.readouterr().err
    assert message in err
    if "features()" in message:
        assert "agents that do:" in err and "bayes" in err and "random," not in err
    if "belief model" in message:
        assert "distributions with one:" in err and SMALL in err and NO_BELIEF + "," not in err


def test_cli_appends_rows_with_the_documented_columns_and_plots(tmp_path, capsys):
    argv = ["--agent", LearnerAgent.name, "--env", SMALL, "--eval-tasks", "100", "--results", str(tmp_path)]
    assert P.main(argv) == 0
    out = capsys.readouterr().out
    assert "posterior_mean" in out and "control" in out and "agreement" in out
    df = pd.read_csv(tmp_path / probe_report.PROBE_FILE)
    assert list(df.columns) == probe_report.PROBE_COLUMNS
    assert list(df.target) == ["posterior_mean", "alpha", "beta", "all"]
    assert (df.n_tasks == 100).all() and (df.n_fit_trials + df.n_test_trials == df.n_trials).all()
    assert (
        df.command[0].startswith("python -m metarl_bench.probe --agent") and df.version[0] == metarl_bench.__version__
    )
    assert (df.r2 > 0.99).all() and (df.control_r2.abs() < 0.1).all() and (df.agreement < 1).all()
    for column in probe_report.PROBE_COLUMNS:  # the schema is documented where the module says it is
        assert column in probe_report.__doc__, column
    assert (tmp_path / probe_report.PROBE_DIR / f"{SMALL}__{LearnerAgent.name}.png").stat().st_size > 0
    curves = pd.read_csv(tmp_path / probe_report.PROBE_DIR / f"{SMALL}__{LearnerAgent.name}.csv")
    assert len(curves) == 20 and {"r2_alpha", "control_r2_alpha", "agreement"} <= set(curves.columns)
    assert P.main(argv + ["--no-control"]) == 0  # a second run appends
    df2 = pd.read_csv(tmp_path / probe_report.PROBE_FILE)
    assert len(df2) == 8 and df2.control_r2.iloc[4:].isna().all()
