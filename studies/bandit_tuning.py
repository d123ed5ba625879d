"""Tune UCB1's c and epsilon-greedy's epsilon per rl2-bandits distribution, on training tasks.

The RL² paper (sec. 3.1; its evaluation code) grid-searched c and epsilon in
{0, 0.1, ..., 1.0} for each (k, n) and reported the best mean over 1000 bandits.  We search
the same grids with the paper's forms (UCB1 and greedy start every arm at one success and
one failure), but on *training* tasks: 1000 tasks of each distribution's train stream
(``metarl_bench.core.seeding.stream(TRAIN, name, 0, k)``, separate keys for tasks, noise and
the agents' randomness), never the held-out evaluation tasks or noise.  Prints every grid;
with ``--write`` it writes the choices to the data file the ``-tuned`` agents read
(``baselines/tuned/bandit_constants.csv``, ``metarl_bench.baselines.classical.tuned_value``):

    python studies/bandit_tuning.py --tasks 1000 --env rl2-bandits --write baselines/tuned/bandit_constants.csv
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from mdp_tuning import TASKS, train_return  # the same training-task rollout (benchmarks/ is on sys.path)

import metarl_bench
from metarl_bench.baselines.classical import TUNED_COLUMNS, TUNING_GRID
from metarl_bench.core.seeding import TRAIN, stream

GRIDS = {"ucb1": ("c", {"pseudo_counts": True}), "epsilon-greedy": ("epsilon", {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--env", default="rl2-bandits", help="suite or comma list of Bernoulli distributions")
    parser.add_argument("--write", type=Path, help="the data file of the choices (CSV), replaced whole")
    args = parser.parse_args()
    command = shlex.join(["python", "studies/bandit_tuning.py", *sys.argv[1:]])
    rows = []
    for name in metarl_bench.resolve_envs(args.env):
        family = metarl_bench.make_family(name)
        tasks = family.sample_tasks(stream(TRAIN, name, 0, TASKS), args.tasks)
        key = (family.num_actions, family.trial_length)
        for agent, (param, fixed) in GRIDS.items():
            start = time.perf_counter()
            results = [
                train_return(metarl_bench.make_agent(agent, family, **{param: x}, **fixed), name, tasks)
                for x in TUNING_GRID
            ]
            i = int(np.argmax(results))
            rows.append({"agent": agent, "arms": key[0], "pulls": key[1], "param": param, "value": TUNING_GRID[i],
                         "train_return": round(results[i], 4), "tasks": args.tasks, "command": command})  # fmt: skip
            grid_text = " ".join(f"{x:g}:{r:.2f}" for x, r in zip(TUNING_GRID, results, strict=True))
            print(f"{name} {agent}: best {param}={TUNING_GRID[i]:g} -> {results[i]:.2f} "
                  f"({time.perf_counter() - start:.0f} s)\n  {grid_text}", flush=True)  # fmt: skip
    table = pd.DataFrame(rows, columns=TUNED_COLUMNS)
    print(table.drop(columns="command").to_string(index=False))
    if args.write:
        table.to_csv(args.write, index=False)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
