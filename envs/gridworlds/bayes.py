"""Bayes-optimal play on the gridworld families (``metarl_bench.envs.gridworlds.family``): exact
planners, bounds, and the policy the families declare as their reference (:func:`reference`).

**Goal search (GoalGrid: gridnavi, darkroom).**  Before the goal is found every step
pays ``c = step_reward`` and the agent learns only that the cell it landed on is not the
goal, so the belief is the set ``S`` of candidate cells not yet visited (the posterior is
uniform on ``S``) and it is a deterministic function of the path.  Once the goal is
found, the rest of the trial is known: stay on it, then walk straight to it in every
later episode (``GoalGrid.episode_oracle_values``).  So the expected return is the return
of never finding the goal, ``c E H``, plus ``1/|G|`` times the sum over goal cells ``g``
of the *gain* of finding ``g`` on step ``s`` of episode ``e``::

    gain(g, e, s) = c (e H + s - 1) + 1 + (H - s) + (E - e - 1) f(g) - c E H

(``f`` is the oracle's episode return).  The Bayes-optimal policy maximises the summed
gains of the cells its path visits first, a deterministic longest-path problem over
``(episode, step, position, S)``: ``V(e, t, p, S) = max_a [gain(q, e, t+1) [q in S] +
V(e, t+1, q, S - {q})]`` with ``q = move(p, a)``; at the end of an episode the position
returns to the start, ``V(e, H, p, S) = W(e+1, S)``.  Exact, with three reductions:

* *dominance*: a gain falls strictly with the time of discovery and is positive (this
  needs ``c <= 0 < 1``; ``GoalGrid`` checks it), so staying put or walking into a wall
  is never better than moving on (drop the wasted step and the same path finds every
  cell no later); the only useful "stay" is on a candidate cell, i.e. on the start cell
  of a family whose start may hold the goal.  Moves only.
* *symmetry*: states are keyed by their smallest image under the symmetries of the
  square that fix the start and the candidate set (gridnavi: the diagonal, 2; darkroom's
  centre start: all 8).
* *layers*: within an episode the states are enumerated forwards layer by layer
  (numba, one hash table per layer), then solved backwards; episodes are solved last to
  first, and between episodes only the table ``W(e, S)`` of boundary beliefs is kept.

The value of every boundary belief ``W(e, S)`` is stored, so the agent can find the
Bayes action from *any* history (a probe may make it shadow another agent): states off
its own path are solved together to the end of their episode by the same kernels, then
looked up in ``W(e+1, .)``.
The agent's own path (the plan) is stored outright.

Values, state counts, time and peak memory of each planner are printed by
``python benchmarks/gridworld_throughput.py`` (figures in README.md).

gridnavi's exact value is also certified without the DP: the beam-search path is worth
exactly the assignment upper bound (checked in ``tests/test_gridworlds.py``).

The plan and ``W`` tables are cached on disk under ``cache_dir()``
(``$METARL_BENCH_CACHE``, else ``$XDG_CACHE_HOME/metarl_bench`` or
``~/.cache/metarl_bench``), keyed by the problem and a hash of this file and
``gridworlds.py`` (files of older code are removed), and in-process.  numba caches
the compiled kernels itself.

``goal_tractable`` accepts grids of at most ``GOAL_MAX_CELLS`` cells, episodes of at most
``GOAL_MAX_HORIZON`` steps and trials of at most ``GOAL_MAX_STEPS``: on a 5x5 grid the
layers saturate at about a million states each, and one episode's layers are held at
once (time grows with the trial, memory with the episode).  Past that (darkroom-9x9: 81
cells, 2^81 beliefs) there is no exact value: :func:`reference` declares
``"lower-bound:beam-plan"`` and the policy plays the best open-loop
search path of the ``BEAM_SEARCHES`` (beam search over ``(position, S)``; the path's
value is exact, so it is a true lower bound), walks to the goal once found, and off that
path walks to the nearest possible cell.  ``assignment_upper_bound`` is an upper bound
(each goal cell found no earlier than its distance from the start, at most one per
step: a matching problem), far tighter than the oracle.

**Heart/trap.**  The belief is P(object 0 is the heart) in {1/2, 0, 1}: it is resolved
by the first touch of an object.  Backward induction over ``(episode, step, position)``
for the unresolved belief, with the known-task values of ``HeartTrap.known_task_values``
once resolved, is exact and tiny (``E H cells`` states).
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock
from scipy.optimize import linear_sum_assignment

from metarl_bench.core.agent import Agent, Obs, UnsupportedFamilyError, last_transition
from metarl_bench.core.family import EXACT, Arrays, BayesReference, TaskFamily
from metarl_bench.envs.gridworlds.family import STAY, TIE_TOL, GoalGrid, HeartTrap, _GridBase

PB = 6  # bits of the position in a state key: key = S << PB | position
PMASK = (1 << PB) - 1
KEY_MAX_CELLS = 63 - PB  # the belief mask and the position share one signed 64-bit key
GOAL_MAX_CELLS = 25
GOAL_MAX_HORIZON = 40
GOAL_MAX_STEPS = 100
BEAM_SEARCHES = ((1024, "gain"), (1024, "advantage"), (4096, "advantage"))  # (width, rank): the best path wins
_HASH = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing
_SOURCES = (Path(__file__), Path(__file__).resolve().parent / "family.py")


def handles(family: Any) -> bool:
    """Whether ``family`` is one of the gridworld families this module plans for."""
    return isinstance(family, _GridBase)


# ============================================================================ goal search: the problem
@dataclass(frozen=True)
class GoalProblem:
    """What the goal-search planner needs from a GoalGrid (hashable: the cache key)."""

    size: int
    horizon: int
    episodes: int
    start_xy: tuple[int, int]
    candidates: tuple[int, ...]
    step_reward: float

    @classmethod
    def of(cls, family: GoalGrid) -> GoalProblem:
        return cls(
            family.size,
            family.horizon,
            family.episodes_per_trial,
            family.start_xy,
            tuple(int(c) for c in family.candidates),
            family.step_reward,
        )

    @property
    def start(self) -> int:
        return self.start_xy[1] * self.size + self.start_xy[0]

    @functools.cached_property
    def family(self) -> GoalGrid:
        """A GoalGrid with this geometry and these candidate cells (for its tables)."""
        fam = GoalGrid(self.size, self.horizon, self.episodes, self.start_xy, 0, self.step_reward)
        fam.candidates = np.array(self.candidates, np.int64)
        fam.candidate_mask = np.isin(np.arange(fam.num_cells), fam.candidates)
        return fam

    @functools.cached_property
    def tables(self) -> _GoalTables:
        return _GoalTables.build(self)


@dataclass
class _GoalTables:
    nbr: np.ndarray  # (cells, actions): next cell, -1 for a move into a wall
    gains: np.ndarray  # (episodes, horizon + 1, cells): gain of finding the goal there on step s
    perms: np.ndarray  # (symmetries, cells): cell permutation; row 0 is the identity
    masks: np.ndarray  # (symmetries, chunks, 256): image of each byte of a belief mask
    cand_mask: int

    @classmethod
    def build(cls, pr: GoalProblem) -> _GoalTables:
        fam = pr.family
        cells = pr.size * pr.size
        nbr = fam.next_cell.copy()
        bump = (nbr == np.arange(cells)[:, None]) & (np.arange(fam.num_actions) != STAY)[None, :]
        nbr[bump] = -1
        H, E, c = pr.horizon, pr.episodes, pr.step_reward
        f = fam.episode_oracle_values()
        e = np.arange(E)[:, None, None]
        s = np.arange(H + 1)[None, :, None]
        gains = c * (e * H + s - 1) + 1.0 + (H - s) + (E - e - 1) * f[None, None, :] - c * E * H
        perms = _symmetries(pr.size, pr.start, pr.candidates)
        chunks = (cells + 7) // 8
        masks = np.zeros((len(perms), chunks, 256), np.int64)
        for g, perm in enumerate(perms):
            for ch in range(chunks):
                for bit in range(8):
                    if 8 * ch + bit < cells:
                        hit = (np.arange(256) >> bit) & 1 == 1
                        masks[g, ch, hit] |= np.int64(1) << perm[8 * ch + bit]
        cand = sum(1 << int(q) for q in pr.candidates)
        return cls(nbr, gains, perms, masks, cand)


def _symmetries(size: int, start: int, candidates: tuple[int, ...]) -> np.ndarray:
    """Cell permutations of the square's symmetries that fix the start and the candidate set."""
    n = size
    x, y = np.arange(n * n) % n, np.arange(n * n) // n
    images = [(x, y), (y, x), (n - 1 - x, y), (x, n - 1 - y), (n - 1 - x, n - 1 - y), (n - 1 - y, x),
              (y, n - 1 - x), (n - 1 - y, n - 1 - x)]  # fmt: skip
    cand = set(candidates)
    keep = []
    for ix, iy in images:
        perm = iy * n + ix
        if perm[start] == start and {int(perm[q]) for q in cand} == cand:
            keep.append(perm)
    return np.array(keep, np.int64)


