"""The Bernoulli bandit step fused into one compiled loop (numba).

The numpy step (``BernoulliBandit.step_numpy``) is the reference: gather the pulled arm's
noise counter, advance it, mix it (SplitMix64's finaliser, ``metarl_bench.noise``) and
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

from metarl_bench.noise import COUNTER_STEP

# SplitMix64's finaliser constants (as in metarl_bench.noise), typed uint64 so that numba
# keeps every operation in wrapping 64-bit integer arithmetic.
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_STEP = np.uint64(COUNTER_STEP)


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


@functools.cache
def bernoulli_rewards() -> Callable[..., None]:
    """The compiled kernel (numba, once per process; the machine code is cached on disk)."""
    import numba

    return numba.njit(cache=True, nogil=True, boundscheck=False)(_bernoulli_rewards)
