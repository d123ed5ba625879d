"""``Generator.beta(1, 1, size)`` without its per-sample loop: the same numbers, the same
generator state afterwards.

Beta(1, 1) is every Bernoulli bandit's default prior, and numpy draws it one sample at a
time by Johnk's algorithm (numpy/random/src/distributions/distributions.c,
``random_beta``, the branch a <= 1 and b <= 1): take the next two doubles U, V; with
a = b = 1 the powers U**(1/a), V**(1/b) are U and V themselves, so the pair is accepted
when U + V <= 1 and U + V > 0, and the sample is U / (U + V).  About half the pairs are
rejected, and at 16384 tasks that loop was a fifth of a whole trial's stepping time.

Here the doubles come in chunks from a copy of the bit generator, a compiled loop (numba)
keeps the accepted pairs, and the real generator is then advanced by
exactly the doubles numpy would have used (one 64-bit output per double), so every later
draw is unchanged.  Only PCG64 (``default_rng``'s) is handled this way; any other bit
generator, or any other (a, b), goes to ``Generator.beta``.  ``tests/test_uniform_beta.py``
checks values and the state afterwards against ``Generator.beta``.
"""

from __future__ import annotations

import copy
import functools

import numpy as np

_CHUNK = 4096  # pairs drawn at a time: 64 KiB, which stays in cache (and off mmap)


def _accept(pairs: np.ndarray, out: np.ndarray, filled: int) -> tuple[int, int]:
    """Johnk's test on ``pairs`` in order, writing accepted samples into ``out[filled:]``;
    returns the new fill and the pairs examined (all, unless ``out`` filled up)."""
    for i in range(pairs.shape[0]):
        if filled == out.shape[0]:
            return filled, i
        total = pairs[i, 0] + pairs[i, 1]
        if total <= 1.0 and total > 0.0:
            out[filled] = pairs[i, 0] / total
            filled += 1
    return filled, pairs.shape[0]


@functools.cache
def _compiled_accept():
    import numba

    return numba.njit(cache=True, nogil=True)(_accept)


def beta(rng: np.random.Generator, a: float, b: float, size: int | tuple[int, ...]) -> np.ndarray:
    """``rng.beta(a, b, size)``, the same values and the same ``rng`` state afterwards."""
    if a != 1.0 or b != 1.0 or type(rng.bit_generator) is not np.random.PCG64:
        return rng.beta(a, b, size)
    shape = (size,) if isinstance(size, int | np.integer) else tuple(size)
    out = np.empty(int(np.prod(shape)))
    preview = np.random.Generator(copy.deepcopy(rng.bit_generator))
    accept = _compiled_accept()
    filled = examined = 0
    while filled < len(out):
        filled, used = accept(preview.random((_CHUNK, 2)), out, filled)
        examined += used
    rng.bit_generator.advance(2 * examined)  # the doubles numpy's loop consumed
    return out.reshape(shape)
