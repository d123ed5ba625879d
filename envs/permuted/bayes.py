"""The Bayes reference of the permuted gridworlds: policies on the posterior over goal x permutations.

**Belief.**  A hypothesis is (feature order sigma, action permutation pi, goal g), uniform
under the prior.  Given sigma the agent's true position is known from its observation, so
a move reveals which base actions its action could be (constraining pi) and a reward
reveals whether the cell entered is the goal (constraining g); the two constraints are
independent given sigma.  The posterior is therefore kept exactly as, per sigma, a mask
over the permutations and a mask over the goals (per trial: 2 x 120 + 2 x cells booleans
instead of 2 x 120 x cells).  The one coupling step is the last step of an inner episode,
whose landing cell is not observed (the next observation is the start): there the masks
are narrowed only by what holds for every consistent permutation, so the masks always
contain the truth and may be slightly wider than the exact posterior.

**Policies.**  Two are built on that belief, and the reference is the better one:

* ``PermutedCEPolicy`` (``lower-bound:ce-bayes``, the reference): certainty equivalence
  on the permutations, Bayes on the goal.  Each step it takes one consistent (sigma, pi)
  and plays the unpermuted grid's Bayes policy on the goal posterior under sigma,
  translated through pi; a wrong guess shows itself at once and is ruled out.
* ``PermutedQMDPPolicy`` (``lower-bound:qmdp``, Littman et al. 1995): each action valued by
  its posterior-summed known-task value.  It acts as if the task will be known after this
  step, so it never pays for information for its own sake and dithers between goals;
  kept as the second method the README compares.

**Upper bound.**  The unpermuted grid's Bayes-optimal value: an agent told the
permutations faces the unpermuted problem, and being told can only help.
"""

from __future__ import annotations

import functools
from itertools import permutations
from typing import Any

import numpy as np

from metarl_bench.core.agent import Agent, Obs, UnsupportedFamilyError, fresh_rng
from metarl_bench.core.family import Arrays, BayesReference, TaskFamily
from metarl_bench.envs.gridworlds.family import known_task_dp
from metarl_bench.envs.permuted.family import PermutedGoalGrid


def reference(family: PermutedGoalGrid) -> BayesReference:
    policy = PermutedCEPolicy  # measured above QMDP on both built-in variants (README)
    return BayesReference(
        policy.method, functools.partial(policy, family), upper_bound=functools.partial(upper_bound, family)
    )


def upper_bound(family: PermutedGoalGrid) -> float:
    """The unpermuted grid's Bayes value (exact where tractable, else its own upper bound)."""
    base_ref = family.base.bayes_reference()
    return base_ref.expected_return() if base_ref.exact else base_ref.upper()


