"""Tabular-MDP family (envs/tabular_mdp/family.py), its planners (envs/tabular_mdp/planners.py), agents
(baselines/mdp_agents.py) and reference (envs/tabular_mdp/reference.py).

The planners are checked against brute force written from the definitions alone: every
deterministic policy of a 2-state, 2-action, 2-step MDP enumerated, the L1 ball of
extended value iteration searched on a grid (2 states) or by linear programming (3),
and the forced gaps of the upper bound by enumerating every path of distinct states.
"""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest
from scipy.optimize import linprog

import metarl_bench
from metarl_bench.baselines.mdp_agents import AGENTS, fold
from metarl_bench.core.agent import UnsupportedFamilyError
from metarl_bench.core.noise import counter_bits, counter_normal, draw_keys
from metarl_bench.core.trial import trial_returns
from metarl_bench.envs.tabular_mdp import planners
from metarl_bench.envs.tabular_mdp import reference as mdp_reference
from metarl_bench.envs.tabular_mdp.family import TabularMDP
from metarl_bench.evaluation.evaluate import EvalSettings
from metarl_bench.running.sweep import RunSpec, execute_run, plan_runs
from studies.mdp_tuning import write_table

# A 2-state, 2-action MDP: R[s, a], P[s, a, s'].
R2 = np.array([[1.0, 0.0], [0.5, 2.0]])
P2 = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.6, 0.4], [0.3, 0.7]]])


def tiny_tasks(R=R2, P=P2) -> dict[str, np.ndarray]:
    return {"R": R[None].copy(), "P": P[None].copy()}


# ----------------------------------------------------------------------------- brute force


def brute_policy_value(R, P, policy, s, h, H):
    """Expected return from state s at step h of a deterministic time-dependent policy[h][s]."""
    if h == H:
        return 0.0
    a = policy[h][s]
    return R[s, a] + sum(P[s, a, t] * brute_policy_value(R, P, policy, t, h + 1, H) for t in range(len(R)))


def all_policies(S, A, H):
    for flat in itertools.product(range(A), repeat=S * H):
        yield [flat[h * S : (h + 1) * S] for h in range(H)]


def test_value_iteration_matches_the_best_of_all_policies():
    H = 2
    Q, V = planners.value_iteration(R2[None], P2[None], H)
    for s in range(2):
        best = max(brute_policy_value(R2, P2, pi, s, 0, H) for pi in all_policies(2, 2, H))
        assert V[0, 0, s] == pytest.approx(best, abs=1e-12)
    # Q of the first step: reward now, then the best continuation
    for s, a in itertools.product(range(2), range(2)):
        assert Q[0, 0, s, a] == pytest.approx(R2[s, a] + P2[s, a] @ V[0, 1], abs=1e-12)
    pi = planners.greedy_policy(Q)[0]
    assert brute_policy_value(R2, P2, pi, 0, 0, H) == pytest.approx(V[0, 0, 0], abs=1e-12)


def test_step_dependent_rewards_are_used_per_step():
    H = 2
    R_h = np.stack([R2, -R2])[None]  # the second step pays the negated rewards
    _, V = planners.value_iteration(R_h, P2[None], H)
    last = (-R2).max(axis=1)
    assert V[0, 0, 0] == pytest.approx(max(R2[0, a] + P2[0, a] @ last for a in range(2)))


def brute_evi(R, P, slack, H, inner_max):
    """Extended value iteration with the inner maximisation done by ``inner_max(p, radius, v)``."""
    S, A = R.shape
    V = np.zeros(S)
    for _ in range(H):
        Q = np.array([[R[s, a] + inner_max(P[s, a], slack[s, a], V) for a in range(A)] for s in range(S)])
        V = Q.max(axis=1)
    return V


def grid_max_2(p, radius, v):
    """Max of p' . v over p' = (p0 - d, p1 + d) in the simplex with |p' - p|_1 = 2|d| <= radius."""
    d = np.linspace(-radius / 2, radius / 2, 4001)
    d = d[(p[0] - d >= 0) & (p[1] + d >= 0)]
    d = np.concatenate([d, [max(-radius / 2, -p[1]), min(radius / 2, p[0])]])  # the feasible ends exactly
    return max((p[0] - x) * v[0] + (p[1] + x) * v[1] for x in d)


