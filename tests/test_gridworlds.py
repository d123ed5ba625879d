"""Gridworld families (envs/gridworlds/family.py) and their Bayes-optimal planners (envs/gridworlds/bayes.py).

The planners are checked against brute-force expectimax written from the rules alone:
every action (stays and wall bumps included) at every belief state, the posterior over
goals updated by Bayes' rule, no symmetry, no dominance, no gains formulation.
"""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest

import metarl_bench
from metarl_bench.baselines.bayes import BayesOptimalAgent
from metarl_bench.envs.gridworlds import bayes as bayes_grid
from metarl_bench.envs.gridworlds.family import GoalGrid, HeartTrap


def bayes_reference(family) -> tuple[float | None, str]:
    """The family's declared reference as (exact value or None, method)."""
    ref = family.bayes_reference()
    return ref.expected_return(), ref.method


MOVES = {0: (0, 1), 1: (0, -1), 2: (-1, 0), 3: (1, 0), 4: (0, 0)}  # up, down, left, right, stay


@pytest.fixture(autouse=True, scope="module")
def _private_plan_cache(tmp_path_factory):
    """Solved plans go to a temporary folder, not the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("METARL_BENCH_CACHE", str(tmp_path_factory.mktemp("plans")))
    yield
    mp.undo()


def step_xy(size: int, x: int, y: int, action: int) -> tuple[int, int]:
    dx, dy = MOVES[action]
    return min(max(x + dx, 0), size - 1), min(max(y + dy, 0), size - 1)


# ----------------------------------------------------------------------------- brute force


def brute_goal(size, horizon, episodes, start, goals, c, memo=True):
    """Expectimax over (episode, step, (x, y), set of goals still possible); returns V(e, t, xy, S)
    and Q(e, t, xy, S, a).  The posterior is uniform on S; landing on a cell of S finds the
    goal with probability 1/|S| (then S = {that cell}), else rules the cell out."""

    def value(e, t, xy, possible):
        if t == horizon:
            e, t, xy = e + 1, 0, start
        if e == episodes:
            return 0.0
        return max(q_value(e, t, xy, possible, a) for a in MOVES)

    def q_value(e, t, xy, possible, a):
        nxt = step_xy(size, *xy, a)
        if nxt not in possible:
            return c + value(e, t + 1, nxt, possible)
        p_goal = 1.0 / len(possible)
        out = p_goal * (1.0 + value(e, t + 1, nxt, frozenset([nxt])))
        rest = possible - {nxt}
        if rest:
            out += (1.0 - p_goal) * (c + value(e, t + 1, nxt, rest))
        return out

    if memo:
        value = functools.cache(value)
    return value, q_value


def goal_cells(size, start, margin):
    return frozenset(
        (x, y) for x in range(size) for y in range(size) if max(abs(x - start[0]), abs(y - start[1])) >= margin
    )


def brute_heart(size, horizon, episodes, start, objects):
    """Expectimax over (episode, step, (x, y), heart in {unknown, 0, 1}); touching an object pays
    +1 (heart) or -1 (trap) and puts the agent back on the start cell."""

    @functools.cache
    def value(e, t, xy, heart):
        if t == horizon:
            e, t, xy = e + 1, 0, start
        if e == episodes:
            return 0.0
        best = -np.inf
        for a in MOVES:
            nxt = step_xy(size, *xy, a)
            if nxt in objects:
                k = objects.index(nxt)
                if heart is None:
                    q = 0.5 * (1.0 + value(e, t + 1, start, k)) + 0.5 * (-1.0 + value(e, t + 1, start, 1 - k))
                else:
                    q = (1.0 if heart == k else -1.0) + value(e, t + 1, start, heart)
            else:
                q = value(e, t + 1, nxt, heart)
            best = max(best, q)
        return best

    return value(0, 0, start, None)


TINY_GOALS = [  # (size, horizon, episodes, start, goal_margin, step_reward)
    (3, 3, 2, (0, 0), 1, -0.1),
    (3, 4, 2, (1, 1), 0, 0.0),  # the goal may be on the start cell: staying there can find it
    (2, 3, 3, (0, 0), 0, -0.5),
    (4, 4, 2, (0, 0), 2, -0.1),
    (3, 2, 3, (2, 0), 1, -1.0),
]


def tiny_family(cfg) -> GoalGrid:
    size, horizon, episodes, start, margin, c = cfg
    return GoalGrid(size=size, horizon=horizon, episodes=episodes, start=start, goal_margin=margin, step_reward=c)


def tiny_exact(cfg) -> float:
    size, horizon, episodes, start, margin, c = cfg
    value, _ = brute_goal(size, horizon, episodes, start, goal_cells(size, start, margin), c)
    return value(0, 0, start, goal_cells(size, start, margin))


# ----------------------------------------------------------------------------- registration and dynamics


def test_registered_variants():
    assert metarl_bench.list_families("gridworlds") == ["gridnavi-5x5", "darkroom-9x9", "heart-trap-5x5"]
    nav = metarl_bench.make_family("gridnavi-5x5")
    assert (nav.size, nav.horizon, nav.episodes_per_trial, nav.start_xy, nav.step_reward) == (5, 15, 4, (0, 0), -0.1)
    dark = metarl_bench.make_family("darkroom-9x9")
    assert (dark.size, dark.horizon, dark.start_xy, len(dark.candidates), dark.step_reward) == (9, 20, (4, 4), 81, 0.0)
    assert dark.episodes_per_trial > 1
    heart = metarl_bench.make_family("heart-trap-5x5")
    assert heart.num_actions == 5 and heart.obs_shape == (2,) and heart.episodes_per_trial > 1


def test_gridnavi_goal_is_uniform_over_the_21_cells_outside_the_start_corner():
    nav = metarl_bench.make_family("gridnavi-5x5")
    cells = {nav.xy(c) for c in nav.candidates}
    assert len(cells) == 21 and cells == goal_cells(5, (0, 0), 2)
    assert not cells & {(0, 0), (0, 1), (1, 0), (1, 1)}
    goals = nav.sample_tasks(np.random.default_rng(0), 42_000)["goal"]
    counts = np.bincount(goals, minlength=25)
    assert set(np.flatnonzero(counts)) == set(nav.candidates.tolist())
    expected = 42_000 / 21
    assert np.all(np.abs(counts[nav.candidates] - expected) < 5 * np.sqrt(expected))


def test_moves_and_walls():
    fam = GoalGrid(size=5)
    for x in range(5):
        for y in range(5):
            for a in MOVES:
                got = fam.move(np.array([fam.cell(x, y)]), np.array([a]))[0]
                assert fam.xy(got) == step_xy(5, x, y, a)
    corner = np.array([fam.cell(0, 0)] * 2)
    assert fam.move(corner, np.array([1, 2])).tolist() == corner.tolist()  # down and left hit walls


def test_gridnavi_rewards_reset_each_episode_and_no_termination_at_the_goal():
    env = metarl_bench.make("gridnavi-5x5", num_trials=1)
    goal = env.family.cell(2, 1)
    obs = env.reset(tasks={"goal": np.array([goal])})
    assert obs["obs"][0].tolist() == [0.0, 0.0] and obs["new_episode"][0, 0] == 1.0
    plan = [3, 3, 0] + [4] * 12  # right, right, up: the goal on step 3, then stay
    for episode in range(4):
        for t, a in enumerate(plan):
            obs, r, done, info = env.step(np.array([a]))
            assert r[0] == pytest.approx(1.0 if t >= 2 else -0.1)
            assert done == (episode == 3 and t == 14)
            if t == 14 and episode < 3:  # back to the start for the next inner episode
                assert obs["obs"][0].tolist() == [0.0, 0.0] and obs["new_episode"][0, 0] == 1.0
            elif t >= 2:
                assert obs["obs"][0].tolist() == [2.0, 1.0] and obs["new_episode"][0, 0] == 0.0
    per_episode = 2 * -0.1 + 13 * 1.0
    np.testing.assert_allclose(env.episode_returns[0], per_episode)
    assert env.family.oracle_return({"goal": np.array([goal])})[0] == pytest.approx(4 * per_episode)


def test_heart_trap_touching_an_object_pays_and_returns_to_the_start():
    env = metarl_bench.make("heart-trap-5x5", num_trials=2)
    fam = env.family
    env.reset(tasks={"good": np.array([1, 0])})  # object 1 = (4, 1) is the heart of trial 0 only
    rewards = []
    for a in (3, 3, 1):  # (2,2) -> (3,2) -> (4,2) -> (4,1)
        obs, r, _, _ = env.step(np.array([a, a]))
        rewards.append(r.tolist())
    assert rewards == [[0.0, 0.0], [0.0, 0.0], [1.0, -1.0]]
    assert fam.positions(obs["obs"]).tolist() == [fam.start, fam.start]


def test_onehot_observations_round_trip():
    fam = GoalGrid(size=4, obs="onehot")
    env = metarl_bench.TrialEnv(fam, num_trials=3, seed=0)
    obs = env.reset()
    assert obs["obs"].shape == (3, 16) and env.observation_space["obs"].contains(obs["obs"][0])
    obs, _, _, _ = env.step(np.array([0, 3, 4]))
    assert fam.positions(obs["obs"]).tolist() == [fam.cell(0, 1), fam.cell(1, 0), fam.cell(0, 0)]


@pytest.mark.parametrize("name", ["gridnavi-5x5", "darkroom-9x9", "heart-trap-5x5"])
def test_gymnasium_ids(name):
    env = gym.make(f"metarl_bench/{name}")
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and "task" in info
    total, steps, done = 0.0, 0, False
    while not done:
        obs, r, done, truncated, info = env.step(env.action_space.sample())
        total += r
        steps += 1
        assert env.observation_space.contains(obs) and not truncated
    assert steps == env.unwrapped.family.trial_length
    assert total == pytest.approx(info["episode_returns"].sum())
    vec = gym.make_vec(f"metarl_bench/{name}", num_envs=3, vectorization_mode="vector_entry_point")
    obs, _ = vec.reset(seed=1)
    obs, rewards, *_ = vec.step(np.array([0, 1, 4]))
    assert obs["obs"].shape == (3, *env.unwrapped.family.obs_shape) and rewards.shape == (3,)


@pytest.mark.parametrize(
    "factory, kwargs, message",
    [
        (GoalGrid, {"size": 1}, "size"),
        (GoalGrid, {"size": 4.5}, "size"),
        (GoalGrid, {"horizon": 0}, "horizon"),
        (GoalGrid, {"episodes": 0}, "episodes"),
        (GoalGrid, {"start": (5, 0)}, r"start must be an \(x, y\) pair of integers in \[0, 5\)"),
        (GoalGrid, {"start": "ab"}, "start"),
        (GoalGrid, {"start": (0,)}, "start"),
        (GoalGrid, {"goal_margin": 5}, "goal_margin=5 leaves no goal cell.*allowed: 0 to 4"),
        (GoalGrid, {"goal_margin": -1}, "goal_margin"),
        (GoalGrid, {"step_reward": 0.5}, r"step_reward must be a number in \[-1, 0\]"),
        (GoalGrid, {"step_reward": "x"}, "step_reward"),
        (GoalGrid, {"obs": "pixels"}, "obs must be one of"),
        (HeartTrap, {"objects": ((0, 4), (0, 4))}, "two different cells"),
        (HeartTrap, {"objects": ((2, 2), (0, 4))}, "start cell"),
        (HeartTrap, {"objects": ((0, 4),)}, "two"),
        (HeartTrap, {"objects": ((0, 4), (5, 1))}, r"objects\[1\]"),
        (HeartTrap, {"objects": 3}, "objects"),
    ],
)
def test_invalid_parameters_name_the_parameter(factory, kwargs, message):
    with pytest.raises(ValueError, match=message):
        factory(**kwargs)


def test_invalid_actions_and_overrides():
    env = metarl_bench.make("gridnavi-5x5", num_trials=2)
    env.reset()
    with pytest.raises(ValueError, match=r"out of range.*\[0, 5\)"):
        env.step(np.array([0, 5]))
    with pytest.raises(ValueError, match="unknown parameter"):
        metarl_bench.make_family("gridnavi-5x5", goal=(3, 3))


# ----------------------------------------------------------------------------- returns and beliefs


@pytest.mark.parametrize(
    "family", [GoalGrid(), GoalGrid(size=9, horizon=20, episodes=2, start=(4, 4), goal_margin=0, step_reward=0.0),
               HeartTrap(), HeartTrap(size=4, horizon=7, start=(0, 0), objects=((3, 0), (0, 2)))],
    ids=lambda f: f.describe(),
)  # fmt: skip
def test_oracle_agent_earns_the_oracle_return_on_every_task(family):
    ids = family.candidates if isinstance(family, GoalGrid) else np.array([0, 1])
    tasks = {"goal": ids} if isinstance(family, GoalGrid) else {"good": ids}
    returns = play(metarl_bench.TrialEnv(family, num_trials=len(ids)), "oracle", tasks)
    np.testing.assert_allclose(returns, family.oracle_return(tasks), atol=1e-9)


@pytest.mark.parametrize("family", [GoalGrid(horizon=6, episodes=2), HeartTrap(horizon=8, episodes=2)])
def test_random_return_matches_simulation(family):
    env = metarl_bench.TrialEnv(family, num_trials=20_000, seed=0)
    env.reset()
    tasks = env.tasks
    returns = play(env, "random", tasks, seed=1)  # not the task seed: its draws would match the actions
    expected = family.random_return(tasks)
    assert abs((returns - expected).mean()) < 4 * returns.std() / np.sqrt(len(returns))


def test_goal_posterior_is_uniform_over_the_goals_consistent_with_the_history(rng):
    fam = GoalGrid(size=4, horizon=5, episodes=3, goal_margin=1)
    n = 60
    env = metarl_bench.TrialEnv(fam, num_trials=n, seed=1)
    obs = env.reset()
    belief = fam.prior(n)
    history = []
    for _ in range(fam.trial_length):
        actions = rng.integers(0, 5, n)
        obs, rewards, _, _ = env.step(actions)
        history.append((actions, rewards))
        belief = fam.update_belief(belief, actions, rewards, obs["obs"])
        # Bayes' rule by replay: a goal is possible iff it would have produced these rewards.
        consistent = np.zeros((n, fam.num_cells), bool)
        for goal in fam.candidates:
            replay = metarl_bench.TrialEnv(fam, num_trials=n)
            replay.reset(tasks={"goal": np.full(n, goal)})
            same = np.ones(n, bool)
            for a, r in history:
                same &= replay.step(a)[1] == r
            consistent[:, goal] = same
        np.testing.assert_array_equal(belief["possible"], consistent)
        np.testing.assert_array_equal(belief["pos"], fam.positions(obs["obs"]))
        post = fam.belief_features(belief)["goal_posterior"]
        np.testing.assert_allclose(post.sum(axis=1), 1.0)
    assert belief["possible"][np.arange(n), env.tasks["goal"]].all()  # the true goal is never ruled out
    samples = fam.posterior_sample(belief, rng)
    assert belief["possible"][np.arange(n), samples].all()


def test_heart_posterior_resolves_at_the_first_touch():
    fam = HeartTrap()
    env = metarl_bench.TrialEnv(fam, num_trials=2)
    obs = env.reset(tasks={"good": np.array([0, 1])})
    belief = fam.prior(2)
    for a in (3, 3):  # not yet touched: the prior stays
        obs, r, _, _ = env.step(np.array([a, a]))
        belief = fam.update_belief(belief, np.array([a, a]), r, obs["obs"])
    np.testing.assert_allclose(belief["p_good"], 0.5)
    obs, r, _, _ = env.step(np.array([1, 1]))  # onto object 1 at (4, 1): trap for trial 0, heart for 1
    belief = fam.update_belief(belief, np.array([1, 1]), r, obs["obs"])
    np.testing.assert_allclose(fam.belief_features(belief)["heart_posterior"], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="next observation"):
        fam.update_belief(belief, np.array([0, 0]), r)


# ----------------------------------------------------------------------------- planners against brute force


def test_brute_force_with_and_without_memo_agree():
    size, horizon, episodes, start = 2, 3, 2, (0, 0)
    goals = goal_cells(size, start, 1)
    memo, _ = brute_goal(size, horizon, episodes, start, goals, -0.1)
    plain, _ = brute_goal(size, horizon, episodes, start, goals, -0.1, memo=False)
    assert plain(0, 0, start, goals) == pytest.approx(memo(0, 0, start, goals), abs=1e-12)


@pytest.mark.parametrize("cfg", TINY_GOALS, ids=str)
def test_goal_planner_matches_brute_force(cfg):
    fam = tiny_family(cfg)
    plan = bayes_grid.solve_goal_search(bayes_grid.GoalProblem.of(fam))
    exact = tiny_exact(cfg)
    assert plan.value == pytest.approx(exact, abs=1e-9)
    assert bayes_reference(fam) == (pytest.approx(exact, abs=1e-9), "exact")
    # The agent's stored path is worth exactly the value; the beam search and the assignment bound bracket it.
    assert bayes_grid.path_value(fam, plan.plan_actions) == pytest.approx(exact, abs=1e-9)
    assert bayes_grid.beam_plan(fam, width=4)[0] <= exact + 1e-9
    assert bayes_grid.assignment_upper_bound(fam) >= exact - 1e-9
    tasks = {"goal": fam.candidates}
    assert fam.random_return(tasks).mean() < exact <= fam.oracle_return(tasks).mean() + 1e-9


@pytest.mark.parametrize(
    "family",
    [HeartTrap(), HeartTrap(size=4, horizon=7, episodes=3, start=(0, 0), objects=((3, 0), (0, 2))),
     HeartTrap(size=3, horizon=2, episodes=2, start=(1, 1), objects=((0, 0), (2, 2)))],
    ids=lambda f: f.describe(),
)  # fmt: skip
def test_heart_trap_planner_matches_brute_force(family):
    exact = brute_heart(family.size, family.horizon, family.episodes_per_trial, family.start_xy, family.objects_xy)
    assert bayes_grid.solve_heart_trap(family).value == pytest.approx(exact, abs=1e-9)
    assert bayes_reference(family) == (pytest.approx(exact, abs=1e-9), "exact")
    tasks = {"good": np.array([0, 1])}
    returns = play(metarl_bench.TrialEnv(family, num_trials=2), "bayes", tasks)
    assert returns.mean() == pytest.approx(exact, abs=1e-9)  # deterministic: the two tasks are the prior
    assert family.random_return(tasks).mean() < exact <= family.oracle_return(tasks).mean() + 1e-9


def test_gridnavi_5x5_value_is_certified_by_matching_bounds():
    """Without the exact planner (25 s): a concrete path's exact value meets the relaxation bound."""
    fam = metarl_bench.make_family("gridnavi-5x5")
    lower, actions = bayes_grid.beam_plan(fam, width=1024, rank="gain")
    assert bayes_grid.path_value(fam, actions) == pytest.approx(lower, abs=1e-12)
    assert bayes_grid.assignment_upper_bound(fam) == pytest.approx(lower, abs=1e-9)
    tasks = {"goal": fam.candidates}
    assert fam.random_return(tasks).mean() < lower < fam.oracle_return(tasks).mean()


