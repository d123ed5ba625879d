"""The fused Bernoulli step and the fast Beta(1, 1) sampler give numpy's exact numbers."""

import numpy as np
import pytest

import metarl_bench
from metarl_bench.accel.uniform_beta import beta


def _play(env_name: str, fused: bool, trials: int, seed: int, switch_at: int | None = None):
    env = metarl_bench.make(env_name, num_trials=trials, seed=seed)
    family = env.family
    family.fused_step = fused
    actions = np.random.default_rng(seed + 100).integers(0, family.num_actions, (family.trial_length, trials))
    env.reset()
    rewards = []
    for t, a in enumerate(actions):
        if switch_at is not None and t == switch_at:  # hand a half-played state to the other step
            family.fused_step = not fused
        rewards.append(env.step(a)[1])
    return np.array(rewards), env.episode_returns.copy()


@pytest.mark.parametrize("env_name", ["bernoulli-k2-h100", "bernoulli-k10-h10", "bernoulli-dependent-k2-h100"])
@pytest.mark.parametrize("trials", [1, 257, 1000])  # 257: a partial block of the kernel
def test_fused_step_gives_the_numpy_steps_rewards(env_name, trials):
    fused, returns_fused = _play(env_name, True, trials, seed=3)
    reference, returns_reference = _play(env_name, False, trials, seed=3)
    assert fused.dtype == reference.dtype == np.float64
    np.testing.assert_array_equal(fused, reference)
    np.testing.assert_array_equal(returns_fused, returns_reference)
    assert 0.2 < fused.mean() < 0.8  # real coin flips, not a constant


@pytest.mark.parametrize("first_fused", [True, False])
def test_a_state_moves_between_the_two_steps_mid_trial(first_fused):
    switched, _ = _play("bernoulli-k5-h100", first_fused, 300, seed=7, switch_at=37)
    reference, _ = _play("bernoulli-k5-h100", False, 300, seed=7)
    np.testing.assert_array_equal(switched, reference)


def test_the_kernel_needs_the_counter_of_every_pull():
    # a pull's noise depends on how often that arm was pulled before (common random numbers):
    # all trials pulling arm 0 twice see two independent coins per trial, not one coin twice
    env = metarl_bench.make("bernoulli-k2-h100", num_trials=4000, seed=0, probs=[0.5, 0.5])
    env.reset()
    first = env.step(np.zeros(4000, np.int64))[1]
    second = env.step(np.zeros(4000, np.int64))[1]
    assert 0.2 < np.mean(first != second) < 0.8


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("size", [1, 5, (7, 2), (4096, 2), (3, 0)])
def test_uniform_beta_matches_generator_beta_and_leaves_the_same_state(seed, size):
    ours, numpys = np.random.default_rng(seed), np.random.default_rng(seed)
    x, y = beta(ours, 1.0, 1.0, size), numpys.beta(1.0, 1.0, size)
    assert x.shape == y.shape
    np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(ours.random(5), numpys.random(5))  # the stream goes on alike


def test_uniform_beta_falls_back_for_other_priors_and_generators():
    for a, b in [(2.0, 1.0), (0.5, 0.5)]:
        np.testing.assert_array_equal(
            beta(np.random.default_rng(1), a, b, 100), np.random.default_rng(1).beta(a, b, 100)
        )
    other = np.random.Generator(np.random.Philox(3))
    expected = np.random.Generator(np.random.Philox(3)).beta(1.0, 1.0, 50)
    np.testing.assert_array_equal(beta(other, 1.0, 1.0, 50), expected)


def test_uniform_beta_keeps_a_buffered_32_bit_half():
    # a bounded integer below 2**32 draws 32 bits and keeps the other half for the next one
    ours, numpys = np.random.default_rng(11), np.random.default_rng(11)
    assert ours.integers(0, 10) == numpys.integers(0, 10)
    assert ours.bit_generator.state["has_uint32"] == 1
    np.testing.assert_array_equal(beta(ours, 1.0, 1.0, 300), numpys.beta(1.0, 1.0, 300))
    assert ours.bit_generator.state == numpys.bit_generator.state


def test_the_compiled_noise_table_matches_counter_start_and_uniform_thresholds():
    from metarl_bench.core.noise import counter_start, draw_keys, uniform_thresholds
    from metarl_bench.envs.bandits.kernel import noise_table

    rng = np.random.default_rng(5)
    n, k = 400, 6
    p = rng.random((n, k))
    edges = [0.0, 1.0, np.nan, np.inf, -np.inf, -0.5, 1.5, 5e-324, 1 - 2**-53, 2**-53, 0.5, 1 / 3]
    p[: len(edges), 0] = edges
    p[:, 1] = np.nextafter(p[:, 2], 1.0)  # neighbours of random values: the rounding edges
    keys = draw_keys(rng, n)
    pulls = rng.integers(0, 1000, (n, k))
    table = np.empty((n, k, 2), np.uint64)
    noise_table()(keys, pulls, p, table)
    np.testing.assert_array_equal(table[..., 0], counter_start(keys, pulls))
    np.testing.assert_array_equal(table[..., 1], uniform_thresholds(p))
