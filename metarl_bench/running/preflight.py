"""Checks a command makes before any work: list items, bounds, memory, budgets and checkpoints.

Each check raises ``ValueError`` with one line that names the flag, what was wrong and what
is allowed; the commands turn it into exit status 2.  They are cheap (no model is loaded,
no task is played): reading a checkpoint's record, sampling two tasks to size one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from metarl_bench.core.agent import CheckpointError, UnsupportedFamilyError
from metarl_bench.core.registry import get_agent_factory, get_spec, make_agent
from metarl_bench.core.training import TrainOptions
from metarl_bench.evaluation.evaluate import EvalSettings

MAX_SEED = 2**32 - 1  # numpy's legacy seed range: what other tools can replay
MAX_TRAIN_STEPS = 10**11  # about a month of RL² at its CPU speed; more is a typo
# Arrays a run holds per held-out task and step (rewards per seed, the curves, the scores):
# float64s, with room for copies numpy makes along the way.
COPIES = 3


def split_names(flag: str, text: str) -> str:
    """``text`` unchanged if its comma list has no empty or repeated item; else ValueError."""
    items = [p.strip() for p in text.split(",")]
    if any(not p for p in items):
        raise ValueError(f"{flag} {text!r} has an empty item; give names separated by single commas")
    repeated = sorted({p for p in items if items.count(p) > 1})
    if repeated:
        raise ValueError(f"{flag} {text!r} names {repeated} twice; name each once")
    return text


def check_bounds(settings: EvalSettings, train: TrainOptions) -> None:
    """Seeds and budgets within what a run can mean."""
    for seed in settings.seeds:
        if seed > MAX_SEED:
            raise ValueError(f"--seeds: {seed} is above the largest seed, {MAX_SEED} (2**32 - 1)")
    if train.train_seed > MAX_SEED:
        raise ValueError(f"--train-seed {train.train_seed} is above the largest seed, {MAX_SEED} (2**32 - 1)")
    if train.train_steps is not None and train.train_steps > MAX_TRAIN_STEPS:
        raise ValueError(
            f"--train-steps {train.train_steps} is above {MAX_TRAIN_STEPS:.0e} env steps (about a month of "
            "training on one core); give a smaller budget"
        )


def available_memory() -> int:
    """Bytes this machine can still give (MemAvailable; the physical memory where that is unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**63


def bytes_per_task(env: str, settings: EvalSettings) -> int:
    """What one held-out task costs a run of ``env``: its rewards per seed and step, its task
    arrays and step state (sized from two sampled tasks)."""
    family = get_spec(env).make()
    rng = np.random.default_rng(0)
    tasks = family.sample_tasks(rng, 2)
    state = family.init_state(tasks, rng)
    arrays = sum(int(np.asarray(a).nbytes) for a in (*tasks.values(), *state.values())) // 2
    return COPIES * (8 * family.trial_length * (len(settings.seeds) + 1) + arrays)


def check_memory(envs: Sequence[str], settings: EvalSettings, available: int | None = None) -> None:
    """Refuse ``--eval-tasks`` whose arrays cannot fit, before allocating any."""
    available = available_memory() if available is None else available
    for env in envs:
        per_task = bytes_per_task(env, settings)
        need = per_task * settings.n_tasks
        if need > available:
            most = max(2, available // per_task)
            raise ValueError(
                f"--eval-tasks {settings.n_tasks} on {env} needs about {_size(need)} of memory, more than the "
                f"{_size(available)} available here; at most about {most} tasks fit"
            )


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def _learner(agent: str, env: str, settings: dict[str, Any]) -> Any | None:
    """The agent for ``env`` if it learns and plays it (None otherwise: the run will say why)."""
    try:
        built = make_agent(agent, get_spec(env).make(), **settings)
    except UnsupportedFamilyError:
        return None
    return built if getattr(built, "learns", False) and hasattr(built, "checkpoint_path") else None


def check_learners(
    agents: Sequence[str],
    envs: Sequence[str],
    train: TrainOptions,
    agent_settings: dict[str, dict[str, Any]] | None = None,
) -> list[str]:
    """Budgets below one update (named, with the minimum) and shipped checkpoints that are
    damaged or were trained with other settings are refused; returns one line per learner
    that trains, saying what its budget buys in its own unit."""
    notes: list[str] = []
    if train.checkpoint is not None:  # one file, checked by check_checkpoint_file
        return notes
    for agent in agents:
        for env in envs:
            learner = _learner(agent, env, (agent_settings or {}).get(agent, {}))
            if learner is None:
                continue
            train_env = train.train_env or learner.default_train_env(env, retrain=train.trains)
            if train.trains:
                notes.append(_budget_note(learner, agent, train_env, train))
            else:
                _check_shipped(learner, train_env, train.train_seed)
    return list(dict.fromkeys(notes))


def check_checkpoint_file(
    path: Path, agents: Sequence[str], envs: Sequence[str], train: TrainOptions, settings: dict
) -> None:
    """``--checkpoint``: one learning agent that reads files, no flag that would train or change
    the settings it was trained with, and a file that loads for every distribution of the run."""
    if len(agents) != 1:
        raise ValueError(f"--checkpoint plays one agent's file; --agent names {len(agents)}: {list(agents)}")
    factory_learns = getattr(get_agent_factory(agents[0]), "learns", False)
    if not factory_learns or not hasattr(get_agent_factory(agents[0]), "load_file"):
        raise ValueError(f"--checkpoint: agent {agents[0]!r} does not learn, so it plays no checkpoint")
    clashing = [flag for flag, given in (("--retrain", train.retrain), ("--train-steps", train.train_steps),
                                         ("--resume", train.resume), ("--save-checkpoint", train.save_checkpoint),
                                         ("--agent-config", bool(settings))) if given]  # fmt: skip
    if clashing:
        raise ValueError(f"--checkpoint plays a file as it was trained; drop {', '.join(clashing)}")
    if not path.is_file():
        raise ValueError(f"--checkpoint {path}: no such file")
    for env in envs:
        try:
            make_agent(agents[0], get_spec(env).make()).load_file(path)
        except (CheckpointError, UnsupportedFamilyError) as exc:
            raise ValueError(str(exc) if str(exc).startswith("--checkpoint") else f"--checkpoint {exc}") from None


def _budget_note(learner: Any, agent: str, train_env: str, train: TrainOptions) -> str:
    steps, unit = learner.budget_unit(get_spec(train_env).make())
    budget = train.train_steps or learner.default_budget()
    if budget and budget < steps:
        raise ValueError(
            f"--train-steps {budget} is less than one {unit} of {agent} on {train_env} ({steps} env steps); "
            f"give at least {steps}"
        )
    if not budget:
        return f"{agent} on {train_env}: trains with its own default budget"
    return f"{agent} on {train_env}: {budget} env steps = {budget // steps} x {unit} of {steps} env steps"


def _check_shipped(learner: Any, train_env: str, seed: int) -> None:
    path = learner.checkpoint_path(train_env, seed)
    if not path.is_file():
        return  # the run reports the missing checkpoint (a skip, with how to train one)
    try:
        record, _ = learner.read(path)
        learner.check_config(record["config"], path)
    except CheckpointError as exc:
        raise ValueError(str(exc)) from None
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: its record cannot be read ({type(exc).__name__}: {exc})") from None