def lp_max(p, radius, v):
    """Max of q . v over the simplex with |q - p|_1 <= radius, as a linear program in (q, u >= |q - p|)."""
    S = len(p)
    c = np.concatenate([-v, np.zeros(S)])
    eye = np.eye(S)
    A_ub = np.block([[eye, -eye], [-eye, -eye], [np.zeros((1, S)), np.ones((1, S))]])
    b_ub = np.concatenate([p, -p, [radius]])
    A_eq = np.concatenate([np.ones(S), np.zeros(S)])[None]
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=[1.0], bounds=[(0, None)] * (2 * S))
    assert res.success
    return -res.fun


@pytest.mark.parametrize("slack", [0.0, 0.3, 0.9, 1.5, 5.0])
def test_extended_value_iteration_matches_brute_force_on_two_states(slack):
    H = 2
    slacks = np.full((2, 2), slack)
    _, V = planners.extended_value_iteration(R2[None], P2[None], slacks[None], H)
    assert V[0, 0] == pytest.approx(brute_evi(R2, P2, slacks, H, grid_max_2), abs=1e-9)


def test_extended_value_iteration_matches_linear_programming_on_three_states(rng):
    S, A, H = 3, 2, 3
    R = rng.normal(size=(S, A))
    P = rng.dirichlet(np.ones(S), size=(S, A))
    slack = rng.uniform(0, 1.2, size=(S, A))
    _, V = planners.extended_value_iteration(R[None], P[None], slack[None], H)
    np.testing.assert_allclose(V[0, 0], brute_evi(R, P, slack, H, lp_max), atol=1e-7)
    # no slack is plain value iteration
    np.testing.assert_allclose(
        planners.extended_value_iteration(R[None], P[None], np.zeros((1, S, A)), H)[1],
        planners.value_iteration(R[None], P[None], H)[1],
    )


def test_policy_return_of_uniform_play_matches_enumeration():
    H = 2
    want = np.mean([brute_policy_value(R2, P2, pi, 0, 0, H) for pi in all_policies(2, 2, H)])
    got = planners.policy_return(R2[None], P2[None], np.full((1, 2, 2), 0.5), 0, H)
    assert got[0] == pytest.approx(want, abs=1e-12)  # uniform play = average over deterministic policies


def test_family_references_on_the_tiny_mdp():
    fam = TabularMDP(states=2, actions=2, horizon=2, episodes=3)
    tasks = tiny_tasks()
    best = max(brute_policy_value(R2, P2, pi, 0, 0, 2) for pi in all_policies(2, 2, 2))
    uniform = np.mean([brute_policy_value(R2, P2, pi, 0, 0, 2) for pi in all_policies(2, 2, 2)])
    assert fam.oracle_return(tasks)[0] == pytest.approx(3 * best)
    assert fam.random_return(tasks)[0] == pytest.approx(3 * uniform)


def brute_forced_gap(R, P, H, start):
    """Sum over every path of distinct states s_0 = start, s_1, ... (uniformly random actions) of
    P(path) * mean_a gap_t(s_t, a), the term the relaxation subtracts from the oracle."""
    Q, V = planners.value_iteration(R[None], P[None], H)
    gap = V[0, :-1] - Q[0].mean(axis=2)
    P_bar = P.mean(axis=1)

    def walk(path, prob):
        t, s = len(path) - 1, path[-1]
        total = prob * gap[t, s]
        if t + 1 < H:
            for nxt in range(len(R)):
                if nxt not in path:
                    total += walk(path + [nxt], prob * P_bar[s, nxt])
        return total

    return walk([start], 1.0)