# ============================================================================ goal search: kernels
# Plain functions here, compiled by numba on first use (``_jit``), so that importing this
# module (every agent lookup does) costs no numba import.
def _canon(s: int, p: int, perms: np.ndarray, masks: np.ndarray) -> int:
    """Smallest key of (belief s, position p) over the symmetries."""
    best = (s << PB) | p
    for g in range(1, perms.shape[0]):
        image = 0
        for ch in range(masks.shape[1]):
            image |= masks[g, ch, (s >> (8 * ch)) & 255]
        k = (image << PB) | perms[g, p]
        if k < best:
            best = k
    return best


def _expand(keys, nbr, perms, masks, want_succ):
    """The next layer (distinct canonical keys, in order of discovery) and, if asked,
    ``succ[i, a]``: the index of the successor of state i under action a (-1: dominated)."""
    n, n_act = len(keys), nbr.shape[1]
    bits = 10
    while (1 << bits) < 4 * n:
        bits += 1
    cap = 1 << bits
    tkeys = np.full(cap, -1, np.int64)
    tidx = np.empty(cap, np.int64)
    out = np.empty(max(n_act * n, 1), np.int64)
    succ = np.full((n if want_succ else 0, n_act), -1, np.int32)
    count = 0
    for i in range(n):
        s, p = keys[i] >> PB, keys[i] & PMASK
        for a in range(n_act):
            q = nbr[p, a]
            if q < 0 or (q == p and (s >> p) & 1 == 0):  # wall, or a stay that finds nothing
                continue
            k = _canon(s & ~(1 << q), q, perms, masks)
            slot = np.int64((np.uint64(k) * _HASH) >> np.uint64(64 - bits))
            while tkeys[slot] != -1 and tkeys[slot] != k:
                slot = (slot + 1) & (cap - 1)
            if tkeys[slot] == -1:
                tkeys[slot] = k
                tidx[slot] = count
                out[count] = k
                count += 1
            if want_succ:
                succ[i, a] = tidx[slot]
            if 2 * count > cap:  # keep the load under 1/2: double and rehash
                bits += 1
                cap <<= 1
                tkeys = np.full(cap, -1, np.int64)
                tidx = np.empty(cap, np.int64)
                for j in range(count):
                    sl = np.int64((np.uint64(out[j]) * _HASH) >> np.uint64(64 - bits))
                    while tkeys[sl] != -1:
                        sl = (sl + 1) & (cap - 1)
                    tkeys[sl] = out[j]
                    tidx[sl] = j
    return out[:count].copy(), succ


