"""The exact Bayes-optimal planners and the "bayes" agent.

Planner values are checked against a brute force that recurses over full action/reward
histories (no exchangeability, no state merging, no numpy); the agent is checked by
evaluating its policy exactly over every reward sequence, and by simulation.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import metarl_bench
from metarl_bench.baselines.bayes import BayesOptimalAgent
from metarl_bench.core.family import TaskFamily
from metarl_bench.envs.bandits import bayes
from metarl_bench.envs.bandits.bayes import count_states, solve_dependent, solve_general, solve_k2, tractable
from metarl_bench.envs.bandits.family import BernoulliBandit, DependentBernoulliBandit, GaussianBandit

PRIORS = [(1.0, 1.0), (2.0, 3.0), (0.5, 0.7)]


def bayes_reference(family: TaskFamily) -> tuple[float | None, str]:
    """The family's declared reference as (exact value or None, method); (None, "none") if it has none."""
    ref = family.bayes_reference()
    return (None, "none") if ref is None else (ref.expected_return(), ref.method)


# ----------------------------------------------------------------------------- brute force


def brute_independent(k: int, horizon: int, alpha: float, beta: float) -> float:
    """Max over actions of expected reward, recursing over the whole history."""

    def value(history: tuple[tuple[int, int], ...]) -> float:
        if len(history) == horizon:
            return 0.0
        best = -1.0
        for arm in range(k):
            wins = sum(r for a, r in history if a == arm)
            pulls = sum(1 for a, _ in history if a == arm)
            m = (alpha + wins) / (alpha + beta + pulls)
            q = m * (1.0 + value((*history, (arm, 1)))) + (1.0 - m) * value((*history, (arm, 0)))
            best = max(best, q)
        return best

    return value(())


def brute_dependent(horizon: int, alpha: float, beta: float) -> float:
    """Arms (p, 1-p): P(arm 0 pays) = E[p | history], P(arm 1 pays) = 1 - E[p | history]."""

    def value(history: tuple[tuple[int, int], ...]) -> float:
        if len(history) == horizon:
            return 0.0
        evidence = sum(1 for a, r in history if (a == 0) == (r == 1))
        mean_p = (alpha + evidence) / (alpha + beta + len(history))
        best = -1.0
        for arm, pay in ((0, mean_p), (1, 1.0 - mean_p)):
            q = pay * (1.0 + value((*history, (arm, 1)))) + (1.0 - pay) * value((*history, (arm, 0)))
            best = max(best, q)
        return best

    return value(())


@pytest.mark.parametrize("alpha,beta", PRIORS)
@pytest.mark.parametrize("horizon", [1, 2, 3, 6])
def test_k2_matches_brute_force(horizon, alpha, beta):
    exact = brute_independent(2, horizon, alpha, beta)
    assert solve_k2(horizon, alpha, beta).value == pytest.approx(exact, abs=1e-12)
    assert solve_general(2, horizon, alpha, beta).value == pytest.approx(exact, abs=1e-12)


@pytest.mark.parametrize("alpha,beta", PRIORS)
@pytest.mark.parametrize("k,horizon", [(3, 1), (3, 2), (3, 4), (4, 3), (5, 3)])
def test_general_matches_brute_force(k, horizon, alpha, beta):
    exact = brute_independent(k, horizon, alpha, beta)
    assert solve_general(k, horizon, alpha, beta).value == pytest.approx(exact, abs=1e-12)


@pytest.mark.parametrize("alpha,beta", PRIORS)
@pytest.mark.parametrize("horizon", [1, 2, 5, 8])
def test_dependent_matches_brute_force(horizon, alpha, beta):
    exact = brute_dependent(horizon, alpha, beta)
    assert solve_dependent(horizon, alpha, beta).value == pytest.approx(exact, abs=1e-12)


@pytest.mark.parametrize("alpha,beta", PRIORS)
@pytest.mark.parametrize("horizon", [10, 31])
def test_k2_special_case_agrees_with_general_solver(horizon, alpha, beta):
    assert solve_k2(horizon, alpha, beta).value == pytest.approx(solve_general(2, horizon, alpha, beta).value, abs=1e-9)


@pytest.mark.parametrize("alpha,beta", PRIORS)
def test_k2_policy_agrees_with_general_policy_everywhere(alpha, beta):
    horizon = 12
    grid = np.stack(np.meshgrid(*[np.arange(horizon)] * 4, indexing="ij"), -1).reshape(-1, 4)
    grid = grid[grid.sum(axis=1) < horizon]  # every (s0, f0, s1, f1) before the last pull
    successes, failures = grid[:, [0, 2]], grid[:, [1, 3]]
    k2 = solve_k2(horizon, alpha, beta, policy=True).policy.act(successes, failures)
    general = solve_general(2, horizon, alpha, beta, policy=True).policy
    assert np.array_equal(k2, general.act(successes, failures))
    assert 0 < k2.mean() < 1  # both arms are chosen somewhere


