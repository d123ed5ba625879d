"""Belief probes: read the exact posterior out of an agent's memory, and compare its actions
with the Bayes-optimal policy on the very same histories.

    python -m metarl_bench.probe --agent vsml --env bernoulli-k2-h100
    python -m metarl_bench.probe --agent rl2 --env bernoulli-k2-h100 --checkpoint my_rl2.zip --no-save
    python -m metarl_bench.probe --simulation --agent rl2 --env bernoulli-k2-h100 --eval-tasks 500

``--simulation`` runs the simulation analysis instead (is the memory a belief state or a
record of history? ``metarl_bench.probes.simulation``): behavioural KL both ways, state
maps both ways (MLP and ridge) with their output dissimilarity, order invariance on
bandits, for the agent and its controls (untrained, trained on another distribution,
exact posterior, history buffer).  Its rows go to ``<results>/belief_simulation.csv``.

This module is the command line.  It takes the flags ``run`` takes (``metarl_bench.running.options``,
parsed once into one ``CommonOptions``) plus the probe's own, and leaves the work to one
module per concern:

    metarl_bench.probes.record    what can be probed; recording through the evaluator's rollout
    metarl_bench.probes.ridge           closed-form ridge, its penalty chosen by grouped cross-validation
    metarl_bench.probes.analysis  fit/test split, held-out R², accuracy, agreement with Bayes: probe()
    metarl_bench.probes.rows    the rows of results/probes.csv (its schema), curves, plots, table
    metarl_bench.probes.simulation       the simulation analysis: simulate(); its rows: probes.simulation_rows

Rows are appended to ``results/probes.csv`` and per-step curves go to
``results/probes/<env>__<agent>.csv`` and ``.png``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from metarl_bench.core.agent import Agent, CheckpointError, UnsupportedFamilyError
from metarl_bench.core.learner import train_or_load
from metarl_bench.core.registry import UnknownNameError, get_spec, make_agent
from metarl_bench.probes.analysis import DEFAULT_PROBE_SEEDS, DEFAULT_PROBE_TASKS, ProbeReport, probe, split_tasks
from metarl_bench.probes.record import ProbeError, check_probeable, untrained_control
from metarl_bench.probes.rows import (
    PROBE_DIR,
    PROBE_FILE,
    append_rows,
    format_footer,
    format_table,
    report_rows,
    write_curves,
)
from metarl_bench.probes.simulation import SimulationReport, simulate
from metarl_bench.probes.simulation_input import ORDER_MODES, check_simulation_input
from metarl_bench.probes.simulation_rows import SIMULATION_FILE
from metarl_bench.probes.simulation_rows import append_rows as append_simulation_rows
from metarl_bench.probes.simulation_rows import format_table as format_simulation_table
from metarl_bench.probes.simulation_rows import report_rows as simulation_rows
from metarl_bench.records.provenance import provenance
from metarl_bench.running.options import (
    CommandParser,
    CommonOptions,
    add_common_arguments,
    non_negative_int,
    parse_common,
    set_torch_threads,
)

PROG = "python -m metarl_bench.probe"
# The "trained on another distribution" control of the simulation: the same agent's shipped
# checkpoint of a distribution with the same spaces but another prior (override: --other-train-env).
OTHER_TRAIN_ENV = {
    "bernoulli-k2-h100": "bernoulli-dependent-k2-h100",
    "bernoulli-dependent-k2-h100": "bernoulli-k2-h100",
    "gridnavi-5x5": "heart-trap-5x5",
    "tabular-mdp-s10-a5-n10": "tabular-mdp-s10-a5-n25",
}
OTHER_TRAINED, UNTRAINED = "other-trained", "untrained"


@dataclass(frozen=True)
class ProbeOptions:
    """The probe's own flags, on top of the ``CommonOptions`` it shares with ``run``."""

    fit_frac: float = 0.5  # share of the held-out tasks the probes are fitted on
    split_seed: int = 0  # fit/test split, cross-validation folds, bootstrap
    checkpoint: str | None = None  # probe this saved agent instead of the shipped checkpoint
    control: bool = True  # probe an untrained agent of the same architecture too
    simulation: bool = False  # run the simulation analysis instead of the linear probe
    order: str = "auto"  # simulation: order invariance on bandits ("auto"), required ("on"), skipped ("off")
    other_train_env: str | None = None  # simulation: the other distribution's checkpoint (None: OTHER_TRAIN_ENV)