def _backward(keys, succ, v_next, gain_row, nbr):
    """Values of a layer from the values of the next: best gain + successor value."""
    n = len(keys)
    v = np.empty(n)
    for i in range(n):
        s, p = keys[i] >> PB, keys[i] & PMASK
        best = -np.inf
        for a in range(nbr.shape[1]):
            j = succ[i, a]
            if j >= 0:
                q = nbr[p, a]
                val = v_next[j] + (gain_row[q] if (s >> q) & 1 else 0.0)
                if val > best:
                    best = val
        v[i] = best
    return v


def _boundary_keys(keys, start, perms, masks):
    """Canonical key of the belief each state carries into the next episode (back at the start)."""
    out = np.empty(len(keys), np.int64)
    for i in range(len(keys)):
        out[i] = _canon(keys[i] >> PB, start, perms, masks)
    return out


def _continuation(keys, start, perms, masks, w_keys, w_values):
    """``W(e+1, S)`` for every state of the last layer of episode e (sorted ``w_keys``)."""
    out = np.empty(len(keys))
    for i in range(len(keys)):
        k = _canon(keys[i] >> PB, start, perms, masks)
        j = np.searchsorted(w_keys, k)
        if j >= len(w_keys) or w_keys[j] != k:
            raise ValueError("belief missing from the next episode's table")
        out[i] = w_values[j]
    return out


_KERNELS = ("_expand", "_backward", "_boundary_keys", "_continuation")


@functools.cache
def _jit() -> None:
    """Compile the kernels with numba (once per process; numba caches the machine code on disk)."""
    try:
        import numba
    except ImportError:
        raise ImportError("the gridworld goal-search planner needs numba: pip install numba") from None
    g = globals()
    g["_canon"] = numba.njit(cache=True, inline="always")(g["_canon"])  # first: the others call it
    for name in _KERNELS:
        g[name] = numba.njit(cache=True)(g[name])


# ============================================================================ goal search: solver
@dataclass
class GoalPlan:
    """The solved goal search: the value, its size, the boundary tables and the agent's own path."""

    value: float  # Bayes-optimal expected trial return
    num_states: int  # decision states (canonical (e, t, position, S)) of the backward pass
    w_keys: list[np.ndarray]  # per episode: sorted canonical keys of the beliefs at its start
    w_values: list[np.ndarray]  # summed gains still to come from them
    plan_actions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (E*H,)
    plan_pos: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # position before each step
    plan_mask: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # belief before each step
    stats: dict[str, float] = field(default_factory=dict)


