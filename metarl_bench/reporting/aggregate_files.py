"""The aggregates' files in a results folder: their names, CSV schemas and status words,
reading them, and writing a CSV atomically.

``aggregates.csv`` (one row per set, contestant and kind of interval) and ``profiles.csv``
(the performance profiles) are what ``python -m metarl_bench.leaderboard --aggregate``
writes (:mod:`metarl_bench.reporting.aggregate`) and the report reads; the figures of the
profiles go to ``profiles/<set>.png``.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metarl_bench.records.csvfile import Schema, read_csv

AGGREGATES_FILE = "aggregates.csv"
PROFILES_FILE = "profiles.csv"
PROFILES_DIR = "profiles"
EVALUATION, TRAINING_SEEDS = "evaluation", "training-seeds"
OK, INCOMPLETE, UNREPRODUCED = "ok", "incomplete", "unreproduced"

AGGREGATE_COLUMNS = [
    "suite", "distributions", "excluded", "agent", "role", "kind", "train_seed", "train_envs", "status", "missing",
    "note", "n_distributions", "n_tasks",
    "iqm", "iqm_ci_low", "iqm_ci_high", "mean", "mean_ci_low", "mean_ci_high",
    "n_train_seeds", "train_seeds", "iqm_seed_min", "iqm_seed_max", "mean_seed_min", "mean_seed_max",
    "interval", "run_ids", "command",
]  # fmt: skip
AGGREGATE_SCHEMA = Schema(
    "aggregates",
    tuple(AGGREGATE_COLUMNS),
    numeric=frozenset(
        [
            "n_distributions",
            "n_tasks",
            "iqm",
            "iqm_ci_low",
            "iqm_ci_high",
            "mean",
            "mean_ci_low",
            "mean_ci_high",
            "n_train_seeds",
            "iqm_seed_min",
            "iqm_seed_max",
            "mean_seed_min",
            "mean_seed_max",
        ]
    ),  # fmt: skip
    required=frozenset(["suite", "agent", "kind", "status"]),
)
PROFILE_COLUMNS = ["suite", "agent", "role", "train_seed", "tau", "fraction", "fraction_ci_low", "fraction_ci_high"]
PROFILE_SCHEMA = Schema(
    "profiles",
    tuple(PROFILE_COLUMNS),
    numeric=frozenset(["tau", "fraction", "fraction_ci_low", "fraction_ci_high"]),
    required=frozenset(["suite", "agent", "tau", "fraction"]),
)


def filled(value: Any) -> bool:
    """Whether a CSV cell holds something (not None, NaN or empty text)."""
    return not (value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == "")


def seed_text(values: pd.Series) -> pd.Series:
    """Training seeds as text, as the files mean them: "" (does not learn), "1", or "0;1;2"."""

    def one(v: Any) -> str:
        if not filled(v):
            return ""
        return str(int(v)) if isinstance(v, (int, float, np.number)) else str(v)

    return values.map(one).astype(object)


def read_aggregates(path: str | Path) -> pd.DataFrame:
    """``aggregates.csv`` (empty if absent); CSVSchemaError if a line does not fit."""
    df = read_csv(path, AGGREGATE_SCHEMA)
    return df.assign(train_seed=seed_text(df["train_seed"]), train_seeds=seed_text(df["train_seeds"]))


def read_profiles(path: str | Path) -> pd.DataFrame:
    """``profiles.csv`` (empty if absent); CSVSchemaError if a line does not fit."""
    df = read_csv(path, PROFILE_SCHEMA)
    return df.assign(train_seed=seed_text(df["train_seed"]))


def atomic_csv(df: pd.DataFrame, path: Path, float_format: str, numeric: frozenset[str] = frozenset()) -> None:
    """Write ``df`` so that a reader sees the old file or the new one, never half of one;
    ``numeric`` columns as numbers in ``float_format`` (merged frames hold them as objects)."""
    df = df.assign(**{c: pd.to_numeric(df[c], errors="coerce") for c in numeric if c in df.columns})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".csv", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            df.to_csv(f, index=False, float_format=float_format, lineterminator="\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

