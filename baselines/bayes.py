"""The ``bayes`` agent: plays the Bayes-optimal reference that the family declares.

Every family owns its reference (``TaskFamily.bayes_reference``, see
``metarl_bench.core.family.BayesReference``): the built-in bandits and gridworlds bring their exact planners
or a named lower-bound policy, and a user's family brings its own.  This agent only asks
that hook, so it plays a user's family exactly as the evaluator scores it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metarl_bench.core.agent import Agent, Obs, UnsupportedFamilyError
from metarl_bench.core.family import Arrays, TaskFamily
from metarl_bench.core.registry import register_agent


@register_agent("bayes")
class BayesOptimalAgent(Agent):
    """The family's Bayes-optimal policy, or its best-known lower-bound policy.

    ``method`` is the reference's: ``"exact"`` or ``"lower-bound:<policy>"``.
    """

    name = "bayes"
    is_reference = True

    def __init__(self, family: TaskFamily, **config: Any):
        super().__init__(family, **config)
        reference = family.bayes_reference()
        if reference is None:
            raise UnsupportedFamilyError(
                f"agent 'bayes' plays the Bayes reference a family declares, and {family.describe()} declares "
                "none (TaskFamily.bayes_reference)"
            )
        self.reference = reference
        self.method = reference.method
        self.policy = reference.policy()

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        return self.policy.reset(num_trials, rng=rng)

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        return self.policy.act(obs, memory)

    def features(self, memory: Any) -> np.ndarray:
        return self.policy.features(memory)
