"""The commands that read a results folder: the leaderboard reader and its aggregates, the
curve plots, the report page, the cross-evaluation table and the published comparison.

    python -m metarl_bench.leaderboard --env bandits [--all | --best | --aggregate] [--import MODULE]
    python -m metarl_bench.plots [--results results] [--env gridworlds]
    python -m metarl_bench.report [--results results] [--out results/report]
    python -m metarl_bench.crosseval --agent vsml --train-env bernoulli-k2-h100 --env bandits
    python -m metarl_bench.published [--results results]

Each parses its flags, hands the work to ``metarl_bench.reporting`` and turns bad input into
one line on stderr and exit status 2.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pandas as pd

from metarl_bench.core.registry import UnknownNameError, list_agents, list_families, resolve_agents, resolve_envs
from metarl_bench.records.csvfile import CSVSchemaError
from metarl_bench.reporting import aggregate, crosseval, leaderboard, plots, published, report
from metarl_bench.running.options import SHIPPED_RESULTS, USER_RESULTS, CommandParser
from metarl_bench.running.run import import_plugins

# ============================================================================ leaderboard
RESULTS_HELP = f"results folder (default: ./{USER_RESULTS}, your runs; the shipped ones: --results {SHIPPED_RESULTS})"


def leaderboard_parser() -> CommandParser:
    parser = CommandParser(prog="python -m metarl_bench.leaderboard", description=leaderboard.__doc__.split("\n")[0])
    parser.add_argument("--results", default=str(USER_RESULTS), help=RESULTS_HELP)
    parser.add_argument("--agent", help="only these agents (comma list)")
    parser.add_argument("--env", help="only these distributions (name, suite or comma list)")
    # as in `run`: a user's families and agents are named only once their module has registered them
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import this module first (it registers your own families or agents); repeatable")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--all", action="store_true", help="every row, the history, in the order written (default: "
                       "the newest per agent, train_env, train_seed and env, by score within each env)")  # fmt: skip
    shown.add_argument("--best", action="store_true", help="best contestant per distribution")
    shown.add_argument("--aggregate", action="store_true", help="suite aggregates (IQM and mean with stratified "
                       "bootstrap CIs, performance profiles; see metarl_bench.reporting.aggregate): --env takes "
                       "suites, "
                       "distributions or a+b sets (default: every suite); writes aggregates.csv, profiles.csv, "
                       "profiles/ and per-task returns under tasks/")  # fmt: skip
    parser.add_argument(
        "--include-references", action="store_true", help="with --best: let the oracle and bayes references take part"
    )
    parser.add_argument("--all-columns", action="store_true", help="print every column")
    return parser


def leaderboard_main(argv: list[str] | None = None) -> int:
    parser = leaderboard_parser()
    args = parser.parse_args(argv)
    try:
        import_plugins(args.imports)
    except ValueError as exc:
        return parser.fail(exc)
    if args.aggregate:
        command = shlex.join(["python", "-m", "metarl_bench.leaderboard", *(sys.argv[1:] if argv is None else argv)])
        return aggregate_command(parser, args.results, args.env, args.agent, command)
    folder = Path(args.results)
    envs: list[str] = []
    try:
        if not folder.is_dir():
            raise leaderboard.LeaderboardError(f"--results {str(folder)!r} is not a folder")
        df = leaderboard.read(folder / leaderboard.LEADERBOARD_FILE)
        if args.agent:
            df = df[df["agent"].isin(reader_agents(args.agent, df))]
        if args.env:
            envs = resolve_envs(args.env)
            df = df[df["env"].isin(envs)]
    except (leaderboard.LeaderboardError, LookupError, ValueError) as exc:
        return parser.fail(exc)
    if args.best:
        df = leaderboard.ranked(leaderboard.best_per_env(df, include_references=args.include_references), envs)
    elif not args.all:
        df = leaderboard.ranked(leaderboard.newest(df), envs)
    print(leaderboard.format_table(df, leaderboard.COLUMNS if args.all_columns else leaderboard.SUMMARY))
    return 0


def reader_agents(expr: str, df: pd.DataFrame) -> list[str]:
    """``--agent`` of the reader: registered agents and any the file holds rows of (a user's agent
    whose module is not imported); an unknown name is refused naming them (UnknownNameError)."""
    valid = sorted(set(list_agents()) | set(df["agent"]))
    names = [a.strip() for a in expr.split(",") if a.strip()]
    if names == ["all"]:
        return valid
    for name in names:
        if name not in valid:
            raise UnknownNameError("agent", name, valid)
    return names


def aggregate_command(parser: CommandParser, results: str, env: str | None, agent: str | None, command: str) -> int:
    """``leaderboard --aggregate``: bad input -> exit 2 (one line); an unreproduced contestant -> exit 1."""
    folder = Path(results)
    try:
        aggregate.check_inputs(folder)
        sets = aggregate.parse_sets(env)
        agents = [a.strip() for a in agent.split(",") if a.strip()] if agent else None
    except (aggregate.AggregateError, CSVSchemaError, LookupError) as exc:
        return parser.fail(exc)
    new = aggregate.aggregate(folder, sets, agents, command)
    print(aggregate.format_table(new))
    print(f"wrote {folder / aggregate.AGGREGATES_FILE}, {folder / aggregate.PROFILES_FILE} and "
          f"{folder / aggregate.PROFILES_DIR}/")  # fmt: skip
    bad = new[new["status"] == aggregate.UNREPRODUCED]
    for _, r in bad.iterrows():
        print(f"unreproduced: {r['agent']} on {r['suite']}: {r['note']}", file=sys.stderr)
    return 1 if len(bad) else 0


# ============================================================================ plots
def plots_main(argv: list[str] | None = None) -> int:
    parser = CommandParser(prog="python -m metarl_bench.plots", description="Redraw the curve PNGs.")
    parser.add_argument("--results", default=str(USER_RESULTS), help=RESULTS_HELP + "; curves in <results>/curves")
    parser.add_argument("--env", default=None, help="distribution, suite or comma list (default: all)")
    args = parser.parse_args(argv)
    try:
        envs = resolve_envs(args.env) if args.env else list_families()
    except UnknownNameError as exc:
        return parser.fail(exc)
    for env in envs:
        path = plots.plot_env(env, Path(args.results) / "curves")  # also draws <env>__episodes.png
        if path is not None:
            print(f"wrote {path}")
    return 0


# ============================================================================ report
def report_main(argv: list[str] | None = None) -> int:
    parser = CommandParser(prog=report.PROG, description=report.__doc__.split("\n")[0])
    parser.add_argument("--results", default=str(USER_RESULTS), help=RESULTS_HELP)
    parser.add_argument("--out", help="folder of the page (default: <results>/report)")
    args = parser.parse_args(argv)
    results = Path(args.results)
    out = Path(args.out) if args.out else results / report.REPORT_DIR
    try:
        path = report.build(results, out)
    except (report.ReportError, CSVSchemaError) as exc:
        return parser.fail(exc)
    print(f"wrote {path}")
    return 0


# ============================================================================ cross-evaluation
def crosseval_main(argv: list[str] | None = None) -> int:
    parser = CommandParser(prog="python -m metarl_bench.crosseval", description=crosseval.__doc__.split("\n")[0])
    parser.add_argument("--agent", required=True, help="learning agent(s), comma list")
    parser.add_argument("--train-env", required=True, help="training distribution(s), suite or comma list")
    parser.add_argument("--env", required=True, help="test distribution(s), suite or comma list")
    parser.add_argument("--results", default=str(USER_RESULTS), help=RESULTS_HELP + "; the table is written there")
    args = parser.parse_args(argv)
    try:
        agents, train_envs, envs = resolve_agents(args.agent), resolve_envs(args.train_env), resolve_envs(args.env)
        folder = Path(args.results)
        rows = leaderboard.read(folder / leaderboard.LEADERBOARD_FILE)
    except (UnknownNameError, leaderboard.LeaderboardError) as exc:
        return parser.fail(exc)
    cells = crosseval.table(rows, agents, train_envs, envs)
    folder.mkdir(parents=True, exist_ok=True)
    cells.to_csv(folder / crosseval.CSV_FILE, index=False, float_format="%.6g")
    crosseval.plot(cells, folder / crosseval.PNG_FILE)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        shown = ["agent", "train_env", "env", "status", "score", "score_ci_low", "score_ci_high"]
        print(cells[shown].to_string(index=False))
    for _, cell in cells[cells["status"] == "missing"].iterrows():
        agent, train_env, env = cell["agent"], cell["train_env"], cell["env"]
        print(f"missing: python -m metarl_bench.run --agent {agent} --train-env {train_env} --env {env}")
    print(f"wrote {folder / crosseval.CSV_FILE} and {folder / crosseval.PNG_FILE}")
    return 0


# ============================================================================ published tables
def published_main(argv: list[str] | None = None) -> int:
    description = "Our leaderboard beside RL²'s Tables 1 and 2."
    parser = CommandParser(prog="python -m metarl_bench.published", description=description)
    parser.add_argument("--results", default=str(USER_RESULTS), help=RESULTS_HELP)
    args = parser.parse_args(argv)
    try:
        rows = published.newest_rows(args.results)
    except leaderboard.LeaderboardError as exc:
        return parser.fail(exc)
    print("RL² Table 1 (multi-armed bandits): ours / paper; = equal within sqrt(2) x our 95% CI"
          " half-width, ▲ we are above, ▼ below\n")  # fmt: skip
    print(published.table1(rows))
    print("\nRL² Table 2 (random MDPs), same marks\n")
    print(published.table2(rows))
    return 0
