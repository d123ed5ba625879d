"""The VSML network (Kirsch & Schmidhuber 2021) wired for RL (Kirsch et al. 2022): its parameters and batched step.

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
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from metarl_bench.baselines.vsml.config import VSMLConfig
from metarl_bench.core.agent import Obs


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


def obs_tensors(obs: Obs, members: int, device: torch.device | str) -> tuple[torch.Tensor, ...]:
    """The RL² observation batch (members * trials rows, member-major) as (P, N, ...) tensors.

    Takes numpy arrays (``TrialEnv``) or tensors already on the device (``TorchTrialEnv``).
    """

    def t(x: np.ndarray | torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            x = np.asarray(x, np.float32)
        x = torch.as_tensor(x, dtype=torch.float32, device=device)
        return x.reshape(members, x.shape[0] // members, -1)

    return t(obs["obs"]), t(obs["prev_action"]), t(obs["prev_reward"])[..., 0], t(obs["new_episode"])[..., 0]
