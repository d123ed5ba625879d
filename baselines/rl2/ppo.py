"""sb3-contrib's ``RecurrentPPO`` for trials stepped in lockstep: the same algorithm, less overhead.

RL² trains on a :class:`~metarl_bench.baselines.rl2.agent.TrialVecEnv`: every env starts a trial
at the first step of each rollout and ends it at the last, because the rollout length is
the trial length.  Two parts of sb3-contrib's generic code pay for cases that cannot
happen there:

- ``collect_rollouts`` builds a distribution object (with argument validation), handles
  time-limit bootstrapping env by env and updates the episode buffer at every step.  In
  lockstep a step is: one LSTM step, a softmax sample, one numpy env step; episodes end
  only at the last step, with nothing to bootstrap.
- the minibatch sampler pads sequences one ``torch.tensor`` at a time; here it gathers
  every sequence of a minibatch with one index array (the same padded tensors).

Any other env keeps sb3-contrib's own ``collect_rollouts``.  The policy update
(``train``) is sb3-contrib's, unchanged.
"""

from __future__ import annotations

from copy import deepcopy

import numpy as np
import torch
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.buffers import RecurrentRolloutBuffer, create_sequencers
from sb3_contrib.common.recurrent.type_aliases import RecurrentRolloutBufferSamples, RNNStates
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv


