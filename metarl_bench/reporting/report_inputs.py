"""What the report page shows, read from a results folder and validated: the current
leaderboard rows, the aggregates and profiles, the cross-evaluation cells and the belief
probes; and what the page derives from the rows (its suites, the spread over training seeds)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from metarl_bench.reporting import leaderboard
from metarl_bench.reporting.aggregate_files import AGGREGATES_FILE, PROFILES_FILE, read_aggregates, read_profiles
from metarl_bench.reporting.aggregate_sets import current_rows


class ReportError(ValueError):
    """A results folder the report cannot be made from (missing, or a file that does not fit)."""


@dataclass
class Inputs:
    """Everything the page shows, read and validated."""

    results: Path
    n_rows: int
    rows: pd.DataFrame  # current rows (newest per agent, train_env, train_seed, env)
    aggregates: pd.DataFrame
    profiles: pd.DataFrame
    crosseval: pd.DataFrame | None
    probes: pd.DataFrame | None
    simulation: pd.DataFrame | None = None  # the belief simulation analysis (belief_simulation.csv)


def load(results: Path) -> Inputs:
    """Read the results folder; ReportError (or CSVSchemaError) naming what does not fit."""
    from metarl_bench.probes.rows import PROBE_FILE, read_probes
    from metarl_bench.probes.simulation_rows import SIMULATION_FILE, read_simulation
    from metarl_bench.reporting.crosseval import CSV_FILE

    if not results.is_dir():
        raise ReportError(f"--results {str(results)!r} is not a folder")
    board = results / leaderboard.LEADERBOARD_FILE
    if not board.is_file():
        raise ReportError(f"{board} does not exist: nothing to report (python -m metarl_bench.run writes it)")
    all_rows = leaderboard.read(board)
    crosseval = None
    if (results / CSV_FILE).is_file():
        try:
            crosseval = pd.read_csv(results / CSV_FILE)
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ReportError(f"{results / CSV_FILE} is not a readable CSV ({exc})") from None
        needed = {"agent", "train_env", "env", "status", "score", "score_ci_low", "score_ci_high"}
        if not needed <= set(crosseval.columns):
            raise ReportError(f"{results / CSV_FILE} lacks columns {sorted(needed - set(crosseval.columns))}")
    probes = read_probes(results / PROBE_FILE) if (results / PROBE_FILE).is_file() else None
    simulation = read_simulation(results / SIMULATION_FILE) if (results / SIMULATION_FILE).is_file() else None
    return Inputs(
        results=results,
        n_rows=len(all_rows),
        rows=current_rows(all_rows),
        aggregates=read_aggregates(results / AGGREGATES_FILE),
        profiles=read_profiles(results / PROFILES_FILE),
        crosseval=crosseval,
        probes=probes,
        simulation=simulation,
    )


def suites_of(rows: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """Registered suites with rows, then the distributions in no suite (``other``)."""
    from metarl_bench.core.registry import list_families, list_suites

    envs = set(rows["env"])
    found, covered = [], set()
    for suite in list_suites():
        members = list_families(suite)
        if envs & set(members):
            found.append((suite, members))
            covered |= set(members)
    rest = sorted(envs - covered)
    if rest:
        found.append(("other", rest))
    return found


def seed_spread(rows: pd.DataFrame) -> dict[tuple[str, str, str], tuple[float, float, list[str]]]:
    """(agent, train_env, env) -> (lowest score, highest, seeds) where two or more training seeds have a score."""
    learned = rows[(rows["train_seed"] != "") & rows["score"].notna()]
    spread = {}
    for key, grp in learned.groupby(["agent", "train_env", "env"], sort=True):
        if len(grp) >= 2:
            seeds = sorted(grp["train_seed"], key=int)
            spread[key] = (float(grp["score"].min()), float(grp["score"].max()), seeds)
    return spread

