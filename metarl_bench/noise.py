"""Counter-based random numbers for common random numbers (CRN) across agents.

A trial draws one 64-bit key from its ``numpy.random.Generator`` at the start.  The
noise of the n-th pull of arm a is then a pure function of (key, a, n), so two agents
that pull arm a for the n-th time see the same reward, whatever they did before.  This
"reward table" coupling is what makes paired comparisons between agents tight, and it
costs no memory (the table is never stored).  The mixing function is SplitMix64's
finaliser (Steele, Lea & Flood 2014), applied with numpy's wrapping uint64 arithmetic.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_ARM = np.uint64(0xD6E8FEB86659FD93)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_INV_2_53 = 1.0 / 9007199254740992.0


def draw_keys(rng: np.random.Generator, num_trials: int) -> np.ndarray:
    """One independent 64-bit noise key per trial."""
    return rng.integers(0, np.iinfo(np.uint64).max, size=num_trials, dtype=np.uint64, endpoint=True)


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def counter_uniform(keys: np.ndarray, arms: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Uniform(0, 1) numbers, one per (key, arm, count) triple, never exactly 0 or 1."""
    z = keys + (arms.astype(np.uint64) * _ARM) + (counts.astype(np.uint64) + np.uint64(1)) * _GOLDEN
    bits = _mix(z) >> _S11  # top 53 bits
    return (bits.astype(np.float64) + 0.5) * _INV_2_53


def counter_normal(keys: np.ndarray, arms: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Standard normal numbers by inverse CDF of :func:`counter_uniform`."""
    return ndtri(counter_uniform(keys, arms, counts))
