"""The typed leaderboard row: the CSV header, its checks, the committed file, the one migration."""

import math

import pandas as pd
import pytest

from metarl_bench.records import migrate
from metarl_bench.records.row import COLUMNS, SCHEMA, LeaderboardRow, Metrics, Training
from metarl_bench.reporting import leaderboard

RESULTS = "results/leaderboard.csv"


def _record(**changes) -> dict:
    record = pd.read_csv(RESULTS, dtype=str, keep_default_na=False).iloc[0].to_dict()
    return record | changes


def test_the_committed_leaderboard_is_in_the_typed_schema_and_every_row_parses():
    df = pd.read_csv(RESULTS, dtype=str, keep_default_na=False)
    assert tuple(df.columns) == COLUMNS == tuple(leaderboard.COLUMNS)
    rows = [LeaderboardRow.from_record(r) for r in df.to_dict("records")]
    learners = [r for r in rows if r.training.train_env]
    assert learners and all(r.training.train_seed is not None for r in learners)  # migrated: no empty seed
    assert all(r.training.train_seed is None for r in rows if not r.training.train_env)


def test_a_row_reads_back_to_the_same_record():
    record = _record()
    row = LeaderboardRow.from_record(record)
    assert row["return"] == pytest.approx(float(record["return"])) and row.metrics.return_ == row["return"]
    again = LeaderboardRow.from_record(row.record())
    assert again == row and list(row.record()) == list(COLUMNS)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_non_finite_number_is_refused_by_the_row_and_by_the_file_check(value):
    with pytest.raises(ValueError, match="'score' must be a finite number"):
        LeaderboardRow.from_record(_record(score=value))
    with pytest.raises(ValueError, match="'score' must be a finite number"):
        Metrics(**(Metrics.own_values(_record()) | {"score": float(value)}))  # as the evaluator builds it
    with pytest.raises(leaderboard.LeaderboardError, match="'score' must be a finite number"):
        leaderboard.append_rows("/nonexistent/never-written.csv", [_record(score=value)])


def test_required_columns_and_kinds_are_named():
    with pytest.raises(ValueError, match="'return' is required"):
        LeaderboardRow.from_record(_record(**{"return": ""}))
    with pytest.raises(ValueError, match="'n_tasks' must be an integer"):
        LeaderboardRow.from_record(_record(n_tasks="10.5"))
    with pytest.raises(ValueError, match="'env_spec' must be JSON"):
        LeaderboardRow.from_record(_record(env_spec="{not json"))
    with pytest.raises(ValueError, match="'train_seed' is required for an agent trained on 'e'"):
        Training(train_env="e", run_config="{}")
    assert Training(run_config="{}").train_seed is None  # an agent that does not learn


def test_the_schema_is_read_from_the_row():
    assert set(SCHEMA.numeric) == {c for c in COLUMNS if c in {"n_tasks", "threads", "train_seed", "train_steps"}
                                   or c.endswith(("return", "_low", "_high", "_s", "steps", "gap", "regret", "score"))}
    assert {"agent", "env", "return", "run_config", "run_id"} <= SCHEMA.required


def test_migration_makes_the_training_seed_explicit_and_adds_the_hash_column(tmp_path):
    old = pd.read_csv(RESULTS, dtype=str, keep_default_na=False).head(4).drop(columns="checkpoint_sha256")
    learner = old.index[old.train_env != ""][0]
    old.loc[learner, "train_seed"] = ""
    old.loc[learner, "run_config"] = '{"train_seed": 2}'
    path = tmp_path / "leaderboard.csv"
    old[list(reversed(old.columns))].to_csv(path, index=False)  # another column order too
    with pytest.raises(leaderboard.LeaderboardError, match="records.migrate"):
        leaderboard.read(path)
    assert migrate.main([str(path)]) == 0
    new = leaderboard.read(path)
    assert list(new.columns) == list(COLUMNS) and len(new) == 4
    assert int(new.loc[learner, "train_seed"]) == 2
    assert math.isnan(new.loc[learner, "checkpoint_sha256"]) or new.loc[learner, "checkpoint_sha256"] == ""


def test_migration_takes_the_seed_from_the_checkpoint_name_else_zero():
    base = {"train_env": "e", "run_config": "{}", "train_seed": ""}
    assert migrate.explicit_train_seed(base | {"checkpoint": "e__seed3.zip"}) == "3"
    assert migrate.explicit_train_seed(base | {"checkpoint": "e.zip"}) == "0"
    assert migrate.explicit_train_seed(base | {"train_env": "", "checkpoint": ""}) == ""


def test_migration_refuses_a_row_that_does_not_fit_and_writes_nothing(tmp_path):
    old = pd.read_csv(RESULTS, dtype=str, keep_default_na=False).head(2)
    old.loc[1, "return"] = "nan"
    path = tmp_path / "leaderboard.csv"
    old.to_csv(path, index=False)
    before = path.read_bytes()
    with pytest.raises(SystemExit, match="leaderboard.csv:3: leaderboard column 'return' must be a finite"):
        migrate.main([str(path)])
    assert path.read_bytes() == before


def test_every_column_is_documented_in_results_readme_in_the_rows_order():
    text = open("results/README.md").read().split("## Leaderboard columns", 1)[1].split("\n## ", 1)[0]
    cells = [line.split("|")[1] for line in text.splitlines() if line.startswith("| `")]
    documented = [name for cell in cells for name in cell.split("`")[1::2]]
    assert documented == list(COLUMNS)
