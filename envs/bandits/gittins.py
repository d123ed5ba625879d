"""Gittins indices of Beta-Bernoulli arms: the bandit families' index planner.

The Gittins index of an arm whose success probability has posterior Beta(a, b), under
geometric discount ``g``, is the per-step retirement reward ``lam`` at which playing the
arm once more (and then on, optimally, with the option to retire at any time) is worth
exactly as much as retiring now (the calibration or "standard arm" definition; Gittins
1979; Gittins, Glazebrook & Weber 2011, ch. 2 and 8).  Playing the arm of highest index
is optimal for independent arms under discounting (the index theorem).

Values are kept per step (``(1 - g) *`` value), so retiring is worth ``lam`` and the
continuation value of state ``(a, b)`` with mean ``mu = a / (a + b)`` is
``(1 - g) mu + g (mu W(a+1, b) + (1 - mu) W(a, b+1))``.  ``f(lam)``, continuation minus
``lam`` at the root, is convex and decreasing with slope <= -(1 - g) (its slope is
``E[g^tau] - 1`` for the retirement time ``tau >= 1``), so Newton's method started left of
the root climbs to it monotonically and never overshoots; it replaces bisection because
``f`` is piecewise linear and Newton lands on its root in a few sweeps.

Truncation.  The tree below a root is cut at depth ``N``; a leaf is valued as if no
more were learnt there, ``max(lam, mu)`` (retire, or play on forever).  That undervalues
a leaf by at most ``E|p - mu| / 2 <= 1 / (4 sqrt(n + 1))`` per step (``n = a + b`` at the
leaf), so ``f`` is low by at most ``g^N / (4 sqrt(n + 1))`` and, with ``|f'| >= 1 - g``,
the computed index is a lower bound on the true one, short by at most
``g^N / (4 (1 - g) sqrt(n + 1))``.  :func:`truncation_depth` picks the smallest ``N`` that
makes this bound <= ``tol`` (1e-8 by default: ``N`` = 1781 for ``g = 0.99`` from Beta(1, 1),
where ``g^N`` is 1.7e-8; ``N`` = 160 for ``g = 0.9``).

Tables.  :func:`gittins_table` needs every state with at most ``max_pulls`` pulls.  Each
state costs ``O(N^2)`` per Newton step, so calibrating the 5151 states of 100 pulls at
``g = 0.99`` directly takes minutes; instead the table is solved in two stages:

1. value-iteration sweeps over the whole truncated triangle below ``(alpha0, beta0)``,
   one per retirement reward on a grid of ``GRID_SIZE`` values (uniform in
   ``arcsin(sqrt(lam))``), vectorised over the grid and, below the table, limited to a
   band of each layer (:func:`_band`).  The sweeps give every state's ``f`` and slope at
   every grid point, which brackets each index between two grid points;
2. per state, Newton's method on ``f`` evaluated exactly at its own ``lam`` down to depth
   ``SHALLOW_DEPTH``, below which a state is valued by the better of the two grid
   policies that bracket ``lam`` (the tangents of its value at the two grid points).
   Those are values of feasible policies, so the result is still a lower bound on the
   index, short only through states deeper than ``SHALLOW_DEPTH`` whose own index falls
   between the grid point and ``lam``.

When ``N <= SHALLOW_DEPTH`` (``g`` up to about 0.84) stage 2 alone covers the truncated
tree and the table is exact up to the truncation bound.  Against :func:`gittins_index`
on all 5151 states of 100 pulls from Beta(1, 1), the table is low by at most 6.5e-7 at
``g = 0.99`` (median 7e-8), 1.7e-7 at 0.98 and 4e-9 at 0.95.

Cross-check.  :func:`gittins_index_restart` solves the restart-in-state formulation
(Katehakis & Veinott 1987) by plain value iteration, with *optimistic* leaves (the arm's
``p`` revealed at the leaf), so it brackets the index from above while calibration
brackets it from below.

The index policy itself is the ``gittins`` agent (``metarl_bench.baselines.gittins``); the
Bernoulli bandits' Bayes planner (``bayes.py``) plays it, looked up by that registered name,
where exact planning is out of reach.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from scipy.special import betainc, lambertw

DEFAULT_TOL = 1e-8
GRID_SIZE = 1024  # retirement rewards swept in stage 1 of gittins_table
SHALLOW_DEPTH = 100  # depth of the per-state exact trees in stage 2
GRID_CHUNK = 64  # grid points per vectorised sweep, at most
STAGE1_BYTES = 64 << 20  # memory for one chunk's leaf layers (fewer points for big tables)
MAX_NEWTON = 200
TAIL_EPS = 1e-15  # per-step value a band-limited sweep may leave out (stage 1)

# ----------------------------------------------------------------------------- validation


def check_discount(discount: Any) -> float:
    """``discount`` as a float strictly between 0 and 1 (ValueError otherwise)."""
    try:
        g = float(discount)
    except (TypeError, ValueError):
        raise ValueError(f"discount must be a number strictly between 0 and 1, got {discount!r}") from None
    if not 0.0 < g < 1.0:
        raise ValueError(f"discount must lie strictly between 0 and 1, got {discount!r}")
    return g


def _check_params(name: str, value: Any) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be positive and finite, got {value!r}") from None
    if not np.all(np.isfinite(arr) & (arr > 0)):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return arr


def _check_tol(tol: Any) -> float:
    try:
        value = float(tol)
    except (TypeError, ValueError):
        raise ValueError(f"tol must be a positive number, got {tol!r}") from None
    if not value > 0.0:
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    return value


def truncation_depth(discount: float, n0: float = 2.0, tol: float = DEFAULT_TOL) -> int:
    """Smallest depth ``N`` whose truncation error bound ``g^N / (4 (1-g) sqrt(n0+N+1))`` is <= ``tol``.

    ``n0 = alpha + beta`` of the shallowest root; the bound holds for every deeper root.
    """
    g = check_discount(discount)
    tol = _check_tol(tol)
    log_g = math.log(g)
    n = max(1, math.ceil(math.log(4.0 * (1.0 - g) * tol) / log_g))  # ignoring the sqrt
    while n > 1 and (n - 1) * log_g <= math.log(4.0 * (1.0 - g) * tol * math.sqrt(n0 + n)):
        n -= 1  # the sqrt makes a slightly shallower tree enough
    return n


# ----------------------------------------------------------------------------- calibration core


def _advantage(a: np.ndarray, b: np.ndarray, lam: np.ndarray, g: float, depth: int, leaf_w, leaf_s):
    """``f(lam)`` and its slope at roots ``(a, b)``, by backward induction over ``depth`` layers.

    ``leaf_w``, ``leaf_s`` (R, depth+1): per-step value and its lam-slope at relative depth
    ``depth``, column ``i`` = ``i`` successes.  All arrays are per root (R,).
    """
    w, s = leaf_w, leaf_s
    retire = lam[:, None]
    n = (a + b)[:, None]
    for layer in range(depth - 1, -1, -1):
        mu = (a[:, None] + np.arange(layer + 1)) / (n + layer)
        gm = g * mu
        cont = (1.0 - g) * mu + gm * w[:, 1:] + (g - gm) * w[:, :-1]
        slope = gm * s[:, 1:] + (g - gm) * s[:, :-1]
        if layer == 0:
            return cont[:, 0] - lam, slope[:, 0] - 1.0
        keep = cont > retire
        w = np.where(keep, cont, retire)
        s = np.where(keep, slope, 1.0)
    raise ValueError(f"depth must be >= 1, got {depth}")


class _TruncatedLeaves:
    """Leaves of the truncated tree: ``max(lam, mu)`` (retire, or play on without learning)."""

    def __init__(self, a: np.ndarray, b: np.ndarray, depth: int):
        self.mu = (a[:, None] + np.arange(depth + 1)) / (a + b + depth)[:, None]

    def __call__(self, lam: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, lam = self.mu[rows], lam[:, None]
        return np.maximum(lam, mu), (lam >= mu).astype(float)


class _GridLeaves:
    """Leaves valued by the better of two grid policies: tangents of the value at lam_k, lam_k+1."""

    def __init__(self, lo: np.ndarray, w_lo, s_lo, hi: np.ndarray, w_hi, s_hi):
        self.lo, self.w_lo, self.s_lo = lo, w_lo, s_lo
        self.hi, self.w_hi, self.s_hi = hi, w_hi, s_hi

    def __call__(self, lam: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from_lo = self.w_lo[rows] + self.s_lo[rows] * (lam - self.lo[rows])[:, None]
        from_hi = self.w_hi[rows] + self.s_hi[rows] * (lam - self.hi[rows])[:, None]
        use_lo = from_lo >= from_hi
        return np.where(use_lo, from_lo, from_hi), np.where(use_lo, self.s_lo[rows], self.s_hi[rows])


def _newton(a, b, g: float, depth: int, leaves, start: np.ndarray, stop: np.ndarray, xtol: float) -> np.ndarray:
    """Root of the convex decreasing ``f`` per root, from ``start`` (where ``f >= 0``), capped at ``stop``."""
    x = start.astype(float).copy()
    todo = np.arange(len(x))
    for _ in range(MAX_NEWTON):
        if not len(todo):
            return x
        w, s = leaves(x[todo], todo)
        f, df = _advantage(a[todo], b[todo], x[todo], g, depth, w, s)
        new = np.minimum(x[todo] - f / df, stop[todo])
        moved = new - x[todo]
        x[todo] = np.maximum(new, x[todo])  # rounding must never walk it back past a verified point
        todo = todo[(moved > xtol) & (f > 0)]
    raise RuntimeError(f"Newton's method did not converge for {len(todo)} Gittins indices")


# ----------------------------------------------------------------------------- public API


def gittins_index(alpha: Any, beta: Any, discount: float, *, tol: float = DEFAULT_TOL) -> np.ndarray | float:
    """Gittins index of Beta(``alpha``, ``beta``) Bernoulli arms under ``discount`` (calibration).

    ``alpha`` and ``beta`` broadcast (a float comes back for scalars); each distinct
    state is solved once, all of them in the same vectorised sweeps (one sweep of the
    depth-``N`` tree per Newton step, about 7 steps from the posterior mean).  The result
    is a lower bound short by at most ``tol`` (truncation bound plus Newton's stopping
    rule, module doc).  Cost is ``O(N^2)`` per state and step: use :func:`gittins_table`
    for many states.
    """
    g = check_discount(discount)
    a, b = np.broadcast_arrays(_check_params("alpha", alpha), _check_params("beta", beta))
    tol = _check_tol(tol)
    if a.size == 0:
        return np.empty(a.shape)
    pairs, inverse = np.unique(np.stack([a.ravel(), b.ravel()], axis=1), axis=0, return_inverse=True)
    ua, ub = pairs[:, 0], pairs[:, 1]
    depth = truncation_depth(g, float((ua + ub).min()), tol / 2)
    mean = ua / (ua + ub)
    index = _newton(ua, ub, g, depth, _TruncatedLeaves(ua, ub, depth), mean, np.ones_like(mean), tol / 2)
    return index[inverse.ravel()].reshape(a.shape)[()]


def gittins_index_restart(alpha: float, beta: float, discount: float, *, tol: float = 1e-10) -> float:
    """Second, independent method: the restart-in-state problem (Katehakis & Veinott 1987).

    From every state below ``(alpha, beta)`` one may continue or restart as if back in
    ``(alpha, beta)``; the optimal value there is ``index / (1 - g)``.  Solved by plain
    (Jacobi) value iteration over the flattened tree, from zero, until a sweep changes no
    per-step value by ``(1 - g) tol`` or more.  Leaves are optimistic (``p`` revealed), so
    up to ``tol`` the result is an upper bound, above the truth by at most the truncation
    bound.  Slow (``O(N^2 / (1 - g))``): for tests.
    """
    g = check_discount(discount)
    a0 = float(_check_params("alpha", alpha))
    b0 = float(_check_params("beta", beta))
    tol = _check_tol(tol)
    depth = truncation_depth(g, a0 + b0, tol)
    layer = np.repeat(np.arange(depth + 1), np.arange(1, depth + 2))
    wins = np.arange(len(layer)) - layer * (layer + 1) // 2  # node (l, i): i successes in l pulls
    a, b = a0 + wins, b0 + layer - wins
    mu = a / (a + b)
    inner = layer < depth
    child = np.flatnonzero(inner)
    to_fail = child + layer[inner] + 1  # node (l, i) -> (l+1, i); success -> (l+1, i+1)
    leaf = ~inner
    v = np.zeros(len(layer))  # per-step values, so restarting is worth v[0]
    for _ in range(100 * int(1.0 / (1.0 - g)) + 10 * depth):
        restart = v[0]
        new = np.empty_like(v)
        new[inner] = (1.0 - g) * mu[inner] + g * (mu[inner] * v[to_fail + 1] + (1.0 - mu[inner]) * v[to_fail])
        # optimistic leaf: p revealed, so play on forever iff p > restart value
        la, lb = a[leaf], b[leaf]
        new[leaf] = restart * betainc(la, lb, restart) + mu[leaf] * (1.0 - betainc(la + 1.0, lb, restart))
        new[1:] = np.maximum(new[1:], restart)
        if np.max(np.abs(new - v)) < tol * (1.0 - g):
            return float(new[0])
        v = new
    raise RuntimeError("restart-in-state value iteration did not converge")


def gittins_table(
    alpha0: float, beta0: float, discount: float, max_pulls: int, *, tol: float = DEFAULT_TOL
) -> np.ndarray:
    """Indices of every state (``alpha0 + s``, ``beta0 + f``) with ``s + f <= max_pulls``.

    Returns a read-only ``(max_pulls + 1, max_pulls + 1)`` array indexed ``[s, f]`` (NaN
    where ``s + f > max_pulls``), cached per arguments.  Accuracy: module doc.
    """
    g = check_discount(discount)
    a0 = float(_check_params("alpha0", alpha0))
    b0 = float(_check_params("beta0", beta0))
    if isinstance(max_pulls, bool) or not isinstance(max_pulls, (int, np.integer)) or max_pulls < 0:
        raise ValueError(f"max_pulls must be an integer >= 0, got {max_pulls!r}")
    return _cached_table(a0, b0, g, int(max_pulls), _check_tol(tol))


@functools.lru_cache(maxsize=32)
def _cached_table(a0: float, b0: float, g: float, max_pulls: int, tol: float) -> np.ndarray:
    wins, losses = _table_states(max_pulls)
    a, b = a0 + wins, b0 + losses
    depth = truncation_depth(g, a0 + b0, tol)
    if depth <= SHALLOW_DEPTH:
        mean = a / (a + b)
        index = _newton(a, b, g, depth, _TruncatedLeaves(a, b, depth), mean, np.ones_like(mean), 1e-13)
    else:
        index = _two_stage(a0, b0, g, max_pulls, depth, wins, losses)
    table = np.full((max_pulls + 1, max_pulls + 1), np.nan)
    table[wins, losses] = index
    table.flags.writeable = False
    return table


def _table_states(max_pulls: int) -> tuple[np.ndarray, np.ndarray]:
    """(successes, failures) of every table state, layer by layer (``s + f`` = 0, 1, ...)."""
    pulls = np.repeat(np.arange(max_pulls + 1), np.arange(1, max_pulls + 2))
    wins = np.concatenate([np.arange(d + 1) for d in range(max_pulls + 1)])
    return wins, pulls - wins


def _two_stage(a0, b0, g, max_pulls, depth, wins, losses) -> np.ndarray:
    """Stage 1 (grid sweeps, shared by all states) and stage 2 (per-state Newton); module doc.

    The grid is swept in chunks of neighbouring points (overlapping by one); the states
    whose index the chunk brackets are solved at once, so only one chunk's sweeps are
    ever held in memory.
    """
    grid = _grid(a0, b0, max_pulls)
    shallow = SHALLOW_DEPTH
    pulls = wins + losses
    index = np.full(len(wins), np.nan)
    # leaf layers cost 16 bytes a value per grid point: keep a chunk's under STAGE1_BYTES
    per_point = 16 * (max_pulls + 1) * (max_pulls + 2 * shallow + 2) // 2
    chunk = int(np.clip(STAGE1_BYTES // per_point, 8, GRID_CHUNK))
    for start in range(0, len(grid) - 1, chunk - 1):
        lam = grid[start : start + chunk]
        adv, slope, kept = _grid_sweep(a0, b0, g, lam, max_pulls + depth, max_pulls, shallow)
        positive = adv > 0  # f decreases in lam, so each column is True, then False
        last = positive.sum(axis=0) - 1  # grid point just left of the index
        states = np.flatnonzero(np.isnan(index) & ~positive[-1] & (last >= 0))
        if len(states):
            index[states] = _solve_bracketed(a0, b0, g, lam, adv, slope, kept, states, last[states], wins, pulls)
    if np.isnan(index).any():
        raise RuntimeError("some Gittins indices fell outside the calibration grid")
    return index


def _solve_bracketed(a0, b0, g, lam, adv, slope, kept, states, k, wins, pulls) -> np.ndarray:
    """Stage 2 for ``states``, whose indices lie between ``lam[k]`` and ``lam[k + 1]``."""
    shallow = SHALLOW_DEPTH
    cols = wins[states, None] + np.arange(shallow + 1)  # leaves of (s, f): s .. s + shallow wins
    leaf = np.empty((4, len(states), shallow + 1))
    for d in np.unique(pulls[states]):
        here = np.flatnonzero(pulls[states] == d)
        w, s = kept[d + shallow]
        kk = k[here, None]
        leaf[:, here] = w[kk, cols[here]], s[kk, cols[here]], w[kk + 1, cols[here]], s[kk + 1, cols[here]]
    lo, hi = lam[k], lam[k + 1]
    leaves = _GridLeaves(lo, leaf[0], leaf[1], hi, leaf[2], leaf[3])
    start = np.clip(lo - adv[k, states] / slope[k, states], lo, hi)  # tangent root at lo: left of the root
    return _newton(a0 + wins[states], b0 + pulls[states] - wins[states], g, shallow, leaves, start, hi, 1e-13)


def _grid(a0: float, b0: float, max_pulls: int) -> np.ndarray:
    """Retirement rewards of stage 1: from the lowest mean of the table to 1 (indices lie between).

    Uniform in ``arcsin(sqrt(lam))``, the variance-stabilising scale of a Bernoulli mean:
    near 0 and 1 the indices of neighbouring states crowd together and the grid follows
    (measured: half the worst error of a uniform grid of the same size).
    """
    low = math.asin(math.sqrt(a0 / (a0 + b0 + max_pulls)))
    return np.sin(np.linspace(low, math.pi / 2, GRID_SIZE)) ** 2


def _grid_sweep(a0, b0, g, lam, top, max_pulls, shallow):
    """Backward induction over the triangle of depth ``top`` below (a0, b0), for each ``lam``.

    Returns ``f`` and its slope at the table states, (grid, state) in layer order, and the
    values and slopes at the layers ``shallow .. max_pulls + shallow`` (leaves of stage 2).
    Below those layers only a band of each layer is swept (:func:`_band`).
    """
    retire = lam[:, None]
    full = max_pulls + shallow  # layers up to here are swept whole
    lo, hi = _band(a0, b0, g, lam, top, full)
    mu = (a0 + np.arange(lo, hi + 1)) / (a0 + b0 + top)
    w = np.maximum(retire, mu)
    s = (retire >= mu).astype(float)
    adv, slope, kept = [], [], {}
    for n in range(top - 1, -1, -1):
        child_lo = lo
        lo, hi = _band(a0, b0, g, lam, n, full)
        w, s = _pad_children(w, s, child_lo, lo, hi + 1, retire, (a0 + np.arange(hi + 2)) / (a0 + b0 + n + 1))
        mu = (a0 + np.arange(lo, hi + 1)) / (a0 + b0 + n)
        gm = g * mu
        cont = (1.0 - g) * mu + gm * w[:, 1:] + (g - gm) * w[:, :-1]
        dcont = gm * s[:, 1:] + (g - gm) * s[:, :-1]
        if n <= max_pulls:
            adv.append(cont - retire)
            slope.append(dcont - 1.0)
        keep = cont > retire
        w = np.where(keep, cont, retire)
        s = np.where(keep, dcont, 1.0)
        if shallow <= n <= full:
            kept[n] = (w, s)
    return np.concatenate(adv[::-1], axis=1), np.concatenate(slope[::-1], axis=1), kept


def _band(a0, b0, g, lam, n, full) -> tuple[int, int]:
    """Columns (successes) of layer ``n`` that are swept for retirement rewards ``lam``.

    Left of the band a state's index is below ``lam.min()``, so it retires; right of it
    retiring is so unlikely to pay that never retiring loses < ``TAIL_EPS`` per step, and
    the state is valued so (a feasible policy: the values stay lower bounds).  Both edges
    come from the sub-Gaussian tails of Beta(a, b), variance proxy ``v = 1/(4(a+b+1))``
    (Marchal & Arbel 2017): ``E[(p - mu - t)^+] <= (v/t) exp(-t^2/(2v))``.  So the index is
    below ``mu + t`` once ``(1-g) t > g E[(p - mu - t)^+]`` (the index is at most the one
    of an arm whose ``p`` is revealed after one pull), i.e. once ``t^2/(2v) = x`` has
    ``x e^x > g / (2 (1 - g))``; and never retiring loses ``E[(lam - p)^+] <= TAIL_EPS``
    once ``mu - lam >= t`` with ``sqrt(v / (2x)) e^-x <= TAIL_EPS``.
    """
    if n <= full:
        return 0, n
    total = a0 + b0 + n
    v = 1.0 / (4.0 * (total + 1.0))
    t_index = math.sqrt(2.0 * v * _index_margin(g))
    x = 30.0
    for _ in range(6):  # fixed point of x = log(sqrt(v / (2x)) / TAIL_EPS); contracts fast
        x = math.log(math.sqrt(v / (2.0 * x)) / TAIL_EPS)
    t_tail = math.sqrt(2.0 * v * x) * 1.01
    lo = math.floor((float(lam[0]) - t_index) * total - a0)
    hi = math.ceil((float(lam[-1]) + t_tail) * total - a0)
    return min(max(lo, 0), n), min(max(hi, 0), n)


@functools.lru_cache(maxsize=64)
def _index_margin(g: float) -> float:
    """``x`` with ``x e^x = g / (2 (1 - g))`` (Lambert W), plus 1% for rounding."""
    return float(lambertw(g / (2.0 * (1.0 - g))).real) * 1.01


def _pad_children(w, s, child_lo, lo, hi, retire, mu_child):
    """Child values over columns ``lo .. hi`` from a band starting at ``child_lo``.

    Columns left of the band retire (value ``lam``, slope 1); right of it the arm is
    played forever (value ``mu``, slope 0).
    """
    child_hi = child_lo + w.shape[1] - 1
    parts_w, parts_s = [], []
    left = min(child_lo, hi + 1) - lo
    if left > 0:
        parts_w.append(np.repeat(retire, left, axis=1))
        parts_s.append(np.ones((len(retire), left)))
    a, b = max(lo, child_lo), min(hi, child_hi)
    if b >= a:
        parts_w.append(w[:, a - child_lo : b - child_lo + 1])
        parts_s.append(s[:, a - child_lo : b - child_lo + 1])
    right = hi - max(child_hi, lo - 1)
    if right > 0:
        parts_w.append(np.broadcast_to(mu_child[hi - right + 1 : hi + 1], (len(retire), right)))
        parts_s.append(np.zeros((len(retire), right)))
    if len(parts_w) == 1:
        return parts_w[0], parts_s[0]
    return np.concatenate(parts_w, axis=1), np.concatenate(parts_s, axis=1)
