"""Registers the tabular-MDP agents of the RL² paper's Table 2: ``psrl``, ``ucrl2``, ``beb``,
``mdp-greedy``, ``mdp-epsilon-greedy`` and the ``-tuned`` variants (constants grid-searched on
training tasks, as the paper did).

They live with the MDP family's planners (``metarl_bench.envs.tabular_mdp.policies``), which also
play the best of them as the family's lower-bound Bayes reference; this module only
registers them as contestants.  Greedy and epsilon-greedy get MDP names of their own rather
than extending the bandit ``greedy``/``epsilon-greedy``: they are a different algorithm
(value iteration on the posterior-mean MDP of a near-flat prior, re-planned once per
episode, as in the paper's code), and one name should mean one algorithm in the leaderboard.
"""

from metarl_bench.core.registry import register_agent
from metarl_bench.envs.tabular_mdp.policies import AGENTS

for _name, _cls in AGENTS.items():
    register_agent(_name, _cls)
