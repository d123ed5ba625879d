"""The Bayes-optimal reference a task family declares: which policy to play, and its value.

A family owns its reference through one hook, ``TaskFamily.bayes_reference()``, so a
user's family is scored exactly like a built-in one and the core imports no planner.
The evaluator and the ``bayes`` agent ask only through that hook.

``method`` says what the reference is, and is recorded in every leaderboard row:

* ``"exact"``: ``policy`` is Bayes-optimal and ``value`` is its exact expected trial
  return under the family's prior;
* ``"lower-bound:<name>"``: exact planning is out of reach; ``policy`` is the best policy
  known (named), and its measured return on the held-out tasks is the reference, a lower
  bound of the Bayes-optimal return.  ``upper_bound``, when known, is a value that no
  policy can beat (tighter than the oracle).

A family whose hook returns ``None`` has no reference: every agent still runs and gets
return and regret, and its score is left empty with a note saying why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from metarl_bench.core.agent import Agent, Obs, fresh_rng
from metarl_bench.core.family import Arrays

EXACT = "exact"
LOWER_BOUND = "lower-bound"
NO_REFERENCE = "none"

Value = float | Callable[[], float]


@dataclass(frozen=True)
class BayesReference:
    """How a family's Bayes-optimal policy is played and its value obtained.

    ``policy`` builds the policy as an :class:`~metarl_bench.core.agent.Agent` for the family
    (called once per evaluation; planners should cache their tables).  ``value`` and
    ``upper_bound`` may be numbers or zero-argument callables, so that a costly planner
    runs only when its value is asked for.
    """

    method: str
    policy: Callable[[], Agent]
    value: Value | None = None
    upper_bound: Value | None = None

    def __post_init__(self) -> None:
        if not callable(self.policy):
            raise TypeError(f"BayesReference.policy must be a callable that builds an Agent, got {self.policy!r}")
        if self.method == EXACT:
            if self.value is None:
                raise ValueError("an exact BayesReference needs its value (the expected trial return under the prior)")
        elif not (self.method.startswith(LOWER_BOUND + ":") and len(self.method) > len(LOWER_BOUND) + 1):
            raise ValueError(
                f"BayesReference.method must be 'exact' or 'lower-bound:<policy name>', got {self.method!r}"
            )

    @property
    def exact(self) -> bool:
        return self.method == EXACT

    def expected_return(self) -> float | None:
        """The exact expected trial return under the prior, or None for a lower bound."""
        return _resolve(self.value) if self.exact else None

    def upper(self) -> float | None:
        """A value no policy can beat, if the family knows one."""
        return _resolve(self.upper_bound)


def _resolve(value: Value | None) -> float | None:
    if value is None:
        return None
    return float(value() if callable(value) else value)


class RandomAgent(Agent):
    """Uniform random play: the 0 of the score, and the ``random`` agent.

    The evaluator plays it for families whose random return has no closed form.
    """

    name = "random"

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        return {"rng": np.random.default_rng(rng), "n": num_trials}

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        rng = fresh_rng(memory["rng"])
        return rng.integers(0, self.num_actions, size=memory["n"]), {**memory, "rng": rng}
