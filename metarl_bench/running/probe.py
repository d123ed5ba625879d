"""Belief probes: read the exact posterior out of an agent's memory, and compare its actions
with the Bayes-optimal policy on the very same histories.

    python -m metarl_bench.probe --agent vsml --env bernoulli-k2-h100
    python -m metarl_bench.probe --agent rl2 --env bernoulli-k2-h100 --checkpoint my_rl2.zip --no-save

This module is the command line.  It takes the flags ``run`` takes (``metarl_bench.running.options``,
parsed once into one ``CommonOptions``) plus the probe's own, and leaves the work to one
module per concern:

    metarl_bench.probes.record    what can be probed; recording through the evaluator's rollout
    metarl_bench.probes.ridge           closed-form ridge, its penalty chosen by grouped cross-validation
    metarl_bench.probes.analysis  fit/test split, held-out R², accuracy, agreement with Bayes: probe()
    metarl_bench.probes.rows    the rows of results/probes.csv (its schema), curves, plots, table

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
from dataclasses import dataclass
from typing import Any

import numpy as np

from metarl_bench.core.agent import Agent
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


@dataclass(frozen=True)
class ProbeOptions:
    """The probe's own flags, on top of the ``CommonOptions`` it shares with ``run``."""

    fit_frac: float = 0.5  # share of the held-out tasks the probes are fitted on
    split_seed: int = 0  # fit/test split, cross-validation folds, bootstrap
    checkpoint: str | None = None  # probe this saved agent instead of the shipped checkpoint
    control: bool = True  # probe an untrained agent of the same architecture too


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
    return p


def parse_probe(args: argparse.Namespace, options: CommonOptions) -> ProbeOptions:
    """The probe's own options, checked together with the shared ones; ValueError on bad input."""
    own = ProbeOptions(
        fit_frac=args.fit_frac, split_seed=args.split_seed, checkpoint=args.checkpoint, control=not args.no_control
    )
    split_tasks(options.settings.n_tasks, own.fit_frac, np.random.default_rng(0))  # fails now, not after a rollout
    for agent in options.agents:
        for env in options.envs:
            check_probeable(agent, env)
    if own.checkpoint and options.train.train_steps:
        raise ProbeError("give --checkpoint or --train-steps, not both")
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


def run_one(name: str, env: str, options: CommonOptions, own: ProbeOptions) -> ProbeReport:
    """Probe one agent on one distribution; ``report.info`` holds the row's settings and provenance."""
    start = time.perf_counter()
    agent, trained = prepare_agent(name, env, options, own)
    if own.control:
        control, note = untrained_control(agent, agent.family, options.train.train_seed)
    else:
        control, note = None, "none: --no-control"
    report = probe(agent, env, options.settings, control, note, own.fit_frac, own.split_seed)
    spec = get_spec(env)
    train = options.train
    report.info = {
        "split_seed": own.split_seed,
        **trained,
        "env_spec": json.dumps({"id": spec.gym_id, "kwargs": agent.family.params}, sort_keys=True),
        "agent_config": json.dumps(agent.config, sort_keys=True, default=str),
        **provenance(threads=train.threads, device=_device(agent, train.device)),
        "command": options.command,
        "wall_s": time.perf_counter() - start,
        "run_id": uuid.uuid4().hex,
    }
    return report


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
    rows: list[dict[str, Any]] = []
    failed: list[str] = []
    for env in options.envs:
        for name in options.agents:
            try:
                report = run_one(name, env, options, own)
            except (ValueError, RuntimeError) as exc:  # e.g. a corrupt checkpoint: reported, the others go on
                failed.append(f"{name} on {env}: {type(exc).__name__}: {exc}")
                print(f"{parser.prog}: failed: probing {failed[-1]}", file=sys.stderr)
                continue
            new = report_rows(report, options.settings, report.info)
            rows += new
            if options.save:  # one append per run: a later failure loses nothing already done
                append_rows(options.results / PROBE_FILE, new)
                write_curves(report, options.results / PROBE_DIR)
    if rows:
        print(format_table(rows))
        print(format_footer(rows))
        if options.save:
            print(f"wrote {len(rows)} row(s) to {options.results / PROBE_FILE}; curves and plots to "
                  f"{options.results / PROBE_DIR}/")  # fmt: skip
    if args.report and rows:
        from metarl_bench.reporting import report as html_report

        if not html_report.refresh(options.results, parser.prog):
            return 1
    if failed:
        print(f"{len(failed)} probe run(s) failed:\n" + "\n".join(f"  {f}" for f in failed), file=sys.stderr)
        return 1
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
