"""Playing a population of VSML parameter vectors on the same tasks with common random numbers.

Every member meets the same tasks, the same reward noise and the same action-sampling
numbers, so members differ only by parameters.  The whole population is one batched trial
env of ``members x tasks`` trials, under ``torch.no_grad``; its members can also be split into
shards played anywhere (``play`` with a ``shard_map``) with the same result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch

from metarl_bench.accel.torch_trial import TorchTrialEnv, torch_twin
from metarl_bench.baselines.vsml.network import VSMLNet, obs_tensors
from metarl_bench.core.family import Arrays, TaskFamily
from metarl_bench.core.trial import TrialEnv

ENV_BACKENDS = ("auto", "torch", "numpy")

# An optional hook for ``VSMLAgent.fit``: the members of a generation are split into shards that
# a ``shard_map`` plays anywhere (Ray tasks, a process pool), then concatenated.  The shared
# numbers are drawn once, in ``play``, so the result is the local one.
ShardMap = Callable[[Callable[..., torch.Tensor], list[tuple]], Iterable[torch.Tensor]]
"""``shard_map(fn, arg_tuples)`` returns ``[fn(*args) for args in arg_tuples]``, in order (like
``itertools.starmap``), computed wherever it likes."""


def _tile(arrays: Arrays, times: int) -> Arrays:
    return {k: np.concatenate([v] * times) for k, v in arrays.items()}


def sample_actions(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF samples from softmax(logits) with uniforms ``u`` (broadcast to logits[..., 0])."""
    cdf = torch.softmax(logits.double(), dim=-1).cumsum(dim=-1)
    return (cdf < u[..., None]).sum(dim=-1).clamp(max=logits.shape[-1] - 1)


@torch.no_grad()
def play(
    net: VSMLNet,
    theta: torch.Tensor,
    family: TaskFamily,
    tasks: Arrays,
    rng: np.random.Generator,
    deterministic: bool = False,
    device: str | torch.device = "cpu",
    env_backend: str = "auto",
    shard_map: ShardMap | None = None,
    shards: int = 1,
) -> torch.Tensor:
    """Trial returns (members, tasks) of every member of ``theta`` (P, D) on the same tasks.

    One batched env holds members x tasks trials; every member meets the same tasks, the
    same reward noise (the env state, its noise keys included, is copied from member 0)
    and the same action-sampling numbers.  ``env_backend``: see :func:`play_members`.
    With a ``shard_map``, the members are split into ``shards`` slices played by it (e.g. on
    Ray workers); the result is the same.
    """
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    shared = draw_shared(family, tasks, len(theta), rng)
    if shard_map is None:
        return play_members(net, theta, family, tasks, shared, deterministic, device, env_backend)
    bounds = np.linspace(0, len(theta), min(shards, len(theta)) + 1).round().astype(int)
    # clone(): a pickled slice would otherwise carry the whole population's storage
    jobs = [
        (net, theta[i:j].clone(), family, tasks, shared, deterministic, device, env_backend)
        for i, j in pairwise(bounds)
    ]
    return torch.cat(list(shard_map(play_members, jobs)))


@dataclass(frozen=True)
class SharedNumbers:
    """The random numbers every member of a population meets in one rollout."""

    state: Arrays  # member 0's initial env state (noise keys included), N trials
    per_trial: frozenset[str]  # the entries of ``state`` that have one row per trial
    uniforms: np.ndarray  # (trial_length, N) action-sampling numbers


def draw_shared(family: TaskFamily, tasks: Arrays, members: int, rng: np.random.Generator) -> SharedNumbers:
    """Draw from ``rng`` what a rollout of ``members`` members needs, exactly as ``play`` always has.

    The env state is drawn for members x tasks trials (only member 0's rows are kept), then
    N uniforms per step, so ``rng`` ends where a rollout leaves it whoever plays the members.
    """
    N = len(next(iter(tasks.values())))
    env = TrialEnv(family, num_trials=members * N)
    env.reset(seed=rng, tasks=_tile(tasks, members))
    per_trial = frozenset(k for k, v in env.state.items() if len(v) == members * N)
    state = {k: v[:N] if k in per_trial else v for k, v in env.state.items()}
    uniforms = np.stack([rng.random(N) for _ in range(family.trial_length)])
    return SharedNumbers(state, per_trial, uniforms)


@torch.no_grad()
def play_members(
    net: VSMLNet,
    theta: torch.Tensor,
    family: TaskFamily,
    tasks: Arrays,
    shared: SharedNumbers,
    deterministic: bool = False,
    device: str | torch.device = "cpu",
    env_backend: str = "auto",
) -> torch.Tensor:
    """Trial returns (members, tasks) of the members ``theta`` (P, D) under the ``shared`` numbers.

    ``env_backend="torch"`` steps the trials on ``device`` (``TorchTrialEnv``, for families
    with a torch twin): nothing goes back to the host until the returns.  ``"numpy"`` steps
    them in ``TrialEnv``.  ``"auto"``: torch on an accelerator when the family has a twin;
    on the CPU numpy, the reference, which is as fast there (``benchmarks/vsml_speed.py``).
    All give the same returns, bit for bit.
    """
    if env_backend not in ENV_BACKENDS:
        raise ValueError(f"env_backend must be one of {ENV_BACKENDS}, got {env_backend!r}")
    P, N = len(theta), len(next(iter(tasks.values())))
    state0 = {k: np.concatenate([v] * P) if k in shared.per_trial else v for k, v in shared.state.items()}
    on_device = env_backend == "torch" or (env_backend == "auto" and torch.device(device).type != "cpu")
    twin = torch_twin(family, device) if on_device else None
    if env_backend == "torch" and twin is None:
        raise ValueError(f"{family.describe()} has no torch twin: play it with env_backend='numpy'")
    if twin is not None:
        # Actions come from sample_actions, in range by construction: no range check (a sync).
        env: TrialEnv | TorchTrialEnv = TorchTrialEnv(family, num_trials=P * N, device=device, check_actions=False)
        obs = env.reset(tasks=_tile(tasks, P), state=state0)
    else:
        env = TrialEnv(family, num_trials=P * N)
        obs = env.reset(seed=0, tasks=_tile(tasks, P))  # its state is replaced by the shared one
        env.state = state0
        obs = {**obs, "obs": family.observe(env.tasks, env.state)}
    params = net.unflatten(theta.to(device))
    state = net.initial_state(P, N, family.num_actions, device)
    uniforms = torch.as_tensor(shared.uniforms, device=device)  # one copy for the whole rollout
    total = torch.zeros(P, N, dtype=torch.float64, device=device)
    for t in range(family.trial_length):
        logits, state = net.step(params, state, *obs_tensors(obs, P, device))
        if deterministic:  # argmax, ties broken at random as in ``VSMLAgent.act``
            logits = torch.where(logits >= logits.amax(dim=-1, keepdim=True), 0.0, -torch.inf)
        actions = sample_actions(logits, uniforms[t].expand(P, N)).reshape(-1)
        if isinstance(env, TorchTrialEnv):
            obs, rewards, _, _ = env.step(actions)
        else:
            obs, rewards, _, _ = env.step(actions.cpu().numpy())
        total += torch.as_tensor(rewards, device=device).view(P, N)
    return total.cpu()

