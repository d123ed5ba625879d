"""RL² (Duan et al. 2016; Wang et al. 2016): an LSTM policy trained with PPO across tasks.

One story, top to bottom: the configuration, the SB3 ``VecEnv`` adapter over the batched
trial environment, training with sb3-contrib's ``RecurrentPPO``, acting, checkpoints.

One gymnasium episode is one whole trial, so the LSTM is reset only between trials and
carries what it has learnt about the task across all pulls (and inner episodes).  The
adapter steps all ``n_envs`` trials with one numpy call; trials are synchronised and
``n_steps`` equals the trial length, so every rollout holds exactly one whole trial per
env.  RecurrentPPO's minibatches are made of whole env sequences when ``batch_size`` is
a multiple of ``n_steps``, except that sb3-contrib rotates the buffer by a random offset
before cutting it: the one trial cut there restarts from its stored LSTM state, so the
forward pass stays exact and only backpropagation through time is truncated at the cut.

SB3 seeds numpy's and torch's global generators from ``seed`` (its own convention); the
training tasks come from metarl-bench's train stream, and acting samples actions with
the ``numpy.random.Generator`` the evaluator gives to ``reset``.
"""

from __future__ import annotations

import io
import math
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecEnv
from tqdm.auto import tqdm

from metarl_bench.baselines.rl2.policy import WholeSequenceLstmPolicy
from metarl_bench.baselines.rl2.ppo import LockstepRecurrentPPO
from metarl_bench.core.agent import CheckpointError, Obs, UnsupportedFamilyError, fresh_rng, inverse_cdf
from metarl_bench.core.family import Arrays, TaskFamily
from metarl_bench.core.learner import RECORD_FILE, FitRun, Learner
from metarl_bench.core.seeding import train_rng
from metarl_bench.core.trial import TrialEnv, observation_space
from metarl_bench.core.trial import flat_observation as flatten_obs  # a flat vector is faster than a Dict policy

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints" / "rl2"


# Ranges of the numeric settings (high None: unbounded); the POSITIVE ones must be > low, not >=.
RANGES = {"learning_rate": (0, None), "gamma": (0, 1), "gae_lambda": (0, 1), "ent_coef": (0, None),
          "vf_coef": (0, None), "clip_range": (0, None), "max_grad_norm": (0, None)}  # fmt: skip
POSITIVE = ("learning_rate", "gamma", "clip_range", "max_grad_norm")


@dataclass
class RL2Config:
    """Hyper-parameters (defaults reach the quality target on the 2-armed bandits)."""

    lstm_hidden_size: int = 48
    shared_lstm: bool = True  # one LSTM for actor and critic: half the compute of two, as good here
    n_envs: int = 128  # parallel trials per PPO update (fewer for long trials, see below)
    # A cap on env steps per PPO update, so long trials still get enough updates from a fixed
    # budget: 500-step trials run 51 in parallel (~195 updates in 5M steps) instead of 128 (78).
    # 25,600 is darkroom-9x9's 128 x 200, the largest update of the shipped checkpoints, which
    # the cap leaves as they were.
    max_steps_per_update: int = 25_600
    learning_rate: float = 3e-3
    lr_decay: bool = True  # anneal the learning rate linearly to 0 over the budget
    gamma: float = 0.9  # learnt faster and plateaued higher than 0.99 on bernoulli-k2-h100 (our tuning runs)
    gae_lambda: float = 0.95
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    n_epochs: int = 4
    trials_per_minibatch: int = 16
    clip_range: float = 0.2
    max_grad_norm: float = 0.5
    train_steps: int = 5_000_000  # default meta-training budget (env steps)
    deterministic: bool = False  # act by sampling (the trained policy), or by argmax

    def __post_init__(self) -> None:
        """Refuse a value PPO cannot train with, naming the field and its range."""
        for name in ("lstm_hidden_size", "n_envs", "max_steps_per_update", "n_epochs", "trials_per_minibatch",
                     "train_steps"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"rl2 {name} must be an integer >= 1, got {value!r}")
        for name in ("shared_lstm", "lr_decay", "deterministic"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"rl2 {name} must be true or false, got {getattr(self, name)!r}")
        for name, (low, high) in RANGES.items():
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if not number or (value <= low if name in POSITIVE else value < low) or (high and value > high):
                bound = ">" if name in POSITIVE else ">="
                allowed = f"{bound} {low}" + (f" and <= {high}" if high is not None else "")
                raise ValueError(f"rl2 {name} must be a number {allowed}, got {value!r}")


