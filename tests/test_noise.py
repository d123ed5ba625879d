"""The counter-based noise: the in-place rewrite, the counters and the integer thresholds
give the numbers of the plain definition."""

import numpy as np
from scipy.special import ndtri

from metarl_bench.core import noise

GOLDEN, M1, M2, ARM = (
    np.uint64(c) for c in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xD6E8FEB86659FD93)
)


def plain_uniform(keys, arms, counts):
    """The definition as first written: SplitMix64's finaliser, one expression per line."""
    z = keys + arms.astype(np.uint64) * ARM + (counts.astype(np.uint64) + np.uint64(1)) * GOLDEN
    z = (z ^ (z >> np.uint64(30))) * M1
    z = (z ^ (z >> np.uint64(27))) * M2
    z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 2**53)


def random_inputs(n=50_000, seed=0):
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
    keys[:4] = [0, 2**63, 2**64 - 1, 2**63 - 1]
    return keys, rng.integers(0, 50, n), rng.integers(0, 10**6, n)


def test_uniforms_and_normals_match_the_plain_definition():
    keys, arms, counts = random_inputs()
    expect = plain_uniform(keys, arms, counts)
    np.testing.assert_array_equal(noise.counter_uniform(keys, arms, counts), expect)
    np.testing.assert_array_equal(noise.counter_normal(keys, arms, counts), ndtri(expect))
    table = noise.counter_uniform(keys[:7, None, None], np.arange(3)[None, :, None], np.arange(5)[None, None, :])
    np.testing.assert_array_equal(table[2, 1, 4], plain_uniform(keys[2:3], np.array([1]), np.array([4]))[0])


def test_advancing_the_counters_walks_the_pulls_of_each_arm():
    keys, _, _ = random_inputs(n=6)
    pulls = np.array([[0, 3], [5, 0], [1, 1], [0, 0], [9, 2], [4, 4]])
    counter = noise.counter_start(keys, pulls)
    for extra in range(3):
        for arm in (0, 1):
            bits = noise.mixed_bits_(counter[:, arm].copy())
            expect = noise.counter_bits(keys, np.full(6, arm), pulls[:, arm] + extra)
            np.testing.assert_array_equal(bits, expect)
        counter += noise.COUNTER_STEP


def test_integer_thresholds_decide_exactly_as_the_uniforms():
    rng = np.random.default_rng(1)
    B = 2**53
    bits = np.concatenate([np.arange(20), 2**52 + np.arange(-20, 20), B - 1 - np.arange(20), rng.integers(0, B, 500)])
    u = noise.bits_to_uniform(bits.astype(np.uint64))
    special = [0.0, 1.0, -0.5, 1.5, np.nan, np.inf, -np.inf, 5e-324, 2**-54, 2**-53, 1 - 2**-53]
    p = np.concatenate([u, np.nextafter(u, 0), np.nextafter(u, 2), special, rng.random(500)])
    thresholds = noise.uniform_thresholds(p).astype(np.int64)
    probe = np.array([0, 1, 2, B - 2, B - 1, 2**52 - 1, 2**52, 2**52 + 1], np.int64)
    for pi, t in zip(p, thresholds, strict=True):
        cand = np.concatenate([probe, t + np.arange(-2, 2)])
        cand = cand[(cand >= 0) & (cand < B)].astype(np.uint64)
        np.testing.assert_array_equal(noise.bits_to_uniform(cand) < pi, cand < np.uint64(t), err_msg=f"p={pi!r}")
    assert noise.uniform_thresholds(np.array([1.0]))[0] == B - 1  # the one uniform that rounds to 1.0
