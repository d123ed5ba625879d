"""Random tabular MDPs: the second experiment of RL² (Duan et al. 2016, sec. 3.2, Table 2).

Each task is an MDP with ``states`` states and ``actions`` actions, drawn as in the
paper's evaluation code (which uses the TabulaRL library's conventions, Osband et al.):

* mean reward of every (state, action) ``~ N(reward_mean, reward_std^2)`` (N(1, 1));
  each reward adds ``N(0, noise_std^2)`` noise (unit variance);
* transition row of every (state, action) ``~ Dirichlet(alpha, ..., alpha)`` (flat, 1);
* every episode has ``horizon`` steps (10) and starts in state ``start`` (0); a trial is
  ``episodes`` episodes (n) of the same MDP; the paper's n is 10, 25, 50, 75 or 100
  (``tabular-mdp-s10-a5-n{n}``, suite ``rl2-mdps``).

The inner observation is the one-hot state; the RL² extras (previous action, reward,
new-episode flag) come from the trial environment.  The paper reports the total reward
of the n episodes, which is our trial return.

Common random numbers (``metarl_bench.core.noise``): the c-th time a trial takes action a in
state s, its reward noise (``counter_normal`` of arm ``s A + a``, count c) and its next
state are pure functions of (trial key, s, a, c), so two agents that take (s, a) for the
c-th time see the same outcome whatever they did before.  The next state inverts the
row's CDF at a 32-bit uniform (the top 32 of ``counter_bits`` of arm ``S A + s A + a``),
the CDF rounded down to multiples of 2^-32: each transition probability is off by less
than 2.4e-10, and the comparison is one of integers.

Belief model (the family's own prior, for probes and Bayes planning): independent
Dirichlet posteriors on the transition rows and Normal-Normal posteriors (known noise)
on the mean rewards.  The last transition of an episode is not observed (the next
observation is the start state of the next episode), so it updates the reward only; the
belief therefore tracks the state and the step.  Exact Bayes-optimal planning is out of
reach (for 10 states and 5 actions the unknown MDP has 500 parameters), so the
family declares the best measured policy as a lower bound (``mdp_reference``).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from metarl_bench.core.family import Arrays, BayesReference, TaskFamily, check_positive_float, check_positive_int
from metarl_bench.core.noise import COUNTER_STEP, bits_to_uniform, counter_start, draw_keys, mixed_bits_
from metarl_bench.core.registry import register
from metarl_bench.envs.tabular_mdp import planners

PAPER_EPISODES = (10, 25, 50, 75, 100)  # the n of Duan et al. (2016), Table 2
_TO_32 = np.uint64(21)  # noise bits are 53: shift 21 to keep the top 32


class TabularMDP(TaskFamily):
    """Random finite MDPs with Gaussian rewards and Dirichlet transitions (see module doc)."""

    obs_low, obs_high = 0.0, 1.0

    def __init__(
        self,
        states: int = 10,
        actions: int = 5,
        horizon: int = 10,
        episodes: int = 10,
        start: int = 0,
        reward_mean: float = 1.0,
        reward_std: float = 1.0,
        noise_std: float = 1.0,
        alpha: float = 1.0,
    ):
        self.num_states = check_positive_int("states", states)
        if self.num_states > 255:  # the next state is counted in uint8 (see step)
            raise ValueError(f"states must be an integer in [1, 255], got {states!r}")
        self.num_actions = check_positive_int("actions", actions)
        self.horizon = check_positive_int("horizon", horizon)
        self.episodes_per_trial = check_positive_int("episodes", episodes)
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start < states:
            raise ValueError(f"start must be an integer in [0, {states}) (a state), got {start!r}")
        self.start_state = int(start)
        try:
            self.reward_mean = float(reward_mean)
        except (TypeError, ValueError):
            raise ValueError(f"reward_mean must be a finite number, got {reward_mean!r}") from None
        if not np.isfinite(self.reward_mean):
            raise ValueError(f"reward_mean must be a finite number, got {reward_mean!r}")
        self.reward_std = check_positive_float("reward_std", reward_std)
        self.noise_std = check_positive_float("noise_std", noise_std)
        self.alpha = check_positive_float("alpha", alpha)
        self.obs_shape = (self.num_states,)
        self._eye = np.eye(self.num_states, dtype=np.float32)
        # counter of arm S*A + i minus that of arm i (any key and count): the transition stream
        arms = counter_start(np.zeros(1, np.uint64), np.zeros((1, 2 * self.num_states * self.num_actions), np.int64))
        self._transition_offset = (arms[0, -1:] - arms[0, -1 - self.num_states * self.num_actions :][:1])[0]
        # counter, mean reward and S - 1 uint32 CDF entries, padded to 8 words (64 bytes)
        self._record_words = max(8, 2 + self.num_states // 2)
        self._oracle_cache: tuple = (None, None, None)
        self.params = {
            "states": self.num_states,
            "actions": self.num_actions,
            "horizon": self.horizon,
            "episodes": self.episodes_per_trial,
            "start": self.start_state,
            "reward_mean": self.reward_mean,
            "reward_std": self.reward_std,
            "noise_std": self.noise_std,
            "alpha": self.alpha,
        }

    # ------------------------------------------------------------------ dynamics
    def sample_tasks(self, rng: np.random.Generator, num_trials: int) -> Arrays:
        S, A = self.num_states, self.num_actions
        R = rng.normal(self.reward_mean, self.reward_std, size=(num_trials, S, A))
        P = rng.dirichlet(np.full(S, self.alpha), size=(num_trials, S, A))
        return {"R": R, "P": P}

    def init_state(self, tasks: Arrays, rng: np.random.Generator) -> Arrays:
        R, P = tasks["R"], tasks["P"]
        n, S, A = R.shape
        # One 64-byte record (a cache line) per (trial, s, a), so that a step gathers one
        # row where it would gather three scattered values (the gathers bound the step):
        #   word 0: the noise counter of the pair's next visit (noise.counter_start): reward
        #           stream s * A + a; the transition stream is arm S * A + s * A + a, a fixed
        #           offset (self._transition_offset);
        #   word 1: the mean reward (float64 bits);
        #   then, as uint32: floor(2**32 CDF) of the row but its last entry (1).
        table = np.zeros((n * S * A, self._record_words), np.uint64)
        table[:, 0] = counter_start(draw_keys(rng, n), np.zeros((n, S * A), np.int64)).reshape(-1)
        table[:, 1] = np.ascontiguousarray(R, np.float64).reshape(-1).view(np.uint64)
        cdf = np.cumsum(P, axis=3)[..., :-1]  # the last entry is 1
        cdf *= 2.0**32
        np.minimum(cdf, 2.0**32 - 1, out=cdf)  # rounding may bring an entry to 1
        table.view(np.uint32)[:, 4 : 3 + S] = cdf.reshape(n * S * A, S - 1)  # the cast truncates: floor
        return {"s": np.full(n, self.start_state, np.int64), "table": table, "base": np.arange(n) * (S * A)}

    def start_episode(self, tasks: Arrays, state: Arrays) -> Arrays:
        state["s"] = np.full_like(state["s"], self.start_state)
        return state

    def observe(self, tasks: Arrays, state: Arrays) -> np.ndarray:
        return self._eye.take(state["s"], axis=0)

    def step(self, tasks: Arrays, state: Arrays, actions: np.ndarray) -> tuple[Arrays, np.ndarray]:
        table, S = state["table"], self.num_states
        flat = state["base"] + state["s"] * self.num_actions + actions
        rows = table.take(flat, axis=0)  # take: the fast form of this gather in numpy
        z = rows[:, 0].copy()
        table[flat, 0] = z + COUNTER_STEP
        # the transition's uniform: the top 32 of the mixed bits, against the 32-bit CDF
        u32 = (mixed_bits_(z + self._transition_offset) >> _TO_32).astype(np.uint32)
        rewards = rows[:, 1].view(np.float64) + self.noise_std * ndtri(bits_to_uniform(mixed_bits_(z)))
        below = rows.view(np.uint32)[:, 4 : 3 + S] <= u32[:, None]
        state["s"] = np.einsum("ij->i", below.view(np.uint8)).astype(np.int64)  # einsum: the fast count
        return state, rewards

    def state_index(self, obs: np.ndarray) -> np.ndarray:
        """States read back from a batch of inner observations (one-hot)."""
        obs = np.asarray(obs)
        if obs.ndim != 2 or obs.shape[1] != self.num_states:
            raise ValueError(f"expected observations of shape (n, {self.num_states}), got {obs.shape}")
        return obs.argmax(axis=1)

    # ------------------------------------------------------------------ references
    def known_task_plan(self, tasks: Arrays) -> tuple[np.ndarray, np.ndarray]:
        """Optimal Q (N, H, S, A) and V (N, H + 1, S) of each task's true MDP (finite-horizon DP)."""
        return planners.value_iteration(tasks["R"], tasks["P"], self.horizon)

    def oracle_return(self, tasks: Arrays) -> np.ndarray:
        _, V = self.known_task_plan(tasks)
        return self.episodes_per_trial * V[:, 0, self.start_state]

    def oracle_actions(self, tasks: Arrays, obs: np.ndarray, t: int) -> np.ndarray:
        R, P, policy = self._oracle_cache
        if R is not tasks["R"] or P is not tasks["P"]:  # solved once per task set, not per step
            policy = planners.greedy_policy(self.known_task_plan(tasks)[0])
            self._oracle_cache = (tasks["R"], tasks["P"], policy)
        return policy[np.arange(len(policy)), t % self.horizon, self.state_index(obs)]

    def random_return(self, tasks: Arrays) -> np.ndarray:
        n, S, A = tasks["R"].shape
        uniform = np.full((n, S, A), 1.0 / A)
        episode = planners.policy_return(tasks["R"], tasks["P"], uniform, self.start_state, self.horizon)
        return self.episodes_per_trial * episode

    def bayes_reference(self) -> BayesReference | None:
        from metarl_bench.envs.tabular_mdp import reference as mdp_reference  # loads on first use

        return mdp_reference.reference(self)

    # ------------------------------------------------------------------ belief model
    def prior(self, num_trials: int) -> Arrays:
        S, A = self.num_states, self.num_actions
        return {
            "alpha": np.full((num_trials, S, A, S), self.alpha),
            "mean": np.full((num_trials, S, A), self.reward_mean),
            "precision": np.full((num_trials, S, A), self.reward_std**-2),
            "state": np.full(num_trials, self.start_state, np.int64),
            "t": np.zeros(num_trials, np.int64),
        }

    def update_belief(
        self, belief: Arrays, actions: np.ndarray, rewards: np.ndarray, obs: np.ndarray | None = None
    ) -> Arrays:
        if obs is None:
            raise ValueError("TabularMDP.update_belief needs the next observation (the state reached)")
        rows, s, a = np.arange(len(actions)), belief["state"], np.asarray(actions, np.int64)
        nxt = self.state_index(obs)
        t = belief["t"] + 1
        mean, prec, alpha = belief["mean"].copy(), belief["precision"].copy(), belief["alpha"].copy()
        noise_prec = self.noise_std**-2
        p0 = prec[rows, s, a]
        prec[rows, s, a] = p0 + noise_prec
        mean[rows, s, a] = (p0 * mean[rows, s, a] + noise_prec * rewards) / (p0 + noise_prec)
        seen = t % self.horizon != 0  # an episode's last next state is never observed
        alpha[rows[seen], s[seen], a[seen], nxt[seen]] += 1.0
        return {"alpha": alpha, "mean": mean, "precision": prec, "state": nxt, "t": t}

    def belief_features(self, belief: Arrays) -> dict[str, np.ndarray]:
        n = len(belief["state"])
        alpha = belief["alpha"]
        return {
            "posterior_mean": belief["mean"].reshape(n, -1),
            "posterior_std": (belief["precision"] ** -0.5).reshape(n, -1),
            "transition_mean": (alpha / alpha.sum(axis=3, keepdims=True)).reshape(n, -1),
        }

    def posterior_sample(self, belief: Arrays, rng: np.random.Generator) -> Arrays:
        """One MDP per trial from the posterior, as task arrays ``{"R", "P"}`` (for PSRL-style play)."""
        R, P = planners.sample_posterior(belief["mean"], belief["precision"], belief["alpha"], rng)
        return {"R": R, "P": P}


# name, family, suites, parameters
VARIANTS: list[tuple[str, type[TaskFamily], tuple[str, ...], dict]] = [
    (f"tabular-mdp-s10-a5-n{n}", TabularMDP, ("rl2-mdps",), {"states": 10, "actions": 5, "horizon": 10, "episodes": n})
    for n in PAPER_EPISODES
]

for _name, _family, _suites, _params in VARIANTS:
    register(_name, _family, suites=_suites, **_params)