@dataclass(frozen=True)
class LinearDecay:
    """Learning rate ``initial * progress_remaining``.  A module-level class, not a lambda:
    SB3 pickles the schedule into its checkpoints, and a class pickles by its import path."""

    initial: float

    def __call__(self, progress_remaining: float) -> float:
        return self.initial * progress_remaining


def parallel_trials(cfg: RL2Config, trial_length: int) -> int:
    """Trials stepped side by side in training: ``n_envs``, capped by ``max_steps_per_update``."""
    return max(1, min(cfg.n_envs, cfg.max_steps_per_update // trial_length))


def learning_rate(cfg: RL2Config) -> float | LinearDecay:
    return LinearDecay(cfg.learning_rate) if cfg.lr_decay else cfg.learning_rate


class TrialVecEnv(VecEnv):
    """SB3 ``VecEnv`` over a batched :class:`TrialEnv`: one numpy call steps every env."""

    def __init__(self, family: TaskFamily, n_envs: int, rng: np.random.Generator):
        self._env = TrialEnv(family, num_trials=n_envs, seed=rng)
        dim = flatten_obs(self._env.reset()).shape[1]
        space = gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)
        super().__init__(n_envs, space, gym.spaces.Discrete(family.num_actions))
        self._actions: np.ndarray | None = None

    @property
    def trial_length(self) -> int:
        return self._env.trial_length

    def reset(self) -> np.ndarray:
        return flatten_obs(self._env.reset())

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self):
        obs, rewards, done, _ = self._env.step(self._actions)
        flat = flatten_obs(obs)
        dones = np.full(self.num_envs, done)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if done:  # every trial ends together: report them and start new tasks
            returns = self._env.episode_returns.sum(axis=1)
            for i, info in enumerate(infos):
                info["terminal_observation"] = flat[i]
                info["episode"] = {"r": float(returns[i]), "l": self._env.trial_length, "t": 0.0}
            flat = self.reset()
        return flat, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self._env, attr_name, None)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self._env, attr_name, value)

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> list[Any]:
        return [getattr(self._env, method_name)(*args, **kwargs)]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)


