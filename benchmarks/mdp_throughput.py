"""Tabular-MDP speed: batched steps per second against a gymnasium loop, and the batched planners.

Part 1 times random-action steps on one core:
  * metarl-bench's batched TrialEnv at batch sizes 1 .. 65536 (one numpy call per step,
    one-hot observations and common-random-number noise included), stepping alone
    (tasks drawn and trials started outside the timing), and whole trials of
    ``tabular-mdp-s10-a5-n10`` and ``-n100`` with their resets (drawing 50 Dirichlet
    rows and building the step tables per trial costs as much as ~100 steps);
  * the same family through a plain gymnasium single-env loop
    (``gymnasium.make("metarl_bench/tabular-mdp-s10-a5-n10")``).
Actions are drawn up front so that only stepping is timed.

Part 2 times one episode's planning for 1000 trials (what an agent does at every episode
start): the oracle's value iteration, PSRL's posterior sample plus value iteration,
UCRL2's extended value iteration and BEB's bonus value iteration, each batched over the
trials, beside the same planner called in a Python loop over the trials (batches of one).

    python benchmarks/mdp_throughput.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from env_throughput import batched, single_gym  # the same timing as the bandits (benchmarks/ is on sys.path)

import metarl_bench
from metarl_bench.baselines.mdp_agents import fold
from metarl_bench.envs.tabular_mdp import planners
from metarl_bench.records.provenance import cpu_device

ENV = "tabular-mdp-s10-a5-n10"
LONG = "tabular-mdp-s10-a5-n100"
BATCH_SIZES = (1, 256, 4096, 16384, 65536)
STEPS = 100  # steps per timed block of stepping alone
PLAN_TRIALS = 1000


def _best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def steps_only(env_name: str, batch: int, seconds: float) -> tuple[float, float]:
    """Steps per second of ``TrialEnv.step`` alone (the trials are started outside the timing),
    by wall-clock time and by this process's CPU time (which leaves out the time other jobs
    on a shared machine hold the core)."""
    env = metarl_bench.make(env_name, num_trials=batch, seed=0)
    actions = np.random.default_rng(0).integers(0, env.num_actions, size=(env.trial_length, batch))
    env.reset()
    wall = cpu = 0.0
    for _ in range(3):
        elapsed = used = steps = 0
        while elapsed < seconds / 3:
            if env.t + STEPS > env.trial_length:
                env.reset()
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(STEPS):
                env.step(actions[env.t])
            elapsed += time.perf_counter() - start
            used += time.process_time() - start_cpu
            steps += STEPS * batch
        wall, cpu = max(wall, steps / elapsed), max(cpu, steps / used)
    return wall, cpu


def planner_times(family) -> list[tuple[str, float, float]]:
    """(planner, batched seconds, looped seconds) for one episode's plan of PLAN_TRIALS trials."""
    rng = np.random.default_rng(0)
    tasks = family.sample_tasks(rng, PLAN_TRIALS)
    H = family.horizon
    agents = {a: metarl_bench.make_agent(a, family, **kw) for a, kw in
              (("psrl", {}), ("ucrl2", {"scaling": 0.4}), ("beb", {"scaling": 0.0016}))}  # fmt: skip
    # statistics of a trial half-way through: 5 episodes of random play
    memory = agents["psrl"].reset(PLAN_TRIALS, rng=rng)
    S, A = family.num_states, family.num_actions
    steps = tuple(
        (rng.integers(0, S, PLAN_TRIALS), rng.integers(0, A, PLAN_TRIALS), rng.normal(1, 1.4, PLAN_TRIALS),
         rng.integers(0, S, PLAN_TRIALS))
        for _ in range(5 * H)
    )  # fmt: skip
    stats = fold(memory["stats"], steps)

    def part(i):
        return {k: v[i : i + 1] for k, v in stats.items()}

    def oracle(i=None):
        t = tasks if i is None else {k: v[i : i + 1] for k, v in tasks.items()}
        return planners.value_iteration(t["R"], t["P"], H)

    rows = [("oracle value iteration", _best_of(oracle), _best_of(lambda: [oracle(i) for i in range(PLAN_TRIALS)]))]
    for name, agent in agents.items():
        batched_s = _best_of(lambda agent=agent: agent.plan(stats, rng, 5))
        looped_s = _best_of(lambda agent=agent: [agent.plan(part(i), rng, 5) for i in range(PLAN_TRIALS)], repeats=1)
        rows.append((f"{name} plan", batched_s, looped_s))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the target says
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {ENV}, random actions, one core (OPENBLAS_NUM_THREADS={threads}); {cpu_device()}; "
          f"numpy {np.__version__}; python {platform.python_version()}; load average {load:.2f} at start")  # fmt: skip
    single = single_gym(ENV, args.seconds)
    print(f"{'implementation':32s} {'batch':>6s} {'steps/s':>14s} {'vs single env':>14s} {'CPU-time steps/s':>17s}")
    print(f"{'gymnasium.make single env, n10':32s} {1:6d} {single:14,.0f} {1.0:13.1f}x")
    for b in BATCH_SIZES:
        wall, cpu = steps_only(LONG, b, args.seconds)
        print(f"{'TrialEnv steps alone':32s} {b:6d} {wall:14,.0f} {wall / single:13.1f}x {cpu:17,.0f}")
    for env_name, label in ((LONG, "n100"), (ENV, "n10")):
        for b in BATCH_SIZES[1:]:
            sps = batched(env_name, b, args.seconds)
            print(f"{'TrialEnv whole trials, ' + label:32s} {b:6d} {sps:14,.0f} {sps / single:13.1f}x")
    print(f"\n# one episode's plan for {PLAN_TRIALS} trials (best of 3; the loop: batches of one, once)")
    print(f"{'planner':28s} {'batched s':>10s} {'loop over trials s':>19s} {'speed-up':>9s}")
    for name, batched_s, looped_s in planner_times(metarl_bench.make_family(ENV)):
        print(f"{name:28s} {batched_s:10.4f} {looped_s:19.3f} {looped_s / batched_s:8.0f}x")
    if hasattr(os, "getloadavg"):
        print(f"# load average {os.getloadavg()[0]:.2f} at the end (other jobs share this machine)")


if __name__ == "__main__":
    main()
