"""The score: the one definition every caller uses (ARCHITECTURE.md, definitions).

``score = 100 (return - random) / (bayes - random)``: 0 is random play, 100 the Bayes
reference of the distribution.  The evaluator pairs the three per task (the same tasks, the
same noise); the bootstrap resamples tasks and scores the resampled means.
"""

from __future__ import annotations

import numpy as np

ArrayLike = float | np.ndarray


def score(agent_return: ArrayLike, random_return: ArrayLike, bayes_return: ArrayLike) -> ArrayLike:
    """``100 (agent - random) / (bayes - random)``, elementwise on numbers or arrays."""
    return 100.0 * (agent_return - random_return) / (bayes_return - random_return)


def paired_score(agent: np.ndarray, rand: np.ndarray, bayes: np.ndarray, axis: int = -1) -> np.ndarray:
    """The score of the mean per-task returns along ``axis`` (the form ``bootstrap_ci`` resamples)."""
    return score(agent.mean(axis=axis), rand.mean(axis=axis), bayes.mean(axis=axis))


def score_of_gain(gain: ArrayLike, mean_gap: ArrayLike) -> ArrayLike:
    """The score from ``gain = return - random`` and the mean ``bayes - random`` gap."""
    return score(gain, 0.0, mean_gap)
