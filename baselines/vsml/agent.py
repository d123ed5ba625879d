"""VSML (Kirsch & Schmidhuber 2021) as a meta-RL agent (Kirsch et al. 2022): training, acting, checkpoints.

The agent holds the mean parameters of a ``VSMLNet`` (``network.py``, hyper-parameters in
``config.py``) and meta-trains them by evolution strategies (``es.py``): each generation samples
tasks from the training seed stream, and every member plays the same tasks with the same
reward noise and action-sampling numbers (``rollout.py``), so members differ only by
parameters.  Its memory is the grid of LSTM states.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from metarl_bench.baselines.vsml.config import PRESETS, VSMLConfig
from metarl_bench.baselines.vsml.es import Adam, annealed_lr, antithetic, es_gradient
from metarl_bench.baselines.vsml.network import VSMLNet, obs_tensors
from metarl_bench.baselines.vsml.rollout import ShardMap, play
from metarl_bench.baselines.vsml.rollout import draw_shared as draw_shared  # these two for tests/test_torch_step.py
from metarl_bench.baselines.vsml.rollout import play_members as play_members
from metarl_bench.core.agent import (
    CheckpointError,
    Obs,
    UnsupportedFamilyError,
    fresh_rng,
    inverse_cdf,
)
from metarl_bench.core.family import Arrays, TaskFamily
from metarl_bench.core.learner import FitRun, Learner
from metarl_bench.core.registry import get_spec
from metarl_bench.core.seeding import train_rng
from metarl_bench.evaluation.score import score

CHECKPOINT_ROOT = Path(__file__).resolve().parent.parent / "checkpoints"  # one folder per agent name
DEFAULT_TRAIN_ENV = "bernoulli-k2-h100"  # the shipped checkpoint that plays Bernoulli bandits of any k


def _references(family: TaskFamily) -> tuple[float | None, float | None]:
    """(random, Bayes-optimal) expected returns of the training family, when known exactly."""
    reference = family.bayes_reference()
    bayes = reference.expected_return() if reference is not None else None  # None for a lower bound
    tasks = family.sample_tasks(np.random.default_rng(0), 10_000)
    rand = family.random_return(tasks)
    return (None if rand is None else float(rand.mean())), bayes


def _score(ret: float, refs: tuple[float | None, float | None]) -> float | None:
    rand, bayes = refs
    if rand is None or bayes is None or bayes <= rand:
        return None
    return float(score(ret, rand, bayes))


class VSMLAgent(Learner):
    """A VSML network meta-trained by ES; its memory is the grid of LSTM states.

    Its checkpoint is the ``Learner`` container with the flat parameters as a torch
    ``state_dict`` (``state_dict.pt``)."""

    name = "vsml"
    config_class = VSMLConfig  # the settings --agent-config may set (beside preset)
    weights_file = "state_dict.pt"
    transfers_across_spaces = True  # parameters are shared by every cell: any number of arms
    extra_config: tuple[str, ...] = ()  # config keys of a subclass, beside VSMLConfig's

    def __init__(self, family: TaskFamily, preset: str = "cpu", **config: Any):
        if preset not in PRESETS:
            raise ValueError(f"unknown vsml preset {preset!r}; allowed: {sorted(PRESETS)}")
        known = {f.name for f in fields(VSMLConfig)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown vsml config key(s) {unknown}; allowed: {sorted(known)}")
        self.cfg = VSMLConfig(**{**PRESETS[preset], **config})
        super().__init__(family, **asdict(self.cfg))
        self.net = VSMLNet(self.cfg, _obs_dim(family), family.num_actions)
        self.theta = self.net.theta0.clone()
        self.device: str = "cpu"
        self.generations = 0
        self.metrics: dict[str, Any] = {}
        self.adam: Adam | None = None  # kept (and saved) so that a resumed training keeps its moments

    # ------------------------------------------------------------------ training
    def train(
        self,
        family: TaskFamily,
        budget: int,
        run: FitRun,
        eval_tasks: int = 10_000,
        callback: Callable[[VSMLAgent, dict[str, Any]], None] | None = None,
        shard_map: ShardMap | None = None,
        shards: int = 2,
        env_backend: str = "auto",
    ) -> dict[str, Any]:
        """Meta-train by ES for ``budget`` env steps (members x tasks x trial length per generation).

        Runs as many whole generations as the budget holds (at least one).  Continues from
        the current parameters; a resumed run (``run.resume``) counts the generations it has
        done towards the budget, and continues its learning-rate schedule, its Adam moments
        and its curve.  Every ``checkpoint_every`` generations the agent is saved to
        ``run.save_path`` (if given).  At the end the mean parameters are evaluated on
        ``eval_tasks`` fresh training tasks (numbers in the returned statistics and in
        ``self.metrics``).  ``callback(agent, stats)`` runs after every generation.
        With ``shard_map``, each generation's members are played in ``shards`` slices by it
        (``play`` with a ``shard_map``; e.g. Ray tasks), with the same result as in-process.
        ``env_backend`` says where the trials are stepped (:func:`play_members`); the
        result does not depend on it.
        """
        self._check_obs(family, what=f"training family {family.describe()}")
        cfg = self.cfg
        seed, device, name, save_path, progress = run.seed, run.device, run.train_env, run.save_path, run.progress
        self.device = device
        done = self.generations if run.resume else 0  # generations of this budget already run
        rng = train_rng(name, seed, self.train_steps if run.resume else 0)
        noise_gen = torch.Generator().manual_seed(int(rng.integers(2**63)))
        steps_per_gen = cfg.population * cfg.tasks_per_generation * family.trial_length
        generations = max(1, int(budget) // steps_per_gen)
        refs = _references(family)
        if not (run.resume and self.adam is not None):
            self.adam = Adam(self.net.num_params, cfg.learning_rate)
        adam = self.adam
        pairs = cfg.population // 2
        curve: list[dict[str, Any]] = list(self.curve) if run.resume else []
        smooth: float | None = curve[-1]["smoothed_return"] if curve else None
        curve_every = max(1, generations // 100)
        start = time.perf_counter()
        bar = tqdm(range(done, generations), desc=f"vsml ES on {name}", disable=not progress, unit="gen")
        for gen in bar:
            noise, thetas = antithetic(self.theta, cfg.sigma, pairs, noise_gen)
            tasks = family.sample_tasks(rng, cfg.tasks_per_generation)
            returns = play(
                self.net, thetas, family, tasks, rng, cfg.deterministic, device, env_backend, shard_map, shards
            )
            fitness = returns.mean(dim=1).float()
            grad = es_gradient(fitness, noise, cfg.sigma)
            adam.lr = annealed_lr(cfg.learning_rate, cfg.lr_final, gen, generations)
            self.theta = adam.ascent(self.theta, grad - cfg.weight_decay * self.theta)
            self.train_steps += steps_per_gen
            self.generations += 1
            mean_ret = float(fitness.mean())
            # The bar shows a running mean: one generation's 64 tasks are a noisy sample.
            smooth = mean_ret if smooth is None else 0.9 * smooth + 0.1 * mean_ret
            score = _score(smooth, refs)
            bar.set_postfix(ret=f"{smooth:.2f}", **({"score": f"{score:.1f}"} if score is not None else {}))
            if (gen + 1) % curve_every == 0 or gen + 1 == generations:  # the learning curve ships in the checkpoint
                curve.append({"generation": self.generations, "smoothed_return": smooth, "smoothed_score": score})
            if callback is not None:
                callback(self, {"generation": self.generations, "population_return": mean_ret, "smoothed": smooth})
            if save_path is not None and (gen + 1) % cfg.checkpoint_every == 0:
                self.trained_on, self.curve = name, curve
                self.save(save_path)
        train_wall = time.perf_counter() - start
        self.trained_on = name
        tasks = family.sample_tasks(rng, eval_tasks)
        final = play(self.net, self.theta[None], family, tasks, rng, cfg.deterministic, device, env_backend)
        final = float(final.mean())
        self.metrics = {
            "train_return": final,
            "train_score": _score(final, refs),  # vs the exact Bayes value, unpaired: +-1 at 10k tasks
            "population_return": smooth,  # running mean over the last ~10 generations
            "eval_tasks": eval_tasks,
            "train_wall_s": train_wall,
            "generations": self.generations,
        }
        self.curve = curve  # running-mean population return and score, ~100 points
        if save_path is not None:
            self.save(save_path)
        return {
            "train_steps": self.train_steps,
            "train_wall_s": train_wall,
            "checkpoint": "",
            **self.metrics,
        }

    def default_train_env(self, env: str, retrain: bool = False) -> str:
        """``env``, or the shipped 2-armed checkpoint for Bernoulli distributions that have none
        of their own: trained on 2 arms, VSML plays any number of arms (the row's train_env says so)."""
        if retrain or self.checkpoint_path(env).exists():
            return env
        default = get_spec(DEFAULT_TRAIN_ENV).make()
        same_kind = type(default) is type(self.family)
        return DEFAULT_TRAIN_ENV if same_kind and self.checkpoint_path(DEFAULT_TRAIN_ENV).exists() else env

    @property
    def checkpoint_dir(self) -> Path:  # type: ignore[override]
        return CHECKPOINT_ROOT / self.name

    def missing_checkpoint_message(self, train_env: str, path: Path) -> str:
        return (
            f"no shipped {self.name} checkpoint for {train_env!r} (looked for {path}); pass --retrain or "
            f"--train-steps to train one, or --train-env {DEFAULT_TRAIN_ENV} to play the shipped one zero-shot"
        )

    def default_budget(self) -> int:
        """The training budget (env steps) when the user gives none."""
        return self.cfg.train_steps

    def budget_unit(self, family: TaskFamily) -> tuple[int, str]:
        c = self.cfg
        steps = c.population * c.tasks_per_generation * family.trial_length
        shape = f"{c.population} members x {c.tasks_per_generation} tasks x {family.trial_length} steps"
        return steps, f"ES generation ({shape})"

    # ------------------------------------------------------------------ acting
    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        state = self.net.initial_state(1, num_trials, self.num_actions, self.device)
        return {"rng": np.random.default_rng(rng), "state": state, "params": self.net.unflatten(self._theta()[None])}

    def action_probs(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        """The policy's action probabilities (num_trials, k) and the new memory."""
        logits, memory = self.logits(obs, memory)
        return torch.softmax(torch.as_tensor(logits), dim=-1).numpy(), memory

    @torch.no_grad()
    def logits(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        """Action logits (num_trials, k), float64, and the new memory."""
        logits, state = self.net.step(memory["params"], memory["state"], *obs_tensors(obs, 1, self.device))
        return logits[0].double().cpu().numpy(), {**memory, "state": state}

    def act(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        return self.act_on_logits(*self.logits(obs, memory))

    def act_on_logits(self, logits: np.ndarray, memory: Any) -> tuple[np.ndarray, Any]:
        """Actions drawn from the policy with these logits (the memory ``logits`` returned)."""
        rng = fresh_rng(memory["rng"])
        memory = {**memory, "rng": rng}
        if self.cfg.deterministic:  # argmax, ties broken at random (keeps arms symmetric)
            best = logits >= logits.max(axis=1, keepdims=True)
            return _pick(best / best.sum(axis=1, keepdims=True), rng), memory
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        return _pick(probs / probs.sum(axis=1, keepdims=True), rng), memory

    def features(self, memory: Any) -> np.ndarray:
        """All cells' LSTM states (h and c of every layer), flattened per trial."""
        state = memory["state"]
        parts = [x[0].reshape(x.shape[1], -1) for x in (*state["h"], *state["c"])]
        return torch.cat(parts, dim=1).cpu().numpy()

    # ------------------------------------------------------------------ checkpoints
    def spaces(self) -> dict[str, Any]:
        return {"obs_dim": _obs_dim(self.family)}  # any number of arms (unit_ids aside: checked on load)

    def check_spaces(self, spaces: dict[str, Any], path: Path) -> None:
        if spaces.get("obs_dim") != _obs_dim(self.family):
            raise UnsupportedFamilyError(
                f"checkpoint {path} reads observations of {spaces.get('obs_dim')} entries, but "
                f"{self.family.describe()} gives {_obs_dim(self.family)} (any number of arms is fine)"
            )

    def extra_record(self) -> dict[str, Any]:
        return {"generations": self.generations, "metrics": self.metrics}

    def weights_bytes(self) -> bytes:
        buffer = io.BytesIO()
        state = {"theta": self.theta.detach().cpu().float().clone()}
        if self.adam is not None:  # the training's optimiser, so that --resume keeps its moments
            state |= {"adam_m": self.adam.m, "adam_v": self.adam.v, "adam_t": torch.tensor(self.adam.t)}
        torch.save(state, buffer)
        return buffer.getvalue()

    def load_state(self, weights: bytes, record: dict[str, Any], device: str = "cpu") -> None:
        """Take the checkpoint's parameters and config (the config decides the network's shape)."""
        try:
            cfg = VSMLConfig(**{k: v for k, v in record["config"].items() if k not in self.extra_config})
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"holds a vsml config this version cannot read ({exc})") from None
        net = VSMLNet(cfg, _obs_dim(self.family), self.family.num_actions)
        theta = theta_of(weights)
        if cfg.unit_ids and theta.shape != (net.num_params,):
            raise UnsupportedFamilyError(
                f"has identity vectors for another number of actions than the "
                f"{self.family.num_actions} of {self.family.describe()} (unit_ids fixes the action count)"
            )
        if theta.shape != (net.num_params,):
            raise CheckpointError(f"holds {tuple(theta.shape)} parameters, its config needs ({net.num_params},)")
        self.cfg, self.config, self.net, self.theta = cfg, asdict(cfg), net, theta
        self.generations, self.metrics = int(record.get("generations", 0)), dict(record.get("metrics", {}))
        self.adam = adam_of(weights, cfg.learning_rate)
        self.device = device

    def _theta(self) -> torch.Tensor:
        return self.theta.to(self.device)

    def _check_obs(self, family: TaskFamily, what: str) -> None:
        if _obs_dim(family) != _obs_dim(self.family):
            raise ValueError(
                f"{what} has observations of {_obs_dim(family)} entries, but this agent reads "
                f"{_obs_dim(self.family)} ({self.family.describe()})"
            )


class VSMLIdsAgent(VSMLAgent):
    """VSML with learned identity vectors per input unit and per action (``unit_ids=True``).

    For distributions whose actions and observation features keep their meaning from task
    to task (the gridworlds): cells can tell "up" from "left" at the first step instead of
    finding it out within the trial.  The price is the default's transfer: a checkpoint plays
    only its own number of actions, and a per-task permutation of the actions is exactly what
    the identities cannot absorb (the ``permuted`` suite).
    """

    name = "vsml-ids"
    transfers_across_spaces = False

    def __init__(self, family: TaskFamily, preset: str = "cpu", **config: Any):
        super().__init__(family, preset=preset, **{"unit_ids": True, **config})


def theta_of(weights: bytes) -> torch.Tensor:
    """The flat parameters of a checkpoint's ``state_dict.pt``; CheckpointError if it holds none."""
    try:
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
        return state["theta"].float()
    except Exception as exc:  # torch raises many types for a broken file
        raise CheckpointError(f"holds no readable parameters in state_dict.pt ({type(exc).__name__})") from None


def adam_of(weights: bytes, lr: float) -> Adam | None:
    """The optimiser state a training checkpoint carries (None for one without)."""
    state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    if "adam_m" not in state:
        return None
    adam = Adam(len(state["adam_m"]), lr)
    adam.m, adam.v, adam.t = state["adam_m"].float(), state["adam_v"].float(), int(state["adam_t"])
    return adam


def _obs_dim(family: TaskFamily) -> int:
    return int(math.prod(family.obs_shape))


def _pick(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One inverse-CDF sample per row of ``probs`` with the agent's Generator."""
    return inverse_cdf(probs, rng.random((len(probs), 1)))
