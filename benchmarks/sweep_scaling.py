"""Sweep throughput: the local backend against Ray with 1 and 2 workers (CPUs).

Each configuration runs the suite's own command (``metarl_bench.running.run.main``) in a fresh
Python process, twice: the first (cold) sweep pays for imports, the per-process cache of
reference returns and, on Ray, starting the worker processes; the second (warm) sweep, into
another results folder, shows the steady state.  Ray's own start-up (``ray.init``) is timed
apart from both.

    python benchmarks/sweep_scaling.py [--agents random,greedy,...] [--env bandits]
                                       [--eval-tasks 1000] [--seeds 0,1,2] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from metarl_bench.records.provenance import cpu_device

CLASSICAL = "random,greedy,epsilon-greedy,ucb1,thompson"

# Runs in the child process: argv = [workers, json file, *run arguments]; workers 0 = local backend.
CHILD = """
import contextlib, io, json, sys, time
import metarl_bench.running.run
workers, out, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
start = time.perf_counter()
if workers:
    import ray
    ray.init(num_cpus=workers, include_dashboard=False, logging_level="WARNING")
    argv += ["--backend", "ray"]
times, codes = [ready := time.perf_counter()], []
for i in range(2):
    with contextlib.redirect_stdout(io.StringIO()):
        codes.append(metarl_bench.running.run.main(argv + ["--results", f"{out}.results{i}"]))
    times.append(time.perf_counter())
json.dump({"code": max(codes), "startup_s": ready - start, "cold_s": times[1] - times[0],
           "warm_s": times[2] - times[1]}, open(out, "w"))
"""


def measure(workers: int, run_args: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "timing.json")
        cmd = [sys.executable, "-c", CHILD, str(workers), out, *run_args]
        subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
        with open(out) as f:
            result = json.load(f)
    if result["code"] != 0:
        raise RuntimeError(f"the sweep exited with {result['code']}")
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agents", default=CLASSICAL)
    p.add_argument("--env", default="bandits")
    p.add_argument("--eval-tasks", default="1000")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--workers", default="1,2", help="Ray CPU counts to try (comma list)")
    args = p.parse_args()

    from metarl_bench.core.registry import resolve_agents, resolve_envs

    runs = len(resolve_agents(args.agents)) * len(resolve_envs(args.env))
    run_args = ["--agent", args.agents, "--env", args.env, "--eval-tasks", args.eval_tasks, "--seeds", args.seeds]
    print(f"sweep: {runs} runs ({args.agents} x {args.env}), {args.eval_tasks} tasks x seeds {args.seeds}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {cpu_device()}, {os.cpu_count()} CPUs visible, load average {load} (other jobs compete)\n")
    print(f"{'backend':>8} {'workers':>7} {'ray.init s':>10} {'cold s':>7} {'runs/min':>8} "
          f"{'warm s':>7} {'runs/min':>8} {'warm speed-up':>13}")  # fmt: skip
    base = None
    for workers in [0, *(int(w) for w in args.workers.split(","))]:
        r = measure(workers, run_args)
        base = base or r["warm_s"]
        print(
            f"{'ray' if workers else 'local':>8} {workers or 1:>7} {r['startup_s'] if workers else 0:>10.1f} "
            f"{r['cold_s']:>7.1f} {60 * runs / r['cold_s']:>8.0f} {r['warm_s']:>7.1f} {60 * runs / r['warm_s']:>8.0f} "
            f"{base / r['warm_s']:>12.2f}x"
        )


if __name__ == "__main__":
    main()
