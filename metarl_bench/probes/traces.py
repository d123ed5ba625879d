"""Recording for the simulation analysis: one agent drives, others shadow it on the same histories.

The driver plays the held-out tasks through the evaluator's own ``rollout`` (evaluation
task stream, one noise and agent stream per seed), exactly as the linear probe's recorder
does (``metarl_bench.probes.record``).  Every shadow reads the very same observation
stream (its own actions never reach the environment), seeded as the evaluator seeds an
agent, so the Bayes reference and every control are asked about the same histories.
Before every action ``t`` the trace holds: the family's exact posterior after the ``t``
transitions so far (its belief features, flattened), the inner observation read at ``t``,
the action the Bayes reference takes there (the driver's own when the driver is the
reference), and for every subject its action probabilities (``action_probs`` on the
memory it acts from) and, where asked, its ``features`` (the memory after reading
observation ``t``: what action ``t`` is chosen from).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metarl_bench.core.agent import Agent
from metarl_bench.core.family import TaskFamily
from metarl_bench.core.seeding import eval_agent_rng
from metarl_bench.evaluation import evaluate
from metarl_bench.evaluation.evaluate import EvalSettings, RolloutStep, held_out_tasks
from metarl_bench.probes.controls import flat_posterior
from metarl_bench.probes.record import ProbeError, _features


@dataclass
class Trace:
    """What a driver and its shadows did; arrays [trial, step, ...], trials seed-major as in ``Recording``."""

    driver: str
    n_tasks: int
    actions: np.ndarray
    rewards: np.ndarray
    inner_obs: np.ndarray  # [trial, step, o]
    posterior: np.ndarray  # [trial, step, m]: flat belief features after t transitions
    bayes_actions: np.ndarray
    probs: dict[str, np.ndarray] = field(default_factory=dict)  # subject -> [trial, step, k]
    features: dict[str, np.ndarray] = field(default_factory=dict)  # subject -> [trial, step, d]
    wall_s: float = 0.0

    @property
    def task_of_trial(self) -> np.ndarray:
        return np.arange(len(self.actions)) % self.n_tasks


def action_probs(agent: Agent, obs: Any, memory: Any, n: int) -> np.ndarray:
    """``agent.action_probs(obs, memory)`` checked: (n, k) finite probabilities."""
    fn = getattr(agent, "action_probs", None)
    if fn is None:
        raise ProbeError(f"agent {agent.name!r} exposes no action_probs(obs, memory), which the simulation compares")
    probs = np.asarray(fn(obs, memory)[0], np.float64)
    if probs.shape != (n, agent.num_actions) or not np.isfinite(probs).all():
        raise ProbeError(
            f"agent {agent.name!r}: action_probs must give finite ({n}, {agent.num_actions}) probabilities, "
            f"got shape {probs.shape}"
        )
    return probs


class _Tracer:
    """The rollout observer; arrays are [seed, task, step, ...] while recording."""

    def __init__(self, env: str, family: TaskFamily, settings: EvalSettings, driver: tuple[str, Agent],
                 shadows: dict[str, Agent], bayes: Agent | None, with_features: set[str]):  # fmt: skip
        # the arguments of ``trace``, which builds the one tracer of a rollout
        self.env, self.family = env, family
        self.driver_name, self.driver = driver
        self.shadows, self.bayes, self.with_features = shadows, bayes, with_features
        self.shape = (len(settings.seeds), settings.n_tasks, family.trial_length)
        self.arrays: dict[str, np.ndarray] = {}
        self.memories: dict[str, Any] = {}
        self.belief: Any = None
        self.last_rewards: np.ndarray | None = None

    def put(self, key: str, i: int, t: int, value: np.ndarray, dtype: Any = np.float64) -> None:
        value = np.asarray(value)
        if key not in self.arrays:
            self.arrays[key] = np.zeros((*self.shape, *value.shape[1:]), dtype)
        self.arrays[key][i, :, t] = value

    def __call__(self, step: RolloutStep) -> None:
        i, t, obs = step.seed_index, step.t, step.obs
        n = self.shape[1]
        if t == 0:
            self.belief = self.family.prior(n)
            for name, agent in {**self.shadows, **({"bayes": self.bayes} if self.bayes else {})}.items():
                self.memories[name] = agent.reset(n, rng=eval_agent_rng(self.env, step.seed))
        else:  # the posterior after t transitions: what is known when action t is picked
            self.belief = self.family.update_belief(
                self.belief, self.arrays["actions"][i, :, t - 1], self.last_rewards, obs["obs"]
            )
        self.last_rewards = step.rewards
        self.put("actions", i, t, step.actions, np.int64)
        self.put("posterior", i, t, flat_posterior(self.family, self.belief))
        self.put("inner_obs", i, t, np.asarray(obs["obs"], np.float64).reshape(n, -1))
        if self.bayes is not None:  # a driving reference is compared with no one
            self.put(f"probs:{self.driver_name}", i, t, action_probs(self.driver, obs, step.memory, n))
        if self.driver_name in self.with_features:
            self.put(f"features:{self.driver_name}", i, t, _features(self.driver, step.next_memory, n), np.float32)
        if self.bayes is not None:
            bayes_actions, self.memories["bayes"] = self.bayes.act(obs, self.memories["bayes"])
        else:  # the driver is the reference
            bayes_actions = step.actions
        self.put("bayes_actions", i, t, bayes_actions, np.int64)
        for name, agent in self.shadows.items():
            self.put(f"probs:{name}", i, t, action_probs(agent, obs, self.memories[name], n))
            _, self.memories[name] = agent.act(obs, self.memories[name])
            if name in self.with_features:
                self.put(f"features:{name}", i, t, _features(agent, self.memories[name], n), np.float32)


def trace(
    env: str,
    family: TaskFamily,
    settings: EvalSettings,
    driver: tuple[str, Agent],
    shadows: dict[str, Agent],
    bayes: Agent | None,
    with_features: set[str] = frozenset(),
) -> Trace:
    """Play the held-out tasks with ``driver`` (name, agent); record it, ``shadows`` and the Bayes reference.

    ``bayes`` is the reference policy shadowing the driver, or None when the driver is the
    reference itself.  ``with_features`` names the subjects whose features are recorded.
    """
    start = time.perf_counter()
    tracer = _Tracer(env, family, settings, driver, shadows, bayes, set(with_features))
    played = evaluate.rollout(driver[1], env, family, held_out_tasks(env, family, settings), settings, observer=tracer)
    S, n, _ = tracer.shape
    flat = {k: v.reshape(S * n, *v.shape[2:]) for k, v in tracer.arrays.items()}
    return Trace(
        driver=driver[0],
        n_tasks=n,
        actions=flat["actions"],
        rewards=played.rewards.reshape(S * n, -1),
        inner_obs=flat["inner_obs"],
        posterior=flat["posterior"],
        bayes_actions=flat["bayes_actions"],
        probs={k.split(":", 1)[1]: v for k, v in flat.items() if k.startswith("probs:")},
        features={k.split(":", 1)[1]: v.astype(np.float64) for k, v in flat.items() if k.startswith("features:")},
        wall_s=time.perf_counter() - start,
    )
