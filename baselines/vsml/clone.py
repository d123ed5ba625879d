"""Learning-algorithm cloning: VSML meta-trained by gradient descent to imitate a learner.

The VSML paper's claim (Kirsch & Schmidhuber 2021) is that a network of tiny shared LSTMs
can run a gradient-based learning algorithm in its forward dynamics alone.  Here the teacher
is the gradient bandit algorithm (online backprop through a softmax policy,
``gradient_bandit.py``).  Cloning backpropagates through the unrolled VSML dynamics
(torch autograd; truncated every ``truncate`` steps if asked) and minimises, at every step
of a trial, KL(teacher || student) between the two policies given the same history.

Trajectories: at first the teacher acts (its own trajectories); a growing share of trials
is then driven by the student itself (up to ``student_share``), so that the student also
learns what the teacher would do in the states its own mistakes lead to (as in DAgger).

Two agents:

- ``vsml-clone``: VSML whose parameters come from cloning (``fit`` clones the gradient
  bandit tuned for the training distribution);
- ``vsml-clone-es``: starts from the shipped ``vsml-clone`` checkpoint of its training
  distribution and continues with ES on the RL objective (``VSMLAgent.fit``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from metarl_bench.baselines.gradient_bandit import GradientBanditAgent
from metarl_bench.baselines.vsml.agent import VSMLAgent, theta_of
from metarl_bench.baselines.vsml.network import obs_tensors
from metarl_bench.core.agent import CheckpointError, Obs, UnsupportedFamilyError, inverse_cdf
from metarl_bench.core.family import Arrays, TaskFamily
from metarl_bench.core.learner import FitRun
from metarl_bench.core.seeding import train_rng
from metarl_bench.core.training import TrainOptions
from metarl_bench.core.trial import TrialEnv

TEACHER = "gradient-bandit"


class Teacher(Protocol):
    """What cloning needs of a teacher: fresh memory, and its action probabilities given history."""

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any: ...

    def action_probs(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]: ...


@dataclass
class CloneConfig:
    """Hyper-parameters of cloning; the defaults made the shipped ``vsml-clone`` checkpoint."""

    iterations: int = 1500  # gradient steps
    trials_per_batch: int = 64  # trials unrolled per gradient step
    learning_rate: float = 1e-2  # Adam
    lr_final: float = 0.1  # the step size anneals linearly to lr_final * learning_rate
    student_share: float = 0.5  # final share of trials driven by the student (linear ramp from 0)
    truncate: int = 0  # backprop window in env steps (0: the whole trial)
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.trials_per_batch < 2:
            raise ValueError("iterations must be >= 1 and trials_per_batch >= 2")
        if not 0.0 <= self.student_share <= 1.0:
            raise ValueError(f"student_share must lie in [0, 1], got {self.student_share}")
        if self.truncate < 0:
            raise ValueError(f"truncate must be >= 0 (0: no truncation), got {self.truncate}")


def kl_per_trial(teacher_probs: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """KL(teacher || softmax(student_logits)) per row (nats)."""
    log_student = torch.log_softmax(student_logits, dim=-1)
    log_teacher = torch.log(teacher_probs.clamp_min(1e-12))
    return (teacher_probs * (log_teacher - log_student)).sum(dim=-1)


def clone(
    student: VSMLAgent,
    teacher: Teacher,
    family: TaskFamily,
    cfg: CloneConfig,
    rng: np.random.Generator,
    progress: bool = False,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> list[float]:
    """Fit ``student.theta`` so that its policy follows ``teacher`` step by step; the losses per iteration.

    Each iteration draws ``cfg.trials_per_batch`` training tasks from ``rng``, unrolls a whole
    trial (the teacher or, for a ramping share of trials, the student choosing the actions),
    and takes one Adam step on the mean KL per step.
    """
    net, T, N = student.net, family.trial_length, cfg.trials_per_batch
    theta = student.theta.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([theta], lr=cfg.learning_rate)
    window = cfg.truncate or T
    losses = []
    bar = tqdm(range(cfg.iterations), desc=f"vsml cloning on {family.describe()}", disable=not progress)
    for it in bar:
        frac = it / max(1, cfg.iterations - 1)
        for group in optimizer.param_groups:
            group["lr"] = cfg.learning_rate * (1 - (1 - cfg.lr_final) * frac)
        tasks = family.sample_tasks(rng, N)
        env = TrialEnv(family, num_trials=N)
        obs = env.reset(seed=rng, tasks=tasks)
        t_memory = teacher.reset(N, rng=np.random.default_rng(rng.integers(2**63)))
        state = net.initial_state(1, N, family.num_actions, "cpu")
        student_drives = rng.random(N) < cfg.student_share * frac
        optimizer.zero_grad()
        total, window_loss = 0.0, torch.zeros(())
        for t in range(T):
            if t % window == 0:
                if t > 0:  # truncated backprop: close the window, carry the state on without its graph
                    window_loss.backward()
                    state = _detached(state)
                    window_loss = torch.zeros(())
                params = net.unflatten(theta[None])  # a fresh graph from theta for each window
            t_probs, t_memory = teacher.action_probs(obs, t_memory)
            logits, state = net.step(params, state, *obs_tensors(obs, 1, "cpu"))
            kl = kl_per_trial(torch.as_tensor(t_probs, dtype=torch.float32), logits[0]).mean() / T
            window_loss = window_loss + kl
            total += float(kl.detach())
            s_probs = torch.softmax(logits[0].detach().double(), dim=-1).numpy()
            actions = inverse_cdf(np.where(student_drives[:, None], s_probs, t_probs), rng.random(N))
            obs, _, _, _ = env.step(actions)
        window_loss.backward()
        torch.nn.utils.clip_grad_norm_([theta], cfg.max_grad_norm)
        optimizer.step()
        losses.append(total)
        bar.set_postfix(kl=f"{total:.4f}")
        if callback is not None:
            callback({"iteration": it + 1, "kl_per_step": total})
    student.theta = theta.detach().clone()
    return losses


def _detached(state: dict[str, Any]) -> dict[str, Any]:
    return {k: [x.detach() for x in v] if isinstance(v, list) else v.detach() for k, v in state.items()}


@torch.no_grad()
def fidelity(
    student: VSMLAgent,
    teacher: Teacher,
    family: TaskFamily,
    tasks: Arrays,
    env_seed: int,
    agent_seed: int,
    driver: str = "student",
) -> dict[str, float]:
    """How closely ``student`` follows ``teacher`` along the ``driver``'s trajectories.

    Both see the same history at every step; returns the mean KL(teacher || student) per step,
    the share of steps whose greedy (argmax) actions agree (ties count as agreement when the
    argmax sets overlap), and the mean trial return of the driver.  ``driver="student"``
    measures the clone where it is used; ``"teacher"`` is the cloning loss on the teacher's
    own trajectories.
    """
    if driver not in ("student", "teacher"):
        raise ValueError(f"driver must be 'student' or 'teacher', got {driver!r}")
    n = len(next(iter(tasks.values())))
    env = TrialEnv(family, num_trials=n)
    obs = env.reset(seed=np.random.default_rng(env_seed), tasks=tasks)
    s_memory = student.reset(n, rng=np.random.default_rng(agent_seed))
    t_memory = teacher.reset(n, rng=np.random.default_rng(agent_seed))
    t_rng = np.random.default_rng(agent_seed + 1)
    kl, agree, total = 0.0, 0.0, np.zeros(n)
    for _ in range(family.trial_length):
        t_probs, t_memory = teacher.action_probs(obs, t_memory)
        logits, s_memory = student.logits(obs, s_memory)
        kl += float(kl_per_trial(torch.as_tensor(t_probs), torch.as_tensor(logits)).mean())
        t_best = t_probs >= t_probs.max(axis=1, keepdims=True) - 1e-9
        s_best = logits >= logits.max(axis=1, keepdims=True) - 1e-9
        agree += float((t_best & s_best).any(axis=1).mean())
        actions, s_memory = student.act_on_logits(logits, s_memory)
        if driver == "teacher":  # the student's draw keeps its rng in step; the teacher's action is played
            actions = inverse_cdf(t_probs, t_rng.random(n))
        obs, rewards, _, _ = env.step(actions)
        total += rewards
    T = family.trial_length
    return {"kl_per_step": kl / T, "greedy_agreement": agree / T, f"{driver}_return": float(total.mean())}


def tuned_teacher(family: TaskFamily, train_env: str, seed: int = 0) -> GradientBanditAgent:
    """The gradient bandit tuned for ``train_env`` (its shipped tuning, or a fresh sweep)."""
    teacher = GradientBanditAgent(family)
    teacher.prepare(family, train_env, TrainOptions(train_seed=seed))
    return teacher


class VSMLCloneAgent(VSMLAgent):
    """VSML whose parameters were cloned from the gradient bandit algorithm (no RL objective)."""

    name = "vsml-clone"
    extra_config = ("clone",)
    resumable = False  # cloning takes minutes: it is rerun, not resumed
    teacher_name = TEACHER

    def make_teacher(self, family: TaskFamily, train_env: str, seed: int) -> Teacher:
        return tuned_teacher(family, train_env, seed)

    def __init__(self, family: TaskFamily, preset: str = "cpu", clone: dict[str, Any] | None = None, **config: Any):
        try:
            self.clone_cfg = CloneConfig(**(clone or {}))
        except TypeError as exc:
            allowed = list(CloneConfig.__dataclass_fields__)
            raise ValueError(f"bad vsml-clone 'clone' config: {exc}; allowed keys: {allowed}") from None
        super().__init__(family, preset=preset, **config)
        self.config = {**self.config, "clone": asdict(self.clone_cfg)}

    def default_budget(self) -> int:
        return 0  # clone.iterations gradient steps

    def budget_unit(self, family: TaskFamily) -> tuple[int, str]:
        trials = self.clone_cfg.trials_per_batch
        return trials * family.trial_length, f"cloning iteration ({trials} trials x {family.trial_length} steps)"

    def train(self, family: TaskFamily, budget: int, run: FitRun, **_: Any) -> dict[str, Any]:
        """Clone the gradient bandit tuned for ``run.train_env``.  ``budget`` (env steps, > 0) caps
        the iterations at budget / (trials_per_batch x trial length); 0 keeps ``clone.iterations``."""
        self._check_obs(family, what=f"training family {family.describe()}")
        name, seed, progress, save_path = run.train_env, run.seed, run.progress, run.save_path
        cfg = self.clone_cfg
        per_iteration = cfg.trials_per_batch * family.trial_length
        if budget:
            cfg = CloneConfig(**{**asdict(cfg), "iterations": max(1, int(budget) // per_iteration)})
        teacher = self.make_teacher(family, name, seed)
        start = time.perf_counter()
        losses = clone(self, teacher, family, cfg, train_rng(name, seed), progress=progress)
        wall = time.perf_counter() - start
        self.trained_on, self.train_steps = name, cfg.iterations * per_iteration
        self.metrics = {
            "teacher": self.teacher_name,
            "teacher_config": getattr(teacher, "config", {}),
            "clone_config": asdict(cfg),
            "kl_first": losses[0],
            "kl_last": float(np.mean(losses[-10:])),
            "kl_curve": losses,
            "train_wall_s": wall,
        }
        self.clone_cfg, self.config = cfg, {**self.config, "clone": asdict(cfg)}
        if save_path is not None:
            self.save(save_path)
        return {"train_steps": self.train_steps, "train_wall_s": wall, "checkpoint": ""}

    def comparable_settings(self, config: dict[str, Any]) -> dict[str, Any]:
        """Every setting but ``clone.iterations``: a budget (``--train-steps`` sets it), not a setting."""
        clone = {k: v for k, v in (config.get("clone") or {}).items() if k != "iterations"}
        return {**super().comparable_settings(config), "clone": clone}

    def load_state(self, weights: bytes, record: dict[str, Any], device: str = "cpu") -> None:
        try:
            clone_cfg = CloneConfig(**(record["config"].get("clone") or {}))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"holds a clone config this version cannot read ({exc})") from None
        super().load_state(weights, record, device)
        self.clone_cfg = clone_cfg
        self.config = {**self.config, "clone": asdict(self.clone_cfg)}


class VSMLCloneESAgent(VSMLAgent):
    """``vsml-clone`` improved by ES on the RL objective: starts from the clone's checkpoint."""

    name = "vsml-clone-es"

    def train(self, family: TaskFamily, budget: int, run: FitRun, **kwargs: Any) -> dict[str, Any]:
        """ES from the shipped ``vsml-clone`` parameters of ``train_env`` (same seed), for ``budget``."""
        name = run.train_env
        if self.generations == 0:  # a fresh agent: start from the clone (a resumed one continues)
            start_from = VSMLCloneAgent(self.family)
            path = start_from.checkpoint_path(name, run.seed)
            if not path.exists():
                raise UnsupportedFamilyError(
                    f"vsml-clone-es starts from the vsml-clone checkpoint {path}, which does not exist: "
                    f"train it first (python -m metarl_bench.run --agent vsml-clone --env {name} --retrain "
                    "--save-checkpoint)"
                )
            _, weights = start_from.read(path)
            self.theta = theta_of(weights).clone()
            self.metrics = {"started_from": path.name}
        started_from = self.metrics.get("started_from")
        stats = super().train(family, budget, run, **kwargs)
        self.metrics["started_from"] = started_from
        return stats


