"""The compiled (fused) Bernoulli step against its numpy reference step, interleaved in one process.

On a shared VM the speed of one script run drifts by tens of percent from minute to
minute; alternating the two steps block by block, and keeping the best block of each,
compares them under the same conditions.  Steps alone (trials started outside the
timing), random actions, one core:

    python benchmarks/fused_step_ab.py [--blocks 8]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import metarl_bench

CASES = (("bernoulli-k2-h100", 50), ("bernoulli-k10-h100", 50))
BATCHES = (4096, 16384)


def best_rates(name: str, batch: int, steps: int, blocks: int) -> dict[str, float]:
    """Steps/s of the fused and the numpy step, best of ``blocks`` interleaved blocks."""
    envs = {}
    for label, fused in (("fused", True), ("numpy", False)):
        env = metarl_bench.make(name, num_trials=batch, seed=0)
        env.family.fused_step = fused
        env.reset()
        envs[label] = env
    actions = np.random.default_rng(0).integers(0, envs["fused"].num_actions, size=(steps, batch))
    best = dict.fromkeys(envs, float("inf"))
    for block in range(blocks + 1):  # block 0 warms up (and compiles)
        for label, env in envs.items():
            if env.t + steps > env.trial_length:
                env.reset()
            start = time.perf_counter()
            for a in actions:
                env.step(a)
            if block:
                best[label] = min(best[label], time.perf_counter() - start)
    return {label: steps * batch / seconds for label, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=8)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# fused vs numpy step, steps alone, one core; load average {load:.2f}")
    print(f"{'distribution':26s} {'batch':>6s} {'fused steps/s':>14s} {'numpy steps/s':>14s} {'ratio':>6s}")
    for name, steps in CASES:
        for batch in BATCHES:
            rates = best_rates(name, batch, steps, args.blocks)
            print(f"{name:26s} {batch:6d} {rates['fused']:14,.0f} {rates['numpy']:14,.0f} "
                  f"{rates['fused'] / rates['numpy']:5.2f}x", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
