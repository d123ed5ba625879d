"""The Bayes reference the tabular-MDP family declares: the best measured policy, and an upper bound.

**Lower bound.**  The Bayes-optimal policy plans over beliefs about 500 unknown
parameters (10 states, 5 actions), out of exact reach.  The family declares
``"lower-bound:<policy>"``: the tabular-MDP agent (``metarl_bench.baselines.mdp_agents``)
with the highest mean return on *training* tasks (the train stream, never the held-out
tasks), measured per distribution by ``python studies/mdp_tuning.py --write`` and kept,
with the agents' tuned constants, in the data file :data:`TUNED_FILE` (:func:`tuned_table`).
Families outside that file (other parameters) play PSRL, the one candidate without a
tuned constant.  A family imports no agent: the policy is named by its
registered agent name and built through the registry (``make_agent``) when asked for.

**Upper bound, better than the oracle** (an information relaxation, Brown, Smith & Sun
2010).  For any policy and any MDP ``M``, the return of an episode is
``V*(start) - E sum_t gap_t(s_t, a_t)`` with ``gap_t(s, a) = V*_t(s) - Q*_t(s, a) >= 0``
(the performance-difference identity, exact for history-dependent policies).  While the
first episode has visited only distinct states (event ``D_t``: ``s_0, ..., s_t`` all
different), the agent acts in a state it has never acted in: nothing it has seen
depends on that state's parameters, which are independent of the rest and exchangeable
across actions under the prior, so its expected gap there is the *mean* gap over the
actions, and the law of that chain of new states is the same under every policy (as
under uniformly random actions).  Hence no policy beats

    E[n V*(start)] - E[sum_{t < H} 1{D_t} mean_a gap_t(s_t, a)],

the oracle's return less the gaps it cannot avoid on the first walk through new
states.  :func:`forced_gap` computes the second term exactly per task by dynamic
programming over (set of visited states, current state) with the action-averaged
transition matrix (``2^S S`` entries per task; past ``MAX_EXACT_STATES`` states the
chain is cut after its first step, which keeps the bound valid since gaps are >= 0).
"""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metarl_bench.core.family import LOWER_BOUND, Arrays, BayesReference, TaskFamily
from metarl_bench.core.registry import make_agent
from metarl_bench.envs.tabular_mdp.family import TabularMDP

MAX_EXACT_STATES = 12
UPPER_BOUND_TASKS = 20_000  # Monte Carlo sample of the prior for the oracle term of the scalar bound
GAP_TASKS = 4_000  # the first of those for the forced-gap term (its spread across tasks is small)
UPPER_BOUND_SEED = 20161109  # fixed, apart from every train and evaluation stream
CHUNK = 500

UNTUNED_POLICY = "psrl"  # every other distribution: PSRL, which reads no tuned constant

# The choices of ``studies/mdp_tuning.py --write`` on 1000 training tasks per n of the rl2-mdps
# distributions (their parameters but ``episodes`` at the defaults of TabularMDP): the agents'
# constants and the lower-bound policy, one line each.  Read here rather than in
# ``baselines/mdp_agents.py`` because a family may not import agents, while the agents may import
# families; the file lies in baselines/tuned/ beside the bandits' (package data), a sibling
# folder of envs/ both in the repository and installed.
TUNED_FILE = Path(__file__).resolve().parents[2] / "baselines" / "tuned" / "mdp_constants.csv"
TUNED_COLUMNS = ("agent", "episodes", "param", "value", "train_return", "tasks", "command")
REFERENCE_AGENT, REFERENCE_PARAM = "reference", "policy"  # the lines naming the policy: value is its agent name


@dataclass(frozen=True)
class TunedTable:
    """What the tuned-constants file holds: agent -> n -> constant, and n -> lower-bound policy."""

    constants: dict[str, dict[int, float]]
    best_policy: dict[int, str]


