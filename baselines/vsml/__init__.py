"""VSML: a network of tiny shared LSTMs meta-trained by evolution strategies, and its learners
cloned from another learning algorithm.

``config`` (hyper-parameters), ``network`` (the model and its step), ``rollout`` (a population
played with common random numbers), ``es`` (the ES update), ``agent`` (``vsml``, ``vsml-ids``:
training, acting, checkpoints), ``clone`` (the cloned learners).

Importing this package registers the VSML agents lazily: torch loads only when one is asked for.
"""

from metarl_bench.core.registry import register_agent

register_agent("vsml", "metarl_bench.baselines.vsml.agent:VSMLAgent")
register_agent("vsml-ids", "metarl_bench.baselines.vsml.agent:VSMLIdsAgent")
register_agent("vsml-clone", "metarl_bench.baselines.vsml.clone:VSMLCloneAgent")
register_agent("vsml-clone-es", "metarl_bench.baselines.vsml.clone:VSMLCloneESAgent")
register_agent("vsml-ids-clone", "metarl_bench.baselines.vsml.clone:VSMLIdsCloneAgent")
