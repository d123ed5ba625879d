"""Time, peak memory and state counts of the exact Bayes-optimal planners (metarl_bench.envs.bandits.bayes).

    python benchmarks/planner_table.py            # the full table (about a minute)
    python benchmarks/planner_table.py --quick    # without the H=500 and H=20000 rows

Each case is timed once without instrumentation, then run again under tracemalloc for
the peak of Python/numpy allocations (the interpreter's own ~60 MB is not included).
The planners are pure numpy element-wise code (no BLAS), so they run on one thread.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from metarl_bench.envs.bandits import bayes

Case = tuple[str, str, Callable[[], bayes.Plan] | None, str]


def cases(quick: bool) -> list[Case]:
    """(planner, case, thunk or None if skipped, note)."""
    out: list[Case] = []
    for h in (10, 50, 100, 200, 500):
        skip = h > bayes.K2_MAX_HORIZON or (quick and h > 200)
        out.append(("k2 value", f"k=2 H={h}", None if skip else (lambda h=h: bayes.solve_k2(h)), ""))
    for h in (100, 500):
        thunk = None if quick and h > 200 else (lambda h=h: bayes.solve_k2(h, policy=True))
        out.append(("k2 +policy", f"k=2 H={h}", thunk, "agent tables"))
    for h in (100, 500, bayes.DEPENDENT_MAX_HORIZON):
        thunk = None if quick and h > 500 else (lambda h=h: bayes.solve_dependent(h))
        out.append(("dependent", f"k=2 H={h}", thunk, ""))
    for k in (3, 5, 10, 50):
        for h in (5, 10, 20):
            n = bayes.count_states(k, h)
            over = n > bayes.GENERAL_MAX_STATES
            thunk = None if over else (lambda k=k, h=h: bayes.solve_general(k, h))
            out.append(("general", f"k={k} H={h}", thunk, f"skipped: {n:.2e} states > limit" if over else ""))
    out.append(("general +policy", "k=50 H=20", lambda: bayes.solve_general(50, 20, policy=True), "agent tables"))
    return out


def measure(thunk: Callable[[], bayes.Plan]) -> tuple[bayes.Plan, float, float]:
    """(plan, seconds, peak MB)."""
    start = time.perf_counter()
    plan = thunk()
    seconds = time.perf_counter() - start
    tracemalloc.start()
    thunk()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return plan, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the slowest rows (H=500, H=20000)")
    args = parser.parse_args()
    print(
        f"Exact Bayes-optimal planners, 1 thread/core; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores visible, Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(
        f"limits: k2 H <= {bayes.K2_MAX_HORIZON}, general <= {bayes.GENERAL_MAX_STATES:.0e} states, "
        f"dependent H <= {bayes.DEPENDENT_MAX_HORIZON}; peak = tracemalloc peak of numpy/Python allocations"
    )
    header = f"{'planner':<16} {'case':<14} {'states':>10} {'time s':>9} {'peak MB':>9} {'value':>12}  note"
    print(header)
    print("-" * len(header))
    for planner, case, thunk, note in cases(args.quick):
        if thunk is None:
            print(f"{planner:<16} {case:<14} {'-':>10} {'-':>9} {'-':>9} {'-':>12}  {note or 'skipped (--quick)'}")
            continue
        plan, seconds, peak = measure(thunk)
        print(
            f"{planner:<16} {case:<14} {plan.num_states:>10.3g} {seconds:>9.3f} {peak:>9.1f} "
            f"{plan.value:>12.6f}  {note}",
            flush=True,
        )


if __name__ == "__main__":
    main()
