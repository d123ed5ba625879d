"""Trials stepped as torch tensors on a device: the device twin of ``metarl_bench.core.trial``.

``TrialEnv`` (numpy) is the reference; ``TorchTrialEnv`` plays the same trials with the
step state, actions, rewards and observations kept on a torch device, so a rollout whose
agent runs on that device (an ES generation of VSML) never copies anything to the host
per step.  Tasks and the initial state are still drawn on the host by the family's numpy
functions, from the same generator calls as ``TrialEnv.reset``, and moved over once per
trial: the same seed gives the same tasks and the same noise keys, so both paths give the
same observations and rewards, bit for bit (``tests/test_torch_step.py``).

A family opts in by a method ``torch_twin(device)`` that returns a :class:`TorchDynamics`
(the built-in bandits and gridworlds do).  A family without one (a user's numpy family)
is simply not offered to this env; agents fall back to ``TrialEnv``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch

from metarl_bench.core.family import Arrays, TaskFamily
from metarl_bench.core.trial import observation_space

Tensors = dict[str, torch.Tensor]


class TorchDynamics(ABC):
    """The device half of a family: its step state as tensors, ``observe`` and ``step``.

    Mirrors the family's numpy ``start_episode``/``observe``/``step`` exactly (same
    dtypes, same numbers); ``load`` moves a numpy task batch and initial state over.
    """

    def __init__(self, family: TaskFamily, device: str | torch.device):
        self.family = family
        self.device = torch.device(device)

    @abstractmethod
    def load(self, tasks: Arrays, state: Arrays) -> tuple[Tensors, Tensors]:
        """Tasks and step state (numpy, as ``init_state`` made them) as tensors on the device."""

    def start_episode(self, tasks: Tensors, state: Tensors) -> Tensors:
        return state

    @abstractmethod
    def observe(self, tasks: Tensors, state: Tensors) -> torch.Tensor:
        """Inner observation (num_trials, *obs_shape), float32."""

    @abstractmethod
    def step(self, tasks: Tensors, state: Tensors, actions: torch.Tensor) -> tuple[Tensors, torch.Tensor]:
        """New state and float64 rewards (num_trials,), as the numpy ``step`` computes them."""


STEP_METHODS = ("init_state", "start_episode", "observe", "step", "move")


def mirrored_twin(
    family: TaskFamily, twins: tuple[tuple[type, type[TorchDynamics]], ...], device: str | torch.device
) -> TorchDynamics | None:
    """The twin of the first ``(family class, twin class)`` pair ``family`` is an instance of, or
    None if its class changed a stepping method the twin mirrors (then it plays in numpy)."""
    for base, twin in twins:
        if isinstance(family, base):
            same = all(getattr(type(family), m, None) is getattr(base, m, None) for m in STEP_METHODS)
            return twin(family, device) if same else None
    return None


def torch_twin(family: TaskFamily, device: str | torch.device = "cpu") -> TorchDynamics | None:
    """The family's device twin, or None when it has none (then play it through ``TrialEnv``)."""
    hook = getattr(family, "torch_twin", None)
    return None if hook is None else hook(device)


class TorchTrialEnv:
    """``num_trials`` trials of ``family`` stepped together as tensors on ``device``.

    The interface of :class:`~metarl_bench.core.trial.TrialEnv` with tensors in and out:
    ``step`` takes an int64 action tensor and returns tensor observations (the same four
    keys), float64 rewards, the trial-done flag and the info dict.  ``check_actions=False``
    skips the range check of the actions, the one part of a step that reads a value back
    to the host (a device sync); give it actions that are valid by construction.
    """

    def __init__(
        self,
        family: TaskFamily,
        num_trials: int = 1,
        seed: int | np.random.Generator | None = None,
        device: str | torch.device = "cpu",
        check_actions: bool = True,
    ):
        if isinstance(num_trials, bool) or not isinstance(num_trials, (int, np.integer)) or num_trials < 1:
            raise ValueError(f"num_trials must be an integer >= 1, got {num_trials!r}")
        twin = torch_twin(family, device)
        if twin is None:
            raise ValueError(f"{family.describe()} has no torch twin (a torch_twin method); step it with TrialEnv")
        self.family, self.twin = family, twin
        self.device = twin.device
        self.num_trials = int(num_trials)
        self.rng = np.random.default_rng(seed)
        self.check_actions = check_actions
        self.observation_space = observation_space(family)
        self._eye = torch.eye(family.num_actions, dtype=torch.float32, device=self.device)
        self.tasks: Tensors | None = None
        self.state: Tensors | None = None
        self.host_tasks: Arrays | None = None  # the numpy tasks the trials were built from
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
    ) -> dict[str, torch.Tensor]:
        """Start new trials: tasks and noise drawn on the host as ``TrialEnv.reset`` draws them.

        ``state`` replaces the drawn initial state (numpy, one row per trial, as
        ``TrialEnv.state`` right after a reset): e.g. noise shared by a population.
        """
        fam, n = self.family, self.num_trials
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
        self.tasks, self.state = self.twin.load(tasks, state)
        self.t = 0
        self.episode_returns = torch.zeros(n, fam.episodes_per_trial, dtype=torch.float64, device=self.device)
        none = torch.zeros(n, fam.num_actions, dtype=torch.float32, device=self.device)
        return self._observation(none, torch.zeros(n, dtype=torch.float64, device=self.device), new_episode=True)

    def step(self, actions: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor, bool, dict[str, Any]]:
        """Advance every trial one step (see ``TrialEnv.step``); everything stays on the device."""
        if self.done:
            raise RuntimeError("the trials are over (or were never started): call reset() first")
        fam = self.family
        actions = self._validate(actions)
        self.state, rewards = self.twin.step(self.tasks, self.state, actions)
        episode = self.t // fam.horizon
        self.episode_returns[:, episode] += rewards
        self.t += 1
        episode_done = self.t % fam.horizon == 0
        trial_done = self.t >= fam.trial_length
        if episode_done and not trial_done:
            self.state = self.twin.start_episode(self.tasks, self.state)
        one_hot = self._eye.index_select(0, actions)
        obs = self._observation(one_hot, rewards, new_episode=episode_done and not trial_done)
        return obs, rewards, trial_done, {"episode_done": episode_done, "inner_episode": episode}

    def _validate(self, actions: Any) -> torch.Tensor:
        n, k = self.num_trials, self.family.num_actions
        actions = torch.as_tensor(actions, device=self.device)
        if actions.shape != (n,):
            raise ValueError(f"actions must have shape ({n},) (one per trial), got shape {tuple(actions.shape)}")
        if actions.dtype.is_floating_point or actions.dtype.is_complex or actions.dtype == torch.bool:
            raise ValueError(f"actions must have an integer dtype, got {actions.dtype}; allowed are [0, {k})")
        actions = actions.to(torch.int64)
        if self.check_actions:
            bad = (actions < 0) | (actions >= k)
            if bool(bad.any()):
                value = int(actions[bad][0])
                raise ValueError(f"action {value} is out of range; allowed are integers in [0, {k})")
        return actions

    def _observation(
        self, prev_action: torch.Tensor, prev_reward: torch.Tensor, new_episode: bool
    ) -> dict[str, torch.Tensor]:
        n = self.num_trials
        flag = torch.ones if new_episode else torch.zeros
        return {
            "obs": self.twin.observe(self.tasks, self.state),
            "prev_action": prev_action,
            "prev_reward": prev_reward.to(torch.float32).view(n, 1),
            "new_episode": flag(n, 1, dtype=torch.float32, device=self.device),
        }
