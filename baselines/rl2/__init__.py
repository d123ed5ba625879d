"""RL²: an LSTM actor-critic meta-trained with sb3-contrib's RecurrentPPO (``agent``), with the
whole-sequence LSTM policy (``policy``) and the lockstep rollout loop (``ppo``) that make it fast.

Importing this package registers ``rl2`` lazily: torch and SB3 load only when it is asked for.
"""

from metarl_bench.core.registry import register_agent

register_agent("rl2", "metarl_bench.baselines.rl2.agent:RL2Agent")
