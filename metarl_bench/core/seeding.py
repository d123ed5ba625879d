"""Seed streams: training and evaluation never share random numbers.

Every stream is a ``numpy.random.SeedSequence`` whose entropy is the user's seed and
whose ``spawn_key`` names the purpose and the distribution: (purpose, crc32(name), ...).
Streams with different spawn keys are independent by SeedSequence's construction, so
the held-out evaluation tasks (purpose ``EVAL_TASKS``) are never the training tasks
(purpose ``TRAIN``), whatever seeds the user picks.
"""

from __future__ import annotations

import zlib

import numpy as np

TRAIN, EVAL_TASKS, EVAL_NOISE, EVAL_AGENT = 0, 1, 2, 3


def stream(purpose: int, name: str, seed: int, *extra: int) -> np.random.Generator:
    """The Generator for ``purpose`` on distribution ``name`` with user seed ``seed``."""
    key = (purpose, zlib.crc32(name.encode()), *extra)
    return np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=key))


def train_rng(name: str, seed: int, steps_done: int = 0) -> np.random.Generator:
    """The training stream; a training resumed after ``steps_done`` env steps draws from a
    stream of its own, so it does not meet the first tasks again."""
    return stream(TRAIN, name, seed) if steps_done == 0 else stream(TRAIN, name, seed, int(steps_done))


def eval_task_rng(name: str, task_seed: int = 0) -> np.random.Generator:
    """Draws the fixed held-out task set of a distribution (same for every agent)."""
    return stream(EVAL_TASKS, name, task_seed)


def eval_noise_rng(name: str, seed: int) -> np.random.Generator:
    """Reward noise of evaluation seed ``seed``: common to every agent (CRN)."""
    return stream(EVAL_NOISE, name, seed)


def eval_agent_rng(name: str, seed: int) -> np.random.Generator:
    """The agent's own randomness (exploration, sampled actions) under evaluation seed ``seed``."""
    return stream(EVAL_AGENT, name, seed)
