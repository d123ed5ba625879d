"""The evaluator: held-out tasks, common random numbers, references, metrics with CIs.

For one (agent, distribution) pair:

1. the held-out task set is drawn once from the evaluation task stream (default 1000
   tasks) and is the same for every agent;
2. every evaluation seed fixes the reward noise (counter-based, see
   ``metarl_bench.core.noise``) and the agent's own randomness; every agent, and the
   Bayes-optimal reference policy, meets the same tasks and the same noise;
3. the references are computed on those same tasks: random play and the oracle in
   closed form per task where the family provides it, the Bayes-optimal policy by
   playing the reference the family declares (``TaskFamily.bayes_reference``: exact, or
   a named lower bound); a family that declares none gets no score, with a note;
4. metrics are paired per task, and their 95% confidence intervals come from a
   bootstrap over tasks (each task's seeds travel with it), ``metarl_bench.evaluation.stats``.

The evaluator never looks inside an agent: it calls ``reset`` and ``act`` only.  The first time a
user-registered family or agent is played, the contract checkers (``core/checks.py``) play it for a
few steps first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from metarl_bench.core.agent import Agent, Obs, RandomAgent
from metarl_bench.core.checks import check_first_play
from metarl_bench.core.family import NO_REFERENCE, TaskFamily
from metarl_bench.core.registry import get_spec
from metarl_bench.core.seeding import eval_agent_rng, eval_noise_rng, eval_task_rng
from metarl_bench.core.trial import TrialEnv
from metarl_bench.evaluation.score import paired_score
from metarl_bench.evaluation.stats import bootstrap_ci, mean
from metarl_bench.records.row import Metrics

DEFAULT_EVAL_TASKS = 1000
DEFAULT_SEEDS = (0, 1, 2)
# Adaptation speed: first step (or inner episode) at which the agent's reward reaches
# this fraction of the way from random play to the oracle's level.
ADAPT_FRACTION = 0.8


@dataclass(frozen=True)
class EvalSettings:
    """What defines an evaluation: the held-out tasks and the noise seeds."""

    n_tasks: int = DEFAULT_EVAL_TASKS
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    task_seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.n_tasks, (int, np.integer)) or self.n_tasks < 2:
            raise ValueError(f"n_tasks must be an integer >= 2 (bootstrap needs two tasks), got {self.n_tasks!r}")
        if not self.seeds:
            raise ValueError("seeds must name at least one evaluation seed")
        if any(not isinstance(s, (int, np.integer)) or s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be non-negative integers, got {self.seeds!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct (a repeated seed replays the same noise), got {self.seeds!r}")


@dataclass
class Rollout:
    """Rewards of an agent on the held-out tasks: ``rewards[seed, task, step]``."""

    rewards: np.ndarray
    episode_returns: np.ndarray  # [seed, task, inner episode]
    wall_s: float

    @property
    def task_returns(self) -> np.ndarray:
        """Trial return per task, averaged over seeds: shape (n_tasks,)."""
        return self.rewards.sum(axis=2).mean(axis=0)


@dataclass
class References:
    """Per-task reference returns on the held-out tasks, and the Bayes-optimal method.

    ``bayes`` and ``bayes_rollout`` are None for a family that declares no Bayes reference
    (``bayes_method`` is then ``"none"``).
    """

    random: np.ndarray
    oracle: np.ndarray
    bayes: np.ndarray | None
    bayes_value: float  # exact expected return under the prior, or the measured bound; NaN if none
    bayes_method: str
    bayes_rollout: Rollout | None
    random_curve: np.ndarray  # expected reward per step of random play
    oracle_curve: np.ndarray
    bayes_upper: float | None = None  # a value no policy can beat, where the family knows one
    gap_ci: tuple[float, float] | None = None  # 95% CI of the per-task gap bayes - random


@dataclass
class Evaluation:
    """Everything one evaluation produced: the metrics row and the curves."""

    env: str
    agent: str
    metrics: Metrics  # the row's metric columns, by name: ``metrics["score"]``
    step_curve: dict[str, np.ndarray] = field(default_factory=dict)
    episode_curve: dict[str, np.ndarray] = field(default_factory=dict)


def held_out_tasks(name: str, family: TaskFamily, settings: EvalSettings) -> dict[str, np.ndarray]:
    return family.sample_tasks(eval_task_rng(name, settings.task_seed), settings.n_tasks)


@dataclass(frozen=True)
class RolloutStep:
    """One step of a rollout as an observer sees it, after the environment has answered.

    ``obs`` is what the agent acted on, ``memory`` the memory it was given and
    ``next_memory`` the memory ``act`` returned (agents never mutate the memory they are
    given, so both are intact); ``rewards`` is what the environment paid for ``actions``.
    Observers must treat every array as read-only: they are the rollout's own.
    """

    seed_index: int  # position of ``seed`` in ``settings.seeds``
    seed: int
    t: int  # step of the trial, 0 .. trial_length - 1
    obs: Obs
    memory: Any
    actions: np.ndarray
    next_memory: Any
    rewards: np.ndarray


# Called once per step of every seed, in order; what it returns is ignored.
StepObserver = Callable[[RolloutStep], None]


def rollout(
    agent: Agent,
    name: str,
    family: TaskFamily,
    tasks: dict[str, np.ndarray],
    settings: EvalSettings,
    observer: StepObserver | None = None,
) -> Rollout:
    """Play every held-out task once per seed; the noise of seed s is shared by all agents.

    ``observer`` (e.g. the belief probe's recorder) sees every step; it cannot change what
    the agent or the environment do, so the rollout is the same with or without it.
    """
    n, T = settings.n_tasks, family.trial_length
    rewards = np.zeros((len(settings.seeds), n, T))
    episodes = np.zeros((len(settings.seeds), n, family.episodes_per_trial))
    start = time.perf_counter()
    for i, seed in enumerate(settings.seeds):
        env = TrialEnv(family, num_trials=n)
        obs = env.reset(seed=eval_noise_rng(name, seed), tasks=tasks)
        memory = agent.reset(n, rng=eval_agent_rng(name, seed), tasks=tasks if agent.privileged else None)
        for t in range(T):
            actions, next_memory = agent.act(obs, memory)
            next_obs, step_rewards, _, _ = env.step(actions)
            rewards[i, :, t] = step_rewards
            if observer is not None:
                observer(RolloutStep(i, seed, t, obs, memory, actions, next_memory, step_rewards))
            obs, memory = next_obs, next_memory
        episodes[i] = env.episode_returns
    return Rollout(rewards, episodes, time.perf_counter() - start)


def references(name: str, settings: EvalSettings) -> References:
    """Random, oracle and Bayes-optimal references on the held-out tasks (cached per process)."""
    # The key includes the registered parameters, so a re-registered name is recomputed.
    return _references(name, settings, json.dumps(get_spec(name).defaults, sort_keys=True, default=str))


@lru_cache(maxsize=64)
def _references(name: str, settings: EvalSettings, params_key: str) -> References:
    family = get_spec(name).make()
    tasks = held_out_tasks(name, family, settings)
    reference = family.bayes_reference()
    bayes_roll = None
    if reference is not None:
        bayes_roll = rollout(reference.policy(), name, family, tasks, settings)
    random_ret = family.random_return(tasks)
    random_curve = None
    if random_ret is None:
        random_roll = rollout(RandomAgent(family), name, family, tasks, settings)
        random_ret, random_curve = random_roll.task_returns, random_roll.rewards.mean(axis=(0, 1))
    T = family.trial_length
    if random_curve is None:
        random_curve = np.full(T, random_ret.mean() / T)
    oracle_ret = family.oracle_return(tasks)
    if reference is None:
        method, value, upper = NO_REFERENCE, float("nan"), None
    else:
        method, upper = reference.method, reference.upper()
        value = reference.expected_return() if reference.exact else float(bayes_roll.task_returns.mean())
    return References(
        random=random_ret,
        oracle=oracle_ret,
        bayes=None if bayes_roll is None else bayes_roll.task_returns,
        bayes_value=float(value),
        bayes_method=method,
        bayes_rollout=bayes_roll,
        random_curve=random_curve,
        oracle_curve=np.full(T, oracle_ret.mean() / T),
        bayes_upper=upper,
        gap_ci=None if bayes_roll is None else bootstrap_ci(_gap, bayes_roll.task_returns, random_ret),
    )


def _gap(bayes: np.ndarray, rand: np.ndarray, axis: int = -1) -> np.ndarray:
    return (bayes - rand).mean(axis=axis)


def score_note(family: TaskFamily, refs: References) -> str:
    """Why the score is left empty ('' when it is defined)."""
    if refs.bayes is None:
        return f"no score: {family.describe()} declares no Bayes reference (TaskFamily.bayes_reference)"
    # The score divides by the gap between the references; where that gap cannot be told from
    # zero on these tasks (e.g. a one-armed bandit: every policy is the same), the ratio is noise.
    low, high = refs.gap_ci
    if low <= 0.0:
        gap = float(refs.bayes.mean() - refs.random.mean())
        return (
            f"no score: random play and the Bayes reference have the same return here (gap {gap:.3g}, "
            f"95% CI [{low:.3g}, {high:.3g}]), so the score would divide by noise"
        )
    return ""


def adaptation_point(curve: np.ndarray, low: np.ndarray, high: np.ndarray, window: int) -> float:
    """First index at which the smoothed curve gets ADAPT_FRACTION of the way from ``low`` to ``high``.

    NaN when it never does.  Smoothing is a trailing running mean over ``window`` points.
    """
    if window > 1:
        kernel = np.ones(window) / window
        smooth = np.convolve(curve, kernel, mode="full")[: len(curve)] / np.minimum(
            np.arange(1, len(curve) + 1) / window, 1.0
        )
    else:
        smooth = curve
    target = low + ADAPT_FRACTION * (high - low)
    reached = np.flatnonzero(smooth >= target)
    return float(reached[0] + 1) if len(reached) else float("nan")


def _adapt(roll: Rollout, refs: References, family: TaskFamily) -> float:
    """Adaptation speed on the within-trial curve: steps (bandits) or inner episodes (several)."""
    if family.episodes_per_trial > 1:
        curve = roll.episode_returns.mean(axis=(0, 1))
        T = family.horizon
        low = refs.random_curve.reshape(-1, T).sum(axis=1)
        high = refs.oracle_curve.reshape(-1, T).sum(axis=1)
        return adaptation_point(curve, low, high, window=1)
    curve = roll.rewards.mean(axis=(0, 1))
    return adaptation_point(curve, refs.random_curve, refs.oracle_curve, window=max(1, family.horizon // 20))


def _finite_or_none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def _refuse_nan(roll: Rollout, agent: Agent, name: str) -> None:
    """A reward that is NaN or infinite makes every metric meaningless: say where it came from."""
    bad = ~np.isfinite(roll.rewards)
    if bad.any():
        seed, task, step = (int(i[0]) for i in np.nonzero(bad))
        raise ValueError(
            f"{name}: the family's step returned a non-finite reward ({roll.rewards[seed, task, step]}) "
            f"at step {step} of held-out task {task} (evaluation seed index {seed}) while {agent.name!r} played; "
            "rewards must be finite numbers"
        )


def evaluate(agent: Agent, name: str, settings: EvalSettings = EvalSettings()) -> Evaluation:
    """Evaluate ``agent`` on the held-out tasks of distribution ``name``."""
    family = agent.family
    spec = get_spec(name)
    if family.params != spec.make().params:
        raise ValueError(f"agent was built for {family.describe()}, not for the registered {name!r}")
    # A user's family or agent is checked the first time it is played (milliseconds; built-ins are
    # trusted): a broken contract fails here, named, instead of as a broadcast error or a bad row.
    check_first_play(agent, name)
    refs = references(name, settings)
    tasks = held_out_tasks(name, family, settings)
    roll = rollout(agent, name, family, tasks, settings)
    _refuse_nan(roll, agent, name)
    ret = roll.task_returns
    mean_ret = float(ret.mean())
    ret_ci = bootstrap_ci(mean, ret)
    regret_ci = bootstrap_ci(lambda a, o, axis: (o - a).mean(axis=axis), ret, refs.oracle)
    note = score_note(family, refs)
    score, score_ci = None, (None, None)
    if not note:
        score = float(paired_score(ret, refs.random, refs.bayes))
        score_ci = bootstrap_ci(paired_score, ret, refs.random, refs.bayes)
    has_bayes = refs.bayes_rollout is not None
    values = dict(
        seeds=";".join(str(s) for s in settings.seeds),
        n_tasks=settings.n_tasks,
        return_=mean_ret,
        return_ci_low=ret_ci[0],
        return_ci_high=ret_ci[1],
        score=score,
        score_ci_low=score_ci[0],
        score_ci_high=score_ci[1],
        score_note=note,
        oracle_return=float(refs.oracle.mean()),
        bayes_return=refs.bayes_value,
        bayes_method=refs.bayes_method,
        bayes_measured_return=float(refs.bayes.mean()) if has_bayes else None,
        random_return=float(refs.random.mean()),
        regret=float(refs.oracle.mean() - mean_ret),
        regret_ci_low=regret_ci[0],
        regret_ci_high=regret_ci[1],
        bayes_gap=refs.bayes_value - mean_ret,
        adapt_steps=_adapt(roll, refs, family),
        bayes_adapt_steps=_adapt(refs.bayes_rollout, refs, family) if has_bayes else None,
        eval_wall_s=roll.wall_s,
    )
    # NaN says "not defined here" (no reference, never adapted, no interval): the row's empty field
    metrics = Metrics(**{k: _finite_or_none(v) if isinstance(v, float) else v for k, v in values.items()})
    step_curve = {
        "agent": roll.rewards.mean(axis=(0, 1)),
        "random": refs.random_curve,
        "oracle": refs.oracle_curve,
    }
    episode_curve = {"agent": roll.episode_returns.mean(axis=(0, 1))}
    if has_bayes:
        step_curve["bayes"] = refs.bayes_rollout.rewards.mean(axis=(0, 1))
        episode_curve["bayes"] = refs.bayes_rollout.episode_returns.mean(axis=(0, 1))
    return Evaluation(name, agent.name, metrics, step_curve, episode_curve)
