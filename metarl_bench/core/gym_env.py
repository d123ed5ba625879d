"""Gymnasium views of the batched trial environment: a batch of one, and a vector env.

Neither re-implements the dynamics; both drive :class:`metarl_bench.core.trial.TrialEnv`.
One gymnasium episode is one whole trial (all inner episodes), so a recurrent policy's
memory is reset by the usual episode boundary and persists across inner episodes.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from metarl_bench.core.registry import get_spec, make_family
from metarl_bench.core.trial import TrialEnv, validate_actions


def _info(env: TrialEnv, index: int | slice, extra: dict[str, Any], task: dict | None = None) -> dict[str, Any]:
    return {
        "task": {k: np.copy(v[index]) for k, v in env.tasks.items()} if task is None else task,
        "episode_returns": env.episode_returns[index].copy(),
        **extra,
    }


def _frozen_tasks(env: TrialEnv) -> dict[str, np.ndarray]:
    """A read-only copy of the trial's tasks, made once per trial and handed out at every step.

    The tasks do not change within a trial; copying them at every step was the largest
    cost of a vector step after the dynamics.  Read-only, so no caller can change the
    arrays other steps' infos share.
    """
    out = {}
    for k, v in env.tasks.items():
        out[k] = np.array(v, copy=True)
        out[k].flags.writeable = False
    return out


class SingleTrialEnv(gym.Env):
    """One trial of a registered family as a gymnasium env (a TrialEnv batch of one).

    ``info["task"]`` holds the sampled task and ``info["episode_returns"]`` the returns
    of the inner episodes so far: for oracles and evaluators, not for the agent.
    """

    metadata = {"render_modes": []}

    def __init__(self, family: str, **params: Any):
        self.family_name = family
        self.family = make_family(family, **params)
        self._env = TrialEnv(self.family, num_trials=1)
        self.observation_space = self._env.observation_space
        self.action_space = gym.spaces.Discrete(self.family.num_actions)

    @property
    def trial_env(self) -> TrialEnv:
        return self._env

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        tasks = (options or {}).get("tasks")
        obs = self._env.reset(seed=self.np_random if seed is not None or self._env.tasks is None else None, tasks=tasks)
        return _unbatch(obs), _info(self._env, 0, {})

    def step(self, action: Any):
        arr = np.asarray(action)
        if arr.shape not in ((), (1,)):
            raise ValueError(f"action must be a single integer, got shape {arr.shape}")
        obs, rewards, done, info = self._env.step(arr.reshape(1))
        return _unbatch(obs), float(rewards[0]), done, False, _info(self._env, 0, info)


def _unbatch(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v[0] for k, v in obs.items()}


class TrialVectorEnv(VectorEnv):
    """``num_envs`` trials stepped by one numpy call per step (``vector_entry_point``).

    Autoreset follows gymnasium's default NEXT_STEP mode: the step after a trial ends
    starts a new trial and returns its first observation with zero reward.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, family: str, num_envs: int = 1, **params: Any):
        self.family_name = family
        self.spec_params = {**get_spec(family).defaults, **params}
        self.family = make_family(family, **params)
        self._env = TrialEnv(self.family, num_trials=num_envs)
        self.num_envs = int(num_envs)
        self.single_observation_space = self._env.observation_space
        self.single_action_space = gym.spaces.Discrete(self.family.num_actions)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._needs_reset = False

    @property
    def trial_env(self) -> TrialEnv:
        return self._env

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._env.rng = np.random.default_rng(seed)
        obs = self._env.reset(tasks=(options or {}).get("tasks"))
        self._needs_reset = False
        self._task_info = _frozen_tasks(self._env)
        return obs, _info(self._env, slice(None), {}, self._task_info)

    def step(self, actions: Any):
        n = self.num_envs
        if self._needs_reset:
            validate_actions(actions, n, self.family.num_actions)
            obs, info = self.reset()
            false = np.zeros(n, bool)
            return obs, np.zeros(n), false, false, info
        obs, rewards, done, info = self._env.step(actions)
        self._needs_reset = done
        terminated = (np.ones if done else np.zeros)(n, bool)  # (np.full is 3x slower)
        return obs, rewards, terminated, np.zeros(n, bool), _info(self._env, slice(None), info, self._task_info)
