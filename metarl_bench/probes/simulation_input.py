"""What the simulation analysis can run on, checked before any work (one-line errors that name what is allowed).

It needs an agent that exposes its memory (``features``) and its policy (``action_probs``),
and a distribution with a belief model (``prior``, ``update_belief``, ``belief_features``)
and a Bayes reference (``TaskFamily.bayes_reference``); order invariance (``--order on``)
needs a bandit.
"""

from __future__ import annotations

from typing import Any

from metarl_bench.core.agent import Agent
from metarl_bench.core.registry import get_agent_factory, get_spec, list_families
from metarl_bench.probes.order import check_order_family
from metarl_bench.probes.record import (
    ProbeError,
    agents_with_features,
    check_agent_and_family,
    check_probeable,
    has_belief_model,
)

ORDER_MODES = ("auto", "on", "off")


def _has_action_probs(factory: Any) -> bool:
    return callable(getattr(factory, "action_probs", None))


def agents_for_simulation() -> list[str]:
    """Registered agents with features() and action_probs."""
    return [n for n in agents_with_features() if _has_action_probs(get_agent_factory(n))]


def families_for_simulation() -> list[str]:
    """Registered distributions with a belief model and a Bayes reference."""
    out = []
    for name in list_families():
        family = get_spec(name).make()
        try:
            if has_belief_model(family) and family.bayes_reference() is not None:
                out.append(name)
        except (RuntimeError, ValueError, OSError):  # a reference that cannot be built here is none to offer
            continue
    return out


def _refuse_no_action_probs(name: str) -> None:
    raise ProbeError(
        f"agent {name!r} exposes no action_probs(obs, memory), which the simulation compares with the Bayes policy; "
        f"agents with features() and action_probs: {', '.join(agents_for_simulation())}"
    )


def _refuse_no_reference(env: str) -> None:
    raise ProbeError(
        f"distribution {env!r} declares no Bayes reference (TaskFamily.bayes_reference), so there is no Bayes "
        f"policy to simulate; distributions with a belief model and one: {', '.join(families_for_simulation())}"
    )


def check_simulation_input(agent_name: str, env: str, order: str = "auto") -> None:
    """The command line's checks before any work: what ``check_simulatable`` checks, by registered names."""
    check_probeable(agent_name, env)
    factory = get_agent_factory(agent_name)
    if isinstance(factory, type) and not _has_action_probs(factory):  # a plain factory is checked when built
        _refuse_no_action_probs(agent_name)
    family = get_spec(env).make()
    if family.bayes_reference() is None:
        _refuse_no_reference(env)
    if order not in ORDER_MODES:
        raise ProbeError(f"--order must be one of {', '.join(ORDER_MODES)}, got {order!r}")
    if order == "on":
        check_order_family(family, env)


def check_simulatable(agent: Agent, env: str, order: str = "auto") -> None:
    """ProbeError unless ``agent`` exposes features() and action_probs and ``env`` has a belief model and a Bayes
    reference (and is a bandit when ``order`` is "on")."""
    check_agent_and_family(agent, env)
    if not _has_action_probs(agent):
        _refuse_no_action_probs(agent.name)
    if agent.family.bayes_reference() is None:
        _refuse_no_reference(env)
    if order not in ORDER_MODES:
        raise ProbeError(f"order must be one of {', '.join(ORDER_MODES)}, got {order!r}")
    if order == "on":
        check_order_family(agent.family, env)
