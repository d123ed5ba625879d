"""RL² training speed: our adapter and configuration next to plain sb3-contrib RecurrentPPO.

Both train ``RecurrentPPO`` on ``bernoulli-k2-h100`` on the same machine, in the same run:

- ours: the ``rl2`` agent (``baselines/rl2/agent.py``): one ``TrialVecEnv`` steps all trials with
  one numpy call, flat observations, ``MlpLstmPolicy``, the default ``RL2Config``;
- plain: what a user would write without metarl-bench: ``RecurrentPPO("MultiInputLstmPolicy",
  DummyVecEnv([gym.make("metarl_bench/bernoulli-k2-h100")] * n))`` with sb3-contrib's
  default hyper-parameters.

Frames per second = environment steps consumed by ``learn`` / wall time (rollouts and
gradient updates together), after a short warm-up.  CPU runs use ``--threads`` torch
threads (default 1); a CUDA run is added when a GPU is available.

    python benchmarks/rl2_speed.py [--steps 200000] [--plain-steps 10000] [--plain-envs 8]
"""

from __future__ import annotations

import argparse
import platform
import time

import gymnasium as gym
import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.vec_env import DummyVecEnv

import metarl_bench
from metarl_bench.baselines.rl2.agent import RL2Agent

ENV = "bernoulli-k2-h100"


def ours_fps(steps: int, device: str) -> float:
    family = metarl_bench.make_family(ENV)
    RL2Agent(family).fit(family, 10_000, seed=1, progress=False, device=device)  # warm-up (imports, kernels)
    agent = RL2Agent(family)
    start = time.perf_counter()
    agent.fit(family, steps, seed=0, progress=False, device=device)
    return agent.train_steps / (time.perf_counter() - start)


def plain_fps(steps: int, n_envs: int, device: str) -> float:
    venv = DummyVecEnv([lambda: gym.make(f"metarl_bench/{ENV}") for _ in range(n_envs)])
    model = RecurrentPPO("MultiInputLstmPolicy", venv, seed=0, device=device, verbose=0)
    model.learn(total_timesteps=model.n_steps * n_envs)  # warm-up: one rollout and update
    done = model.num_timesteps
    start = time.perf_counter()
    model.learn(total_timesteps=steps, reset_num_timesteps=False)
    return (model.num_timesteps - done) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200_000, help="env steps timed for ours")
    parser.add_argument("--plain-steps", type=int, default=10_000, help="env steps timed for plain sb3-contrib")
    parser.add_argument("--plain-envs", type=int, default=8, help="single envs in the plain DummyVecEnv")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} CPU thread(s)")
    print(f"{'device':<8}{'setup':<58}{'fps':>10}{'speed-up':>10}")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        plain = plain_fps(args.plain_steps, args.plain_envs, device)
        ours = ours_fps(args.steps, device)
        label = f"plain RecurrentPPO defaults, DummyVecEnv x{args.plain_envs} gym envs"
        print(f"{device:<8}{label:<58}{plain:>10.0f}{1.0:>10.1f}")
        label = "metarl-bench rl2 (TrialVecEnv, RL2Config defaults)"
        print(f"{device:<8}{label:<58}{ours:>10.0f}{ours / plain:>10.1f}")


if __name__ == "__main__":
    main()
