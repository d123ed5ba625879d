import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import metarl_bench

ALL_IDS = [f"metarl_bench/{name}" for name in metarl_bench.list_families()]


@pytest.mark.parametrize("env_id", ALL_IDS)
@pytest.mark.filterwarnings("ignore:.*Box observation space m..imum value is:UserWarning")  # Gaussian rewards
def test_gymnasium_and_sb3_checkers_pass(env_id):
    env = gym.make(env_id)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)


def test_single_env_is_one_trial_with_rl2_observations():
    env = gym.make("metarl_bench/bernoulli-k2-h100")
    obs, info = env.reset(seed=0)
    assert set(obs) == {"obs", "prev_action", "prev_reward", "new_episode"}
    assert obs["new_episode"][0] == 1.0 and not obs["prev_action"].any()
    assert info["task"]["p"].shape == (2,)
    steps, done, total = 0, False, 0.0
    while not done:
        obs, reward, done, truncated, info = env.step(1)
        steps += 1
        total += reward
        assert obs["prev_action"].tolist() == [0.0, 1.0] and obs["prev_reward"][0] == reward
        assert obs["new_episode"][0] == 0.0 and not truncated
    assert steps == 100 and info["episode_returns"][0] == total


def test_single_env_matches_the_batched_env():
    env = gym.make("metarl_bench/gaussian-k5-h100")
    _, info = env.reset(seed=11)
    batch = metarl_bench.make("gaussian-k5-h100", num_trials=1)
    batch.reset(tasks={k: v[None] for k, v in info["task"].items()})
    batch.state["key"][:] = env.unwrapped.trial_env.state["key"]
    for a in np.random.default_rng(0).integers(0, 5, 100):
        _, r, *_ = env.step(int(a))
        _, rb, _, _ = batch.step(np.array([a]))
        assert r == rb[0]


def test_single_env_rejects_bad_actions():
    env = gym.make("metarl_bench/bernoulli-k2-h100")
    env.reset(seed=0)
    for bad, message in [(2, "out of range"), (np.nan, "NaN"), ([0, 1], "single integer"), (0.5, "integer dtype")]:
        with pytest.raises(ValueError, match=message):
            env.step(bad)


def test_vector_entry_point_steps_all_trials_and_autoresets():
    env = gym.make_vec("metarl_bench/bernoulli-k5-h10", num_envs=7, vectorization_mode="vector_entry_point")
    assert type(env).__name__ == "TrialVectorEnv"
    obs, info = env.reset(seed=0)
    assert obs["prev_action"].shape == (7, 5) and info["task"]["p"].shape == (7, 5)
    first_tasks = info["task"]["p"].copy()
    for t in range(10):
        obs, rewards, terminated, truncated, info = env.step(np.full(7, t % 5))
        assert rewards.shape == (7,)
        assert terminated.all() == (t == 9)
    obs, rewards, terminated, _, info = env.step(np.zeros(7, int))  # NEXT_STEP autoreset
    assert (rewards == 0).all() and not terminated.any() and obs["new_episode"].all()
    assert not np.allclose(info["task"]["p"], first_tasks)


def test_gymnasium_vector_modes_agree():
    native = gym.make_vec("metarl_bench/bernoulli-k2-h100", num_envs=3, vectorization_mode="vector_entry_point")
    sync = gym.make_vec("metarl_bench/bernoulli-k2-h100", num_envs=3, vectorization_mode="sync")
    o1, _ = native.reset(seed=0)
    o2, _ = sync.reset(seed=0)
    assert o1.keys() == o2.keys() and all(o1[k].shape == o2[k].shape for k in o1)


def test_single_env_trains_with_plain_stable_baselines3():
    # SB3 reads info["episode"] as episode statistics; an inner-episode index there crashed its logger.
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([lambda: gym.make("metarl_bench/bernoulli-k2-h100", horizon=8) for _ in range(2)])
    model = PPO("MultiInputPolicy", venv, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=64)
    assert model.num_timesteps == 64
