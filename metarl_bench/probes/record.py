"""What the belief probe records, and what it can record at all.

**Capability checks.**  A probe needs an agent that exposes its memory (``Agent.features``)
and a family with a belief model (``prior``, ``update_belief``, ``belief_features``); the
checks name the agents and distributions that qualify, so a wrong name fails with a
useful message before any rollout.

**Recording.**  The agent plays the held-out tasks of the evaluator through the
evaluator's own ``rollout`` (evaluation task stream, one noise and agent stream per
seed), so it plays exactly the trials it is scored on.  An observer of that rollout
records, before every action ``t``, the agent's ``features(memory)`` after it has read
observation ``t`` (the memory it acts on) and the family's exact belief after the ``t``
transitions so far (``prior`` then ``update_belief(belief, action, reward, next obs)``,
named by ``belief_features``).  The ``bayes`` agent and, as the control, an untrained
agent of the same architecture and config read the very same observation stream (they
shadow the probed agent; their own actions never reach the environment), so all three
act on the same history.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from metarl_bench.core.agent import Agent, Obs
from metarl_bench.core.family import TaskFamily
from metarl_bench.core.registry import (
    get_agent_factory,
    get_spec,
    list_agents,
    list_families,
    make_agent,
)
from metarl_bench.core.seeding import eval_agent_rng
from metarl_bench.evaluation import evaluate
from metarl_bench.evaluation.evaluate import EvalSettings, RolloutStep, held_out_tasks

ALL = "all"  # the target made of every belief feature; no family may name a feature so


class ProbeError(ValueError):
    """Input the probe cannot work with; the message says what was wrong and what is allowed."""


# ============================================================================ what can be probed
def has_features(agent_cls: Any) -> bool:
    """Whether an agent class overrides ``Agent.features``."""
    return isinstance(agent_cls, type) and issubclass(agent_cls, Agent) and agent_cls.features is not Agent.features


def agents_with_features() -> list[str]:
    """Registered agents that expose their memory (imports lazy agents such as rl2)."""
    return [n for n in list_agents() if has_features(get_agent_factory(n))]


def has_belief_model(family: TaskFamily) -> bool:
    """Whether ``family`` overrides the belief hooks and they work (a posterior to probe for)."""
    cls = type(family)
    if any(getattr(cls, m) is getattr(TaskFamily, m) for m in ("prior", "update_belief", "belief_features")):
        return False
    try:
        family.belief_features(family.prior(1))
    except NotImplementedError:
        return False
    return True


def families_with_belief() -> list[str]:
    """Registered distributions with a belief model."""
    return [n for n in list_families() if has_belief_model(get_spec(n).make())]


def check_probeable(agent_name: str, env: str) -> None:
    """Raise ProbeError unless ``agent_name`` has features() and ``env`` has a belief model."""
    factory = get_agent_factory(agent_name)
    if isinstance(factory, type) and not has_features(factory):  # a plain factory function is checked when run
        raise ProbeError(
            f"agent {agent_name!r} exposes no features() (its memory), so it cannot be probed; "
            f"agents that do: {', '.join(agents_with_features())}"
        )
    if not has_belief_model(get_spec(env).make()):
        raise ProbeError(
            f"distribution {env!r} has no belief model (prior, update_belief, belief_features), so there is "
            f"no posterior to probe for; distributions with one: {', '.join(families_with_belief())}"
        )


def check_agent_and_family(agent: Agent, env: str) -> None:
    """The same checks on a built agent (whose factory may have been a plain function)."""
    if not has_features(type(agent)):
        allowed = ", ".join(agents_with_features())
        raise ProbeError(f"agent {agent.name!r} exposes no features() (its memory); agents that do: {allowed}")
    if not has_belief_model(agent.family):
        raise ProbeError(
            f"distribution {env!r} has no belief model; distributions with one: {', '.join(families_with_belief())}"
        )


def untrained_control(agent: Agent, family: TaskFamily, seed: int = 0) -> tuple[Agent | None, str]:
    """An untrained agent of the same architecture and config, and a note on how it was built.

    A freshly constructed agent is used as it is when it can act (VSML: the seeded initial
    parameters); one without a model yet (RL²) gets ``fit(family, budget=0)``, which builds
    the network and takes no step.  Non-learning agents have no control.
    """
    if not agent.learns:
        return None, "none: agent does not learn"
    control = make_agent(agent.name, family, **agent.config)
    try:
        control.reset(1)
        return control, f"untrained {agent.name} (same config, initial parameters)"
    except RuntimeError:  # no model until fit() builds one
        pass
    kwargs = {"progress": False} if "progress" in inspect.signature(control.fit).parameters else {}
    stats = control.fit(family, 0, seed, **kwargs)
    if stats.get("train_steps", 0) != 0:
        raise ProbeError(f"fit(budget=0) trained {agent.name!r} for {stats['train_steps']} steps; no untrained control")
    return control, f"untrained {agent.name} (same config, fit budget 0, seed {seed})"


def bayes_shadow(family: TaskFamily) -> tuple[Agent | None, str]:
    """The policy of the Bayes reference ``family`` declares, and its method; or (None, why not)."""
    reference = family.bayes_reference()
    if reference is None:
        return None, f"no Bayes reference: {family.describe()} declares none"
    return reference.policy(), reference.method


# ============================================================================ recording
@dataclass
class Recording:
    """What the probed agent (and its shadows) did on the held-out trials.

    Trials are seed-major: trial ``j`` is task ``j % n_tasks`` under seed ``seeds[j // n_tasks]``.
    Arrays are indexed [trial, step, ...]; ``features`` is None when not recorded.
    """

    n_tasks: int
    features: np.ndarray | None
    control_features: np.ndarray | None
    beliefs: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray  # the evaluator's Rollout.rewards of the probed agent, flattened to [trial, step]
    bayes_actions: np.ndarray | None
    bayes_prob: np.ndarray | None  # p_agent(Bayes action), agents with action_probs
    control_actions: np.ndarray | None
    control_bayes_prob: np.ndarray | None
    bayes_method: str
    wall_s: float

    @property
    def task_of_trial(self) -> np.ndarray:
        return np.arange(len(self.actions)) % self.n_tasks


def _action_probs(agent: Agent, obs: Obs, memory: Any) -> np.ndarray | None:
    """The agent's action probabilities at ``obs`` (None if it exposes none).

    Agents never mutate the memory they are given, so asking leaves ``memory`` as it was.
    """
    fn = getattr(agent, "action_probs", None)
    if fn is None:
        return None
    probs, _ = fn(obs, memory)
    return np.asarray(probs, np.float64)


def _features(agent: Agent, memory: Any, n: int) -> np.ndarray:
    try:
        x = np.asarray(agent.features(memory), np.float32)
    except NotImplementedError as exc:
        raise ProbeError(f"{exc}; agents that do: {', '.join(agents_with_features())}") from None
    if x.ndim != 2 or len(x) != n:
        raise ProbeError(f"agent {agent.name!r}: features() must return shape ({n}, d), got {x.shape}")
    if not np.isfinite(x).all():
        raise ProbeError(f"agent {agent.name!r}: features() returned NaN or infinite values")
    return x


def _flat_beliefs(family: TaskFamily, belief: Any, n: int) -> dict[str, np.ndarray]:
    out = {}
    for name, value in family.belief_features(belief).items():
        v = np.asarray(value, np.float64).reshape(n, -1)
        if name == ALL:
            raise ProbeError(f"{family.describe()}: belief feature name {ALL!r} is reserved by the probe")
        out[name] = v
    return out


class _Recorder:
    """The rollout observer: belief, features and the shadows' actions at every step.

    Arrays are [seed, task, step, ...] while recording; those whose width is only known
    from the first value (features, beliefs) are allocated then.
    """

    def __init__(
        self,
        agent: Agent,
        env: str,
        family: TaskFamily,
        settings: EvalSettings,
        bayes: Agent | None,
        control: Agent | None,
        with_features: bool,
    ):
        self.agent, self.env, self.family = agent, env, family
        self.bayes, self.control, self.with_features = bayes, control, with_features
        S, n, T = len(settings.seeds), settings.n_tasks, family.trial_length
        self.shape = (S, n, T)
        self.actions = np.zeros(self.shape, np.int64)
        self.bayes_actions = np.zeros(self.shape, np.int64) if bayes else None
        self.control_actions = np.zeros(self.shape, np.int64) if control else None
        self.p_bayes: np.ndarray | None = None
        self.control_p_bayes: np.ndarray | None = None
        self.features: np.ndarray | None = None
        self.control_features: np.ndarray | None = None
        self.beliefs: dict[str, np.ndarray] = {}
        # carried from step to step within a seed
        self.belief: Any = None
        self.bayes_memory: Any = None
        self.control_memory: Any = None
        self.last_rewards: np.ndarray | None = None

    def _zeros(self, current: np.ndarray | None, *tail: int, dtype: Any = np.float64) -> np.ndarray:
        return np.zeros((*self.shape, *tail), dtype) if current is None else current

    def __call__(self, step: RolloutStep) -> None:
        i, t, obs = step.seed_index, step.t, step.obs
        n = self.shape[1]
        if t == 0:
            self._start_seed(step.seed, n)
        else:  # the posterior after t transitions: what the agent knows when it picks action t
            last_actions = self.actions[i, :, t - 1]
            self.belief = self.family.update_belief(self.belief, last_actions, self.last_rewards, obs["obs"])
        for name, v in _flat_beliefs(self.family, self.belief, n).items():
            self.beliefs.setdefault(name, np.zeros((*self.shape, v.shape[1])))[i, :, t] = v
        self.actions[i, :, t] = step.actions
        self.last_rewards = step.rewards
        probs = _action_probs(self.agent, obs, step.memory) if self.bayes else None
        if self.with_features:  # the memory after reading observation t: what action t is chosen from
            x = _features(self.agent, step.next_memory, n)
            self.features = self._zeros(self.features, x.shape[1], dtype=np.float32)
            self.features[i, :, t] = x
        if self.bayes:
            self.bayes_actions[i, :, t], self.bayes_memory = self.bayes.act(obs, self.bayes_memory)
            if probs is not None:
                self.p_bayes = self._zeros(self.p_bayes)
                self.p_bayes[i, :, t] = self._prob_of_bayes(probs, i, t)
        if self.control:
            self._shadow_control(obs, i, t, n)

    def _start_seed(self, seed: int, n: int) -> None:
        """A new seed: the prior, and shadows seeded as the evaluator seeds the agent (each its own stream)."""
        self.belief = self.family.prior(n)
        if self.bayes:
            self.bayes_memory = self.bayes.reset(n, rng=eval_agent_rng(self.env, seed))
        if self.control:
            self.control_memory = self.control.reset(n, rng=eval_agent_rng(self.env, seed))

    def _prob_of_bayes(self, probs: np.ndarray, i: int, t: int) -> np.ndarray:
        return probs[np.arange(len(probs)), self.bayes_actions[i, :, t]]

    def _shadow_control(self, obs: Obs, i: int, t: int, n: int) -> None:
        c_probs = _action_probs(self.control, obs, self.control_memory) if self.bayes else None
        self.control_actions[i, :, t], self.control_memory = self.control.act(obs, self.control_memory)
        x = _features(self.control, self.control_memory, n)
        self.control_features = self._zeros(self.control_features, x.shape[1], dtype=np.float32)
        self.control_features[i, :, t] = x
        if c_probs is not None:
            self.control_p_bayes = self._zeros(self.control_p_bayes)
            self.control_p_bayes[i, :, t] = self._prob_of_bayes(c_probs, i, t)


def record(
    agent: Agent,
    env: str,
    family: TaskFamily,
    settings: EvalSettings,
    control: Agent | None = None,
    with_features: bool = True,
) -> Recording:
    """Play the held-out tasks of ``env`` with ``agent`` (the evaluator's rollout); shadow it
    with the bayes agent and ``control``."""
    start = time.perf_counter()
    tasks = held_out_tasks(env, family, settings)
    bayes, bayes_method = bayes_shadow(family)
    rec = _Recorder(agent, env, family, settings, bayes, control, with_features)
    played = evaluate.rollout(agent, env, family, tasks, settings, observer=rec)
    S, n, T = rec.shape

    def flat(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a.reshape(S * n, *a.shape[2:])

    return Recording(
        n_tasks=n,
        features=flat(rec.features),
        control_features=flat(rec.control_features),
        beliefs={k: flat(v) for k, v in rec.beliefs.items()},
        actions=flat(rec.actions),
        rewards=flat(played.rewards),
        bayes_actions=flat(rec.bayes_actions),
        bayes_prob=flat(rec.p_bayes),
        control_actions=flat(rec.control_actions),
        control_bayes_prob=flat(rec.control_p_bayes),
        bayes_method=bayes_method if bayes else "",
        wall_s=time.perf_counter() - start,
    )
