"""Gridworld task families: hidden-goal navigation (VariBAD's GridNavi, AD's Dark Room) and heart/trap.

Every family here is a square ``size`` x ``size`` grid.  Cells are numbered
``cell = y * size + x``; the agent observes its own position only, as ``(x, y)``
(``obs="xy"``, the default) or as a one-hot over cells (``obs="onehot"``).  Actions:

    0 up (y + 1)   1 down (y - 1)   2 left (x - 1)   3 right (x + 1)   4 stay

A move into a wall leaves the agent in place.  Every inner episode starts at ``start``;
a trial is ``episodes`` inner episodes of ``horizon`` steps (the TrialEnv resets the
position through ``start_episode``).  Rewards are those of the cell the step lands on.

* :class:`GoalGrid` -- a hidden goal, uniform over the cells at Chebyshev distance
  ``>= goal_margin`` from the start; reward 1 for every step that ends on the goal and
  ``step_reward`` otherwise; no termination at the goal.
  ``gridnavi-5x5`` is the gridworld of VariBAD (Zintgraf et al. 2020, sec. 5.1): 5x5,
  start (0, 0), goal uniform over the 21 cells outside the 2x2 corner of the start,
  rewards +1 / -0.1, 15 steps per episode, 4 episodes per trial.
  ``darkroom-9x9`` is the Dark Room of Algorithm Distillation (Laskin et al. 2022,
  also used by DPT, Lee et al. 2023): 9x9, start at the centre (4, 4), goal uniform over
  all 81 cells, reward 1 while on the goal and 0 otherwise, 20 steps per episode as in AD;
  we play 10 episodes per trial (enough to visit every cell, so the curve shows both
  exploration and exploitation).
* :class:`HeartTrap` -- two objects at fixed places, the same in every task (so a
  meta-learner knows where they are); which one is the heart (+1) and which the trap
  (-1) is drawn per task with probability 1/2, the reward-swap test of VSML for RL
  (Kirsch et al. 2022).  Stepping onto an object gives its reward and puts the agent
  back on the start cell; the episode runs on (fixed-length episodes keep all trials of
  a batch in lock step).  All other steps give 0.  ``heart-trap-5x5``: start at the
  centre (2, 2), objects at (0, 4) (4 steps away) and (4, 1) (3 steps away), 15 steps
  per episode, 4 episodes per trial.

Each family owns its belief model.  The belief tracks the agent's position (the state
the reward was earned in is ``move(position, action)``, which the next observation does
not show after an episode reset), so ``update_belief`` needs the next observation.
Variants are data (``VARIANTS``), registered at the bottom of the module.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from metarl_bench.core.family import Arrays, BayesReference, TaskFamily, check_positive_int
from metarl_bench.core.registry import register

if TYPE_CHECKING:
    import torch

    from metarl_bench.accel.torch_trial import TorchDynamics

ACTION_NAMES = ("up", "down", "left", "right", "stay")
MOVES = np.array([(0, 1), (0, -1), (-1, 0), (1, 0), (0, 0)], np.int64)  # (dx, dy) per action
STAY = 4
OBS_MODES = ("xy", "onehot")
TIE_TOL = 1e-9  # values closer than this are ties, broken towards the lowest action index


def _check_cell(name: str, value: Any, size: int) -> tuple[int, int]:
    """Validate an (x, y) pair inside a size x size grid."""
    try:
        x, y = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an (x, y) pair of integers in [0, {size}), got {value!r}") from None
    for v in (x, y):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < size:
            raise ValueError(f"{name} must be an (x, y) pair of integers in [0, {size}), got {value!r}")
    return int(x), int(y)


def known_task_dp(next_cell: np.ndarray, rewards: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Optimal play of one inner episode when the task is known.

    ``next_cell[p, a]`` and ``rewards[p, a]`` describe the known task.  Returns ``V``
    (horizon + 1, cells), the best reward still to come with ``horizon - t`` steps left,
    and ``policy`` (horizon, cells), the optimal action (ties towards the lowest index).
    """
    cells = len(next_cell)
    value = np.zeros((horizon + 1, cells))
    policy = np.zeros((horizon, cells), np.int64)
    for t in range(horizon - 1, -1, -1):
        q = rewards + value[t + 1][next_cell]
        best = q.max(axis=1)
        policy[t] = np.argmax(q >= best[:, None] - TIE_TOL, axis=1)
        value[t] = best
    return value, policy