class TrainingCurve(BaseCallback):
    """The mean return of the last 100 training trials after each rollout, thinned to
    about ``points`` entries: the learning curve a checkpoint keeps."""

    def __init__(self, budget: int, curve: list[dict[str, float]] | None = None, points: int = 200):
        super().__init__()
        self.every = max(1, int(budget) // points)
        self.curve: list[dict[str, float]] = curve or []  # a resumed training's curve continues
        self._next = self.curve[-1]["steps"] + self.every if self.curve else 0

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        returns = [info["r"] for info in self.model.ep_info_buffer]
        if returns and self.model.num_timesteps >= self._next:
            self.curve.append({"steps": int(self.model.num_timesteps), "trial_return": float(np.mean(returns))})
            self._next = self.model.num_timesteps + self.every


SAVE_EVERY_S = 60.0  # wall seconds between the periodic saves of a training (a save takes milliseconds)


class PeriodicSave(BaseCallback):
    """Saves the agent, with its curve so far, once ``every_s`` seconds (default ``SAVE_EVERY_S``)
    have passed, at the start of a rollout: after the last update, so that no rollout is lost."""

    def __init__(self, agent: RL2Agent, path: Path, env: str, curve: TrainingCurve, every_s: float | None = None):
        super().__init__()
        self.agent, self.path, self.train_env, self.curve = agent, path, env, curve
        self.every_s = SAVE_EVERY_S if every_s is None else every_s
        self._last = time.perf_counter()

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        if time.perf_counter() - self._last >= self.every_s and self.model.num_timesteps > 0:
            agent = self.agent
            agent.trained_on, agent.train_steps = self.train_env, int(self.model.num_timesteps)
            agent.curve = self.curve.curve
            agent.save(self.path)
            self._last = time.perf_counter()


class TqdmProgress(BaseCallback):
    """A tqdm bar over env steps showing the mean trial return of recent rollouts (SB3's own
    bar needs ``rich``, which metarl-bench does not require)."""

    def __init__(self, total: int, label: str):
        super().__init__()
        self.total, self.label, self.bar = total, label, None

    def _on_training_start(self) -> None:
        desc = f"rl2 on {self.label}"
        self.bar = tqdm(total=self.total, desc=desc, unit="step", unit_scale=True, leave=False, mininterval=2)

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_rollout_end(self) -> None:
        returns = [info["r"] for info in self.model.ep_info_buffer]
        if returns:
            self.bar.set_postfix(trial_return=f"{np.mean(returns):.2f}")

    def _on_training_end(self) -> None:
        self.bar.close()


def spaces_of(family: TaskFamily) -> dict[str, Any]:
    return {"num_actions": family.num_actions, "obs_shape": list(family.obs_shape)}


class RL2Agent(Learner):
    """An LSTM actor-critic meta-trained with RecurrentPPO; its memory is the LSTM state.

    Its checkpoint is the ``Learner`` container with SB3's own zip inside (``sb3.zip``)."""

    name = "rl2"
    config_class = RL2Config  # the settings --agent-config may set
    checkpoint_dir = CHECKPOINT_DIR
    weights_file = "sb3.zip"
    policy_class: type = WholeSequenceLstmPolicy  # sb3-contrib's LSTM policy, one LSTM call per minibatch
    algorithm: type = LockstepRecurrentPPO  # sb3-contrib's RecurrentPPO, with a lockstep rollout loop

    def __init__(self, family: TaskFamily, **config: Any):
        self.cfg = RL2Config(**config)
        super().__init__(family, **asdict(self.cfg))
        self.model: RecurrentPPO | None = None

    # ------------------------------------------------------------------ training
    def train(self, family: TaskFamily, budget: int, run: FitRun, callbacks: Any = None) -> dict[str, Any]:
        """Meta-train for ``budget`` env steps on tasks of ``family`` (train seed stream).

        A resumed run (``run.resume``, the model taken from a partial checkpoint) continues
        that model, its optimiser, learning-rate schedule and curve for the rest of the budget,
        on a task stream of its own.  With ``run.save_path`` the agent is saved there about
        every ``SAVE_EVERY_S`` seconds and at the end."""
        self._check_spaces(family.num_actions, list(family.obs_shape), what=f"training family {family.describe()}")
        name, seed = run.train_env, run.seed
        resumed = run.resume and self.model is not None
        done = int(self.model.num_timesteps) if resumed else 0
        n_envs = parallel_trials(self.cfg, family.trial_length)
        venv = TrialVecEnv(family, n_envs, train_rng(name, seed, done))
        if resumed:
            self.model.set_env(venv)
        else:
            self.model = self.new_model(venv, family.trial_length, seed, run.device)
        start = time.perf_counter()
        curve = TrainingCurve(int(budget), list(self.curve) if resumed else [])
        callback_list: list[BaseCallback] = [curve]
        if run.save_path is not None:
            callback_list.append(PeriodicSave(self, run.save_path, name, curve))
        if run.progress:
            callback_list.append(TqdmProgress(int(budget) - done, name))
        if callbacks is not None:
            callback_list += list(callbacks) if isinstance(callbacks, list | tuple) else [callbacks]
        # SB3's default logger makes a folder in the temp folder per learn() even when it logs nothing
        self.model.set_logger(Logger(folder=None, output_formats=[]))
        remaining = max(0, int(budget) - done)
        self.model.learn(total_timesteps=remaining, callback=callback_list, reset_num_timesteps=not resumed)
        self.trained_on = name
        self.train_steps = int(self.model.num_timesteps)
        self.curve = curve.curve
        if run.save_path is not None:
            self.save(run.save_path)
        return {"train_steps": self.train_steps, "train_wall_s": time.perf_counter() - start, "checkpoint": ""}

    def new_model(self, venv: VecEnv, trial_length: int, seed: int, device: str) -> RecurrentPPO:
        """A fresh PPO learner: one whole trial per env per rollout."""
        cfg = self.cfg
        n_envs = venv.num_envs
        return self.algorithm(
            self.policy_class,
            venv,
            learning_rate=learning_rate(cfg),
            n_steps=trial_length,
            batch_size=trial_length * min(cfg.trials_per_minibatch, n_envs),
            n_epochs=cfg.n_epochs,
            gamma=cfg.gamma,
            gae_lambda=cfg.gae_lambda,
            ent_coef=cfg.ent_coef,
            vf_coef=cfg.vf_coef,
            clip_range=cfg.clip_range,
            max_grad_norm=cfg.max_grad_norm,
            policy_kwargs={
                "lstm_hidden_size": cfg.lstm_hidden_size,
                "net_arch": [],
                "n_lstm_layers": 1,
                "shared_lstm": cfg.shared_lstm,
                "enable_critic_lstm": not cfg.shared_lstm,
            },
            seed=seed,
            device=device,
            verbose=0,
        )

    def default_budget(self) -> int:
        return self.cfg.train_steps

    def budget_unit(self, family: TaskFamily) -> tuple[int, str]:
        trials = parallel_trials(self.cfg, family.trial_length)
        return trials * family.trial_length, f"PPO update ({trials} trials x {family.trial_length} steps)"

    # ------------------------------------------------------------------ acting
    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        model = self._require_model()
        shape = (model.policy.lstm_actor.num_layers, num_trials, model.policy.lstm_actor.hidden_size)
        zeros = torch.zeros(shape, device=model.device)
        return {
            "rng": np.random.default_rng(rng),
            "state": (zeros, zeros.clone()),
            "start": torch.ones(num_trials, device=model.device),
        }

    def action_probs(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        """The policy's action probabilities, shape (num_trials, k), and the new memory."""
        model = self._require_model()
        with torch.no_grad():
            x = self._policy_input(obs, model)
            dist, state = model.policy.get_distribution(x, memory["state"], memory["start"])
            probs = dist.distribution.probs.cpu().numpy().astype(np.float64)
        memory = {**memory, "state": state, "start": torch.zeros_like(memory["start"])}
        return probs, memory

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        probs, memory = self.action_probs(obs, memory)
        if self.cfg.deterministic:
            return probs.argmax(axis=1), memory
        rng = fresh_rng(memory["rng"])
        return inverse_cdf(probs, rng.random((len(probs), 1))), {**memory, "rng": rng}

    def features(self, memory: Any) -> np.ndarray:
        h, c = memory["state"]
        return torch.cat([h[-1], c[-1]], dim=1).cpu().numpy()

    # ------------------------------------------------------------------ checkpoints
    def weights_bytes(self) -> bytes:
        """SB3's own zip of the model, without the training-time state."""
        buffer = io.BytesIO()
        exclude = ["env", "_last_obs", "_last_episode_starts", "_last_lstm_states", "ep_info_buffer"]
        self._require_model().save(buffer, exclude=exclude)
        return buffer.getvalue()

    def load_state(self, weights: bytes, record: dict[str, Any], device: str = "cpu") -> None:
        # The schedule is rebuilt from our record, not unpickled: checkpoints made before the
        # one-namespace layout pickled a lambda of the old top-level module ``baselines.rl2``.
        try:
            schedule = learning_rate(RL2Config(**record["config"]))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"the checkpoint holds an rl2 config this version cannot read ({exc})") from None
        try:
            # Older checkpoints pickled sb3-contrib's own policy class; ours has the same weights.
            custom = {"learning_rate": schedule, "lr_schedule": schedule, "policy_class": self.policy_class}
            self.model = self.algorithm.load(io.BytesIO(weights), device=device, custom_objects=custom)
        except Exception as exc:  # SB3 raises many types for a damaged archive; the run must fail, named
            raise CheckpointError(
                f"the checkpoint has our rl2 record but its SB3 model cannot be loaded ({type(exc).__name__})"
            ) from None

    def check_spaces(self, spaces: dict[str, Any], path: Path) -> None:
        self._check_spaces(spaces["num_actions"], spaces["obs_shape"], what=f"checkpoint {path}")

    def _check_spaces(self, num_actions: int, obs_shape: list[int], what: str) -> None:
        mine = spaces_of(self.family)
        if mine != {"num_actions": num_actions, "obs_shape": list(obs_shape)}:
            raise UnsupportedFamilyError(
                f"{what} has {num_actions} actions and observations of shape {tuple(obs_shape)}, but this agent "
                f"plays {self.family.describe()} ({mine['num_actions']} actions, shape {tuple(mine['obs_shape'])}); "
                "an LSTM policy cannot change its action space"
            )

    @property
    def device(self) -> str:
        """The torch device the model lives on (what the row records)."""
        return "cpu" if self.model is None else str(self.model.device)

    def _policy_input(self, obs: Obs, model: RecurrentPPO) -> Any:
        """Our flat vector, or, for a plain sb3-contrib model trained on our gymnasium ids, its Dict."""
        if isinstance(model.observation_space, gym.spaces.Dict):
            n = len(obs["obs"])
            return {k: torch.as_tensor(np.asarray(obs[k], np.float32).reshape(n, *space.shape), device=model.device)
                    for k, space in model.observation_space.spaces.items()}  # fmt: skip
        return torch.as_tensor(flatten_obs(obs), device=model.device)

    # ------------------------------------------------------------------ a file of another learner
    def load_file(self, path: Path, device: str = "cpu") -> None:
        """``--checkpoint``: our container, or a plain sb3-contrib ``RecurrentPPO`` zip trained on
        this distribution's gymnasium id (``gym.make("metarl_bench/<env>")``: a Dict observation
        and the family's actions), spaces checked; anything else is refused in one line."""
        if not path.is_file():
            raise CheckpointError(f"--checkpoint {path}: no such file")
        try:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
        except zipfile.BadZipFile:
            raise CheckpointError(f"--checkpoint {path}: not a zip (neither our container nor an SB3 zip)") from None
        if RECORD_FILE in names:
            return super().load_file(path, device)
        if not {"data", "policy.pth"} <= names:
            raise CheckpointError(f"--checkpoint {path}: neither an rl2 checkpoint nor an SB3 zip (no 'data')")
        try:
            model = RecurrentPPO.load(path, device=device)
        except Exception as exc:  # SB3 raises many types for a foreign or damaged archive
            raise CheckpointError(f"--checkpoint {path}: not a RecurrentPPO model ({type(exc).__name__})") from None
        self.check_foreign_spaces(model, path)
        self.model, self.trained_on, self.train_seed = model, "", None
        self.train_steps, self.curve = int(model.num_timesteps), []
        self.config = {"checkpoint_format": "sb3-contrib RecurrentPPO zip", "policy": type(model.policy).__name__,
                       "lstm_hidden_size": model.policy.lstm_actor.hidden_size,
                       "deterministic": self.cfg.deterministic}  # fmt: skip

    def check_foreign_spaces(self, model: RecurrentPPO, path: Path) -> None:
        ours, flat = observation_space(self.family), flatten_obs(TrialEnv(self.family, 1).reset()).shape[1]
        theirs, actions = model.observation_space, model.action_space
        if isinstance(theirs, gym.spaces.Dict):
            fits = {k: s.shape for k, s in theirs.spaces.items()} == {k: s.shape for k, s in ours.spaces.items()}
        else:
            fits = isinstance(theirs, gym.spaces.Box) and theirs.shape == (flat,)
        if not fits or not isinstance(actions, gym.spaces.Discrete) or actions.n != self.family.num_actions:
            raise UnsupportedFamilyError(
                f"--checkpoint {path} was trained for observations {theirs} and actions {actions}, but "
                f"{self.family.describe()} has {ours} and Discrete({self.family.num_actions}); train it on "
                "this distribution's gymnasium id"
            )

    def _require_model(self) -> RecurrentPPO:
        if self.model is None:
            raise RuntimeError("the rl2 agent has no model yet: fit() it or load a checkpoint")
        return self.model
