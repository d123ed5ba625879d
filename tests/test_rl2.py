import shutil
import zipfile

import numpy as np
import pytest
import torch

import metarl_bench
from metarl_bench.baselines.rl2.agent import RL2Agent, RL2Config, TrialVecEnv, flatten_obs, parallel_trials
from metarl_bench.core.seeding import train_rng

torch.set_num_threads(1)
ENV = "bernoulli-k2-h100"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    family = metarl_bench.make_family(ENV, horizon=10)
    agent = RL2Agent(family, n_envs=8, lstm_hidden_size=8, trials_per_minibatch=4)
    stats = agent.fit(family, budget=8 * 10 * 3, seed=0, train_env=ENV, progress=False)
    path = agent.save(tmp_path_factory.mktemp("ckpt") / "agent.zip")
    return agent, stats, path


def probs_along(agent, obs_seq, memory):
    out = []
    for obs in obs_seq:
        p, memory = agent.action_probs(obs, memory)
        out.append(p)
    return np.array(out), memory


def test_fit_save_load_act_round_trip(trained):
    agent, stats, path = trained
    assert stats["train_steps"] >= 240
    loaded = RL2Agent.load(path, agent.family, expect_env=ENV)
    env = metarl_bench.make(ENV, num_trials=5, seed=0, horizon=10)
    obs = env.reset()
    m1, m2 = agent.reset(5, np.random.default_rng(1)), loaded.reset(5, np.random.default_rng(1))
    for _ in range(10):
        a1, m1 = agent.act(obs, m1)
        a2, m2 = loaded.act(obs, m2)
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_allclose(agent.features(m1), loaded.features(m2))
        obs, *_ = env.step(a1)
    assert agent.features(m1).shape == (5, 16)
    # the learning curve: one point per rollout of 8 trials here, kept in the checkpoint
    assert [p["steps"] for p in loaded.curve] == [80, 160, 240]
    assert all(0.0 <= p["trial_return"] <= 10.0 for p in loaded.curve)
    assert loaded.curve == agent.curve


def test_memory_persists_within_a_trial_and_is_cleared_between_trials(trained):
    agent, _, _ = trained
    env = metarl_bench.make(ENV, num_trials=4, seed=3, horizon=10)
    first = env.reset()
    memory = agent.reset(4, np.random.default_rng(0))
    p0, memory = agent.action_probs(first, memory)
    obs = first
    for _ in range(5):
        actions, memory = agent.act(obs, memory)
        obs, *_ = env.step(actions)
    # The same observation gives other probabilities with the trial's memory than without it.
    p_mid, _ = agent.action_probs(obs, memory)
    p_fresh, _ = agent.action_probs(obs, agent.reset(4))
    assert np.abs(p_mid - p_fresh).max() > 1e-4
    # A new trial starts from scratch: identical to the first step of the first trial.
    p_again, _ = agent.action_probs(first, agent.reset(4))
    np.testing.assert_allclose(p_again, p0, rtol=1e-6)