def test_heart_trap_5x5_value_is_known_by_hand():
    # Probe the nearer object (3 steps): heart -> 5 touches every episode; trap -> the far
    # heart (4 steps) from step 3: -1 + 3 touches, then 3 per episode.  0.5 (20) + 0.5 (2 + 9).
    assert bayes_reference(metarl_bench.make_family("heart-trap-5x5")) == (pytest.approx(15.5), "exact")


# ----------------------------------------------------------------------------- agents


def play(env: metarl_bench.TrialEnv, agent_name: str, tasks: dict, seed: int = 0) -> np.ndarray:
    agent = metarl_bench.make_agent(agent_name, env.family)
    obs = env.reset(tasks=tasks)
    memory = agent.reset(env.num_trials, rng=np.random.default_rng(seed), tasks=tasks if agent.privileged else None)
    done = False
    while not done:
        actions, memory = agent.act(obs, memory)
        assert actions.dtype == np.int64 and actions.shape == (env.num_trials,)
        obs, _, done, _ = env.step(actions)
    return env.episode_returns.sum(axis=1)


@pytest.mark.parametrize("cfg", TINY_GOALS[:4] + [(5, 15, 1, (0, 0), 2, -0.1), (4, 6, 3, (0, 0), 2, -0.1)], ids=str)
def test_bayes_agent_earns_the_planned_value_on_every_goal(cfg):
    fam = tiny_family(cfg)
    agent = BayesOptimalAgent(fam)  # plays the policy the family declares
    assert isinstance(agent.policy, bayes_grid.GridBayesPolicy) and agent.method == "exact"
    returns = play(metarl_bench.TrialEnv(fam, num_trials=len(fam.candidates)), "bayes", {"goal": fam.candidates})
    assert returns.mean() == pytest.approx(bayes_reference(fam)[0], abs=1e-9)  # the prior is uniform


