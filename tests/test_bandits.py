import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import metarl_bench
from metarl_bench.core.agent import UnsupportedFamilyError
from metarl_bench.envs.bandits.family import BernoulliBandit, DependentBernoulliBandit, GaussianBandit

BANDITS = metarl_bench.list_families("bandits")


def play(env, actions):
    env.reset()
    rewards = []
    for a in actions:
        _, r, _, _ = env.step(a)
        rewards.append(r)
    return np.array(rewards)


@pytest.mark.parametrize(
    "factory, kwargs, param",
    [
        (BernoulliBandit, {"k": 0}, "k"),
        (BernoulliBandit, {"k": 2.5}, "k"),
        (BernoulliBandit, {"horizon": 0}, "horizon"),
        (BernoulliBandit, {"alpha": -1.0}, "alpha"),
        (BernoulliBandit, {"beta": 0.0}, "beta"),
        (BernoulliBandit, {"beta": float("nan")}, "beta"),
        (BernoulliBandit, {"k": 2, "probs": [0.5, 1.5]}, "probs must lie in"),
        (BernoulliBandit, {"k": 2, "probs": [-0.1, 0.5]}, "probs must lie in"),
        (BernoulliBandit, {"k": 3, "probs": [0.5, 0.5]}, "probs must hold"),
        (DependentBernoulliBandit, {"horizon": 0}, "horizon"),
        (GaussianBandit, {"noise_std": 0.0}, "noise_std"),
        (GaussianBandit, {"prior_std": -2.0}, "prior_std"),
        (GaussianBandit, {"prior_mean": float("inf")}, "prior_mean"),
    ],
)
def test_invalid_parameters_name_the_parameter(factory, kwargs, param):
    with pytest.raises(ValueError, match=param):
        factory(**kwargs)


@pytest.mark.parametrize(
    "actions, message",
    [
        (np.array([0, 1]), r"shape \(3,\)"),
        (np.array([[0, 1, 0]]), r"shape \(3,\)"),
        (np.array([0.0, 1.0, 0.0]), "integer dtype"),
        (np.array([0.0, np.nan, 1.0]), "NaN"),
        (np.array([0, 2, 1]), r"out of range.*\[0, 2\)"),
        (np.array([0, -1, 1]), "out of range"),
        (np.array(["a", "b", "c"]), "integer dtype"),
    ],
)
def test_invalid_actions_raise_value_error(actions, message):
    env = metarl_bench.make("bernoulli-k2-h100", num_trials=3, seed=0)
    env.reset()
    with pytest.raises(ValueError, match=message):
        env.step(actions)
    assert env.t == 0  # nothing was stepped


def test_stepping_a_finished_trial_is_an_error():
    env = metarl_bench.make("bernoulli-k2-h100", num_trials=2, seed=0, horizon=1)
    env.reset()
    _, _, done, _ = env.step(np.zeros(2, int))
    assert done
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2, int))


@pytest.mark.parametrize("name", BANDITS)
def test_same_seed_same_trajectory_different_seed_different_tasks(name):
    actions = np.random.default_rng(0).integers(0, metarl_bench.make_family(name).num_actions, size=(100, 8))
    a, b, c = (metarl_bench.make(name, num_trials=8, seed=s) for s in (1, 1, 2))
    ra, rb, rc = play(a, actions), play(b, actions), play(c, actions)
    np.testing.assert_array_equal(ra, rb)
    for key in a.tasks:
        np.testing.assert_array_equal(a.tasks[key], b.tasks[key])
        assert not np.allclose(a.tasks[key], c.tasks[key])
    assert not np.array_equal(ra, rc)


@pytest.mark.parametrize("name", BANDITS)
def test_batch_and_batch_of_one_agree_step_for_step(name):
    n = 5
    batch = metarl_bench.make(name, num_trials=n, seed=3)
    batch.reset()
    tasks, keys = batch.tasks, batch.state["key"].copy()
    actions = np.random.default_rng(1).integers(0, batch.num_actions, size=(batch.trial_length, n))
    batch.reset(tasks=tasks)
    batch.state["key"][:] = keys
    rewards = np.array([batch.step(a)[1] for a in actions])
    for i in range(n):
        single = metarl_bench.make(name, num_trials=1)
        single.reset(tasks={k: v[i : i + 1] for k, v in tasks.items()})
        single.state["key"][:] = keys[i]
        got = np.array([single.step(a[i : i + 1])[1][0] for a in actions])
        np.testing.assert_array_equal(got, rewards[:, i])


