"""Classical bandit agents: random, greedy, epsilon-greedy, UCB1, Thompson sampling, oracle.

All are batched over trials and read only the RL² observation (previous action and
reward), except the oracle, which is told the task.  The belief-based ones (greedy,
epsilon-greedy, Thompson) use the family's own belief model, so they work on every
bandit family that has one (Bernoulli, dependent Bernoulli, Gaussian).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metarl_bench.core.agent import (
    Agent,
    Obs,
    RandomAgent,
    UnsupportedFamilyError,
    fresh_rng,
    last_transition,
    require_bandit,
)
from metarl_bench.core.family import Arrays, TaskFamily
from metarl_bench.core.registry import register_agent


def _argmax_random_ties(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row-wise argmax, ties broken uniformly at random (so no arm is favoured by index)."""
    noise = rng.random(values.shape)
    best = values >= values.max(axis=1, keepdims=True) - 1e-12
    return np.where(best, noise, -1.0).argmax(axis=1)


register_agent("random", RandomAgent)  # the score's 0, defined with the references


class _BeliefAgent(Agent):
    """Keeps the family's exact posterior in memory and acts on it."""

    def __init__(self, family: TaskFamily, **config: Any):
        super().__init__(family, **config)
        require_bandit(self.name, family)
        try:
            family.prior(1)
        except NotImplementedError:
            raise UnsupportedFamilyError(
                f"agent {self.name!r} needs a family with a belief model; {family.describe()} has none"
            ) from None

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        return {"rng": np.random.default_rng(rng), "belief": self.family.prior(num_trials), "t": 0}

    def _observe(self, obs: Obs, memory: Any) -> dict[str, Any]:
        """New memory: the posterior after the previous transition, and a fresh copy of the rng."""
        action, reward, has_prev = last_transition(obs)
        belief, t = memory["belief"], memory["t"]
        if has_prev.any():
            updated = self.family.update_belief(belief, action, reward, obs["obs"])
            if not has_prev.all():
                updated = {k: np.where(_expand(has_prev, v), v, belief[k]) for k, v in updated.items()}
            belief, t = updated, t + 1
        return {"rng": fresh_rng(memory["rng"]), "belief": belief, "t": t}

    def features(self, memory: Any) -> np.ndarray:
        parts = [np.asarray(v, float).reshape(len(v), -1) for v in memory["belief"].values()]
        return np.concatenate(parts, axis=1)


def _expand(mask: np.ndarray, like: np.ndarray) -> np.ndarray:
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))


@register_agent("greedy")
class GreedyAgent(_BeliefAgent):
    """Always pulls the arm with the highest posterior mean (no exploration)."""

    name = "greedy"

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        memory = self._observe(obs, memory)
        means = self.family.belief_features(memory["belief"])["posterior_mean"]
        return _argmax_random_ties(means, memory["rng"]), memory


@register_agent("epsilon-greedy")
class EpsilonGreedyAgent(GreedyAgent):
    """Greedy on the posterior mean, but a uniformly random arm with probability ``epsilon``."""

    name = "epsilon-greedy"

    def __init__(self, family: TaskFamily, epsilon: float = 0.1):
        if not 0.0 <= float(epsilon) <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon!r}")
        super().__init__(family, epsilon=float(epsilon))

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        greedy, memory = super().act(obs, memory)  # new memory: its rng is ours to draw from
        rng = memory["rng"]
        explore = rng.random(len(greedy)) < self.config["epsilon"]
        return np.where(explore, rng.integers(0, self.num_actions, len(greedy)), greedy), memory


@register_agent("thompson")
class ThompsonAgent(_BeliefAgent):
    """Thompson sampling: pull the best arm of one posterior sample (Thompson 1933)."""

    name = "thompson"

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        memory = self._observe(obs, memory)
        sample = self.family.posterior_sample(memory["belief"], memory["rng"])
        return _argmax_random_ties(sample, memory["rng"]), memory


