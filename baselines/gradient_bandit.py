"""The gradient bandit algorithm (Sutton & Barto 2018, section 2.8): online backprop on a softmax.

Preferences H (one per arm) define the policy pi = softmax(H).  After pulling arm A and
receiving R, every preference takes one stochastic-gradient step on the expected reward:

    H_a <- H_a + step_size * (R - baseline) * (1[a = A] - pi_a)

with ``baseline`` the running mean of the rewards so far, this one included (Sutton &
Barto's errata; ``"mean"``), or 0 (``"none"``).  That is backprop through a linear softmax
policy, which makes it the teacher that ``vsml-clone`` learns to imitate.

The step size and baseline are the only knobs, so "meta-training" is a small grid sweep on
*training* tasks of the distribution (``fit``; never the held-out ones).  The chosen values
ship per distribution (``checkpoints/gradient-bandit/``, the learners' container); without
one, ``prepare`` runs the sweep (seconds).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from metarl_bench.core.agent import (
    Agent,
    CheckpointError,
    Obs,
    fresh_rng,
    inverse_cdf,
    last_transition,
    require_bandit,
)
from metarl_bench.core.family import Arrays, TaskFamily
from metarl_bench.core.learner import FitRun, Learner
from metarl_bench.core.registry import register_agent
from metarl_bench.core.seeding import train_rng
from metarl_bench.core.trial import trial_returns

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints" / "gradient-bandit"
BASELINES = ("mean", "none")
# The sweep: a log grid of step sizes (factor 2) crossed with both baselines.
STEP_SIZES = tuple(float(x) for x in 0.025 * 2.0 ** np.arange(9))  # 0.025 ... 6.4
SWEEP_TASKS = 2000  # training tasks per configuration (each configuration meets the same ones)


def softmax(h: np.ndarray) -> np.ndarray:
    z = np.exp(h - h.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def preference_step(probs: np.ndarray, action: np.ndarray, reward: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """The gradient-bandit change of preferences, per unit step size: (R - b)(1[a = A] - pi_a).

    Shared by the agent and the introspection analysis, which asks how well this direction
    explains another learner's change of logits.
    """
    one_hot = np.zeros_like(probs)
    one_hot[np.arange(len(probs)), action] = 1.0
    return (reward - baseline)[:, None] * (one_hot - probs)


@register_agent("gradient-bandit")
class GradientBanditAgent(Learner):
    """Softmax preferences moved by the stochastic gradient of expected reward (section 2.8).

    It learns (``fit``) its step size and baseline on training tasks; its checkpoint is the
    ``Learner`` container with the tuning as JSON (``tuning.json``)."""

    name = "gradient-bandit"
    checkpoint_dir = CHECKPOINT_DIR
    weights_file = "tuning.json"
    fit_when_missing = True  # the sweep takes seconds
    resumable = False
    transfers_across_spaces = True  # a tuning is two numbers, valid for any number of arms

    def __init__(self, family: TaskFamily, step_size: float = 0.1, baseline: str = "mean"):
        require_bandit(self.name, family)
        if not (np.isfinite(float(step_size)) and float(step_size) > 0):
            raise ValueError(f"step_size must be a positive number, got {step_size!r}")
        if baseline not in BASELINES:
            raise ValueError(f"unknown baseline {baseline!r}; allowed: {list(BASELINES)}")
        super().__init__(family, step_size=float(step_size), baseline=baseline)
        self.sweep: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ acting
    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        k = self.num_actions
        return {
            "rng": np.random.default_rng(rng),
            "prefs": np.zeros((num_trials, k)),
            "probs": np.full((num_trials, k), 1.0 / k),  # the policy that chose the previous action
            "reward_sum": np.zeros(num_trials),
            "count": np.zeros(num_trials),
        }

    def observe(self, obs: Obs, memory: Any) -> dict[str, Any]:
        """Memory after learning from the previous transition (the first step of a trial has none)."""
        action, reward, has_prev = last_transition(obs)
        count = memory["count"] + has_prev
        reward_sum = memory["reward_sum"] + np.where(has_prev, reward, 0.0)
        if self.config["baseline"] == "mean":
            baseline = reward_sum / np.maximum(count, 1.0)
        else:
            baseline = np.zeros_like(reward)
        step = preference_step(memory["probs"], action, reward, baseline)
        prefs = memory["prefs"] + self.config["step_size"] * np.where(has_prev[:, None], step, 0.0)
        return {**memory, "prefs": prefs, "reward_sum": reward_sum, "count": count}

    def logits(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        """The preferences (num_trials, k) after learning from the previous step, and the new memory."""
        memory = self.observe(obs, memory)
        return memory["prefs"], {**memory, "probs": softmax(memory["prefs"])}

    def action_probs(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        """The policy's action probabilities (num_trials, k) and the new memory."""
        _, memory = self.logits(obs, memory)
        return memory["probs"], memory

    def act_on_logits(self, logits: np.ndarray, memory: Any) -> tuple[np.ndarray, Any]:
        """Actions drawn from softmax(``logits``), with the memory ``logits`` returned."""
        probs = softmax(logits)
        rng = fresh_rng(memory["rng"])
        return inverse_cdf(probs, rng.random((len(probs), 1))), {**memory, "rng": rng}

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        return self.act_on_logits(*self.logits(obs, memory))

    def features(self, memory: Any) -> np.ndarray:
        baseline = memory["reward_sum"] / np.maximum(memory["count"], 1.0)
        return np.concatenate([memory["prefs"], baseline[:, None]], axis=1)

    # ------------------------------------------------------------------ tuning
    def train(self, family: TaskFamily, budget: int, run: FitRun, **_: Any) -> dict[str, Any]:
        """Pick the step size and baseline with the best mean return on training tasks.

        Every configuration plays the same ``SWEEP_TASKS`` tasks (or ``budget`` env steps' worth
        per configuration when given) with the same reward noise and action-sampling numbers,
        all drawn from the training stream of ``train_env`` (never the evaluation streams).
        """
        require_bandit(self.name, family)
        name = run.train_env
        n = max(2, int(budget) // family.trial_length) if budget else SWEEP_TASKS
        rng = train_rng(name, run.seed)
        tasks = family.sample_tasks(rng, n)
        env_seed, agent_seed = (int(x) for x in rng.integers(2**63, size=2))
        start = time.perf_counter()
        results = []
        for baseline in BASELINES:
            for step_size in STEP_SIZES:
                candidate = GradientBanditAgent(family, step_size=step_size, baseline=baseline)
                returns = play_returns(candidate, family, tasks, env_seed, agent_seed)
                results.append({"step_size": step_size, "baseline": baseline, "mean_return": float(returns.mean())})
        best = max(results, key=lambda r: r["mean_return"])
        self.config = {"step_size": best["step_size"], "baseline": best["baseline"]}
        self.trained_on, self.sweep = name, results
        self.train_steps = n * family.trial_length * len(results)
        return {
            "train_steps": self.train_steps,
            "train_wall_s": time.perf_counter() - start,
            "checkpoint": "",
        }

    def default_budget(self) -> int:
        return 0  # the sweep's own SWEEP_TASKS per configuration

    def budget_unit(self, family: TaskFamily) -> tuple[int, str]:
        return 2 * family.trial_length, f"tuning sample (2 trials of {family.trial_length} steps per setting)"

    # ------------------------------------------------------------------ checkpoints
    def spaces(self) -> dict[str, Any]:
        return {"bandit": True}  # any number of arms

    def check_config(self, trained_with: dict[str, Any], path: Path) -> None:
        """Nothing to refuse: the step size and baseline are what fitting learns, so the checkpoint's win."""

    def weights_bytes(self) -> bytes:
        return json.dumps({"config": self.config, "sweep": self.sweep}, indent=2).encode()

    def load_state(self, weights: bytes, record: dict[str, Any], device: str = "cpu") -> None:
        try:
            tuning = json.loads(weights)
            config, sweep = dict(tuning["config"]), list(tuning["sweep"])
            GradientBanditAgent(self.family, **config)  # checks the values
        except (ValueError, KeyError, TypeError) as exc:
            what = f"{type(exc).__name__}: {exc}"
            raise CheckpointError(f"the checkpoint holds a gradient-bandit tuning we cannot read ({what})") from None
        self.config, self.sweep = config, sweep


def play_returns(agent: Agent, family: TaskFamily, tasks: Arrays, env_seed: int, agent_seed: int) -> np.ndarray:
    """Trial returns of ``agent`` on ``tasks`` under fixed noise and action seeds (training-side rollouts)."""
    return trial_returns(agent, family, tasks, np.random.default_rng(env_seed), agent_seed)