def solve_goal_search(problem: GoalProblem) -> GoalPlan:
    """Exact Bayes-optimal value of a goal-search problem and the tables the agent needs."""
    _jit()
    tb = problem.tables
    H, E, start = problem.horizon, problem.episodes, problem.start
    cells = problem.size * problem.size
    if cells > KEY_MAX_CELLS:
        raise ValueError(f"the goal-search planner handles at most {KEY_MAX_CELLS} cells, got {cells}")
    t0 = time.perf_counter()
    root = _canon_py(tb.cand_mask, start, tb)
    starts = [np.array([root], np.int64)]
    largest = 1
    for _ in range(E - 1):  # forwards: the beliefs each episode can start from
        layer = starts[-1]
        ends = [_boundary_keys(layer, start, tb.perms, tb.masks)]
        for _ in range(H):
            layer, _ = _expand(layer, tb.nbr, tb.perms, tb.masks, False)
            largest = max(largest, len(layer))
            # Every layer, not just the last: a history that wasted steps (stays, walls) ends
            # the episode with a belief that fewer moves reach, and the agent must act there too.
            ends.append(_boundary_keys(layer, start, tb.perms, tb.masks))
        starts.append(np.unique(np.concatenate(ends)))
    w_values: list[np.ndarray] = [np.zeros(0)] * E
    num_states = 0
    for e in range(E - 1, -1, -1):  # backwards over episodes, each solved backwards over its layers
        layers, succs = [starts[e]], []
        for _ in range(H):
            nxt, succ = _expand(layers[-1], tb.nbr, tb.perms, tb.masks, True)
            layers.append(nxt)
            succs.append(succ)
        num_states += sum(len(x) for x in layers[:H])
        largest = max(largest, *(len(x) for x in layers))
        if e == E - 1:
            v = np.zeros(len(layers[H]))
        else:
            v = _continuation(layers[H], start, tb.perms, tb.masks, starts[e + 1], w_values[e + 1])
        for t in range(H - 1, -1, -1):
            v = _backward(layers[t], succs[t], v, tb.gains[e, t + 1], tb.nbr)
            layers[t + 1] = succs[t] = None  # free as we go
        w_values[e] = v
    value = problem.step_reward * E * H + w_values[0][0] / len(problem.candidates)
    plan = GoalPlan(float(value), int(num_states), starts, w_values)
    plan.stats = {"solve_s": time.perf_counter() - t0, "largest_layer": float(largest)}
    t1 = time.perf_counter()
    plan.plan_actions, plan.plan_pos, plan.plan_mask = _own_path(problem, plan)
    plan.stats["path_s"] = time.perf_counter() - t1
    return plan


def _canon_py(s: int, p: int, tb: _GoalTables) -> int:
    return int(_boundary_keys(np.array([(s << PB) | p], np.int64), p, tb.perms, tb.masks)[0])


