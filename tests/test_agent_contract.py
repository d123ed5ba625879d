"""The agent contract, checked for every registered agent: ``act`` returns new memory and
never changes the memory it was given (so memory can be kept, replayed or branched, as the
belief probe's shadow agents do), and acting twice on the same memory gives the same actions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import metarl_bench
from metarl_bench.core.agent import UnsupportedFamilyError

torch.set_num_threads(1)

# One bandit and one gridworld, both with shipped rl2 and vsml checkpoints, and one tabular MDP
# (learning agents have no checkpoint there: they declare it unsupported); 12 steps cross the
# MDP's first episode boundary, where its agents re-plan.
FAMILIES = ("bernoulli-k2-h100", "heart-trap-5x5", "tabular-mdp-s10-a5-n10")
STEPS = 12
TRIALS = 6


def snapshot(x: Any) -> Any:
    """A deep, comparable copy of a memory: arrays, tensors, generators' states, containers."""
    if isinstance(x, dict):
        return {k: snapshot(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return tuple(snapshot(v) for v in x)
    if isinstance(x, np.ndarray):
        return ("array", x.dtype.str, x.shape, x.tobytes())
    if isinstance(x, torch.Tensor):
        return ("tensor", x.detach().cpu().numpy().tobytes(), tuple(x.shape))
    if isinstance(x, np.random.Generator):
        return ("rng", repr(x.bit_generator.state))
    if isinstance(x, (int, float, str, bool, type(None), np.generic)):
        return x
    raise TypeError(f"the contract test cannot compare memory of type {type(x).__name__}; extend snapshot()")


def ready_agent(name: str, env: str):
    family = metarl_bench.make_family(env)
    try:
        agent = metarl_bench.make_agent(name, family)
        if agent.learns:
            agent.prepare(train_family=family, train_env=env)  # the shipped checkpoint
    except UnsupportedFamilyError:
        return None
    return agent


@pytest.mark.parametrize("env", FAMILIES)
@pytest.mark.parametrize("name", metarl_bench.list_agents())
def test_act_returns_new_memory_and_never_mutates_its_argument(name, env):
    agent = ready_agent(name, env)
    if agent is None:
        pytest.skip(f"{name} declares it does not play {env}")
    batch = metarl_bench.make(env, num_trials=TRIALS, seed=0)
    obs = batch.reset(seed=np.random.default_rng(0))
    memory = agent.reset(TRIALS, rng=np.random.default_rng(1), tasks=batch.tasks if agent.privileged else None)
    for _ in range(STEPS):
        before = snapshot(memory)
        actions, new_memory = agent.act(obs, memory)
        assert snapshot(memory) == before, f"{name}.act changed the memory it was given"
        again, _ = agent.act(obs, memory)  # replaying the same memory replays the same decision
        assert np.array_equal(actions, again), f"{name}.act is not a function of (obs, memory)"
        assert new_memory is not memory
        memory = new_memory
        obs, _, done, _ = batch.step(actions)
        if done:
            break


def test_the_snapshot_sees_a_mutation():
    """The check above can fail: an in-place change of an array, a tensor or a generator shows."""
    rng = np.random.default_rng(0)
    memory = {"a": np.zeros(3), "t": torch.zeros(2), "rng": rng}
    before = snapshot(memory)
    memory["a"][0] = 1.0
    assert snapshot(memory) != before
    before = snapshot(memory)
    memory["t"].add_(1.0)
    assert snapshot(memory) != before
    before = snapshot(memory)
    rng.random()
    assert snapshot(memory) != before
