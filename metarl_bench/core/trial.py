"""The batched trial environment: N trials of one task family stepped by numpy calls.

This is the one implementation of the trial dynamics.  The gymnasium single env and
vector env (``metarl_bench.core.gym_env``), the SB3 adapter and the evaluator all drive it.
Its bookkeeping (:class:`TrialLoop`) is written once over a small backend object; numpy
(:class:`NumpyArrays`, the family's own step) is the reference, and the torch backend
(``metarl_bench.accel.torch_trial``) plays the same loop on a device.

A trial is one sampled task played for ``episodes_per_trial`` inner episodes of
``horizon`` steps.  Observations follow the RL² convention: the inner observation, the
previous action (one-hot), the previous reward and a flag that marks the first step of
every inner episode.  All trials of a batch move in lock step (trials have fixed length).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from metarl_bench.core.family import Arrays, TaskFamily

OBS_KEYS = ("obs", "prev_action", "prev_reward", "new_episode")


def observation_space(family: TaskFamily) -> gym.spaces.Dict:
    """The Dict observation space of one trial of ``family``."""
    return gym.spaces.Dict(
        {
            "obs": gym.spaces.Box(family.obs_low, family.obs_high, family.obs_shape, np.float32),
            "prev_action": gym.spaces.Box(0.0, 1.0, (family.num_actions,), np.float32),
            "prev_reward": gym.spaces.Box(family.reward_low, family.reward_high, (1,), np.float32),
            "new_episode": gym.spaces.Box(0.0, 1.0, (1,), np.float32),
        }
    )


def flat_observation(obs: dict[str, np.ndarray]) -> np.ndarray:
    """The RL² observation batch as one float32 vector per trial: the inner observation
    (flattened), the previous action one-hot, the previous reward, the new-episode flag."""
    return np.concatenate([obs[k].reshape(len(obs[k]), -1) for k in OBS_KEYS], axis=1).astype(np.float32)


def validate_actions(actions: Any, num_trials: int, num_actions: int) -> np.ndarray:
    """Return ``actions`` as an int64 array of shape (num_trials,), or raise ValueError."""
    arr = np.asarray(actions)
    if arr.shape != (num_trials,):
        raise ValueError(f"actions must have shape ({num_trials},) (one per trial), got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if np.isnan(arr).any():
            raise ValueError(f"actions contain NaN; allowed are integers in [0, {num_actions})")
        raise ValueError(
            f"actions must have an integer dtype, got {arr.dtype}; allowed are integers in [0, {num_actions})"
        )
    if arr.dtype.kind not in "iu":
        raise ValueError(f"actions must have an integer dtype, got {arr.dtype}")
    out = arr if arr.dtype == np.int64 else arr.astype(np.int64)
    # One pass: seen as unsigned, a negative action is huge, so max < num_actions checks both ends.
    if num_trials and out.view(np.uint64).max() >= num_actions:
        bad = arr[(arr < 0) | (arr >= num_actions)][0]
        raise ValueError(f"action {bad} is out of range; allowed are integers in [0, {num_actions})")
    return out


class NumpyArrays:
    """The numpy backend of :class:`TrialLoop`: the family's own numpy step, the reference.

    A backend is what the loop asks of an array library: ``load`` (the host's tasks and initial
    state as the backend's arrays), ``dynamics`` (``start_episode``, ``observe`` and ``step`` on
    them), ``actions`` (check and convert the agent's actions), ``one_hot``, ``zeros``/``ones``
    of a shape and dtype, ``column`` (rewards as a new float32 (n, 1) array), the dtypes
    ``float32``/``float64`` and the ``device``.  ``metarl_bench.accel.torch_trial`` has the torch one.
    """

    float32, float64 = np.float32, np.float64
    device = "cpu"
    zeros, ones = staticmethod(np.zeros), staticmethod(np.ones)

    def __init__(self, family: TaskFamily, num_trials: int):
        self.dynamics = family
        self.num_trials = num_trials
        self.num_actions = k = family.num_actions
        self._offsets = np.arange(num_trials, dtype=np.int64) * k  # flat index of each row
        # A one-hot row of 4 or 8 bytes is gathered as one integer (the fastest one-hot in numpy).
        self._eye_rows = np.eye(k, dtype=np.float32).view({1: np.int32, 2: np.int64}[k]).ravel() if k <= 2 else None

    def load(self, tasks: Arrays, state: Arrays) -> tuple[Arrays, Arrays]:
        return tasks, state

    def actions(self, actions: Any) -> np.ndarray:
        return validate_actions(actions, self.num_trials, self.num_actions)

    def one_hot(self, actions: np.ndarray) -> np.ndarray:
        n, k = self.num_trials, self.num_actions
        if self._eye_rows is not None:
            return self._eye_rows.take(actions).view(np.float32).reshape(n, k)
        out = np.zeros((n, k), np.float32)
        out.reshape(-1)[self._offsets + actions] = 1.0
        return out

    def column(self, rewards: np.ndarray) -> np.ndarray:
        return rewards.astype(np.float32).reshape(self.num_trials, 1)


class TrialLoop:
    """The trial bookkeeping, written once over a backend (:class:`NumpyArrays`, or torch's).

    ``num_trials`` trials of ``family`` stepped together.  Attributes reachable without
    touching the agent's view: ``tasks`` (the sampled task parameters, as the backend's
    arrays), ``host_tasks`` (the numpy tasks they were made from), ``episode_returns``
    (num_trials, episodes_per_trial), ``t``.
    """

    def __init__(
        self,
        family: TaskFamily,
        num_trials: int,
        seed: int | np.random.Generator | None,
        backend: Callable[[TaskFamily, int], Any],
    ):
        if isinstance(num_trials, bool) or not isinstance(num_trials, (int, np.integer)) or num_trials < 1:
            raise ValueError(f"num_trials must be an integer >= 1, got {num_trials!r}")
        self.family = family
        self.num_trials = int(num_trials)
        self.backend = backend(family, self.num_trials)
        self._dynamics = self.backend.dynamics
        self.rng = np.random.default_rng(seed)
        self.observation_space = observation_space(family)
        self.tasks: Any = None
        self.state: Any = None
        self.host_tasks: Arrays | None = None
        self.t = 0

    @property
    def num_actions(self) -> int:
        return self.family.num_actions

    @property
    def trial_length(self) -> int:
        return self.family.trial_length

    @property
    def done(self) -> bool:
        return self.tasks is None or self.t >= self.family.trial_length

    def reset(
        self,
        seed: int | np.random.Generator | None = None,
        tasks: Arrays | None = None,
        state: Arrays | None = None,
    ) -> dict[str, Any]:
        """Start new trials: sample tasks (unless given) and fix the trial's noise.

        Tasks and noise are drawn on the host by the family's numpy functions, whatever the
        backend, so the same seed gives the same trials on every backend.  ``state``
        replaces the drawn initial state (numpy, one row per trial, as ``state`` right
        after a reset): e.g. noise shared by a population.  The numpy backend steps it in
        place; the torch one copies it to the device.
        """
        fam, n, b = self.family, self.num_trials, self.backend
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        if tasks is None:
            tasks = fam.sample_tasks(self.rng, n)
        else:
            lengths = {k: len(v) for k, v in tasks.items()}
            if any(m != n for m in lengths.values()):
                raise ValueError(f"every task array needs {n} rows, got {lengths}")
        if state is None:
            state = fam.start_episode(tasks, fam.init_state(tasks, self.rng))
        self.host_tasks = tasks
        self.tasks, self.state = b.load(tasks, state)
        self.t = 0
        self.episode_returns = b.zeros((n, fam.episodes_per_trial), b.float64)
        return self._observation(b.zeros((n, fam.num_actions), b.float32), b.zeros((n,), b.float64), True)

    def step(self, actions: Any) -> tuple[dict[str, Any], Any, bool, dict[str, Any]]:
        """Advance every trial one step.

        Returns ``(obs, rewards, trial_done, info)``; ``trial_done`` is a bool because all
        trials end together.  ``info["episode_done"]`` says whether an inner episode ended,
        ``info["inner_episode"]`` which one the step belonged to (not ``"episode"``: SB3 and
        gymnasium keep episode statistics under that key).
        """
        if self.done:
            raise RuntimeError("the trials are over (or were never started): call reset() first")
        fam, b = self.family, self.backend
        actions = b.actions(actions)
        self.state, rewards = self._dynamics.step(self.tasks, self.state, actions)
        episode = self.t // fam.horizon
        self.episode_returns[:, episode] += rewards
        self.t += 1
        episode_done = self.t % fam.horizon == 0
        trial_done = self.t >= fam.trial_length
        if episode_done and not trial_done:
            self.state = self._dynamics.start_episode(self.tasks, self.state)
        obs = self._observation(b.one_hot(actions), rewards, episode_done and not trial_done)
        return obs, rewards, trial_done, {"episode_done": episode_done, "inner_episode": episode}

    def _observation(self, prev_action: Any, prev_reward: Any, new_episode: bool) -> dict[str, Any]:
        # Every array is new: callers may keep or change an observation (no shared buffers).
        b = self.backend
        return {
            "obs": self._dynamics.observe(self.tasks, self.state),
            "prev_action": prev_action,
            "prev_reward": b.column(prev_reward),
            "new_episode": (b.ones if new_episode else b.zeros)((self.num_trials, 1), b.float32),
        }


class TrialEnv(TrialLoop):
    """``num_trials`` trials of ``family``, stepped together by the family's numpy step.

    Attributes reachable without touching the agent's view: ``tasks`` (the sampled
    task parameters), ``episode_returns`` (num_trials, episodes_per_trial), ``t``.
    """

    def __init__(self, family: TaskFamily, num_trials: int = 1, seed: int | np.random.Generator | None = None):
        super().__init__(family, num_trials, seed, NumpyArrays)


def trial_returns(
    agent: Any, family: TaskFamily, tasks: Arrays, noise_seed: int | np.random.Generator, agent_seed: int
) -> np.ndarray:
    """Trial returns (n,) of ``agent`` playing ``tasks`` once, under fixed noise and action seeds.

    The plain loop that training-side code (tuning, cloning) and tests use; evaluation's
    ``rollout`` adds the held-out streams and an observer on top of the same steps.
    """
    n = len(next(iter(tasks.values())))
    env = TrialEnv(family, num_trials=n)
    obs = env.reset(seed=noise_seed, tasks=tasks)
    memory = agent.reset(n, rng=np.random.default_rng(agent_seed), tasks=tasks if agent.privileged else None)
    total = np.zeros(n)
    for _ in range(family.trial_length):
        actions, memory = agent.act(obs, memory)
        obs, rewards, _, _ = env.step(actions)
        total += rewards
    return total