def goal_q_values(
    problem: GoalProblem, plan: GoalPlan, episode: int, step: int, pos: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """Q of every action (summed gains to come) at belief states ``(pos[i], mask[i])`` before
    step ``step`` of ``episode``, shape (n, actions); -inf for dominated actions.

    The states are the roots of one layered solve to the end of the episode (they share
    their successors), continued with ``W(e+1, .)``.
    """
    _jit()
    tb = problem.tables
    H = problem.horizon
    pos, mask = np.asarray(pos, np.int64).reshape(-1), np.asarray(mask, np.int64).reshape(-1)
    roots, inverse = np.unique((mask << PB) | pos, return_inverse=True)
    layers, succs = [roots], []
    for _ in range(step, H):
        nxt, succ = _expand(layers[-1], tb.nbr, tb.perms, tb.masks, True)
        layers.append(nxt)
        succs.append(succ)
    if episode == problem.episodes - 1:
        v = np.zeros(len(layers[-1]))
    else:
        v = _continuation(
            layers[-1], problem.start, tb.perms, tb.masks, plan.w_keys[episode + 1], plan.w_values[episode + 1]
        )
    for k in range(H - step - 1, 0, -1):
        v = _backward(layers[k], succs[k], v, tb.gains[episode, step + k + 1], tb.nbr)
    succ = succs[0][inverse]
    cell = tb.nbr[pos]
    found = (cell >= 0) & ((mask[:, None] >> np.maximum(cell, 0)) & 1 == 1)
    gain = np.where(found, tb.gains[episode, step + 1, np.maximum(cell, 0)], 0.0)
    return np.where(succ >= 0, v[np.maximum(succ, 0)] + gain, -np.inf)


def _first_max(q: np.ndarray) -> int:
    return int(np.argmax(q >= q.max() - TIE_TOL * max(1.0, abs(q.max()))))


def _own_path(problem: GoalProblem, plan: GoalPlan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Bayes agent's path while the goal is not found: (action, position, belief) per step."""
    tb = problem.tables
    H, E = problem.horizon, problem.episodes
    fam = problem.family
    known = fam.known_task_policy()
    actions, positions, beliefs = (np.zeros(E * H, np.int64) for _ in range(3))
    mask = tb.cand_mask
    for e in range(E):
        pos = problem.start
        for t in range(H):
            if mask & (mask - 1) == 0:  # one cell left (or none): the goal is known, walk there
                a = int(known[max(mask.bit_length() - 1, 0), t, pos])
            else:
                a = _first_max(goal_q_values(problem, plan, e, t, np.array([pos]), np.array([mask]))[0])
            actions[e * H + t], positions[e * H + t], beliefs[e * H + t] = a, pos, mask
            pos = int(fam.next_cell[pos, a])
            mask &= ~(1 << pos)
    return actions, positions, beliefs


# ============================================================================ caching
def cache_dir() -> Path:
    """Where solved plans are kept between processes."""
    if os.environ.get("METARL_BENCH_CACHE"):
        return Path(os.environ["METARL_BENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "metarl_bench"


@functools.cache
def _code_digest() -> str:
    h = hashlib.sha256()
    for path in _SOURCES:
        h.update(path.read_bytes())
    return h.hexdigest()


def _cache_file(problem: GoalProblem) -> Path:
    key = hashlib.sha256(repr(problem).encode()).hexdigest()[:16]
    return cache_dir() / "bayes_grid" / f"goal-{key}-{_code_digest()[:12]}.npz"


def _save(plan: GoalPlan, path: Path, problem: GoalProblem) -> None:
    arrays = {f"w_keys_{e}": k for e, k in enumerate(plan.w_keys)}
    arrays |= {f"w_values_{e}": v for e, v in enumerate(plan.w_values)}
    stats = np.array([[k, str(v)] for k, v in plan.stats.items()], dtype=str).reshape(-1, 2)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            np.savez_compressed(
                f,
                problem=np.array(repr(problem)),
                value=plan.value,
                num_states=plan.num_states,
                plan_actions=plan.plan_actions,
                plan_pos=plan.plan_pos,
                plan_mask=plan.plan_mask,
                stats=stats,
                **arrays,
            )
        os.replace(f.name, path)  # atomic: a concurrent reader sees the old file or the new one
        for stale in path.parent.glob(path.name.rsplit("-", 1)[0] + "-*.npz"):  # made by older code
            if stale != path:
                stale.unlink(missing_ok=True)
    except OSError:  # a read-only home: the plan is still cached in-process
        pass


def _load(path: Path, problem: GoalProblem) -> GoalPlan | None:
    try:
        with np.load(path) as z:
            if str(z["problem"]) != repr(problem):
                return None
            episodes = problem.episodes
            plan = GoalPlan(
                float(z["value"]),
                int(z["num_states"]),
                [z[f"w_keys_{e}"] for e in range(episodes)],
                [z[f"w_values_{e}"] for e in range(episodes)],
                z["plan_actions"],
                z["plan_pos"],
                z["plan_mask"],
                {k: float(v) for k, v in z["stats"]},
            )
    except (OSError, KeyError, ValueError):
        return None
    plan.stats["loaded_from_cache"] = 1.0
    return plan


@functools.lru_cache(maxsize=8)
def goal_plan(problem: GoalProblem, use_disk: bool = True) -> GoalPlan:
    """The solved plan of ``problem``: from memory, else from the disk cache, else solved now.

    Processes that need the same plan at once (a sweep's workers) take a file lock, so one
    solves and the others load its result.
    """
    if not use_disk:
        return solve_goal_search(problem)
    path = _cache_file(problem)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{path}.lock")
        lock.acquire()
    except OSError:  # no writable cache: solve in this process only
        return solve_goal_search(problem)
    try:
        plan = _load(path, problem) if path.exists() else None
        if plan is None:
            plan = solve_goal_search(problem)
            _save(plan, path, problem)
        return plan
    finally:
        lock.release()


def goal_tractable(family: GoalGrid) -> bool:
    """Whether the exact goal-search planner handles ``family`` within the documented limits."""
    return (
        family.num_cells <= GOAL_MAX_CELLS
        and family.horizon <= GOAL_MAX_HORIZON
        and family.trial_length <= GOAL_MAX_STEPS
    )


# ============================================================================ goal search: bounds
def beam_plan(family: GoalGrid, width: int = 1024, rank: str = "gain") -> tuple[float, np.ndarray]:
    """An open-loop search path by beam search; returns (its exact expected return, actions).

    Each step keeps the ``width`` distinct (position, S) beliefs ranked best by ``rank``:
    ``"gain"``, the summed gains so far, or ``"advantage"``, the summed excess of each gain
    over the gain of finding that cell first thing in the next episode (which favours far
    cells over ones the next episode reaches cheaply).  Once one candidate is left the
    path walks to it, as the agent does.  The value is exact, so it is a lower bound on the
    Bayes-optimal value.
    """
    if rank not in ("gain", "advantage"):
        raise ValueError(f"rank must be 'gain' or 'advantage', got {rank!r}")
    problem = GoalProblem.of(family)
    tb = problem.tables
    H, E, n_act = problem.horizon, problem.episodes, family.num_actions
    first_next = np.zeros_like(tb.gains)  # gain of each cell found as early as possible in episode e + 1
    d0 = np.maximum(family.distance_from_start(), 1)
    for e in range(E - 1):
        first_next[e] = tb.gains[e + 1, np.minimum(d0, H), np.arange(family.num_cells)]
    if rank == "gain":
        first_next[:] = 0.0
    pos, poss = np.array([problem.start]), family.candidate_mask[None, :].copy()
    score, ranking = np.zeros(1), np.zeros(1)
    parents, moves = [], []
    for e in range(E):
        pos = np.full(len(pos), problem.start)
        for t in range(H):
            rows = np.repeat(np.arange(len(pos)), n_act)
            acts = np.tile(np.arange(n_act), len(pos))
            q = tb.nbr[pos[rows], acts]
            ok = (q >= 0) & ((acts != STAY) | poss[rows, pos[rows]])
            rows, acts, q = rows[ok], acts[ok], q[ok]
            found = poss[rows, q]
            gain = np.where(found, tb.gains[e, t + 1, q], 0.0)
            new_score = score[rows] + gain
            new_rank = ranking[rows] + np.where(found, gain - first_next[e, t + 1, q], 0.0)
            new_poss = poss[rows].copy()
            new_poss[np.arange(len(q)), q] = False
            order = np.argsort(-new_rank, kind="stable")
            cell_bytes = q[order].astype("<u2").view(np.uint8).reshape(-1, 2)
            packed = np.ascontiguousarray(np.concatenate([np.packbits(new_poss[order], axis=1), cell_bytes], axis=1))
            _, first = np.unique(packed.view(np.dtype((np.void, packed.shape[1]))).ravel(), return_index=True)
            keep = order[np.sort(first)[:width]]  # distinct beliefs, best first
            parents.append(rows[keep])
            moves.append(acts[keep])
            pos, poss, score, ranking = q[keep], new_poss[keep], new_score[keep], new_rank[keep]
    best = int(np.argmax(score))
    actions = np.zeros(E * H, np.int64)
    for k in range(E * H - 1, -1, -1):
        actions[k] = moves[k][best]
        best = parents[k][best]
    actions = _walk_to_last_cell(family, actions)
    return path_value(family, actions), actions


def _walk_to_last_cell(family: GoalGrid, actions: np.ndarray) -> np.ndarray:
    """``actions`` with the steps after one candidate is left replaced by the walk to it."""
    known = family.known_task_policy()
    out = actions.copy()
    pos, possible = family.start, family.candidate_mask.copy()
    for k in range(len(out)):
        step = k % family.horizon
        if step == 0:
            pos = family.start
        if possible.sum() == 1:
            out[k] = known[int(possible.argmax()), step, pos]
        pos = int(family.next_cell[pos, out[k]])
        possible[pos] = False
    return out


def path_value(family: GoalGrid, actions: np.ndarray) -> float:
    """Exact expected return of following ``actions`` until the goal is found, then the oracle."""
    problem = GoalProblem.of(family)
    tb = problem.tables
    H = problem.horizon
    mask, total = family.candidate_mask.copy(), 0.0
    pos = problem.start
    for k, a in enumerate(actions):
        e, t = divmod(k, H)
        if t == 0:
            pos = problem.start
        pos = int(family.next_cell[pos, a])
        if mask[pos]:
            total += tb.gains[e, t + 1, pos]
            mask[pos] = False
    return problem.step_reward * problem.episodes * H + total / len(problem.candidates)


def assignment_upper_bound(family: GoalGrid) -> float:
    """Upper bound on the Bayes-optimal value: goal cells assigned to distinct steps, each no
    earlier than its distance from the start (a relaxation of the path constraint)."""
    problem = GoalProblem.of(family)
    tb = problem.tables
    H, E = problem.horizon, problem.episodes
    cand = np.array(problem.candidates)
    dist = family.distance_from_start()[cand]
    steps = np.tile(np.arange(1, H + 1), E)
    eps = np.repeat(np.arange(E), H)
    gain = tb.gains[eps[None, :], steps[None, :], cand[:, None]]
    gain = np.where(steps[None, :] >= np.maximum(dist[:, None], 1), gain, 0.0)  # too early: worth nothing
    rows, cols = linear_sum_assignment(gain, maximize=True)
    return problem.step_reward * E * H + float(gain[rows, cols].sum()) / len(cand)


@functools.lru_cache(maxsize=8)
def _beam(problem: GoalProblem) -> tuple[float, np.ndarray]:
    """The best path of the ``BEAM_SEARCHES`` (cached in-process)."""
    return max((beam_plan(problem.family, w, r) for w, r in BEAM_SEARCHES), key=lambda plan: plan[0])


# ============================================================================ heart/trap
@dataclass
class HeartPlan:
    value: float
    num_states: int
    policy: np.ndarray  # (episodes, horizon, cells): the Bayes action while the heart is unknown


def solve_heart_trap(family: HeartTrap) -> HeartPlan:
    """Exact backward induction over (episode, step, position) for the unresolved belief."""
    H, E, start = family.horizon, family.episodes_per_trial, family.start
    known = family.known_task_values()  # (heart, step, cell) within an episode
    per_episode = known[:, 0, start]
    rewards = family.object_rewards(0)  # +1 object 0, -1 object 1 (under heart = 0)
    touch = rewards != 0
    first = np.where(family.next_cell == family.objects[0], 0, 1)  # which object a touch hits
    cells = family.num_cells
    policy = np.zeros((E, H, cells), np.int64)
    after = 0.0  # unresolved value at the start of the next episode
    for e in range(E - 1, -1, -1):
        v = np.full(cells, after)
        later = E - e - 1
        for t in range(H - 1, -1, -1):
            # touching object k: heart (+1) or trap (-1) with probability 1/2, back at the start, known
            resolved = 0.5 * ((1.0 + known[first, t + 1, start]) + (-1.0 + known[1 - first, t + 1, start]))
            resolved += later * 0.5 * (per_episode[first] + per_episode[1 - first])
            q = np.where(touch, resolved, v[family.next_cell])
            best = q.max(axis=1)
            policy[e, t] = np.argmax(q >= best[:, None] - TIE_TOL, axis=1)
            v = best
        after = v[start]
    return HeartPlan(float(after), E * H * cells, policy)


_HEART_PLANS: dict[str, HeartPlan] = {}


def heart_plan(family: HeartTrap) -> HeartPlan:
    """The solved heart/trap plan of ``family`` (cached in-process by its parameters)."""
    key = repr(sorted(family.params.items()))
    if key not in _HEART_PLANS:
        _HEART_PLANS[key] = solve_heart_trap(family)
    return _HEART_PLANS[key]


# ============================================================================ references
def reference(family: TaskFamily) -> BayesReference | None:
    """The gridworld families' ``bayes_reference``: exact for heart/trap and for goal grids
    within the planner's limits, else the beam-search path as a lower bound, with the
    assignment relaxation as its upper bound."""
    policy = functools.partial(GridBayesPolicy, family)
    if isinstance(family, HeartTrap):
        return BayesReference(EXACT, policy, value=lambda: heart_plan(family).value)
    if isinstance(family, GoalGrid):
        if goal_tractable(family):
            return BayesReference(EXACT, policy, value=lambda: goal_plan(GoalProblem.of(family)).value)
        return BayesReference(
            "lower-bound:beam-plan", policy, upper_bound=functools.partial(assignment_upper_bound, family)
        )
    return None


# ============================================================================ agents
class GridBayesPolicy(Agent):
    """The Bayes policy of the gridworlds: exact where :func:`reference` says "exact", else the
    beam-search path.  Its memory is the family's belief (position included) and the step."""

    name = "bayes"

    def __init__(self, family: TaskFamily, **config: Any):
        if not handles(family):
            raise UnsupportedFamilyError(
                f"the gridworld Bayes planner plays gridworld families, not {family.describe()}"
            )
        super().__init__(family, **config)
        exact = isinstance(family, HeartTrap) or goal_tractable(family)
        self.method = "exact" if exact else "lower-bound:beam-plan"
        self._problem = GoalProblem.of(family) if isinstance(family, GoalGrid) else None
        self._q_cache: dict[tuple[int, int, int, int], int] = {}
        self._path_states: tuple[np.ndarray, np.ndarray] | None = None

    def _plan(self) -> Any:
        if isinstance(self.family, HeartTrap):
            return heart_plan(self.family)
        if self.method == "exact":
            return goal_plan(self._problem)
        return _beam(self._problem)

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        self._plan()  # solve (or load) now, not inside the first act
        return {"belief": self.family.prior(num_trials), "t": 0}

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        action, reward, has_prev = last_transition(obs)
        belief = memory["belief"]
        if has_prev.any():
            new = self.family.update_belief(belief, action, reward, obs["obs"])
            belief = {k: np.where(has_prev.reshape(-1, *[1] * (v.ndim - 1)), v, belief[k]) for k, v in new.items()}
        t = memory["t"]
        episode, step = divmod(t, self.family.horizon)
        if episode >= self.family.episodes_per_trial:
            raise ValueError(f"step {t} is past the trial length {self.family.trial_length}")
        if isinstance(self.family, HeartTrap):
            actions = self._heart_actions(belief, episode, step)
        else:
            actions = self._goal_actions(belief, episode, step)
        return actions, {"belief": belief, "t": t + 1}

    def actions_for(self, belief: Arrays, t: int) -> np.ndarray:
        """The Bayes actions at trial step ``t`` for a given belief (``prior``'s keys: position
        and what is possible), e.g. one a wrapper keeps for a permuted grid."""
        episode, step = divmod(t, self.family.horizon)
        if isinstance(self.family, HeartTrap):
            return self._heart_actions(belief, episode, step)
        return self._goal_actions(belief, episode, step)

    def _heart_actions(self, belief: Arrays, episode: int, step: int) -> np.ndarray:
        pos, p = belief["pos"], belief["p_good"][:, 0]
        unknown = self._plan().policy[episode, step, pos]
        known = self.family.known_task_policy()[np.where(p > 0.5, 0, 1), step, pos]
        return np.where((p == 0.0) | (p == 1.0), known, unknown).astype(np.int64)

    def _goal_actions(self, belief: Arrays, episode: int, step: int) -> np.ndarray:
        fam, pos, possible = self.family, belief["pos"], belief["possible"]
        count = possible.sum(axis=1)
        actions = fam.known_task_policy()[possible.argmax(axis=1), step, pos]  # goal known (one cell left)
        searching = np.flatnonzero(count > 1)
        if not len(searching):
            return actions
        k = episode * fam.horizon + step
        plan = self._plan()
        if self.method == "exact":
            masks = possible[searching].astype(np.int64) @ (np.int64(1) << np.arange(fam.num_cells, dtype=np.int64))
            on_path = (pos[searching] == plan.plan_pos[k]) & (masks == plan.plan_mask[k])
            actions[searching[on_path]] = plan.plan_actions[k]
            off = np.flatnonzero(~on_path)
            actions[searching[off]] = self._exact_off_path(episode, step, pos[searching[off]], masks[off])
            return actions
        _, path = plan
        if self._path_states is None:
            self._path_states = _replay(fam, path)
        positions, beliefs = self._path_states
        on_path = (pos[searching] == positions[k]) & (possible[searching] == beliefs[k]).all(axis=1)
        actions[searching[on_path]] = path[k]
        off = searching[~on_path]
        actions[off] = _nearest_possible(fam, pos[off], possible[off])
        return actions

    def _exact_off_path(self, episode: int, step: int, pos: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Bayes actions at belief states off the agent's own path, solved together and memoised."""
        keys = [(episode, step, int(p), int(m)) for p, m in zip(pos, masks, strict=True)]
        new = [i for i, k in enumerate(keys) if k not in self._q_cache]
        if new:
            q = goal_q_values(self._problem, self._plan(), episode, step, pos[new], masks[new])
            for i, row in zip(new, q, strict=True):
                self._q_cache[keys[i]] = _first_max(row)
        return np.array([self._q_cache[k] for k in keys], np.int64)

    def features(self, memory: Any) -> np.ndarray:
        feats = self.family.belief_features(memory["belief"])
        return np.concatenate([np.asarray(v, float).reshape(len(v), -1) for v in feats.values()], axis=1)


def _replay(family: GoalGrid, path: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position and belief before every step of ``path`` while the goal is not found."""
    H = family.horizon
    pos, possible = family.start, family.candidate_mask.copy()
    positions, beliefs = np.zeros(len(path), np.int64), np.zeros((len(path), family.num_cells), bool)
    for k, a in enumerate(path):
        if k % H == 0:
            pos = family.start
        positions[k], beliefs[k] = pos, possible
        pos = int(family.next_cell[pos, a])
        possible[pos] = False
    return positions, beliefs


def _nearest_possible(family: GoalGrid, pos: np.ndarray, possible: np.ndarray) -> np.ndarray:
    """A step towards the nearest possible goal cell (lowest cell index among the nearest)."""
    xy = family.coords.astype(np.int64)
    dist = np.abs(xy[None, :, :] - xy[pos][:, None, :]).sum(axis=2)
    target = np.where(possible, dist, np.iinfo(np.int64).max).argmin(axis=1)
    dx, dy = xy[target, 0] - xy[pos, 0], xy[target, 1] - xy[pos, 1]
    return np.select([dy > 0, dy < 0, dx < 0, dx > 0], [0, 1, 2, 3], default=STAY).astype(np.int64)
