"""Torch twins of the bandit steps, for ``metarl_bench.accel.torch_trial``: the same bits on a device.

* Bernoulli bandits (independent and dependent arms) advance and hash the noise counters
  on the device (``metarl_bench.accel.torch_noise``) and compare the bits with the integer
  thresholds of p (``uniform_thresholds``, the numpy definition run on torch), as the numpy
  step does: integers only.
* The Gaussian bandit needs the normal quantile of its uniforms, and torch's ``log``,
  ``sqrt`` and ``special.ndtri`` do not round like scipy and the host's libm (they differ
  in the last bit for some inputs), so its twin takes the reward table from the numpy
  definition instead: ``load`` evaluates ``noise.counter_normal`` for every (trial key, arm,
  pull number) a trial can reach, once per trial on the host, and each step gathers from
  it on the device.  Trials that share a key (a population playing the same tasks) share rows.

A twin is offered only to a family whose stepping methods are the ones it mirrors
(:func:`~metarl_bench.accel.torch_trial.mirrored_twin`).
"""

from __future__ import annotations

import numpy as np
import torch

from metarl_bench.accel.torch_noise import (
    COUNTER_STEP,
    counters_to_torch,
    keys_to_torch,
    mixed_bits_,
    uniform_thresholds,
)
from metarl_bench.accel.torch_trial import Tensors, TorchDynamics, mirrored_twin
from metarl_bench.core.family import Arrays
from metarl_bench.core.noise import counter_normal, counter_start
from metarl_bench.envs.bandits.family import BernoulliBandit, GaussianBandit, _BanditBase

MAX_TABLE_BYTES = 2**31  # the Gaussian reward table; a larger one is refused (play such batches in numpy)


class _BanditTwin(TorchDynamics):
    """Noise keys on the device; the flat (trial, arm) index of ``_BanditBase``."""

    def load(self, tasks: Arrays, state: Arrays) -> tuple[Tensors, Tensors]:
        n, k = len(state["key"]), self.family.num_actions
        self.offsets = torch.arange(n, device=self.device) * k
        tasks_t = {name: torch.as_tensor(v, device=self.device) for name, v in tasks.items()}
        return tasks_t, {"key": keys_to_torch(state["key"], self.device)}

    def observe(self, tasks: Tensors, state: Tensors) -> torch.Tensor:
        return torch.zeros(len(state["key"]), 1, dtype=torch.float32, device=self.device)


class BernoulliTwin(_BanditTwin):
    """The Bernoulli step: noise counters advanced per pull, bits below the integer threshold of p."""

    def load(self, tasks: Arrays, state: Arrays) -> tuple[Tensors, Tensors]:
        tasks_t, state_t = super().load(tasks, state)
        noise = state.get("noise")  # the fused numpy step keeps counters and thresholds together
        counter = state.get("counter", noise[..., 0] if noise is not None else None)
        if counter is None:
            counter = counter_start(state["key"], state["pulls"])
        threshold = state.get("threshold", noise[..., 1] if noise is not None else None)
        state_t["counter"] = counters_to_torch(np.ascontiguousarray(counter), self.device)
        if threshold is not None:  # the numpy step has worked them out already
            state_t["threshold"] = torch.as_tensor(threshold.astype(np.int64), device=self.device)
        else:
            state_t["threshold"] = uniform_thresholds(tasks_t["p"].to(torch.float64))
        return tasks_t, state_t

    def step(self, tasks: Tensors, state: Tensors, actions: torch.Tensor) -> tuple[Tensors, torch.Tensor]:
        # gather/scatter_ on the flat (trial, arm) index: the cheapest indexing torch has
        idx = self.offsets + actions
        flat = state["counter"].view(-1)
        counters = flat.gather(0, idx)
        flat.scatter_(0, idx, counters + COUNTER_STEP)
        bits = mixed_bits_(counters)
        return state, (bits < state["threshold"].view(-1).gather(0, idx)).to(torch.float64)


class GaussianTwin(_BanditTwin):
    """The Gaussian step: the mean plus noise_std times a normal gathered from the reward table."""

    def load(self, tasks: Arrays, state: Arrays) -> tuple[Tensors, Tensors]:
        if "pulls" not in state:
            raise ValueError("the Gaussian twin loads a trial's initial state (with its pull counts)")
        tasks_t, state_t = super().load(tasks, state)
        fam = self.family
        k, depth = fam.num_actions, int(state["pulls"].max(initial=0)) + fam.trial_length
        keys, row = np.unique(np.asarray(state["key"], np.uint64), return_inverse=True)
        size = len(keys) * k * depth * 8
        if size > MAX_TABLE_BYTES:
            raise ValueError(
                f"the Gaussian reward table of {len(keys)} keys x {k} arms x {depth} pulls needs "
                f"{size / 2**30:.1f} GiB (limit {MAX_TABLE_BYTES / 2**30:.0f} GiB); "
                "play fewer trials at once or use TrialEnv"
            )
        table = counter_normal(keys[:, None, None], np.arange(k)[None, :, None], np.arange(depth)[None, None, :])
        state_t["table"] = torch.as_tensor(table, device=self.device)
        state_t["row"] = torch.as_tensor(row.reshape(-1).astype(np.int64) * k, device=self.device)
        state_t["pulls"] = torch.as_tensor(np.array(state["pulls"], np.int64), device=self.device)
        self.depth = depth
        return tasks_t, state_t

    def step(self, tasks: Tensors, state: Tensors, actions: torch.Tensor) -> tuple[Tensors, torch.Tensor]:
        idx = self.offsets + actions
        flat = state["pulls"].view(-1)
        counts = flat.gather(0, idx)
        flat.scatter_(0, idx, counts + 1)
        z = state["table"].view(-1).gather(0, (state["row"] + actions).mul_(self.depth).add_(counts))
        return state, tasks["mu"].view(-1).gather(0, idx) + self.family.noise_std * z


TWINS = ((BernoulliBandit, BernoulliTwin), (GaussianBandit, GaussianTwin))  # the dependent bandit steps as Bernoulli


def twin_of(family: _BanditBase, device: str | torch.device) -> TorchDynamics | None:
    return mirrored_twin(family, TWINS, device)
