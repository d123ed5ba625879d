"""The leaderboard CSV: fixed columns, atomic appends, and a small command to read it.

``append_rows`` takes an inter-process lock (``filelock``), reads the current file,
writes old plus new rows to a temporary file in the same folder, fsyncs it and renames
it over the original.  Concurrent writers therefore never lose each other's rows, and a
writer killed at any moment leaves either the old or the new file, never half of one.

    python -m metarl_bench.leaderboard                 # the whole table
    python -m metarl_bench.leaderboard --env bandits --best   # best agent per distribution
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock

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
    "run_config", "score_note",
]  # fmt: skip
# Columns added after the first release, with the value older files are read with: such a file
# still reads (and gains the column on its next append) instead of being refused.
ADDED_COLUMNS = {"run_config": "", "score_note": ""}
LEADERBOARD_FILE = "leaderboard.csv"


class LeaderboardError(ValueError):
    """A leaderboard file that cannot be read as one, or rows that do not fit the schema."""


def read(path: str | Path) -> pd.DataFrame:
    """The leaderboard as a DataFrame with the schema's columns (empty if the file is absent)."""
    return read_csv(path, COLUMNS, "leaderboard", ADDED_COLUMNS)


def read_csv(path: str | Path, columns: list[str], what: str, added: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """A results CSV with schema ``columns`` (empty if absent); LeaderboardError if it does not fit.

    ``added``: columns introduced after a file may have been written, with the value they
    take in such a file (it still reads, and gains the column on its next append).
    """
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=columns)
    try:
        df = pd.read_csv(path, keep_default_na=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise LeaderboardError(f"{path} is not a readable {what} CSV: {exc}") from None
    for column, value in (added or {}).items():
        if column not in df.columns:
            df[column] = value
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise LeaderboardError(f"{path} lacks {what} columns {missing}; refusing to overwrite it")
    return df[columns + [c for c in df.columns if c not in columns]]  # schema order (added columns too)


def append_rows(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Atomically append ``rows`` (dicts with exactly the schema's keys) to the CSV at ``path``."""
    return append_csv(path, rows, COLUMNS, read)


def append_csv(
    path: str | Path,
    rows: Iterable[Mapping[str, Any]],
    columns: list[str],
    read_existing: Callable[[Path], pd.DataFrame],
) -> int:
    """Append ``rows`` to the CSV at ``path`` so that no row is ever lost or half-written.

    Under a file lock (concurrent writers queue), the existing file is read with
    ``read_existing`` (which refuses files that do not fit ``columns``), the rows are
    added, and the whole is written to a temporary file, fsynced and renamed over the
    old one: a writer killed at any moment leaves either the old or the new file.
    """
    rows = [dict(r) for r in rows]
    for r in rows:
        unknown, missing = set(r) - set(columns), set(columns) - set(r)
        if unknown or missing:
            raise LeaderboardError(f"row does not fit the schema: unknown {sorted(unknown)}, missing {sorted(missing)}")
    if not rows:
        return 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=120):
        old = read_existing(path)
        new = pd.DataFrame(rows, columns=columns)
        df = new if old.empty else pd.concat([old, new], ignore_index=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".csv", dir=path.parent)
        try:
            with os.fdopen(fd, "w", newline="") as f:
                df.to_csv(f, index=False, float_format="%.6g")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return len(rows)


def best_per_env(df: pd.DataFrame) -> pd.DataFrame:
    """The row with the highest score for every distribution (latest run per agent first)."""
    latest = df.drop_duplicates(subset=["agent", "env"], keep="last")
    return latest.loc[latest.groupby("env", sort=False)["score"].idxmax()]


SUMMARY = ["agent", "env", "score", "score_ci_low", "score_ci_high", "return", "bayes_return", "bayes_method",
           "regret", "adapt_steps", "n_tasks", "seeds"]  # fmt: skip


def format_table(df: pd.DataFrame, columns: list[str] = SUMMARY) -> str:
    """The rows as a text table; each distinct score note once below it (why a score is empty)."""
    if df.empty:
        return "(no rows)"
    table = df[columns].to_string(index=False, float_format=lambda x: f"{x:.2f}")
    if "score_note" not in df.columns:
        return table
    notes = df[["env", "score_note"]].dropna().drop_duplicates()
    notes = notes[notes.score_note.astype(str).str.len() > 0]
    return "\n".join([table, *(f"{env}: {note}" for env, note in zip(notes.env, notes.score_note, strict=True))])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metarl_bench.leaderboard", description=__doc__.split("\n")[0])
    parser.add_argument("--results", default="results", help="results folder (default: results)")
    parser.add_argument("--agent", help="only these agents (comma list)")
    parser.add_argument("--env", help="only these distributions (name, suite or comma list)")
    parser.add_argument("--best", action="store_true", help="best agent per distribution")
    parser.add_argument("--all-columns", action="store_true", help="print every column")
    args = parser.parse_args(argv)
    try:
        df = read(Path(args.results) / LEADERBOARD_FILE)
        if args.agent:
            df = df[df["agent"].isin([a.strip() for a in args.agent.split(",")])]
        if args.env:
            from metarl_bench.registry import resolve_envs

            df = df[df["env"].isin(resolve_envs(args.env))]
    except (LeaderboardError, LookupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.best:
        df = best_per_env(df)
    print(format_table(df, COLUMNS if args.all_columns else SUMMARY))
    return 0


if __name__ == "__main__":
    sys.exit(main())
