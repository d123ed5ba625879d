"""Multi-armed bandit task families: Bernoulli (independent and dependent arms), Gaussian.

A trial is one bandit played for ``horizon`` pulls (one inner episode).  Bandits have
no inner observation: ``obs`` is a constant 0 so that every family shares one Dict
space.  Rewards use counter-based noise (``metarl_bench.core.noise``): the n-th pull of arm
a in a trial gives the same reward whichever agent pulls it, so comparisons between
agents on the same held-out tasks are paired.

Variants are data (``VARIANTS``), registered at the bottom of the module.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import ndtri

from metarl_bench.accel import uniform_beta
from metarl_bench.core.family import Arrays, BayesReference, TaskFamily, check_positive_float, check_positive_int
from metarl_bench.core.noise import (
    COUNTER_STEP,
    bits_to_uniform,
    counter_start,
    draw_keys,
    mixed_bits_,
    uniform_thresholds,
)
from metarl_bench.core.registry import register
from metarl_bench.envs.bandits.kernel import bernoulli_rewards, noise_table

if TYPE_CHECKING:
    import torch

    from metarl_bench.accel.torch_trial import TorchDynamics


@functools.lru_cache(maxsize=16)
def _row_offsets(num_trials: int, num_actions: int) -> np.ndarray:
    """``arange(num_trials) * num_actions``, read-only and cached: the flat index of each row."""
    offsets = np.arange(num_trials, dtype=np.int64) * num_actions
    offsets.flags.writeable = False
    return offsets


class _BanditBase(TaskFamily):
    """Shared step machinery: one noise key per trial and per-arm pull counters.

    The step state starts as ``{"pulls", "key"}``; the first step turns the pull counts
    into noise counters (``"counter"``, see ``_next_counters``), so edit the keys of a fresh
    state, not of one that has stepped.
    """

    obs_shape = (1,)
    obs_low, obs_high = 0.0, 1.0

    def init_state(self, tasks: Arrays, rng: np.random.Generator) -> Arrays:
        n = len(next(iter(tasks.values())))
        return {"pulls": np.zeros((n, self.num_actions), np.int64), "key": draw_keys(rng, n)}

    def observe(self, tasks: Arrays, state: Arrays) -> np.ndarray:
        return np.zeros((len(state["key"]), 1), np.float32)

    def _next_counters(self, state: Arrays, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The flat (trial, arm) index of every pull and its noise counter; advances the counters.

        On a trial's first step the pull counts become counters (``noise.counter_start``),
        which replace ``state["pulls"]``: one gather, one add and one scatter per step fetch
        the counter, where counts would need a multiply and two adds more.  A flat index
        (``take``, one assignment) instead of 2-D fancy indexing, which was the costliest
        part of the step.
        """
        counter = state.get("counter")
        if counter is None:
            counter = state["counter"] = counter_start(state["key"], state.pop("pulls"))
        flat = counter.reshape(-1)
        idx = _row_offsets(len(actions), self.num_actions) + actions
        z = flat.take(idx)
        flat[idx] = z + COUNTER_STEP  # (assignment: faster than flat.put)
        return idx, z

    def torch_twin(self, device: str | torch.device) -> TorchDynamics | None:
        """The device twin of this family's step (``metarl_bench.accel.torch_trial``), if it has one."""
        from metarl_bench.envs.bandits.torch_twin import twin_of  # torch loads only for the device path

        return twin_of(self, device)

    def arm_means(self, tasks: Arrays) -> np.ndarray:
        """Expected reward of every arm, shape (num_trials, num_actions)."""
        return tasks["p"]

    def oracle_return(self, tasks: Arrays) -> np.ndarray:
        return self.horizon * self.arm_means(tasks).max(axis=1)

    def oracle_actions(self, tasks: Arrays, obs: np.ndarray, t: int) -> np.ndarray:
        return self.arm_means(tasks).argmax(axis=1)

    def random_return(self, tasks: Arrays) -> np.ndarray:
        return self.horizon * self.arm_means(tasks).mean(axis=1)

    def bayes_reference(self) -> BayesReference | None:
        from metarl_bench.envs.bandits import bayes as bandit_bayes  # the planners load on first use

        return bandit_bayes.reference(self)


