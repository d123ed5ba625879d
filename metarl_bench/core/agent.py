"""The agent interface: the same verbs for every contestant (as in Stable-Baselines3).

An agent is built for the task family it will play (``make_agent(name, family)``),
may be meta-trained on another family of the same spaces (``fit``), and then plays
batches of trials: ``reset`` gives fresh memory for ``num_trials`` trials and ``act``
maps a batch of RL² observations plus memory to actions plus new memory.  Memory
persists across the inner episodes of a trial and is replaced by ``reset`` between
trials.  Numpy in, numpy out.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from metarl_bench.core.family import Arrays, TaskFamily
from metarl_bench.core.training import TrainOptions

Obs = dict[str, np.ndarray]


class CheckpointError(ValueError):
    """A checkpoint file that is corrupt, of another agent, or made for another distribution.
    The run fails (it is never reported as skipped); the message names the file and what was
    expected."""


class UnsupportedFamilyError(ValueError):
    """An agent declared that it does not play this family (e.g. a bandit algorithm on a
    gridworld).  A sweep reports such a pair as *skipped*; every other error fails the run."""


class Agent(ABC):
    """Base class of every agent.

    Class attributes:
        name: the registry name (set by subclasses).
        privileged: True only for reference agents that are told the task (the oracle);
            the evaluator passes ``tasks`` to ``reset`` for these and for no one else.
        is_reference: True for the Bayes reference (``bayes``): like the privileged oracle
            it is a yardstick, not a contestant, and ``leaderboard --best`` leaves it out.
        learns: True when ``fit`` meta-trains (the CLI then reports training cost).
        transfers_across_spaces: True when an agent meta-trained on one family can play a
            family with another number of actions (VSML's shared per-weight LSTMs can; an
            RL² LSTM policy cannot).  Observation shapes must match for every agent.
    """

    name: str = "agent"
    privileged: bool = False
    is_reference: bool = False
    learns: bool = False
    transfers_across_spaces: bool = False

    def __init__(self, family: TaskFamily, **config: Any):
        self.family = family
        self.config = config

    @property
    def num_actions(self) -> int:
        return self.family.num_actions

    def fit(self, family: TaskFamily, budget: int, seed: int | None = None, **kwargs: Any) -> dict[str, Any]:
        """Meta-train on tasks of ``family`` for ``budget`` environment steps.

        Returns training statistics (at least ``train_steps``).  A no-op for agents that
        do not learn.
        """
        return {"train_steps": 0}

    def prepare(self, train_family: TaskFamily, train_env: str, options: TrainOptions | None = None) -> dict[str, Any]:
        """Get ready for evaluation: load a shipped checkpoint or meta-train.

        Learning agents override this to load the checkpoint made for ``train_env``
        unless ``options`` ask for training.  Returns training statistics
        (``train_steps``, ``train_wall_s``, ``checkpoint``).
        """
        options = options or TrainOptions()
        return self.fit(train_family, options.train_steps or 0, options.train_seed)

    def default_train_env(self, env: str, retrain: bool = False) -> str:
        """The distribution to meta-train on (or load the checkpoint of) when the user names
        none: ``env`` itself, unless an agent ships one that transfers (see VSML)."""
        return env

    @abstractmethod
    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        """Fresh memory for ``num_trials`` new trials.

        ``rng`` drives any randomness of the agent's own; ``tasks`` is given only to
        privileged agents.
        """

    @abstractmethod
    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        """Actions (int64, shape (num_trials,)) for a batch of observations, and new memory.

        Never changes ``memory`` (nor a random generator inside it, see :func:`fresh_rng`):
        the caller may keep, replay or branch it.
        """

    def features(self, memory: Any) -> np.ndarray:
        """The agent's memory as a (num_trials, d) float array, for belief probes."""
        raise NotImplementedError(f"agent {self.name!r} exposes no features")

    def checkpoint_path(self, train_env: str, seed: int = 0) -> Path:
        """Where the shipped checkpoint of this agent trained on ``train_env`` with training
        seed ``seed`` lives (see :func:`checkpoint_name`)."""
        raise NotImplementedError(f"agent {self.name!r} ships no checkpoints")

    # Persistence: non-learning agents are fully described by their config.
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps({"agent": self.name, "config": self.config}, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path, family: TaskFamily) -> Agent:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            agent, config = data["agent"], data["config"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a saved {cls.name!r} agent: {exc}") from None
        if agent != cls.name:
            raise ValueError(f"{path} holds agent {agent!r}, not {cls.name!r}")
        return cls(family, **config)


def checkpoint_name(train_env: str, seed: int, suffix: str) -> str:
    """``<train_env><suffix>`` for training seed 0 (the first shipped checkpoints), else
    ``<train_env>__seed<seed><suffix>``: one file per training run, so the spread across
    training seeds can be measured."""
    return f"{train_env}{suffix}" if seed == 0 else f"{train_env}__seed{seed}{suffix}"


def fresh_rng(rng: np.random.Generator) -> np.random.Generator:
    """A generator in the same state as ``rng``.

    ``act`` draws from the copy and returns it in the new memory, so the memory it was
    given is never changed (it can be replayed or branched) and the stream of draws is the
    same as if it had drawn from ``rng`` itself.
    """
    bits = type(rng.bit_generator)()
    bits.state = rng.bit_generator.state
    return np.random.Generator(bits)


def last_transition(obs: Obs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(previous action, previous reward, has_previous) read from an RL² observation batch.

    ``has_previous`` is False on the first step of a trial (the one-hot is all zeros).
    """
    one_hot = obs["prev_action"]
    has_prev = one_hot.any(axis=1)
    return one_hot.argmax(axis=1), obs["prev_reward"][:, 0].astype(np.float64), has_prev


def require_bandit(agent: str, family: TaskFamily) -> None:
    """Bandit algorithms treat actions as arms with fixed reward distributions (``arm_means``);
    on other families (gridworlds) their updates would be meaningless, so refuse them."""
    if not callable(getattr(family, "arm_means", None)):
        raise UnsupportedFamilyError(
            f"agent {agent!r} plays bandit families (arms with fixed reward distributions, e.g. the "
            f"'bandits' suite), not {family.describe()}"
        )


def inverse_cdf(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One action per row of ``probs`` (n, k) from uniforms ``u`` (n,) by inverse CDF, int64.

    The shared way agents sample from their policy, so that equal probabilities and equal
    uniforms give equal actions whichever agent draws."""
    u = np.asarray(u).reshape(len(probs), 1)
    return np.minimum((probs.cumsum(axis=1) < u).sum(axis=1), probs.shape[1] - 1).astype(np.int64)


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