def build_parser() -> CommandParser:
    p = CommandParser(
        prog=PROG,
        description="Linear belief probes of an agent's memory, and agreement with the Bayes-optimal policy.",
    )
    add_common_arguments(
        p, default_seeds=DEFAULT_PROBE_SEEDS, default_tasks=DEFAULT_PROBE_TASKS, default_agent=None, default_env=None
    )
    p.add_argument("--fit-frac", type=float, default=0.5, help="share of the tasks the probes are fitted on")
    p.add_argument(
        "--split-seed", type=non_negative_int, default=0, help="seed of the fit/test split, CV folds and bootstrap"
    )
    p.add_argument("--checkpoint", help="probe this saved agent instead of the shipped checkpoint")
    p.add_argument("--no-control", action="store_true", help="skip the untrained-agent control")
    p.add_argument("--report", action="store_true", help="afterwards, regenerate the HTML report <results>/report/")
    p.add_argument(
        "--simulation", action="store_true", help="run the simulation analysis (belief state or record of history?)"
    )
    p.add_argument(
        "--order", choices=ORDER_MODES, default="auto", help="simulation: order invariance (auto: on bandits only)"
    )
    p.add_argument(
        "--other-train-env",
        help="simulation: play the agent's checkpoint of this distribution as a control ('none': no such control)",
    )
    return p


def parse_probe(args: argparse.Namespace, options: CommonOptions) -> ProbeOptions:
    """The probe's own options, checked together with the shared ones; ValueError on bad input."""
    own = ProbeOptions(
        fit_frac=args.fit_frac,
        split_seed=args.split_seed,
        checkpoint=args.checkpoint,
        control=not args.no_control,
        simulation=args.simulation,
        order=args.order,
        other_train_env=args.other_train_env,
    )
    split_tasks(options.settings.n_tasks, own.fit_frac, np.random.default_rng(0))  # fails now, not after a rollout
    for agent in options.agents:
        for env in options.envs:
            if own.simulation:
                check_simulation_input(agent, env, own.order)
            else:
                check_probeable(agent, env)
    if own.checkpoint and options.train.train_steps:
        raise ProbeError("give --checkpoint or --train-steps, not both")
    if own.checkpoint and not Path(own.checkpoint).is_file():
        raise ProbeError(f"--checkpoint {own.checkpoint}: no such file")
    if not own.simulation and (args.order != "auto" or args.other_train_env):
        raise ProbeError("--order and --other-train-env belong to --simulation; add --simulation or drop them")
    if own.other_train_env not in (None, "none"):
        get_spec(own.other_train_env)  # one known distribution, before any work
    return own


def prepare_agent(name: str, env: str, options: CommonOptions, own: ProbeOptions) -> tuple[Agent, dict[str, str]]:
    """Build the agent and load its checkpoint (or train it), as ``metarl_bench.running.run`` does."""
    family = get_spec(env).make()
    agent = make_agent(name, family)
    if own.checkpoint:
        agent = type(agent).load(own.checkpoint, family)
        return agent, {"train_env": getattr(agent, "trained_on", "") or "", "checkpoint": str(own.checkpoint)}
    if not agent.learns:
        return agent, {"train_env": "", "checkpoint": ""}
    train_env, stats = train_or_load(agent, env, options.train)
    return agent, {"train_env": train_env, "checkpoint": stats.get("checkpoint", "")}


def _device(agent: Agent, requested: str) -> str | None:
    """The device a learning agent actually runs on, as it reports it (None: not a torch agent)."""
    return str(getattr(agent, "device", requested)) if agent.learns else None


def run_info(
    agent: Agent, env: str, trained: dict[str, str], options: CommonOptions, own: ProbeOptions, start: float
) -> dict[str, Any]:
    """The settings and provenance every row of one probe run carries."""
    train = options.train
    return {
        "split_seed": own.split_seed,
        **trained,
        "env_spec": json.dumps({"id": get_spec(env).gym_id, "kwargs": agent.family.params}, sort_keys=True),
        "agent_config": json.dumps(agent.config, sort_keys=True, default=str),
        **provenance(threads=train.threads, device=_device(agent, train.device)),
        "command": options.command,
        "wall_s": time.perf_counter() - start,
        "run_id": uuid.uuid4().hex,
    }


def run_one(name: str, env: str, options: CommonOptions, own: ProbeOptions) -> ProbeReport:
    """Probe one agent on one distribution; ``report.info`` holds the row's settings and provenance."""
    start = time.perf_counter()
    agent, trained = prepare_agent(name, env, options, own)
    if own.control:
        control, note = untrained_control(agent, agent.family, options.train.train_seed)
    else:
        control, note = None, "none: --no-control"
    report = probe(agent, env, options.settings, control, note, own.fit_frac, own.split_seed)
    report.info = run_info(agent, env, trained, options, own, start)
    return report


def other_trained_control(
    name: str, env: str, options: CommonOptions, own: ProbeOptions
) -> tuple[Agent | None, str, str]:
    """The same agent's checkpoint of another distribution, played on ``env``: (agent or None, note, its train env)."""
    other = own.other_train_env or OTHER_TRAIN_ENV.get(env)
    if other in (None, "none"):
        return None, "none: no other distribution for this one (--other-train-env names one)", ""
    family = get_spec(env).make()
    agent = make_agent(name, family)
    if not agent.learns:
        return None, "none: agent does not learn", ""
    train = replace(options.train, train_env=other, train_steps=None, retrain=False, resume=False)
    try:
        _, stats = train_or_load(agent, env, train)
    except (CheckpointError, UnsupportedFamilyError) as exc:  # no such checkpoint, or other spaces: no control
        return None, f"none: {exc}", other
    return agent, f"{name} trained on {other} (checkpoint {stats.get('checkpoint', '')}), played on {env}", other


