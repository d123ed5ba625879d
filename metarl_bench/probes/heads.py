"""An agent's policy head: its action probabilities computed from a given memory vector.

The simulation's belief -> agent test maps a belief to a memory and asks what the agent
would do from that memory, so it needs ``features -> action probabilities``: the optional
agent hook ``policy_from_features(features) -> probs`` ((n, d) -> (n, k)).  An agent that
defines it is taken at its word; for the shipped architectures, whose classes live in
``metarl_bench.baselines`` (a layer the probes may not import), this module reads the head
off the trained modules the agent exposes:

* **RL²** (an sb3-contrib recurrent policy, ``agent.model.policy``): the memory is the
  LSTM's ``[h, c]`` and the policy is ``softmax(action_net(mlp_extractor.forward_actor(h)))``,
  exactly what ``get_distribution`` computes after its LSTM step.
* **VSML** (``agent.net``, a ``VSMLNet``, and ``agent.theta``): the memory is every
  layer's cell states ``[h_0, .., c_0, ..]``; the logits are channel 0 of the output
  layer's forward message, ``bound(mean_a h[a, b] @ w_out + b_out)``, computed from the
  cells' ``h`` after the last micro-tick, which is what the memory holds.

A head read off like this depends on another layer's internals, so :func:`checked_head`
compares it with the agent's own ``action_probs`` on recorded steps before it is used, and
refuses it (with the reason) where they differ: a change to either agent shows up as a
missing head, never as a wrong number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

Head = Callable[[np.ndarray], np.ndarray]  # features (n, d) -> action probabilities (n, k)
HEAD_TOLERANCE = 1e-4  # largest |head(features) - action_probs| accepted on the recorded steps


def _sb3_recurrent_head(agent: Any) -> Head | None:
    policy = getattr(getattr(agent, "model", None), "policy", None)
    if policy is None or not all(hasattr(policy, a) for a in ("lstm_actor", "mlp_extractor", "action_net")):
        return None
    hidden = policy.lstm_actor.hidden_size
    device = next(policy.parameters()).device

    @torch.no_grad()
    def head(features: np.ndarray) -> np.ndarray:
        h = torch.as_tensor(np.asarray(features)[:, :hidden], dtype=torch.float32, device=device)
        logits = policy.action_net(policy.mlp_extractor.forward_actor(h))
        return torch.softmax(logits.double(), dim=-1).cpu().numpy()

    return head


def _vsml_head(agent: Any) -> Head | None:
    net, theta = getattr(agent, "net", None), getattr(agent, "theta", None)
    if net is None or theta is None or not all(hasattr(net, a) for a in ("cfg", "unflatten", "init_c")):
        return None
    cfg, k = net.cfg, agent.num_actions
    hidden, message = cfg.hidden_size, cfg.message_size
    params = net.unflatten(torch.as_tensor(theta).detach().cpu().float()[None])
    w_out, b_out = params["w_out"][0, :, :message], params["b_out"][0, :message]
    # cells of each layer: (inputs, outputs); the output layer's outputs are the arms
    grids = [(net.num_inputs, net.layer_outputs(0) or k)]
    if cfg.num_layers == 2:
        grids.append((cfg.hidden_units, k))
    offset = sum(a * b * hidden for a, b in grids[:-1])  # h of the earlier layers comes first
    inputs = grids[-1][0]

    @torch.no_grad()
    def head(features: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
        h = x[:, offset : offset + inputs * k * hidden].reshape(len(x), inputs, k, hidden)
        fwd = h.mean(dim=1) @ w_out + b_out  # (n, k, message): the forward message to each arm
        bound = cfg.output_bound
        logits = bound * (2 * torch.sigmoid(2 * fwd[..., 0] / bound) - 1)  # c tanh(x / c), as the network computes it
        return torch.softmax(logits.double(), dim=-1).numpy()

    return head


def policy_head(agent: Any) -> Head | None:
    """The agent's ``policy_from_features`` hook, else the head read off a shipped architecture, else None."""
    own = getattr(agent, "policy_from_features", None)
    if callable(own):
        return own
    for reader in (_sb3_recurrent_head, _vsml_head):
        head = reader(agent)
        if head is not None:
            return head
    return None


def checked_head(agent: Any, features: np.ndarray, probs: np.ndarray) -> tuple[Head | None, str]:
    """The head, if it reproduces ``probs`` (n, k) from ``features`` (n, d) recorded at the same steps.

    Returns (head, "") or (None, why not).
    """
    head = policy_head(agent)
    if head is None:
        return None, f"agent {agent.name!r} exposes no policy_from_features(features) and is no known architecture"
    try:
        got = np.asarray(head(features), np.float64)
    except (RuntimeError, ValueError, IndexError) as exc:
        return None, f"policy head of {agent.name!r} failed on its own memory ({type(exc).__name__}: {exc})"
    if got.shape != probs.shape:
        return None, f"policy head of {agent.name!r} returned shape {got.shape}, action_probs {probs.shape}"
    gap = float(np.abs(got - probs).max()) if len(probs) else 0.0
    if gap > HEAD_TOLERANCE:
        return None, f"policy head of {agent.name!r} differs from its action_probs by {gap:.2g} on its own memory"
    return head, ""
