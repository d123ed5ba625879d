"""Scoring a recording: linear belief probes on held-out tasks, and agreement with Bayes.

**Probes.**  Trials are split by task into a fit and a test part (every seed of a task on
the same side, so no trial and no task is in both).  For every belief target a linear
ridge probe memory -> target is fitted in closed form on the fit trials
(``metarl_bench.probes.ridge``); the penalty is chosen by grouped 5-fold cross-validation on the
fit trials only.  On the test trials we report R² (1 - SSE/SST, summed over the target's
dimensions) and, for targets that are probability vectors (e.g. a posterior over goal
cells), the accuracy of the probe's most probable entry and the cross-entropy of the true
posterior under the probe's distribution (its prediction floored at ``DIST_FLOOR`` and
renormalised).  Target ``all`` is every belief feature, each scaled to unit total
variance, so each counts equally.  The converse map belief -> memory (Mikulik et al.
2020, linear version) is fitted the same way; its R² is the share of the memory's
variance the belief explains.  Confidence intervals are 95% percentile bootstraps over
test tasks, conditional on the fitted probe (``metarl_bench.evaluation.stats.bootstrap_ci``, the
project's one bootstrap: per-task sums, resampled together).

**Policy agreement.**  At every step, over all trials: the share of steps where the agent's
action equals the Bayes-optimal action (the ``bayes`` agent breaks ties towards the lowest
index, so a different choice among tied arms counts as a disagreement), and, where the
agent exposes ``action_probs``, the mean probability it gives to the Bayes action and the
cross-entropy ``-log p_agent(a_bayes)`` in nats, which equals KL(bayes || agent) for the
deterministic Bayes policy (probabilities floored at ``PROB_FLOOR``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metarl_bench.core.agent import Agent
from metarl_bench.core.seeding import stream
from metarl_bench.evaluation.evaluate import EvalSettings
from metarl_bench.evaluation.stats import bootstrap_ci
from metarl_bench.probes.record import ALL, ProbeError, Recording, check_agent_and_family, record
from metarl_bench.probes.ridge import CV_FOLDS, fit_ridge_cv

DEFAULT_PROBE_TASKS = 1000
DEFAULT_PROBE_SEEDS = (0,)
PROBE_SETTINGS = EvalSettings(n_tasks=DEFAULT_PROBE_TASKS, seeds=DEFAULT_PROBE_SEEDS)
PROB_FLOOR = 1e-12  # -log p_agent(a_bayes) is finite even where the agent gives the Bayes action p = 0
DIST_FLOOR = 1e-4  # a probe's predicted distribution is clipped here, then renormalised
PROBE_SPLIT = 10  # seeding purpose of the fit/test split (0-3 are taken by metarl_bench.core.seeding)

Seed = int | np.random.Generator


# ============================================================================ splits
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


def _per_unit(values: np.ndarray, units: np.ndarray, n_units: int) -> np.ndarray:
    """Sum rows of ``values`` (trials, ...) into their units (tasks)."""
    out = np.zeros((n_units, *values.shape[1:]))
    np.add.at(out, units, values)
    return out


# ============================================================================ figures
@dataclass
class Figure:
    """One held-out figure, its CI and its per-step curve."""

    value: float
    ci: tuple[float, float]
    curve: np.ndarray


def r2_of_sums(sse: np.ndarray, sst: np.ndarray, axis: int = -1) -> np.ndarray:
    """R² = 1 - SSE/SST from per-unit sums (last axis: the unit); NaN where SST vanishes."""
    total = sst.sum(axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 1e-12 * sst.shape[axis], 1.0 - sse.sum(axis=axis) / total, np.nan)


def ratio_of_sums(num: np.ndarray, den: np.ndarray, axis: int = -1) -> np.ndarray:
    """sum(num) / sum(den) over units: a share of steps, with tasks resampled whole."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return num.sum(axis=axis) / den.sum(axis=axis)


