"""Tune UCB1's c and epsilon-greedy's epsilon per rl2-bandits distribution, on training tasks.

The RL² paper (sec. 3.1; its evaluation code) grid-searched c and epsilon in
{0, 0.1, ..., 1.0} for each (k, n) and reported the best mean over 1000 bandits.  We search
the same grids with the paper's forms (UCB1 and greedy start every arm at one success and
one failure), but on *training* tasks: 1000 tasks of each distribution's train stream
(``metarl_bench.core.seeding.stream(TRAIN, name, 0, k)``, separate keys for tasks, noise and
the agents' randomness), never the held-out evaluation tasks or noise.  Prints every grid
and the table ``TUNED`` of ``baselines/classical.py``.

    python studies/bandit_tuning.py [--tasks 1000] [--env rl2-bandits]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from mdp_tuning import TASKS, train_return  # the same training-task rollout (benchmarks/ is on sys.path)

import metarl_bench
from metarl_bench.baselines.classical import TUNING_GRID
from metarl_bench.core.seeding import TRAIN, stream

GRIDS = {"ucb1": ("c", {"pseudo_counts": True}), "epsilon-greedy": ("epsilon", {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--env", default="rl2-bandits", help="suite or comma list of Bernoulli distributions")
    args = parser.parse_args()
    tuned: dict[str, dict[tuple[int, int], float]] = {a: {} for a in GRIDS}
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
            tuned[agent][key] = TUNING_GRID[i]
            grid_text = " ".join(f"{x:g}:{r:.2f}" for x, r in zip(TUNING_GRID, results, strict=True))
            print(f"{name} {agent}: best {param}={TUNING_GRID[i]:g} -> {results[i]:.2f} "
                  f"({time.perf_counter() - start:.0f} s)\n  {grid_text}", flush=True)  # fmt: skip
    print("\nTUNED =", tuned)


if __name__ == "__main__":
    main()
