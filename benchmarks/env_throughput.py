"""Random-action steps per second of the batched Bernoulli bandit, against gymnasium loops.

Compares, in one run on one core:
  * metarl-bench's batched TrialEnv at batch sizes 1 .. 16384 (one numpy call per step);
  * the same family through a plain gymnasium single-env loop (gymnasium.make);
  * the same family through gymnasium.vector.SyncVectorEnv (16 copies).
Actions are drawn up front so that every contestant is timed on stepping alone.

    python benchmarks/env_throughput.py [--env bernoulli-k2-h100] [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import gymnasium as gym
import numpy as np

import metarl_bench
from metarl_bench.provenance import cpu_device

BATCH_SIZES = (1, 16, 256, 1024, 4096, 16384)


def _timed(step_block, steps_per_call: int, seconds: float) -> float:
    """Steps per second of repeated ``step_block()`` calls for about ``seconds``."""
    step_block()  # warm-up
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step_block()
        calls += 1
    return calls * steps_per_call / (time.perf_counter() - start)


def batched(env_name: str, batch: int, seconds: float) -> float:
    env = metarl_bench.make(env_name, num_trials=batch, seed=0)
    T = env.trial_length
    actions = np.random.default_rng(0).integers(0, env.num_actions, size=(T, batch))

    def trial():
        env.reset()
        for t in range(T):
            env.step(actions[t])

    return _timed(trial, T * batch, seconds)


def single_gym(env_name: str, seconds: float) -> float:
    env = gym.make(f"metarl_bench/{env_name}")
    env.reset(seed=0)
    T = env.unwrapped.family.trial_length
    actions = np.random.default_rng(0).integers(0, env.action_space.n, size=T)

    def trial():
        env.reset()
        for t in range(T):
            env.step(actions[t])

    return _timed(trial, T, seconds)


def sync_vector(env_name: str, num_envs: int, seconds: float) -> float:
    env = gym.make_vec(f"metarl_bench/{env_name}", num_envs=num_envs, vectorization_mode="sync")
    env.reset(seed=0)
    T = 100
    actions = np.random.default_rng(0).integers(0, env.single_action_space.n, size=(T, num_envs))

    def block():
        for t in range(T):
            env.step(actions[t])

    return _timed(block, T * num_envs, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="bernoulli-k2-h100")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the target says
    versions = f"numpy {np.__version__}; python {platform.python_version()}"
    print(f"# {args.env}, random actions, one core; {cpu_device()}; {versions}")
    single = single_gym(args.env, args.seconds)
    rows = [("gymnasium.make single env", 1, single)]
    rows.append(("gymnasium SyncVectorEnv", 16, sync_vector(args.env, 16, args.seconds)))
    rows += [("metarl-bench batched TrialEnv", b, batched(args.env, b, args.seconds)) for b in BATCH_SIZES]
    print(f"{'implementation':32s} {'batch':>6s} {'steps/s':>14s} {'vs single env':>14s}")
    for name, batch, sps in rows:
        print(f"{name:32s} {batch:6d} {sps:14,.0f} {sps / single:13.1f}x")


if __name__ == "__main__":
    main()
