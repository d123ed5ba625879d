"""A torch recurrent policy as an agent: ``module(obs, state) -> (logits, state)``.

For a model trained anywhere (your own PPO, a paper's code): wrap it, register it under a
name, and every command of the suite plays it.

    from metarl_bench.baselines.torch_module import TorchRecurrentAgent
    metarl_bench.register_agent("mine", lambda family: TorchRecurrentAgent(family, MyNet()))

The module gets one float32 row per trial (:func:`metarl_bench.core.trial.flat_observation`:
the inner observation, the previous action one-hot, the previous reward, the new-episode
flag) and the state it returned last (``initial_state(num_trials)`` at a trial's start, or
None), and returns logits ``(num_trials, num_actions)`` and its new state (a tensor, a tuple
of tensors, or None).  Actions are sampled from softmax(logits) with the evaluator's
generator (or taken by argmax with ``deterministic=True``); the state, flattened, is the
memory the belief probes read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from metarl_bench.core.agent import Agent, Obs, fresh_rng, inverse_cdf
from metarl_bench.core.family import Arrays, TaskFamily
from metarl_bench.core.trial import flat_observation

State = Any  # a tensor, a tuple of tensors, or None


class TorchRecurrentAgent(Agent):
    """Plays ``module(obs, state) -> (logits, state)`` (see the module docstring)."""

    name = "torch-recurrent"

    def __init__(
        self,
        family: TaskFamily,
        module: torch.nn.Module,
        initial_state: Callable[[int], State] | None = None,
        device: str = "cpu",
        deterministic: bool = False,
    ):
        super().__init__(family, module=type(module).__name__, deterministic=deterministic)
        self.module = module.to(device).eval()
        self.initial_state = initial_state
        self.device, self.deterministic = torch.device(device), deterministic

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        state = self.initial_state(num_trials) if self.initial_state is not None else None
        return {"rng": np.random.default_rng(rng), "state": state}

    def action_probs(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        """The module's action probabilities (num_trials, k) and the new memory."""
        x = torch.as_tensor(flat_observation(obs), device=self.device)
        with torch.no_grad():
            logits, state = self.module(x, memory["state"])
        if tuple(logits.shape) != (len(x), self.num_actions):
            raise ValueError(
                f"{type(self.module).__name__} returned logits of shape {tuple(logits.shape)}, "
                f"expected (num_trials, num_actions) = ({len(x)}, {self.num_actions})"
            )
        probs = torch.softmax(logits.double(), dim=-1).cpu().numpy()
        return probs, {**memory, "state": state}

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        probs, memory = self.action_probs(obs, memory)
        if self.deterministic:
            return probs.argmax(axis=1), memory
        rng = fresh_rng(memory["rng"])
        return inverse_cdf(probs, rng.random((len(probs), 1))), {**memory, "rng": rng}

    def features(self, memory: Any) -> np.ndarray:
        """The state, every tensor flattened per trial and side by side (a 3-d tensor is read as
        torch's recurrent layout, (layers, trials, hidden))."""
        state = memory["state"]
        parts = state if isinstance(state, tuple | list) else (state,)
        tensors = [(t.transpose(0, 1) if t.dim() == 3 else t).reshape(t.shape[1] if t.dim() == 3 else t.shape[0], -1)
                   for t in parts if t is not None]  # fmt: skip
        if not tensors:
            raise ValueError(f"{type(self.module).__name__} keeps no state, so there is no memory to read")
        return torch.cat(tensors, dim=1).cpu().numpy()
