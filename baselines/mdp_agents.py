"""Tabular-MDP agents as in the RL² paper's evaluation (TabulaRL conventions), batched over trials:
``psrl``, ``ucrl2``, ``beb``, ``mdp-greedy``, ``mdp-epsilon-greedy`` and the ``-tuned`` variants,
the contestants of the paper's Table 2.

Every agent here keeps the trial's sufficient statistics (visits and reward sums per
(state, action), observed transition counts), re-plans once at the start of every
episode for all trials at once (the family's planners,
``metarl_bench.envs.tabular_mdp.planners``), and then plays that episode's plan, breaking
ties between equal Q values uniformly at random.  As in TabulaRL, the last transition of
an episode is not counted (its next state is not observed) and each agent brings its own
prior (TabulaRL's defaults, not the family's):

* :class:`PSRLAgent` (``psrl``): one MDP sampled per episode from Normal posteriors on
  the mean rewards (prior N(mu0=0, 1/tau0=1), noise precision tau=1) and Dirichlet(1)
  posteriors on the transitions (Osband, Russo & Van Roy 2013);
* :class:`GreedyMDPAgent` (``mdp-greedy``, ``mdp-epsilon-greedy``): value iteration on
  the posterior-mean MDP of a near-flat prior (alpha0 = tau0 = 1e-4, mu0 = 0: unvisited
  pairs look like reward 0 and uniform transitions); with probability ``epsilon`` a
  uniformly random action;
* :class:`UCRL2Agent` (``ucrl2``): extended value iteration (Jaksch et al. 2010) with
  confidence widths ``scaling * sqrt(4 log(2 S A (k+1) / delta) / max(1, n))`` on the
  reward and ``scaling * sqrt(4 S log(2 S A (k+1) / delta) / max(1, m))`` (L1) on the
  transition row, ``k`` the episode (from 1), ``n`` visits, ``m`` observed transitions,
  ``delta = 0.05``; estimates from a vanishing prior (alpha0 = 1e-5, tau0 = 1e-4);
* :class:`BEBAgent` (``beb``): value iteration on the posterior mean (prior as PSRL's)
  plus TabulaRL's bonus: ``1 / (n + 2)`` on the reward and
  ``beta H (H - 1 - h) / (1 + S + m)`` at step ``h``, with Kolter & Ng's (2009)
  ``beta = 2 H^2`` times ``scaling``.

``scaling = 1`` is the published constants.  The paper's Table 2 grid-searched
``scaling`` (and epsilon) per n, so the ``-tuned`` agents read their value from the data
file ``baselines/tuned/mdp_constants.csv`` (:func:`tuned_value`), which
``studies/mdp_tuning.py --write`` measures on *training* tasks (the same grids as the
paper: 21 log-spaced scalings in [1e-4, 1], epsilon in {0.1, ..., 1.0}).
Epsilon 0.1, the default of ``mdp-epsilon-greedy``, was best for every n, so epsilon has
no tuned agent of its own.

Greedy and epsilon-greedy get MDP names of their own rather than extending the bandit
``greedy``/``epsilon-greedy``: they are a different algorithm (value iteration on the
posterior-mean MDP of a near-flat prior, re-planned once per episode, as in the paper's
code), and one name should mean one algorithm in the leaderboard.

The MDP family plays the best of these agents as its lower-bound Bayes reference
(``metarl_bench.envs.tabular_mdp.reference``); a family imports no agent, so it looks the
agent up by its registered name in the registry when the policy is built.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metarl_bench.core.agent import Agent, Obs, UnsupportedFamilyError, fresh_rng, last_transition
from metarl_bench.core.family import Arrays, TaskFamily
from metarl_bench.core.registry import register_agent
from metarl_bench.envs.tabular_mdp import planners
from metarl_bench.envs.tabular_mdp.family import TabularMDP
from metarl_bench.envs.tabular_mdp.reference import tuned_table

TIE_TOL = 1e-9  # Q values closer than this are ties, broken uniformly at random (as TabulaRL)
SCALING_GRID = tuple(float(x) for x in np.exp(np.linspace(np.log(1e-4), np.log(1.0), 21)))
EPSILON_GRID = tuple(round(0.1 * i, 1) for i in range(1, 11))


def require_tabular(agent: str, family: TaskFamily) -> None:
    """These agents count (state, action, next state); refuse families that do not expose
    their states (``num_states``, ``start_state`` and ``state_index(obs)``)."""
    if not (hasattr(family, "num_states") and callable(getattr(family, "state_index", None))):
        raise UnsupportedFamilyError(
            f"agent {agent!r} plays tabular MDP families (states read from the observation, e.g. the "
            f"'rl2-mdps' suite), not {family.describe()}"
        )


def tuned_value(agent: str, family: TaskFamily) -> float:
    """The tuned constant of ``agent`` for ``family`` from the data file of ``studies/mdp_tuning.py
    --write`` (``reference.tuned_table``: the best of the grid on 1000 training tasks of each
    rl2-mdps distribution); UnsupportedFamilyError where none was measured, RuntimeError naming
    the file if it is missing or corrupt."""
    defaults = TabularMDP(episodes=family.episodes_per_trial).params  # the parameters the table holds
    table = tuned_table().constants.get(agent, {})
    if getattr(family, "params", None) != defaults or family.episodes_per_trial not in table:
        raise UnsupportedFamilyError(
            f"agent '{agent}-tuned' has tuned constants for the rl2-mdps distributions only "
            f"({sorted(table)} episodes), not for {family.describe()}; run studies/mdp_tuning.py "
            f"or play '{agent}' with an explicit constant"
        )
    return table[family.episodes_per_trial]


def _check_fraction(name: str, value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return x


def _check_positive(name: str, value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}") from None
    if not (np.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return x


class EpisodicTabularAgent(Agent):
    """Counts transitions, re-plans at every episode start, plays the plan (see module doc).

    Memory: ``stats`` (visits, reward sums, transition counts, up to the last episode
    start), ``steps`` (this episode's transitions, a tuple that grows, so no array is
    copied per step), ``q`` (this episode's plan), the current state, the step and the rng.
    Subclasses implement :meth:`plan`; ``epsilon`` (default 0) adds uniform exploration.
    """

    epsilon: float = 0.0

    def __init__(self, family: TaskFamily, **config: Any):
        require_tabular(self.name, family)
        super().__init__(family, **config)
        self.S, self.A, self.H = family.num_states, family.num_actions, family.horizon

    def plan(self, stats: Arrays, rng: np.random.Generator, episode: int) -> np.ndarray:
        """Q values (N, H, S, A) for the coming episode (``episode`` counts from 0)."""
        raise NotImplementedError

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        n, S, A = num_trials, self.S, self.A
        stats = {
            "visits": np.zeros((n, S, A)),
            "reward_sum": np.zeros((n, S, A)),
            "transitions": np.zeros((n, S, A, S)),
        }
        return {"rng": np.random.default_rng(rng), "t": 0, "state": None, "stats": stats, "steps": (), "q": None}

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        t, H = memory["t"], self.H
        state = self.family.state_index(obs["obs"])
        steps = memory["steps"]
        if t > 0:
            action, reward, _ = last_transition(obs)
            reached = state if t % H else None  # after an episode's last step we see the start state
            steps = (*steps, (memory["state"], action, reward, reached))
        rng = fresh_rng(memory["rng"])
        stats, q = memory["stats"], memory["q"]
        if t % H == 0:
            stats, steps = fold(stats, steps), ()
            q = self.plan(stats, rng, t // H)
        actions = self._choose(q[np.arange(len(state)), t % H, state], rng)
        return actions, {"rng": rng, "t": t + 1, "state": state, "stats": stats, "steps": steps, "q": q}

    def _choose(self, q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = len(q)
        best = q >= q.max(axis=1, keepdims=True) - TIE_TOL
        actions = np.where(best, rng.random(q.shape), -1.0).argmax(axis=1)
        if self.epsilon > 0:
            explore = rng.random(n) < self.epsilon
            actions = np.where(explore, rng.integers(0, self.A, n), actions)
        return actions

    def features(self, memory: Any) -> np.ndarray:
        stats = memory["stats"]
        n = len(stats["visits"])
        return np.concatenate([v.reshape(n, -1) for v in stats.values()], axis=1)


def fold(stats: Arrays, steps: tuple) -> Arrays:
    """New statistics with ``steps`` ((state, action, reward, next state or None) per step) added."""
    if not steps:
        return stats
    visits, rsum, trans = stats["visits"].copy(), stats["reward_sum"].copy(), stats["transitions"].copy()
    rows = np.arange(len(visits))
    for s, a, r, nxt in steps:  # one step of every trial at a time: no repeated index within a step
        visits[rows, s, a] += 1.0
        rsum[rows, s, a] += r
        if nxt is not None:
            trans[rows, s, a, nxt] += 1.0
    return {"visits": visits, "reward_sum": rsum, "transitions": trans}


def normal_posterior(stats: Arrays, mu0: float, tau0: float, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and precision of every mean reward (Normal prior, known noise precision)."""
    precision = tau0 + tau * stats["visits"]
    return (mu0 * tau0 + tau * stats["reward_sum"]) / precision, precision


def dirichlet_mean(stats: Arrays, alpha0: float) -> np.ndarray:
    counts = alpha0 + stats["transitions"]
    return counts / counts.sum(axis=3, keepdims=True)


class PSRLAgent(EpisodicTabularAgent):
    """Posterior sampling: one MDP from the posterior per episode, played optimally."""

    name = "psrl"

    def __init__(self, family: TaskFamily, mu0: float = 0.0, tau0: float = 1.0, tau: float = 1.0, alpha0: float = 1.0):
        super().__init__(
            family,
            mu0=float(mu0),
            tau0=_check_positive("tau0", tau0),
            tau=_check_positive("tau", tau),
            alpha0=_check_positive("alpha0", alpha0),
        )

    def plan(self, stats: Arrays, rng: np.random.Generator, episode: int) -> np.ndarray:
        c = self.config
        mean, precision = normal_posterior(stats, c["mu0"], c["tau0"], c["tau"])
        R, P = planners.sample_posterior(mean, precision, c["alpha0"] + stats["transitions"], rng)
        return planners.value_iteration(R, P, self.H)[0]


class GreedyMDPAgent(EpisodicTabularAgent):
    """Optimal play of the posterior-mean MDP (near-flat prior), re-planned every episode;
    a uniformly random action with probability ``epsilon``."""

    name = "mdp-epsilon-greedy"
    ALPHA0 = TAU0 = 1e-4  # TabulaRL's "prior effect -> 0"

    def __init__(self, family: TaskFamily, epsilon: float = 0.1):
        super().__init__(family, epsilon=_check_fraction("epsilon", epsilon))
        self.epsilon = self.config["epsilon"]

    def plan(self, stats: Arrays, rng: np.random.Generator, episode: int) -> np.ndarray:
        mean, _ = normal_posterior(stats, 0.0, self.TAU0, 1.0)
        return planners.value_iteration(mean, dirichlet_mean(stats, self.ALPHA0), self.H)[0]


class PureGreedyMDPAgent(GreedyMDPAgent):
    """``mdp-greedy``: epsilon = 0 (the paper's Greedy)."""

    name = "mdp-greedy"

    def __init__(self, family: TaskFamily, epsilon: float = 0.0):
        if epsilon != 0:
            raise ValueError(f"mdp-greedy never explores (epsilon 0); for epsilon={epsilon!r} play mdp-epsilon-greedy")
        super().__init__(family, epsilon=0.0)


class UCRL2Agent(EpisodicTabularAgent):
    """UCRL2 by extended value iteration on the estimated MDP, re-planned every episode."""

    name = "ucrl2"
    ALPHA0, TAU0 = 1e-5, 1e-4  # TabulaRL's vanishing prior for the estimates

    def __init__(self, family: TaskFamily, delta: float = 0.05, scaling: float = 1.0):
        delta = _check_positive("delta", delta)
        if delta >= 1:
            raise ValueError(f"delta must lie in (0, 1), got {delta!r}")
        super().__init__(family, delta=delta, scaling=_check_positive("scaling", scaling))

    def plan(self, stats: Arrays, rng: np.random.Generator, episode: int) -> np.ndarray:
        S, A, c = self.S, self.A, self.config
        mean, _ = normal_posterior(stats, 0.0, self.TAU0, 1.0)
        log_term = np.log(2.0 * S * A * (episode + 2) / c["delta"])  # TabulaRL's k + 1, k counted from 1
        n_reward = np.maximum(stats["visits"], 1.0)
        n_trans = np.maximum(stats["transitions"].sum(axis=3), 1.0)
        r_slack = c["scaling"] * np.sqrt(4.0 * log_term / n_reward)
        p_slack = c["scaling"] * np.sqrt(4.0 * S * log_term / n_trans)
        P = dirichlet_mean(stats, self.ALPHA0)
        return planners.extended_value_iteration(mean + r_slack, P, p_slack, self.H)[0]


class TunedUCRL2Agent(UCRL2Agent):
    """``ucrl2-tuned``: ``scaling`` from the tuned constants (:func:`tuned_value`)."""

    name = "ucrl2-tuned"

    def __init__(self, family: TaskFamily, delta: float = 0.05, scaling: float | None = None):
        require_tabular(self.name, family)
        super().__init__(family, delta=delta, scaling=tuned_value("ucrl2", family) if scaling is None else scaling)


class BEBAgent(EpisodicTabularAgent):
    """Bayesian exploration bonus on the posterior-mean MDP (TabulaRL's form, see module doc)."""

    name = "beb"
    MU0, TAU0, TAU, ALPHA0 = 0.0, 1.0, 1.0, 1.0

    def __init__(self, family: TaskFamily, scaling: float = 1.0):
        super().__init__(family, scaling=_check_positive("scaling", scaling))

    def plan(self, stats: Arrays, rng: np.random.Generator, episode: int) -> np.ndarray:
        S, H = self.S, self.H
        mean, precision = normal_posterior(stats, self.MU0, self.TAU0, self.TAU)
        beta = 2.0 * H * H * self.config["scaling"]
        value_bonus = beta * H / (1.0 + S * self.ALPHA0 + stats["transitions"].sum(axis=3))
        to_go = (H - 1 - np.arange(H))[None, :, None, None]  # steps left after step h
        reward = (mean + 1.0 / (precision + 1.0))[:, None] + value_bonus[:, None] * to_go
        return planners.value_iteration(reward, dirichlet_mean(stats, self.ALPHA0), H)[0]


class TunedBEBAgent(BEBAgent):
    """``beb-tuned``: ``scaling`` from the tuned constants (:func:`tuned_value`)."""

    name = "beb-tuned"

    def __init__(self, family: TaskFamily, scaling: float | None = None):
        require_tabular(self.name, family)
        super().__init__(family, scaling=tuned_value("beb", family) if scaling is None else scaling)


AGENTS: dict[str, type[EpisodicTabularAgent]] = {
    cls.name: cls
    for cls in (
        PSRLAgent,
        PureGreedyMDPAgent,
        GreedyMDPAgent,
        UCRL2Agent,
        TunedUCRL2Agent,
        BEBAgent,
        TunedBEBAgent,
    )
}

for _name, _cls in AGENTS.items():
    register_agent(_name, _cls)
