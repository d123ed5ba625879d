"""ES throughput of the VSML agent: agent-steps per second against population x tasks.

One ES generation plays ``population x tasks`` trials as one batched computation (one
``TrialEnv`` in numpy, the VSML grid in torch).  This times whole generations (noise,
rollout, rank shaping, Adam step; the first is a warm-up) on the CPU with one torch thread and one core, and on
CUDA when it is available; an agent-step is one action of one trial of one member.

    python benchmarks/vsml_speed.py [--arms 2,10] [--horizon 20] [--generations 2]

The horizon only sets how long each timed generation is: throughput per step does not
depend on it.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

import metarl_bench
from metarl_bench.baselines.vsml import VSMLAgent
from metarl_bench.provenance import cpu_device

POPULATIONS = (16, 64, 256)
TASKS = (16, 64, 256)
CUDA_EXTRA = ((1024, 64), (1024, 256))  # sizes only a GPU makes worth timing


def generation_rate(arms: int, horizon: int, population: int, tasks: int, generations: int, device: str) -> float:
    """Agent-steps per second of ``generations`` ES generations (after one warm-up)."""
    family = metarl_bench.make_family(f"bernoulli-k{arms}-h100", horizon=horizon)
    agent = VSMLAgent(family, population=population, tasks_per_generation=tasks)
    steps = population * tasks * horizon
    stamps: list[float] = []

    def stamp(_agent: VSMLAgent, _stats: dict) -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    # The first generation is the warm-up; set-up and the final evaluation are not timed.
    agent.fit(family, steps * (generations + 1), seed=0, progress=False, device=device, eval_tasks=2, callback=stamp)
    return steps * generations / (stamps[-1] - stamps[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arms", default="2,10", help="comma list of arm counts")
    parser.add_argument("--horizon", type=int, default=20, help="steps per timed trial")
    parser.add_argument("--generations", type=int, default=2, help="timed generations per cell")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    devices = [("cpu", cpu_device(threads=1))]
    if torch.cuda.is_available():
        devices.append(("cuda", f"cuda:{torch.cuda.get_device_name()}"))
    print(f"# VSML ES throughput (agent-steps/s); torch {torch.__version__}; numpy {np.__version__}; ", end="")
    print(f"python {platform.python_version()}; default model (1 layer, hidden 16, messages 8, 2 micro-ticks)")
    print(f"{'device':48s} {'arms':>4s} {'population':>10s} {'tasks':>6s} {'trials':>7s} {'agent-steps/s':>14s}")
    for device, label in devices:
        sizes = [(p, n) for p in POPULATIONS for n in TASKS]
        if device == "cuda":
            sizes += list(CUDA_EXTRA)
        for arms in (int(a) for a in args.arms.split(",")):
            for population, tasks in sizes:
                rate = generation_rate(arms, args.horizon, population, tasks, args.generations, device)
                print(f"{label:48s} {arms:4d} {population:10d} {tasks:6d} {population * tasks:7d} {rate:14,.0f}")


if __name__ == "__main__":
    main()
