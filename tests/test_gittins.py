"""Gittins indices (calibration, the restart-in-state cross-check, two-stage tables) and the agent."""

from __future__ import annotations

import math

import numpy as np
import pytest

import metarl_bench
from metarl_bench.baselines.gittins import GittinsAgent
from metarl_bench.envs.bandits.family import DependentBernoulliBandit, GaussianBandit
from metarl_bench.envs.bandits.gittins import (
    gittins_index,
    gittins_index_restart,
    gittins_table,
    truncation_depth,
)

# ----------------------------------------------------------------------------- index values


def test_published_value():
    # Gittins, Glazebrook & Weber (2011), Bernoulli reward process: Beta(1, 1) at 0.9 -> 0.7029
    assert gittins_index(1, 1, 0.9) == pytest.approx(0.7029, abs=5e-5)  # printed to 4 decimals


@pytest.mark.parametrize(
    "alpha, beta, discount",
    [(1, 1, 0.5), (1, 1, 0.9), (2, 3, 0.9), (5, 1, 0.8), (0.5, 0.7, 0.9), (3, 7, 0.95), (10, 2, 0.95)],
)
def test_calibration_agrees_with_restart_in_state(alpha, beta, discount):
    lower = gittins_index(alpha, beta, discount)  # truncated with pessimistic leaves
    upper = gittins_index_restart(alpha, beta, discount)  # truncated with optimistic leaves
    assert lower <= upper + 1e-9
    assert upper - lower < 1e-7  # the brief asks 1e-4; both are within 1e-8 of the truth


def test_index_broadcasts_and_solves_each_state_once():
    alpha = np.array([[1.0], [2.0]])
    beta = np.array([1.0, 3.0, 1.0])
    index = gittins_index(alpha, beta, 0.9)
    assert index.shape == (2, 3)
    assert index[0, 0] == index[0, 2] == gittins_index(1, 1, 0.9)
    assert isinstance(gittins_index(1.0, 1.0, 0.9), float)


@pytest.mark.parametrize("g, n0, tol", [(0.9, 2.0, 1e-8), (0.99, 2.0, 1e-8), (0.5, 10.0, 1e-12)])
def test_truncation_depth_meets_its_bound_and_is_minimal(g, n0, tol):
    def bound(n: int) -> float:
        return g**n / (4 * (1 - g) * math.sqrt(n0 + n + 1))

    n = truncation_depth(g, n0, tol)
    assert bound(n) <= tol and (n == 1 or bound(n - 1) > tol)


def test_monotone_in_successes_and_failures_and_above_the_mean():
    table = gittins_table(1.0, 1.0, 0.9, 30)
    s, f = np.meshgrid(np.arange(30), np.arange(30), indexing="ij")
    inner = s + f < 30
    assert np.all(table[1:31, :30][inner] > table[:30, :30][inner])  # one more success
    assert np.all(table[:30, 1:31][inner] < table[:30, :30][inner])  # one more failure
    s, f = np.meshgrid(np.arange(31), np.arange(31), indexing="ij")
    ok = s + f <= 30
    assert np.all(table[ok] > ((1 + s) / (2 + s + f))[ok])


def test_index_tends_to_the_mean_as_discount_vanishes():
    alpha, beta = np.array([1.0, 2.0, 7.0]), np.array([1.0, 5.0, 2.0])
    mean = alpha / (alpha + beta)
    gaps = [gittins_index(alpha, beta, g) - mean for g in (1e-1, 1e-2, 1e-3, 1e-4)]
    assert np.all(np.diff(gaps, axis=0) < 0) and np.all(gaps[-1] > 0)
    assert np.all(gaps[-1] < 1e-4)


# ----------------------------------------------------------------------------- tables


def test_table_layout_cache_and_exact_small_discount():
    table = gittins_table(2.0, 3.0, 0.8, 12)
    assert table.shape == (13, 13) and not table.flags.writeable
    assert np.isnan(table[7, 6]) and not np.isnan(table[6, 6])
    assert gittins_table(2.0, 3.0, 0.8, 12) is table
    s, f = np.array([0, 3, 12, 0, 5]), np.array([0, 4, 0, 12, 7])
    # truncation depth 74 <= SHALLOW_DEPTH: the table is the plain calibration of every state
    np.testing.assert_allclose(table[s, f], gittins_index(2.0 + s, 3.0 + f, 0.8), atol=1e-12)


