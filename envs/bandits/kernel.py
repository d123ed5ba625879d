"""The Bernoulli bandit step fused into one compiled loop (numba).

The numpy step (``BernoulliBandit.step_numpy``) is the reference: gather the pulled arm's
noise counter, advance it, mix it (SplitMix64's finaliser, ``metarl_bench.core.noise``) and
compare the top 53 bits with the arm's integer threshold.  In numpy each of those is a
pass over the batch with its own temporary array, and at 16384 trials the passes, not
the arithmetic, are the cost.  Here one loop does all of it per trial, in registers.
The results are the same bits: uint64 arithmetic wraps in both, and
``tests/test_bandit_kernel.py`` checks rewards and counters against the numpy step.

Compiled on first use (importing this module imports no numba) and cached on disk.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from metarl_bench.core.noise import ARM_OFFSET, COUNTER_STEP, UNIFORM_SCALE

# SplitMix64's finaliser constants (as in metarl_bench.core.noise), typed uint64 so that numba
# keeps every operation in wrapping 64-bit integer arithmetic.
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_STEP = np.uint64(COUNTER_STEP)
_ARM = np.uint64(ARM_OFFSET)
_INV_2_53 = UNIFORM_SCALE


_BLOCK = 256  # trials per block: the gathered counters and thresholds stay in L1


def _bernoulli_rewards(noise: np.ndarray, actions: np.ndarray, k: int, out: np.ndarray):
    """``out[i]`` = 1.0 if the i-th trial's pull of arm ``actions[i]`` succeeds, else 0.0;
    advances that arm's counter.  ``noise`` is the flat (trials, k, 2) table of counters
    and thresholds (``BernoulliBandit.noise_table``)."""
    s30, s27, s31, s11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
    n = actions.shape[0]
    counters = np.empty(_BLOCK, np.uint64)
    limits = np.empty(_BLOCK, np.uint64)
    # Two loops per block, gather-and-advance then mix-and-compare: in one loop the
    # counter stores and the reward stores (whose data waits on the mixing) slowed every
    # load behind them, 3x (measured on the 2-core EPYC; benchmarks/env_throughput.py).
    for start in range(0, n, _BLOCK):
        m = min(_BLOCK, n - start)
        for j in range(m):
            at = 2 * ((start + j) * k + actions[start + j])  # counter, then its threshold
            z = noise[at]
            counters[j] = z
            limits[j] = noise[at + 1]
            noise[at] = z + _STEP
        for j in range(m):
            z = counters[j]
            z ^= z >> s30
            z *= _M1
            z ^= z >> s27
            z *= _M2
            z ^= z >> s31
            out[start + j] = np.float64((z >> s11) < limits[j])


def _noise_table(keys: np.ndarray, pulls: np.ndarray, p: np.ndarray, out: np.ndarray):
    """``BernoulliBandit.noise_table`` in one pass: per (trial, arm) the counter of the next
    pull (``noise.counter_start``) and the integer threshold of p (``noise.uniform_thresholds``,
    the same float operations in the same order, so the same bits)."""
    two53 = 9007199254740992.0
    for i in range(pulls.shape[0]):
        for a in range(pulls.shape[1]):
            out[i, a, 0] = (np.uint64(pulls[i, a]) + np.uint64(1)) * _STEP + keys[i] + np.uint64(a) * _ARM
            q = p[i, a]
            if np.isnan(q):
                q = -1.0
            elif np.isinf(q):
                q = 2.0 if q > 0 else -1.0
            f = min(max(np.floor(q * two53), 0.0), two53)
            lo = f - 1.0
            below_lo = lo >= 0.0 and (lo + 0.5) * _INV_2_53 < p[i, a]
            below_f = f < two53 and (f + 0.5) * _INV_2_53 < p[i, a]
            out[i, a, 1] = np.uint64(max(lo, 0.0)) + np.uint64(below_lo) + np.uint64(below_f)


@functools.cache
def noise_table() -> Callable[..., None]:
    """The compiled table builder (numba, cached like :func:`bernoulli_rewards`)."""
    import numba

    return numba.njit(cache=True, nogil=True)(_noise_table)


@functools.cache
def bernoulli_rewards() -> Callable[..., None]:
    """The compiled kernel (numba, once per process; the machine code is cached on disk)."""
    import numba

    return numba.njit(cache=True, nogil=True, boundscheck=False)(_bernoulli_rewards)
