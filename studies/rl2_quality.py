"""RL² quality against training time: score with CI every ``--every`` env steps of one run.

Trains the ``rl2`` agent with its default configuration (``RL2Config``) on one distribution
and, at every ``--every`` steps, scores the current policy with the suite's evaluator
(held-out tasks, paired references, bootstrap CI). Evaluation time is excluded from the
reported training wall time.

    python studies/rl2_quality.py [--env bernoulli-k2-h100] [--steps 5000000] [--every 500000]
"""

from __future__ import annotations

import argparse
import time

import torch
from stable_baselines3.common.callbacks import BaseCallback

import metarl_bench
from metarl_bench.baselines.rl2.agent import RL2Agent
from metarl_bench.evaluation.evaluate import EvalSettings, evaluate
from metarl_bench.records.provenance import cpu_device


class ScoreEvery(BaseCallback):
    """Evaluate the agent every ``every`` steps; keep training wall time apart."""

    def __init__(self, agent: RL2Agent, env: str, every: int, settings: EvalSettings):
        super().__init__()
        self.agent, self.env, self.every, self.settings = agent, env, every, settings
        self.next, self.train_s, self.mark, self.reported = every, 0.0, 0.0, -1

    def _on_training_start(self) -> None:
        self.mark = time.perf_counter()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next:
            self.next += self.every
            self.report()
        return True

    def report(self) -> None:
        if self.reported == self.num_timesteps:
            return
        self.reported = self.num_timesteps
        self.train_s += time.perf_counter() - self.mark
        m = evaluate(self.agent, self.env, self.settings).metrics
        print(f"{self.num_timesteps:>10d} {self.train_s:>9.0f} {m['score']:>7.1f} "
              f"[{m['score_ci_low']:.1f}, {m['score_ci_high']:.1f}] {m['return']:>8.2f}", flush=True)  # fmt: skip
        self.mark = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="bernoulli-k2-h100")
    parser.add_argument("--steps", type=int, default=5_000_000)
    parser.add_argument("--every", type=int, default=500_000)
    parser.add_argument("--eval-tasks", type=int, default=1000)
    parser.add_argument("--seeds", default="0", help="evaluation seeds, comma list")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = EvalSettings(n_tasks=args.eval_tasks, seeds=tuple(int(s) for s in args.seeds.split(",")))
    family = metarl_bench.make_family(args.env)
    agent = RL2Agent(family)
    print(f"# rl2 defaults on {args.env}; {cpu_device()}, {args.threads} torch thread(s); "
          f"{args.eval_tasks} held-out tasks x seeds {args.seeds}")  # fmt: skip
    print(f"{'env steps':>10} {'train s':>9} {'score':>7} {'95% CI':<14} {'return':>8}")
    callback = ScoreEvery(agent, args.env, args.every, settings)
    agent.fit(family, args.steps, seed=0, train_env=args.env, callbacks=callback, progress=False)
    callback.report()


if __name__ == "__main__":
    main()