def parse_tuned(path: Path) -> TunedTable:
    """The table in ``path``, every line checked; RuntimeError naming the file if it is missing or corrupt."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, strict=True)
            missing = [c for c in TUNED_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise ValueError(f"no columns {missing}")
            constants: dict[str, dict[int, float]] = {}
            best: dict[int, str] = {}
            for row in reader:
                if None in row or None in row.values():  # DictReader's marks of a line too long or too short
                    raise ValueError(f"line {reader.line_num} has not the header's {len(reader.fieldnames)} fields")
                n, agent, value = int(row["episodes"]), row["agent"], row["value"]
                if n <= 0 or int(row["tasks"]) <= 0 or not math.isfinite(float(row["train_return"])):
                    raise ValueError(f"line {reader.line_num}: episodes, tasks or train_return out of range")
                table = best if agent == REFERENCE_AGENT else constants.setdefault(agent, {})
                if n in table:
                    raise ValueError(f"line {reader.line_num} repeats {agent} at n = {n}")
                if agent == REFERENCE_AGENT:
                    if row["param"] != REFERENCE_PARAM or not value:
                        raise ValueError(f"line {reader.line_num}: no {REFERENCE_PARAM} named")
                    best[n] = value
                elif math.isfinite(x := float(value)):
                    constants[agent][n] = x
                else:
                    raise ValueError(f"line {reader.line_num}: value {value!r} is not a finite number")
            if not constants and not best:
                raise ValueError("no lines")
    except (OSError, ValueError, csv.Error) as exc:  # UnicodeDecodeError is a ValueError
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)  # the path is said once
        detail = " ".join(f"{type(exc).__name__}: {text}".split())  # one line, whatever the cause said
        raise RuntimeError(
            f"the tuned MDP constants {path} cannot be read ({detail}); python studies/mdp_tuning.py --write writes it"
        ) from None
    return TunedTable(constants, best)


@functools.cache
def _cached_table(path: Path) -> TunedTable:
    return parse_tuned(path)


def tuned_table() -> TunedTable:
    """The table in :data:`TUNED_FILE`, read once per path (a test may point ``TUNED_FILE`` elsewhere)."""
    return _cached_table(Path(TUNED_FILE))


def best_policy(family: TaskFamily) -> str:
    """Registered agent name of the policy the family declares as its lower bound (see module doc)."""
    if family.params == TabularMDP(episodes=family.episodes_per_trial).params:
        return tuned_table().best_policy.get(family.episodes_per_trial, UNTUNED_POLICY)
    return UNTUNED_POLICY


def reference(family: TabularMDP) -> BayesReference:
    """The tabular-MDP families' ``bayes_reference``: the best measured policy, named as a
    lower bound, with the first-walk relaxation as its upper bound.  The policy is the agent of
    that name, looked up in the registry each time it is built."""
    name = best_policy(family)
    return BayesReference(
        f"{LOWER_BOUND}:{name}",
        functools.partial(make_agent, name, family),
        upper_bound=functools.partial(prior_upper_bound, family),
    )


def forced_gap(family: TabularMDP, tasks: Arrays) -> np.ndarray:
    """Per task, ``E[sum_{t<H} 1{D_t} mean_a gap_t(s_t, a)]`` of the module doc, shape (N,)."""
    out = np.empty(len(tasks["R"]))
    for lo in range(0, len(out), CHUNK):
        part = {k: v[lo : lo + CHUNK] for k, v in tasks.items()}
        out[lo : lo + CHUNK] = _forced_gap(family, part)
    return out


def _forced_gap(family: TabularMDP, tasks: Arrays) -> np.ndarray:
    Q, V = family.known_task_plan(tasks)
    gap = V[:, :-1, :] - Q.mean(axis=3)  # (N, H, S): mean over actions of V*_t(s) - Q*_t(s, a)
    N, H, S = gap.shape
    start = family.start_state
    if S > MAX_EXACT_STATES:
        return gap[:, 0, start]
    P_bar = tasks["P"].mean(axis=2)  # (N, S, S): next-state law under a uniformly random action
    # The chain's states: (set of visited states, current state); at step t the set has t + 1
    # members, so each step keeps only the sets of that size (a layer).
    masks = np.arange(2**S)
    size = np.array([bin(m).count("1") for m in masks])
    layers = [masks[size == k] for k in range(S + 1)]
    position = np.zeros(2**S, np.int64)
    for layer in layers:
        position[layer] = np.arange(len(layer))
    mass = np.zeros((N, len(layers[1]), S))  # P(D_t, visited set, current state)
    mass[:, position[1 << start], start] = 1.0
    total = np.zeros(N)
    for t in range(min(H, S)):
        total += (mass * gap[:, t, None, :]).sum(axis=(1, 2))
        if t + 1 == min(H, S):
            break
        flow = mass @ P_bar  # flow[V, s'] = sum_s mass[V, s] P_bar(s, s')
        mass = np.zeros((N, len(layers[t + 2]), S))
        for s in range(S):  # only a move to a state not yet visited keeps D_t
            fresh = (layers[t + 1] >> s) & 1 == 0
            mass[:, position[layers[t + 1][fresh] | (1 << s)], s] = flow[:, fresh, s]
    return total


def relaxed_upper_return(family: TabularMDP, tasks: Arrays) -> np.ndarray:
    """Per task, the first-walk relaxation's value: no policy's expected return exceeds its mean."""
    return family.oracle_return(tasks) - forced_gap(family, tasks)


@functools.cache
def _prior_upper_bound(family_key: tuple) -> float:
    family = TabularMDP(**dict(family_key))
    tasks = family.sample_tasks(np.random.default_rng(UPPER_BOUND_SEED), UPPER_BOUND_TASKS)
    chunks = ({k: v[lo : lo + CHUNK] for k, v in tasks.items()} for lo in range(0, UPPER_BOUND_TASKS, CHUNK))
    oracle = np.concatenate([family.oracle_return(chunk) for chunk in chunks])
    gap = forced_gap(family, {k: v[:GAP_TASKS] for k, v in tasks.items()})
    return float(oracle.mean() - gap.mean())


def prior_upper_bound(family: TabularMDP) -> float:
    """The relaxation's value under the prior, a Monte Carlo estimate: the oracle's mean over
    ``UPPER_BOUND_TASKS`` tasks of a fixed stream less the forced gap's mean over ``GAP_TASKS``
    of them (standard errors printed by ``studies/mdp_tuning.py``)."""
    return _prior_upper_bound(tuple(sorted(family.params.items())))
