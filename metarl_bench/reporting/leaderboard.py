"""The leaderboard CSV: its schema, atomic appends, and a small command to read it.

Reading and appending go through ``metarl_bench.records.csvfile``: every line is validated on
every read, and an append is atomic (a writer killed at any moment leaves the old or the
new file) and keeps the file's permissions.

    python -m metarl_bench.leaderboard --env bandits          # newest row per agent, train_env, env
    python -m metarl_bench.leaderboard --env bandits --all    # every row, the history
    python -m metarl_bench.leaderboard --env bandits --best   # best contestant per distribution
    python -m metarl_bench.leaderboard --aggregate            # suite aggregates (metarl_bench.reporting.aggregate)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from metarl_bench.records.csvfile import CSVSchemaError, Schema, append_csv, read_csv

# The schema, in order (documented in results/README.md).  Tools may rely on these names.
COLUMNS = [
    "agent", "env", "seeds", "n_tasks",
    "return", "return_ci_low", "return_ci_high",
    "score", "score_ci_low", "score_ci_high",
    "oracle_return", "bayes_return", "bayes_method", "bayes_measured_return", "random_return",
    "regret", "regret_ci_low", "regret_ci_high", "bayes_gap",
    "adapt_steps", "bayes_adapt_steps",
    "train_env", "train_steps", "train_wall_s", "checkpoint", "eval_wall_s",
    "env_spec", "agent_config", "device", "threads", "version", "commit", "command", "timestamp", "run_id",
    "run_config", "score_note", "train_seed",
]  # fmt: skip
NUMERIC = [
    "n_tasks", "return", "return_ci_low", "return_ci_high", "score", "score_ci_low", "score_ci_high",
    "oracle_return", "bayes_return", "bayes_measured_return", "random_return",
    "regret", "regret_ci_low", "regret_ci_high", "bayes_gap", "adapt_steps", "bayes_adapt_steps",
    "train_steps", "train_wall_s", "eval_wall_s", "threads", "train_seed",
]  # fmt: skip
REQUIRED = ["agent", "env", "seeds", "n_tasks", "return", "oracle_return", "random_return", "bayes_method",
            "regret", "env_spec", "version", "command", "timestamp", "run_id"]  # fmt: skip
# Columns added after the first release, with the value older files are read with: such a file
# still reads (and gains the column on its next append) instead of being refused.
ADDED_COLUMNS = {"run_config": "", "score_note": "", "train_seed": ""}
SCHEMA = Schema("leaderboard", tuple(COLUMNS), ADDED_COLUMNS, frozenset(NUMERIC), frozenset(REQUIRED))
LEADERBOARD_FILE = "leaderboard.csv"
# A row's identity for "the newest row": one contestant trained on one distribution, played on one.
ROW_IDENTITY = ["agent", "train_env", "train_seed", "env"]

LeaderboardError = CSVSchemaError  # a leaderboard file, or rows, that do not fit the schema


def read(path: str | Path) -> pd.DataFrame:
    """The leaderboard as a DataFrame with the schema's columns (empty if the file is absent)."""
    return read_csv(path, SCHEMA)


def append_rows(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Atomically append ``rows`` (dicts with exactly the schema's keys) to the CSV at ``path``."""
    return append_csv(path, rows, SCHEMA)


def newest(df: pd.DataFrame) -> pd.DataFrame:
    """The newest row of every (agent, train_env, train_seed, env): what the suite currently says."""
    key = df[ROW_IDENTITY].astype("string").fillna("")
    return df.loc[~key.duplicated(keep="last")]


def references_of(agents: Iterable[str]) -> set[str]:
    """The agents that are references, not contestants: told the task (the oracle) or the
    Bayes reference itself.  Names no longer registered count as contestants."""
    from metarl_bench.core.registry import UnknownNameError, get_agent_factory

    found = set()
    for name in set(agents):
        try:
            factory = get_agent_factory(name)
        except (UnknownNameError, ImportError):
            continue
        if getattr(factory, "privileged", False) or getattr(factory, "is_reference", False):
            found.add(name)
    return found


def best_per_env(df: pd.DataFrame, include_references: bool = False) -> pd.DataFrame:
    """The newest row with the highest score for every distribution; the references (oracle,
    bayes) take part only when asked."""
    latest = newest(df)
    if not include_references:
        latest = latest[~latest.agent.isin(references_of(latest.agent))]
    latest = latest[latest.score.notna()]
    return latest.loc[latest.groupby("env", sort=False)["score"].idxmax()]


SUMMARY = ["agent", "train_env", "env", "score", "score_ci_low", "score_ci_high", "return", "bayes_return",
           "bayes_method", "regret", "adapt_steps", "n_tasks", "seeds"]  # fmt: skip


def format_table(df: pd.DataFrame, columns: list[str] = SUMMARY) -> str:
    """The rows as a text table; each distinct score note once below it (why a score is empty)."""
    if df.empty:
        return "(no rows)"
    df = df.assign(train_env=df["train_env"].astype("string").fillna("")) if "train_env" in df.columns else df
    table = df[[c for c in columns if c in df.columns]].to_string(index=False, float_format=lambda x: f"{x:.2f}")
    if "score_note" not in df.columns:
        return table
    notes = df[["env", "score_note"]].dropna().drop_duplicates()
    notes = notes[notes.score_note.astype(str).str.len() > 0]
    return "\n".join([table, *(f"{env}: {note}" for env, note in zip(notes.env, notes.score_note, strict=True))])