@functools.lru_cache(maxsize=8)
def _tables(family: PermutedGoalGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Q (goal, step, cell, base action), permutations (P, k), feature orders (S, d))."""
    base = family.base
    q = np.zeros((base.num_cells, base.horizon, base.num_cells, base.num_actions))
    for goal in base.candidates:
        rewards = np.where(base.next_cell == goal, 1.0, base.step_reward)
        value, _ = known_task_dp(base.next_cell, rewards, base.horizon)
        q[goal] = rewards[None] + value[1:][:, base.next_cell]
    k, d = base.num_actions, base.obs_shape[0]
    perms = np.array(list(permutations(range(k))) if family.permute_actions else [range(k)], np.int64)
    orders = np.array(list(permutations(range(d))) if family.permute_obs else [range(d)], np.int64)
    return q, perms, orders


class _PermutationBelief(Agent):
    """The factored posterior over feature order x action permutation x goal (module doc)."""

    name = "bayes"

    def __init__(self, family: TaskFamily, **config: Any):
        if not isinstance(family, PermutedGoalGrid):
            raise UnsupportedFamilyError(
                f"the permuted-grid QMDP policy plays permuted goal grids, not {family.describe()}"
            )
        super().__init__(family, **config)
        self.q, self.perms, self.orders = _tables(family)
        k = family.num_actions
        # perm_maps[p, a, b] = 1 where permutation p sends the agent's action a to base action b
        self.perm_maps = np.zeros((len(self.perms), k, k))
        for p, perm in enumerate(self.perms):
            self.perm_maps[p, np.arange(k), perm] = 1.0

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        base, S = self.family.base, len(self.orders)
        return {
            "rng": np.random.default_rng(rng),
            "perm_ok": np.ones((num_trials, S, len(self.perms)), bool),
            "goal_ok": np.tile(base.candidate_mask, (num_trials, S, 1)),
            "pos": np.full((num_trials, S), base.start, np.int64),
            "t": 0,
        }

    def cells(self, obs: np.ndarray) -> np.ndarray:
        """The true cell (n, S) under each feature order: base feature orders[s, j] is observed feature j."""
        xy = np.rint(np.asarray(obs)).astype(np.int64)
        base = np.empty((len(xy), len(self.orders), xy.shape[1]), np.int64)
        for s, order in enumerate(self.orders):
            base[:, s, order] = xy
        return base[..., 1] * self.family.base.size + base[..., 0]

    def observe(self, obs: Obs, memory: Any) -> dict[str, Any]:
        """The posterior masks after the previous transition."""
        base = self.family.base
        one_hot = obs["prev_action"]
        has_prev = one_hot.any(axis=1)
        pos = self.cells(obs["obs"])
        if not has_prev.any():
            return {**memory, "pos": pos}
        action = one_hot.argmax(axis=1)
        found = obs["prev_reward"][:, 0] > 0.5
        reset = obs["new_episode"][:, 0] > 0.5  # the landing cell is not shown: the start is
        perm_ok, goal_ok = memory["perm_ok"].copy(), memory["goal_ok"].copy()
        n, S, G = goal_ok.shape
        rows = np.arange(n)
        # landing[n, s, p]: the cell each permutation's reading of the action leads to
        base_action = self.perms[:, action].T  # (n, P)
        landing = base.next_cell[memory["pos"][:, :, None], base_action[:, None, :]]
        seen = has_prev & ~reset
        # a seen move: permutations must explain it; the entered cell is or is not the goal
        explains = landing == pos[:, :, None]
        perm_ok[seen] &= explains[seen]
        entered = np.zeros((n, S, G), bool)
        entered[rows[:, None], np.arange(S)[None, :], pos] = True
        goal_ok[seen & found] &= entered[seen & found]
        goal_ok[seen & ~found] &= ~entered[seen & ~found]
        # an unseen landing (the episode's last step): narrow only by what every consistent
        # permutation agrees on
        hidden = has_prev & reset
        if hidden.any():
            lands = np.zeros((n, S, G), bool)
            ok = perm_ok & hidden[:, None, None]
            i, s, p = np.nonzero(ok)
            lands[i, s, landing[i, s, p]] = True
            hit = hidden & found
            perm_ok[hit] &= np.take_along_axis(goal_ok, landing, axis=2)[hit]  # landed on a possible goal
            goal_ok[hit] &= lands[hit]
            unique = (hidden & ~found)[:, None] & (lands.sum(axis=2) == 1)  # (n, S)
            goal_ok[unique] &= ~lands[unique]
        return {**memory, "perm_ok": perm_ok, "goal_ok": goal_ok, "pos": pos}


class PermutedQMDPPolicy(_PermutationBelief):
    """QMDP on the posterior: each action valued by its posterior-summed known-task value."""

    method = "lower-bound:qmdp"

    def action_values(self, memory: Any) -> np.ndarray:
        """Posterior-summed known-task values (n, k) at the current step (unnormalised)."""
        step = memory["t"] % self.family.horizon
        q_now = self.q[:, step]  # (G, cells, b)
        q_here = q_now[:, memory["pos"]]  # (G, n, S, b)
        by_base = np.einsum("nsg,gnsb->nsb", memory["goal_ok"].astype(float), q_here)
        maps = np.einsum("nsp,pab->nsab", memory["perm_ok"].astype(float), self.perm_maps)
        return np.einsum("nsab,nsb->na", maps, by_base)

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        memory = self.observe(obs, memory)
        values = self.action_values(memory)
        rng = fresh_rng(memory["rng"])
        scale = np.abs(values).max(axis=1, keepdims=True) + 1.0
        best = values >= values.max(axis=1, keepdims=True) - 1e-9 * scale
        actions = np.where(best, rng.random(best.shape), -1.0).argmax(axis=1)
        return actions, {**memory, "rng": rng, "t": memory["t"] + 1}


class PermutedCEPolicy(_PermutationBelief):
    """Certainty equivalence on the permutations, Bayes on the goal.

    Each step takes one hypothesis (sigma, pi) still consistent with what the trial showed
    (drawn at random), and plays the unpermuted grid's Bayes policy on the goal posterior
    under sigma, translated through pi.  A wrong guess shows itself at once (the move lands
    elsewhere) and is ruled out, so after a few moves the permutation is known and the
    policy is the base grid's Bayes policy.
    """

    method = "lower-bound:ce-bayes"

    def __init__(self, family: TaskFamily, **config: Any):
        super().__init__(family, **config)
        from metarl_bench.envs.gridworlds.bayes import GridBayesPolicy

        self.base_policy = GridBayesPolicy(family.base)

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        self.base_policy.reset(1)  # solve (or load) the base plan now, not inside the first act
        return super().reset(num_trials, rng, tasks)

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        memory = self.observe(obs, memory)
        rng = fresh_rng(memory["rng"])
        perm_ok, goal_ok = memory["perm_ok"], memory["goal_ok"]
        n = len(perm_ok)
        rows = np.arange(n)
        # sigma: a consistent feature order (random among them), then pi: a consistent permutation
        sigma_ok = perm_ok.any(axis=2) & goal_ok.any(axis=2)
        sigma = np.where(sigma_ok, rng.random(sigma_ok.shape), -1.0).argmax(axis=1)
        perms_ok = perm_ok[rows, sigma]
        perm = np.where(perms_ok, rng.random(perms_ok.shape), -1.0).argmax(axis=1)
        belief = {"pos": memory["pos"][rows, sigma], "possible": goal_ok[rows, sigma]}
        wanted = self.base_policy.actions_for(belief, memory["t"])  # base actions
        inverse = np.argsort(self.perms[perm], axis=1)  # base action -> the agent's action under pi
        actions = inverse[rows, wanted]
        return actions, {**memory, "rng": rng, "t": memory["t"] + 1}
