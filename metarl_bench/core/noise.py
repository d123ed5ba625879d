"""Counter-based random numbers for common random numbers (CRN) across agents.

A trial draws one 64-bit key from its ``numpy.random.Generator`` at the start.  The
noise of the n-th pull of arm a is then a pure function of (key, a, n), so two agents
that pull arm a for the n-th time see the same reward, whatever they did before.  This
"reward table" coupling is what makes paired comparisons between agents tight, and it
costs no memory (the table is never stored).  The mixing function is SplitMix64's
finaliser (Steele, Lea & Flood 2014), applied with numpy's wrapping uint64 arithmetic.

The functions here are the one definition of every noisy reward in the suite, written over
a small object of uint64 operations (:class:`BitOps`); ``metarl_bench.accel.torch_noise``
runs the same functions with torch's operations, bit for bit.  They work in place on one
scratch array where they can: a batched step calls them once per step, and every
temporary array is a pass over memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtri

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_ARM = np.uint64(0xD6E8FEB86659FD93)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_INV_2_53 = 1.0 / 9007199254740992.0
BITS = 53  # the uniforms carry the top 53 bits of the mixed counter


def draw_keys(rng: np.random.Generator, num_trials: int) -> np.ndarray:
    """One independent 64-bit noise key per trial."""
    return rng.integers(0, np.iinfo(np.uint64).max, size=num_trials, dtype=np.uint64, endpoint=True)


def _as_u64(x: np.ndarray) -> np.ndarray:
    """``x`` as uint64 without a copy where the bits already are 64-bit integers (wrapping cast)."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype == np.uint64:
        return x
    if x.dtype == np.int64:
        return x.view(np.uint64)
    return x.astype(np.uint64)


@dataclass(frozen=True)
class BitOps:
    """The uint64 arithmetic the noise is written in, for one array library.

    Every function below takes one of these as ``ops`` (:data:`NUMPY` by default), so the
    noise is written once: ``metarl_bench.accel.torch_noise.TORCH`` runs the same functions
    on torch tensors.  Plain fields, not methods: the step reads them several times per call.
    """

    xp: Any  # the namespace with nan_to_num, floor, clip, broadcast_shapes
    golden: Any  # the constants, as the 64-bit arrays multiply and add them
    m1: Any
    m2: Any
    arm: Any
    one: Any
    s11: Any  # shift counts
    s27: Any
    s30: Any
    s31: Any
    shr: Callable  # shr(z, s, out): logical right shift, into the scratch ``out`` where the library writes in place
    empty_like: Callable  # a scratch array like z (or None where shr ignores it)
    u64: Callable  # integers as the 64-bit type, no copy where they are
    float64: Callable  # a new float64 copy
    as_float64: Callable  # float64, no copy where it is
    to_bits: Callable  # whole floats as the 64-bit type
    nonnegative: Callable  # max(x, 0)
    full: Callable  # full(z, shape): z broadcast to a new array of that shape


NUMPY = BitOps(
    xp=np,
    golden=_GOLDEN,
    m1=_M1,
    m2=_M2,
    arm=_ARM,
    one=np.uint64(1),
    s11=_S11,
    s27=_S27,
    s30=_S30,
    s31=_S31,
    shr=np.right_shift,
    empty_like=np.empty_like,
    u64=_as_u64,
    float64=lambda x: x.astype(np.float64),
    as_float64=lambda x: np.asarray(x, np.float64),
    to_bits=lambda x: x.astype(np.uint64),
    nonnegative=lambda x: np.maximum(x, 0.0),
    full=lambda z, shape: np.broadcast_to(z, shape).copy(),
)


def _mix_(z: np.ndarray, tmp: np.ndarray, ops: BitOps) -> np.ndarray:
    """SplitMix64's finaliser on ``z`` in place (``tmp``: scratch of the same shape)."""
    z ^= ops.shr(z, ops.s30, tmp)
    z *= ops.m1
    z ^= ops.shr(z, ops.s27, tmp)
    z *= ops.m2
    z ^= ops.shr(z, ops.s31, tmp)
    return z


def mixed_bits_(z: np.ndarray, ops: BitOps = NUMPY) -> np.ndarray:
    """The 53 noise bits of counters ``z`` (uint64), computed in place in ``z`` and returned."""
    _mix_(z, ops.empty_like(z), ops)
    return ops.shr(z, ops.s11, z)  # top 53 bits


