"""metarl-bench: meta-RL task distributions, agents and Bayes-optimal references.

``import metarl_bench`` loads the task-family modules (numpy only) so that every
distribution is a gymnasium id at once: ``gymnasium.make("metarl_bench/bernoulli-k2-h100")``.
Agent modules, which may pull in torch or SB3, load on the first agent lookup.

The names below are the public API; the subpackages say what they own in their docstrings:
``core`` (the contracts), ``accel`` (faster paths behind them), ``evaluation``, ``records``
(the typed row and its files), ``reporting``, ``probes`` and ``running`` (the command line).
"""

from metarl_bench.core.agent import (
    Agent,
    CheckpointError,
    Obs,
    UnsupportedFamilyError,
    fresh_rng,
    inverse_cdf,
    last_transition,
    require_bandit,
)
from metarl_bench.core.checks import ContractError, check_agent, check_family
from metarl_bench.core.family import Arrays, BayesReference, TaskFamily, check_positive_float, check_positive_int
from metarl_bench.core.registry import (
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
from metarl_bench.core.trial import TrialEnv
from metarl_bench.core.version import __version__
from metarl_bench.evaluation.evaluate import EvalSettings, evaluate

__all__ = [
    "Agent",
    "Arrays",
    "BayesReference",
    "CheckpointError",
    "ContractError",
    "EvalSettings",
    "Obs",
    "TaskFamily",
    "TrialEnv",
    "UnknownNameError",
    "UnsupportedFamilyError",
    "__version__",
    "check_agent",
    "check_family",
    "check_positive_float",
    "check_positive_int",
    "evaluate",
    "fresh_rng",
    "get_spec",
    "inverse_cdf",
    "last_transition",
    "list_agents",
    "list_families",
    "list_suites",
    "make",
    "make_agent",
    "make_family",
    "register",
    "register_agent",
    "require_bandit",
    "resolve_envs",
    "unregister",
]

load_families()