class BernoulliBandit(_BanditBase):
    """k arms with independent success probabilities p_i ~ Beta(alpha, beta).

    ``probs`` fixes the probabilities of every task instead (a one-task distribution,
    useful for tests and for replaying a published instance).
    """

    reward_low, reward_high = 0.0, 1.0

    def __init__(
        self,
        k: int = 2,
        horizon: int = 100,
        alpha: float = 1.0,
        beta: float = 1.0,
        probs: Sequence[float] | None = None,
    ):
        self.num_actions = check_positive_int("k", k)
        self.horizon = check_positive_int("horizon", horizon)
        self.alpha = check_positive_float("alpha", alpha)
        self.beta = check_positive_float("beta", beta)
        self.probs = None
        if probs is not None:
            p = np.asarray(probs, dtype=float)
            if p.shape != (self.num_actions,):
                raise ValueError(f"probs must hold k={self.num_actions} probabilities, got shape {p.shape}")
            if not np.all((p >= 0) & (p <= 1)):
                raise ValueError(f"probs must lie in [0, 1], got {p.tolist()}")
            self.probs = p
        self.params = {"k": self.num_actions, "horizon": self.horizon, "alpha": self.alpha, "beta": self.beta}
        if self.probs is not None:
            self.params["probs"] = self.probs.tolist()

    def sample_tasks(self, rng: np.random.Generator, num_trials: int) -> Arrays:
        if self.probs is not None:
            return {"p": np.tile(self.probs, (num_trials, 1))}
        return {"p": uniform_beta.beta(rng, self.alpha, self.beta, (num_trials, self.num_actions))}

    # The fused step (envs/bandits/kernel.py) gives the same bits as step_numpy, the
    # reference; False here (or on an instance) selects the numpy step.
    fused_step = True

    def step(self, tasks: Arrays, state: Arrays, actions: np.ndarray) -> tuple[Arrays, np.ndarray]:
        if not self.fused_step:
            return self.step_numpy(tasks, state, actions)
        noise = state.get("noise")
        if noise is None:
            noise = state["noise"] = self.noise_table(tasks, state)
        rewards = np.empty(len(actions))
        bernoulli_rewards()(noise.reshape(-1), actions, self.num_actions, rewards)
        return state, rewards

    def step_numpy(self, tasks: Arrays, state: Arrays, actions: np.ndarray) -> tuple[Arrays, np.ndarray]:
        """The reference step in numpy: one array pass per operation."""
        noise = state.pop("noise", None)
        if noise is not None:  # a state the fused step has advanced
            state["counter"], state["threshold"] = noise[..., 0].copy(), noise[..., 1].copy()
        idx, counters = self._next_counters(state, actions)
        bits = mixed_bits_(counters)
        return state, (bits < self._thresholds(tasks, state).reshape(-1).take(idx)).astype(np.float64)

    def _thresholds(self, tasks: Arrays, state: Arrays) -> np.ndarray:
        # u < p as the same test on integers (noise.uniform_thresholds), worked out on the
        # trial's first step and kept in the state: the state belongs to these tasks.
        threshold = state.get("threshold")
        if threshold is None:
            threshold = state["threshold"] = uniform_thresholds(tasks["p"])
        return threshold

    def noise_table(self, tasks: Arrays, state: Arrays) -> np.ndarray:
        """The fused step's state: (trials, arms, 2) uint64, each arm's next noise counter
        beside its threshold (one cache line holds both; see envs/bandits/kernel.py).

        Made from a fresh state or from one the numpy step has advanced, whose
        ``counter`` and ``threshold`` it replaces.
        """
        if "pulls" in state and "threshold" not in state:  # a fresh state: one compiled pass
            table = np.empty((*state["pulls"].shape, 2), np.uint64)
            noise_table()(state["key"], state.pop("pulls"), np.ascontiguousarray(tasks["p"], np.float64), table)
            return table
        counter = state.pop("counter", None)
        if counter is None:
            counter = counter_start(state["key"], state.pop("pulls"))
        threshold = state.pop("threshold", None)
        if threshold is None:
            threshold = uniform_thresholds(tasks["p"])
        return np.stack([counter, threshold], axis=-1)

    # Belief model: independent Beta posteriors, one per arm.
    def prior(self, num_trials: int) -> Arrays:
        shape = (num_trials, self.num_actions)
        return {"alpha": np.full(shape, self.alpha), "beta": np.full(shape, self.beta)}

    def update_belief(self, belief: Arrays, actions: np.ndarray, rewards: np.ndarray, obs=None) -> Arrays:
        rows = np.arange(len(actions))
        alpha, beta = belief["alpha"].copy(), belief["beta"].copy()
        alpha[rows, actions] += rewards
        beta[rows, actions] += 1.0 - rewards
        return {"alpha": alpha, "beta": beta}

    def belief_features(self, belief: Arrays) -> dict[str, np.ndarray]:
        a, b = belief["alpha"], belief["beta"]
        return {"posterior_mean": a / (a + b), "alpha": a, "beta": b}

    def posterior_sample(self, belief: Arrays, rng: np.random.Generator) -> np.ndarray:
        """Arm means drawn from the posterior, shape (num_trials, k) (for Thompson sampling)."""
        return rng.beta(belief["alpha"], belief["beta"])


