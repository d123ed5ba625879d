"""The task-family contract: a parameterised distribution over tasks, stepped in batches.

A family is a handful of array functions in the style of gymnax: ``sample_tasks`` draws
the hidden task parameters, ``init_state``/``start_episode`` build the step state and
``step`` advances a whole batch of trials with numpy.  The belief model (prior and
posterior update) lives beside the dynamics so that planners and probes can use it, and
the family declares its Bayes-optimal reference (``bayes_reference``) so that it is
scored like any other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

Arrays = dict[str, np.ndarray]
ArrayT = TypeVar("ArrayT")  # numpy arrays, or torch tensors on a device (metarl_bench.accel)


EXACT = "exact"
LOWER_BOUND = "lower-bound"
NO_REFERENCE = "none"

Value = float | Callable[[], float]


@dataclass(frozen=True)
class BayesReference:
    """How a family's Bayes-optimal policy is played and its value obtained.

    A family owns its reference through one hook, ``TaskFamily.bayes_reference()``, so a
    user's family is scored exactly like a built-in one and the core imports no planner.
    ``method`` says what the reference is, and is recorded in every leaderboard row:

    * ``"exact"``: ``policy`` is Bayes-optimal and ``value`` is its exact expected trial
      return under the family's prior;
    * ``"lower-bound:<name>"``: exact planning is out of reach; ``policy`` is the best policy
      known (named), and its measured return on the held-out tasks is the reference, a lower
      bound of the Bayes-optimal return.  ``upper_bound``, when known, is a value that no
      policy can beat (tighter than the oracle).

    A family whose hook returns ``None`` has no reference: every agent still runs and gets
    return and regret, and its score is left empty with a note saying why.

    ``policy`` builds the policy as an :class:`~metarl_bench.core.agent.Agent` for the family
    (called once per evaluation; planners should cache their tables).  ``value`` and
    ``upper_bound`` may be numbers or zero-argument callables, so that a costly planner
    runs only when its value is asked for.
    """

    method: str
    policy: Callable[[], Any]  # builds an Agent
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


class Dynamics(ABC, Generic[ArrayT]):
    """The stepping half of a family, over one kind of array: numpy here (``TaskFamily``),
    torch tensors on a device in ``metarl_bench.accel.torch_trial.TorchDynamics``."""

    def start_episode(self, tasks: dict[str, ArrayT], state: dict[str, ArrayT]) -> dict[str, ArrayT]:
        """State at the start of an inner episode (e.g. back to the start cell)."""
        return state

    @abstractmethod
    def observe(self, tasks: dict[str, ArrayT], state: dict[str, ArrayT]) -> ArrayT:
        """Inner observation, shape ``(num_trials, *obs_shape)``, float32."""

    @abstractmethod
    def step(
        self, tasks: dict[str, ArrayT], state: dict[str, ArrayT], actions: ArrayT
    ) -> tuple[dict[str, ArrayT], ArrayT]:
        """Advance every trial by one step; returns the new state and float64 rewards ``(num_trials,)``."""


class TaskFamily(Dynamics[np.ndarray]):
    """A distribution over tasks whose trials are stepped as numpy batches.

    Subclasses set ``num_actions``, ``obs_shape``, ``horizon`` (steps per inner episode)
    and ``episodes_per_trial`` in ``__init__`` after validating their parameters, and keep
    the constructor keyword arguments in ``self.params`` so that a family can be rebuilt
    from its spec.
    """

    num_actions: int
    obs_shape: tuple[int, ...]
    obs_low: float = -np.inf
    obs_high: float = np.inf
    reward_low: float = -np.inf  # bounds of the reward, for the prev_reward space
    reward_high: float = np.inf
    horizon: int
    episodes_per_trial: int = 1
    params: dict[str, Any]

    @property
    def trial_length(self) -> int:
        """Steps in one trial (all inner episodes)."""
        return self.horizon * self.episodes_per_trial

    @abstractmethod
    def sample_tasks(self, rng: np.random.Generator, num_trials: int) -> Arrays:
        """Draw ``num_trials`` tasks from the prior; every array has leading axis ``num_trials``."""

    @abstractmethod
    def init_state(self, tasks: Arrays, rng: np.random.Generator) -> Arrays:
        """Per-trial step state at the start of a trial.

        All randomness the trial will consume must be fixed here (or drawn in amounts
        that do not depend on the actions), so that every agent meets the same noise.
        """

    @abstractmethod
    def oracle_return(self, tasks: Arrays) -> np.ndarray:
        """Expected trial return of the policy that knows the task, shape ``(num_trials,)``."""

    def oracle_actions(self, tasks: Arrays, obs: np.ndarray, t: int) -> np.ndarray:
        """Actions of the policy that knows the task, at step ``t`` of the trial, from the inner
        observations ``obs``: what the ``oracle`` agent plays.  Optional."""
        raise NotImplementedError(f"{self.describe()} does not define the oracle's policy (oracle_actions)")

    def random_return(self, tasks: Arrays) -> np.ndarray | None:
        """Expected trial return of uniform random play, if known in closed form."""
        return None

    def bayes_reference(self) -> BayesReference | None:
        """How this family's Bayes-optimal policy is played and its value obtained
        (:class:`BayesReference`), or None when it has none.

        The evaluator scores every agent against it and the ``bayes`` agent plays it.
        Without one, agents still get return and regret, and the score is left empty.
        """
        return None

    # Belief model.  Families without a tractable posterior may leave these unimplemented.
    def prior(self, num_trials: int) -> Arrays:
        """The belief before any experience, batched."""
        raise NotImplementedError(f"{type(self).__name__} has no belief model")

    def update_belief(
        self, belief: Arrays, actions: np.ndarray, rewards: np.ndarray, obs: np.ndarray | None = None
    ) -> Arrays:
        """Posterior after observing (action, reward, next observation) in every trial."""
        raise NotImplementedError(f"{type(self).__name__} has no belief model")

    def belief_features(self, belief: Arrays) -> dict[str, np.ndarray]:
        """Named, flattened summaries of a belief (e.g. posterior means), for probes."""
        raise NotImplementedError(f"{type(self).__name__} has no belief model")

    def posterior_sample(self, belief: Arrays, rng: np.random.Generator) -> np.ndarray:
        """Task parameters (for bandits: arm means) drawn from the posterior, for Thompson sampling."""
        raise NotImplementedError(f"{type(self).__name__} cannot sample its posterior")

    def describe(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({params})"


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Validate an integer parameter; raise ValueError naming it and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_positive_float(name: str, value: Any) -> float:
    """Validate a strictly positive, finite real parameter."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}") from None
    if not np.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return x
