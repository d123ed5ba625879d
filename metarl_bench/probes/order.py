"""Order invariance on bandits: does reordering a history with the same counts move the agent's state?

A belief state of a bandit is a function of the counts only (pulls and successes per
arm), so it cannot tell a history from any reordering of it.  For every held-out history
and every cut ``L`` in ``ORDER_CUTS`` (shares of the trial) we force three histories of
``L`` transitions through the agent (``reset``, then ``act`` on observations built from
the given actions and rewards; the agent's own actions are ignored) and compare its
memory after reading the ``L``-th transition:

* the history itself, ``f``;
* a random reordering of its ``L`` (action, reward) pairs: the same counts, ``f_perm``;
* the history of another held-out task, cut at the same ``L``: another posterior,
  ``f_other`` (pairs whose counts happen to coincide are left out).

A cut of the whole trial is ``T - 1`` transitions, so that a decision still follows it.

``order_ratio = sum |f - f_perm|² / sum |f - f_other|²``: 0 for a belief state, about 1
when reordering moves the memory as far as a different posterior does.  Beside it,
``order_perm_distance`` and ``order_other_distance`` are those sums over the memory's
spread at the cut, ``sum |f - mean f|²`` (normalised squared distances).  CIs are 95%
bootstraps over tasks.  Only bandits qualify: their inner observation is constant and
any order of the pairs is a history the family could produce, which fails for a
gridworld (a path cannot be reordered) and for an MDP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metarl_bench.core.agent import Agent, Obs
from metarl_bench.core.family import TaskFamily
from metarl_bench.core.registry import get_spec, list_families
from metarl_bench.evaluation.stats import bootstrap_ci
from metarl_bench.probes.analysis import _per_unit, ratio_of_sums
from metarl_bench.probes.controls import flat_posterior
from metarl_bench.probes.record import ProbeError, has_belief_model

ORDER_CUTS = (0.25, 0.5, 0.75, 1.0)


def is_bandit(family: TaskFamily) -> bool:
    """A bandit: arms with fixed reward distributions (``arm_means``), the families ``require_bandit`` accepts."""
    return callable(getattr(family, "arm_means", None))


def bandits_with_belief() -> list[str]:
    """Registered bandit distributions with a belief model (where order invariance is defined)."""
    out = []
    for name in list_families():
        family = get_spec(name).make()
        if is_bandit(family) and has_belief_model(family):
            out.append(name)
    return out


def check_order_family(family: TaskFamily, env: str) -> None:
    """ProbeError unless order invariance is defined on ``env`` (a bandit with a belief model)."""
    if not is_bandit(family):
        raise ProbeError(
            f"order invariance reorders bandit histories, and {env!r} is no bandit ({family.describe()}); "
            f"distributions it runs on: {', '.join(bandits_with_belief())}"
        )


def observations(family: TaskFamily, inner: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> list[Obs]:
    """The RL² observations of a forced history: ``len(actions[0]) + 1`` of them, the last after the last transition.

    ``inner`` (n, o) is the (constant) inner observation; ``actions`` and ``rewards`` (n, L).
    """
    n, L = actions.shape
    k = family.num_actions
    eye = np.eye(k, dtype=np.float32)
    out = []
    for s in range(L + 1):
        first = s == 0
        out.append(
            {
                "obs": np.asarray(inner, np.float32).reshape(n, *family.obs_shape).copy(),
                "prev_action": np.zeros((n, k), np.float32) if first else eye[actions[:, s - 1]],
                "prev_reward": np.zeros((n, 1), np.float32) if first else rewards[:, s - 1 : s].astype(np.float32),
                "new_episode": np.full((n, 1), float(first), np.float32),
            }
        )
    return out


def replay(agent: Agent, family: TaskFamily, inner: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> np.ndarray:
    """The agent's features after reading each observation of a forced history: (n, L + 1, d)."""
    n = len(actions)
    memory = agent.reset(n, rng=np.random.default_rng(0))  # its actions are ignored: any stream will do
    feats = []
    for obs in observations(family, inner, actions, rewards):
        _, memory = agent.act(obs, memory)
        feats.append(np.asarray(agent.features(memory), np.float64))
    return np.stack(feats, axis=1)