def test_a_checkpoint_for_another_distribution_is_refused_and_changes_nothing(trained, tmp_path):
    agent, _, path = trained
    before = [p.clone() for p in agent.model.policy.parameters()]
    with pytest.raises(ValueError, match="trained on 'bernoulli-k2-h100', not on 'bernoulli-dependent-k2-h100'"):
        agent.load_weights(path, expect_env="bernoulli-dependent-k2-h100")
    five_arms = RL2Agent(metarl_bench.make_family("bernoulli-k5-h100"))
    with pytest.raises(ValueError, match="cannot change its action space"):
        five_arms.load_weights(path)
    assert five_arms.model is None
    for a, b in zip(before, agent.model.policy.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("content", [b"not a zip at all", None])
def test_a_file_that_is_not_a_checkpoint_is_refused(trained, tmp_path, content):
    agent, _, path = trained
    bad = tmp_path / "bad.zip"
    if content is None:  # a zip, but not ours
        with zipfile.ZipFile(bad, "w") as zf:
            zf.writestr("hello.txt", "hi")
    else:
        bad.write_bytes(content)
    model = agent.model
    with pytest.raises(ValueError, match="is not an rl2 checkpoint"):
        agent.load_weights(bad)
    assert agent.model is model


def test_acting_without_a_model_is_an_error():
    with pytest.raises(RuntimeError, match="fit"):
        RL2Agent(metarl_bench.make_family(ENV)).reset(3)


def test_vecenv_adapter_steps_all_envs_and_restarts_trials():
    family = metarl_bench.make_family(ENV, horizon=3)
    venv = TrialVecEnv(family, 6, train_rng(ENV, 0))
    obs = venv.reset()
    assert obs.shape == (6, 1 + 2 + 1 + 1) and obs.dtype == np.float32
    for t in range(3):
        venv.step_async(np.zeros(6, int))
        obs, rewards, dones, infos = venv.step_wait()
        assert dones.all() == (t == 2)
    assert all("terminal_observation" in i and i["episode"]["l"] == 3 for i in infos)
    assert (obs[:, -1] == 1.0).all()  # the returned observation starts a new trial
    env_obs = metarl_bench.make(ENV, num_trials=2, seed=0).reset()
    assert flatten_obs(env_obs).shape == (2, 5)


def test_shipped_checkpoints_load_for_their_distribution(tmp_path):
    from metarl_bench.baselines.rl2.agent import CHECKPOINT_DIR

    shipped = sorted(CHECKPOINT_DIR.glob("*.zip"))
    trained_on = {path: path.stem.split("__seed")[0] for path in shipped}  # <env>.zip or <env>__seed<N>.zip
    assert set(trained_on.values()) >= set(metarl_bench.list_families("bandits"))  # the promise
    for path, env in trained_on.items():
        agent = RL2Agent(metarl_bench.make_family(env))
        copy = tmp_path / path.name
        shutil.copy(path, copy)
        agent.load_weights(copy, expect_env=env)
        assert agent.train_steps > 0


def test_long_trials_train_fewer_in_parallel_and_shipped_sizes_are_kept():
    cfg = RL2Config()
    # every shipped checkpoint (trials of 60, 100 and 200 steps) trained 128 trials per update
    assert [parallel_trials(cfg, n) for n in (60, 100, 200)] == [128, 128, 128]
    assert parallel_trials(cfg, 500) == 51  # 25,500 steps per update, not 64,000
    assert parallel_trials(cfg, 10**6) == 1
    assert parallel_trials(RL2Config(n_envs=8), 500) == 8  # the cap never raises n_envs


def test_a_stopped_training_resumes_from_its_partial_checkpoint(tmp_path, monkeypatch):
    """--resume: the model, its step count and its curve continue where the last save left them."""
    from stable_baselines3.common.callbacks import BaseCallback

    import metarl_bench.baselines.rl2.agent as rl2_agent
    from metarl_bench.core.training import TrainOptions

    class StopAt(BaseCallback):  # a stop (SIGTERM, a lost machine) right after the save at ``steps``
        def __init__(self, steps):
            super().__init__()
            self.steps = steps

        def _on_step(self):
            return True

        def _on_rollout_start(self):
            if self.model.num_timesteps >= self.steps:
                raise KeyboardInterrupt

    monkeypatch.setattr(rl2_agent, "SAVE_EVERY_S", 0.0)  # save at every rollout
    family = metarl_bench.make_family(ENV, horizon=10)
    settings = {"n_envs": 8, "lstm_hidden_size": 8, "trials_per_minibatch": 4}
    first = RL2Agent(family, **settings)
    partial = first.partial_path(ENV, 0, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        first.fit(family, 400, train_env=ENV, progress=False, save_path=partial, callbacks=[StopAt(240)])
    saved, _ = RL2Agent.read(partial)
    assert (saved["train_steps"], saved["target_steps"]) == (240, 400)
    resumed = RL2Agent(family, **settings)
    stats = resumed.prepare(family, ENV, TrainOptions(train_steps=400, resume=True, partial_dir=tmp_path))
    assert stats["train_steps"] == 400 and stats["resumed_from"] == [{"path": str(partial), "train_steps": 240}]
    steps = [p["steps"] for p in resumed.curve]
    assert steps[: len(saved["curve"])] == [p["steps"] for p in saved["curve"]] and steps[-1] == 400
    assert RL2Agent.read(partial)[0]["resumed_from"][0]["train_steps"] == 240
