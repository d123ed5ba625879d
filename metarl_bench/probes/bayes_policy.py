"""The Bayes policy as a distribution, and as a function of any belief vector.

**A tremble.**  The Bayes reference acts deterministically, so KL(agent || Bayes) would be
infinite wherever an agent gives any probability to another action.  The simulation
compares with the Bayes policy with a tremble: ``(1 - BAYES_EPS)`` on the Bayes action and
``BAYES_EPS`` spread evenly over all actions (:func:`soft_bayes`).  KL between two such
policies is 0 where their actions agree and ``(1 - eps) log(1 + k (1 - eps) / eps)``
(4.6 nats for k = 2, 5.3 for k = 5) where they differ, so a KL between trembling Bayes
policies is that constant times the share of steps whose Bayes actions differ.  A tie
between optimal actions is broken as the reference breaks it (lowest index), so an
agent that splits a tie counts as half wrong there.

**The Bayes policy at any belief** (:class:`BayesLookup`).  A map from an agent's memory
predicts a belief vector that need not be a valid posterior (a fraction of a count, a
goal posterior that sums to 0.9).  We project it on the nearest *valid* belief: among
the posteriors actually reached on the recorded histories at the same step of the trial
and with the same current observation (both known to every agent, so only the posterior
is in question), the one nearest in the standardised belief coordinates, and read the
action the Bayes reference took there.  The reference's action is a function of the
posterior, the observation and the step, so at a valid belief this is exactly the Bayes
policy; it never needs the planner's internals, so it works for any family that
declares a Bayes reference.  A step or observation never recorded falls back to the
nearest belief recorded at that step, then anywhere.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import rel_entr

BAYES_EPS = 0.01  # the Bayes policy's tremble
PROB_FLOOR = 1e-12  # an agent probability of 0 is read as this in a KL (as in the linear probe)


def soft_bayes(actions: np.ndarray, num_actions: int, eps: float = BAYES_EPS) -> np.ndarray:
    """The trembling Bayes policy, shape (n, k), of Bayes actions ``actions`` (n,)."""
    probs = np.full((len(actions), num_actions), eps / num_actions)
    probs[np.arange(len(actions)), np.asarray(actions, np.int64)] += 1.0 - eps
    return probs


def kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p || q) of every row (..., k) in nats; ``q`` is floored at PROB_FLOOR and renormalised."""
    q = np.maximum(np.asarray(q, np.float64), PROB_FLOOR)
    q = q / q.sum(axis=-1, keepdims=True)
    return rel_entr(np.asarray(p, np.float64), q).sum(axis=-1)


class ObservationCodes:
    """Integer codes of the inner observations seen; any other vector gets the code of the nearest one."""

    def __init__(self, obs: np.ndarray):
        self.valid = np.unique(np.asarray(obs, np.float64).reshape(len(obs), -1), axis=0)
        self._tree = cKDTree(self.valid)

    def codes(self, obs: np.ndarray) -> np.ndarray:
        _, idx = self._tree.query(np.asarray(obs, np.float64).reshape(len(obs), -1))
        return np.asarray(idx, np.int64)


class BayesLookup:
    """The Bayes action at any belief vector: the action at the nearest valid belief (module doc).

    Built from recorded rows: ``posterior`` (n, m) in standardised coordinates, the step
    ``steps`` (n,), the inner observation ``obs`` (n, o) read at that step and the Bayes
    reference's action ``actions`` (n,) there.  Nearest is Euclidean, found by brute force
    (one matrix product per block of queries: beliefs have hundreds of dimensions in the
    tabular MDPs, where trees do no better).
    """

    def __init__(self, posterior: np.ndarray, steps: np.ndarray, obs: np.ndarray, actions: np.ndarray):
        self.obs_codes = ObservationCodes(obs)
        self.posterior = np.asarray(posterior, np.float64)
        self.actions = np.asarray(actions, np.int64)
        self.steps = np.asarray(steps, np.int64)
        self.keys = self._key(self.steps, self.obs_codes.codes(obs))
        self._groups: dict[tuple[str, int], tuple[np.ndarray, np.ndarray] | None] = {}

    def _key(self, steps: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return steps * len(self.obs_codes.valid) + codes

    def _group(self, kind: str, value: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(distinct beliefs, their Bayes action) recorded with this key ("key"), at this step ("step") or anywhere."""
        if (kind, value) not in self._groups:
            rows = {"key": self.keys == value, "step": self.steps == value, "all": np.ones(len(self.steps), bool)}[kind]
            group = None
            if rows.any():
                beliefs, first = np.unique(self.posterior[rows], axis=0, return_index=True)
                group = (beliefs, self.actions[rows][first])
            self._groups[kind, value] = group
        return self._groups[kind, value]

    def query(self, posterior: np.ndarray, steps: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """Bayes actions (n,) at beliefs ``posterior`` (n, m, standardised) at ``steps`` (n,) seeing ``obs`` (n, o)."""
        posterior = np.asarray(posterior, np.float64)
        steps = np.asarray(steps, np.int64)
        keys = self._key(steps, self.obs_codes.codes(obs))
        out = np.zeros(len(posterior), np.int64)
        for key in np.unique(keys):
            rows = np.flatnonzero(keys == key)
            beliefs, actions = (
                self._group("key", int(key)) or self._group("step", int(steps[rows[0]])) or self._group("all", 0)
            )
            norms = (beliefs**2).sum(axis=1)
            for start in range(0, len(rows), 2048):
                block = rows[start : start + 2048]
                out[block] = actions[np.argmin(norms[None, :] - 2.0 * posterior[block] @ beliefs.T, axis=1)]
        return out
