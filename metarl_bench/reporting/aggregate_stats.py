"""The statistics of the suite aggregates: the interquartile mean (IQM) of a set's task
scores, the mean of its distributions' scores, and the performance profile, with 95%
percentile intervals from a stratified bootstrap (rliable's convention: tasks resampled with
replacement within each distribution; the references re-taken per resample, paired).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import trim_mean

from metarl_bench.evaluation.score import score_of_gain
from metarl_bench.evaluation.stats import BOOTSTRAP_RESAMPLES, CONFIDENCE

BOOTSTRAP_SEED = 0
IQM_CUT = 0.25  # trimmed from each end: the interquartile mean
EVAL_INTERVAL = (f"95% stratified bootstrap over held-out tasks (resampled within each distribution; "
                 f"{BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}); training held fixed")  # fmt: skip


@dataclass
class Estimate:
    """IQM and mean of one contestant over one set, with their bootstrap intervals and profile."""

    iqm: float
    iqm_ci: tuple[float, float]
    mean: float
    mean_ci: tuple[float, float]
    taus: np.ndarray = field(default_factory=lambda: np.zeros(0))
    profile: np.ndarray = field(default_factory=lambda: np.zeros(0))
    profile_ci: tuple[np.ndarray, np.ndarray] = field(default_factory=lambda: (np.zeros(0), np.zeros(0)))


def iqm(scores: Sequence[np.ndarray], axis: int = -1) -> np.ndarray:
    """Interquartile mean of all task scores of the set, pooled (rliable's ``aggregate_iqm``)."""
    return trim_mean(np.concatenate(scores, axis=axis), IQM_CUT, axis=axis)


def stratified_bootstrap(
    tasks: Sequence[tuple[np.ndarray, np.ndarray]],
    taus: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    chunk: int = 250,
) -> Estimate:
    """IQM, mean of distribution scores, and the performance profile over ``taus``, with 95%
    percentile intervals from resampling tasks with replacement *within* each distribution.

    ``tasks`` holds per distribution the per-task ``(gain, gap)``: return - random and
    bayes - random.  A task's score is ``100 gain / mean(gap)``; in each resample the mean gap
    is that of the resampled tasks (paired, as every CI of the suite: the references move with
    their tasks), so a distribution's resampled mean score is its paired score on the resample."""
    tasks = [(np.asarray(g, float), np.asarray(d, float)) for g, d in tasks]
    rng = np.random.default_rng(seed)
    iqms, means, profiles = [], [], []
    for start in range(0, resamples, chunk):  # chunks: a few MB at a time whatever the set's size
        r = min(chunk, resamples - start)
        parts = []
        for gain, gap in tasks:
            idx = rng.integers(0, len(gain), size=(r, len(gain)))
            parts.append(score_of_gain(gain[idx], gap[idx].mean(axis=1, keepdims=True)))
        dist_means = np.stack([p.mean(axis=1) for p in parts], axis=1)  # (r, distributions)
        iqms.append(iqm(parts, axis=1))
        means.append(dist_means.mean(axis=1))
        profiles.append((dist_means[:, :, None] >= taus[None, None, :]).mean(axis=1))
    q = [(1 - CONFIDENCE) / 2 * 100, (1 + CONFIDENCE) / 2 * 100]
    iqm_lo, iqm_hi = np.percentile(np.concatenate(iqms), q)
    mean_lo, mean_hi = np.percentile(np.concatenate(means), q)
    prof_lo, prof_hi = np.percentile(np.concatenate(profiles), q, axis=0)
    scores = [score_of_gain(gain, gap.mean()) for gain, gap in tasks]
    point_means = np.array([s.mean() for s in scores])
    return Estimate(
        iqm=float(iqm(scores)),
        iqm_ci=(float(iqm_lo), float(iqm_hi)),
        mean=float(point_means.mean()),
        mean_ci=(float(mean_lo), float(mean_hi)),
        taus=taus,
        profile=(point_means[:, None] >= taus[None, :]).mean(axis=0),
        profile_ci=(prof_lo, prof_hi),
    )


def tau_grid(values: Sequence[float]) -> np.ndarray:
    """Thresholds of the performance profile: every whole score from below 0 to above the best."""
    values = [v for v in values if np.isfinite(v)]
    low = min([0.0, *values]) - 5
    high = max([100.0, *values]) + 5
    return np.arange(math.floor(low), math.ceil(high) + 1, 1.0)