class _GridBase(TaskFamily):
    """Grid geometry, the position state and position observations shared by the families."""

    num_actions = len(ACTION_NAMES)

    def bayes_reference(self) -> BayesReference | None:
        from metarl_bench.envs.gridworlds import bayes as gridworld_bayes  # the planners (and numba) load on first use

        return gridworld_bayes.reference(self)

    def _init_grid(self, size: int, horizon: int, episodes: int, start: Any, obs: str) -> None:
        self.size = check_positive_int("size", size, minimum=2)
        self.horizon = check_positive_int("horizon", horizon)
        self.episodes_per_trial = check_positive_int("episodes", episodes)
        self.start_xy = _check_cell("start", start, self.size)
        if obs not in OBS_MODES:
            raise ValueError(f"obs must be one of {OBS_MODES}, got {obs!r}")
        self.obs_mode = obs
        n = self.size
        self.num_cells = n * n
        self.start = self.cell(*self.start_xy)
        xs, ys = np.arange(self.num_cells) % n, np.arange(self.num_cells) // n
        self.coords = np.stack([xs, ys], axis=1).astype(np.float32)
        nx = np.clip(xs[:, None] + MOVES[None, :, 0], 0, n - 1)
        ny = np.clip(ys[:, None] + MOVES[None, :, 1], 0, n - 1)
        self.next_cell = ny * n + nx  # (cells, actions): walls leave the agent in place
        self._flat_next = np.ascontiguousarray(self.next_cell.ravel())
        if obs == "xy":
            self.obs_shape, self.obs_low, self.obs_high = (2,), 0.0, float(n - 1)
        else:
            self.obs_shape, self.obs_low, self.obs_high = (self.num_cells,), 0.0, 1.0

    def torch_twin(self, device: str | torch.device) -> TorchDynamics | None:
        """The device twin of this family's step (``metarl_bench.accel.torch_trial``), if it has one."""
        from metarl_bench.envs.gridworlds.torch_twin import twin_of  # torch loads only for the device path

        return twin_of(self, device)

    def cell(self, x: int, y: int) -> int:
        return int(y) * self.size + int(x)

    def xy(self, cell: int) -> tuple[int, int]:
        return int(cell) % self.size, int(cell) // self.size

    def distance_from_start(self) -> np.ndarray:
        """Manhattan distance of every cell from the start (the number of moves to reach it)."""
        sx, sy = self.start_xy
        return (np.abs(self.coords[:, 0] - sx) + np.abs(self.coords[:, 1] - sy)).astype(np.int64)

    def move(self, pos: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The cells reached from ``pos`` by ``actions`` (the dynamics, vectorised)."""
        return self._flat_next.take(pos * self.num_actions + actions)  # take: faster than fancy indexing

    def positions(self, obs: np.ndarray) -> np.ndarray:
        """Cells read back from a batch of inner observations."""
        obs = np.asarray(obs)
        if obs.ndim != 2 or obs.shape[1:] != self.obs_shape:
            raise ValueError(f"expected observations of shape (n, {self.obs_shape[0]}), got {obs.shape}")
        if self.obs_mode == "xy":
            xy = np.rint(obs).astype(np.int64)
            return xy[:, 1] * self.size + xy[:, 0]
        return obs.argmax(axis=1).astype(np.int64)

    def init_state(self, tasks: Arrays, rng: np.random.Generator) -> Arrays:
        n = len(next(iter(tasks.values())))
        return {"pos": np.full(n, self.start, np.int64)}  # deterministic dynamics: no noise to fix

    def start_episode(self, tasks: Arrays, state: Arrays) -> Arrays:
        return {**state, "pos": np.full_like(state["pos"], self.start)}

    def observe(self, tasks: Arrays, state: Arrays) -> np.ndarray:
        pos = state["pos"]
        if self.obs_mode == "xy":
            return self.coords.take(pos, axis=0)
        out = np.zeros((len(pos), self.num_cells), np.float32)
        out.reshape(-1)[np.arange(0, out.size, self.num_cells) + pos] = 1.0  # flat index: no 2-D fancy indexing
        return out

    def _random_walk(self, next_cell: np.ndarray) -> np.ndarray:
        """Transition matrix of uniformly random actions under ``next_cell``."""
        m = np.zeros((self.num_cells, self.num_cells))
        np.add.at(m, (np.repeat(np.arange(self.num_cells), self.num_actions), next_cell.ravel()), 1.0)
        return m / self.num_actions

    def _belief_positions(self, belief: Arrays, actions: np.ndarray, obs: np.ndarray | None) -> tuple:
        if obs is None:
            raise ValueError(f"{type(self).__name__}.update_belief needs the next observation (the agent's position)")
        return self.move(belief["pos"], np.asarray(actions, np.int64)), self.positions(obs)

    # Known-task play (the oracle), as tables: task ids index the first axis.
    def task_ids(self, tasks: Arrays) -> np.ndarray:
        """One integer per task that indexes :meth:`known_task_policy`."""
        raise NotImplementedError

    def known_task_policy(self) -> np.ndarray:
        """Optimal action of the task-knowing agent, (task id, step in episode, cell)."""
        raise NotImplementedError

    def oracle_actions(self, tasks: Arrays, obs: np.ndarray, t: int) -> np.ndarray:
        return self.known_task_policy()[self.task_ids(tasks), t % self.horizon, self.positions(obs)]


class GoalGrid(_GridBase):
    """Find a hidden goal cell; reward 1 on the goal, ``step_reward`` elsewhere (see module doc)."""

    def __init__(
        self,
        size: int = 5,
        horizon: int = 15,
        episodes: int = 4,
        start: Sequence[int] = (0, 0),
        goal_margin: int = 2,
        step_reward: float = -0.1,
        obs: str = "xy",
    ):
        self._init_grid(size, horizon, episodes, start, obs)
        self.goal_margin = check_positive_int("goal_margin", goal_margin, minimum=0)
        try:
            step_reward = float(step_reward)
        except (TypeError, ValueError):
            raise ValueError(f"step_reward must be a number in [-1, 0], got {step_reward!r}") from None
        if not -1.0 <= step_reward <= 0.0:  # the planners' dominance arguments need step_reward <= 0 < 1
            raise ValueError(f"step_reward must be a number in [-1, 0], got {step_reward!r}")
        self.step_reward = step_reward
        sx, sy = self.start_xy
        cheb = np.maximum(np.abs(self.coords[:, 0] - sx), np.abs(self.coords[:, 1] - sy))
        self.candidates = np.flatnonzero(cheb >= self.goal_margin)
        if len(self.candidates) == 0:
            raise ValueError(
                f"goal_margin={self.goal_margin} leaves no goal cell in a {size}x{size} grid from start "
                f"{self.start_xy}; allowed: 0 to {int(cheb.max())}"
            )
        self.candidate_mask = np.zeros(self.num_cells, bool)
        self.candidate_mask[self.candidates] = True
        self.reward_low, self.reward_high = self.step_reward, 1.0
        self.params = {
            "size": self.size,
            "horizon": self.horizon,
            "episodes": self.episodes_per_trial,
            "start": self.start_xy,
            "goal_margin": self.goal_margin,
            "step_reward": self.step_reward,
            "obs": self.obs_mode,
        }

    def sample_tasks(self, rng: np.random.Generator, num_trials: int) -> Arrays:
        return {"goal": self.candidates[rng.integers(0, len(self.candidates), size=num_trials)]}

    def step(self, tasks: Arrays, state: Arrays, actions: np.ndarray) -> tuple[Arrays, np.ndarray]:
        pos = self.move(state["pos"], actions)
        return {"pos": pos}, np.where(pos == tasks["goal"], 1.0, self.step_reward)

    def episode_oracle_values(self) -> np.ndarray:
        """Return of one inner episode for the agent that knows the goal, per goal cell.

        A goal d >= 1 moves away is reached on step d: d - 1 steps at ``step_reward``,
        then H - d + 1 steps on the goal.  On the start cell (d = 0) it stays: H.
        """
        d, H, c = self.distance_from_start(), self.horizon, self.step_reward
        return np.where(d == 0, float(H), np.where(d <= H, c * (d - 1) + H - d + 1, c * H))

    def oracle_return(self, tasks: Arrays) -> np.ndarray:
        return self.episodes_per_trial * self.episode_oracle_values()[tasks["goal"]]

    @functools.cached_property
    def _random_visits(self) -> np.ndarray:
        """Expected number of steps of one episode that end on each cell under random play."""
        m = self._random_walk(self.next_cell)
        p = np.zeros(self.num_cells)
        p[self.start] = 1.0
        visits = np.zeros(self.num_cells)
        for _ in range(self.horizon):
            p = p @ m
            visits += p
        return visits

    def random_return(self, tasks: Arrays) -> np.ndarray:
        v = self._random_visits[tasks["goal"]]
        return self.episodes_per_trial * (v + self.step_reward * (self.horizon - v))

    # Belief model: the goal is uniform over the candidate cells not yet ruled out.
    def prior(self, num_trials: int) -> Arrays:
        return {
            "possible": np.tile(self.candidate_mask, (num_trials, 1)),
            "pos": np.full(num_trials, self.start, np.int64),
        }

    def update_belief(self, belief: Arrays, actions: np.ndarray, rewards: np.ndarray, obs=None) -> Arrays:
        entered, pos = self._belief_positions(belief, actions, obs)
        rows = np.arange(len(entered))
        found = np.asarray(rewards) > 0.5  # the goal pays 1, every other cell step_reward <= 0
        possible = belief["possible"].copy()
        possible[rows, entered] = False
        possible[found] = False
        possible[rows[found], entered[found]] = True
        return {"possible": possible, "pos": pos}

    def belief_features(self, belief: Arrays) -> dict[str, np.ndarray]:
        possible = belief["possible"]
        count = possible.sum(axis=1, keepdims=True)
        return {"goal_posterior": possible / np.maximum(count, 1), "cells_possible": count.astype(float)}

    def posterior_sample(self, belief: Arrays, rng: np.random.Generator) -> np.ndarray:
        """Goal cells drawn from the posterior, shape (num_trials,)."""
        return np.where(belief["possible"], rng.random(belief["possible"].shape), -1.0).argmax(axis=1)

    def task_ids(self, tasks: Arrays) -> np.ndarray:
        return np.asarray(tasks["goal"], np.int64)

    def known_task_policy(self) -> np.ndarray:
        return self._policy_table

    @functools.cached_property
    def _policy_table(self) -> np.ndarray:
        policy = np.zeros((self.num_cells, self.horizon, self.num_cells), np.int64)
        for goal in self.candidates:
            rewards = np.where(self.next_cell == goal, 1.0, self.step_reward)
            policy[goal] = known_task_dp(self.next_cell, rewards, self.horizon)[1]
        return policy


class HeartTrap(_GridBase):
    """Two fixed objects; per task one is the heart (+1), the other the trap (-1) (see module doc)."""

    def __init__(
        self,
        size: int = 5,
        horizon: int = 15,
        episodes: int = 4,
        start: Sequence[int] = (2, 2),
        objects: Sequence[Sequence[int]] = ((0, 4), (4, 1)),
        obs: str = "xy",
    ):
        self._init_grid(size, horizon, episodes, start, obs)
        try:
            pairs = [tuple(o) for o in objects]
        except TypeError:
            raise ValueError(f"objects must be two (x, y) pairs, got {objects!r}") from None
        if len(pairs) != 2:
            raise ValueError(f"objects must be two (x, y) pairs, got {objects!r}")
        xy = tuple(_check_cell(f"objects[{i}]", o, self.size) for i, o in enumerate(pairs))
        if xy[0] == xy[1]:
            raise ValueError(f"objects must be two different cells, got {objects!r}")
        if self.start_xy in xy:
            raise ValueError(f"objects must not lie on the start cell {self.start_xy}, got {objects!r}")
        self.objects_xy = xy
        self.objects = np.array([self.cell(*o) for o in xy], np.int64)
        self.reward_low, self.reward_high = -1.0, 1.0
        # Landing on an object sends the agent back to the start (the same in every task).
        self.landing = np.where(np.isin(self.next_cell, self.objects), self.start, self.next_cell)
        self.params = {
            "size": self.size,
            "horizon": self.horizon,
            "episodes": self.episodes_per_trial,
            "start": self.start_xy,
            "objects": xy,
            "obs": self.obs_mode,
        }

    def sample_tasks(self, rng: np.random.Generator, num_trials: int) -> Arrays:
        return {"good": rng.integers(0, 2, size=num_trials)}

    def object_rewards(self, good: int) -> np.ndarray:
        """Reward of every (cell, action) when object ``good`` is the heart."""
        r = np.zeros(self.next_cell.shape)
        r[self.next_cell == self.objects[good]] = 1.0
        r[self.next_cell == self.objects[1 - good]] = -1.0
        return r

    def step(self, tasks: Arrays, state: Arrays, actions: np.ndarray) -> tuple[Arrays, np.ndarray]:
        entered = self.move(state["pos"], actions)
        heart = self.objects[tasks["good"]]
        trap = self.objects[1 - tasks["good"]]
        rewards = (entered == heart).astype(np.float64) - (entered == trap)
        return {"pos": np.where(rewards != 0, self.start, entered)}, rewards

    @functools.cached_property
    def _known(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(values, policy) of :func:`known_task_dp` for heart = object 0 and object 1."""
        return [known_task_dp(self.landing, self.object_rewards(g), self.horizon) for g in (0, 1)]

    def known_task_values(self) -> np.ndarray:
        """Best reward still to come in an episode when the heart is known: (heart, step, cell)."""
        return np.stack([v for v, _ in self._known])

    def oracle_return(self, tasks: Arrays) -> np.ndarray:
        per_episode = self.known_task_values()[:, 0, self.start]
        return self.episodes_per_trial * per_episode[tasks["good"]]

    @functools.cached_property
    def _random_episode_returns(self) -> np.ndarray:
        """Expected return of one episode of uniformly random play, for heart = object 0 and 1."""
        m = self._random_walk(self.landing)
        p = np.zeros(self.num_cells)
        p[self.start] = 1.0
        total = np.zeros(2)
        mean_r = np.stack([self.object_rewards(g).mean(axis=1) for g in (0, 1)])  # (good, cell)
        for _ in range(self.horizon):
            total += mean_r @ p
            p = p @ m
        return total

    def random_return(self, tasks: Arrays) -> np.ndarray:
        return self.episodes_per_trial * self._random_episode_returns[tasks["good"]]

    # Belief model: P(object 0 is the heart), known after the first object is touched.
    def prior(self, num_trials: int) -> Arrays:
        return {"p_good": np.full((num_trials, 2), 0.5), "pos": np.full(num_trials, self.start, np.int64)}

    def update_belief(self, belief: Arrays, actions: np.ndarray, rewards: np.ndarray, obs=None) -> Arrays:
        entered, pos = self._belief_positions(belief, actions, obs)
        rewards = np.asarray(rewards)
        p = belief["p_good"].copy()
        for k in (0, 1):
            touched = (entered == self.objects[k]) & (rewards != 0)
            heart = np.where(rewards[touched] > 0, k, 1 - k)
            p[touched] = np.eye(2)[heart]
        return {"p_good": p, "pos": pos}

    def belief_features(self, belief: Arrays) -> dict[str, np.ndarray]:
        return {"heart_posterior": belief["p_good"]}

    def posterior_sample(self, belief: Arrays, rng: np.random.Generator) -> np.ndarray:
        """Index of the heart object drawn from the posterior, shape (num_trials,)."""
        return (rng.random(len(belief["p_good"])) >= belief["p_good"][:, 0]).astype(np.int64)

    def task_ids(self, tasks: Arrays) -> np.ndarray:
        return np.asarray(tasks["good"], np.int64)

    def known_task_policy(self) -> np.ndarray:
        return np.stack([p for _, p in self._known])


# name, family, suites, parameters
VARIANTS: list[tuple[str, type[TaskFamily], tuple[str, ...], dict]] = [
    (
        "gridnavi-5x5",
        GoalGrid,
        ("gridworlds",),
        {"size": 5, "horizon": 15, "episodes": 4, "start": (0, 0), "goal_margin": 2, "step_reward": -0.1},
    ),
    (
        "darkroom-9x9",
        GoalGrid,
        ("gridworlds",),
        {"size": 9, "horizon": 20, "episodes": 10, "start": (4, 4), "goal_margin": 0, "step_reward": 0.0},
    ),
    (
        "heart-trap-5x5",
        HeartTrap,
        ("gridworlds",),
        {"size": 5, "horizon": 15, "episodes": 4, "start": (2, 2), "objects": ((0, 4), (4, 1))},
    ),
]

for _name, _family, _suites, _params in VARIANTS:
    register(_name, _family, suites=_suites, **_params)