@pytest.mark.parametrize("cfg", TINY_GOALS[:3], ids=str)
def test_bayes_agent_is_optimal_from_any_history(cfg, rng):
    """Shadowing other players (as the belief probe does), the agent's action is optimal at every belief.

    Trials 0-29 play at random, 30-34 always stay, 35-39 always walk down (into the wall
    from a bottom start): histories that waste steps, which the agent's own play never does.
    """
    size, horizon, episodes, start, margin, c = cfg
    fam = tiny_family(cfg)
    goals = goal_cells(size, start, margin)
    value, q_value = brute_goal(size, horizon, episodes, start, goals, c)
    n = 40
    env = metarl_bench.TrialEnv(fam, num_trials=n, seed=2)
    obs = env.reset()
    agent = metarl_bench.make_agent("bayes", fam)
    memory = agent.reset(n)
    possible = [set(goals) for _ in range(n)]
    pos = [start] * n
    checked = 0
    for k in range(fam.trial_length):
        e, t = divmod(k, horizon)
        chosen, memory = agent.act(obs, memory)
        for i in range(n):
            state = (e, t, pos[i], frozenset(possible[i]))
            assert q_value(*state, int(chosen[i])) == pytest.approx(value(*state), abs=1e-9), (k, i, state)
            checked += 1
        actions = np.concatenate([rng.integers(0, 5, 30), np.full(5, 4), np.full(5, 1)])
        obs, rewards, _, _ = env.step(actions)
        for i in range(n):
            landed = step_xy(size, *pos[i], int(actions[i]))
            possible[i] = {landed} if rewards[i] > 0.5 else possible[i] - {landed}
            pos[i] = tuple(int(v) for v in obs["obs"][i])
    assert checked == n * fam.trial_length