def run_simulation(name: str, env: str, options: CommonOptions, own: ProbeOptions) -> SimulationReport:
    """The simulation analysis of one agent on one distribution; ``report.info`` holds the rows' provenance."""
    start = time.perf_counter()
    agent, trained = prepare_agent(name, env, options, own)
    controls: dict[str, tuple[Agent | None, str]] = {}
    if own.control:
        controls[UNTRAINED] = untrained_control(agent, agent.family, options.train.train_seed)
        control, note, _ = other_trained_control(name, env, options, own)
        controls[OTHER_TRAINED] = (control, note)
    report = simulate(agent, env, options.settings, controls, own.fit_frac, own.split_seed, own.order)
    report.info = run_info(agent, env, trained, options, own, start)
    return report


def _each_run(
    parser: CommandParser, options: CommonOptions, what: str, one_run: Callable[[str, str], Any],
    keep: Callable[[Any], list[dict[str, Any]]],
) -> tuple[list[dict[str, Any]], list[str]]:
    """``one_run(agent, env)`` for every pair, distribution-major; ``keep(report)`` returns (and
    saves) its rows.  A run that fails (a missing checkpoint, a family without a belief model)
    is reported in one line and the others go on."""
    rows: list[dict[str, Any]] = []
    failed: list[str] = []
    for env in options.envs:
        for name in options.agents:
            try:
                report = one_run(name, env)
            except (ValueError, RuntimeError) as exc:
                failed.append(f"{name} on {env}: {type(exc).__name__}: {exc}")
                print(f"{parser.prog}: failed: {what} {failed[-1]}", file=sys.stderr)
                continue
            rows += keep(report)
    return rows, failed


def _failures(failed: list[str], what: str) -> int:
    print(f"{len(failed)} {what} run(s) failed:\n" + "\n".join(f"  {f}" for f in failed), file=sys.stderr)
    return 1


def refresh_report(results: Path, prog: str) -> bool:
    from metarl_bench.reporting import report as html_report

    return html_report.refresh(results, prog)


def _simulate_all(parser: CommandParser, options: CommonOptions, own: ProbeOptions, report_page: bool = False) -> int:
    """Every (agent, distribution) simulation; rows appended per finished run, the tables printed at the end."""

    def keep(report: Any) -> list[dict[str, Any]]:
        new = simulation_rows(report, options.settings, report.info)
        if options.save:  # one append per run: a later failure loses nothing already done
            append_simulation_rows(options.results / SIMULATION_FILE, new)
        print(f"{report.agent} on {report.env}: simulated in {report.info['wall_s']:.1f} s", file=sys.stderr)
        skipped = [f"{s}: {n}" for s, n in report.subject_notes.items() if s not in report.measures]
        for note in skipped + ([report.order_note] if report.order_note else []):
            print(f"  {note}", file=sys.stderr)
        return new

    rows, failed = _each_run(parser, options, "simulating", lambda n, e: run_simulation(n, e, options, own), keep)
    if rows:
        print(format_simulation_table(rows))
        if options.save:
            print(f"wrote {len(rows)} row(s) to {options.results / SIMULATION_FILE}")
    if report_page and rows and not refresh_report(options.results, parser.prog):
        return 1
    if failed:
        return _failures(failed, "simulation")
    return 0 if rows else 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    try:
        return _probe(parser, args, argv)
    except KeyboardInterrupt:  # rows are appended whole, one per finished run: nothing is half-written
        print(f"{parser.prog}: interrupted; rows of finished runs are kept, nothing is half-written", file=sys.stderr)
        return 130


def _probe(parser: CommandParser, args: argparse.Namespace, argv: list[str]) -> int:
    try:
        options = parse_common(args, shlex.join(["python", "-m", "metarl_bench.probe", *argv]))
        own = parse_probe(args, options)
        if args.report and not options.save:
            raise ValueError("--report draws the page from saved rows; drop --no-save")
    except (UnknownNameError, ValueError) as exc:
        return parser.fail(exc)
    set_torch_threads(options)
    if own.simulation:
        return _simulate_all(parser, options, own, report_page=args.report)
    def keep(report: Any) -> list[dict[str, Any]]:
        new = report_rows(report, options.settings, report.info)
        if options.save:  # one append per run: a later failure loses nothing already done
            append_rows(options.results / PROBE_FILE, new)
            write_curves(report, options.results / PROBE_DIR)
        return new

    rows, failed = _each_run(parser, options, "probing", lambda n, e: run_one(n, e, options, own), keep)
    if rows:
        print(format_table(rows))
        print(format_footer(rows))
        if options.save:
            print(f"wrote {len(rows)} row(s) to {options.results / PROBE_FILE}; curves and plots to "
                  f"{options.results / PROBE_DIR}/")  # fmt: skip
    if args.report and rows and not refresh_report(options.results, parser.prog):
        return 1
    if failed:
        return _failures(failed, "probe")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
