"""RL²: an LSTM actor-critic meta-trained with sb3-contrib's RecurrentPPO (``agent``), with the
whole-sequence LSTM policy (``policy``) and the lockstep rollout loop (``ppo``) that make it fast."""
