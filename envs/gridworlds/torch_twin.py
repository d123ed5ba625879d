"""Torch twins of the gridworld steps, for ``metarl_bench.accel.torch_trial``: table look-ups
(moves, rewards, coordinates) on the device, the same numbers as the numpy step.

A twin is offered only to a family whose stepping methods are the ones it mirrors
(:func:`~metarl_bench.accel.torch_trial.mirrored_twin`).
"""

from __future__ import annotations

import numpy as np
import torch

from metarl_bench.accel.torch_trial import Tensors, TorchDynamics, mirrored_twin
from metarl_bench.core.family import Arrays
from metarl_bench.envs.gridworlds.family import GoalGrid, HeartTrap, _GridBase


class _GridTwin(TorchDynamics):
    """Position state and position observations of ``_GridBase``, as device look-ups."""

    def __init__(self, family: _GridBase, device: str | torch.device):
        super().__init__(family, device)
        self.flat_next = torch.as_tensor(family._flat_next, device=self.device)
        self.coords = torch.as_tensor(family.coords, device=self.device)
        self.start = int(family.start)

    def load(self, tasks: Arrays, state: Arrays) -> tuple[Tensors, Tensors]:
        tasks_t = {name: torch.as_tensor(np.asarray(v, np.int64), device=self.device) for name, v in tasks.items()}
        return tasks_t, {"pos": torch.as_tensor(np.asarray(state["pos"], np.int64), device=self.device).clone()}

    def start_episode(self, tasks: Tensors, state: Tensors) -> Tensors:
        return {**state, "pos": torch.full_like(state["pos"], self.start)}

    def observe(self, tasks: Tensors, state: Tensors) -> torch.Tensor:
        pos = state["pos"]
        if self.family.obs_mode == "xy":
            return self.coords.index_select(0, pos)
        out = torch.zeros(len(pos), self.family.num_cells, dtype=torch.float32, device=self.device)
        return out.scatter_(1, pos[:, None], 1.0)

    def move(self, pos: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.flat_next.gather(0, (pos * self.family.num_actions).add_(actions))


class GoalGridTwin(_GridTwin):
    """``GoalGrid.step``: 1 on the goal, ``step_reward`` elsewhere."""

    def __init__(self, family: GoalGrid, device: str | torch.device):
        super().__init__(family, device)
        # float64 scalars made once: a Python float in torch.where would make float32 rewards
        self.on_goal = torch.tensor(1.0, dtype=torch.float64, device=self.device)
        self.elsewhere = torch.tensor(family.step_reward, dtype=torch.float64, device=self.device)

    def step(self, tasks: Tensors, state: Tensors, actions: torch.Tensor) -> tuple[Tensors, torch.Tensor]:
        pos = self.move(state["pos"], actions)
        return {"pos": pos}, torch.where(pos == tasks["goal"], self.on_goal, self.elsewhere)


class HeartTrapTwin(_GridTwin):
    """``HeartTrap.step``: +1 on the heart, -1 on the trap, and back to the start after either."""

    def __init__(self, family: HeartTrap, device: str | torch.device):
        super().__init__(family, device)
        self.objects = torch.as_tensor(family.objects, device=self.device)

    def step(self, tasks: Tensors, state: Tensors, actions: torch.Tensor) -> tuple[Tensors, torch.Tensor]:
        entered = self.move(state["pos"], actions)
        heart = self.objects[tasks["good"]]
        trap = self.objects[1 - tasks["good"]]
        rewards = (entered == heart).to(torch.float64) - (entered == trap).to(torch.float64)
        return {"pos": torch.where(rewards != 0, self.start, entered)}, rewards


TWINS = ((GoalGrid, GoalGridTwin), (HeartTrap, HeartTrapTwin))


def twin_of(family: _GridBase, device: str | torch.device) -> TorchDynamics | None:
    return mirrored_twin(family, TWINS, device)
