"""Rewrite a leaderboard CSV of an older schema into the typed row's (run once per file).

    python -m metarl_bench.records.migrate results/leaderboard.csv

Older files differ from ``metarl_bench.records.row.COLUMNS`` in three ways, each made explicit
here so that no reader needs a shim:

* ``train_seed`` is empty in rows of learning agents written before the column existed: the
  seed comes from ``run_config`` (its ``train_seed``), else from the checkpoint's name
  (``<env>__seed<N>``), else 0 (the first shipped checkpoints were all trained with seed 0);
* ``checkpoint_sha256`` did not exist: empty (the hash of a checkpoint that was played then
  cannot be known now);
* the columns stood in another order: written in the row's order.

Every row is then checked as a ``LeaderboardRow``; the file is replaced atomically, or not at
all if one row does not fit (the message names it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd

from metarl_bench.records.csvfile import replace_csv
from metarl_bench.records.row import COLUMNS, SCHEMA, LeaderboardRow


def explicit_train_seed(record: dict) -> str:
    """The training seed of an old row, as text ("" for agents that do not learn)."""
    if record.get("train_seed", "") != "":
        return str(int(float(record["train_seed"])))
    if record.get("train_env", "") == "":
        return ""
    config = json.loads(record["run_config"]) if record.get("run_config", "") else {}
    if isinstance(config.get("train_seed"), (int, float)):
        return str(int(config["train_seed"]))
    match = re.search(r"__seed(\d+)\.", record.get("checkpoint", ""))
    return match.group(1) if match else "0"


def migrate(path: Path) -> tuple[int, int]:
    """Rewrite ``path`` in place; (rows, rows whose train_seed was made explicit)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    records, filled = [], 0
    for i, record in enumerate(df.to_dict("records"), start=2):
        record.setdefault("checkpoint_sha256", "")
        record.setdefault("score_note", "")
        if not record.get("run_config"):
            record["run_config"] = "{}"
        seed = explicit_train_seed(record)
        filled += seed != record.get("train_seed", "")
        record["train_seed"] = seed
        unknown = set(record) - set(COLUMNS)
        if unknown:
            raise SystemExit(f"{path}:{i}: columns {sorted(unknown)} are not in the schema; nothing was written")
        try:
            LeaderboardRow.from_record(record)
        except ValueError as exc:
            raise SystemExit(f"{path}:{i}: {exc}; nothing was written") from None
        records.append({c: record.get(c, "") for c in COLUMNS})
    replace_csv(path, pd.DataFrame(records, columns=list(COLUMNS)), SCHEMA)
    return len(records), filled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    rows, filled = migrate(args.path)
    print(f"{args.path}: {rows} rows in the typed schema; train_seed made explicit in {filled}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