def _r2_sums(y: np.ndarray, pred: np.ndarray, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit SSE and SST of trials [trial, step, m], SST around the mean of all of ``y``."""
    uniq, inv = np.unique(units, return_inverse=True)
    sse = _per_unit(((y - pred) ** 2).sum(axis=(1, 2)), inv, len(uniq))
    sst = _per_unit(((y - y.reshape(-1, y.shape[-1]).mean(axis=0)) ** 2).sum(axis=(1, 2)), inv, len(uniq))
    return sse, sst


def r2_figure(y: np.ndarray, pred: np.ndarray, units: np.ndarray, seed: Seed = 0) -> Figure:
    """Held-out R² (variance-weighted over dimensions) of trials [trial, step, m], CI over units.

    R² = 1 - SSE / SST, SST around the test mean.  The bootstrap holds both predictors fixed
    (the probe and the test mean) and resamples units, so R² is a ratio of per-unit sums; a
    resample's own mean would shrink SST by ~1/units and bias the interval low.
    """
    sse, sst = _r2_sums(y, pred, units)
    with np.errstate(divide="ignore", invalid="ignore"):
        sst_t = ((y - y.mean(axis=0)) ** 2).sum(axis=(0, 2))
        curve = np.where(sst_t > 1e-12 * len(y), 1.0 - ((y - pred) ** 2).sum(axis=(0, 2)) / sst_t, np.nan)
    return Figure(float(r2_of_sums(sse, sst)), bootstrap_ci(r2_of_sums, sse, sst, seed=seed), curve)


def r2_value(y: np.ndarray, pred: np.ndarray, units: np.ndarray) -> float:
    """The same held-out R² without CI or curve (the converse map's figure)."""
    return float(r2_of_sums(*_r2_sums(y, pred, units)))


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
    y: np.ndarray, pred: np.ndarray, units: np.ndarray, seed: Seed = 0
) -> tuple[Figure, float, float]:
    """(accuracy with CI and curve, mean cross-entropy, mean entropy of the true posterior)."""
    q = as_distribution(pred)
    best = y >= y.max(axis=-1, keepdims=True) - 1e-9  # all most probable entries count (ties)
    hit = np.take_along_axis(best, q.argmax(axis=-1)[..., None], axis=-1)[..., 0].astype(float)
    xent = -(y * np.log(q)).sum(axis=-1)
    entropy = -(np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)).sum(axis=-1)
    uniq, inv = np.unique(units, return_inverse=True)
    hits = _per_unit(hit.sum(axis=1), inv, len(uniq))
    steps = _per_unit(np.full(len(y), float(y.shape[1])), inv, len(uniq))
    acc = Figure(float(hit.mean()), bootstrap_ci(ratio_of_sums, hits, steps, seed=seed), hit.mean(axis=0))
    return acc, float(xent.mean()), float(entropy.mean())


# ============================================================================ probes
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
    seed: Seed = 0,
) -> dict[str, TargetResult]:
    """Ridge probes memory -> every target (and the converse) on the fit trials, scored on the test trials.

    ``rng`` assigns tasks to cross-validation folds; ``seed`` drives the bootstrap.
    """
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
        inverse = fit_ridge_cv(y[fit].reshape(-1, y.shape[-1]), mem_fit, groups, rng)["memory"]
        res = TargetResult(
            name, kind, y.shape[-1], r2_figure(yt, pred, units, seed), fitted[name].alpha,
            r2_value(x_test, inverse.predict(yt), units),
        )  # fmt: skip
        if kind == "distribution":
            res.accuracy, res.xent, res.entropy = categorical_figures(yt, pred, units, seed)
        out[name] = res
    return out


# ============================================================================ agreement
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
    seed: Seed = 0,
) -> Agreement:
    """Share of steps where ``actions`` equal ``bayes_actions`` (CI over tasks); mean p and -log p of the latter."""
    match = (actions == bayes_actions).astype(float)
    uniq, inv = np.unique(tasks, return_inverse=True)
    steps = _per_unit(np.full(len(match), float(match.shape[1])), inv, len(uniq))

    def figure(v: np.ndarray) -> Figure:
        per = _per_unit(v.sum(axis=1), inv, len(uniq))
        return Figure(float(v.mean()), bootstrap_ci(ratio_of_sums, per, steps, seed=seed), v.mean(axis=0))

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
    """Record ``agent`` on the held-out tasks of ``env``, fit and score the probes, measure agreement.

    ``split_seed`` fixes the fit/test split, the cross-validation folds and the bootstrap.
    """
    check_agent_and_family(agent, env)
    rng = stream(PROBE_SPLIT, env, split_seed)
    fit_tasks, _ = split_tasks(settings.n_tasks, fit_frac, rng)  # checked before the (slow) rollout
    rec = record(agent, env, agent.family, settings, control)
    n_trials = len(rec.actions)
    fit = trials_of(fit_tasks, settings.n_tasks, n_trials)
    test = np.setdiff1d(np.arange(n_trials), fit)
    targets = probe_memory(rec.features, rec.beliefs, fit, test, rec.task_of_trial, rng, split_seed)
    if rec.control_features is not None:
        ctrl = probe_memory(rec.control_features, rec.beliefs, fit, test, rec.task_of_trial, rng, split_seed)
        for name, res in targets.items():
            res.control = ctrl[name]
    agree = c_agree = None
    if rec.bayes_actions is not None:
        tasks = rec.task_of_trial
        agree = policy_agreement(rec.actions, rec.bayes_actions, rec.bayes_prob, tasks, split_seed)
        if rec.control_actions is not None:
            c_agree = policy_agreement(
                rec.control_actions, rec.bayes_actions, rec.control_bayes_prob, tasks, split_seed
            )
    return ProbeReport(
        agent.name, env, targets, agree, c_agree, rec.bayes_method, control_note,
        rec.features.shape[-1], fit, test, rec,
    )  # fmt: skip
