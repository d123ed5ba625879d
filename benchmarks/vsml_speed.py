"""ES throughput of the VSML agent (agent-steps per second) and its time to the quality target.

One ES generation plays ``population x tasks`` trials as one batched computation: the
VSML grid in torch, the trials in numpy (``TrialEnv``) or on the torch device
(``TorchTrialEnv``, the path a GPU runs: nothing returns to the host per step).  This
times whole generations (noise, rollout, rank shaping, Adam step; the first is a
warm-up) for each environment backend on the CPU with one torch thread on one core, and
on CUDA when it is available; an agent-step is one action of one trial of one member.

``--time-to-score`` also meta-trains with the ``gpu`` preset (``VSMLAgent(family,
preset="gpu")``) on ``bernoulli-k2-h100`` on every CUDA device (the target: score >= 95
within 15 s on one H100/H200) and reports the training wall time and the score of the
final parameters on 10,000 fresh tasks; ``--cpu-score`` does the same on the CPU (minutes).

    python benchmarks/vsml_speed.py [--arms 2,10] [--horizon 20] [--generations 2] [--quick]
    python benchmarks/vsml_speed.py --time-to-score [--cpu-score] [--curve 10]

``--horizon`` only sets how long each timed generation is (on the CPU, throughput per
step does not depend on it); the sizes only a GPU is timed at play full 100-step trials.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

import metarl_bench
from metarl_bench.baselines.vsml.agent import VSMLAgent, _references, _score
from metarl_bench.baselines.vsml.config import PRESETS
from metarl_bench.baselines.vsml.rollout import play
from metarl_bench.records.provenance import cpu_device

POPULATIONS = (16, 64, 256)
TASKS = (16, 64, 256)
QUICK = ((64, 64), (256, 64))
CUDA_EXTRA = ((1024, 64), (1024, 256), (4096, 256))  # sizes only a GPU makes worth timing (full trials)
SCORE_ENV = "bernoulli-k2-h100"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def generation_rate(
    arms: int, horizon: int, population: int, tasks: int, generations: int, device: str, env_backend: str
) -> float:
    """Agent-steps per second of ``generations`` ES generations (after one warm-up)."""
    family = metarl_bench.make_family(f"bernoulli-k{arms}-h100", horizon=horizon)
    agent = VSMLAgent(family, population=population, tasks_per_generation=tasks)
    steps = population * tasks * horizon
    stamps: list[float] = []

    def stamp(_agent: VSMLAgent, _stats: dict) -> None:
        _sync(device)
        stamps.append(time.perf_counter())

    # The first generation is the warm-up; set-up and the final evaluation are not timed.
    budget = steps * (generations + 1)
    options = {"progress": False, "device": device, "eval_tasks": 2, "env_backend": env_backend}
    agent.fit(family, budget, seed=0, callback=stamp, **options)
    return steps * generations / (stamps[-1] - stamps[0])


def time_to_score(device: str, curve: int = 0) -> tuple[float, float, int]:
    """(training wall seconds, score on 10,000 fresh tasks, generations) of the ``gpu`` preset.

    ``curve > 0`` also prints the score of the mean parameters on 4,000 fixed tasks every
    ``curve`` generations (their evaluation then counts in the wall time).
    """
    family = metarl_bench.make_family(SCORE_ENV)
    agent = VSMLAgent(family, preset="gpu")
    refs = _references(family)
    tasks = family.sample_tasks(np.random.default_rng(123), 4000)

    def report(a: VSMLAgent, stats: dict) -> None:
        if curve and stats["generation"] % curve == 0:
            ret = play(a.net, a.theta[None], family, tasks, np.random.default_rng(7), device=device).mean()
            print(f"#   generation {stats['generation']:4d}: score {_score(float(ret), refs):.1f}", flush=True)

    _sync(device)
    options = {"progress": False, "device": device, "eval_tasks": 10_000, "callback": report}
    stats = agent.fit(family, agent.cfg.train_steps, seed=0, **options)
    return stats["train_wall_s"], stats["train_score"], stats["generations"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arms", default="2,10", help="comma list of arm counts")
    parser.add_argument("--horizon", type=int, default=20, help="steps per timed trial")
    parser.add_argument("--generations", type=int, default=2, help="timed generations per cell")
    parser.add_argument("--quick", action="store_true", help=f"only population x tasks in {QUICK} on the CPU")
    parser.add_argument("--time-to-score", action="store_true", help="train the gpu preset on every CUDA device")
    parser.add_argument("--cpu-score", action="store_true", help="with --time-to-score: on the CPU too (minutes)")
    parser.add_argument("--curve", type=int, default=0, help="with --time-to-score: the score every N generations")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    cuda = torch.cuda.is_available()
    devices = [("cpu", "numpy", cpu_device(threads=1)), ("cpu", "torch", cpu_device(threads=1))]
    if cuda:
        devices.append(("cuda", "torch", f"cuda:{torch.cuda.get_device_name()}"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# VSML ES throughput (agent-steps/s); torch {torch.__version__}; numpy {np.__version__}; ", end="")
    print(f"python {platform.python_version()}; load average {load:.2f}")
    print("# default model (1 layer, hidden 16, messages 8, 2 micro-ticks); env: where the trials are stepped")
    if not cuda:
        print("# no CUDA device here: the GPU rows (and the gpu preset's time to score) are not measured")
    header = f"{'device':40s} {'env':>5s} {'arms':>4s} {'population':>10s} {'tasks':>6s} {'trials':>7s}"
    print(f"{header} {'agent-steps/s':>14s}")
    for device, backend, label in devices:
        sizes = [(p, n) for p in POPULATIONS for n in TASKS]
        if args.quick:
            sizes = list(QUICK)
        if device == "cuda":
            sizes += list(CUDA_EXTRA)
        for arms in (int(a) for a in args.arms.split(",")):
            for population, tasks in sizes:
                # A GPU's large populations play whole trials: per-generation host work (ES noise,
                # shared numbers) would otherwise weigh on a short one.
                horizon = 100 if (population, tasks) in CUDA_EXTRA else args.horizon
                rate = generation_rate(arms, horizon, population, tasks, args.generations, device, backend)
                trials = population * tasks
                print(f"{label:40s} {backend:>5s} {arms:4d} {population:10d} {tasks:6d} {trials:7d} {rate:14,.0f}")
    if args.time_to_score:
        preset = ", ".join(f"{k}={v}" for k, v in PRESETS["gpu"].items())
        print(f"# time to score on {SCORE_ENV}, preset gpu ({preset}); score of the final parameters, 10,000 tasks")
        targets = [("cuda", f"cuda:{torch.cuda.get_device_name()}")] if cuda else []
        if args.cpu_score:
            targets.append(("cpu", cpu_device(threads=1)))
        if not targets:
            print("# no CUDA device: time to score not measured (--cpu-score measures it on the CPU)")
        for device, label in targets:
            wall, score, generations = time_to_score(device, args.curve)
            print(f"{label:40s} {generations} generations in {wall:.1f} s, score {score:.1f}")


if __name__ == "__main__":
    main()
