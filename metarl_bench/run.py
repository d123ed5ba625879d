"""The main command: evaluate agents on task distributions and append leaderboard rows.

python -m metarl_bench.run --agent thompson --env bandits
python -m metarl_bench.run --agent all --env bernoulli-k2-h100 --seeds 0,1,2 --eval-tasks 1000
python -m metarl_bench.run --list
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from tqdm import tqdm

from metarl_bench import leaderboard, plots
from metarl_bench.evaluate import DEFAULT_EVAL_TASKS, DEFAULT_SEEDS, EvalSettings, evaluate
from metarl_bench.provenance import provenance
from metarl_bench.registry import (
    UnknownNameError,
    get_spec,
    list_agents,
    list_families,
    list_suites,
    make_agent,
    resolve_agents,
    resolve_envs,
)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of integers, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m metarl_bench.run", description="Evaluate meta-RL agents against Bayes-optimal play."
    )
    p.add_argument("--agent", default="thompson", help="agent name, comma list, or 'all' (see --list)")
    p.add_argument("--env", default="bandits", help="distribution, suite, or comma list (see --list)")
    p.add_argument("--train-env", help="meta-train learning agents on this distribution instead of --env")
    p.add_argument("--seeds", type=_int_list, default=DEFAULT_SEEDS, help="evaluation seeds, e.g. 0,1,2")
    p.add_argument(
        "--eval-tasks", type=_positive_int, default=DEFAULT_EVAL_TASKS, help="held-out tasks per distribution"
    )
    p.add_argument("--train-steps", type=_positive_int, help="meta-training budget in env steps (learning agents)")
    p.add_argument("--train-seed", type=int, default=0, help="seed of the training task stream")
    p.add_argument(
        "--retrain", action="store_true", help="train learning agents instead of loading shipped checkpoints"
    )
    p.add_argument(
        "--save-checkpoint", action="store_true", help="after training, store the agent as its shipped checkpoint"
    )
    p.add_argument("--device", default="cpu", help="torch device for learning agents (cpu, cuda)")
    p.add_argument(
        "--threads", type=_positive_int, default=1, help="torch CPU threads (default 1: fastest for small models)"
    )
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--no-save", action="store_true", help="print only; write no leaderboard rows or curves")
    p.add_argument("--list", action="store_true", help="list distributions, suites and agents, then exit")
    return p


def _listing() -> str:
    lines = ["suites:"]
    lines += [f"  {s}: {', '.join(list_families(s))}" for s in list_suites()]
    lines += ["distributions:", "  " + ", ".join(list_families()), "agents:", "  " + ", ".join(list_agents())]
    return "\n".join(lines)


def run_one(agent_name: str, env: str, args: argparse.Namespace, settings: EvalSettings) -> tuple[dict[str, Any], Any]:
    """Build, (meta-train or load), and evaluate one agent on one distribution."""
    family = get_spec(env).make()
    config: dict[str, Any] = {}
    agent = make_agent(agent_name, family, **config)
    train_env = args.train_env or env
    train = {"train_steps": 0, "train_wall_s": 0.0, "checkpoint": ""}
    if agent.learns:
        start = time.perf_counter()
        stats = agent.prepare(
            train_family=get_spec(train_env).make(),
            train_env=train_env,
            budget=args.train_steps,
            seed=args.train_seed,
            retrain=args.retrain,
            device=args.device,
        )
        train = {
            "train_steps": stats.get("train_steps", 0),
            "train_wall_s": stats.get("train_wall_s", time.perf_counter() - start),
            "checkpoint": stats.get("checkpoint", ""),
        }
        if args.save_checkpoint and not train["checkpoint"]:
            path = agent.save(agent.checkpoint_path(train_env))
            train["checkpoint"] = path.name
    evaluation = evaluate(agent, env, settings)
    spec = get_spec(env)
    row = {
        "agent": agent_name,
        "env": env,
        **evaluation.metrics,
        "train_env": train_env if agent.learns else "",
        **train,
        "env_spec": json.dumps({"id": spec.gym_id, "kwargs": agent.family.params}, sort_keys=True),
        "agent_config": json.dumps(agent.config, sort_keys=True, default=str),
        **provenance(threads=args.threads, device=args.device if agent.learns else None),
        "run_id": uuid.uuid4().hex,
    }
    return row, evaluation


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        print(_listing())
        return 0
    try:
        agents = resolve_agents(args.agent)
        envs = resolve_envs(args.env)
        if args.train_env:
            resolve_envs(args.train_env)
        settings = EvalSettings(n_tasks=args.eval_tasks, seeds=args.seeds)
    except (UnknownNameError, ValueError) as exc:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    if "torch" in sys.modules or any(a in ("rl2", "vsml") for a in agents):
        import torch

        torch.set_num_threads(args.threads)

    results = Path(args.results)
    rows = []
    for env in envs:
        for agent_name in tqdm(agents, desc=env, leave=False, disable=len(agents) * len(envs) < 2):
            try:
                row, evaluation = run_one(agent_name, env, args, settings)
            except ValueError as exc:  # e.g. an agent that does not support this family
                print(f"skipped {agent_name} on {env}: {exc}", file=sys.stderr)
                continue
            rows.append(row)
            if not args.no_save:  # one append per run: a later failure loses nothing already done
                leaderboard.append_rows(results / leaderboard.LEADERBOARD_FILE, [row])
                plots.write_curves(evaluation, results / "curves")
        if not args.no_save:
            plots.plot_env(env, results / "curves")
    import pandas as pd

    print(leaderboard.format_table(pd.DataFrame(rows)))
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
