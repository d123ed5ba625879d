"""Cross-evaluation table: cells from leaderboard rows, n/a where spaces differ, CLI files."""

import pandas as pd
import pytest

from metarl_bench.reporting import crosseval, leaderboard
from metarl_bench.running import tables


def _row(agent: str, train_env: str, env: str, score: float, timestamp: str) -> dict:
    row = dict.fromkeys(leaderboard.COLUMNS, "")
    row |= {"agent": agent, "train_env": train_env, "env": env, "score": score, "score_ci_low": score - 1,
            "score_ci_high": score + 1, "timestamp": timestamp, "seeds": "0", "n_tasks": 10, "return": 1.0,
            "oracle_return": 2.0, "random_return": 0.5, "bayes_method": "exact", "regret": 1.0, "env_spec": "{}",
            "version": "0", "command": "test", "run_id": f"{agent}-{train_env}-{env}", "train_seed": 0,
            "run_config": "{}"}  # fmt: skip
    return row


@pytest.fixture
def rows() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _row("vsml", "bernoulli-k2-h100", "bernoulli-k5-h100", 80.0, "2026-01-01T00:00:00"),
            _row("vsml", "bernoulli-k2-h100", "bernoulli-k5-h100", 90.0, "2026-01-02T00:00:00"),  # newer wins
            _row("rl2", "bernoulli-k2-h100", "bernoulli-k2-h100", 85.0, "2026-01-01T00:00:00"),
        ]
    )


def test_cells_take_the_newest_row_and_mark_missing_and_not_applicable(rows):
    envs = ["bernoulli-k2-h100", "bernoulli-k5-h100"]
    cells = crosseval.table(rows, ["vsml", "rl2"], ["bernoulli-k2-h100"], envs).set_index(["agent", "env"])
    assert cells.loc[("vsml", "bernoulli-k5-h100"), "status"] == "ok"
    assert cells.loc[("vsml", "bernoulli-k5-h100"), "score"] == 90.0
    assert cells.loc[("vsml", "bernoulli-k2-h100"), "status"] == "missing"
    assert cells.loc[("rl2", "bernoulli-k2-h100"), "score"] == 85.0
    assert cells.loc[("rl2", "bernoulli-k5-h100"), "status"] == "not-applicable"  # 2 output units cannot pull 5 arms


def test_compatibility_follows_the_agent_and_the_spaces():
    assert crosseval.compatible("vsml", "bernoulli-k2-h100", "bernoulli-k10-h100")
    assert crosseval.compatible("rl2", "bernoulli-k5-h100", "gaussian-k5-h100")  # same spaces, other rewards
    assert not crosseval.compatible("rl2", "bernoulli-k5-h100", "bernoulli-k10-h100")


def test_cli_writes_csv_and_heat_map(tmp_path, rows, capsys):
    leaderboard.append_rows(tmp_path / leaderboard.LEADERBOARD_FILE, rows.to_dict("records"))
    envs = "bernoulli-k2-h100,bernoulli-k5-h100"
    code = tables.crosseval_main(["--agent", "vsml,rl2", "--train-env", "bernoulli-k2-h100", "--env", envs,
                                  "--results", str(tmp_path)])  # fmt: skip
    assert code == 0
    table = pd.read_csv(tmp_path / crosseval.CSV_FILE)
    assert len(table) == 4 and set(table["status"]) == {"ok", "missing", "not-applicable"}
    assert (tmp_path / crosseval.PNG_FILE).stat().st_size > 1000
    assert "missing: python -m metarl_bench.run --agent vsml" in capsys.readouterr().out


def test_cli_rejects_unknown_names(tmp_path, capsys):
    code = tables.crosseval_main(["--agent", "no-such-agent", "--train-env", "bernoulli-k2-h100", "--env", "bandits",
                           "--results", str(tmp_path)])  # fmt: skip
    assert code == 2
    assert "no-such-agent" in capsys.readouterr().err
