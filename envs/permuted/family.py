"""Permuted gridworlds: per task, the meanings of the actions and of the observation features are shuffled.

The test general-purpose learners are built for (SymLA, Kirsch et al. 2022): a learner
cannot rely on "action 0 goes up" or "feature 0 is x"; it has to find out, within the
trial, what its actions do.  :class:`PermutedGoalGrid` wraps a :class:`GoalGrid` (the
hidden-goal grids ``gridnavi-5x5`` and ``darkroom-9x9``) and adds two task arrays:

* ``action_perm`` (n, 5): the agent's action ``i`` moves the way the base grid's action
  ``action_perm[i]`` does (up, down, left, right or stay), a uniform random permutation;
* ``obs_perm`` (n, 2): the agent's feature ``j`` is the base observation's feature
  ``obs_perm[j]``, i.e. (x, y) or (y, x), drawn uniformly.

Only position observations (``obs="xy"``) can be permuted: permuting a one-hot over cells
would relabel the cells and erase the grid's geometry, a different problem.

A bandit counterpart would add nothing: the bandit priors here are exchangeable over arms
(i.i.d. arm means, or the dependent pair (p, 1 - p)), so a random relabelling of the arms
leaves the distribution of tasks unchanged.

The Bayes reference (``permuted_bayes.py``) is a named lower bound, ``ce-bayes``: the
unpermuted grid's Bayes policy played through a permutation guessed from the exact
posterior over goal x action permutation x feature order, with the unpermuted grid's Bayes
value as the upper bound (knowing the permutation can only help).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from metarl_bench.core.family import Arrays, BayesReference, TaskFamily
from metarl_bench.core.registry import register
from metarl_bench.envs.gridworlds.family import GoalGrid

FLAGS = ("permute_actions", "permute_obs")


class PermutedGoalGrid(TaskFamily):
    """A :class:`GoalGrid` whose action meanings and observation features are permuted per task."""

    def __init__(self, permute_actions: bool = True, permute_obs: bool = True, **grid: Any):
        """``grid``: the :class:`GoalGrid` parameters (size, horizon, episodes, start, goal_margin,
        step_reward); its observation is always ``"xy"`` (a permuted one-hot would erase the grid)."""
        allowed = [name for name in inspect.signature(GoalGrid).parameters if name != "obs"]
        unknown = [name for name in grid if name not in allowed]
        if unknown:
            raise ValueError(f"permuted grid: unknown parameter(s) {unknown}; allowed: {allowed + list(FLAGS)}")
        for name, flag in (("permute_actions", permute_actions), ("permute_obs", permute_obs)):
            if not isinstance(flag, (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {flag!r}")
        self.base = GoalGrid(**grid, obs="xy")
        self.permute_actions, self.permute_obs = bool(permute_actions), bool(permute_obs)
        b = self.base
        self.num_actions, self.obs_shape, self.obs_low, self.obs_high = (
            b.num_actions,
            b.obs_shape,
            b.obs_low,
            b.obs_high,
        )
        self.reward_low, self.reward_high = b.reward_low, b.reward_high
        self.horizon, self.episodes_per_trial = b.horizon, b.episodes_per_trial
        self.params = {**b.params, "permute_actions": self.permute_actions, "permute_obs": self.permute_obs}
        del self.params["obs"]  # always "xy"

    # ------------------------------------------------------------------ tasks and dynamics
    def sample_tasks(self, rng: np.random.Generator, num_trials: int) -> Arrays:
        tasks = self.base.sample_tasks(rng, num_trials)
        k, d = self.num_actions, self.obs_shape[0]
        actions = np.tile(np.arange(k), (num_trials, 1))
        features = np.tile(np.arange(d), (num_trials, 1))
        return {
            **tasks,
            "action_perm": rng.permuted(actions, axis=1) if self.permute_actions else actions,
            "obs_perm": rng.permuted(features, axis=1) if self.permute_obs else features,
        }

    def init_state(self, tasks: Arrays, rng: np.random.Generator) -> Arrays:
        return self.base.init_state(tasks, rng)

    def start_episode(self, tasks: Arrays, state: Arrays) -> Arrays:
        return self.base.start_episode(tasks, state)

    def base_actions(self, tasks: Arrays, actions: np.ndarray) -> np.ndarray:
        """The base grid's actions that the agent's ``actions`` stand for in each task."""
        return np.take_along_axis(tasks["action_perm"], np.asarray(actions, np.int64)[:, None], axis=1)[:, 0]

    def observe(self, tasks: Arrays, state: Arrays) -> np.ndarray:
        return np.take_along_axis(self.base.observe(tasks, state), tasks["obs_perm"], axis=1)

    def step(self, tasks: Arrays, state: Arrays, actions: np.ndarray) -> tuple[Arrays, np.ndarray]:
        return self.base.step(tasks, state, self.base_actions(tasks, actions))

    # ------------------------------------------------------------------ references
    def oracle_return(self, tasks: Arrays) -> np.ndarray:
        return self.base.oracle_return(tasks)  # the oracle knows the permutations too

    def random_return(self, tasks: Arrays) -> np.ndarray:
        return self.base.random_return(tasks)  # uniform actions stay uniform under a permutation

    def oracle_actions(self, tasks: Arrays, obs: np.ndarray, t: int) -> np.ndarray:
        base_obs = np.empty_like(obs)
        np.put_along_axis(base_obs, tasks["obs_perm"], obs, axis=1)  # undo the feature order
        wanted = self.base.oracle_actions(tasks, base_obs, t)
        inverse = np.argsort(tasks["action_perm"], axis=1)  # base action -> the agent's action
        return np.take_along_axis(inverse, wanted[:, None], axis=1)[:, 0]

    def bayes_reference(self) -> BayesReference | None:
        from metarl_bench.envs.permuted import bayes as permuted_bayes  # the planner loads on first use

        return permuted_bayes.reference(self)


VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("gridnavi-5x5-permuted", {"size": 5, "horizon": 15, "episodes": 4, "start": (0, 0), "goal_margin": 2,
                               "step_reward": -0.1}),
    ("darkroom-9x9-permuted", {"size": 9, "horizon": 20, "episodes": 10, "start": (4, 4), "goal_margin": 0,
                               "step_reward": 0.0}),
]  # fmt: skip

for _name, _params in VARIANTS:
    register(_name, PermutedGoalGrid, suites=("permuted",), **_params)
