"""The main command: evaluate agents on task distributions and append leaderboard rows.

python -m metarl_bench.run --agent thompson --env bandits
python -m metarl_bench.run --agent all --env bernoulli-k2-h100 --seeds 0,1,2 --eval-tasks 1000
python -m metarl_bench.run --agent all --env bandits --backend ray --address auto --resume
python -m metarl_bench.run --list
python -m metarl_bench.run --import my_package.families --agent bayes,thompson --env my-family

The runs (one per agent and distribution, see ``metarl_bench.running.sweep``) go to a backend:
in this process (default), or as Ray tasks on a local or remote Ray cluster.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from pathlib import Path

from metarl_bench.core import checks
from metarl_bench.core.registry import UnknownNameError, list_agents, list_families, list_suites
from metarl_bench.evaluation.evaluate import DEFAULT_EVAL_TASKS, DEFAULT_SEEDS
from metarl_bench.records.provenance import command_line
from metarl_bench.reporting import leaderboard
from metarl_bench.running import preflight, sweep
from metarl_bench.running.agent_settings import parse_agent_settings
from metarl_bench.running.options import (
    CommandParser,
    add_common_arguments,
    non_negative_int,
    parse_common,
    set_torch_threads,
)


def build_parser() -> CommandParser:
    p = CommandParser(
        prog="python -m metarl_bench.run", description="Evaluate meta-RL agents against Bayes-optimal play."
    )
    add_common_arguments(
        p,
        default_seeds=DEFAULT_SEEDS,
        default_tasks=DEFAULT_EVAL_TASKS,
        default_agent="thompson",
        default_env="bandits",
    )
    p.add_argument(
        "--save-checkpoint", action="store_true", help="after training, store the agent as its shipped checkpoint"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="go on with a stopped sweep: skip runs the leaderboard holds (same agent, env, seeds, config) and "
        "continue trainings from their partial checkpoints",
    )
    p.add_argument(
        "--agent-config",
        dest="agent_config",
        action="append",
        default=[],
        metavar="AGENT:KEY=VALUE,... | FILE.toml",
        help="settings of an agent (e.g. rl2:lstm_hidden_size=256,gamma=0.99), checked before any work; repeatable",
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
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import this module first (it registers your own families or agents); repeatable",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        metavar="PATH",
        help="play this checkpoint file: one of ours, or (rl2) a plain sb3-contrib RecurrentPPO zip trained on "
        "our gymnasium ids; the row records its path and hash",
    )
    p.add_argument("--list", action="store_true", help="list distributions, suites and agents, then exit")
    p.add_argument("-v", "--verbose", action="store_true", help="list every skipped run and why")
    p.add_argument("--report", action="store_true", help="afterwards, regenerate the HTML report <results>/report/")
    return p


def _listing() -> str:
    lines = ["suites:"]
    lines += [f"  {s}: {', '.join(list_families(s))}" for s in list_suites()]
    lines += ["distributions:", "  " + ", ".join(list_families()), "agents:", "  " + ", ".join(list_agents())]
    return "\n".join(lines)


def import_plugins(modules: list[str]) -> None:
    """Import the user's modules named by --import; ValueError naming the one that fails and why,
    in one line (a module that raises or does not parse is the user's fault, not a traceback)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            why = f"{type(exc).__name__}: {first}"
            raise ValueError(f"--import {module}: module {module} failed to import: {why}") from None


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as SIGINT is: finished rows are kept, one line says so."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    in_main = threading.current_thread() is threading.main_thread()  # only there may handlers be set
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main else None
    try:
        return _run(parser, args)
    except KeyboardInterrupt as stop:  # rows are appended whole, one per finished run: nothing is half-written
        what = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
        print(f"{parser.prog}: {what}; rows of finished runs are kept, nothing is half-written", file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(parser: CommandParser, args: argparse.Namespace) -> int:
    try:
        import_plugins(args.imports)
        if args.list:
            print(_listing())
            return 0
        options = parse_common(args, command_line())
        agent_settings = parse_agent_settings(args.agent_config, options.agents, options.envs[0])
        if options.train.checkpoint is not None:
            preflight.check_checkpoint_file(
                options.train.checkpoint, options.agents, options.envs, options.train, agent_settings
            )
        preflight.check_memory(options.envs, options.settings)
        budget_notes = preflight.check_learners(options.agents, options.envs, options.train, agent_settings)
        checks.check_registered(options.agents, options.envs, agent_settings)  # a user's family or agent
        sweep.check_backend(args.backend, args.address)
        if args.report and not options.save:
            raise ValueError("--report draws the page from saved rows; drop --no-save")
    except (UnknownNameError, ValueError) as exc:
        return parser.fail(exc)
    set_torch_threads(options)

    specs = sweep.plan_runs(options.agents, options.envs, options.settings, options.train, agent_settings)
    board = options.results / leaderboard.LEADERBOARD_FILE
    try:  # a leaderboard we could not append to fails now, not after the runs
        if args.resume:
            todo = sweep.missing_runs(specs, board)
            print(f"resume: {len(specs) - len(todo)} of {len(specs)} runs already in {board}; running {len(todo)}")
            specs = todo
        elif options.save:
            leaderboard.read(board)
    except leaderboard.LeaderboardError as exc:
        return parser.fail(exc)
    if not specs:
        return 0
    for note in budget_notes:
        print(f"budget: {note}")
    where = f"rows to {board}" if options.save else "no rows saved (--no-save)"
    print(f"{len(specs)} run(s) on the {args.backend} backend; {where}", flush=True)
    try:
        backend = sweep.make_backend(args.backend, args.address, args.max_retries)
    except (ValueError, sweep.BackendError) as exc:
        return parser.fail(exc)
    try:
        report = sweep.run_sweep(
            specs, backend, options.results if options.save else None, options.command, verbose=args.verbose
        )
    finally:
        backend.close()
    import pandas as pd

    print(leaderboard.format_table(pd.DataFrame(report.rows)))
    if report.skipped:
        print(report.skip_line(args.verbose), file=sys.stderr)
    if options.save and report.rows:
        curves = options.results / "curves"
        print(f"wrote {len(report.rows)} row(s) to {board}; curves and plots to {curves}/")
    if args.report and report.rows:
        from metarl_bench.reporting import report as html_report

        if not html_report.refresh(options.results, parser.prog):
            return 1
    if report.failed:
        print(report.summary(), file=sys.stderr)
        return 1
    return 0 if report.rows else 1


if __name__ == "__main__":
    sys.exit(main())
