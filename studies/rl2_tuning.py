"""RL² hyper-parameter runs on training tasks only: a learning curve against wall time and steps.

Each run trains the ``rl2`` agent with the given settings for ``--steps`` env steps (or
until ``--minutes`` of wall time), records the training curve (mean return of the last
100 training trials, with the wall time of each point) and then plays the trained policy
on ``--validation-tasks`` fresh tasks of the *training* stream (seed 10_000 + seed: tasks
no training step saw, and never the held-out evaluation tasks).  One CSV row per run is
appended to ``OUT/rl2_tuning.csv`` and the curve written to ``OUT/curves/<label>.csv``.

    python studies/rl2_tuning.py --env bernoulli-k10-h100 --steps 30000000 \
        --set gamma=0.99 --set gae_lambda=0.3 --label k10-h100-g99 --out results/tuning/rl2

One torch thread (``--threads``) unless told otherwise; the row records the machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

import metarl_bench
from metarl_bench.baselines.rl2.agent import RL2Agent, RL2Config
from metarl_bench.core.seeding import train_rng
from metarl_bench.core.trial import TrialEnv
from metarl_bench.records.provenance import cpu_name, git_commit

FIELDS = (
    "label", "env", "seed", "config", "steps", "wall_s", "fps", "final_train_return",
    "validation_return", "validation_ci_half", "validation_tasks", "threads", "machine", "commit", "command",
)  # fmt: skip


class WallClock(BaseCallback):
    """Stops training after ``seconds``; stamps every curve point with its wall time."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.start, self.stamps = seconds, time.perf_counter(), []

    def _on_step(self) -> bool:
        return time.perf_counter() - self.start < self.seconds

    def _on_rollout_end(self) -> None:
        self.stamps.append((int(self.model.num_timesteps), time.perf_counter() - self.start))


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def validation_return(agent: RL2Agent, env: str, seed: int, n_tasks: int) -> tuple[float, float]:
    """Mean trial return (and 95% normal half-width) on fresh training-stream tasks."""
    family = agent.family
    trials = TrialEnv(family, num_trials=n_tasks, seed=train_rng(env, 10_000 + seed))
    obs = trials.reset()
    memory = agent.reset(n_tasks, np.random.default_rng(seed))
    done = False
    while not done:
        actions, memory = agent.act(obs, memory)
        obs, _, done, _ = trials.step(actions)
    returns = trials.episode_returns.sum(axis=1)
    return float(returns.mean()), float(1.96 * returns.std(ddof=1) / np.sqrt(n_tasks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--steps", type=int, required=True, help="training budget in env steps (lr decays over it)")
    parser.add_argument("--minutes", type=float, default=60.0, help="stop early after this wall time")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an RL2Config field")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", required=True)
    parser.add_argument("--validation-tasks", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fields = set(RL2Config.__dataclass_fields__)
    config = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            parser.error(f"--set {item!r}: expected KEY=VALUE with KEY one of {sorted(fields)}")
        config[key] = parse_value(value)
    family = metarl_bench.make_family(args.env)
    agent = RL2Agent(family, **config)
    clock = WallClock(args.minutes * 60)
    start = time.perf_counter()
    agent.fit(family, args.steps, seed=args.seed, train_env=args.env, callbacks=[clock], progress=False)
    wall = time.perf_counter() - start
    val, half = validation_return(agent, args.env, args.seed, args.validation_tasks)
    stamps = dict(clock.stamps)
    curves = args.out / "curves"
    curves.mkdir(parents=True, exist_ok=True)
    with open(curves / f"{args.label}.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["steps", "wall_s", "trial_return"])
        for point in agent.curve:
            writer.writerow([point["steps"], f"{stamps.get(point['steps'], float('nan')):.1f}", point["trial_return"]])
    row = {
        "label": args.label,
        "env": args.env,
        "seed": args.seed,
        "config": json.dumps(config, sort_keys=True),
        "steps": agent.train_steps,
        "wall_s": f"{wall:.0f}",
        "fps": f"{agent.train_steps / wall:.0f}",
        "final_train_return": f"{agent.curve[-1]['trial_return']:.3f}" if agent.curve else "",
        "validation_return": f"{val:.3f}",
        "validation_ci_half": f"{half:.3f}",
        "validation_tasks": args.validation_tasks,
        "threads": args.threads,
        "machine": cpu_name(),
        "commit": git_commit(),
        "command": " ".join(["python", *sys.argv]),
    }
    table = args.out / "rl2_tuning.csv"
    new = not table.exists()
    with open(table, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