def counter_start(keys: np.ndarray, pulls: np.ndarray) -> np.ndarray:
    """The counter of the next pull of every (trial, arm), uint64 (trials, arms).

    The counter of the n-th pull (0-based) of arm a under key K is
    K + a * ARM + (n + 1) * GOLDEN (mod 2**64), so a batched step can keep these counters
    instead of pull counts and advance a pulled arm's counter by :data:`COUNTER_STEP`:
    one add where counts need a multiply and two adds per pull.
    """
    pulls = _as_u64(pulls)
    arms = np.arange(pulls.shape[-1], dtype=np.uint64)
    z = np.multiply(pulls + np.uint64(1), _GOLDEN)
    z += _as_u64(keys)[..., None]
    z += arms * _ARM
    return z


COUNTER_STEP = _GOLDEN  # what one pull adds to its arm's counter
ARM_OFFSET = _ARM  # what one arm index adds to a counter (compiled kernels rebuild counters)
UNIFORM_SCALE = _INV_2_53  # bits b give the uniform (b + 0.5) * UNIFORM_SCALE


def counter_bits_next(keys: np.ndarray, arms: np.ndarray, next_counts: np.ndarray, ops: BitOps = NUMPY) -> np.ndarray:
    """The 53-bit integers behind :func:`counter_uniform`, from the counts *after* the pull.

    ``next_counts`` is n + 1 for the n-th pull (0-based).  Returns uint64.
    """
    keys, arms, nxt = ops.u64(keys), ops.u64(arms), ops.u64(next_counts)
    z = nxt * ops.golden
    if not z.shape == keys.shape == arms.shape:  # broadcast inputs (a table): in place needs the full shape
        z = ops.full(z, ops.xp.broadcast_shapes(keys.shape, arms.shape, nxt.shape))
    z += keys
    z += arms * ops.arm
    return mixed_bits_(z, ops)


def counter_bits(keys: np.ndarray, arms: np.ndarray, counts: np.ndarray, ops: BitOps = NUMPY) -> np.ndarray:
    """The 53-bit integers behind :func:`counter_uniform` (uint64, in [0, 2**53))."""
    return counter_bits_next(keys, arms, ops.u64(counts) + ops.one, ops)


def bits_to_uniform(bits: np.ndarray, ops: BitOps = NUMPY) -> np.ndarray:
    """The uniforms of :func:`counter_bits`: (bits + 0.5) / 2**53 in float64 (bits may be whole floats)."""
    u = ops.float64(bits)
    u += 0.5
    u *= _INV_2_53
    return u


def counter_uniform(keys: np.ndarray, arms: np.ndarray, counts: np.ndarray, ops: BitOps = NUMPY) -> np.ndarray:
    """Uniform(0, 1] numbers, one per (key, arm, count) triple; never 0, and 1 only for the
    largest of the 2**53 bit patterns (the float sum rounds it up)."""
    return bits_to_uniform(counter_bits(keys, arms, counts, ops), ops)


def counter_normal(keys: np.ndarray, arms: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Standard normal numbers by inverse CDF of :func:`counter_uniform`."""
    return ndtri(counter_uniform(keys, arms, counts))


def uniform_thresholds(p: np.ndarray, ops: BitOps = NUMPY) -> np.ndarray:
    """Integers T with ``counter_uniform(...) < p`` exactly when ``counter_bits(...) < T``.

    A Bernoulli(p) draw then compares integers and skips the conversion to floats.  The
    map b -> u(b) from bits to uniforms is monotone and 2**53 u(b) lies in [b, b + 1], so
    with F = floor(2**53 p) every b < F - 1 is below p and every b > F is not: T follows
    from evaluating that very map at F - 1 and F.  Exact for every p, NaN (never below)
    and values outside [0, 1] included.  Returns uint64, p's shape.
    """
    p, xp = ops.as_float64(p), ops.xp
    q = xp.nan_to_num(p, nan=-1.0, posinf=2.0, neginf=-1.0)
    q *= float(2**BITS)
    f = xp.clip(xp.floor(q), 0.0, float(2**BITS))  # whole numbers, exact in float64
    lo = f - 1.0
    below_lo = (lo >= 0.0) & (bits_to_uniform(lo, ops) < p)
    below_f = (f < float(2**BITS)) & (bits_to_uniform(f, ops) < p)
    return ops.to_bits(ops.nonnegative(lo)) + below_lo + below_f