def test_sanity_values():
    assert solve_k2(1).value == pytest.approx(0.5)
    assert solve_general(3, 1).value == pytest.approx(0.5)
    assert solve_dependent(1).value == pytest.approx(0.5)
    for horizon in (1, 7, 40):
        assert solve_general(1, horizon, 2.0, 3.0).value == pytest.approx(horizon * 2.0 / 5.0)
        family = BernoulliBandit(k=1, horizon=horizon, alpha=2.0, beta=3.0)
        assert bayes_reference(family) == (pytest.approx(horizon * 0.4), "exact")
    # More arms never hurt, and arms beyond the horizon cannot be pulled, so they add nothing.
    values = [solve_general(k, 6).value for k in (1, 2, 3, 6, 10)]
    assert values == sorted(values)
    assert values[-1] == pytest.approx(values[-2], abs=1e-12)
    # The known-task oracle bounds the Bayes value: H * E[max p] = H * k / (k + 1) for Beta(1, 1).
    assert solve_k2(100).value < 100 * 2 / 3


@pytest.mark.parametrize("k,horizon", [(2, 10), (3, 7), (5, 10), (50, 6)])
def test_count_states_matches_the_solver(k, horizon):
    assert count_states(k, horizon) == solve_general(k, horizon).num_states


def test_invalid_inputs_raise_value_error():
    with pytest.raises(ValueError, match="k"):
        solve_general(0, 5)
    with pytest.raises(ValueError, match="horizon"):
        solve_k2(0)
    with pytest.raises(ValueError, match="alpha"):
        solve_dependent(3, alpha=0.0)
    with pytest.raises(ValueError, match="beta"):
        solve_general(3, 3, beta=-1.0)
    with pytest.raises(ValueError, match="k"):
        count_states(0, 3)
    with pytest.raises(ValueError, match="past the planner's horizon"):
        solve_k2(3, policy=True).policy.act(np.array([[2, 1]]), np.array([[0, 0]]))


# ----------------------------------------------------------------------------- references


def test_tractable_covers_the_rl2_grid_at_horizon_10():
    for k in (5, 10, 50):
        assert tractable(BernoulliBandit(k=k, horizon=10))
        assert not tractable(BernoulliBandit(k=k, horizon=100))
    assert tractable(BernoulliBandit(k=2, horizon=bayes.K2_MAX_HORIZON))
    assert not tractable(BernoulliBandit(k=2, horizon=bayes.K2_MAX_HORIZON + 1))
    assert tractable(DependentBernoulliBandit(horizon=500))
    assert not tractable(GaussianBandit())
    long_dependent = DependentBernoulliBandit(horizon=bayes.DEPENDENT_MAX_HORIZON + 1)
    assert bayes_reference(long_dependent) == (None, "lower-bound:greedy")
    assert BayesOptimalAgent(long_dependent).method == "lower-bound:greedy"


def test_bayes_reference_methods_and_cache():
    value, method = bayes_reference(metarl_bench.make_family("bernoulli-k2-h100"))
    assert method == "exact" and value == pytest.approx(solve_k2(100).value)
    start = time.perf_counter()
    for _ in range(100):  # cached per problem: repeated calls are free
        assert bayes_reference(metarl_bench.make_family("bernoulli-k2-h100"))[0] == value
    assert time.perf_counter() - start < 0.5
    assert bayes_reference(metarl_bench.make_family("bernoulli-k10-h500")) == (None, "lower-bound:gittins")
    assert bayes_reference(metarl_bench.make_family("gaussian-k5-h100")) == (None, "lower-bound:bayes-ucb")
    assert bayes_reference(BernoulliBandit(k=2, horizon=10, probs=[0.2, 0.7])) == (pytest.approx(7.0), "exact")
    assert bayes_reference(_NotABandit())[0] is None


# ----------------------------------------------------------------------------- agent


def _obs(prev_action: np.ndarray | None, prev_reward: np.ndarray, k: int) -> dict[str, np.ndarray]:
    n = len(prev_reward)
    one_hot = np.zeros((n, k), np.float32)
    if prev_action is not None:
        one_hot[np.arange(n), prev_action] = 1.0
    return {
        "obs": np.zeros((n, 1), np.float32),
        "prev_action": one_hot,
        "prev_reward": prev_reward.astype(np.float32).reshape(n, 1),
        "new_episode": np.zeros((n, 1), np.float32),
    }


def policy_value(family: TaskFamily) -> float:
    """Exact expected return of the agent: every reward sequence is one trial, weighted by
    its probability under the prior predictive given the agent's own actions."""
    k, horizon = family.num_actions, family.horizon
    n = 2**horizon
    rewards = (np.arange(n)[:, None] >> np.arange(horizon)) & 1
    agent = BayesOptimalAgent(family)
    memory = agent.reset(n)
    wins, pulls = np.zeros((n, k)), np.zeros((n, k))
    weight, total = np.ones(n), np.zeros(n)
    obs, rows = _obs(None, np.zeros(n), k), np.arange(n)
    for t in range(horizon):
        action, memory = agent.act(obs, memory)
        if isinstance(family, DependentBernoulliBandit):
            evidence = wins[:, 0] + (pulls[:, 1] - wins[:, 1])
            mean_p = (family.alpha + evidence) / (family.alpha + family.beta + pulls.sum(axis=1))
            pay = np.where(action == 0, mean_p, 1.0 - mean_p)
        else:
            pay = (family.alpha + wins[rows, action]) / (family.alpha + family.beta + pulls[rows, action])
        r = rewards[:, t]
        weight *= np.where(r == 1, pay, 1.0 - pay)
        total += r
        wins[rows, action] += r
        pulls[rows, action] += 1
        obs = _obs(action, r.astype(float), k)
    return float(weight @ total)


