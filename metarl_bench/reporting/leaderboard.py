"""The leaderboard CSV: its schema, atomic appends, and a small command to read it.

Reading and appending go through ``metarl_bench.records.csvfile``: every line is validated on
every read, and an append is atomic (a writer killed at any moment leaves the old or the
new file) and keeps the file's permissions.

    python -m metarl_bench.leaderboard --env bandits          # newest row per agent, training, env; by score
    python -m metarl_bench.leaderboard --env bandits --all    # every row, the history
    python -m metarl_bench.leaderboard --env bandits --best   # best contestant per distribution
    python -m metarl_bench.leaderboard --aggregate            # suite aggregates (metarl_bench.reporting.aggregate)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from metarl_bench.core.registry import reference_agents
from metarl_bench.records.csvfile import CSVSchemaError, append_csv, read_csv
from metarl_bench.records.row import COLUMNS as ROW_COLUMNS
from metarl_bench.records.row import ROW_IDENTITY, SCHEMA, LeaderboardRow

# The schema is the typed row (``metarl_bench.records.row``); tools may rely on these names.
COLUMNS = list(ROW_COLUMNS)
LEADERBOARD_FILE = "leaderboard.csv"

LeaderboardError = CSVSchemaError  # a leaderboard file, or rows, that do not fit the schema


def read(path: str | Path) -> pd.DataFrame:
    """The leaderboard as a DataFrame with the schema's columns (empty if the file is absent)."""
    return read_csv(path, SCHEMA)


def append_rows(path: str | Path, rows: Iterable[LeaderboardRow | Mapping[str, Any]]) -> int:
    """Atomically append ``rows`` to the CSV at ``path``: typed rows, or records with exactly the
    schema's columns, each checked as a :class:`LeaderboardRow` first (LeaderboardError if one
    does not fit, and nothing is written)."""
    records = []
    for i, row in enumerate(rows):
        if not isinstance(row, LeaderboardRow):
            unknown, missing = set(row) - set(COLUMNS), set(COLUMNS) - set(row)
            if unknown or missing:
                raise LeaderboardError(
                    f"row does not fit the leaderboard schema: unknown {sorted(unknown)}, missing {sorted(missing)}"
                )
            try:
                row = LeaderboardRow.from_record(row)
            except ValueError as exc:
                raise LeaderboardError(f"new leaderboard row {i + 1}: {exc}") from None
        records.append(row.record())
    return append_csv(path, records, SCHEMA)


def newest(df: pd.DataFrame) -> pd.DataFrame:
    """The newest row of every (agent, train_env, train_seed, env): what the suite currently says."""
    key = df[list(ROW_IDENTITY)].astype("string").fillna("")
    return df.loc[~key.duplicated(keep="last")]


def best_per_env(df: pd.DataFrame, include_references: bool = False) -> pd.DataFrame:
    """The newest row with the highest score for every distribution; the references (oracle,
    Bayes, random play: ``core.registry.reference_kind``) take part only when asked."""
    latest = newest(df)
    if not include_references:
        latest = latest[~latest.agent.isin(reference_agents(latest.agent))]
    latest = latest[latest.score.notna()]
    return latest.loc[latest.groupby("env", sort=False)["score"].idxmax()]


def ranked(df: pd.DataFrame, env_order: Iterable[str] = ()) -> pd.DataFrame:
    """The rows grouped by distribution (``env_order`` first, then as they appear) and, within
    each, by score, highest first; rows without a score last. Stable, so ties keep file order."""
    order = {e: i for i, e in enumerate(dict.fromkeys([*env_order, *df["env"]]))}
    keys = pd.DataFrame({"env": df["env"].map(order), "no_score": df["score"].isna(), "score": -df["score"]})
    positions = keys.reset_index(drop=True).sort_values(["env", "no_score", "score"], kind="stable").index
    return df.iloc[positions]


# train_seed tells the rows of one agent trained with several seeds apart
SUMMARY = ["agent", "train_env", "train_seed", "env", "score", "score_ci_low", "score_ci_high", "return",
           "bayes_return", "bayes_method", "regret", "adapt_steps", "n_tasks", "seeds"]  # fmt: skip


def format_table(df: pd.DataFrame, columns: list[str] = SUMMARY) -> str:
    """The rows as a text table; each distinct score note once below it (why a score is empty)."""
    if df.empty:
        return "(no rows)"
    if "train_env" in df.columns:
        df = df.assign(train_env=df["train_env"].astype("string").fillna(""))
    if "train_seed" in df.columns:  # an integer, blank for agents that are not trained (not 0.00 or NaN)
        seed = pd.to_numeric(df["train_seed"], errors="coerce").astype("Int64")
        df = df.assign(train_seed=seed.astype("string").fillna(""))
    table = df[[c for c in columns if c in df.columns]].to_string(index=False, float_format=lambda x: f"{x:.2f}")
    if "score_note" not in df.columns:
        return table
    notes = df[["env", "score_note"]].dropna().drop_duplicates()
    notes = notes[notes.score_note.astype(str).str.len() > 0]
    return "\n".join([table, *(f"{env}: {note}" for env, note in zip(notes.env, notes.score_note, strict=True))])