def padded_index(seq_starts: np.ndarray, total: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (n_seq, max length) of sequences starting at ``seq_starts`` in a batch of
    ``total`` rows, and the mask of real (not padding) entries."""
    lengths = np.diff(np.append(seq_starts, total))
    offsets = np.arange(lengths.max())
    valid = offsets[None, :] < lengths[:, None]
    return np.where(valid, seq_starts[:, None] + offsets[None, :], 0), valid


class TrialRolloutBuffer(RecurrentRolloutBuffer):
    """``RecurrentRolloutBuffer`` whose minibatches are padded with one gather per field."""

    def _get_samples(self, batch_inds: np.ndarray, env_change: np.ndarray, env=None) -> RecurrentRolloutBufferSamples:
        seq_starts, _, _ = create_sequencers(self.episode_starts[batch_inds], env_change[batch_inds], self.device)
        index, valid = padded_index(seq_starts, len(batch_inds))
        rows = batch_inds[index]

        def padded(array: np.ndarray) -> torch.Tensor:  # (n_seq * max length, *field shape), zero padding
            out = array[rows] * valid.reshape(valid.shape + (1,) * (array.ndim - 1))
            return self.to_torch(out.reshape(-1, *array.shape[1:]))

        def at_starts(array: np.ndarray) -> torch.Tensor:  # (n_layers, n_seq, hidden)
            return self.to_torch(array[batch_inds[seq_starts]].swapaxes(0, 1)).contiguous()

        scalars = ("values", "log_probs", "advantages", "returns")
        flat = {name: padded(getattr(self, name)).flatten() for name in scalars}
        return RecurrentRolloutBufferSamples(
            observations=padded(self.observations),
            actions=padded(self.actions),
            old_values=flat["values"],
            old_log_prob=flat["log_probs"],
            advantages=flat["advantages"],
            returns=flat["returns"],
            lstm_states=RNNStates(
                (at_starts(self.hidden_states_pi), at_starts(self.cell_states_pi)),
                (at_starts(self.hidden_states_vf), at_starts(self.cell_states_vf)),
            ),
            episode_starts=padded(self.episode_starts).flatten(),
            mask=self.to_torch(valid.reshape(-1).astype(np.float32)),
        )


class LockstepRecurrentPPO(RecurrentPPO):
    """``RecurrentPPO`` with a rollout loop for envs whose trials all start and end together."""

    def _setup_model(self) -> None:
        super()._setup_model()
        old = self.rollout_buffer
        if type(old) is RecurrentRolloutBuffer:
            self.rollout_buffer = TrialRolloutBuffer(
                self.n_steps,
                self.observation_space,
                self.action_space,
                old.hidden_state_shape,
                self.device,
                gamma=self.gamma,
                gae_lambda=self.gae_lambda,
                n_envs=self.n_envs,
            )

    def collect_rollouts(
        self, env: VecEnv, callback: BaseCallback, rollout_buffer: RecurrentRolloutBuffer, n_rollout_steps: int
    ) -> bool:
        trial_length = getattr(env, "trial_length", None)
        if trial_length != n_rollout_steps or not np.all(self._last_episode_starts) or self.use_sde:
            return super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)
        policy = self.policy
        policy.set_training_mode(False)
        rollout_buffer.reset()
        callback.on_rollout_start()
        n_envs = env.num_envs
        state = deepcopy(self._last_lstm_states)
        starts = np.ones(n_envs, dtype=np.float32)
        # The trial's first step zeroes the carried state, as an episode start does in sb3-contrib.
        lstm_state = RNNStates(
            tuple(torch.zeros_like(t) for t in state.pi), tuple(torch.zeros_like(t) for t in state.vf)
        )
        dones = np.zeros(n_envs, dtype=bool)
        for step in range(n_rollout_steps):
            with torch.no_grad():
                obs = torch.as_tensor(self._last_obs, device=self.device)
                logits, values, next_state = self._step_policy(obs, lstm_state)
                actions = torch.multinomial(torch.softmax(logits, dim=1), 1)
                log_probs = torch.log_softmax(logits, dim=1).gather(1, actions).squeeze(1)
            actions_np = actions.cpu().numpy()
            new_obs, rewards, dones, infos = env.step(actions_np.reshape(n_envs))
            self.num_timesteps += n_envs
            callback.update_locals(locals())
            if not callback.on_step():
                return False
            if dones.any():
                if step != n_rollout_steps - 1 or not dones.all():
                    raise RuntimeError("a lockstep rollout saw a trial end before the rollout's last step")
                self._update_info_buffer(infos, dones)
            stored = self._stored(lstm_state, step)
            rollout_buffer.add(self._last_obs, actions_np, rewards, starts, values, log_probs, lstm_states=stored)
            starts = np.zeros(n_envs, dtype=np.float32)
            self._last_obs, lstm_state = new_obs, next_state
        self._last_episode_starts = dones
        self._last_lstm_states = lstm_state
        # Every trial ended at the last step: nothing to bootstrap from.
        rollout_buffer.compute_returns_and_advantage(last_values=torch.zeros(n_envs, 1), dones=dones)
        callback.on_rollout_end()
        return True

    def _stored(self, lstm_state: RNNStates, step: int) -> RNNStates:
        """The state the buffer keeps for a step: at a trial's first step, the carried state
        (which the episode start zeroes on replay), as sb3-contrib stores it."""
        return self._last_lstm_states if step == 0 else lstm_state

    def _step_policy(self, obs: torch.Tensor, state: RNNStates) -> tuple[torch.Tensor, torch.Tensor, RNNStates]:
        """One LSTM step of the actor (and critic): action logits, values, the new state."""
        policy = self.policy
        features = policy.extract_features(obs, policy.pi_features_extractor)
        out, pi_state = policy.lstm_actor(features.unsqueeze(0), state.pi)
        latent_pi = out.squeeze(0)
        if policy.lstm_critic is not None:
            out_vf, vf_state = policy.lstm_critic(features.unsqueeze(0), state.vf)
            latent_vf = out_vf.squeeze(0)
        elif policy.shared_lstm:
            latent_vf, vf_state = latent_pi, pi_state
        else:
            latent_vf, vf_state = policy.critic(features), pi_state
        logits = policy.action_net(policy.mlp_extractor.forward_actor(latent_pi))
        values = policy.value_net(policy.mlp_extractor.forward_critic(latent_vf))
        return logits, values, RNNStates(pi_state, vf_state)
