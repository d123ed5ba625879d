"""The tabular-MDP step fused into one compiled loop (numba), but for the normal quantile.

``TabularMDP.step_numpy`` is the reference: gather each trial's 64-byte record of
(state, action), advance its noise counter, mix the counter twice (reward and transition
streams, ``metarl_bench.noise``), count the CDF entries at or below the transition's
32 bits (the next state) and turn the reward bits into a uniform.  Here one loop does
that per trial; the normal quantile of the uniforms stays one ``scipy.special.ndtri``
call over the batch (numba has no ndtri of the same bits).  Same results bit for bit:
``tests/test_tabular_mdp.py`` steps both.

Compiled on first use (importing this module imports no numba) and cached on disk.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from metarl_bench.noise import COUNTER_STEP, UNIFORM_SCALE

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_STEP = np.uint64(COUNTER_STEP)
_BLOCK = 256  # trials per block: the gathered counters stay in L1


def _mdp_step(table, cdf32, flat, transition_offset, num_states, next_state, uniform, mean_bits):
    """For each trial i with record ``flat[i]``: advance the record's counter; write the
    next state, the reward's uniform and the record's mean reward (float64 bits).
    ``table`` is (records, words) uint64, ``cdf32`` the same memory as uint32."""
    s30, s27, s31 = np.uint64(30), np.uint64(27), np.uint64(31)
    n = flat.shape[0]
    counters = np.empty(_BLOCK, np.uint64)
    for start in range(0, n, _BLOCK):
        m = min(_BLOCK, n - start)
        # gather and advance first, compute after: stores in the same loop as the mixing
        # held back the loads behind them (see envs/bandit_kernel.py)
        for j in range(m):
            row = flat[start + j]
            z = table[row, 0]
            counters[j] = z
            mean_bits[start + j] = table[row, 1]
            table[row, 0] = z + _STEP
        for j in range(m):
            i = start + j
            z = counters[j]
            # SplitMix64's finaliser (noise.mixed_bits_) on the transition stream's counter;
            # its top 32 bits against the 32-bit CDF
            t = z + transition_offset
            t ^= t >> s30
            t *= _M1
            t ^= t >> s27
            t *= _M2
            t ^= t >> s31
            u32 = np.uint32(t >> np.uint64(32))
            row = flat[i]
            s = 0
            for k in range(num_states - 1):
                s += cdf32[row, 4 + k] <= u32
            next_state[i] = s
            z ^= z >> s30  # ... and on the reward stream's: 53 bits to a uniform (noise.bits_to_uniform)
            z *= _M1
            z ^= z >> s27
            z *= _M2
            z ^= z >> s31
            uniform[i] = (np.float64(z >> np.uint64(11)) + 0.5) * UNIFORM_SCALE


@functools.cache
def mdp_step() -> Callable[..., None]:
    """The compiled step (numba, once per process; the machine code is cached on disk)."""
    import numba

    return numba.njit(cache=True, nogil=True, boundscheck=False)(_mdp_step)
