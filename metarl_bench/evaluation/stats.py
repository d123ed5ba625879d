"""Confidence intervals: the one bootstrap that every figure of the suite uses.

A unit (a held-out task) is resampled with everything measured on it: its seed
average, its references, its probe errors.  So every statistic is *paired*: an
agent's score and the references it is divided by move together, and a probe's sum of
errors and sum of squares are resampled over the same tasks.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import bootstrap

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000

# statistic(*samples, axis=-1) -> one value per resample (vectorised, as scipy.stats.bootstrap asks)
Statistic = Callable[..., np.ndarray]


def mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return x.mean(axis=axis)


def bootstrap_ci(
    statistic: Statistic, *samples: np.ndarray, seed: int | np.random.Generator = 0
) -> tuple[float, float]:
    """95% percentile bootstrap CI of ``statistic`` over units, the samples paired by unit.

    ``samples`` are arrays whose last axis is the unit (one value per held-out task).  A
    statistic that is undefined on every resample gives ``(nan, nan)``; samples that are
    identical everywhere give a zero-width interval at the statistic's value.
    """
    samples = tuple(np.asarray(s, dtype=float) for s in samples)
    if np.ptp(np.stack([np.broadcast_to(s, samples[0].shape) for s in samples])) == 0:
        v = float(statistic(*samples, axis=-1))
        return v, v
    with np.errstate(divide="ignore", invalid="ignore"):
        res = bootstrap(
            samples,
            statistic,
            paired=True,
            vectorized=True,
            n_resamples=BOOTSTRAP_RESAMPLES,
            confidence_level=CONFIDENCE,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return low, high