def test_nth_pull_of_an_arm_gives_the_same_reward_whatever_came_before():
    # Common random numbers: the reward table is indexed by (arm, pull count).
    env = metarl_bench.make("bernoulli-k2-h100", num_trials=1, seed=7, probs=[0.5, 0.5])
    r_a = play(env.__class__(env.family, 1, seed=7), [np.array([0])] * 10 + [np.array([1])] * 10)
    r_b = play(env.__class__(env.family, 1, seed=7), [np.array([1])] * 10 + [np.array([0])] * 10)
    np.testing.assert_array_equal(r_a[:10], r_b[10:])
    np.testing.assert_array_equal(r_a[10:], r_b[:10])


@pytest.mark.parametrize("name", ["bernoulli-k5-h100", "bernoulli-dependent-k2-h100", "gaussian-k5-h100"])
def test_reward_means_match_the_task(name):
    env = metarl_bench.make(name, num_trials=20000, seed=0)
    env.reset()
    actions = np.random.default_rng(0).integers(0, env.num_actions, 20000)
    _, rewards, _, _ = env.step(actions)
    means = env.family.arm_means(env.tasks)[np.arange(20000), actions]
    residual = rewards - means
    assert abs(residual.mean()) < 4 * residual.std() / np.sqrt(20000)


def test_oracle_and_random_returns():
    fam = BernoulliBandit(k=3, horizon=10)
    tasks = {"p": np.array([[0.1, 0.5, 0.9], [0.2, 0.2, 0.2]])}
    np.testing.assert_allclose(fam.oracle_return(tasks), [9.0, 2.0])
    np.testing.assert_allclose(fam.random_return(tasks), [5.0, 2.0])
    dep = DependentBernoulliBandit(horizon=10)
    tasks = dep.sample_tasks(np.random.default_rng(0), 1000)
    np.testing.assert_allclose(tasks["p"].sum(axis=1), 1.0)


histories = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(history=histories, alpha=st.floats(0.1, 5), beta=st.floats(0.1, 5))
def test_bernoulli_posterior_matches_counting(history, alpha, beta):
    fam = BernoulliBandit(k=4, alpha=alpha, beta=beta)
    belief = fam.prior(1)
    for a, r in history:
        belief = fam.update_belief(belief, np.array([a]), np.array([float(r)]))
    for arm in range(4):
        s = sum(r for a, r in history if a == arm)
        f = sum(1 - r for a, r in history if a == arm)
        assert belief["alpha"][0, arm] == pytest.approx(alpha + s)
        assert belief["beta"][0, arm] == pytest.approx(beta + f)


@settings(max_examples=60, deadline=None)
@given(history=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), max_size=40))
def test_dependent_posterior_matches_counting(history):
    fam = DependentBernoulliBandit(alpha=2.0, beta=3.0)
    belief = fam.prior(1)
    for a, r in history:
        belief = fam.update_belief(belief, np.array([a]), np.array([float(r)]))
    # Evidence for p: successes of arm 0 and failures of arm 1 (arm 1 pays with 1 - p).
    for_p = sum(1 for a, r in history if (a, r) in ((0, 1), (1, 0)))
    assert belief["alpha"][0] == pytest.approx(2.0 + for_p)
    assert belief["beta"][0] == pytest.approx(3.0 + len(history) - for_p)


@settings(max_examples=40, deadline=None)
@given(history=st.lists(st.tuples(st.integers(0, 2), st.floats(-5, 5)), max_size=30))
def test_gaussian_posterior_matches_batch_formula(history):
    fam = GaussianBandit(k=3, prior_mean=0.5, prior_std=2.0, noise_std=0.7)
    belief = fam.prior(1)
    for a, r in history:
        belief = fam.update_belief(belief, np.array([a]), np.array([r]))
    for arm in range(3):
        rs = np.array([r for a, r in history if a == arm])
        precision = 1 / 2.0**2 + len(rs) / 0.7**2
        mean = (0.5 / 2.0**2 + rs.sum() / 0.7**2) / precision
        assert belief["precision"][0, arm] == pytest.approx(precision)
        assert belief["mean"][0, arm] == pytest.approx(mean)


