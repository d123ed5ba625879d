"""Synthetic controls of the simulation: two agents that act Bayes-optimally and differ only in memory.

Both play the family's Bayes reference (its action; ``action_probs`` is that policy with the
tremble of ``metarl_bench.probes.bayes_policy``), so their behaviour is the Bayes policy's
and only their memory tells them apart:

* :class:`ExactPosteriorAgent`: its memory *is* the Bayes state, the family's posterior
  (``belief_features``, flattened) beside what the Bayes policy also conditions on, the
  current inner observation and the step as a share of the trial (:func:`bayes_state`).
  A belief state by construction: every dissimilarity should be 0 and any reordering of
  a bandit history with the same counts leaves it exactly where it was.
* :class:`HistoryBufferAgent`: its memory is the raw record of history, every RL²
  observation read so far (inner observation, one-hot previous action, previous reward,
  new-episode flag), one slot per step, zeros for the steps to come.  The posterior is
  a function of it, but it is no belief state: histories with one posterior have many
  buffers, so belief -> memory must fail, and so must order invariance.

Their policy heads (``policy_from_features``) decode a memory vector to a Bayes state and
ask the Bayes policy there (``BayesAtBelief``: the nearest valid belief, see
``bayes_policy``); the simulation binds one with :meth:`bind` once it has recorded the
valid beliefs.  A mapped memory is continuous, so decoding rounds: the step to the
nearest integer, a buffer slot counts as read where its action or new-episode entries sum
to more than 1/2, and its action is the largest entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from metarl_bench.core.agent import Agent, Obs, last_transition
from metarl_bench.core.family import Arrays, TaskFamily
from metarl_bench.core.trial import OBS_KEYS
from metarl_bench.probes.bayes_policy import BayesLookup, soft_bayes
from metarl_bench.probes.record import ProbeError

EXACT_POSTERIOR = "exact-posterior"
HISTORY_BUFFER = "history-buffer"


def flat_posterior(family: TaskFamily, belief: Arrays) -> np.ndarray:
    """The family's belief features of ``belief``, flattened and concatenated in their order: (n, m)."""
    feats = family.belief_features(belief)
    n = len(np.asarray(next(iter(feats.values()))))
    return np.concatenate([np.asarray(v, np.float64).reshape(n, -1) for v in feats.values()], axis=1)


def bayes_state(posterior: np.ndarray, inner_obs: np.ndarray, steps: np.ndarray, trial_length: int) -> np.ndarray:
    """[posterior, inner observation, step / trial length]: what the Bayes policy acts on, (n, m + o + 1)."""
    n = len(posterior)
    share = np.asarray(steps, np.float64).reshape(n, 1) / trial_length
    return np.concatenate([posterior, np.asarray(inner_obs, np.float64).reshape(n, -1), share], axis=1)


@dataclass
class BayesAtBelief:
    """The trembling Bayes policy at any (raw posterior, observation, step): the nearest valid belief's."""

    lookup: BayesLookup
    scale: np.ndarray  # divides the raw flat posterior into the lookup's standardised coordinates
    num_actions: int

    def probs(self, posterior: np.ndarray, inner_obs: np.ndarray, steps: np.ndarray) -> np.ndarray:
        actions = self.lookup.query(np.asarray(posterior) / self.scale, steps, inner_obs)
        return soft_bayes(actions, self.num_actions)


