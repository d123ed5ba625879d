"""Trials stepped as torch tensors on a device: the torch backend of ``metarl_bench.core.trial``.

``TrialEnv`` (numpy) is the reference; ``TorchTrialEnv`` is the same loop
(``core.trial.TrialLoop``) over the torch backend :class:`TorchArrays`, with the
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

from abc import abstractmethod
from typing import Any

import numpy as np
import torch

from metarl_bench.core.family import Arrays, Dynamics, TaskFamily
from metarl_bench.core.trial import TrialLoop

Tensors = dict[str, torch.Tensor]


class TorchDynamics(Dynamics[torch.Tensor]):
    """The device half of a family: its step state as tensors, ``observe`` and ``step``.

    Mirrors the family's numpy ``start_episode``/``observe``/``step`` exactly (same
    dtypes, same numbers; the contract is ``core.family.Dynamics``, written once for both);
    ``load`` moves a numpy task batch and initial state over.
    """

    def __init__(self, family: TaskFamily, device: str | torch.device):
        self.family = family
        self.device = torch.device(device)

    @abstractmethod
    def load(self, tasks: Arrays, state: Arrays) -> tuple[Tensors, Tensors]:
        """Tasks and step state (numpy, as ``init_state`` made them) as tensors on the device."""


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


class TorchArrays:
    """The torch backend of :class:`~metarl_bench.core.trial.TrialLoop`: the family's twin on ``device``.

    What :class:`~metarl_bench.core.trial.NumpyArrays` gives the loop, as tensors: the step
    state, actions, rewards and observations never leave the device.
    """

    float32, float64 = torch.float32, torch.float64

    def __init__(self, family: TaskFamily, num_trials: int, device: str | torch.device, check_actions: bool):
        twin = torch_twin(family, device)
        if twin is None:
            raise ValueError(f"{family.describe()} has no torch twin (a torch_twin method); step it with TrialEnv")
        self.dynamics, self.device = twin, twin.device
        self.num_trials, self.num_actions = num_trials, family.num_actions
        self.check_actions = check_actions
        self._eye = torch.eye(family.num_actions, dtype=torch.float32, device=self.device)

    def load(self, tasks: Arrays, state: Arrays) -> tuple[Tensors, Tensors]:
        return self.dynamics.load(tasks, state)

    def zeros(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        return torch.zeros(shape, dtype=dtype, device=self.device)

    def ones(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        return torch.ones(shape, dtype=dtype, device=self.device)

    def actions(self, actions: Any) -> torch.Tensor:
        n, k = self.num_trials, self.num_actions
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

    def one_hot(self, actions: torch.Tensor) -> torch.Tensor:
        return self._eye.index_select(0, actions)

    def column(self, rewards: torch.Tensor) -> torch.Tensor:
        return rewards.to(torch.float32).view(self.num_trials, 1)


class TorchTrialEnv(TrialLoop):
    """``num_trials`` trials of ``family`` stepped together as tensors on ``device``.

    The loop of :class:`~metarl_bench.core.trial.TrialEnv` with the torch backend
    (:class:`TorchArrays`): ``step`` takes an int64 action tensor and returns tensor
    observations (the same four keys), float64 rewards, the trial-done flag and the info
    dict.  ``check_actions=False`` skips the range check of the actions, the one part of a
    step that reads a value back to the host (a device sync); give it actions that are
    valid by construction.
    """

    backend: TorchArrays

    def __init__(
        self,
        family: TaskFamily,
        num_trials: int = 1,
        seed: int | np.random.Generator | None = None,
        device: str | torch.device = "cpu",
        check_actions: bool = True,
    ):
        super().__init__(family, num_trials, seed, lambda fam, n: TorchArrays(fam, n, device, check_actions))
        self.twin = self.backend.dynamics
        self.device = self.backend.device

    @property
    def check_actions(self) -> bool:
        return self.backend.check_actions

    @check_actions.setter
    def check_actions(self, value: bool) -> None:
        self.backend.check_actions = value
