"""Belief probes: read the exact posterior out of an agent's memory, and compare its actions
with the Bayes-optimal policy on the very same histories.

    python -m metarl_bench.probe --agent vsml --env bernoulli-k2-h100
    python -m metarl_bench.probe --agent rl2 --env bernoulli-k2-h100 --checkpoint my_rl2.zip --no-save

**Recording.**  The agent plays the held-out tasks of the evaluator (evaluation task
stream, one noise and agent stream per seed).  Before every action ``t`` we record the
agent's ``features(memory)`` after it has read observation ``t`` (the memory it acts on)
and the family's exact belief after the ``t`` transitions so far (``prior`` then
``update_belief(belief, action, reward, next obs)``, named by ``belief_features``).  The
``bayes`` agent and, as the control, an untrained agent of the same architecture and
config read the very same observation stream (they shadow the probed agent; their own
actions never reach the environment), so all three act on the same history.

**Probes.**  Trials are split by task into a fit and a test part (every seed of a task on
the same side, so no trial and no task is in both).  For every belief target a linear
ridge probe memory -> target is fitted in closed form on the fit trials; the penalty is
chosen by grouped 5-fold cross-validation on the fit trials only.  On the test trials we
report R² (1 - SSE/SST, summed over the target's dimensions) and, for targets that are
probability vectors (e.g. a posterior over goal cells), the accuracy of the probe's
most probable entry and the cross-entropy of the true posterior under the probe's
distribution (its prediction floored at ``DIST_FLOOR`` and renormalised).  Target
``all`` is every belief feature, each scaled to unit total variance, so each counts equally.  The
converse map belief -> memory (Mikulik et al. 2020, linear version) is fitted the same way;
its R² is the share of the memory's variance the belief explains.  Confidence intervals
are 95% percentile bootstraps over test tasks, conditional on the fitted probe.

**Policy agreement.**  At every step, over all trials: the share of steps where the agent's
action equals the Bayes-optimal action (the ``bayes`` agent breaks ties towards the lowest
index, so a different choice among tied arms counts as a disagreement), and, where the
agent exposes ``action_probs``, the mean probability it gives to the Bayes action and the
cross-entropy ``-log p_agent(a_bayes)`` in nats, which equals KL(bayes || agent) for the
deterministic Bayes policy (probabilities floored at ``PROB_FLOOR``).

**``results/probes.csv``** (one row per agent x distribution x target; appended atomically,
as the leaderboard is):

    agent, env                 registered names
    target                     belief_features key, or "all" (every feature, each scaled to unit variance)
    target_kind                "distribution" (rows are probability vectors) or "continuous"
    target_dim, memory_dim     dimensions of the target and of the agent's features
    r2, r2_ci_low, r2_ci_high  held-out R² of the probe memory -> target, 95% CI
    control_r2, control_r2_ci_low, control_r2_ci_high   the same on the untrained control
    accuracy, accuracy_ci_low, accuracy_ci_high  distribution targets: the probe's argmax
                               is a most probable entry of the true posterior (else empty)
    control_accuracy           the same for the control
    xent, control_xent         distribution targets: mean cross-entropy (nats) of the true
                               posterior under the probe's distribution
    target_entropy             mean entropy of the true posterior (the floor of xent)
    belief_to_memory_r2, control_belief_to_memory_r2   held-out R² of target -> memory
    ridge_alpha, control_ridge_alpha   chosen penalty (per row of standardised features)
    agreement, agreement_ci_low, agreement_ci_high   share of steps with the Bayes action
    bayes_action_prob          mean p_agent(Bayes action) (agents with action_probs)
    bayes_xent                 mean -log p_agent(Bayes action), nats = KL(bayes || agent)
    control_agreement, control_bayes_action_prob   the same for the control
    bayes_method               "exact" or "lower-bound:<policy>" (the bayes agent's); empty
                               when no bayes agent plays the family (agreement then empty)
    control                    how the control was built, or why there is none
    n_tasks, seeds, task_seed  held-out tasks, evaluation seeds (;-separated), task stream seed
    n_trials, n_fit_trials, n_test_trials, split_seed, steps   trials (tasks x seeds), the
                               split, and steps per trial
    train_env, checkpoint      what the probed agent was trained on / loaded from
    env_spec, agent_config     JSON, as in the leaderboard
    device, threads, version, commit, command, timestamp   provenance, as in the leaderboard
    wall_s, run_id             wall time of the whole probe run; unique id of the run

Per-step curves go to ``results/probes/<env>__<agent>.csv`` and ``.png``.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import shlex
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metarl_bench.agent import Agent
from metarl_bench.evaluate import EvalSettings, held_out_tasks
from metarl_bench.family import TaskFamily
from metarl_bench.leaderboard import append_csv, read_csv
from metarl_bench.options import TrainOptions, int_list, non_negative_int, positive_int
from metarl_bench.provenance import provenance
from metarl_bench.registry import (
    UnknownNameError,
    get_agent_factory,
    get_spec,
    list_agents,
    list_families,
    make_agent,
    resolve_agents,
    resolve_envs,
)
from metarl_bench.seeding import eval_agent_rng, eval_noise_rng, stream
from metarl_bench.stats import BOOTSTRAP_RESAMPLES, CONFIDENCE
from metarl_bench.sweep import train_or_load
from metarl_bench.trial import TrialEnv

PROBE_FILE = "probes.csv"
PROBE_DIR = "probes"
PROBE_COLUMNS = [
    "agent", "env", "target", "target_kind", "target_dim", "memory_dim",
    "r2", "r2_ci_low", "r2_ci_high", "control_r2", "control_r2_ci_low", "control_r2_ci_high",
    "accuracy", "accuracy_ci_low", "accuracy_ci_high", "control_accuracy",
    "xent", "control_xent", "target_entropy",
    "belief_to_memory_r2", "control_belief_to_memory_r2", "ridge_alpha", "control_ridge_alpha",
    "agreement", "agreement_ci_low", "agreement_ci_high", "bayes_action_prob", "bayes_xent",
    "control_agreement", "control_bayes_action_prob", "bayes_method", "control",
    "n_tasks", "seeds", "task_seed", "n_trials", "n_fit_trials", "n_test_trials", "split_seed", "steps",
    "train_env", "checkpoint", "env_spec", "agent_config",
    "device", "threads", "version", "commit", "command", "timestamp", "wall_s", "run_id",
]  # fmt: skip
DEFAULT_PROBE_TASKS = 1000
DEFAULT_PROBE_SEEDS = (0,)
PROBE_SETTINGS = EvalSettings(n_tasks=DEFAULT_PROBE_TASKS, seeds=DEFAULT_PROBE_SEEDS)
RIDGE_ALPHAS = np.logspace(-9, 2, 23)  # penalty per row of standardised features: lambda = alpha * rows
CV_FOLDS = 5
PROB_FLOOR = 1e-12  # -log p_agent(a_bayes) is finite even where the agent gives the Bayes action p = 0
DIST_FLOOR = 1e-4  # a probe's predicted distribution is clipped here, then renormalised
PROBE_SPLIT = 10  # seeding purpose of the fit/test split (0-3 are taken by metarl_bench.seeding)
ALL = "all"


class ProbeError(ValueError):
    """Input the probe cannot work with; the message says what was wrong and what is allowed."""


# ============================================================================ what can be probed
def has_features(agent_cls: Any) -> bool:
    """Whether an agent class overrides ``Agent.features``."""
    return isinstance(agent_cls, type) and issubclass(agent_cls, Agent) and agent_cls.features is not Agent.features


def agents_with_features() -> list[str]:
    """Registered agents that expose their memory (imports lazy agents such as rl2)."""
    return [n for n in list_agents() if has_features(get_agent_factory(n))]


def has_belief_model(family: TaskFamily) -> bool:
    cls = type(family)
    if any(getattr(cls, m) is getattr(TaskFamily, m) for m in ("prior", "update_belief", "belief_features")):
        return False
    try:
        family.belief_features(family.prior(1))
    except NotImplementedError:
        return False
    return True


def families_with_belief() -> list[str]:
    return [n for n in list_families() if has_belief_model(get_spec(n).make())]


def check_probeable(agent_name: str, env: str) -> None:
    """Raise ProbeError unless ``agent_name`` has features() and ``env`` has a belief model."""
    factory = get_agent_factory(agent_name)
    if isinstance(factory, type) and not has_features(factory):  # a plain factory function is checked when run
        raise ProbeError(
            f"agent {agent_name!r} exposes no features() (its memory), so it cannot be probed; "
            f"agents that do: {', '.join(agents_with_features())}"
        )
    if not has_belief_model(get_spec(env).make()):
        raise ProbeError(
            f"distribution {env!r} has no belief model (prior, update_belief, belief_features), so there is "
            f"no posterior to probe for; distributions with one: {', '.join(families_with_belief())}"
        )


def untrained_control(agent: Agent, family: TaskFamily, seed: int = 0) -> tuple[Agent | None, str]:
    """An untrained agent of the same architecture and config, and a note on how it was built.

    A freshly constructed agent is used as it is when it can act (VSML: the seeded initial
    parameters); one without a model yet (RL²) gets ``fit(family, budget=0)``, which builds
    the network and takes no step.  Non-learning agents have no control.
    """
    if not agent.learns:
        return None, "none: agent does not learn"
    control = make_agent(agent.name, family, **agent.config)
    try:
        control.reset(1)
        return control, f"untrained {agent.name} (same config, initial parameters)"
    except RuntimeError:  # no model until fit() builds one
        pass
    kwargs = {"progress": False} if "progress" in inspect.signature(control.fit).parameters else {}
    stats = control.fit(family, 0, seed, **kwargs)
    if stats.get("train_steps", 0) != 0:
        raise ProbeError(f"fit(budget=0) trained {agent.name!r} for {stats['train_steps']} steps; no untrained control")
    return control, f"untrained {agent.name} (same config, fit budget 0, seed {seed})"


# ============================================================================ recording
@dataclass
class Recording:
    """What the probed agent (and its shadows) did on the held-out trials.

    Trials are seed-major: trial ``j`` is task ``j % n_tasks`` under seed ``seeds[j // n_tasks]``.
    Arrays are indexed [trial, step, ...]; ``features`` is None when not recorded.
    """

    n_tasks: int
    features: np.ndarray | None
    control_features: np.ndarray | None
    beliefs: dict[str, np.ndarray]
    actions: np.ndarray
    bayes_actions: np.ndarray | None
    bayes_prob: np.ndarray | None  # p_agent(Bayes action), agents with action_probs
    control_actions: np.ndarray | None
    control_bayes_prob: np.ndarray | None
    bayes_method: str
    wall_s: float

    @property
    def task_of_trial(self) -> np.ndarray:
        return np.arange(len(self.actions)) % self.n_tasks


def _action_probs(agent: Agent, obs: dict[str, np.ndarray], memory: Any) -> np.ndarray | None:
    """The agent's action probabilities at ``obs``, on a copy of its memory (the real step is act())."""
    fn = getattr(agent, "action_probs", None)
    if fn is None:
        return None
    probs, _ = fn(obs, copy.deepcopy(memory))
    return np.asarray(probs, np.float64)


def _features(agent: Agent, memory: Any, n: int) -> np.ndarray:
    try:
        x = np.asarray(agent.features(memory), np.float32)
    except NotImplementedError as exc:
        raise ProbeError(f"{exc}; agents that do: {', '.join(agents_with_features())}") from None
    if x.ndim != 2 or len(x) != n:
        raise ProbeError(f"agent {agent.name!r}: features() must return shape ({n}, d), got {x.shape}")
    if not np.isfinite(x).all():
        raise ProbeError(f"agent {agent.name!r}: features() returned NaN or infinite values")
    return x


def _flat_beliefs(family: TaskFamily, belief: Any, n: int) -> dict[str, np.ndarray]:
    out = {}
    for name, value in family.belief_features(belief).items():
        v = np.asarray(value, np.float64).reshape(n, -1)
        if name == ALL:
            raise ProbeError(f"{family.describe()}: belief feature name {ALL!r} is reserved by the probe")
        out[name] = v
    return out


def bayes_shadow(family: TaskFamily) -> tuple[Agent | None, str]:
    """The ``bayes`` agent for ``family`` and its method, or (None, why not)."""
    try:
        agent = make_agent("bayes", family)
    except (ValueError, UnknownNameError) as exc:
        return None, f"no bayes agent: {exc}"
    return agent, getattr(agent, "method", "exact")


def record(
    agent: Agent,
    env: str,
    family: TaskFamily,
    settings: EvalSettings,
    control: Agent | None = None,
    with_features: bool = True,
) -> Recording:
    """Play the held-out tasks of ``env`` with ``agent``; shadow it with the bayes agent and ``control``."""
    start = time.perf_counter()
    tasks = held_out_tasks(env, family, settings)
    n, T, S = settings.n_tasks, family.trial_length, len(settings.seeds)
    bayes, bayes_method = bayes_shadow(family)
    acts = np.zeros((S, n, T), np.int64)
    bayes_acts = np.zeros((S, n, T), np.int64) if bayes else None
    ctrl_acts = np.zeros((S, n, T), np.int64) if control else None
    p_bayes = c_p_bayes = None
    feats = ctrl_feats = None
    beliefs: dict[str, np.ndarray] = {}
    for i, seed in enumerate(settings.seeds):
        trial_env = TrialEnv(family, num_trials=n)
        obs = trial_env.reset(seed=eval_noise_rng(env, seed), tasks=tasks)
        memory = agent.reset(n, rng=eval_agent_rng(env, seed), tasks=tasks if agent.privileged else None)
        b_mem = bayes.reset(n, rng=eval_agent_rng(env, seed)) if bayes else None
        c_mem = control.reset(n, rng=eval_agent_rng(env, seed)) if control else None
        belief, rewards = family.prior(n), np.zeros(n)
        for t in range(T):
            if t > 0:  # the posterior after t transitions: what the agent knows when it picks action t
                belief = family.update_belief(belief, acts[i, :, t - 1], rewards, obs["obs"])
            for name, v in _flat_beliefs(family, belief, n).items():
                beliefs.setdefault(name, np.zeros((S, n, T, v.shape[1])))[i, :, t] = v
            probs = _action_probs(agent, obs, memory) if bayes else None
            acts[i, :, t], memory = agent.act(obs, memory)
            if with_features:
                x = _features(agent, memory, n)
                feats = np.zeros((S, n, T, x.shape[1]), np.float32) if feats is None else feats
                feats[i, :, t] = x
            if bayes:
                bayes_acts[i, :, t], b_mem = bayes.act(obs, b_mem)
                if probs is not None:
                    p_bayes = np.zeros((S, n, T)) if p_bayes is None else p_bayes
                    p_bayes[i, :, t] = probs[np.arange(n), bayes_acts[i, :, t]]
            if control:
                c_probs = _action_probs(control, obs, c_mem) if bayes else None
                ctrl_acts[i, :, t], c_mem = control.act(obs, c_mem)
                x = _features(control, c_mem, n)
                ctrl_feats = np.zeros((S, n, T, x.shape[1]), np.float32) if ctrl_feats is None else ctrl_feats
                ctrl_feats[i, :, t] = x
                if c_probs is not None:
                    c_p_bayes = np.zeros((S, n, T)) if c_p_bayes is None else c_p_bayes
                    c_p_bayes[i, :, t] = c_probs[np.arange(n), bayes_acts[i, :, t]]
            obs, rewards, _, _ = trial_env.step(acts[i, :, t])

    def flat(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a.reshape(S * n, *a.shape[2:])

    return Recording(
        n_tasks=n,
        features=flat(feats),
        control_features=flat(ctrl_feats),
        beliefs={k: flat(v) for k, v in beliefs.items()},
        actions=flat(acts),
        bayes_actions=flat(bayes_acts),
        bayes_prob=flat(p_bayes),
        control_actions=flat(ctrl_acts),
        control_bayes_prob=flat(c_p_bayes),
        bayes_method=bayes_method if bayes else "",
        wall_s=time.perf_counter() - start,
    )


# ============================================================================ splits and bootstrap
def split_tasks(n_tasks: int, fit_frac: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint (fit, test) task indices; every trial of a task lands on its task's side."""
    if not 0.0 < fit_frac < 1.0:
        raise ProbeError(f"fit_frac must lie strictly between 0 and 1, got {fit_frac!r}")
    n_fit = int(round(fit_frac * n_tasks))
    if n_fit < CV_FOLDS or n_tasks - n_fit < 2:
        raise ProbeError(
            f"{n_tasks} tasks with fit_frac={fit_frac} leave {n_fit} fit and {n_tasks - n_fit} test tasks; "
            f"the probe needs >= {CV_FOLDS} fit tasks (cross-validation folds) and >= 2 test tasks"
        )
    order = rng.permutation(n_tasks)
    return np.sort(order[:n_fit]), np.sort(order[n_fit:])


def trials_of(tasks: np.ndarray, n_tasks: int, n_trials: int) -> np.ndarray:
    """Indices of the (seed-major) trials that play ``tasks``."""
    return np.flatnonzero(np.isin(np.arange(n_trials) % n_tasks, tasks))


def bootstrap_ci(
    stat: Callable[[np.ndarray], np.ndarray], n_units: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Percentile CI of ``stat`` over units resampled with replacement.

    ``stat`` maps resampling counts of shape (resamples, n_units) to one value per resample,
    so sums of per-unit statistics are a matrix product (no copy of the data per resample).
    """
    counts = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=BOOTSTRAP_RESAMPLES).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = stat(counts)
    if not np.isfinite(values).any():
        return float("nan"), float("nan")
    tail = 100 * (1 - CONFIDENCE) / 2
    lo, hi = np.nanpercentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def _per_unit(values: np.ndarray, units: np.ndarray, n_units: int) -> np.ndarray:
    """Sum rows of ``values`` (trials, ...) into their units (tasks)."""
    out = np.zeros((n_units, *values.shape[1:]))
    np.add.at(out, units, values)
    return out


# ============================================================================ ridge probes
@dataclass
class Ridge:
    """A fitted linear map: standardise x, multiply, add the target mean."""

    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: np.ndarray
    coef: np.ndarray
    alpha: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.x_mean) / self.x_scale) @ self.coef + self.y_mean


class _Gram:
    """Closed-form ridge for many penalties at once: eigen-decomposition of X'X (X standardised)."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x_mean = x.mean(axis=0)
        scale = x.std(axis=0)
        self.x_scale = np.where(scale > 1e-12, scale, 1.0)  # constant features contribute nothing
        xs = (x - self.x_mean) / self.x_scale
        self.y_mean = y.mean(axis=0)
        self.rows = len(x)
        self.eig, self.vecs = np.linalg.eigh(xs.T @ xs)
        self.proj = self.vecs.T @ (xs.T @ (y - self.y_mean))  # V' X' y

    def coef(self, alpha: float, cols: slice = slice(None)) -> np.ndarray:
        lam = alpha * self.rows
        return self.vecs @ (self.proj[:, cols] / (np.maximum(self.eig, 0.0) + lam)[:, None])

    def ridge(self, alpha: float, cols: slice = slice(None)) -> Ridge:
        return Ridge(self.x_mean, self.x_scale, self.y_mean[cols], self.coef(alpha, cols), alpha)


def fit_ridge_cv(
    x: np.ndarray,
    targets: Mapping[str, np.ndarray],
    groups: np.ndarray,
    rng: np.random.Generator,
    alphas: Iterable[float] = RIDGE_ALPHAS,
    folds: int = CV_FOLDS,
) -> dict[str, Ridge]:
    """Ridge maps x -> each target, the penalty of each chosen by grouped K-fold CV (min. SSE).

    ``x`` (rows, d) and every target (rows, m) hold only the fit rows; ``groups`` (rows,)
    names each row's task, so a task is never on both sides of a fold.
    """
    alphas = np.asarray(list(alphas), float)
    names = list(targets)
    y = np.concatenate([targets[k] for k in names], axis=1)
    bounds = np.cumsum([0] + [targets[k].shape[1] for k in names])
    cols = {k: slice(bounds[i], bounds[i + 1]) for i, k in enumerate(names)}
    uniq = np.unique(groups)
    if len(uniq) < folds:
        raise ProbeError(f"cross-validation needs >= {folds} fit tasks, got {len(uniq)}")
    fold_of = dict(zip(rng.permutation(uniq), np.arange(len(uniq)) % folds, strict=True))
    fold = np.vectorize(fold_of.__getitem__)(groups)
    sse = np.zeros((len(alphas), y.shape[1]))
    for f in range(folds):
        train, val = fold != f, fold == f
        gram = _Gram(x[train], y[train])
        xv = ((x[val] - gram.x_mean) / gram.x_scale) @ gram.vecs
        for a, alpha in enumerate(alphas):
            lam = alpha * gram.rows
            pred = xv @ (gram.proj / (np.maximum(gram.eig, 0.0) + lam)[:, None]) + gram.y_mean
            sse[a] += ((y[val] - pred) ** 2).sum(axis=0)
    full = _Gram(x, y)
    return {k: full.ridge(float(alphas[np.argmin(sse[:, cols[k]].sum(axis=1))]), cols[k]) for k in names}


# ============================================================================ metrics
@dataclass
class Figure:
    """One held-out figure, its CI and its per-step curve."""

    value: float
    ci: tuple[float, float]
    curve: np.ndarray


def _nan_figure(steps: int) -> Figure:
    return Figure(float("nan"), (float("nan"), float("nan")), np.full(steps, np.nan))


def r2_figure(y: np.ndarray, pred: np.ndarray, units: np.ndarray, rng: np.random.Generator) -> Figure:
    """Held-out R² (variance-weighted over dimensions) of trials [trial, step, m], CI over units.

    R² = 1 - SSE / SST, SST around the test mean.  The bootstrap holds both predictors fixed
    (the probe and the test mean) and resamples units, so R² is a ratio of per-unit sums; a
    resample's own mean would shrink SST by ~1/units and bias the interval low.
    """
    uniq, inv = np.unique(units, return_inverse=True)
    sse = _per_unit(((y - pred) ** 2).sum(axis=(1, 2)), inv, len(uniq))
    sst = _per_unit(((y - y.reshape(-1, y.shape[-1]).mean(axis=0)) ** 2).sum(axis=(1, 2)), inv, len(uniq))

    def stat(w: np.ndarray) -> np.ndarray:
        total = w @ sst
        return np.where(total > 1e-12 * (w @ np.ones_like(sst)), 1.0 - (w @ sse) / total, np.nan)

    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(stat(np.ones(len(uniq))))
        sst_t = ((y - y.mean(axis=0)) ** 2).sum(axis=(0, 2))
        curve = np.where(sst_t > 1e-12 * len(y), 1.0 - ((y - pred) ** 2).sum(axis=(0, 2)) / sst_t, np.nan)
    return Figure(value, bootstrap_ci(stat, len(uniq), rng), curve)


def as_distribution(pred: np.ndarray) -> np.ndarray:
    """A probe's linear prediction as a probability vector: floored at DIST_FLOOR, renormalised."""
    p = np.maximum(pred, DIST_FLOOR)
    return p / p.sum(axis=-1, keepdims=True)


def is_distribution(target: np.ndarray) -> bool:
    """Whether every row of ``target`` [..., m] is a probability vector over m >= 2 entries."""
    return target.shape[-1] >= 2 and bool(
        (target >= -1e-9).all() and (target <= 1 + 1e-9).all() and np.allclose(target.sum(axis=-1), 1.0, atol=1e-6)
    )


def categorical_figures(
    y: np.ndarray, pred: np.ndarray, units: np.ndarray, rng: np.random.Generator
) -> tuple[Figure, float, float]:
    """(accuracy with CI and curve, mean cross-entropy, mean entropy of the true posterior)."""
    q = as_distribution(pred)
    best = y >= y.max(axis=-1, keepdims=True) - 1e-9  # all most probable entries count (ties)
    hit = np.take_along_axis(best, q.argmax(axis=-1)[..., None], axis=-1)[..., 0].astype(float)
    xent = -(y * np.log(q)).sum(axis=-1)
    entropy = -(np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)).sum(axis=-1)
    uniq, inv = np.unique(units, return_inverse=True)
    hits = _per_unit(hit.sum(axis=1), inv, len(uniq))
    cnt = _per_unit(np.full(len(y), float(y.shape[1])), inv, len(uniq))
    acc = Figure(float(hit.mean()), bootstrap_ci(lambda w: (w @ hits) / (w @ cnt), len(uniq), rng), hit.mean(axis=0))
    return acc, float(xent.mean()), float(entropy.mean())


@dataclass
class TargetResult:
    """Probe figures of one target on the probed agent (and its control)."""

    name: str
    kind: str
    dim: int
    r2: Figure
    alpha: float
    inverse_r2: float
    accuracy: Figure | None = None
    xent: float = float("nan")
    entropy: float = float("nan")
    control: TargetResult | None = None


def _standardised_all(beliefs: Mapping[str, np.ndarray], fit: np.ndarray) -> np.ndarray:
    """Every belief feature, each scaled to unit total variance on the fit trials (so each counts equally).

    Scaling whole features, not single dimensions, keeps near-constant entries (a cell's
    posterior of 1/81) from being blown up to the size of the others.
    """
    parts = []
    for v in beliefs.values():
        total_sd = np.sqrt(v[fit].reshape(-1, v.shape[-1]).var(axis=0).sum())
        if total_sd > 1e-12:  # a constant feature carries nothing to decode
            parts.append(v / total_sd)
    return np.concatenate(parts, axis=-1)


def probe_memory(
    features: np.ndarray,
    beliefs: Mapping[str, np.ndarray],
    fit: np.ndarray,
    test: np.ndarray,
    task_of_trial: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, TargetResult]:
    """Ridge probes memory -> every target (and the converse) on the fit trials, scored on the test trials."""
    T = features.shape[1]
    targets = {**beliefs, ALL: _standardised_all(beliefs, fit)}
    x_fit = features[fit].reshape(-1, features.shape[-1]).astype(np.float64)
    groups = np.repeat(task_of_trial[fit], T)
    fitted = fit_ridge_cv(x_fit, {k: v[fit].reshape(-1, v.shape[-1]) for k, v in targets.items()}, groups, rng)
    units = task_of_trial[test]
    x_test = features[test].astype(np.float64)
    mem_fit = {"memory": x_fit}
    out = {}
    for name, y in targets.items():
        yt = y[test]
        pred = fitted[name].predict(x_test)
        kind = "distribution" if name != ALL and is_distribution(y) else "continuous"
        # converse map: how much of the memory's variance this belief summary explains linearly
        inv = fit_ridge_cv(y[fit].reshape(-1, y.shape[-1]), mem_fit, groups, rng)["memory"]
        inverse = r2_figure(x_test, inv.predict(yt), units, rng).value
        res = TargetResult(name, kind, y.shape[-1], r2_figure(yt, pred, units, rng), fitted[name].alpha, inverse)
        if kind == "distribution":
            res.accuracy, res.xent, res.entropy = categorical_figures(yt, pred, units, rng)
        out[name] = res
    return out


@dataclass
class Agreement:
    """Agreement with the Bayes-optimal action at every step, over all trials."""

    agreement: Figure
    bayes_action_prob: Figure | None
    bayes_xent: float


def policy_agreement(
    actions: np.ndarray,
    bayes_actions: np.ndarray,
    p_bayes: np.ndarray | None,
    tasks: np.ndarray,
    rng: np.random.Generator,
) -> Agreement:
    """Share of steps where ``actions`` equal ``bayes_actions`` (CI over tasks); mean p and -log p of the latter."""
    match = (actions == bayes_actions).astype(float)
    uniq, inv = np.unique(tasks, return_inverse=True)
    cnt = _per_unit(np.full(len(match), float(match.shape[1])), inv, len(uniq))

    def figure(v: np.ndarray) -> Figure:
        per = _per_unit(v.sum(axis=1), inv, len(uniq))
        return Figure(float(v.mean()), bootstrap_ci(lambda w: (w @ per) / (w @ cnt), len(uniq), rng), v.mean(axis=0))

    if p_bayes is None:
        return Agreement(figure(match), None, float("nan"))
    return Agreement(figure(match), figure(p_bayes), float(-np.log(np.maximum(p_bayes, PROB_FLOOR)).mean()))


# ============================================================================ one probe run
@dataclass
class ProbeReport:
    """Everything one probe run produced."""

    agent: str
    env: str
    targets: dict[str, TargetResult]
    agreement: Agreement | None
    control_agreement: Agreement | None
    bayes_method: str
    control_note: str
    memory_dim: int
    fit_trials: np.ndarray
    test_trials: np.ndarray
    recording: Recording
    info: dict[str, Any] = field(default_factory=dict)


def probe(
    agent: Agent,
    env: str,
    settings: EvalSettings = PROBE_SETTINGS,
    control: Agent | None = None,
    control_note: str = "none",
    fit_frac: float = 0.5,
    split_seed: int = 0,
) -> ProbeReport:
    """Record ``agent`` on the held-out tasks of ``env``, fit and score the probes, measure agreement."""
    family = agent.family
    if not has_features(type(agent)):
        allowed = ", ".join(agents_with_features())
        raise ProbeError(f"agent {agent.name!r} exposes no features() (its memory); agents that do: {allowed}")
    if not has_belief_model(family):
        raise ProbeError(
            f"distribution {env!r} has no belief model; distributions with one: {', '.join(families_with_belief())}"
        )
    rng = stream(PROBE_SPLIT, env, split_seed)
    fit_tasks, _ = split_tasks(settings.n_tasks, fit_frac, rng)  # checked before the (slow) rollout
    rec = record(agent, env, family, settings, control)
    n_trials = len(rec.actions)
    fit = trials_of(fit_tasks, settings.n_tasks, n_trials)
    test = np.setdiff1d(np.arange(n_trials), fit)
    targets = probe_memory(rec.features, rec.beliefs, fit, test, rec.task_of_trial, rng)
    if rec.control_features is not None:
        ctrl = probe_memory(rec.control_features, rec.beliefs, fit, test, rec.task_of_trial, rng)
        for name, res in targets.items():
            res.control = ctrl[name]
    agree = c_agree = None
    if rec.bayes_actions is not None:
        tasks = rec.task_of_trial
        agree = policy_agreement(rec.actions, rec.bayes_actions, rec.bayes_prob, tasks, rng)
        if rec.control_actions is not None:
            c_agree = policy_agreement(rec.control_actions, rec.bayes_actions, rec.control_bayes_prob, tasks, rng)
    return ProbeReport(
        agent.name, env, targets, agree, c_agree, rec.bayes_method, control_note,
        rec.features.shape[-1], fit, test, rec,
    )  # fmt: skip


# ============================================================================ rows, files, plots
def _nan(x: float | None) -> float:
    return float("nan") if x is None else x


def report_rows(report: ProbeReport, settings: EvalSettings, extra: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One schema row per target (``extra`` holds provenance and the run's settings)."""
    a, c = report.agreement, report.control_agreement
    rows = []
    for t in report.targets.values():
        ct = t.control
        nan2 = (float("nan"), float("nan"))
        row = {
            "agent": report.agent,
            "env": report.env,
            "target": t.name,
            "target_kind": t.kind,
            "target_dim": t.dim,
            "memory_dim": report.memory_dim,
            "r2": t.r2.value,
            "r2_ci_low": t.r2.ci[0],
            "r2_ci_high": t.r2.ci[1],
            "control_r2": ct.r2.value if ct else float("nan"),
            "control_r2_ci_low": (ct.r2.ci if ct else nan2)[0],
            "control_r2_ci_high": (ct.r2.ci if ct else nan2)[1],
            "accuracy": t.accuracy.value if t.accuracy else float("nan"),
            "accuracy_ci_low": (t.accuracy.ci if t.accuracy else nan2)[0],
            "accuracy_ci_high": (t.accuracy.ci if t.accuracy else nan2)[1],
            "control_accuracy": ct.accuracy.value if ct and ct.accuracy else float("nan"),
            "xent": t.xent,
            "control_xent": ct.xent if ct else float("nan"),
            "target_entropy": t.entropy,
            "belief_to_memory_r2": t.inverse_r2,
            "control_belief_to_memory_r2": ct.inverse_r2 if ct else float("nan"),
            "ridge_alpha": t.alpha,
            "control_ridge_alpha": ct.alpha if ct else float("nan"),
            "agreement": a.agreement.value if a else float("nan"),
            "agreement_ci_low": (a.agreement.ci if a else nan2)[0],
            "agreement_ci_high": (a.agreement.ci if a else nan2)[1],
            "bayes_action_prob": a.bayes_action_prob.value if a and a.bayes_action_prob else float("nan"),
            "bayes_xent": a.bayes_xent if a else float("nan"),
            "control_agreement": c.agreement.value if c else float("nan"),
            "control_bayes_action_prob": c.bayes_action_prob.value if c and c.bayes_action_prob else float("nan"),
            "bayes_method": report.bayes_method,
            "control": report.control_note,
            "n_tasks": settings.n_tasks,
            "seeds": ";".join(str(s) for s in settings.seeds),
            "task_seed": settings.task_seed,
            "n_trials": len(report.recording.actions),
            "n_fit_trials": len(report.fit_trials),
            "n_test_trials": len(report.test_trials),
            "steps": report.recording.actions.shape[1],
            **extra,
        }
        rows.append(row)
    return rows


def read_probes(path: str | Path) -> pd.DataFrame:
    """``probes.csv`` as a DataFrame (empty if absent); LeaderboardError if it does not fit the schema."""
    return read_csv(path, PROBE_COLUMNS, "probe")


def append_rows(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Atomically append schema rows to ``path`` (the leaderboard's lock, temp file, fsync, rename)."""
    return append_csv(path, rows, PROBE_COLUMNS, read_probes)


def curves(report: ProbeReport) -> pd.DataFrame:
    """Per-step curves: R² (and accuracy) per target, agreement, for the agent and its control."""
    steps = report.recording.actions.shape[1]
    cols: dict[str, np.ndarray] = {"step": np.arange(1, steps + 1)}
    for t in report.targets.values():
        cols[f"r2_{t.name}"] = t.r2.curve
        if t.control:
            cols[f"control_r2_{t.name}"] = t.control.r2.curve
        if t.accuracy:
            cols[f"accuracy_{t.name}"] = t.accuracy.curve
    for prefix, agr in (("", report.agreement), ("control_", report.control_agreement)):
        if agr:
            cols[f"{prefix}agreement"] = agr.agreement.curve
            if agr.bayes_action_prob:
                cols[f"{prefix}bayes_action_prob"] = agr.bayes_action_prob.curve
    return pd.DataFrame(cols)


def write_curves(report: ProbeReport, folder: str | Path) -> tuple[Path, Path]:
    """``<env>__<agent>.csv`` (per-step curves) and ``.png`` (R² and agreement over the trial)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    df = curves(report)
    stem = folder / f"{report.env}__{report.agent}"
    df.to_csv(stem.with_suffix(".csv"), index=False, float_format="%.6g")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for i, t in enumerate(report.targets.values()):
        color = f"C{i}"
        ax1.plot(df["step"], df[f"r2_{t.name}"], color=color, lw=1.3, label=t.name)
        if f"control_r2_{t.name}" in df:
            ax1.plot(df["step"], df[f"control_r2_{t.name}"], color=color, lw=1, ls="--")
    ax1.set_ylim(-0.2, 1.05)
    ax1.set_xlabel("step of the trial")
    ax1.set_ylabel("held-out R² of the linear probe")
    ax1.set_title("solid: agent, dashed: untrained control", fontsize=8)
    ax1.legend(fontsize=7)
    for prefix, style in (("", "-"), ("control_", "--")):
        if f"{prefix}agreement" in df:
            ax2.plot(df["step"], df[f"{prefix}agreement"], "k" + style, lw=1.2, label=f"{prefix}agreement")
        if f"{prefix}bayes_action_prob" in df:
            ax2.plot(df["step"], df[f"{prefix}bayes_action_prob"], "C3" + style, lw=1, label=f"{prefix}p(Bayes action)")
    ax2.set_ylim(0, 1.02)
    ax2.set_xlabel("step of the trial")
    ax2.set_ylabel("agreement with the Bayes action")
    ax2.set_title(f"Bayes policy: {report.bayes_method or 'none for this family'}", fontsize=8)
    ax2.legend(fontsize=7)
    fig.suptitle(f"{report.agent} on {report.env}")
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=90)
    plt.close(fig)
    return stem.with_suffix(".csv"), stem.with_suffix(".png")


def format_table(rows: list[dict[str, Any]]) -> str:
    """The probe table: target, R² [CI], control, accuracy (distributions), converse R², agreement."""

    def ci(v: float, lo: float, hi: float) -> str:
        return "" if np.isnan(v) else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"

    table = pd.DataFrame(
        {
            "agent": [r["agent"] for r in rows],
            "env": [r["env"] for r in rows],
            "target": [r["target"] for r in rows],
            "R² [95% CI]": [ci(r["r2"], r["r2_ci_low"], r["r2_ci_high"]) for r in rows],
            "control R²": [ci(r["control_r2"], r["control_r2_ci_low"], r["control_r2_ci_high"]) for r in rows],
            "accuracy": [ci(r["accuracy"], r["accuracy_ci_low"], r["accuracy_ci_high"]) for r in rows],
            "ctrl acc": [f"{r['control_accuracy']:.3f}" if not np.isnan(r["control_accuracy"]) else "" for r in rows],
            "belief->mem R²": [f"{r['belief_to_memory_r2']:.3f}" for r in rows],
            "agreement": [ci(r["agreement"], r["agreement_ci_low"], r["agreement_ci_high"]) for r in rows],
        }
    )
    return table.to_string(index=False)


def format_footer(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in {(r["agent"], r["env"]): r for r in rows}.values():
        head = f"{r['agent']} on {r['env']}:"
        if np.isnan(r["agreement"]):
            lines.append(f"{head} no Bayes-optimal policy to compare with ({r['bayes_method'] or 'no bayes agent'})")
        else:
            extra = ""
            if not np.isnan(r["bayes_action_prob"]):
                extra = (
                    f"; mean p_agent(Bayes action) {r['bayes_action_prob']:.3f}; "
                    f"cross-entropy -log p_agent(Bayes action) {r['bayes_xent']:.3f} nats (= KL(bayes||agent))"
                )
            ctrl = "" if np.isnan(r["control_agreement"]) else f"; control agreement {r['control_agreement']:.3f}"
            lines.append(f"{head} agreement with Bayes-optimal ({r['bayes_method']}) {r['agreement']:.3f}{extra}{ctrl}")
        lines.append(f"  control: {r['control']}; {r['n_fit_trials']} fit / {r['n_test_trials']} test trials")
    return "\n".join(lines)


# ============================================================================ CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m metarl_bench.probe",
        description="Linear belief probes of an agent's memory, and agreement with the Bayes-optimal policy.",
    )
    p.add_argument("--agent", required=True, help="agent(s) with features(): name or comma list")
    p.add_argument("--env", required=True, help="distribution(s) with a belief model: name, suite or comma list")
    p.add_argument("--seeds", type=int_list, default=DEFAULT_PROBE_SEEDS, help="evaluation seeds, e.g. 0,1")
    p.add_argument("--eval-tasks", type=positive_int, default=DEFAULT_PROBE_TASKS, help="held-out tasks")
    p.add_argument("--fit-frac", type=float, default=0.5, help="share of the tasks the probes are fitted on")
    p.add_argument("--split-seed", type=non_negative_int, default=0, help="seed of the fit/test split, bootstrap")
    p.add_argument("--train-env", help="the learning agent's checkpoint is the one trained on this distribution")
    p.add_argument("--checkpoint", help="probe this saved agent instead of the shipped checkpoint")
    p.add_argument("--train-steps", type=positive_int, help="meta-train the agent for this budget first")
    p.add_argument("--retrain", action="store_true", help="train the learning agent instead of loading its checkpoint")
    p.add_argument("--train-seed", type=non_negative_int, default=0, help="seed of training and the untrained control")
    p.add_argument("--no-control", action="store_true", help="skip the untrained-agent control")
    p.add_argument("--device", default="cpu", help="torch device for learning agents")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--no-save", action="store_true", help="print only; write no rows or plots")
    return p


def prepare_agent(name: str, env: str, args: argparse.Namespace) -> tuple[Agent, dict[str, str]]:
    """Build the agent and load its checkpoint (or train it), as ``metarl_bench.run`` does."""
    family = get_spec(env).make()
    agent = make_agent(name, family)
    if args.checkpoint:
        agent = type(agent).load(args.checkpoint, family)
        return agent, {"train_env": getattr(agent, "trained_on", "") or "", "checkpoint": str(args.checkpoint)}
    if not agent.learns:
        return agent, {"train_env": "", "checkpoint": ""}
    train_env, stats = train_or_load(
        agent,
        env,
        TrainOptions(args.train_env, args.train_steps, args.train_seed, args.retrain, device=args.device),
    )
    return agent, {"train_env": train_env, "checkpoint": stats.get("checkpoint", "")}


def run_one(name: str, env: str, args: argparse.Namespace, settings: EvalSettings, command: str) -> ProbeReport:
    start = time.perf_counter()
    agent, trained = prepare_agent(name, env, args)
    if args.no_control:
        control, note = None, "none: --no-control"
    else:
        control, note = untrained_control(agent, agent.family, args.train_seed)
    report = probe(agent, env, settings, control, note, args.fit_frac, args.split_seed)
    spec = get_spec(env)
    report.info = {
        "split_seed": args.split_seed,
        **trained,
        "env_spec": json.dumps({"id": spec.gym_id, "kwargs": agent.family.params}, sort_keys=True),
        "agent_config": json.dumps(agent.config, sort_keys=True, default=str),
        **provenance(threads=args.threads, device=args.device if agent.learns else None),
        "command": command,
        "wall_s": time.perf_counter() - start,
        "run_id": uuid.uuid4().hex,
    }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "metarl_bench.probe", *argv])
    try:
        agents = resolve_agents(args.agent)
        envs = resolve_envs(args.env)
        if args.train_env:
            get_spec(args.train_env)  # exactly one distribution (a suite or a list would fail every run)
        settings = EvalSettings(n_tasks=args.eval_tasks, seeds=args.seeds)
        split_tasks(args.eval_tasks, args.fit_frac, np.random.default_rng(0))  # fails now, not after a rollout
        for a in agents:
            for e in envs:
                check_probeable(a, e)
        if args.checkpoint and args.train_steps:
            raise ProbeError("give --checkpoint or --train-steps, not both")
    except (UnknownNameError, ValueError) as exc:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    if "torch" in sys.modules or any(a in ("rl2", "vsml") for a in agents):
        import torch

        torch.set_num_threads(args.threads)
    results = Path(args.results)
    rows: list[dict[str, Any]] = []
    for env in envs:
        for name in agents:
            try:
                report = run_one(name, env, args, settings, command)
            except (ValueError, RuntimeError) as exc:  # e.g. no checkpoint, an agent that cannot play env
                print(f"error: probing {name} on {env}: {exc}", file=sys.stderr)
                continue
            new = report_rows(report, settings, report.info)
            rows += new
            if not args.no_save:  # one append per run: a later failure loses nothing already done
                append_rows(results / PROBE_FILE, new)
                write_curves(report, results / PROBE_DIR)
    if not rows:
        return 1
    print(format_table(rows))
    print(format_footer(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
