"""Exact Bayes-optimal planning for the bandit families, and the reference they declare.

The Bayes-optimal policy maximises the expected *undiscounted* trial return under the
family's prior.  For Beta-Bernoulli bandits the belief is the per-arm counts of
successes and failures, so backward induction over those counts is exact (Bellman
1956; Gittins, Glazebrook & Weber 2011, ch. 1).  Three planners share one convention:
``V_t(state)`` is the expected reward still to come after ``t`` pulls, ``V_H = 0``.

* ``solve_k2``: two independent arms.  Layer ``t`` holds the states
  ``(s1, f1, s2, f2)`` with ``s1+f1+s2+f2 = t``, stored as blocks by ``n1 = s1+f1``;
  block ``n1`` is an ``(n1+1, n2+1)`` matrix over ``(s1, s2)``, so the successors of a
  whole block are four slices of two blocks of layer ``t+1``.  Swapping the arms
  transposes a block, so only blocks with ``n1 <= t/2`` are computed and kept.
* ``solve_general``: any ``k``.  Arms are exchangeable, so a state is the multiset of
  the arms' ``(s, f)`` pairs (unpulled arms are the pair ``(0, 0)``).  Pairs are coded
  by integers, a state is the sorted row of its codes, and its key is the sum of a
  fixed random 64-bit hash over the codes (order-free, so a successor's key is
  ``key - h[c] + h[c']``).  Layers are enumerated forwards and solved backwards, all
  in numpy; the number of keys per layer is checked against the exact count of
  multisets, so a hash collision cannot go unnoticed.
* ``solve_dependent``: arms ``(p, 1-p)``.  The belief is one Beta over ``p`` and
  both arms give the same evidence distribution, so ``Q_0 - Q_1 = 2 E[p] - 1``: the
  greedy arm is Bayes-optimal and the value is an O(H^2) recursion over
  ``(t, evidence for p)``.

Memory: the policy tables take 2 bits per k=2 state and 16 bytes per (state, distinct
pair) for general k.  Time and peak memory per (k, H) are printed by
``python benchmarks/planner_table.py`` (figures in README.md); the limits below keep
every tractable case within seconds and a few hundred MB.

``tractable`` therefore accepts: one arm always; ``k = 2`` up to ``H = K2_MAX_HORIZON``
(500); general ``k`` while the decision states number at most ``GENERAL_MAX_STATES``
(1e6: every ``k`` with ``H <= 20``, e.g. k=50 H=20; k=3 up to H=37, k=4 up to H=27,
k=5 up to H=23); dependent arms up to ``DEPENDENT_MAX_HORIZON`` (20000); a Bernoulli
family with fixed ``probs`` (a one-task distribution, whose Bayes-optimal policy is the
oracle) always.  Anything else (larger ``k * H``, Gaussian bandits, unknown families)
has no exact value: :func:`reference` names the policy played instead,
``"lower-bound:<policy>"``: the Gittins index policy (discount 0.98) for Bernoulli bandits,
which beat Bayes-UCB on every intractable distribution of the suites (README.md, the
bandits leaderboard); Bayes-UCB (Kaufmann, Cappé & Garivier 2012) with quantile
``1 - 1/(t+1)`` at the ``t``-th pull for Gaussian bandits; greedy for dependent arms past
the limit (still optimal, only its value is not computed); other families get no reference
(``None``).

The Gittins index policy is an agent (``gittins``, ``metarl_bench.baselines.gittins``; its
indices come from ``gittins.py`` here), and a family imports no agent: the planner looks it
up by its registered name in the registry (``make_agent``) when a policy is built.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import betaincinv, ndtri

from metarl_bench.core.agent import Agent, Obs, UnsupportedFamilyError, last_transition
from metarl_bench.core.family import (
    EXACT,
    LOWER_BOUND,
    Arrays,
    BayesReference,
    TaskFamily,
    check_positive_float,
    check_positive_int,
)
from metarl_bench.core.registry import make_agent
from metarl_bench.envs.bandits.family import BernoulliBandit, DependentBernoulliBandit, GaussianBandit

K2_MAX_HORIZON = 500
GENERAL_MAX_STATES = 1_000_000
DEPENDENT_MAX_HORIZON = 20_000
TIE_TOL = 1e-9  # Q values closer than this are ties, broken towards the lowest arm index
FALLBACK = "bayes-ucb"  # Gaussian bandits; Bernoulli ones use the stronger Gittins index policy
GITTINS = "gittins"  # the registered agent name of the Gittins index policy (played by name)


@dataclass
class Plan:
    """What a planner returns: the value at the empty belief, the number of belief states
    it evaluated, and (when asked for) the tables the agent acts on."""

    value: float
    num_states: int
    policy: Any = None


def _check_prior(horizon: int, alpha: float, beta: float) -> tuple[int, float, float]:
    horizon = check_positive_int("horizon", horizon)
    return horizon, check_positive_float("alpha", alpha), check_positive_float("beta", beta)


# ----------------------------------------------------------------------------- k = 2


def _k2_layout(horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets of the kept half-blocks: ``block_off[t, n1]`` inside layer ``t``, the layer
    sizes, and each layer's first byte in the packed policy bits."""
    t = np.arange(horizon + 1)[:, None]
    n1 = np.arange(horizon // 2 + 1)[None, :]
    sizes = np.where(n1 <= t // 2, (n1 + 1) * (t - n1 + 1), 0)
    block_off = np.cumsum(sizes, axis=1) - sizes
    layer_sizes = sizes.sum(axis=1)
    layer_bytes = (layer_sizes + 7) // 8
    return block_off, layer_sizes, np.concatenate([[0], np.cumsum(layer_bytes)])


def _k2_block(layer: list[np.ndarray], t: int, n1: int) -> np.ndarray:
    """Block ``n1`` of layer ``t``; blocks past the middle are transposes (arm swap)."""
    return layer[n1] if n1 <= t // 2 else layer[t - n1].T


def solve_k2(horizon: int, alpha: float = 1.0, beta: float = 1.0, policy: bool = False) -> Plan:
    """Bayes-optimal value of a two-armed Beta(alpha, beta)-Bernoulli bandit over ``horizon`` pulls.

    With ``policy=True`` the plan also holds a :class:`K2Policy` (two bits per kept state).
    """
    horizon, alpha, beta = _check_prior(horizon, alpha, beta)
    block_off, layer_sizes, layer_byte = _k2_layout(horizon)
    bits = [np.zeros(layer_byte[-1], np.uint8), np.zeros(layer_byte[-1], np.uint8)] if policy else None
    nxt = [np.zeros((n1 + 1, horizon - n1 + 1)) for n1 in range(horizon // 2 + 1)]
    for t in range(horizon - 1, -1, -1):
        cur = []
        better = np.zeros((2, layer_sizes[t]), bool) if policy else None
        for n1 in range(t // 2 + 1):
            n2 = t - n1
            m1 = ((alpha + np.arange(n1 + 1)) / (alpha + beta + n1))[:, None]
            m2 = ((alpha + np.arange(n2 + 1)) / (alpha + beta + n2))[None, :]
            b, c = _k2_block(nxt, t + 1, n1 + 1), _k2_block(nxt, t + 1, n1)
            # Q = V_fail + m * (1 + V_success - V_fail), in place to stay in cache
            q1 = b[1:] - b[:-1]
            q1 += 1.0
            q1 *= m1
            q1 += b[:-1]
            q2 = c[:, 1:] - c[:, :-1]
            q2 += 1.0
            q2 *= m2
            q2 += c[:, :-1]
            if policy:
                lo = block_off[t, n1]
                better[0, lo : lo + q1.size] = (q1 > q2 + TIE_TOL).ravel()
                better[1, lo : lo + q1.size] = (q2 > q1 + TIE_TOL).ravel()
            cur.append(np.maximum(q1, q2, out=q1))
        if policy:
            for arm in (0, 1):
                packed = np.packbits(better[arm])
                bits[arm][layer_byte[t] : layer_byte[t] + packed.size] = packed
        nxt = cur
    num_states = int(layer_sizes[:horizon].sum())
    plan_policy = K2Policy(horizon, block_off, layer_byte, bits[0], bits[1]) if policy else None
    return Plan(float(nxt[0][0, 0]), num_states, plan_policy)


@dataclass
class K2Policy:
    """Packed decisions of :func:`solve_k2`: for every kept state, whether the block's first
    arm (``better0``) or second arm (``better1``) is strictly better by more than TIE_TOL."""

    horizon: int
    block_off: np.ndarray
    layer_byte: np.ndarray
    better0: np.ndarray
    better1: np.ndarray

    def act(self, successes: np.ndarray, failures: np.ndarray) -> np.ndarray:
        """Optimal arm for each row of counts, shape (n, 2) each; ties go to arm 0."""
        s0, s1 = successes[:, 0], successes[:, 1]
        n1, n2 = s0 + failures[:, 0], s1 + failures[:, 1]
        t = n1 + n2
        if t.size and t.max() >= self.horizon:
            raise ValueError(f"{t.max()} pulls is past the planner's horizon of {self.horizon}")
        swap = n1 > t // 2  # only blocks with n1 <= t/2 are kept: read the mirrored state
        a_s, a_n = np.where(swap, s1, s0), np.where(swap, n2, n1)
        b_s, b_n = np.where(swap, s0, s1), np.where(swap, n1, n2)
        idx = self.block_off[t, a_n] + a_s * (b_n + 1) + b_s
        byte, shift = self.layer_byte[t] + (idx >> 3), 7 - (idx & 7)
        first_better = (self.better0[byte] >> shift) & 1
        second_better = (self.better1[byte] >> shift) & 1
        return np.where(swap, first_better, second_better).astype(np.int64)


# ----------------------------------------------------------------------------- any k


def count_states(k: int, horizon: int) -> int:
    """Belief states of a k-armed Beta-Bernoulli bandit (multisets of k (s, f) pairs) with
    fewer than ``horizon`` pulls, i.e. the states at which a decision is made.

    The generating function is ``prod_n (1 - y x^n)^-(n+1)`` (n+1 pairs have s+f = n; the
    power of y counts pulled arms, at most k).  Floating point: exact below 2**53.
    """
    k, horizon = check_positive_int("k", k), check_positive_int("horizon", horizon)
    return int(round(_layer_counts(k, horizon - 1).sum()))


def _layer_counts(k: int, top: int) -> np.ndarray:
    """Number of multisets with total pulls t, for t = 0..top (float64)."""
    w = min(k, top)
    poly = np.zeros((top + 1, w + 1))  # [total pulls, pulled arms]
    poly[0, 0] = 1.0
    for n in range(1, top + 1):
        # multiply by (1 - y x^n)^-(n+1) = sum_m C(m+n, n) y^m x^(mn)
        new = poly.copy()
        for m in range(1, min(top // n, w) + 1):
            new[m * n :, m:] += math.comb(m + n, n) * poly[: top + 1 - m * n, : w + 1 - m]
        poly = new
    return poly.sum(axis=1)


@dataclass
class _Pairs:
    """Per-pair tables: pair (s, f) with n = s + f <= horizon has code n(n+1)/2 + s."""

    mean: np.ndarray
    succ_s: np.ndarray
    succ_f: np.ndarray
    hash: np.ndarray

    @property
    def num_codes(self) -> int:
        return len(self.mean)


def _pair_code(successes: np.ndarray, failures: np.ndarray) -> np.ndarray:
    n = successes + failures
    return n * (n + 1) // 2 + successes


def _pairs(horizon: int, alpha: float, beta: float, seed: int) -> _Pairs:
    n = np.repeat(np.arange(horizon + 1), np.arange(1, horizon + 2))
    s = np.arange(len(n)) - n * (n + 1) // 2
    up = (n + 1) * (n + 2) // 2 + s  # code of (s, f+1); (s+1, f) is the next code
    up = np.where(n < horizon, up, 0)
    rng = np.random.default_rng(seed)
    h = rng.integers(0, np.iinfo(np.uint64).max, size=len(n), dtype=np.uint64, endpoint=True)
    h[0] = 0  # unpulled arms contribute nothing, so the key does not depend on k
    return _Pairs((alpha + s) / (alpha + beta + n), np.where(n < horizon, up + 1, 0), up, h)


def _actions(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(state, position) of each distinct pair in each sorted row: the distinct actions."""
    first = np.ones(rows.shape, bool)
    first[:, 1:] = rows[:, 1:] != rows[:, :-1]
    return np.nonzero(first)


def _enumerate(k: int, horizon: int, pairs: _Pairs) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """Rows of sorted pair codes and sorted keys of every layer, or None on a hash collision."""
    width = min(k, horizon)  # at most `horizon` arms are ever pulled; zeros are unpulled arms
    expected = _layer_counts(k, horizon)
    dtype = np.int16 if pairs.num_codes < 2**15 else np.int32
    rows, keys = [np.zeros((1, width), dtype)], [np.zeros(1, np.uint64)]
    for t in range(horizon):
        r, pos = _actions(rows[t])
        c = rows[t][r, pos]
        base = keys[t][r] - pairs.hash[c]
        # successor keys: successes first, then failures; equal keys are the same multiset
        uniq, first = np.unique(
            np.concatenate([base + pairs.hash[pairs.succ_s[c]], base + pairs.hash[pairs.succ_f[c]]]),
            return_index=True,
        )
        if len(uniq) != round(expected[t + 1]):
            return None
        act = first % len(c)
        succ = np.where(first < len(c), pairs.succ_s[c[act]], pairs.succ_f[c[act]])
        new = rows[t][r[act]]
        new[np.arange(len(act)), pos[act]] = succ
        new.sort(axis=1)
        rows.append(new)
        keys.append(uniq)
    return rows, keys


def solve_general(k: int, horizon: int, alpha: float = 1.0, beta: float = 1.0, policy: bool = False) -> Plan:
    """Bayes-optimal value of a k-armed Beta(alpha, beta)-Bernoulli bandit, by backward
    induction over multisets of arm counts.  With ``policy=True`` the plan holds a
    :class:`GeneralPolicy` (Q of every distinct action in every state)."""
    k = check_positive_int("k", k)
    horizon, alpha, beta = _check_prior(horizon, alpha, beta)
    for seed in range(8):  # a collision (chance ~ states^2 / 2^64) just redraws the hash
        pairs = _pairs(horizon, alpha, beta, seed)
        layers = _enumerate(k, horizon, pairs)
        if layers is not None:
            break
    else:
        raise RuntimeError("solve_general: hash collisions with 8 seeds; this should not happen")
    rows, keys = layers
    value = np.zeros(len(keys[horizon]))
    tables: list = [None] * horizon
    for t in range(horizon - 1, -1, -1):
        r, pos = _actions(rows[t])
        c = rows[t][r, pos].astype(np.int64)
        base = keys[t][r] - pairs.hash[c]
        v_s = value[np.searchsorted(keys[t + 1], base + pairs.hash[pairs.succ_s[c]])]
        v_f = value[np.searchsorted(keys[t + 1], base + pairs.hash[pairs.succ_f[c]])]
        m = pairs.mean[c]
        q = v_f + m * (1.0 + v_s - v_f)
        starts = np.flatnonzero(np.diff(r, prepend=-1))  # every state has at least one action
        value = np.maximum.reduceat(q, starts)
        rows[t + 1] = None  # no longer needed: free as we go
        if policy:
            tables[t] = (keys[t], r * pairs.num_codes + c, q)  # action keys sorted: r, then c
    num_states = sum(len(kk) for kk in keys[:horizon])
    return Plan(float(value[0]), num_states, GeneralPolicy(pairs, tables) if policy else None)


@dataclass
class GeneralPolicy:
    """Q tables of :func:`solve_general`, looked up by state key and pair code."""

    pairs: _Pairs
    tables: list[tuple[np.ndarray, np.ndarray, np.ndarray]]

    def q_values(self, successes: np.ndarray, failures: np.ndarray) -> np.ndarray:
        """Q of every arm for each row of counts (n, k); all rows must be inside the horizon."""
        codes = _pair_code(successes, failures)
        keys = self.pairs.hash[codes].sum(axis=1)  # uint64 sums wrap, as in the solver
        t_rows = (successes + failures).sum(axis=1)
        q = np.empty(codes.shape)
        for t in np.unique(t_rows):
            if t >= len(self.tables):
                raise ValueError(f"{t} pulls is past the planner's horizon of {len(self.tables)}")
            sel = t_rows == t
            state_keys, action_keys, q_t = self.tables[t]
            state = np.minimum(np.searchsorted(state_keys, keys[sel]), len(state_keys) - 1)
            if np.any(state_keys[state] != keys[sel]):
                raise ValueError("counts do not form a belief state of this planner")
            q[sel] = q_t[np.searchsorted(action_keys, state[:, None] * self.pairs.num_codes + codes[sel])]
        return q

    def act(self, successes: np.ndarray, failures: np.ndarray) -> np.ndarray:
        return _first_max(self.q_values(successes, failures))


def _first_max(q: np.ndarray) -> np.ndarray:
    """Row-wise argmax with near-ties (within TIE_TOL) broken towards the lowest index."""
    return np.argmax(q >= q.max(axis=1, keepdims=True) - TIE_TOL, axis=1).astype(np.int64)


# ----------------------------------------------------------------------------- dependent arms


def solve_dependent(horizon: int, alpha: float = 1.0, beta: float = 1.0) -> Plan:
    """Bayes-optimal value of the dependent two-armed bandit (p, 1-p), p ~ Beta(alpha, beta).

    The state is (t, a): ``a`` of the ``t`` pulls were evidence for p (a success on arm 0
    or a failure on arm 1).  Both arms lead to a+1 with probability E[p].
    """
    horizon, alpha, beta = _check_prior(horizon, alpha, beta)
    value = np.zeros(horizon + 1)
    for t in range(horizon - 1, -1, -1):
        p = (alpha + np.arange(t + 1)) / (alpha + beta + t)
        q0 = p * (1.0 + value[1:]) + (1.0 - p) * value[:-1]
        q1 = (1.0 - p) * (1.0 + value[:-1]) + p * value[1:]
        value = np.maximum(q0, q1)
    return Plan(float(value[0]), horizon * (horizon + 1) // 2)


def dependent_action(successes: np.ndarray, failures: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """The Bayes-optimal arm of the dependent bandit: greedy on E[p] (Q_0 - Q_1 = 2 E[p] - 1)."""
    evidence = successes[:, 0] + failures[:, 1]
    mean_p = (alpha + evidence) / (alpha + beta + successes.sum(axis=1) + failures.sum(axis=1))
    return ((1.0 - mean_p) - mean_p > TIE_TOL).astype(np.int64)


# ----------------------------------------------------------------------------- families


def _problem(family: TaskFamily) -> tuple | None:
    """The planning problem a family poses, as a hashable tuple, or None if unsupported."""
    horizon = family.trial_length
    if isinstance(family, DependentBernoulliBandit):  # before BernoulliBandit: a subclass
        return ("dependent", horizon, family.alpha, family.beta)
    if isinstance(family, BernoulliBandit):
        if family.probs is not None:  # one fixed task: the oracle is Bayes-optimal
            return ("point", horizon, tuple(float(p) for p in family.probs))
        return ("bernoulli", family.num_actions, horizon, family.alpha, family.beta)
    return None


def _problem_tractable(problem: tuple | None) -> bool:
    if problem is None:
        return False
    kind, *args = problem
    if kind == "point":
        return True
    if kind == "dependent":
        return args[0] <= DEPENDENT_MAX_HORIZON
    k, horizon = args[0], args[1]
    if k == 1:
        return True
    if k == 2:
        return horizon <= K2_MAX_HORIZON
    return horizon <= 200 and count_states(k, horizon) <= GENERAL_MAX_STATES


def tractable(family: TaskFamily) -> bool:
    """Whether the exact planner handles ``family`` within the documented limits."""
    return _problem_tractable(_problem(family))


def fallback_policy(family: TaskFamily) -> str:
    """Name of the policy played (and reported as a lower bound) when planning is intractable."""
    if isinstance(family, DependentBernoulliBandit):
        return "greedy"  # optimal at any horizon; only its value is not computed past the limit
    if isinstance(family, BernoulliBandit):
        return GITTINS
    return FALLBACK if isinstance(family, GaussianBandit) else "none"


@functools.cache
def _exact_value(problem: tuple) -> float:
    kind, *args = problem
    if kind == "point":
        horizon, probs = args
        return horizon * max(probs)
    if kind == "dependent":
        return solve_dependent(*args).value
    k, horizon, alpha, beta = args
    if k == 1:
        return horizon * alpha / (alpha + beta)
    if k == 2:
        return solve_k2(horizon, alpha, beta).value
    return solve_general(k, horizon, alpha, beta).value


def reference(family: TaskFamily) -> BayesReference | None:
    """The bandit families' ``bayes_reference``: the exact planner where :func:`tractable`
    holds, else the policy named by :func:`fallback_policy`, as a lower bound."""
    problem = _problem(family)
    if problem is None and not isinstance(family, GaussianBandit):
        return None
    policy = functools.partial(BanditBayesPolicy, family)
    if _problem_tractable(problem):
        return BayesReference(EXACT, policy, value=functools.partial(_exact_value, problem))
    return BayesReference(f"{LOWER_BOUND}:{fallback_policy(family)}", policy)


@functools.lru_cache(maxsize=4)
def _policy(problem: tuple) -> K2Policy | GeneralPolicy:
    _, k, horizon, alpha, beta = problem
    if k == 2:
        return solve_k2(horizon, alpha, beta, policy=True).policy
    return solve_general(k, horizon, alpha, beta, policy=True).policy


# ----------------------------------------------------------------------------- agent


class BanditBayesPolicy(Agent):
    """Plays the exact Bayes-optimal policy where :func:`tractable` holds, else the policy
    named by :func:`fallback_policy` (Gittins index for Bernoulli arms, Bayes-UCB for
    Gaussian ones, greedy for dependent arms).  The ``bayes`` agent plays it on bandits.

    ``self.method`` is ``"exact"`` or ``"lower-bound:<policy>"``, as in :func:`reference`.
    The planner's tables are built on the first ``reset`` and shared between instances.
    """

    name = "bayes"

    def __init__(self, family: TaskFamily, **config: Any):
        super().__init__(family, **config)
        self.problem = _problem(family)
        if self.problem is None and not isinstance(family, GaussianBandit):
            raise UnsupportedFamilyError(
                f"the bandit Bayes planner plays Bernoulli, dependent Bernoulli and Gaussian bandits, "
                f"not {family.describe()}"
            )
        self.exact = _problem_tractable(self.problem)
        self.method = "exact" if self.exact else f"lower-bound:{fallback_policy(family)}"
        self.gaussian = isinstance(family, GaussianBandit)
        # the Gittins index policy is an agent: found by its registered name, built now (it has ``choose``)
        self._gittins = make_agent(GITTINS, family) if self.method == f"{LOWER_BOUND}:{GITTINS}" else None

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        if self._gittins is not None:
            self._gittins.reset(num_trials)  # builds the index tables for the whole trial now, once
        if self.exact and self.problem[0] == "bernoulli" and self.problem[1] >= 2:
            _policy(self.problem)  # build (or fetch) the tables now, not inside the first act
        if self.gaussian:
            return {"belief": self.family.prior(num_trials), "pulls": np.zeros(num_trials, np.int64)}
        zeros = np.zeros((num_trials, self.num_actions), np.int64)
        return {"successes": zeros, "failures": zeros.copy()}

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        memory = self._observe(obs, memory)
        if self.gaussian:
            return self._gaussian_ucb(memory), memory
        s, f = memory["successes"], memory["failures"]
        kind = self.problem[0]
        if kind == "dependent":
            return dependent_action(s, f, self.family.alpha, self.family.beta), memory
        if self._gittins is not None:
            return self._gittins.choose(s, f), memory
        if not self.exact:
            return _beta_ucb(self.family.alpha, self.family.beta, s, f), memory
        if kind == "point":
            return np.full(len(s), int(np.argmax(self.problem[2])), np.int64), memory
        if self.problem[1] == 1:
            return np.zeros(len(s), np.int64), memory
        return _policy(self.problem).act(s, f), memory

    def _observe(self, obs: Obs, memory: Any) -> Any:
        """New memory with the previous transition counted (first step: nothing to count)."""
        action, reward, has_prev = last_transition(obs)
        rows = np.flatnonzero(has_prev)
        action, reward = action[rows], reward[rows]
        if self.gaussian:
            belief = memory["belief"]
            updated = self.family.update_belief({k: v[rows] for k, v in belief.items()}, action, reward)
            new = {k: v.copy() for k, v in belief.items()}
            for k in new:
                new[k][rows] = updated[k]
            pulls = memory["pulls"].copy()
            pulls[rows] += 1
            return {"belief": new, "pulls": pulls}
        win = (reward > 0.5).astype(np.int64)
        s, f = memory["successes"].copy(), memory["failures"].copy()
        s[rows, action] += win
        f[rows, action] += 1 - win
        return {"successes": s, "failures": f}

    def _gaussian_ucb(self, memory: Any) -> np.ndarray:
        belief = memory["belief"]
        z = ndtri(_ucb_level(memory["pulls"]))[:, None]
        return _first_max(belief["mean"] + z / np.sqrt(belief["precision"]))

    def features(self, memory: Any) -> np.ndarray:
        if self.gaussian:
            return np.concatenate([memory["belief"]["mean"], memory["belief"]["precision"]], axis=1)
        return np.concatenate([memory["successes"], memory["failures"]], axis=1).astype(float)


def _ucb_level(pulls: np.ndarray) -> np.ndarray:
    """Bayes-UCB quantile 1 - 1/(t+1) at the t-th pull (t = pulls so far + 1)."""
    return 1.0 - 1.0 / (pulls + 2.0)


def _beta_ucb(alpha: float, beta: float, successes: np.ndarray, failures: np.ndarray) -> np.ndarray:
    """Bayes-UCB on Beta posteriors: the arm with the highest posterior quantile."""
    level = _ucb_level((successes + failures).sum(axis=1))[:, None]
    return _first_max(betaincinv(alpha + successes, beta + failures, level))