@pytest.mark.parametrize("name, overrides", [("gridnavi-5x5", {"episodes": 1}), ("heart-trap-5x5", {})])
def test_bayes_agent_on_sampled_tasks_reaches_the_planner_value(name, overrides):
    env = metarl_bench.make(name, num_trials=3000, seed=5, **overrides)
    env.reset()
    returns = play(env, "bayes", env.tasks)
    value, method = bayes_reference(env.family)
    assert method == "exact"
    assert abs(returns.mean() - value) < 4 * returns.std(ddof=1) / np.sqrt(len(returns))


def test_darkroom_reports_bounds_and_plays_its_lower_bound_path():
    fam = metarl_bench.make_family("darkroom-9x9")
    assert bayes_reference(fam) == (None, "lower-bound:beam-plan")
    agent = metarl_bench.make_agent("bayes", fam)
    assert agent.method == "lower-bound:beam-plan"
    tasks = {"goal": fam.candidates}
    returns = play(metarl_bench.TrialEnv(fam, num_trials=len(fam.candidates)), "bayes", tasks)
    lower, _ = bayes_grid._beam(bayes_grid.GoalProblem.of(fam))
    assert returns.mean() == pytest.approx(lower, abs=1e-9)  # every goal once: the exact expectation
    upper = bayes_grid.assignment_upper_bound(fam)
    assert fam.random_return(tasks).mean() < lower <= upper < fam.oracle_return(tasks).mean()
    features = agent.features(agent.reset(3))
    assert features.shape == (3, fam.num_cells + 1)