def test_posterior_concentrates_on_the_true_parameters():
    fam = BernoulliBandit(k=2)
    env = metarl_bench.make("bernoulli-k2-h100", num_trials=200, seed=0, horizon=400)
    obs = env.reset()
    belief = fam.prior(200)
    actions = np.tile([0, 1], (200, 200)).T
    for a in actions:
        obs, r, _, _ = env.step(a)
        belief = fam.update_belief(belief, a, r)
    err = fam.belief_features(belief)["posterior_mean"] - env.tasks["p"]
    assert np.abs(err).mean() < 0.04


@pytest.mark.parametrize("agent", ["greedy", "epsilon-greedy", "thompson", "ucb1", "gittins"])
def test_bandit_algorithms_refuse_gridworlds_by_name(agent):
    with pytest.raises(ValueError, match=f"agent '{agent}'.*gridnavi|{agent}.*Bernoulli|GoalGrid"):
        metarl_bench.make_agent(agent, metarl_bench.make_family("gridnavi-5x5"))


def test_ucb1_with_pseudo_counts_follows_the_rl2_papers_form():
    # every arm starts at one success and one failure; t counts real pulls, so after one
    # pull ln t = 0 and the index is the posterior mean: the rewarded arm leads
    fam = metarl_bench.make_family("bernoulli-k5-h10")
    agent = metarl_bench.make_agent("ucb1", fam, c=0.5, pseudo_counts=True)
    env = metarl_bench.make("bernoulli-k5-h10", num_trials=4, seed=0, probs=[1.0, 0.0, 0.0, 0.0, 0.0])
    obs = env.reset()
    memory = agent.reset(4, np.random.default_rng(0))
    first, memory = agent.act(obs, memory)  # all indices tie at 0.5: any arm
    obs, rewards, _, _ = env.step(np.zeros(4, np.int64))  # arm 0 pays 1
    second, memory = agent.act(obs, memory)
    np.testing.assert_array_equal(second, 0)
    np.testing.assert_array_equal(memory["pulls"][:, 0], 3.0)
    np.testing.assert_array_equal(memory["sums"][:, 0], 2.0)
    # a second pull: ln 2 > 0 makes the untried arms' bonus larger than arm 0's
    obs, _, _, _ = env.step(second)
    index_0 = 3 / 4 + 0.5 * np.sqrt(2 * np.log(2) / 4)
    index_other = 1 / 2 + 0.5 * np.sqrt(2 * np.log(2) / 2)
    third, _ = agent.act(obs, memory)
    assert (third == 0).all() == (index_0 > index_other)


def test_tuned_agents_read_their_constant_and_refuse_untuned_distributions():
    from metarl_bench.baselines import classical

    fam = metarl_bench.make_family("bernoulli-k50-h500")
    assert metarl_bench.make_agent("ucb1-tuned", fam).config["c"] == classical.tuned_table()["ucb1"][(50, 500)]
    assert metarl_bench.make_agent("ucb1-tuned", fam).config["pseudo_counts"] is True
    eps = metarl_bench.make_agent("epsilon-greedy-tuned", fam).config["epsilon"]
    assert eps == classical.tuned_table()["epsilon-greedy"][(50, 500)]
    for other in ("bernoulli-k2-h100", "bernoulli-dependent-k2-h100"):
        with pytest.raises(UnsupportedFamilyError, match="tuned constants for the rl2-bandits"):
            metarl_bench.make_agent("ucb1-tuned", metarl_bench.make_family(other))
    with pytest.raises(UnsupportedFamilyError, match="tuned constants"):  # same (k, n), another prior
        metarl_bench.make_agent("epsilon-greedy-tuned", metarl_bench.make_family("bernoulli-k5-h10", alpha=2.0))
