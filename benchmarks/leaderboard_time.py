"""Time to produce the full leaderboard of the classical agents and the Bayes-optimal agent.

Runs the suite's own command (``python -m metarl_bench.run``) on the ``bandits`` suite,
1000 held-out tasks x 3 seeds, into a temporary results folder, and reports its wall time.
Beside it, the alternative a user would otherwise write: the same Thompson-sampling
evaluation driven through one gymnasium env per trial (``gymnasium.make``), timed on a
slice of the tasks and extrapolated.

    python benchmarks/leaderboard_time.py [--agents ...] [--env bandits]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import gymnasium as gym
import numpy as np

import metarl_bench
from metarl_bench.records.provenance import cpu_device

CLASSICAL = "random,greedy,epsilon-greedy,ucb1,thompson,gittins,oracle,bayes"


def suite_command(agents: str, env: str) -> float:
    with tempfile.TemporaryDirectory() as results:
        cmd = [sys.executable, "-m", "metarl_bench.run", "--agent", agents, "--env", env, "--results", results]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start


def gymnasium_loop(env_name: str, n_tasks: int) -> float:
    """Seconds per trial of Thompson sampling through single gymnasium envs."""
    env = gym.make(f"metarl_bench/{env_name}")
    family = env.unwrapped.family
    agent = metarl_bench.make_agent("thompson", family)
    start = time.perf_counter()
    for i in range(n_tasks):
        obs, _ = env.reset(seed=i)
        memory = agent.reset(1, np.random.default_rng(i))
        done = False
        while not done:
            batch = {k: v[None] for k, v in obs.items()}
            action, memory = agent.act(batch, memory)
            obs, _, done, _, _ = env.step(int(action[0]))
    return (time.perf_counter() - start) / n_tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", default=CLASSICAL)
    parser.add_argument("--env", default="bandits")
    args = parser.parse_args()
    envs = metarl_bench.resolve_envs(args.env)
    agents = [a for a in args.agents.split(",") if a in metarl_bench.list_agents()]
    print(f"# {cpu_device()}; {os.cpu_count()} cores visible; 1000 tasks x 3 seeds per (agent, distribution)")
    wall = suite_command(",".join(agents), args.env)
    print(f"python -m metarl_bench.run, {len(agents)} agents x {len(envs)} distributions: {wall:.1f} s")
    per_trial = gymnasium_loop(envs[0], 20)
    runs = len(agents) * len(envs) * 1000 * 3
    print(
        f"one gymnasium env per trial (Thompson on {envs[0]}): {per_trial * 1e3:.1f} ms/trial, "
        f"so about {per_trial * runs:.0f} s for the same {runs} trials"
    )


if __name__ == "__main__":
    main()
