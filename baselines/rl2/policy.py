"""sb3-contrib's LSTM actor-critic with whole-sequence passes where they are exact.

``RecurrentActorCriticPolicy._process_sequence`` steps the LSTM one time step at a time
whenever any episode start lies in the minibatch, so that it can zero the state at each
start.  In RL² every sequence of a minibatch is one trial (or, after sb3-contrib's random
rotation of the buffer, the one trial cut there), so a start can only be a sequence's
*first* step, and padding comes after a sequence's end.  Zeroing the initial state of
the sequences that start an episode and making one LSTM call over the whole sequence then
computes the same outputs and gradients with one kernel call instead of one per step.
A batch with a start anywhere else keeps sb3-contrib's own loop.
"""

from __future__ import annotations

import torch
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from torch import nn


def starts_only_at_sequence_heads(episode_starts: torch.Tensor) -> bool:
    """True when ``episode_starts`` (max length, n_seq) has no start after the first step."""
    return not bool(episode_starts[1:].any())


class WholeSequenceLstmPolicy(RecurrentActorCriticPolicy):
    """``MlpLstmPolicy`` whose LSTM runs once per minibatch when starts are sequence heads."""

    @staticmethod
    def _process_sequence(
        features: torch.Tensor,
        lstm_states: tuple[torch.Tensor, torch.Tensor],
        episode_starts: torch.Tensor,
        lstm: nn.LSTM,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        n_seq = lstm_states[0].shape[1]
        starts = episode_starts.reshape((n_seq, -1)).swapaxes(0, 1)
        if not starts_only_at_sequence_heads(starts):
            return RecurrentActorCriticPolicy._process_sequence(features, lstm_states, episode_starts, lstm)
        sequence = features.reshape((n_seq, -1, lstm.input_size)).swapaxes(0, 1)
        keep = (1.0 - starts[0]).view(1, n_seq, 1)  # the same product sb3-contrib applies at a start
        output, lstm_states = lstm(sequence, (keep * lstm_states[0], keep * lstm_states[1]))
        return torch.flatten(output.transpose(0, 1), start_dim=0, end_dim=1), lstm_states
