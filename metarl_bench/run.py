"""The main command: evaluate agents on task distributions and append leaderboard rows.

python -m metarl_bench.run --agent thompson --env bandits
python -m metarl_bench.run --agent all --env bernoulli-k2-h100 --seeds 0,1,2 --eval-tasks 1000
python -m metarl_bench.run --agent all --env bandits --backend ray --address auto --resume
python -m metarl_bench.run --list

The runs (one per agent and distribution, see ``metarl_bench.sweep``) go to a backend:
in this process (default), or as Ray tasks on a local or remote Ray cluster.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from metarl_bench import leaderboard, sweep
from metarl_bench.cli_args import int_list, non_negative_int, positive_int
from metarl_bench.evaluate import DEFAULT_EVAL_TASKS, DEFAULT_SEEDS, EvalSettings
from metarl_bench.provenance import command_line
from metarl_bench.registry import (
    UnknownNameError,
    get_spec,
    list_agents,
    list_families,
    list_suites,
    resolve_agents,
    resolve_envs,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m metarl_bench.run", description="Evaluate meta-RL agents against Bayes-optimal play."
    )
    p.add_argument("--agent", default="thompson", help="agent name, comma list, or 'all' (see --list)")
    p.add_argument("--env", default="bandits", help="distribution, suite, or comma list (see --list)")
    p.add_argument("--train-env", help="meta-train learning agents on this distribution instead of --env")
    p.add_argument("--seeds", type=int_list, default=DEFAULT_SEEDS, help="evaluation seeds, e.g. 0,1,2")
    p.add_argument(
        "--eval-tasks", type=positive_int, default=DEFAULT_EVAL_TASKS, help="held-out tasks per distribution"
    )
    p.add_argument("--train-steps", type=positive_int, help="meta-training budget in env steps (learning agents)")
    p.add_argument("--train-seed", type=non_negative_int, default=0, help="seed of the training task stream")
    p.add_argument(
        "--retrain", action="store_true", help="train learning agents instead of loading shipped checkpoints"
    )
    p.add_argument(
        "--save-checkpoint", action="store_true", help="after training, store the agent as its shipped checkpoint"
    )
    p.add_argument("--device", default="cpu", help="torch device for learning agents (cpu, cuda)")
    p.add_argument(
        "--threads", type=positive_int, default=1, help="torch CPU threads (default 1: fastest for small models)"
    )
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--no-save", action="store_true", help="print only; write no leaderboard rows or curves")
    p.add_argument(
        "--resume", action="store_true", help="skip runs the leaderboard already holds (same agent, env, seeds, config)"
    )
    p.add_argument("--backend", choices=sweep.BACKENDS, default="local", help="where runs execute (default: local)")
    p.add_argument(
        "--address", help="ray backend: 'local' (default: a private instance), 'auto' (running cluster), host:port"
    )
    p.add_argument(
        "--max-retries",
        type=non_negative_int,
        default=sweep.DEFAULT_MAX_RETRIES,
        help=f"ray backend: resubmissions of a run whose worker died (default {sweep.DEFAULT_MAX_RETRIES})",
    )
    p.add_argument("--list", action="store_true", help="list distributions, suites and agents, then exit")
    return p


def _listing() -> str:
    lines = ["suites:"]
    lines += [f"  {s}: {', '.join(list_families(s))}" for s in list_suites()]
    lines += ["distributions:", "  " + ", ".join(list_families()), "agents:", "  " + ", ".join(list_agents())]
    return "\n".join(lines)


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
            get_spec(args.train_env)  # exactly one distribution (a suite or a list would fail every run)
        settings = EvalSettings(n_tasks=args.eval_tasks, seeds=args.seeds)
        sweep.check_backend(args.backend, args.address)
    except (UnknownNameError, ValueError) as exc:
        return _usage_error(parser, exc)
    if "torch" in sys.modules or any(a in ("rl2", "vsml") for a in agents):
        import torch

        torch.set_num_threads(args.threads)

    options = sweep.TrainOptions(
        train_env=args.train_env,
        train_steps=args.train_steps,
        train_seed=args.train_seed,
        retrain=args.retrain,
        save_checkpoint=args.save_checkpoint,
        device=args.device,
        threads=args.threads,
    )
    specs = sweep.plan_runs(agents, envs, settings, options)
    board = Path(args.results) / leaderboard.LEADERBOARD_FILE
    try:  # a leaderboard we could not append to fails now, not after the runs
        if args.resume:
            todo = sweep.missing_runs(specs, board)
            print(f"resume: {len(specs) - len(todo)} of {len(specs)} runs already in {board}; running {len(todo)}")
            specs = todo
        elif not args.no_save:
            leaderboard.read(board)
    except leaderboard.LeaderboardError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    if not specs:
        return 0
    try:
        backend = sweep.make_backend(args.backend, args.address, args.max_retries)
    except (ValueError, sweep.BackendError) as exc:
        return _usage_error(parser, exc)
    try:
        report = sweep.run_sweep(specs, backend, None if args.no_save else args.results, command_line())
    finally:
        backend.close()
    import pandas as pd

    print(leaderboard.format_table(pd.DataFrame(report.rows)))
    if report.failed:
        print(report.summary(), file=sys.stderr)
        return 1
    return 0 if report.rows else 1


def _usage_error(parser: argparse.ArgumentParser, exc: Exception) -> int:
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
