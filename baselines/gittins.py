"""The ``gittins`` agent: the Gittins index policy of Beta-Bernoulli arms.

The index computation (calibration, tables, the restart-in-state cross-check) stays with
the bandit families' belief model, ``metarl_bench.envs.bandits.gittins``; this module
plays it.  Where exact planning is out of reach, the Bernoulli bandits' Bayes planner
(``metarl_bench.envs.bandits.bayes``) plays this agent as the lower-bound reference: it
looks it up by its registered name, ``gittins``, since a family imports no agent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metarl_bench.core.agent import Agent, Obs, UnsupportedFamilyError, last_transition
from metarl_bench.core.family import Arrays, TaskFamily
from metarl_bench.core.registry import register_agent
from metarl_bench.envs.bandits.family import BernoulliBandit, DependentBernoulliBandit
from metarl_bench.envs.bandits.gittins import check_discount, gittins_table


class GittinsAgent(Agent):
    """Pulls the arm whose Beta posterior has the highest Gittins index (ties: lowest arm).

    ``discount``: the geometric discount of the index, in (0, 1), or ``"auto"`` for
    ``1 - 1/trial_length``.  A trial is undiscounted and finite, so the discount is a
    knob that sets how far ahead exploration pays: its effective horizon ``1/(1 - g)``
    should be comparable to the trial.  The default 0.98 (effective horizon 50, half of
    the 100-pull trials of the built-in bandits) played best of 0.8-0.995 on
    bernoulli-k2-h100 (2000 paired trials: 64.55 against 64.57 for the exact
    Bayes-optimal policy; 0.97 and 0.99 0.02 lower, 0.9 0.23 lower, 0.8 0.44 lower, 0.995
    0.09 lower; the same order on 4000 more trials) and on bernoulli-k5-h100.  ``"auto"``
    gives 0.99 there.

    Tables are built on the first ``reset`` (then cached per process) and grown if a trial
    runs longer than the family says.

    Dependent arms (``DependentBernoulliBandit``: ``p`` and ``1 - p``) are played as
    independent arms with priors Beta(alpha, beta) and Beta(beta, alpha).  That ignores
    that each pull informs both arms, so there it is a heuristic, not the index policy.
    """

    name = "gittins"

    def __init__(self, family: TaskFamily, discount: float | str = 0.98):
        if not isinstance(family, BernoulliBandit):
            raise UnsupportedFamilyError(
                "the Gittins agent supports Bernoulli families only (BernoulliBandit, "
                f"DependentBernoulliBandit), not {family.describe()}"
            )
        auto = isinstance(discount, str) and discount == "auto"
        if auto:
            gamma = 1.0 - 1.0 / family.trial_length if family.trial_length > 1 else 0.5
        else:
            gamma = check_discount(discount)
        super().__init__(family, discount="auto" if auto else gamma)
        self.discount = gamma
        if isinstance(family, DependentBernoulliBandit):  # arm 1 pays 1 - p ~ Beta(beta, alpha)
            priors = [(family.alpha, family.beta), (family.beta, family.alpha)]
        else:
            priors = [(family.alpha, family.beta)] * family.num_actions
        self._priors = sorted(set(priors))
        self._prior_of_arm = np.array([self._priors.index(p) for p in priors])
        self._tables = np.empty((len(self._priors), 0, 0))

    def _ensure_table(self, max_pulls: int) -> None:
        """Index tables up to ``max_pulls`` pulls per arm, one per distinct prior."""
        if self._tables.shape[1] > max_pulls:
            return
        self._tables = np.stack([gittins_table(a, b, self.discount, max_pulls) for a, b in self._priors])

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        self._ensure_table(self.family.trial_length - 1)  # now, not inside the first act
        zeros = np.zeros((num_trials, self.num_actions), np.int64)
        return {"successes": zeros, "failures": zeros.copy()}

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        action, reward, has_prev = last_transition(obs)
        rows = np.flatnonzero(has_prev)
        win = (reward[rows] > 0.5).astype(np.int64)
        s, f = memory["successes"].copy(), memory["failures"].copy()
        s[rows, action[rows]] += win
        f[rows, action[rows]] += 1 - win
        return self.choose(s, f), {"successes": s, "failures": f}

    def choose(self, successes: np.ndarray, failures: np.ndarray) -> np.ndarray:
        """The arm of highest Gittins index given per-arm success and failure counts (n, k)."""
        self._ensure_table(int((successes + failures).max(initial=0)))  # only past trial_length pulls
        return self._tables[self._prior_of_arm, successes, failures].argmax(axis=1)

    def features(self, memory: Any) -> np.ndarray:
        return np.concatenate([memory["successes"], memory["failures"]], axis=1).astype(float)


register_agent("gittins", GittinsAgent)

__all__ = ["GittinsAgent"]