class DependentBernoulliBandit(BernoulliBandit):
    """Two arms with probabilities (p, 1 - p), p ~ Beta(alpha, beta) (Wang et al. 2016).

    Pulling either arm is evidence about the single parameter p, so the posterior is
    one Beta distribution: a success on arm 0 or a failure on arm 1 counts for p.
    """

    def __init__(self, horizon: int = 100, alpha: float = 1.0, beta: float = 1.0):
        super().__init__(k=2, horizon=horizon, alpha=alpha, beta=beta)
        self.params = {"horizon": self.horizon, "alpha": self.alpha, "beta": self.beta}

    def sample_tasks(self, rng: np.random.Generator, num_trials: int) -> Arrays:
        p = uniform_beta.beta(rng, self.alpha, self.beta, num_trials)
        return {"p": np.stack([p, 1.0 - p], axis=1)}

    def prior(self, num_trials: int) -> Arrays:
        return {"alpha": np.full(num_trials, self.alpha), "beta": np.full(num_trials, self.beta)}

    def update_belief(self, belief: Arrays, actions: np.ndarray, rewards: np.ndarray, obs=None) -> Arrays:
        evidence_for_p = np.where(actions == 0, rewards, 1.0 - rewards)
        return {"alpha": belief["alpha"] + evidence_for_p, "beta": belief["beta"] + 1.0 - evidence_for_p}

    def belief_features(self, belief: Arrays) -> dict[str, np.ndarray]:
        a, b = belief["alpha"], belief["beta"]
        mean_p = a / (a + b)
        return {"posterior_mean": np.stack([mean_p, 1.0 - mean_p], axis=1), "alpha": a, "beta": b}

    def posterior_sample(self, belief: Arrays, rng: np.random.Generator) -> np.ndarray:
        p = rng.beta(belief["alpha"], belief["beta"])
        return np.stack([p, 1.0 - p], axis=1)