def test_lower_bound_agent_off_its_path_walks_to_the_nearest_possible_cell(rng):
    fam = GoalGrid(size=5, horizon=6, episodes=30, start=(2, 2), goal_margin=0, step_reward=0.0)
    assert not bayes_grid.goal_tractable(fam)  # 180 steps: past the exact planner's limit
    pos = rng.integers(0, 25, 500)
    possible = rng.random((500, 25)) < 0.2
    possible[np.arange(500), rng.integers(0, 25, 500)] = True
    xy = fam.coords.astype(int)

    def nearest(cells):
        return np.where(possible, np.abs(xy[None] - xy[cells][:, None]).sum(axis=2), 99).min(axis=1)

    step = bayes_grid._nearest_possible(fam, pos, possible)
    assert np.array_equal(nearest(fam.move(pos, step)), np.maximum(nearest(pos) - 1, 0))
    # Shadowing a random player (off its path at once), it still acts on every trial.
    env = metarl_bench.TrialEnv(fam, num_trials=20, seed=0)
    obs = env.reset()
    agent = metarl_bench.make_agent("bayes", fam)
    memory = agent.reset(20)
    for _ in range(fam.trial_length):
        chosen, memory = agent.act(obs, memory)
        assert chosen.shape == (20,) and ((chosen >= 0) & (chosen < 5)).all()
        obs, _, _, _ = env.step(rng.integers(0, 5, 20))


