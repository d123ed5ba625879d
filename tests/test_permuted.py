"""Permuted gridworlds: the wrapper's dynamics, its oracle, and the belief behind its Bayes reference."""

import numpy as np
import pytest

import metarl_bench  # noqa: F401  (registers the built-ins)
from metarl_bench.core.registry import make_agent, make_family, resolve_envs
from metarl_bench.core.trial import TrialEnv
from metarl_bench.envs.gridworlds.family import GoalGrid
from metarl_bench.envs.permuted.bayes import PermutedCEPolicy, PermutedQMDPPolicy, upper_bound
from metarl_bench.envs.permuted.family import PermutedGoalGrid
from metarl_bench.evaluation.evaluate import EvalSettings, evaluate, held_out_tasks, rollout

ENV = "gridnavi-5x5-permuted"


def test_suite_and_identity_permutations_match_the_base_grid():
    assert resolve_envs("permuted") == ["gridnavi-5x5-permuted", "darkroom-9x9-permuted"]
    plain = PermutedGoalGrid(permute_actions=False, permute_obs=False)
    base = GoalGrid()
    rng = np.random.default_rng(0)
    tasks = plain.sample_tasks(np.random.default_rng(1), 64)
    a, b = TrialEnv(plain, 64), TrialEnv(base, 64)
    oa, ob = a.reset(seed=0, tasks=tasks), b.reset(seed=0, tasks={"goal": tasks["goal"]})
    for _ in range(plain.trial_length):
        actions = rng.integers(0, 5, 64)
        (oa, ra, *_), (ob, rb, *_) = a.step(actions), b.step(actions)
        np.testing.assert_array_equal(oa["obs"], ob["obs"])
        np.testing.assert_array_equal(ra, rb)


def test_permutations_are_drawn_per_task_and_applied():
    family = make_family(ENV)
    tasks = family.sample_tasks(np.random.default_rng(0), 2000)
    assert all(sorted(p) == [0, 1, 2, 3, 4] for p in tasks["action_perm"][:50])
    assert len({tuple(p) for p in tasks["action_perm"]}) > 100  # close to all 120
    assert 0.4 < (tasks["obs_perm"][:, 0] == 1).mean() < 0.6
    # agent action i moves as base action action_perm[i]; features come in obs_perm order
    state = family.init_state(tasks, np.random.default_rng(0))
    state = {"pos": np.full(2000, family.base.cell(2, 2))}
    for i in range(5):
        new, _ = family.step(tasks, state, np.full(2000, i))
        np.testing.assert_array_equal(new["pos"], family.base.move(state["pos"], tasks["action_perm"][:, i]))
        obs = family.observe(tasks, new)
        xy = family.base.coords[new["pos"]]
        np.testing.assert_array_equal(obs, np.take_along_axis(xy, tasks["obs_perm"], axis=1))


def test_oracle_reaches_the_oracle_return_through_the_permutations():
    settings = EvalSettings(n_tasks=100, seeds=(0,))
    family = make_family(ENV)
    tasks = held_out_tasks(ENV, family, settings)
    roll = rollout(make_agent("oracle", family), ENV, family, tasks, settings)
    np.testing.assert_allclose(roll.task_returns, family.oracle_return(tasks))


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="permute_actions must be True or False"):
        PermutedGoalGrid(permute_actions="yes")


@pytest.mark.parametrize("policy", [PermutedCEPolicy, PermutedQMDPPolicy])
def test_the_belief_always_holds_the_truth(policy):
    family = make_family(ENV)
    tasks = family.sample_tasks(np.random.default_rng(3), 200)
    agent = policy(family)
    env = TrialEnv(family, 200)
    obs = env.reset(seed=0, tasks=tasks)
    memory = agent.reset(200, rng=np.random.default_rng(0))
    perm_index = {tuple(p): i for i, p in enumerate(agent.perms)}
    true_perm = np.array([perm_index[tuple(p)] for p in tasks["action_perm"]])
    true_sigma = (tasks["obs_perm"][:, 0] == 1).astype(int)  # orders: (0, 1) then (1, 0)
    rows = np.arange(200)
    widths = []
    for _ in range(family.trial_length):
        actions, memory = agent.act(obs, memory)
        assert memory["perm_ok"][rows, true_sigma, true_perm].all()
        assert memory["goal_ok"][rows, true_sigma, tasks["goal"]].all()
        widths.append(memory["perm_ok"][rows, true_sigma].sum(axis=1).mean())
        obs, *_ = env.step(actions)
    assert widths[-1] < 3  # the permutation is (nearly) pinned down by the end


def test_reference_lies_between_its_bounds_and_beats_qmdp():
    settings = EvalSettings(n_tasks=200, seeds=(0,))
    family = make_family(ENV)
    tasks = held_out_tasks(ENV, family, settings)
    ce = rollout(PermutedCEPolicy(family), ENV, family, tasks, settings).task_returns.mean()
    qmdp = rollout(PermutedQMDPPolicy(family), ENV, family, tasks, settings).task_returns.mean()
    upper = upper_bound(family)
    assert qmdp < ce <= upper + 0.5  # 200 tasks: the mean is within ~0.5 of its expectation
    assert upper == pytest.approx(make_family("gridnavi-5x5").bayes_reference().expected_return())
    row = evaluate(make_agent("random", family), ENV, settings).metrics
    assert row["bayes_method"] == "lower-bound:ce-bayes"
