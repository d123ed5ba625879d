"""``Generator.beta(1, 1, size)`` without its per-sample loop: the same numbers, the same
generator state afterwards.

Beta(1, 1) is every Bernoulli bandit's default prior, and numpy draws it one sample at a
time by Johnk's algorithm (numpy/random/src/distributions/distributions.c,
``random_beta``, the branch a <= 1 and b <= 1): take the next two doubles U, V; with
a = b = 1 the powers U**(1/a), V**(1/b) are U and V themselves, so the pair is accepted
when U + V <= 1 and U + V > 0, and the sample is U / (U + V).  About half the pairs are
rejected, and at 16384 tasks that loop was a fifth of a whole trial's stepping time.

Here the doubles come in chunks, a compiled loop (numba) keeps the accepted pairs, and
the generator is then stepped back over the doubles numpy's loop would not have drawn
(one 64-bit output per double; PCG64's ``advance`` works modulo its period), so every
later draw is unchanged.  Only PCG64 (``default_rng``'s) is handled this way; any other bit
generator, or any other (a, b), goes to ``Generator.beta``.  ``tests/test_uniform_beta.py``
checks values and the state afterwards against ``Generator.beta``.
"""

from __future__ import annotations

import functools

import numpy as np

_CHUNK = 4096  # pairs drawn at a time: 64 KiB, which stays in cache (and off mmap)
_PERIOD = 2**128  # PCG64's: advancing by _PERIOD - d steps back d draws


def _accept(pairs: np.ndarray, out: np.ndarray, filled: int) -> tuple[int, int]:
    """Johnk's test on ``pairs`` in order, writing accepted samples into ``out[filled:]``;
    returns the new fill and the pairs examined (all, unless ``out`` filled up).  ``out``
    has one spare slot at the end: every pair's ratio is written and the fill moves on
    only if it passed, which avoids a branch that a coin flip would mispredict."""
    wanted = out.shape[0] - 1
    for i in range(pairs.shape[0]):
        if filled == wanted:
            return filled, i
        total = pairs[i, 0] + pairs[i, 1]
        out[filled] = pairs[i, 0] / total
        filled += (total <= 1.0) & (total > 0.0)
    return filled, pairs.shape[0]


@functools.cache
def _compiled_accept():
    import numba

    return numba.njit(cache=True, nogil=True, error_model="numpy")(_accept)  # 0/0 is NaN, rejected


def beta(rng: np.random.Generator, a: float, b: float, size: int | tuple[int, ...]) -> np.ndarray:
    """``rng.beta(a, b, size)``, the same values and the same ``rng`` state afterwards."""
    bits = rng.bit_generator
    if a != 1.0 or b != 1.0 or type(bits) is not np.random.PCG64:
        return rng.beta(a, b, size)
    shape = (size,) if isinstance(size, int | np.integer) else tuple(size)
    n = int(np.prod(shape))
    out = np.empty(n + 1)  # a spare slot for _accept
    before = bits.state  # advance() drops a buffered 32-bit half, which numpy's beta keeps
    accept = _compiled_accept()
    filled = drawn = examined = 0
    while filled < n:
        pairs = min(_CHUNK, 2 * (n - filled) + 32)  # about half are accepted
        filled, used = accept(rng.random((pairs, 2)), out, filled)
        drawn, examined = drawn + pairs, examined + used
    if drawn > examined:  # give back the doubles numpy's loop would not have drawn
        bits.advance(_PERIOD - 2 * (drawn - examined))  # (advance is modulo the period: a rewind)
    if before["has_uint32"]:
        after = bits.state
        after["has_uint32"], after["uinteger"] = before["has_uint32"], before["uinteger"]
        bits.state = after
    return out[:n].reshape(shape)
