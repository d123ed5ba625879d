"""Gridworld speed: batched steps per second against a gymnasium loop, and the planners' cost.

Part 1 times random-action steps of each gridworld family, on one core:
  * metarl-bench's batched TrialEnv at batch sizes 1 .. 65536 (one numpy call per step,
    observations included);
  * the same family through a plain gymnasium single-env loop
    (``gymnasium.make("metarl_bench/gridnavi-5x5")``).
Actions are drawn up front so that only stepping is timed.

Part 2 solves each family's Bayes-optimal reference in a fresh subprocess with an empty
plan cache (so nothing is loaded from disk) and reports the value, the number of belief
states, the solve time and the child's peak resident memory (``ru_maxrss``, interpreter
and numba included).  numba's compiled kernels are cached on disk by numba; the first run
after a change of ``envs/gridworlds/bayes.py`` adds their compilation (a few seconds).

    python benchmarks/gridworld_throughput.py [--seconds 1.0] [--skip-planners]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
from env_throughput import batched, single_gym  # the same timing as the bandits (benchmarks/ is on sys.path)

from metarl_bench.records.provenance import cpu_device

FAMILIES = ("gridnavi-5x5", "darkroom-9x9", "heart-trap-5x5")
BATCH_SIZES = (1, 256, 4096, 16384, 65536)

# Run in a child process: solve one family's reference with an empty cache, print JSON.
CHILD = r"""
import json, resource, sys, time
import numpy as np
import metarl_bench
from metarl_bench.envs.gridworlds import bayes as bayes_grid
from metarl_bench.envs.gridworlds.family import GoalGrid, HeartTrap
name = sys.argv[1]
fam = metarl_bench.make_family(name)
start = time.perf_counter()
out = {"family": name}
if isinstance(fam, HeartTrap):
    plan = bayes_grid.solve_heart_trap(fam)
    out.update(method="exact", value=plan.value, states=plan.num_states)
elif bayes_grid.goal_tractable(fam):
    tiny = bayes_grid.GoalProblem.of(GoalGrid(size=3, horizon=2, episodes=2, goal_margin=1))
    bayes_grid.solve_goal_search(tiny)  # compile (or load) numba's kernels outside the timing
    start = time.perf_counter()
    plan = bayes_grid.goal_plan(bayes_grid.GoalProblem.of(fam))
    out.update(method="exact", value=plan.value, states=plan.num_states, largest_layer=plan.stats["largest_layer"])
else:
    value, _ = bayes_grid._beam(bayes_grid.GoalProblem.of(fam))
    beam_s = time.perf_counter() - start
    upper = bayes_grid.assignment_upper_bound(fam)
    out.update(method="lower-bound:beam-plan", value=value, upper_bound=upper, beam_s=beam_s)
out["seconds"] = time.perf_counter() - start
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def planner_row(name: str) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "METARL_BENCH_CACHE": cache}
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, name], env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"planner child for {name} failed:\n{done.stderr}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["child_wall_s"] = time.perf_counter() - start
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per throughput measurement")
    parser.add_argument("--skip-planners", action="store_true", help="only the throughput table")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if cores:
        os.sched_setaffinity(0, {cores[0]})  # one core for the throughput table
    print(f"# gridworlds, random actions, one core; {cpu_device()}; numpy {np.__version__}; "
          f"python {platform.python_version()}; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"{'family':16s} {'implementation':30s} {'batch':>6s} {'steps/s':>14s} {'vs single env':>14s}")
    for name in FAMILIES:
        single = single_gym(name, args.seconds)
        rows = [("gymnasium.make single env", 1, single)]
        rows += [("metarl-bench batched TrialEnv", b, batched(name, b, args.seconds)) for b in BATCH_SIZES]
        for impl, batch, sps in rows:
            print(f"{name:16s} {impl:30s} {batch:6d} {sps:14,.0f} {sps / single:13.1f}x", flush=True)
    if args.skip_planners:
        return
    if cores:
        os.sched_setaffinity(0, set(cores))  # the child inherits the mask; the planner is single-threaded anyway
    print(f"\n# Bayes-optimal references, each in a fresh process with an empty plan cache; {len(cores) or '?'} cores")
    print(f"{'family':16s} {'method':22s} {'value':>10s} {'states':>10s} {'seconds':>8s} {'peak RSS':>9s}  note")
    for name in FAMILIES:
        r = planner_row(name)
        states = f"{r['states']:.3g}" if "states" in r else "-"
        note = f"upper bound {r['upper_bound']:.4f} (assignment); oracle above" if "upper_bound" in r else ""
        if "largest_layer" in r:
            note = f"largest layer {r['largest_layer']:.3g} states"
        print(f"{name:16s} {r['method']:22s} {r['value']:10.4f} {states:>10s} {r['seconds']:8.2f} "
              f"{r['peak_rss_mb']:7.0f}MB  {note}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