@register_agent("ucb1")
class UCB1Agent(Agent):
    """UCB1 (Auer et al. 2002): each arm once, then mean + c * sqrt(2 ln t / n_a).

    ``pseudo_counts=True`` is the form of the RL² paper's evaluation code: every arm starts
    with one success and one failure (Beta(1, 1)), so no arm is forced first, and t counts
    the pulls made.
    """

    name = "ucb1"

    def __init__(self, family: TaskFamily, c: float = 1.0, pseudo_counts: bool = False):
        if not float(c) >= 0.0:
            raise ValueError(f"c must be >= 0, got {c!r}")
        require_bandit(self.name, family)
        super().__init__(family, c=float(c), pseudo_counts=bool(pseudo_counts))

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        k = self.num_actions
        prior = 1.0 if self.config["pseudo_counts"] else 0.0
        return {
            "rng": np.random.default_rng(rng),
            "pulls": np.full((num_trials, k), 2.0 * prior),
            "sums": np.full((num_trials, k), prior),
        }

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        action, reward, has_prev = last_transition(obs)
        rows = np.flatnonzero(has_prev)
        pulls, sums = memory["pulls"].copy(), memory["sums"].copy()
        pulls[rows, action[rows]] += 1.0
        sums[rows, action[rows]] += reward[rows]
        t = pulls.sum(axis=1, keepdims=True) - (2.0 * self.num_actions if self.config["pseudo_counts"] else 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ucb = sums / pulls + self.config["c"] * np.sqrt(2.0 * np.log(np.maximum(t, 1.0)) / pulls)
        ucb = np.where(pulls == 0, np.inf, ucb)  # untried arms first
        rng = fresh_rng(memory["rng"])
        return _argmax_random_ties(ucb, rng), {"rng": rng, "pulls": pulls, "sums": sums}

    def features(self, memory: Any) -> np.ndarray:
        return np.concatenate([memory["pulls"], memory["sums"]], axis=1)


# The RL² paper grid-searched UCB1's c and epsilon-greedy's epsilon per (k, n) on
# {0, 0.1, ..., 1} (its evaluation code keeps the best mean of 1000 bandits).  We search the
# same grids on 1000 *training* tasks of each rl2-bandits distribution (train stream, seed
# 0), with the paper's forms (pseudo-counts of one success and one failure); the choices are
# data, written by ``python studies/bandit_tuning.py --write`` (the command is in each line).
TUNING_GRID = tuple(round(0.1 * i, 1) for i in range(11))
TUNED_FILE = Path(__file__).resolve().parent / "tuned" / "bandit_constants.csv"
TUNED_COLUMNS = ("agent", "arms", "pulls", "param", "value", "train_return", "tasks", "command")


@lru_cache(maxsize=1)
def tuned_table() -> dict[str, dict[tuple[int, int], float]]:
    """agent -> (arms, pulls) -> the tuned constant, from ``TUNED_FILE``."""
    try:
        df = pd.read_csv(TUNED_FILE)
        table: dict[str, dict[tuple[int, int], float]] = {}
        for row in df.itertuples(index=False):
            table.setdefault(str(row.agent), {})[(int(row.arms), int(row.pulls))] = float(row.value)
    except (OSError, ValueError, AttributeError, pd.errors.ParserError) as exc:
        raise RuntimeError(f"the tuned constants {TUNED_FILE} cannot be read ({type(exc).__name__}: {exc})") from None
    return table


def tuned_value(agent: str, family: TaskFamily) -> float:
    """The tuned constant of ``agent`` on ``family`` (keyed by arms and pulls of a uniform-prior
    Bernoulli bandit); UnsupportedFamilyError where none was measured."""
    from metarl_bench.envs.bandits.family import BernoulliBandit

    key = (family.num_actions, family.trial_length)
    table = tuned_table().get(agent, {})
    uniform = isinstance(family, BernoulliBandit) and family.params == BernoulliBandit(*key).params
    if not uniform or key not in table:
        raise UnsupportedFamilyError(
            f"agent '{agent}-tuned' has tuned constants for the rl2-bandits distributions only "
            f"((k, n) in {sorted(table)}), not for {family.describe()}; run studies/bandit_tuning.py "
            f"or play '{agent}' with an explicit constant"
        )
    return table[key]


@register_agent("ucb1-tuned")
class TunedUCB1Agent(UCB1Agent):
    """``ucb1`` in the RL² paper's form (pseudo-counts), c from the tuned constants (``tuned_value``)."""

    name = "ucb1-tuned"

    def __init__(self, family: TaskFamily, c: float | None = None):
        require_bandit(self.name, family)
        super().__init__(family, c=tuned_value("ucb1", family) if c is None else c, pseudo_counts=True)


@register_agent("epsilon-greedy-tuned")
class TunedEpsilonGreedyAgent(EpsilonGreedyAgent):
    """``epsilon-greedy`` with epsilon from the tuned constants (greedy on the Beta(1, 1) posterior
    mean, the paper's form)."""

    name = "epsilon-greedy-tuned"

    def __init__(self, family: TaskFamily, epsilon: float | None = None):
        require_bandit(self.name, family)
        super().__init__(family, epsilon=tuned_value("epsilon-greedy", family) if epsilon is None else epsilon)


@register_agent("oracle")
class OracleAgent(Agent):
    """Knows the task and plays the family's known-task policy (``TaskFamily.oracle_actions``:
    the best arm of a bandit, the shortest way to the goal of a gridworld): the upper reference
    for regret."""

    name = "oracle"
    privileged = True

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        if tasks is None:
            raise ValueError("the oracle must be told the tasks: reset(num_trials, tasks=...)")
        return {"tasks": tasks, "t": 0}

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        actions = self.family.oracle_actions(memory["tasks"], obs["obs"], memory["t"])
        return actions, {**memory, "t": memory["t"] + 1}