def test_plans_are_cached_on_disk_and_reloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("METARL_BENCH_CACHE", str(tmp_path))
    problem = bayes_grid.GoalProblem.of(tiny_family(TINY_GOALS[0]))
    plan = bayes_grid.goal_plan.__wrapped__(problem)
    files = list((tmp_path / "bayes_grid").glob("goal-*.npz"))
    assert len(files) == 1
    again = bayes_grid.goal_plan.__wrapped__(problem)
    assert again.stats.get("loaded_from_cache") == 1.0 and "loaded_from_cache" not in plan.stats
    assert again.value == plan.value and again.num_states == plan.num_states
    np.testing.assert_array_equal(again.plan_actions, plan.plan_actions)
    for a, b in zip(again.w_values, plan.w_values, strict=True):
        np.testing.assert_array_equal(a, b)
    files[0].write_bytes(b"not a plan")  # a corrupt file is solved again, not trusted
    assert bayes_grid.goal_plan.__wrapped__(problem).value == plan.value


def test_bandit_agents_are_unchanged():
    fam = metarl_bench.make_family("bernoulli-k2-h100")
    assert type(metarl_bench.make_agent("bayes", fam)) is BayesOptimalAgent
    oracle = metarl_bench.make_agent("oracle", fam)
    memory = oracle.reset(2, tasks={"p": np.array([[0.1, 0.9], [0.8, 0.2]])})
    assert oracle.act({"obs": np.zeros((2, 1))}, memory)[0].tolist() == [1, 0]