def test_two_stage_table_matches_calibration_at_discount_099():
    table = gittins_table(1.0, 1.0, 0.99, 100)
    s = np.array([0, 0, 1, 10, 50, 30, 76, 89, 3, 99])
    f = np.array([0, 100, 1, 80, 50, 12, 0, 0, 97, 1])
    exact = gittins_index(1.0 + s, 1.0 + f, 0.99)
    assert table[0, 0] == pytest.approx(0.86986, abs=1e-5)  # Beta(1, 1) at 0.99 (restart method: 0.8698600)
    assert np.all(table[s, f] <= exact + 1e-12)  # both are lower bounds; the table is the looser
    np.testing.assert_allclose(table[s, f], exact, atol=2e-6)  # worst of all 5151 states: 6.5e-7


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("discount", [0.0, 1.0, 1.5, -0.2, float("nan"), "high"])
def test_bad_discount(discount):
    with pytest.raises(ValueError, match="discount"):
        gittins_index(1, 1, discount)
    with pytest.raises(ValueError, match="discount"):
        gittins_table(1, 1, discount, 5)
    with pytest.raises(ValueError, match="discount"):
        GittinsAgent(metarl_bench.make_family("bernoulli-k2-h100"), discount=discount)


@pytest.mark.parametrize("name, alpha, beta", [("alpha", 0.0, 1.0), ("beta", 1.0, -1.0), ("alpha", [1, np.inf], 1)])
def test_bad_prior(name, alpha, beta):
    with pytest.raises(ValueError, match=name):
        gittins_index(alpha, beta, 0.9)
    with pytest.raises(ValueError, match=name):
        gittins_index_restart(np.max(alpha), beta, 0.9)


def test_bad_table_arguments():
    with pytest.raises(ValueError, match="alpha0"):
        gittins_table(0, 1, 0.9, 5)
    with pytest.raises(ValueError, match="max_pulls"):
        gittins_table(1, 1, 0.9, -1)
    with pytest.raises(ValueError, match="tol"):
        gittins_index(1, 1, 0.9, tol=0)


# ----------------------------------------------------------------------------- agent


def play(agent, env, seed=0):
    obs = env.reset(seed=seed)
    memory = agent.reset(env.num_trials, rng=np.random.default_rng(seed))
    actions = []
    for _ in range(env.trial_length):
        action, memory = agent.act(obs, memory)
        actions.append(action)
        obs, _, _, _ = env.step(action)
    return np.array(actions), memory


def test_agent_plays_valid_actions_and_beats_random():
    env = metarl_bench.make("bernoulli-k5-h100", num_trials=64, seed=0)
    agent = metarl_bench.make_agent("gittins", env.family)
    assert isinstance(agent, GittinsAgent)
    actions, memory = play(agent, env)
    assert actions.dtype.kind == "i" and actions.min() >= 0 and actions.max() < 5
    assert np.all(actions[0] == 0)  # all arms tie at the prior: lowest arm
    returns = env.episode_returns.sum(axis=1)
    random_mean = env.family.random_return(env.tasks).mean()
    assert returns.mean() > random_mean + 10
    features = agent.features(memory)
    assert features.shape == (64, 10) and features.dtype == float
    assert np.all(features.sum(axis=1) == 99)  # every observed pull counted once (not the last)


def test_agent_counts_match_the_pulls():
    env = metarl_bench.make("bernoulli-k2-h100", num_trials=8, seed=3, horizon=20)
    agent = GittinsAgent(env.family, discount=0.9)
    actions, memory = play(agent, env)
    pulls = memory["successes"] + memory["failures"]
    # the last action's outcome is never observed by act
    expected = np.stack([(actions[:-1] == arm).sum(axis=0) for arm in range(2)], axis=1)
    np.testing.assert_array_equal(pulls, expected)


def test_agent_on_dependent_arms_and_auto_discount(tmp_path):
    family = DependentBernoulliBandit(horizon=30, alpha=2.0, beta=1.0)
    agent = GittinsAgent(family, discount="auto")
    assert agent.discount == pytest.approx(1 - 1 / 30)
    env = metarl_bench.TrialEnv(family, num_trials=16, seed=1)
    actions, _ = play(agent, env)
    assert np.all(actions[0] == 0)  # arm 0 pays p ~ Beta(2, 1): mean 2/3 beats 1/3
    loaded = GittinsAgent.load(agent.save(tmp_path / "gittins.json"), family)
    assert loaded.config == {"discount": "auto"} and loaded.discount == agent.discount


def test_agent_refuses_gaussian_bandits():
    with pytest.raises(ValueError, match="Bernoulli families only.*BernoulliBandit.*DependentBernoulliBandit"):
        GittinsAgent(GaussianBandit())