class _BayesActing(Agent):
    """Plays the family's Bayes reference and keeps a memory of its own beside the reference's."""

    name = "bayes-acting"

    def __init__(self, family: TaskFamily, bayes: Agent | None = None, **config: Any):
        super().__init__(family, **config)
        if bayes is None:
            reference = family.bayes_reference()
            if reference is None:
                raise ProbeError(f"{family.describe()} declares no Bayes reference, so no synthetic agent plays it")
            bayes = reference.policy()
        # ``bayes`` may be shared with the Bayes shadow: its memory is explicit, and a planner's caches
        # (the gridworld's off-path solves) then serve both
        self.bayes = bayes
        self.bayes_at: BayesAtBelief | None = None
        self.obs_dim = int(np.prod(family.obs_shape))

    def bind(self, bayes_at: BayesAtBelief) -> None:
        """Give the policy head the Bayes policy at any belief (known once the valid beliefs are recorded)."""
        self.bayes_at = bayes_at

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        # the reference gets the agent's stream: as a shadow it then draws what the bayes shadow draws
        return {"bayes": self.bayes.reset(num_trials, rng=rng), "t": -1, **self._start(num_trials)}

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        actions, bayes_memory = self.bayes.act(obs, memory["bayes"])
        return actions, {**memory, "bayes": bayes_memory, "t": memory["t"] + 1, **self._read(obs, memory)}

    def action_probs(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        actions, memory = self.act(obs, memory)
        return soft_bayes(actions, self.num_actions), memory

    def _bound(self) -> BayesAtBelief:
        if self.bayes_at is None:
            raise ProbeError(f"{self.name}: policy_from_features needs bind(BayesAtBelief) first")
        return self.bayes_at

    def _start(self, num_trials: int) -> dict[str, Any]:
        raise NotImplementedError

    def _read(self, obs: Obs, memory: Any) -> dict[str, Any]:
        raise NotImplementedError


class ExactPosteriorAgent(_BayesActing):
    """Acts as the Bayes reference; its memory is the Bayes state (posterior, observation, step)."""

    name = EXACT_POSTERIOR

    def _start(self, num_trials: int) -> dict[str, Any]:
        return {"belief": self.family.prior(num_trials), "inner": np.zeros((num_trials, self.obs_dim))}

    def _read(self, obs: Obs, memory: Any) -> dict[str, Any]:
        action, reward, has_prev = last_transition(obs)
        belief = memory["belief"]
        if has_prev.all():  # trials move in lock step: all or none have a previous transition
            belief = self.family.update_belief(belief, action, reward, obs["obs"])
        return {"belief": belief, "inner": np.asarray(obs["obs"], np.float64).reshape(len(action), -1)}

    def features(self, memory: Any) -> np.ndarray:
        posterior = flat_posterior(self.family, memory["belief"])
        steps = np.full(len(posterior), max(memory["t"], 0))
        return bayes_state(posterior, memory["inner"], steps, self.family.trial_length)

    def policy_from_features(self, features: np.ndarray) -> np.ndarray:
        o, T = self.obs_dim, self.family.trial_length
        features = np.asarray(features, np.float64)
        steps = np.clip(np.rint(features[:, -1] * T), 0, T - 1).astype(np.int64)
        return self._bound().probs(features[:, : -o - 1], features[:, -o - 1 : -1], steps)


class HistoryBufferAgent(_BayesActing):
    """Acts as the Bayes reference; its memory is every observation read so far, one slot per step."""

    name = HISTORY_BUFFER

    def __init__(self, family: TaskFamily, bayes: Agent | None = None, **config: Any):
        super().__init__(family, bayes, **config)
        k = family.num_actions
        self.width = self.obs_dim + k + 2  # OBS_KEYS: obs, prev_action, prev_reward, new_episode
        self.slots = family.trial_length

    def _start(self, num_trials: int) -> dict[str, Any]:
        return {"buffer": np.zeros((num_trials, self.slots, self.width), np.float32)}

    def _read(self, obs: Obs, memory: Any) -> dict[str, Any]:
        t = memory["t"] + 1
        buffer = memory["buffer"].copy()  # act never changes the memory it is given
        n = len(buffer)
        if t < self.slots:
            buffer[:, t] = np.concatenate([np.asarray(obs[key], np.float32).reshape(n, -1) for key in OBS_KEYS], axis=1)
        return {"buffer": buffer}

    def features(self, memory: Any) -> np.ndarray:
        return memory["buffer"].reshape(len(memory["buffer"]), -1).astype(np.float64)

    def decode(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(raw posterior, current inner observation, step) of buffers (n, slots * width), replayed through the
        family's belief model."""
        o, k, fam = self.obs_dim, self.num_actions, self.family
        buf = np.asarray(features, np.float64).reshape(len(features), self.slots, self.width)
        inner = np.clip(buf[:, :, :o], fam.obs_low, fam.obs_high)
        actions, rewards = buf[:, :, o : o + k], buf[:, :, o + k]
        read = actions.sum(axis=2) + buf[:, :, o + k + 1] > 0.5
        steps = np.maximum(read.cumprod(axis=1).sum(axis=1) - 1, 0)  # slots read before the first unread one
        belief = fam.prior(len(buf))
        for s in range(1, self.slots):
            live = steps >= s
            if not live.any():
                break
            new = fam.update_belief(belief, actions[:, s].argmax(axis=1), rewards[:, s], inner[:, s])
            belief = {key: np.where(live.reshape(-1, *[1] * (v.ndim - 1)), v, belief[key]) for key, v in new.items()}
        rows = np.arange(len(buf))
        return flat_posterior(fam, belief), inner[rows, steps], steps

    def policy_from_features(self, features: np.ndarray) -> np.ndarray:
        bayes_at = self._bound()
        blocks = [bayes_at.probs(*self.decode(features[i : i + 4096])) for i in range(0, len(features), 4096)]
        return np.concatenate(blocks) if blocks else np.zeros((0, self.num_actions))