@pytest.mark.parametrize("S,H,start", [(2, 2, 0), (3, 3, 1), (4, 5, 2)])
def test_forced_gap_matches_path_enumeration(S, H, start, rng):
    fam = TabularMDP(states=S, actions=2, horizon=H, episodes=2, start=start)
    tasks = fam.sample_tasks(rng, 3)
    got = mdp_reference.forced_gap(fam, tasks)
    want = [brute_forced_gap(tasks["R"][i], tasks["P"][i], H, start) for i in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert np.all(got > 0)
    np.testing.assert_allclose(mdp_reference.relaxed_upper_return(fam, tasks), fam.oracle_return(tasks) - got)


def test_the_upper_bound_lies_between_the_best_policy_and_the_oracle():
    name = "tabular-mdp-s10-a5-n10"
    fam = metarl_bench.make_family(name)
    tasks = fam.sample_tasks(np.random.default_rng(5), 300)
    upper = mdp_reference.relaxed_upper_return(fam, tasks).mean()
    assert upper < fam.oracle_return(tasks).mean() - 1.0
    psrl = play(metarl_bench.make_agent("psrl", fam), fam, tasks, seed=0)
    assert psrl.mean() < upper


# ----------------------------------------------------------------------------- the family


@pytest.mark.parametrize(
    "kwargs,param",
    [
        ({"states": 0}, "states"),
        ({"actions": 1.5}, "actions"),
        ({"horizon": 0}, "horizon"),
        ({"episodes": -1}, "episodes"),
        ({"start": 10}, "start"),
        ({"start": True}, "start"),
        ({"reward_mean": float("nan")}, "reward_mean"),
        ({"reward_mean": "x"}, "reward_mean"),
        ({"reward_std": 0}, "reward_std"),
        ({"noise_std": -1.0}, "noise_std"),
        ({"alpha": 0.0}, "alpha"),
    ],
)
def test_invalid_parameters_name_the_parameter(kwargs, param):
    with pytest.raises(ValueError, match=param):
        TabularMDP(**kwargs)


@pytest.mark.parametrize(
    "agent,kwargs,param",
    [
        ("mdp-epsilon-greedy", {"epsilon": 1.5}, "epsilon"),
        ("mdp-greedy", {"epsilon": 0.2}, "epsilon"),
        ("ucrl2", {"scaling": 0.0}, "scaling"),
        ("ucrl2", {"delta": 1.0}, "delta"),
        ("beb", {"scaling": float("inf")}, "scaling"),
        ("psrl", {"tau0": -1.0}, "tau0"),
    ],
)
def test_invalid_agent_parameters_name_the_parameter(agent, kwargs, param):
    with pytest.raises(ValueError, match=param):
        metarl_bench.make_agent(agent, TabularMDP(), **kwargs)


def test_suite_and_overrides():
    assert metarl_bench.list_families("rl2-mdps") == [f"tabular-mdp-s10-a5-n{n}" for n in (10, 25, 50, 75, 100)]
    fam = metarl_bench.make_family("tabular-mdp-s10-a5-n25", states=4, noise_std=0.5)
    assert (fam.num_states, fam.num_actions, fam.horizon, fam.episodes_per_trial) == (4, 5, 10, 25)
    assert fam.trial_length == 250 and fam.noise_std == 0.5


def test_task_sampling_follows_the_prior():
    fam = TabularMDP(reward_mean=1.0, reward_std=1.0, alpha=1.0)
    tasks = fam.sample_tasks(np.random.default_rng(0), 2000)
    assert tasks["R"].shape == (2000, 10, 5) and tasks["P"].shape == (2000, 10, 5, 10)
    assert tasks["R"].mean() == pytest.approx(1.0, abs=0.01) and tasks["R"].std() == pytest.approx(1.0, abs=0.01)
    np.testing.assert_allclose(tasks["P"].sum(axis=3), 1.0)
    # a flat Dirichlet over 10 states: each entry has mean 1/10 and variance (1/10)(9/10)/11
    assert tasks["P"].var() == pytest.approx(0.09 / 11, rel=0.02)


def record(fam, tasks, actions, seed=7):
    """Play fixed actions in a batch of one; per (s, a), the (reward, next state) of each visit in
    order (next state None after an episode's last step: the trial moves to the start state)."""
    env = metarl_bench.TrialEnv(fam, num_trials=1)
    env.reset(seed=seed, tasks=tasks)  # the same seed draws the same trial key
    outcomes: dict[tuple[int, int], list] = {}
    for a in actions:
        s = int(env.state["s"][0])
        _, r, _, info = env.step(np.array([a]))
        nxt = None if info["episode_done"] else int(env.state["s"][0])
        outcomes.setdefault((s, int(a)), []).append((float(r[0]), nxt))
    return outcomes


def test_the_cth_visit_of_a_state_action_gives_the_same_outcome_whatever_came_before():
    # Common random numbers: reward noise and next state are indexed by (state, action, visit count).
    fam = TabularMDP(states=3, actions=2, horizon=25, episodes=2)
    tasks = fam.sample_tasks(np.random.default_rng(1), 1)
    a, b = (record(fam, tasks, np.random.default_rng(i).integers(0, 2, 50)) for i in (0, 1))
    shared = 0
    for key in set(a) & set(b):
        for (r0, s0), (r1, s1) in zip(a[key], b[key], strict=False):  # visits both trials made
            assert r0 == r1
            assert s0 == s1 or None in (s0, s1)
            shared += 1
    assert shared > 20
    other = record(fam, tasks, np.random.default_rng(0).integers(0, 2, 50), seed=8)  # another trial key
    assert other != a


def test_outcomes_are_the_documented_functions_of_the_noise_counters():
    """Reward noise is counter_normal of arm s A + a; the next state compares the top 32 of
    counter_bits of arm S A + s A + a with the row's CDF rounded down to multiples of 2**-32."""
    fam = TabularMDP(states=4, actions=3, horizon=6, episodes=3)
    env = metarl_bench.TrialEnv(fam, num_trials=5)
    env.reset(seed=11)
    rng = np.random.default_rng(11)
    tasks, keys = fam.sample_tasks(rng, 5), draw_keys(rng, 5)  # the draws reset made, in order
    np.testing.assert_array_equal(tasks["R"], env.tasks["R"])
    visits = np.zeros((5, 4, 3), np.int64)
    actions = np.random.default_rng(0).integers(0, 3, size=(fam.trial_length, 5))
    for a in actions:
        s, rows = env.state["s"].copy(), np.arange(5)
        _, r, _, info = env.step(a)
        c = visits[rows, s, a]
        visits[rows, s, a] += 1
        np.testing.assert_array_equal(r, tasks["R"][rows, s, a] + counter_normal(keys, s * 3 + a, c))
        if not info["episode_done"]:
            v = counter_bits(keys, 12 + s * 3 + a, c) >> np.uint64(21)
            cdf = np.floor(np.cumsum(tasks["P"][rows, s, a], axis=1)[:, :-1] * 2.0**32)
            np.testing.assert_array_equal(env.state["s"], (cdf <= v[:, None]).sum(axis=1))


def test_same_seed_same_trajectory_and_batch_of_one_agrees():
    env = metarl_bench.make("tabular-mdp-s10-a5-n10", num_trials=8, seed=3)
    actions = np.random.default_rng(0).integers(0, 5, size=(env.trial_length, 8))
    env.reset(seed=3)
    batch = np.array([env.step(a)[1] for a in actions])
    again = metarl_bench.make("tabular-mdp-s10-a5-n10", num_trials=8, seed=3)
    again.reset(seed=3)
    np.testing.assert_array_equal(batch, np.array([again.step(a)[1] for a in actions]))
    env.reset(seed=3)
    table, tasks, SA = env.state["table"].copy(), env.tasks, 50  # the fresh trials' records (noise counters)
    for i in range(8):
        single = metarl_bench.make("tabular-mdp-s10-a5-n10", num_trials=1)
        single.reset(tasks={k: v[i : i + 1] for k, v in tasks.items()})
        single.state["table"][:] = table[i * SA : (i + 1) * SA]
        got = np.array([single.step(a[i : i + 1])[1][0] for a in actions])
        np.testing.assert_array_equal(got, batch[:, i])


def test_rewards_and_transitions_follow_the_task():
    fam = TabularMDP(states=4, actions=3, horizon=1000, episodes=1)
    env = metarl_bench.TrialEnv(fam, num_trials=50, seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    counts = np.zeros((50, 4, 3, 4))
    residuals = []
    for _ in range(600):
        s = env.state["s"].copy()
        a = rng.integers(0, 3, 50)
        _, r, _, _ = env.step(a)
        counts[np.arange(50), s, a, env.state["s"]] += 1
        residuals.append(r - env.tasks["R"][np.arange(50), s, a])
    residuals = np.concatenate(residuals)
    assert abs(residuals.mean()) < 4 / np.sqrt(len(residuals)) and residuals.std() == pytest.approx(1.0, abs=0.02)
    n = counts.sum(axis=3, keepdims=True)
    freq = counts / np.maximum(n, 1)
    z = (freq - env.tasks["P"]) * np.sqrt(n) / np.sqrt(env.tasks["P"] * (1 - env.tasks["P"]) + 1e-12)
    assert np.abs(z[n[..., 0] > 30]).max() < 6


def test_observations_start_every_episode_in_the_start_state():
    fam = TabularMDP(states=5, actions=2, horizon=3, episodes=4, start=2)
    env = metarl_bench.TrialEnv(fam, num_trials=6, seed=0)
    obs = env.reset()
    for t in range(fam.trial_length):
        assert obs["obs"].shape == (6, 5) and np.all(obs["obs"].sum(axis=1) == 1)
        assert np.all(fam.state_index(obs["obs"]) == env.state["s"])
        assert np.all(obs["new_episode"] == float(t % 3 == 0))
        if t % 3 == 0:
            assert np.all(fam.state_index(obs["obs"]) == 2)
        obs, _, _, _ = env.step(np.zeros(6, np.int64))


def test_the_oracle_agent_earns_the_oracle_return():
    name = "tabular-mdp-s10-a5-n10"
    fam = metarl_bench.make_family(name)
    tasks = fam.sample_tasks(np.random.default_rng(2), 400)
    got = play(metarl_bench.make_agent("oracle", fam), fam, tasks, seed=0)
    want = fam.oracle_return(tasks)
    assert abs((got - want).mean()) < 4 * (got - want).std() / np.sqrt(400)
    rand = play(metarl_bench.make_agent("random", fam), fam, tasks, seed=0)
    want = fam.random_return(tasks)
    assert abs((rand - want).mean()) < 4 * (rand - want).std() / np.sqrt(400)


# ----------------------------------------------------------------------------- belief model


def test_belief_update_matches_counting_and_skips_the_unseen_last_transition():
    fam = TabularMDP(states=3, actions=2, horizon=4, episodes=3, reward_mean=0.5, reward_std=2.0, noise_std=0.5)
    env = metarl_bench.TrialEnv(fam, num_trials=5, seed=0)
    obs = env.reset()
    belief = fam.prior(5)
    rng = np.random.default_rng(1)
    rewards_seen = {}
    trans = np.zeros((5, 3, 2, 3))
    for _ in range(fam.trial_length):
        s = env.state["s"].copy()
        a = rng.integers(0, 2, 5)
        obs, r, _, info = env.step(a)
        if not info["episode_done"]:
            trans[np.arange(5), s, a, env.state["s"]] += 1
        for i in range(5):
            rewards_seen.setdefault((i, s[i], a[i]), []).append(r[i])
        belief = fam.update_belief(belief, a, r, obs["obs"])
    np.testing.assert_array_equal(belief["alpha"], fam.alpha + trans)
    assert trans.sum() == 5 * 3 * 3  # H - 1 observed transitions per episode
    for (i, s, a), rs in rewards_seen.items():
        prec = fam.reward_std**-2 + len(rs) / fam.noise_std**2
        mean = (fam.reward_mean * fam.reward_std**-2 + sum(rs) / fam.noise_std**2) / prec
        assert belief["precision"][i, s, a] == pytest.approx(prec)
        assert belief["mean"][i, s, a] == pytest.approx(mean)
    features = fam.belief_features(belief)
    assert features["transition_mean"].shape == (5, 18)
    sample = fam.posterior_sample(belief, np.random.default_rng(0))
    np.testing.assert_allclose(sample["P"].sum(axis=3), 1.0)
    with pytest.raises(ValueError, match="next observation"):
        fam.update_belief(belief, a, r)


# ----------------------------------------------------------------------------- agents


def play(agent, fam, tasks, seed=0):
    return trial_returns(agent, fam, tasks, seed, seed)


def test_statistics_count_every_reward_and_every_observed_transition():
    fam = TabularMDP(states=4, actions=3, horizon=5, episodes=3)
    agent = metarl_bench.make_agent("mdp-greedy", fam)
    env = metarl_bench.TrialEnv(fam, num_trials=7, seed=0)
    obs = env.reset()
    memory = agent.reset(7, rng=np.random.default_rng(0))
    for _ in range(fam.trial_length):
        actions, memory = agent.act(obs, memory)
        obs, _, _, _ = env.step(actions)
    stats = fold(memory["stats"], memory["steps"])  # the last episode is folded at the next start
    assert np.all(stats["visits"].sum(axis=(1, 2)) == 14)  # the last reward comes with the next obs
    assert np.all(stats["transitions"].sum(axis=(1, 2, 3)) == 3 * 4)


@pytest.mark.parametrize("name", ["psrl", "ucrl2", "beb", "mdp-greedy"])
def test_agents_plan_once_per_episode_and_learn(name):
    """The plan is made at each episode start and kept through the episode, and every agent
    beats random play on average."""
    fam = metarl_bench.make_family("tabular-mdp-s10-a5-n10")
    tasks = fam.sample_tasks(np.random.default_rng(3), 200)
    agent = metarl_bench.make_agent(name, fam, **({"scaling": 0.01} if name in ("ucrl2", "beb") else {}))
    env = metarl_bench.TrialEnv(fam, num_trials=200)
    obs = env.reset(seed=0, tasks=tasks)
    memory = agent.reset(200, rng=np.random.default_rng(0))
    total, plan = np.zeros(200), None
    for t in range(fam.trial_length):
        actions, memory = agent.act(obs, memory)
        assert (memory["q"] is plan) == (t % fam.horizon != 0)
        plan = memory["q"]
        obs, r, _, _ = env.step(actions)
        total += r
    assert total.mean() > fam.random_return(tasks).mean() + 10
    assert total.mean() < fam.oracle_return(tasks).mean()


def test_psrl_with_a_sharp_posterior_plays_the_oracle_policy():
    fam = TabularMDP(states=3, actions=2, horizon=4, episodes=2)
    tasks = fam.sample_tasks(np.random.default_rng(4), 50)
    agent = metarl_bench.make_agent("psrl", fam)
    memory = agent.reset(50, rng=np.random.default_rng(0))
    big = 1e8
    stats = {"visits": np.full((50, 3, 2), big), "reward_sum": big * tasks["R"], "transitions": big * tasks["P"]}
    q = agent.plan(stats, np.random.default_rng(0), 0)
    oracle = planners.greedy_policy(fam.known_task_plan(tasks)[0])
    assert np.mean(planners.greedy_policy(q) == oracle) > 0.99
    assert memory["t"] == 0


@pytest.mark.parametrize("agent", sorted(AGENTS))
def test_mdp_agents_refuse_bandits_and_gridworlds(agent):
    for env in ("bernoulli-k2-h100", "gridnavi-5x5"):
        with pytest.raises(UnsupportedFamilyError, match="tabular MDP"):
            metarl_bench.make_agent(agent, metarl_bench.make_family(env))


@pytest.mark.parametrize("agent", ["greedy", "epsilon-greedy", "thompson", "ucb1", "gittins"])
def test_bandit_agents_refuse_the_mdps(agent):
    with pytest.raises(UnsupportedFamilyError):
        metarl_bench.make_agent(agent, metarl_bench.make_family("tabular-mdp-s10-a5-n10"))


@pytest.mark.parametrize("agent", ["ucrl2-tuned", "beb-tuned"])
def test_tuned_agents_refuse_distributions_they_were_not_tuned_on(agent):
    with pytest.raises(UnsupportedFamilyError, match="tuned"):
        metarl_bench.make_agent(agent, TabularMDP(episodes=10, states=4))


# ----------------------------------------------------------------------------- the tuned-constants file

COMMAND = (
    "python studies/mdp_tuning.py --tasks 1000 --episodes 10,25,50,75,100 --write baselines/tuned/mdp_constants.csv"
)


def tuned_row(agent, n, param, value, train_return=100.0, tasks=7, command="python studies/mdp_tuning.py --tasks 7"):
    return {"agent": agent, "episodes": n, "param": param, "value": value, "train_return": train_return,
            "tasks": tasks, "command": command}  # fmt: skip


SMALL_TABLE = [
    tuned_row("ucrl2", 10, "scaling", "0.25"),
    tuned_row("beb", 10, "scaling", "0.003", 151.25),
    tuned_row("mdp-epsilon-greedy", 10, "epsilon", "0.2"),
    tuned_row("reference", 10, "policy", "ucrl2-tuned", 152.5),
    tuned_row("beb", 25, "scaling", "0.5"),  # n = 25: no ucrl2 constant and no policy line
]


@pytest.fixture
def small_tuned_file(tmp_path, monkeypatch):
    path = tmp_path / "mdp_constants.csv"
    write_table(SMALL_TABLE, path)
    monkeypatch.setattr(mdp_reference, "TUNED_FILE", path)
    return path


def test_the_tuned_agents_and_the_reference_read_the_tuned_file(small_tuned_file):
    n10, n25 = (metarl_bench.make_family(f"tabular-mdp-s10-a5-n{n}") for n in (10, 25))
    assert metarl_bench.make_agent("ucrl2-tuned", n10).config["scaling"] == 0.25
    assert metarl_bench.make_agent("beb-tuned", n10).config["scaling"] == 0.003
    assert metarl_bench.make_agent("beb-tuned", n25).config["scaling"] == 0.5
    assert metarl_bench.make_agent("beb-tuned", n10, scaling=0.7).config["scaling"] == 0.7  # explicit wins
    assert n10.bayes_reference().method == "lower-bound:ucrl2-tuned"
    assert n25.bayes_reference().method == "lower-bound:psrl"  # no policy line for n = 25
    with pytest.raises(UnsupportedFamilyError, match=r"tuned constants .*\[10\] episodes"):
        metarl_bench.make_agent("ucrl2-tuned", n25)


BAD_FILES = {
    "header only": "agent,episodes,param,value,train_return,tasks,command\n",
    "a column missing": "agent,episodes,param,value,tasks,command\nbeb,10,scaling,0.1,7,x\n",
    "a short line": "agent,episodes,param,value,train_return,tasks,command\nbeb,10,scaling,0.1,100.0\n",
    "a long line": "agent,episodes,param,value,train_return,tasks,command\nbeb,10,scaling,0.1,100.0,7,x,y\n",
    "a value not a number": "agent,episodes,param,value,train_return,tasks,command\nbeb,10,scaling,abc,100.0,7,x\n",
    "a repeated line": "agent,episodes,param,value,train_return,tasks,command\n" + "beb,10,scaling,0.1,100.0,7,x\n" * 2,
    "a policy line without a policy": "agent,episodes,param,value,train_return,tasks,command\n"
    "reference,10,policy,,100.0,7,x\n",
}


@pytest.mark.parametrize("case", [*BAD_FILES, "not utf-8", "missing"])
def test_a_missing_or_corrupt_tuned_file_is_one_error_naming_it(case, tmp_path, monkeypatch):
    path = tmp_path / "mdp_constants.csv"
    if case == "not utf-8":
        path.write_bytes(b"agent,episodes,param,value,train_return,tasks,command\nbeb,10,scaling,0.1,\xff,7,x\n")
    elif case != "missing":
        path.write_text(BAD_FILES[case])
    monkeypatch.setattr(mdp_reference, "TUNED_FILE", path)
    n10 = metarl_bench.make_family("tabular-mdp-s10-a5-n10")
    for build in (lambda: metarl_bench.make_agent("beb-tuned", n10), n10.bayes_reference):
        with pytest.raises(RuntimeError, match="cannot be read") as err:
            build()
        assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert TabularMDP(states=3, episodes=10).bayes_reference().method == "lower-bound:psrl"  # needs no file


def test_the_writer_round_trips_and_replaces_the_file_whole(tmp_path):
    path = tmp_path / "mdp_constants.csv"
    write_table(SMALL_TABLE, path)
    table = mdp_reference.parse_tuned(path)
    assert table.constants == {"ucrl2": {10: 0.25}, "beb": {10: 0.003, 25: 0.5}, "mdp-epsilon-greedy": {10: 0.2}}
    assert table.best_policy == {10: "ucrl2-tuned"}
    with open(path, newline="") as f:
        lines = list(csv.DictReader(f))
    assert lines == [{k: str(v) for k, v in row.items()} for row in SMALL_TABLE]  # every column kept as written
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="cannot be read"):  # checked before it replaces the file
        write_table([tuned_row("beb", 10, "scaling", "nan")], path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_the_shipped_tuned_file_covers_rl2_mdps_from_the_full_tuning_command():
    table = mdp_reference.tuned_table()  # baselines/tuned/mdp_constants.csv
    n_all = [10, 25, 50, 75, 100]
    assert sorted(table.best_policy) == n_all
    assert {a: sorted(v) for a, v in table.constants.items()} == {
        a: n_all for a in ("ucrl2", "beb", "mdp-epsilon-greedy")
    }
    with open(mdp_reference.TUNED_FILE, newline="") as f:
        lines = list(csv.DictReader(f))
    assert {(line["tasks"], line["command"]) for line in lines} == {("1000", COMMAND)}  # never a subset run
    fam = metarl_bench.make_family("tabular-mdp-s10-a5-n50")
    assert metarl_bench.make_agent("ucrl2-tuned", fam).config["scaling"] == table.constants["ucrl2"][50]
    assert fam.bayes_reference().method == f"lower-bound:{table.best_policy[50]}"


def test_reference_is_a_named_lower_bound_with_an_upper_bound():
    fam = TabularMDP(states=3, actions=2, horizon=3, episodes=2)  # not tuned: PSRL
    ref = fam.bayes_reference()
    assert ref.method == "lower-bound:psrl" and not ref.exact
    assert ref.policy().name == "psrl"
    tasks = fam.sample_tasks(np.random.default_rng(0), 20000)
    assert ref.upper() < fam.oracle_return(tasks).mean()
    assert ref.upper() == pytest.approx(mdp_reference.relaxed_upper_return(fam, tasks).mean(), rel=0.02)


@pytest.mark.parametrize("agent", ["rl2", "vsml"])
def test_learning_agents_without_a_checkpoint_are_skipped_on_the_mdps(agent):
    settings = EvalSettings(n_tasks=4, seeds=(0,))
    (spec,) = plan_runs([agent], ["tabular-mdp-s10-a5-n100"], settings)  # rl2 ships n = 10, 25, 50 only
    assert isinstance(spec, RunSpec)
    result = execute_run(spec)
    assert result.status == "skipped", result.detail
    assert "checkpoint" in result.error


def test_the_shipped_rl2_checkpoints_play_their_mdps():
    settings = EvalSettings(n_tasks=4, seeds=(0,))
    (spec,) = plan_runs(["rl2"], ["tabular-mdp-s10-a5-n10"], settings)
    result = execute_run(spec)
    assert result.status == "ok", result.detail
    assert result.row["checkpoint"] == "tabular-mdp-s10-a5-n10.zip"