class GaussianBandit(_BanditBase):
    """k arms with means mu_i ~ N(prior_mean, prior_std^2) and rewards N(mu_a, noise_std^2)."""

    def __init__(
        self,
        k: int = 5,
        horizon: int = 100,
        prior_mean: float = 0.0,
        prior_std: float = 1.0,
        noise_std: float = 1.0,
    ):
        self.num_actions = check_positive_int("k", k)
        self.horizon = check_positive_int("horizon", horizon)
        self.prior_mean = float(prior_mean)
        if not np.isfinite(self.prior_mean):
            raise ValueError(f"prior_mean must be finite, got {prior_mean!r}")
        self.prior_std = check_positive_float("prior_std", prior_std)
        self.noise_std = check_positive_float("noise_std", noise_std)
        self.params = {
            "k": self.num_actions,
            "horizon": self.horizon,
            "prior_mean": self.prior_mean,
            "prior_std": self.prior_std,
            "noise_std": self.noise_std,
        }

    def sample_tasks(self, rng: np.random.Generator, num_trials: int) -> Arrays:
        return {"mu": rng.normal(self.prior_mean, self.prior_std, size=(num_trials, self.num_actions))}

    def arm_means(self, tasks: Arrays) -> np.ndarray:
        return tasks["mu"]

    def step(self, tasks: Arrays, state: Arrays, actions: np.ndarray) -> tuple[Arrays, np.ndarray]:
        idx, counters = self._next_counters(state, actions)
        z = ndtri(bits_to_uniform(mixed_bits_(counters)))
        return state, tasks["mu"].reshape(-1).take(idx) + self.noise_std * z

    # Belief model: independent conjugate normal posteriors (known noise variance).
    def prior(self, num_trials: int) -> Arrays:
        shape = (num_trials, self.num_actions)
        return {"mean": np.full(shape, self.prior_mean), "precision": np.full(shape, self.prior_std**-2)}

    def update_belief(self, belief: Arrays, actions: np.ndarray, rewards: np.ndarray, obs=None) -> Arrays:
        rows = np.arange(len(actions))
        mean, prec = belief["mean"].copy(), belief["precision"].copy()
        noise_prec = self.noise_std**-2
        p0 = prec[rows, actions]
        prec[rows, actions] = p0 + noise_prec
        mean[rows, actions] = (p0 * mean[rows, actions] + noise_prec * rewards) / (p0 + noise_prec)
        return {"mean": mean, "precision": prec}

    def belief_features(self, belief: Arrays) -> dict[str, np.ndarray]:
        return {"posterior_mean": belief["mean"], "posterior_std": belief["precision"] ** -0.5}

    def posterior_sample(self, belief: Arrays, rng: np.random.Generator) -> np.ndarray:
        return rng.normal(belief["mean"], belief["precision"] ** -0.5)


# name, family, suites, parameters
VARIANTS: list[tuple[str, type[TaskFamily], tuple[str, ...], dict]] = [
    ("bernoulli-k2-h100", BernoulliBandit, ("bandits",), {"k": 2, "horizon": 100}),
    ("bernoulli-dependent-k2-h100", DependentBernoulliBandit, ("bandits",), {"horizon": 100}),
    ("bernoulli-k5-h100", BernoulliBandit, ("bandits", "rl2-bandits"), {"k": 5, "horizon": 100}),
    ("bernoulli-k10-h100", BernoulliBandit, ("bandits", "rl2-bandits"), {"k": 10, "horizon": 100}),
    ("gaussian-k5-h100", GaussianBandit, ("bandits",), {"k": 5, "horizon": 100}),
]
# The grid of Duan et al. (2016), Table 1: k in {5, 10, 50}, horizon in {10, 100, 500}.
VARIANTS += [
    (f"bernoulli-k{k}-h{h}", BernoulliBandit, ("rl2-bandits",), {"k": k, "horizon": h})
    for k in (5, 10, 50)
    for h in (10, 100, 500)
    if (k, h) not in ((5, 100), (10, 100))
]

for _name, _family, _suites, _params in VARIANTS:
    register(_name, _family, suites=_suites, **_params)
