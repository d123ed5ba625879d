"""The ``gittins`` agent: the Gittins index policy of Beta-Bernoulli arms.

The index computation lives with the bandit families' belief model
(``metarl_bench.envs.bandits.gittins``), which also plays it as the lower-bound reference where
exact planning is out of reach; this module only registers it as a contestant.
"""

from metarl_bench.core.registry import register_agent
from metarl_bench.envs.bandits.gittins import GittinsAgent

register_agent("gittins", GittinsAgent)

__all__ = ["GittinsAgent"]
