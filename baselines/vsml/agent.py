"""VSML (Kirsch & Schmidhuber 2021) as a meta-RL agent (Kirsch et al. 2022), trained by ES.

One story, top to bottom: the configuration, the model, evolution strategies, acting,
checkpoints.

**Model.**  A VSML layer with A inputs and B outputs replaces each of its A x B weights by a
tiny LSTM; every LSTM of every layer shares one small parameter set.  Cell (a, b) reads the
forward message of input unit a, the backward message of output unit b, the previous
reward and the new-episode flag, and updates its state for a few micro-ticks per
environment step.  The forward message to the next layer is the mean over a of a linear
map of the cell outputs; the backward message to the previous layer is the mean over b.

**RL wiring.**  Observation entries (plus a constant bias unit) are the input units; the
arms are the output units.  The previous action (one-hot) is channel 0 of the output
layer's backward message, the previous reward goes to every cell, and the action logits
are channel 0 of the output layer's forward message.  Arms only ever meet shared
parameters and per-input (never per-arm) initial states, so the policy is permutation
equivariant in the arms and runs unchanged with any number of them.

**Batching.**  The state of a whole population is one tensor
``(members, trials, A, B, hidden)``; every micro-tick is a few ``torch.bmm`` calls over
members (each member's parameters are applied to all its trials without copying).

**Training.**  OpenAI-ES (Salimans et al. 2017): antithetic pairs, centered-rank fitness
shaping, Adam on the ES gradient.  Each generation samples tasks from the training seed
stream, and every member plays the same tasks with the same reward noise and the same
action-sampling numbers (common random numbers), so members differ only by parameters.
The whole population is one batched ``TrialEnv`` of ``members x tasks`` trials, under
``torch.no_grad``.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from metarl_bench.accel.torch_trial import TorchTrialEnv, torch_twin
from metarl_bench.core.agent import (
    Agent,
    CheckpointError,
    Obs,
    UnsupportedFamilyError,
    checkpoint_name,
    fresh_rng,
    inverse_cdf,
)
from metarl_bench.core.family import Arrays, TaskFamily
from metarl_bench.core.registry import get_spec
from metarl_bench.core.seeding import train_rng
from metarl_bench.core.trial import TrialEnv

CHECKPOINT_ROOT = Path(__file__).resolve().parent.parent / "checkpoints"  # one folder per agent name
CHECKPOINT_FORMAT = 1
DEFAULT_TRAIN_ENV = "bernoulli-k2-h100"  # the shipped checkpoint that plays Bernoulli bandits of any k


# ============================================================================ configuration
@dataclass
class VSMLConfig:
    """Hyper-parameters; the defaults reach the quality target on bernoulli-k2-h100."""

    # model
    hidden_size: int = 16  # LSTM state per cell
    message_size: int = 8  # forward / backward message channels
    num_layers: int = 1  # 1 or 2 VSML layers
    hidden_units: int = 8  # units between the layers when num_layers == 2
    micro_ticks: int = 2  # LSTM updates per environment step
    gate_offset: float = 5.0  # +offset on the forget gate, -offset on the input gate
    init_random_frac: float = 0.5  # share of each cell state that starts random
    init_std: float = 1.0  # spread of that random part
    output_bound: float = 10.0  # messages and logits are bounded by c * tanh(x / c)
    bias_unit: bool = True  # a constant-1 input unit beside the observation
    unit_ids: bool = False  # learned identity vectors per input and output unit (fixed meanings; see VSMLNet)
    model_seed: int = 0  # initial parameters and the random initial cell states
    # evolution strategies
    population: int = 64  # members per generation (antithetic pairs: even)
    tasks_per_generation: int = 64  # every member plays these same tasks
    sigma: float = 0.04  # perturbation scale
    learning_rate: float = 0.02  # Adam step size on the ES gradient
    lr_final: float = 1.0  # anneal the step size linearly to lr_final * learning_rate over the budget
    weight_decay: float = 0.0  # L2 pull towards 0 (OpenAI-ES's "l2coeff")
    train_steps: int = 245_760_000  # default budget (env steps): 600 generations of 64 x 64 x 100
    checkpoint_every: int = 50  # generations between periodic checkpoints
    # acting
    deterministic: bool = False  # sample from softmax(logits), or take the argmax

    def __post_init__(self) -> None:
        if self.num_layers not in (1, 2):
            raise ValueError(f"num_layers must be 1 or 2, got {self.num_layers}")
        if self.population < 2 or self.population % 2:
            raise ValueError(f"population must be an even number >= 2 (antithetic pairs), got {self.population}")
        for name in ("hidden_size", "message_size", "hidden_units", "micro_ticks", "tasks_per_generation"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


# Named configurations, ``VSMLAgent(family, preset="gpu")``; keys given beside a preset win.
# "cpu" is the defaults, with which the shipped checkpoints were trained.  "gpu" spends a
# GPU's width on a larger population and more tasks per generation, so that fewer, bolder
# generations (a higher, annealed step size) reach the quality target: on a GPU a generation
# costs about the same at 32k trials as at 4k (it is bound by kernel launches, ~100 steps of
# ~100 small kernels), so the budget is counted in generations, not in agent-steps.
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {},
    "gpu": {
        "population": 256,
        "tasks_per_generation": 128,
        "learning_rate": 0.05,
        "lr_final": 0.2,
        "train_steps": 150 * 256 * 128 * 100,  # 150 generations on bernoulli-k2-h100
    },
}


# ============================================================================ model
class VSMLNet:
    """The shared LSTM parameters as one flat vector, and the batched VSML step.

    Parameters are laid out as a (members, D) tensor ``theta``: each row is one member.
    """

    def __init__(self, cfg: VSMLConfig, num_inputs: int, num_actions: int | None = None):
        self.cfg = cfg
        H, M = cfg.hidden_size, cfg.message_size
        self.num_inputs = num_inputs + int(cfg.bias_unit)
        if cfg.unit_ids and num_actions is None:
            raise ValueError("unit_ids needs the number of actions: one identity vector per output unit")
        self.num_actions = num_actions
        self.in_dim = 2 * M + 2  # forward message, backward message, reward, new-episode flag
        # name -> shape (per member); one flat vector holds them in this order
        self.shapes = {
            "w_in": (self.in_dim, 4 * H),
            "w_rec": (H, 4 * H),
            "b_gate": (4 * H,),
            "w_out": (H, 2 * M),  # forward message | backward message
            "b_out": (2 * M,),
        }
        if cfg.unit_ids:
            # With identities, cells can tell input units and arms apart, as positional
            # embeddings do: added to each unit's message, they break the arm symmetry that
            # lets the default VSML play any number of arms, and make a gridworld's fixed
            # action meanings learnable from the first step.
            self.shapes["id_in"] = (self.num_inputs, M)
            self.shapes["id_out"] = (num_actions, M)
        self.sizes = {k: math.prod(s) for k, s in self.shapes.items()}
        self.num_params = sum(self.sizes.values())
        gen = torch.Generator().manual_seed(cfg.model_seed)
        # Random initial cell states per *input* unit (never per arm: keeps arms symmetric).
        self.init_c = [self._random_state(gen, self.num_inputs, self.layer_outputs(0))]
        if cfg.num_layers == 2:
            self.init_c.append(self._random_state(gen, cfg.hidden_units, None))
        self.theta0 = self._initial_theta(gen)

    def layer_outputs(self, layer: int) -> int | None:
        """Output units of a layer (None for the output layer: the number of arms)."""
        return self.cfg.hidden_units if (layer == 0 and self.cfg.num_layers == 2) else None

    def _random_state(self, gen: torch.Generator, rows: int, cols: int | None) -> torch.Tensor:
        H = self.cfg.hidden_size
        c = torch.zeros(rows, cols or 1, H)
        n = round(self.cfg.init_random_frac * H)
        c[..., :n] = self.cfg.init_std * torch.randn(rows, cols or 1, n, generator=gen)
        return c

    def _initial_theta(self, gen: torch.Generator) -> torch.Tensor:
        H = self.cfg.hidden_size
        parts = []
        for name, shape in self.shapes.items():
            if name.startswith("b_"):
                parts.append(torch.zeros(shape))
            elif name.startswith("id_"):  # unit identities: distinct from the start
                parts.append(torch.randn(shape, generator=gen))
            else:
                fan_in = self.in_dim + H if name != "w_out" else H
                parts.append(torch.randn(shape, generator=gen) / math.sqrt(fan_in))
        return torch.cat([p.flatten() for p in parts])

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-member parameter tensors from a (members, D) matrix (done once per rollout)."""
        out, i = {}, 0
        for name, shape in self.shapes.items():
            out[name] = theta[:, i : i + self.sizes[name]].reshape(len(theta), *shape)
            i += self.sizes[name]
        # Forget gate ~1 and input gate ~0 at init: a cell state persists like a weight.
        H, off = self.cfg.hidden_size, self.cfg.gate_offset
        offset = torch.zeros(4 * H, device=theta.device)
        offset[:H], offset[H : 2 * H] = -off, off
        out["b_gate"] = out["b_gate"] + offset
        return out

    # ---------------------------------------------------------------- state
    def initial_state(self, members: int, trials: int, num_actions: int, device: str | torch.device) -> dict:
        """Fresh cell states for (members, trials): h = 0, c = the seeded random init."""
        H, M = self.cfg.hidden_size, self.cfg.message_size
        state: dict[str, Any] = {"h": [], "c": []}
        for layer, c0 in enumerate(self.init_c):
            cols = self.layer_outputs(layer) or num_actions
            c = c0.to(device).expand(c0.shape[0], cols, H)
            state["c"].append(c.expand(members, trials, *c.shape).clone())
            state["h"].append(torch.zeros_like(state["c"][-1]))
        if self.cfg.num_layers == 2:  # the hidden units' backward message from the last tick
            state["bwd_hidden"] = torch.zeros(members, trials, self.cfg.hidden_units, M, device=device)
        return state

    # ---------------------------------------------------------------- one step
    def _bound(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cfg.output_bound
        return c * _tanh(x / c)

    def _cell(self, p: dict, h: torch.Tensor, c: torch.Tensor, fwd: torch.Tensor, bwd: torch.Tensor, scal: list):
        """One LSTM update of an (members, trials, A, B) grid of cells.

        ``fwd`` (P, N, A, M) and ``bwd`` (P, N, B, M) are projected per unit, not per cell,
        and broadcast over the grid; only the recurrent term is a per-cell matmul.
        """
        P, N, A, B, H = h.shape
        M = self.cfg.message_size
        w_in = p["w_in"]
        g_fwd = torch.bmm(fwd.reshape(P, N * A, M), w_in[:, :M]).view(P, N, A, 1, 4 * H)
        g_bwd = torch.bmm(bwd.reshape(P, N * B, M), w_in[:, M : 2 * M]).view(P, N, 1, B, 4 * H)
        g_rec = torch.bmm(h.reshape(P, N * A * B, H), p["w_rec"]).view(P, N, A, B, 4 * H)
        g_scal = sum(s[:, :, None] * w_in[:, None, 2 * M + j] for j, s in enumerate(scal))  # (P, N, 4H)
        gates = g_rec.add_(g_fwd).add_(g_bwd).add_((g_scal + p["b_gate"][:, None]).view(P, N, 1, 1, 4 * H))
        # One sigmoid for all four gates (the gate offsets are folded into b_gate by
        # ``unflatten``); the candidate is 2 sigmoid(g) - 1 = tanh(g / 2).
        i, f, g, o = gates.sigmoid_().chunk(4, dim=-1)
        c = f * c + i * (2 * g - 1)
        h = o * _tanh(c)
        # mean_a(W h_ab + b) = W mean_a(h_ab) + b: average the cells first, then project.
        w_out, b_out = p["w_out"], p["b_out"][:, None]
        fwd_out = torch.bmm(h.mean(dim=2).view(P, N * B, H), w_out[..., :M]).add_(b_out[..., :M])
        bwd_out = torch.bmm(h.mean(dim=3).view(P, N * A, H), w_out[..., M:]).add_(b_out[..., M:])
        fwd_out = self._bound(fwd_out.view(P, N, B, M))  # to output unit b: mean over inputs a
        bwd_out = self._bound(bwd_out.view(P, N, A, M))  # to input unit a: mean over outputs b
        return h, c, fwd_out, bwd_out

    def step(
        self,
        p: dict,
        state: dict,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        prev_reward: torch.Tensor,
        new_episode: torch.Tensor,
    ) -> tuple[torch.Tensor, dict]:
        """Logits (P, N, num_actions) for one environment step, and the new state.

        obs (P, N, d), prev_action (P, N, k) one-hot, prev_reward and new_episode (P, N).
        """
        P, N, _ = obs.shape
        M = self.cfg.message_size
        units = [obs] + ([torch.ones_like(obs[..., :1])] if self.cfg.bias_unit else [])
        fwd_in = _as_message(torch.cat(units, dim=-1), M)  # input units: channel 0
        action_msg = _as_message(prev_action, M)  # arms' backward message: channel 0
        if "id_in" in p:
            fwd_in = fwd_in + p["id_in"][:, None]
            action_msg = action_msg + p["id_out"][:, None]
        scal = [prev_reward, new_episode]
        h, c = list(state["h"]), list(state["c"])
        bwd_hidden = state.get("bwd_hidden")
        logits = None
        for _ in range(self.cfg.micro_ticks):
            if self.cfg.num_layers == 1:
                h[0], c[0], fwd, _ = self._cell(p, h[0], c[0], fwd_in, action_msg, scal)
            else:
                h[0], c[0], fwd_hidden, _ = self._cell(p, h[0], c[0], fwd_in, bwd_hidden, scal)
                h[1], c[1], fwd, bwd_hidden = self._cell(p, h[1], c[1], fwd_hidden, action_msg, scal)
            logits = fwd[..., 0]
        new_state = {"h": h, "c": c}
        if bwd_hidden is not None:
            new_state["bwd_hidden"] = bwd_hidden
        return logits, new_state


def _tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh as 2 sigmoid(2x) - 1: the same function, ~10x faster than torch.tanh on CPU.

    In place when no gradient is wanted (ES); out of place, same numbers, under autograd
    (cloning backpropagates through the step, and sigmoid's backward needs its output)."""
    if x.requires_grad and torch.is_grad_enabled():
        return 2 * torch.sigmoid(2 * x) - 1
    return torch.sigmoid(2 * x).mul_(2).sub_(1)


def _as_message(values: torch.Tensor, size: int) -> torch.Tensor:
    """Scalars per unit (..., U) as messages (..., U, size) carrying the value in channel 0."""
    msg = values.new_zeros(*values.shape, size)
    msg[..., 0] = values
    return msg


def _obs_tensors(obs: Obs, members: int, device: torch.device | str) -> tuple[torch.Tensor, ...]:
    """The RL² observation batch (members * trials rows, member-major) as (P, N, ...) tensors.

    Takes numpy arrays (``TrialEnv``) or tensors already on the device (``TorchTrialEnv``).
    """

    def t(x: np.ndarray | torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            x = np.asarray(x, np.float32)
        x = torch.as_tensor(x, dtype=torch.float32, device=device)
        return x.reshape(members, x.shape[0] // members, -1)

    return t(obs["obs"]), t(obs["prev_action"]), t(obs["prev_reward"])[..., 0], t(obs["new_episode"])[..., 0]


def sample_actions(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF samples from softmax(logits) with uniforms ``u`` (broadcast to logits[..., 0])."""
    cdf = torch.softmax(logits.double(), dim=-1).cumsum(dim=-1)
    return (cdf < u[..., None]).sum(dim=-1).clamp(max=logits.shape[-1] - 1)


# ============================================================================ evolution strategies
def centered_ranks(x: torch.Tensor) -> torch.Tensor:
    """Fitness shaping of OpenAI-ES: ranks scaled to [-0.5, 0.5] (ties broken by order)."""
    ranks = torch.empty_like(x)
    ranks[x.argsort()] = torch.arange(len(x), dtype=x.dtype, device=x.device)
    return ranks / (len(x) - 1) - 0.5


class Adam:
    """Adam (Kingma & Ba 2015) on a flat parameter vector, ascending the given gradient."""

    def __init__(self, num_params: int, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = torch.zeros(num_params)
        self.v = torch.zeros(num_params)
        self.t = 0

    def ascent(self, theta: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        a = self.lr * math.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
        return theta + a * self.m / (self.v.sqrt() + self.eps)


ENV_BACKENDS = ("auto", "torch", "numpy")


def _tile(arrays: Arrays, times: int) -> Arrays:
    return {k: np.concatenate([v] * times) for k, v in arrays.items()}


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
) -> torch.Tensor:
    """Trial returns (members, tasks) of every member of ``theta`` (P, D) on the same tasks.

    One batched env holds members x tasks trials; every member meets the same tasks, the
    same reward noise (the env state, its noise keys included, is copied from member 0)
    and the same action-sampling numbers.  ``env_backend``: see :func:`play_members`.
    """
    shared = draw_shared(family, tasks, len(theta), rng)
    return play_members(net, theta, family, tasks, shared, deterministic, device, env_backend)


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
        logits, state = net.step(params, state, *_obs_tensors(obs, P, device))
        if deterministic:  # argmax, ties broken at random as in ``VSMLAgent.act``
            logits = torch.where(logits >= logits.amax(dim=-1, keepdim=True), 0.0, -torch.inf)
        actions = sample_actions(logits, uniforms[t].expand(P, N)).reshape(-1)
        if isinstance(env, TorchTrialEnv):
            obs, rewards, _, _ = env.step(actions)
        else:
            obs, rewards, _, _ = env.step(actions.cpu().numpy())
        total += torch.as_tensor(rewards, device=device).view(P, N)
    return total.cpu()


# ============================================================================ population sharding
# An optional hook for ``VSMLAgent.fit``: the members of a generation are split into shards that
# a ``shard_map`` plays anywhere (Ray tasks, a process pool), then concatenated.  The shared
# numbers are drawn once, here, so the result is the local one.
ShardMap = Callable[[Callable[..., torch.Tensor], list[tuple]], Iterable[torch.Tensor]]
"""``shard_map(fn, arg_tuples)`` returns ``[fn(*args) for args in arg_tuples]``, in order (like
``itertools.starmap``), computed wherever it likes."""


def play_sharded(
    shard_map: ShardMap,
    shards: int,
    net: VSMLNet,
    theta: torch.Tensor,
    family: TaskFamily,
    tasks: Arrays,
    rng: np.random.Generator,
    deterministic: bool = False,
    device: str | torch.device = "cpu",
    env_backend: str = "auto",
) -> torch.Tensor:
    """``play`` with the members split into ``shards`` slices played by ``shard_map``: same result."""
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    shared = draw_shared(family, tasks, len(theta), rng)
    bounds = np.linspace(0, len(theta), min(shards, len(theta)) + 1).round().astype(int)
    # clone(): a pickled slice would otherwise carry the whole population's storage
    jobs = [
        (net, theta[i:j].clone(), family, tasks, shared, deterministic, device, env_backend)
        for i, j in pairwise(bounds)
    ]
    return torch.cat(list(shard_map(play_members, jobs)))


def _references(family: TaskFamily) -> tuple[float | None, float | None]:
    """(random, Bayes-optimal) expected returns of the training family, when known exactly."""
    reference = family.bayes_reference()
    bayes = reference.expected_return() if reference is not None else None  # None for a lower bound
    tasks = family.sample_tasks(np.random.default_rng(0), 10_000)
    rand = family.random_return(tasks)
    return (None if rand is None else float(rand.mean())), bayes


def _score(ret: float, refs: tuple[float | None, float | None]) -> float | None:
    rand, bayes = refs
    if rand is None or bayes is None or bayes <= rand:
        return None
    return 100.0 * (ret - rand) / (bayes - rand)


# ============================================================================ the agent
class VSMLAgent(Agent):
    """A VSML network meta-trained by ES; its memory is the grid of LSTM states."""

    name = "vsml"
    learns = True
    transfers_across_spaces = True  # parameters are shared by every cell: any number of arms
    extra_config: tuple[str, ...] = ()  # config keys of a subclass, beside VSMLConfig's

    def __init__(self, family: TaskFamily, preset: str = "cpu", **config: Any):
        if preset not in PRESETS:
            raise ValueError(f"unknown vsml preset {preset!r}; allowed: {sorted(PRESETS)}")
        known = {f.name for f in fields(VSMLConfig)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown vsml config key(s) {unknown}; allowed: {sorted(known)}")
        self.cfg = VSMLConfig(**{**PRESETS[preset], **config})
        super().__init__(family, **asdict(self.cfg))
        self.net = VSMLNet(self.cfg, _obs_dim(family), family.num_actions)
        self.theta = self.net.theta0.clone()
        self.device: str = "cpu"
        self.trained_on: str | None = None
        self.train_steps = 0
        self.generations = 0
        self.metrics: dict[str, Any] = {}

    # ------------------------------------------------------------------ training
    def fit(
        self,
        family: TaskFamily,
        budget: int,
        seed: int | None = 0,
        train_env: str = "",
        progress: bool = True,
        device: str = "cpu",
        save_path: str | Path | None = None,
        eval_tasks: int = 10_000,
        callback: Callable[[VSMLAgent, dict[str, Any]], None] | None = None,
        shard_map: ShardMap | None = None,
        shards: int = 2,
        env_backend: str = "auto",
    ) -> dict[str, Any]:
        """Meta-train by ES for ``budget`` env steps (members x tasks x trial length per generation).

        Runs as many whole generations as the budget holds (at least one).  Continues from
        the current parameters.  Every ``checkpoint_every`` generations the agent is saved
        to ``save_path`` (if given).  At the end the mean parameters are evaluated on
        ``eval_tasks`` fresh training tasks (numbers in the returned statistics and in
        ``self.metrics``).  ``callback(agent, stats)`` runs after every generation.
        With ``shard_map``, each generation's members are played in ``shards`` slices by it
        (``play_sharded``; e.g. Ray tasks), with the same result as in-process.
        ``env_backend`` says where the trials are stepped (:func:`play_members`); the
        result does not depend on it.
        """
        self._check_obs(family, what=f"training family {family.describe()}")
        cfg = self.cfg
        seed = 0 if seed is None else int(seed)
        self.device = device
        name = train_env or family.describe()
        rng = train_rng(name, seed)
        noise_gen = torch.Generator().manual_seed(int(rng.integers(2**63)))
        steps_per_gen = cfg.population * cfg.tasks_per_generation * family.trial_length
        generations = max(1, int(budget) // steps_per_gen)
        refs = _references(family)
        adam = Adam(self.net.num_params, cfg.learning_rate)
        pairs = cfg.population // 2
        smooth: float | None = None
        curve: list[dict[str, Any]] = []
        curve_every = max(1, generations // 100)
        start = time.perf_counter()
        bar = tqdm(range(generations), desc=f"vsml ES on {name}", disable=not progress, unit="gen")
        for gen in bar:
            eps = torch.randn(pairs, self.net.num_params, generator=noise_gen)
            thetas = self.theta + cfg.sigma * torch.cat([eps, -eps])  # members j and j + pairs pair up
            tasks = family.sample_tasks(rng, cfg.tasks_per_generation)
            args = (self.net, thetas, family, tasks, rng, cfg.deterministic, device, env_backend)
            returns = play(*args) if shard_map is None else play_sharded(shard_map, shards, *args)
            fitness = returns.mean(dim=1).float()
            w = centered_ranks(fitness)
            grad = (w[:pairs] - w[pairs:]) @ eps / (cfg.population * cfg.sigma)
            adam.lr = cfg.learning_rate * (1 - (1 - cfg.lr_final) * gen / max(1, generations - 1))
            self.theta = adam.ascent(self.theta, grad - cfg.weight_decay * self.theta)
            self.train_steps += steps_per_gen
            self.generations += 1
            mean_ret = float(fitness.mean())
            # The bar shows a running mean: one generation's 64 tasks are a noisy sample.
            smooth = mean_ret if smooth is None else 0.9 * smooth + 0.1 * mean_ret
            score = _score(smooth, refs)
            bar.set_postfix(ret=f"{smooth:.2f}", **({"score": f"{score:.1f}"} if score is not None else {}))
            if (gen + 1) % curve_every == 0 or gen + 1 == generations:  # the learning curve ships in the checkpoint
                curve.append({"generation": self.generations, "smoothed_return": smooth, "smoothed_score": score})
            if callback is not None:
                callback(self, {"generation": self.generations, "population_return": mean_ret, "smoothed": smooth})
            if save_path is not None and (gen + 1) % cfg.checkpoint_every == 0:
                self.trained_on = name
                self.save(save_path)
        train_wall = time.perf_counter() - start
        self.trained_on = name
        tasks = family.sample_tasks(rng, eval_tasks)
        final = play(self.net, self.theta[None], family, tasks, rng, cfg.deterministic, device, env_backend)
        final = float(final.mean())
        self.metrics = {
            "train_return": final,
            "train_score": _score(final, refs),  # vs the exact Bayes value, unpaired: +-1 at 10k tasks
            "population_return": smooth,  # running mean over the last ~10 generations
            "eval_tasks": eval_tasks,
            "train_wall_s": train_wall,
            "generations": self.generations,
            "curve": curve,  # running-mean population return and score, ~100 points
        }
        if save_path is not None:
            self.save(save_path)
        return {
            "train_steps": self.train_steps,
            "train_wall_s": train_wall,
            "checkpoint": "",
            **self.metrics,
        }

    def default_train_env(self, env: str, retrain: bool = False) -> str:
        """``env``, or the shipped 2-armed checkpoint for Bernoulli distributions that have none
        of their own: trained on 2 arms, VSML plays any number of arms (the row's train_env says so)."""
        if retrain or self.checkpoint_path(env).exists():
            return env
        default = get_spec(DEFAULT_TRAIN_ENV).make()
        same_kind = type(default) is type(self.family)
        return DEFAULT_TRAIN_ENV if same_kind and self.checkpoint_path(DEFAULT_TRAIN_ENV).exists() else env

    def checkpoint_path(self, train_env: str, seed: int = 0) -> Path:
        return CHECKPOINT_ROOT / self.name / checkpoint_name(train_env, seed, ".pt")

    def prepare(
        self,
        train_family: TaskFamily,
        train_env: str,
        budget: int | None = None,
        seed: int = 0,
        retrain: bool = False,
        device: str = "cpu",
    ) -> dict[str, Any]:
        """Load the shipped checkpoint for ``train_env`` unless retraining is asked for."""
        path = self.checkpoint_path(train_env, seed)
        if not retrain and budget is None:
            if not path.exists():
                raise UnsupportedFamilyError(
                    f"no shipped {self.name} checkpoint for {train_env!r} (looked for {path}); pass --retrain or "
                    f"--train-steps to train one, or --train-env {DEFAULT_TRAIN_ENV} to play the shipped one zero-shot"
                )
            self.load_weights(path, expect_env=train_env, device=device)
            return {"train_steps": self.train_steps, "train_wall_s": 0.0, "checkpoint": path.name}
        # Periodic checkpoints of a CLI run go to the temp folder, never into the package.
        partial = Path(tempfile.gettempdir()) / "metarl_bench" / self.name / f"{train_env}-seed{seed}.partial.pt"
        partial.parent.mkdir(parents=True, exist_ok=True)
        return self.fit(
            train_family, budget or self.default_budget(), seed, train_env=train_env, device=device, save_path=partial
        )

    def default_budget(self) -> int:
        """The training budget (env steps) when the user gives none."""
        return self.cfg.train_steps

    # ------------------------------------------------------------------ acting
    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        state = self.net.initial_state(1, num_trials, self.num_actions, self.device)
        return {"rng": np.random.default_rng(rng), "state": state, "params": self.net.unflatten(self._theta()[None])}

    def action_probs(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        """The policy's action probabilities (num_trials, k) and the new memory."""
        logits, memory = self.logits(obs, memory)
        return torch.softmax(torch.as_tensor(logits), dim=-1).numpy(), memory

    @torch.no_grad()
    def logits(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        """Action logits (num_trials, k), float64, and the new memory."""
        logits, state = self.net.step(memory["params"], memory["state"], *_obs_tensors(obs, 1, self.device))
        return logits[0].double().cpu().numpy(), {**memory, "state": state}

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        return self.act_on_logits(*self.logits(obs, memory))

    def act_on_logits(self, logits: np.ndarray, memory: Any) -> tuple[np.ndarray, Any]:
        """Actions drawn from the policy with these logits (the memory ``logits`` returned)."""
        rng = fresh_rng(memory["rng"])
        memory = {**memory, "rng": rng}
        if self.cfg.deterministic:  # argmax, ties broken at random (keeps arms symmetric)
            best = logits >= logits.max(axis=1, keepdims=True)
            return _pick(best / best.sum(axis=1, keepdims=True), rng), memory
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        return _pick(probs / probs.sum(axis=1, keepdims=True), rng), memory

    def features(self, memory: Any) -> np.ndarray:
        """All cells' LSTM states (h and c of every layer), flattened per trial."""
        state = memory["state"]
        parts = [x[0].reshape(x.shape[1], -1) for x in (*state["h"], *state["c"])]
        return torch.cat(parts, dim=1).cpu().numpy()

    # ------------------------------------------------------------------ checkpoints
    def save(self, path: str | Path) -> Path:
        """A small torch file: the shared parameters plus our record (config, env, metrics)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "agent": self.name,
            "format": CHECKPOINT_FORMAT,
            "config": self.config,
            "obs_dim": _obs_dim(self.family),
            "trained_on": self.trained_on,
            "train_steps": self.train_steps,
            "generations": self.generations,
            "metrics": self.metrics,
            "theta": self.theta.detach().cpu().float().clone(),
        }
        tmp = path.with_name(path.name + ".tmp")
        torch.save(record, tmp)
        os.replace(tmp, path)  # a reader never sees half a checkpoint
        return path

    @classmethod
    def read_checkpoint(cls, path: str | Path) -> dict[str, Any]:
        """The checkpoint's record; CheckpointError if the file is not a checkpoint of this agent."""
        path = Path(path)
        try:
            record = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a foreign or broken file
            raise CheckpointError(
                f"{path} is not a {cls.name} checkpoint: expected a torch file saved by {cls.__name__}.save "
                f"(a dict of tensors and our record) ({type(exc).__name__})"
            ) from None
        if not isinstance(record, dict) or "agent" not in record:
            raise CheckpointError(f"{path} is not a {cls.name} checkpoint (no agent record)")
        if record["agent"] != cls.name:
            raise CheckpointError(f"{path} is a checkpoint of agent {record['agent']!r}, not {cls.name!r}")
        missing = {"format", "config", "obs_dim", "trained_on", "train_steps", "theta"} - set(record)
        if missing or record["format"] != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{path} is not a {cls.name} checkpoint of format {CHECKPOINT_FORMAT} (missing {sorted(missing)})"
            )
        return record

    def load_weights(self, path: str | Path, expect_env: str | None = None, device: str = "cpu") -> None:
        """Take the checkpoint's parameters and config; on any error nothing changes."""
        record = self.read_checkpoint(path)
        if expect_env is not None and record["trained_on"] != expect_env:
            raise CheckpointError(f"{path} was trained on {record['trained_on']!r}, not on {expect_env!r}")
        if record["obs_dim"] != _obs_dim(self.family):
            raise UnsupportedFamilyError(
                f"checkpoint {path} reads observations of {record['obs_dim']} entries, but "
                f"{self.family.describe()} gives {_obs_dim(self.family)} (any number of arms is fine)"
            )
        try:
            cfg = VSMLConfig(**{k: v for k, v in record["config"].items() if k not in self.extra_config})
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path} holds a vsml config this version cannot read ({exc})") from None
        net = VSMLNet(cfg, record["obs_dim"], self.family.num_actions)
        theta = record["theta"].float()
        if cfg.unit_ids and theta.shape != (net.num_params,):
            raise UnsupportedFamilyError(
                f"checkpoint {path} has identity vectors for another number of actions than the "
                f"{self.family.num_actions} of {self.family.describe()} (unit_ids fixes the action count)"
            )
        if theta.shape != (net.num_params,):
            raise CheckpointError(f"{path} holds {tuple(theta.shape)} parameters, its config needs ({net.num_params},)")
        self.cfg, self.config, self.net, self.theta = cfg, asdict(cfg), net, theta
        self.trained_on, self.train_steps = record["trained_on"], int(record["train_steps"])
        self.generations, self.metrics = int(record.get("generations", 0)), dict(record.get("metrics", {}))
        self.device = device

    @classmethod
    def load(cls, path: str | Path, family: TaskFamily, expect_env: str | None = None) -> VSMLAgent:
        record = cls.read_checkpoint(path)
        agent = cls(family, **record["config"])
        agent.load_weights(path, expect_env=expect_env)
        return agent

    def _theta(self) -> torch.Tensor:
        return self.theta.to(self.device)

    def _check_obs(self, family: TaskFamily, what: str) -> None:
        if _obs_dim(family) != _obs_dim(self.family):
            raise ValueError(
                f"{what} has observations of {_obs_dim(family)} entries, but this agent reads "
                f"{_obs_dim(self.family)} ({self.family.describe()})"
            )


class VSMLIdsAgent(VSMLAgent):
    """VSML with learned identity vectors per input unit and per action (``unit_ids=True``).

    For distributions whose actions and observation features keep their meaning from task
    to task (the gridworlds): cells can tell "up" from "left" at the first step instead of
    finding it out within the trial.  The price is the default's transfer: a checkpoint plays
    only its own number of actions, and a per-task permutation of the actions is exactly what
    the identities cannot absorb (the ``permuted`` suite).
    """

    name = "vsml-ids"
    transfers_across_spaces = False

    def __init__(self, family: TaskFamily, preset: str = "cpu", **config: Any):
        super().__init__(family, preset=preset, **{"unit_ids": True, **config})


def _obs_dim(family: TaskFamily) -> int:
    return int(math.prod(family.obs_shape))


def _pick(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One inverse-CDF sample per row of ``probs`` with the agent's Generator."""
    return inverse_cdf(probs, rng.random((len(probs), 1)))
