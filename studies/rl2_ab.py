"""RL² A/B: the whole-sequence training path against sb3-contrib's own, from the same seeds.

The two paths compute the same losses and gradients to float tolerance
(``tests/test_rl2_policy.py``), but float sums in another order make two trainings drift
apart after a few updates, so the check is statistical: each path trains ``--steps`` env
steps from each of ``--seeds`` with the same settings, and the gap between the two paths'
curves is set beside the gap between seeds of one path.

- now: ``RL2Agent`` (``WholeSequenceLstmPolicy``, ``LockstepRecurrentPPO``);
- sb3-contrib: the same agent with sb3-contrib's ``RecurrentActorCriticPolicy`` and
  ``RecurrentPPO`` (the stepwise LSTM in training, sb3-contrib's rollout loop).

    python studies/rl2_ab.py --env bernoulli-k2-h100 --steps 300000 --seeds 0,1,2 --out results/tuning/rl2/ab
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

import metarl_bench
from metarl_bench.baselines.rl2.agent import RL2Agent
from metarl_bench.records.provenance import cpu_name, git_commit


class StockRL2Agent(RL2Agent):
    """RL² trained through sb3-contrib's own policy and algorithm (the code before issue #25)."""

    policy_class = RecurrentActorCriticPolicy
    algorithm = RecurrentPPO


def curve(agent_class: type[RL2Agent], env: str, steps: int, seed: int) -> tuple[pd.DataFrame, float]:
    family = metarl_bench.make_family(env)
    agent = agent_class(family)
    start = time.perf_counter()
    agent.fit(family, steps, seed=seed, train_env=env, progress=False)
    wall = time.perf_counter() - start
    return pd.DataFrame(agent.curve), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="bernoulli-k2-h100")
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    curves, walls = {}, {}
    for path, cls in (("now", RL2Agent), ("sb3-contrib", StockRL2Agent)):
        for seed in seeds:
            df, walls[path, seed] = curve(cls, args.env, args.steps, seed)
            curves[path, seed] = df.set_index("steps")["trial_return"]
            df.to_csv(args.out / f"{args.env}__{path}__seed{seed}.csv", index=False)
    both = pd.DataFrame({f"{p}/{s}": c for (p, s), c in curves.items()}).interpolate().dropna()
    late = both.iloc[len(both) // 2 :]  # the second half of training, where the curves have risen
    between_paths = np.mean([np.abs(late[f"now/{s}"] - late[f"sb3-contrib/{s}"]).mean() for s in seeds])
    pairs = [(a, b) for i, a in enumerate(seeds) for b in seeds[i + 1 :]]
    between_seeds = np.mean([np.abs(late[f"{p}/{a}"] - late[f"{p}/{b}"]).mean()
                             for p in ("now", "sb3-contrib") for a, b in pairs])  # fmt: skip
    lines = [
        f"# {cpu_name()}, {args.threads} torch thread(s), commit {git_commit()}",
        f"# python studies/rl2_ab.py --env {args.env} --steps {args.steps} --seeds {args.seeds} --out {args.out}",
        "path          seed  final trial return (mean of last 100 trials)  wall s",
    ]
    for (path, seed), c in curves.items():
        lines.append(f"{path:<13} {seed:>4}  {c.iloc[-1]:>44.2f}  {walls[path, seed]:>6.1f}")
    for path in ("now", "sb3-contrib"):
        finals = [curves[path, s].iloc[-1] for s in seeds]
        lines.append(f"{path:<13} mean  {np.mean(finals):>44.2f}")
    lines.append(f"mean |now - sb3-contrib| over the second half, same seed: {between_paths:.2f}")
    lines.append(f"mean |seed a - seed b| over the second half, same path:   {between_seeds:.2f}")
    text = "\n".join(lines)
    (args.out / f"{args.env}__summary.txt").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