def posterior_after(family: TaskFamily, actions: np.ndarray, rewards: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The flat posterior after the transitions (n, L)."""
    belief = family.prior(len(actions))
    obs = np.asarray(inner, np.float32).reshape(len(actions), *family.obs_shape)
    for s in range(actions.shape[1]):
        belief = family.update_belief(belief, actions[:, s], rewards[:, s], obs)
    return flat_posterior(family, belief)


@dataclass
class OrderFigure:
    value: float
    ci: tuple[float, float]


@dataclass
class OrderResult:
    """Order invariance of one subject (module doc)."""

    ratio: OrderFigure
    perm_distance: OrderFigure
    other_distance: OrderFigure


@dataclass
class OrderPlan:
    """The forced histories, shared by every subject: cuts, reorderings, partners."""

    cuts: list[int]
    perms: list[np.ndarray]  # per cut, (n, L) orders of the first L steps
    partner: np.ndarray  # (n,): whose history is "another posterior"
    differ: list[np.ndarray]  # per cut, (n,) whether the partner's posterior differs


def plan_order(
    family: TaskFamily, inner: np.ndarray, actions: np.ndarray, rewards: np.ndarray, rng: np.random.Generator
) -> OrderPlan:
    """Cuts, one reordering per history and cut, and a partner history (a derangement) for every history."""
    n, T = actions.shape
    if n < 2:
        raise ProbeError("order invariance needs at least 2 held-out histories")
    cuts = sorted({min(max(1, int(round(c * T))), T - 1) for c in ORDER_CUTS})  # a decision follows every cut
    perms = [np.argsort(rng.random((n, L)), axis=1) for L in cuts]
    order = rng.permutation(n)
    partner = np.empty(n, np.int64)
    partner[order] = np.roll(order, -1)  # a cycle through all histories: nobody is their own partner
    differ = []
    for L in cuts:
        post = posterior_after(family, actions[:, :L], rewards[:, :L], inner)
        differ.append(np.abs(post - post[partner]).max(axis=1) > 1e-12)
    return OrderPlan(cuts, perms, partner, differ)


def order_invariance(
    agent: Agent,
    family: TaskFamily,
    plan: OrderPlan,
    inner: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    units: np.ndarray,
    seed: int = 0,
) -> OrderResult:
    """Order invariance of ``agent`` on the histories (n, T) of ``plan``; ``units`` (n,) names each one's task."""
    last = plan.cuts[-1]
    full = replay(agent, family, inner, actions[:, :last], rewards[:, :last])  # (n, last + 1, d)
    uniq, inv = np.unique(units, return_inverse=True)
    sums = {key: np.zeros(len(uniq)) for key in ("perm", "other", "spread", "perm_kept")}
    rows = np.arange(len(actions))[:, None]
    for L, perm, differ in zip(plan.cuts, plan.perms, plan.differ, strict=True):
        f = full[:, L]
        shuffled = replay(agent, family, inner, actions[rows, perm], rewards[rows, perm])[:, L]
        d_perm = ((f - shuffled) ** 2).sum(axis=1)
        d_other = ((f - f[plan.partner]) ** 2).sum(axis=1) * differ
        spread = ((f - f.mean(axis=0)) ** 2).sum(axis=1)
        for key, value in (("perm", d_perm), ("other", d_other), ("spread", spread), ("perm_kept", d_perm * differ)):
            sums[key] += _per_unit(value, inv, len(uniq))

    def figure(num: np.ndarray, den: np.ndarray) -> OrderFigure:
        value = float(ratio_of_sums(num, den)) if den.sum() > 0 else float("nan")
        return OrderFigure(value, bootstrap_ci(ratio_of_sums, num, den, seed=seed))

    return OrderResult(
        ratio=figure(sums["perm_kept"], sums["other"]),
        perm_distance=figure(sums["perm"], sums["spread"]),
        other_distance=figure(sums["other"], sums["spread"]),
    )