@pytest.mark.parametrize(
    "family",
    [
        BernoulliBandit(k=2, horizon=9),
        BernoulliBandit(k=2, horizon=8, alpha=2.0, beta=3.0),
        BernoulliBandit(k=3, horizon=7, alpha=0.5, beta=0.7),
        BernoulliBandit(k=5, horizon=8),
        DependentBernoulliBandit(horizon=9, alpha=2.0, beta=3.0),
    ],
    ids=lambda f: f.describe(),
)
def test_agent_policy_is_exactly_optimal(family):
    agent = BayesOptimalAgent(family)
    assert agent.method == "exact"
    assert policy_value(family) == pytest.approx(bayes_reference(family)[0], abs=1e-9)


def test_agent_breaks_ties_towards_the_lowest_arm():
    for family in (BernoulliBandit(k=2, horizon=5), BernoulliBandit(k=4, horizon=5), DependentBernoulliBandit(5)):
        agent = BayesOptimalAgent(family)
        action, _ = agent.act(_obs(None, np.zeros(3), family.num_actions), agent.reset(3))
        assert action.tolist() == [0, 0, 0]


def play(env: metarl_bench.TrialEnv, agent: BayesOptimalAgent) -> np.ndarray:
    obs, memory, done = env.reset(), agent.reset(env.num_trials), False
    while not done:
        action, memory = agent.act(obs, memory)
        assert action.dtype == np.int64 and action.shape == (env.num_trials,)
        obs, _, done, _ = env.step(action)
    return env.episode_returns.sum(axis=1)


@pytest.mark.parametrize(
    "name,overrides",
    [
        ("bernoulli-k2-h100", {"horizon": 20}),
        ("bernoulli-dependent-k2-h100", {"horizon": 30}),
        ("bernoulli-k5-h10", {}),
    ],
)
def test_agent_simulated_return_matches_exact_value(name, overrides):
    env = metarl_bench.make(name, num_trials=4000, seed=0, **overrides)
    agent = metarl_bench.make_agent("bayes", env.family)
    assert isinstance(agent, BayesOptimalAgent) and agent.method == "exact"
    returns = play(env, agent)
    exact, _ = bayes_reference(env.family)
    assert abs(returns.mean() - exact) < 4 * returns.std(ddof=1) / np.sqrt(len(returns))


@pytest.mark.parametrize("name", ["bernoulli-k10-h100", "gaussian-k5-h100"])
def test_fallback_agent_reports_a_lower_bound_and_plays(name):
    env = metarl_bench.make(name, num_trials=500, seed=1)
    agent = metarl_bench.make_agent("bayes", env.family)
    assert agent.method.startswith("lower-bound:") and agent.method == bayes_reference(env.family)[1]
    returns = play(env, agent)
    assert returns.mean() > env.family.random_return(env.tasks).mean()  # it learns something
    assert agent.features(agent.reset(4)).shape[0] == 4


class _NotABandit(TaskFamily):
    num_actions, obs_shape, horizon = 2, (1,), 3

    def __init__(self):
        self.params = {}

    sample_tasks = init_state = observe = step = oracle_return = None  # never called


def test_agent_rejects_families_it_cannot_play():
    with pytest.raises(ValueError, match="bayes"):
        BayesOptimalAgent(_NotABandit())


def _k2_h100_agent_time() -> float:
    env = metarl_bench.make("bernoulli-k2-h100", num_trials=1000, seed=0)
    agent = BayesOptimalAgent(env.family)
    agent.reset(1)  # builds the tables
    start = time.perf_counter()
    play(env, agent)
    return time.perf_counter() - start


def test_agent_is_fast():
    assert _k2_h100_agent_time() < 2.0  # 1000 trials x 100 steps, env included (~0.05 s measured)


def test_bernoulli_fallback_plays_the_gittins_index_policy():
    env = metarl_bench.make("bernoulli-k5-h100", num_trials=64, seed=3)
    bayes, gittins = metarl_bench.make_agent("bayes", env.family), metarl_bench.make_agent("gittins", env.family)
    assert bayes.method == "lower-bound:gittins"
    obs, mem_b, mem_g = env.reset(), bayes.reset(64), gittins.reset(64)
    for _ in range(env.trial_length):
        a, mem_b = bayes.act(obs, mem_b)
        b, mem_g = gittins.act(obs, mem_g)
        np.testing.assert_array_equal(a, b)
        obs, *_ = env.step(a)
