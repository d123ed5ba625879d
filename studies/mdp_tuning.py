"""Tune the tabular-MDP agents' constants and pick the family's lower-bound policy, on training tasks.

The RL² paper grid-searched the constant of each method per n ("For each method with
hyperparameters, we maximize the score with a separate grid search for each of the
experimental settings", sec. 3.1; its evaluation script searches 21 log-spaced scalings
in [1e-4, 1] for UCRL2 and BEB and epsilon in {0.1, ..., 1.0}).  We search the same
grids, but on *training* tasks: 1000 tasks of the train stream of each distribution
(``metarl_bench.core.seeding.stream(TRAIN, name, seed, k)``, with separate keys for tasks,
noise and the agents' randomness), never the held-out evaluation tasks or noise.  Then
every candidate policy is measured on the same training tasks and the best one becomes
the distribution's lower-bound Bayes reference.

Prints every grid, the chosen constants and policies, and the first-walk upper bound with
its Monte Carlo error; with ``--write`` it replaces the data file that the ``-tuned`` agents
and the family's reference read (``baselines/tuned/mdp_constants.csv``,
``metarl_bench.envs.tabular_mdp.reference.tuned_table``), one line per choice with its
training return, the number of tasks and this command:

    python studies/mdp_tuning.py --tasks 1000 --episodes 10,25,50,75,100 --write baselines/tuned/mdp_constants.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import metarl_bench
from metarl_bench.baselines import mdp_agents as mdp_policies
from metarl_bench.core.seeding import TRAIN, stream
from metarl_bench.core.trial import TrialEnv
from metarl_bench.envs.tabular_mdp import reference as mdp_reference
from metarl_bench.envs.tabular_mdp.reference import REFERENCE_AGENT, REFERENCE_PARAM, TUNED_COLUMNS

TASKS, NOISE, AGENT = 1, 2, 3  # extra spawn keys of the train stream
# agent: (constant, grid, the agent that plays the tuned value, if it is one of its own)
GRIDS = {
    "ucrl2": ("scaling", mdp_policies.SCALING_GRID, "ucrl2-tuned"),
    "beb": ("scaling", mdp_policies.SCALING_GRID, "beb-tuned"),
    "mdp-epsilon-greedy": ("epsilon", mdp_policies.EPSILON_GRID, None),  # best at the default 0.1
}
UNTUNED = ("psrl", "mdp-greedy", "mdp-epsilon-greedy", "ucrl2", "beb")


def train_return(agent, name: str, tasks, seed: int = 0) -> float:
    """Mean trial return of ``agent`` on the training ``tasks`` (training noise and agent streams)."""
    family = agent.family
    env = TrialEnv(family, num_trials=len(next(iter(tasks.values()))))
    obs = env.reset(seed=stream(TRAIN, name, seed, NOISE), tasks=tasks)
    memory = agent.reset(env.num_trials, rng=stream(TRAIN, name, seed, AGENT))
    total = np.zeros(env.num_trials)
    for _ in range(family.trial_length):
        actions, memory = agent.act(obs, memory)
        obs, rewards, _, _ = env.step(actions)
        total += rewards
    return float(total.mean())


def write_table(rows: list[dict[str, Any]], path: Path) -> None:
    """Replace ``path`` by ``rows`` (dicts keyed by ``TUNED_COLUMNS``), atomically: a temporary file
    in the same folder, checked with the agents' own reader, then renamed over ``path``, so a
    reader sees the old file or the new one and never a half-written or unreadable one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # not *.csv: never shipped
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=TUNED_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make the shipped file private
        mdp_reference.parse_tuned(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--episodes", default="10,25,50,75,100")
    parser.add_argument("--write", type=Path, help="the data file of the choices (CSV), replaced whole")
    args = parser.parse_args()
    command = shlex.join(["python", "studies/mdp_tuning.py", *sys.argv[1:]])
    tuned: dict[str, dict[int, float]] = {a: {} for a in GRIDS}
    best: dict[int, str] = {}
    rows: list[dict[str, Any]] = []
    for n in (int(x) for x in args.episodes.split(",")):
        name = f"tabular-mdp-s10-a5-n{n}"
        family = metarl_bench.make_family(name)
        tasks = family.sample_tasks(stream(TRAIN, name, 0, TASKS), args.tasks)
        scores: dict[str, float] = {}
        for agent, (param, grid, tuned_agent) in GRIDS.items():
            start = time.perf_counter()
            results = [train_return(metarl_bench.make_agent(agent, family, **{param: x}), name, tasks) for x in grid]
            i = int(np.argmax(results))
            tuned[agent][n] = grid[i]
            rows.append({"agent": agent, "episodes": n, "param": param, "value": f"{grid[i]:.6g}",
                         "train_return": round(results[i], 4), "tasks": args.tasks, "command": command})  # fmt: skip
            if tuned_agent:
                scores[tuned_agent] = results[i]
            grid_text = " ".join(f"{x:.3g}:{r:.1f}" for x, r in zip(grid, results, strict=True))
            print(f"n={n} {agent}: best {param}={grid[i]:.4g} -> {results[i]:.1f} "
                  f"({time.perf_counter() - start:.0f} s)\n  {grid_text}", flush=True)  # fmt: skip
        for agent in UNTUNED:
            scores[agent] = train_return(metarl_bench.make_agent(agent, family), name, tasks)
        best[n] = max(scores, key=scores.get)
        rows.append({"agent": REFERENCE_AGENT, "episodes": n, "param": REFERENCE_PARAM, "value": best[n],
                     "train_return": round(scores[best[n]], 4), "tasks": args.tasks, "command": command})  # fmt: skip
        print(f"n={n} training-task returns: " + ", ".join(f"{a} {r:.1f}" for a, r in scores.items()))
        print(f"n={n} best policy: {best[n]}", flush=True)
        bound = mdp_reference.relaxed_upper_return(family, tasks)
        oracle = family.oracle_return(tasks)
        print(f"n={n} first-walk upper bound {bound.mean():.2f} +- {bound.std() / np.sqrt(len(bound)):.2f} "
              f"(oracle {oracle.mean():.2f}, paired gap {(oracle - bound).mean():.3f})", flush=True)  # fmt: skip
    print("\nTUNED =", {a: {n: float(f"{x:.6g}") for n, x in v.items()} for a, v in tuned.items()})
    print("BEST_POLICY =", best)
    if args.write:
        write_table(rows, args.write)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
