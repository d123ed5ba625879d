"""Batched finite-horizon planners for tabular MDPs (``metarl_bench.envs.tabular_mdp.family``).

Every function works on a batch of ``N`` MDPs at once (one per trial), so an agent plans
for all its trials with a handful of numpy calls and no Python loop over trials:

* :func:`value_iteration`: backward induction ``Q_h = R_h + P V_{h+1}``, ``V_H = 0``,
  for the known MDP (the oracle), a sampled one (PSRL), the posterior mean (greedy) or
  a reward-bonus MDP (BEB: the reward may depend on the step ``h``);
* :func:`extended_value_iteration`: UCRL2's optimistic backup (Jaksch, Ortner & Auer
  2010, fig. 2): within an L1 ball of radius ``slack`` around the estimated transition
  row, move ``slack / 2`` of probability onto the next state of highest value, taken
  from the states of lowest value first;
* :func:`sample_posterior`: one MDP from independent Normal (mean reward) and Dirichlet
  (transition row) posteriors, for PSRL (Strens 2000; Osband, Russo & Van Roy 2013);
* :func:`policy_return`: exact expected episode return of a stochastic Markov policy
  (the random-play reference, in closed form).

Shapes: rewards ``(N, S, A)`` (or ``(N, H, S, A)`` when they depend on the step),
transitions ``(N, S, A, S)``, values ``(N, H + 1, S)``, Q ``(N, H, S, A)``; index ``h``
is the step within the episode, so ``Q[:, h]`` has ``H - h`` steps to go.
"""

from __future__ import annotations

import numpy as np


def _backup(P: np.ndarray, V_next: np.ndarray) -> np.ndarray:
    """Expected next value ``sum_s' P(s'|s,a) V(s')`` for every (s, a): shape (N, S, A)."""
    N, S, A, _ = P.shape
    return (P.reshape(N, S * A, S) @ V_next[:, :, None]).reshape(N, S, A)


def _reward_at(R: np.ndarray, h: int) -> np.ndarray:
    return R[:, h] if R.ndim == 4 else R


def value_iteration(R: np.ndarray, P: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Optimal finite-horizon ``Q`` (N, H, S, A) and ``V`` (N, H + 1, S) of a batch of MDPs.

    ``R`` is the mean reward, ``(N, S, A)`` or step-dependent ``(N, H, S, A)``.
    """
    N, S, A, _ = P.shape
    Q = np.empty((N, horizon, S, A))
    V = np.zeros((N, horizon + 1, S))
    for h in range(horizon - 1, -1, -1):
        Q[:, h] = _reward_at(R, h) + _backup(P, V[:, h + 1])
        V[:, h] = Q[:, h].max(axis=2)
    return Q, V


def greedy_policy(Q: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Deterministic optimal actions (N, H, S) of ``Q``; near-ties go to the lowest index."""
    return np.argmax(Q >= Q.max(axis=-1, keepdims=True) - tol, axis=-1)


def extended_value_iteration(
    R: np.ndarray, P: np.ndarray, slack: np.ndarray, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Optimistic ``Q`` and ``V`` over the L1 balls ``|p - P(.|s,a)|_1 <= slack(s,a)``.

    ``R`` is the (already optimistic) reward, ``(N, S, A)``; ``slack`` is ``(N, S, A)``.
    The inner maximisation is exact: sort next states by value, give the best one
    ``min(1, p_best + slack / 2)``, and take the added mass from the worst states first.
    """
    N, S, A, _ = P.shape
    P_rows = P.reshape(N, S * A, S)
    add_max = (slack / 2.0).reshape(N, S * A, 1)
    rows = np.arange(N)
    Q = np.empty((N, horizon, S, A))
    V = np.zeros((N, horizon + 1, S))
    for h in range(horizon - 1, -1, -1):
        v = V[:, h + 1]
        # Rank the next states by value (ties broken by index; they do not change the value).
        # "worse[n, j, i]": state j is taken from before state i, so P @ worse is the mass
        # of the states worse than each state: no gather of P in sorted order is needed.
        rank = np.argsort(np.argsort(v, axis=1, kind="stable"), axis=1)
        worse = (rank[:, :, None] < rank[:, None, :]).astype(float)
        best = np.argmax(rank, axis=1)
        p_best = P_rows[rows, :, best][:, :, None]  # (N, S*A, 1)
        add = np.minimum(add_max, 1.0 - p_best)
        removed = np.minimum(np.maximum(add - P_rows @ worse, 0.0), P_rows)  # np.clip is slow with array bounds
        removed[rows, :, best] = 0.0
        q = ((P_rows - removed) @ v[:, :, None] + add * v[rows, best][:, None, None])[..., 0]
        Q[:, h] = R + q.reshape(N, S, A)
        V[:, h] = Q[:, h].max(axis=2)
    return Q, V


def sample_posterior(
    mean: np.ndarray, precision: np.ndarray, alpha: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One MDP per trial: rewards ``N(mean, 1/precision)``, transition rows ``Dirichlet(alpha)``.

    Dirichlet draws are normalised Gamma draws (vectorised over rows with different
    ``alpha``); a row whose Gammas all underflow to 0 (tiny ``alpha``) falls back to its mean.
    """
    R = mean + rng.standard_normal(mean.shape) / np.sqrt(precision)
    g = rng.standard_gamma(alpha)
    total = g.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        P = np.where(total > 0, g / total, alpha / alpha.sum(axis=-1, keepdims=True))
    return R, P


def policy_return(R: np.ndarray, P: np.ndarray, policy: np.ndarray, start: int, horizon: int) -> np.ndarray:
    """Exact expected return of one episode from ``start`` under a stochastic Markov policy
    ``policy`` (N, S, A) (rows sum to 1), shape (N,)."""
    N, S, _ = R.shape
    r_pi = (policy * R).sum(axis=2)  # (N, S)
    P_pi = np.einsum("nsa,nsat->nst", policy, P)
    d = np.zeros((N, S))
    d[:, start] = 1.0
    total = np.zeros(N)
    for _ in range(horizon):
        total += (d * r_pi).sum(axis=1)
        d = (d[:, None, :] @ P_pi)[:, 0]
    return total
