"""metarl-bench: meta-RL task distributions, agents and Bayes-optimal references.

``import metarl_bench`` loads the task-family modules (numpy only) so that every
distribution is a gymnasium id at once: ``gymnasium.make("metarl_bench/bernoulli-k2-h100")``.
Agent modules, which may pull in torch or SB3, load on the first agent lookup.
"""

from metarl_bench.agent import Agent
from metarl_bench.family import TaskFamily
from metarl_bench.reference import BayesReference
from metarl_bench.registry import (
    UnknownNameError,
    get_spec,
    list_agents,
    list_families,
    list_suites,
    load_families,
    make,
    make_agent,
    make_family,
    register,
    register_agent,
    resolve_envs,
    unregister,
)
from metarl_bench.trial import TrialEnv

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "BayesReference",
    "TaskFamily",
    "TrialEnv",
    "UnknownNameError",
    "__version__",
    "get_spec",
    "list_agents",
    "list_families",
    "list_suites",
    "make",
    "make_agent",
    "make_family",
    "register",
    "register_agent",
    "resolve_envs",
    "unregister",
]

load_families()
