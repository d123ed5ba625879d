"""RL²'s training shortcuts compute what sb3-contrib's generic code computes: the
whole-sequence LSTM pass, the lockstep rollout loop and the one-gather minibatch padding."""

import numpy as np
import pytest
import torch
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.buffers import RecurrentRolloutBuffer
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

import metarl_bench
from metarl_bench.baselines.rl2 import policy as rl2_policy
from metarl_bench.baselines.rl2.agent import RL2Agent, TrialVecEnv
from metarl_bench.baselines.rl2.policy import WholeSequenceLstmPolicy, starts_only_at_sequence_heads
from metarl_bench.baselines.rl2.ppo import LockstepRecurrentPPO, TrialRolloutBuffer

torch.set_num_threads(1)


def collected_model(env: str, horizon: int, n_envs: int, hidden: int = 8):
    """A RecurrentPPO with one rollout of ``n_envs`` whole trials in its buffer."""
    family = metarl_bench.make_family(env, horizon=horizon)
    agent = RL2Agent(family, n_envs=n_envs, lstm_hidden_size=hidden, trials_per_minibatch=2)
    agent.fit(family, budget=n_envs * horizon * 2, seed=0, train_env=env, progress=False)
    model = agent.model
    model._last_obs = model.env.reset()  # fit() leaves the model without a live rollout
    model._last_episode_starts = np.ones(model.env.num_envs, dtype=bool)
    # As after a previous rollout: the state carried into each trial's first step is the last
    # trial's, not zero, so the episode start at each sequence head must zero it.
    model._last_lstm_states = _random_states(model, seed=0)
    model.collect_rollouts(model.env, _NoCallback(), model.rollout_buffer, n_rollout_steps=model.n_steps)
    return model


class _NoCallback:
    def on_rollout_start(self):
        pass

    def on_rollout_end(self):
        pass

    def update_locals(self, _):
        pass

    def on_step(self):
        return True


def stepwise_twin(model) -> RecurrentActorCriticPolicy:
    """sb3-contrib's own policy class, built as the model built its policy, with the same weights."""
    policy = model.policy
    spaces = policy.observation_space, policy.action_space
    twin = RecurrentActorCriticPolicy(*spaces, model.lr_schedule, **model.policy_kwargs)
    twin.load_state_dict(policy.state_dict())
    return twin


def outputs_and_grads(policy, batch):
    policy.zero_grad()
    actions = batch.actions.long().flatten()
    values, log_prob, entropy = policy.evaluate_actions(
        batch.observations, actions, batch.lstm_states, batch.episode_starts
    )
    mask = batch.mask > 1e-8
    loss = -(log_prob * batch.advantages)[mask].mean() + ((values.flatten() - batch.returns) ** 2)[mask].mean()
    loss = loss - 0.01 * entropy[mask].mean()
    loss.backward()
    grads = {name: p.grad.clone() for name, p in policy.named_parameters() if p.grad is not None}
    return values.detach(), log_prob.detach(), entropy.detach(), grads


def minibatches(model, seed: int):
    np.random.seed(seed)  # noqa: NPY002 (sb3-contrib draws the buffer's rotation from numpy's global state)
    return list(model.rollout_buffer.get(model.batch_size))


@pytest.mark.parametrize("env,horizon,n_envs", [("bernoulli-k2-h100", 10, 6), ("tabular-mdp-s10-a5-n10", 2, 4)])
def test_whole_sequence_pass_matches_the_stepwise_loop(env, horizon, n_envs, monkeypatch):
    model = collected_model(env, horizon, n_envs)
    policy = model.policy
    assert isinstance(policy, WholeSequenceLstmPolicy)
    twin = stepwise_twin(model)
    calls = []
    original = rl2_policy.starts_only_at_sequence_heads
    monkeypatch.setattr(rl2_policy, "starts_only_at_sequence_heads", lambda s: calls.append(original(s)) or calls[-1])
    cut_mid_trial = 0
    for seed in range(6):  # several rotations of the buffer
        for batch in minibatches(model, seed):
            heads = batch.episode_starts.reshape(len(batch.lstm_states.pi[0][0]), -1)[:, 0]
            cut_mid_trial += int((heads == 0).sum())
            ours, theirs = outputs_and_grads(policy, batch), outputs_and_grads(twin, batch)
            for a, b in zip(ours[:3], theirs[:3], strict=True):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
            assert ours[3].keys() == theirs[3].keys() and ours[3]
            for name in ours[3]:
                torch.testing.assert_close(ours[3][name], theirs[3][name], rtol=1e-4, atol=1e-6, msg=name)
    assert cut_mid_trial > 0  # a rotated buffer: some sequence starts mid-trial from its stored state
    assert calls and all(calls)  # every training batch took the whole-sequence path