class PolicyTeacher:
    """A teacher from a policy that picks one action (e.g. a Bayes planner): its choice gets
    probability 1 - ``smoothing``, the rest is spread evenly, so the KL stays finite."""

    def __init__(self, policy: Any, num_actions: int, smoothing: float = 0.05):
        self.policy, self.k, self.smoothing = policy, num_actions, smoothing

    def reset(self, num_trials: int, rng: np.random.Generator | None = None, tasks: Arrays | None = None) -> Any:
        return self.policy.reset(num_trials, rng=rng)

    def action_probs(self, obs: Obs, memory: Any) -> tuple[np.ndarray, Any]:
        actions, memory = self.policy.act(obs, memory)
        probs = np.full((len(actions), self.k), self.smoothing / self.k)
        probs[np.arange(len(actions)), actions] += 1.0 - self.smoothing
        return probs, memory


class VSMLIdsCloneAgent(VSMLCloneAgent):
    """``vsml-ids`` (unit identities) whose parameters are cloned from the family's Bayes
    reference policy: the second route to fixed-meaning gridworlds, where ES from scratch
    barely moves (README)."""

    name = "vsml-ids-clone"
    transfers_across_spaces = False
    teacher_name = "bayes"

    # Imitating a planner's search path needs more memory per cell than the gradient bandit.
    DEFAULTS: dict[str, Any] = {"unit_ids": True, "hidden_size": 32}
    CLONE_DEFAULTS: dict[str, Any] = {"iterations": 1200, "learning_rate": 0.02}

    def __init__(self, family: TaskFamily, preset: str = "cpu", clone: dict[str, Any] | None = None, **config: Any):
        clone = {**self.CLONE_DEFAULTS, **(clone or {})}
        super().__init__(family, preset=preset, clone=clone, **{**self.DEFAULTS, **config})

    def make_teacher(self, family: TaskFamily, train_env: str, seed: int) -> Teacher:
        reference = family.bayes_reference()
        if reference is None:
            raise UnsupportedFamilyError(f"{family.describe()} declares no Bayes reference policy to clone")
        return PolicyTeacher(reference.policy(), family.num_actions)
