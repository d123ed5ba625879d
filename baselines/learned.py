"""Registers the learning agents lazily: torch and SB3 load only when one is asked for."""

from metarl_bench.core.registry import register_agent

register_agent("rl2", "metarl_bench.baselines.rl2.agent:RL2Agent")
register_agent("vsml", "metarl_bench.baselines.vsml.agent:VSMLAgent")
register_agent("vsml-clone", "metarl_bench.baselines.vsml.clone:VSMLCloneAgent")
register_agent("vsml-clone-es", "metarl_bench.baselines.vsml.clone:VSMLCloneESAgent")
register_agent("vsml-ids", "metarl_bench.baselines.vsml.agent:VSMLIdsAgent")
register_agent("vsml-ids-clone", "metarl_bench.baselines.vsml.clone:VSMLIdsCloneAgent")