def test_a_start_inside_a_sequence_keeps_the_stepwise_loop():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 5)
    features = torch.randn(2 * 4, 3)
    state = (torch.randn(1, 2, 5), torch.randn(1, 2, 5))
    starts = torch.tensor([1.0, 0, 1, 0, 0, 0, 0, 0])  # sequence 0 restarts at its third step
    assert not starts_only_at_sequence_heads(starts.reshape(2, -1).swapaxes(0, 1))
    ours, _ = WholeSequenceLstmPolicy._process_sequence(features, state, starts, lstm)
    theirs, _ = RecurrentActorCriticPolicy._process_sequence(features, state, starts, lstm)
    torch.testing.assert_close(ours, theirs)
    # and the whole-sequence path would have been wrong here: the check is not vacuous
    heads_only = torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 0])
    wrong, _ = WholeSequenceLstmPolicy._process_sequence(features, state, heads_only, lstm)
    assert not torch.allclose(wrong, theirs)


def test_a_loaded_checkpoint_trains_with_the_whole_sequence_policy(tmp_path):
    family = metarl_bench.make_family("bernoulli-k2-h100", horizon=10)
    agent = RL2Agent(family, n_envs=4, lstm_hidden_size=8, trials_per_minibatch=2)
    agent.fit(family, budget=80, seed=0, train_env="bernoulli-k2-h100", progress=False)
    path = agent.save(tmp_path / "a.zip")
    loaded = RL2Agent.load(path, family, expect_env="bernoulli-k2-h100")
    assert isinstance(loaded.model.policy, WholeSequenceLstmPolicy)


def test_lockstep_rollouts_fill_the_buffer_as_sb3_contribs_loop_does():
    model = collected_model("bernoulli-k2-h100", 10, 6)
    assert isinstance(model.rollout_buffer, TrialRolloutBuffer)
    snapshot = {}
    for label, collect in (("ours", LockstepRecurrentPPO.collect_rollouts), ("sb3", RecurrentPPO.collect_rollouts)):
        env = TrialVecEnv(model.env._env.family, 6, np.random.default_rng(5))
        model._last_obs, model._last_episode_starts = env.reset(), np.ones(6, dtype=bool)
        model._last_lstm_states = carried = _random_states(model, seed=1)
        torch.manual_seed(7)
        assert collect(model, env, _NoCallback(), model.rollout_buffer, n_rollout_steps=10)
        buffer = model.rollout_buffer
        fields = ("observations", "actions", "rewards", "episode_starts", "values", "log_probs", "advantages")
        snapshot[label] = {f: getattr(buffer, f).copy() for f in fields + ("hidden_states_pi", "cell_states_vf")}
        snapshot[label]["last_state"] = [t.clone() for pair in model._last_lstm_states for t in pair]
        # the first step keeps the carried state, which the episode start zeroes on replay
        np.testing.assert_array_equal(buffer.hidden_states_pi[0], carried.pi[0].numpy())
    for field, ours in snapshot["ours"].items():
        theirs = snapshot["sb3"][field]
        if field == "last_state":
            for a, b in zip(ours, theirs, strict=True):
                torch.testing.assert_close(a, b)
        else:
            np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6, err_msg=field)


def test_one_gather_padding_gives_sb3_contribs_minibatches():
    model = collected_model("tabular-mdp-s10-a5-n10", 2, 4)
    buffer = model.rollout_buffer
    minibatches(model, seed=0)  # the first pass flattens the buffer for sampling
    n = buffer.buffer_size * buffer.n_envs
    env_change = np.zeros((buffer.buffer_size, buffer.n_envs))
    env_change[0] = 1.0
    env_change = buffer.swap_and_flatten(env_change)
    rng = np.random.default_rng(0)
    for _ in range(10):
        split = int(rng.integers(n))
        indices = np.concatenate((np.arange(split, n), np.arange(split)))
        for start in range(0, n, model.batch_size):
            inds = indices[start : start + model.batch_size]
            ours = TrialRolloutBuffer._get_samples(buffer, inds, env_change)
            theirs = RecurrentRolloutBuffer._get_samples(buffer, inds, env_change)
            for field in ours._fields:
                a, b = getattr(ours, field), getattr(theirs, field)
                if field == "lstm_states":
                    for x, y in zip([t for pair in a for t in pair], [t for pair in b for t in pair], strict=True):
                        torch.testing.assert_close(x, y, rtol=0, atol=0)
                else:
                    torch.testing.assert_close(a, b, rtol=0, atol=0, msg=lambda m, f=field: f"{f}: {m}")


def _random_states(model, seed: int):
    gen = torch.Generator().manual_seed(seed)
    states = model._last_lstm_states
    return type(states)(*[tuple(torch.randn(t.shape, generator=gen) for t in pair) for pair in states])
